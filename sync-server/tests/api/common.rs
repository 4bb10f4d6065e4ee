//! A real server on 127.0.0.1:0 with a temporary data folder, and a client.
//!
//! The database: SQLite in the data folder, or, with
//! `GRIDCASE_TEST_DATABASE=postgres`, a fresh database of its own on this
//! test binary's throwaway PostgreSQL cluster
//! ([`gridcase_test_support::postgres::PgCluster`]).

#![allow(dead_code)]

use gridcase_core::case::{CaseDraft, CaseEdit, Category, Face};
use gridcase_core::ids::{CaseId, OpId, PhotoId};
use gridcase_core::location::{GeoPoint, Location};
use gridcase_core::op::{Actor, Op, OpKind, PhotoRef, Role};
use gridcase_core::protocol::{
    EnrolRequest, EnrolResponse, PushResult, PushStatus, SyncRequest, SyncResponse, UploadStatus,
};
use gridcase_core::time::{now_millis, DAY};
use gridcase_server::admin::Admin;
use gridcase_server::{AppState, Config};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A city with one township of two grids (g-1 has a micro-grid), and a grid
/// of another township elsewhere.
pub const GRIDS: &str = r#"{ "type": "FeatureCollection", "features": [
  { "type": "Feature", "properties": { "id": "c-1", "name": "辽源市", "level": "city", "parent": null }, "geometry": null },
  { "type": "Feature", "properties": { "id": "t-1", "name": "向阳街道", "level": "township", "parent": "c-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.2, 42.8], [125.2, 42.9], [125.0, 42.9], [125.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "g-1", "name": "一网格", "level": "grid", "parent": "t-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "g-2", "name": "二网格", "level": "grid", "parent": "t-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "mg-1a", "name": "一网格1号楼", "level": "micro_grid", "parent": "g-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.05, 42.8], [125.05, 42.85], [125.0, 42.85], [125.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "t-2", "name": "别的街道", "level": "township", "parent": "c-1" }, "geometry": null },
  { "type": "Feature", "properties": { "id": "g-3", "name": "三网格", "level": "grid", "parent": "t-2" },
    "geometry": { "type": "Polygon", "coordinates": [[[126.0, 42.8], [126.1, 42.8], [126.1, 42.9], [126.0, 42.9], [126.0, 42.8]]] } }
]}"#;

/// In g-1 (outside its micro-grid), in g-1's micro-grid, in g-2.
pub fn in_g1() -> GeoPoint {
    GeoPoint::new(42.87, 125.07, 5.0).unwrap()
}
pub fn in_mg1a() -> GeoPoint {
    GeoPoint::new(42.82, 125.02, 5.0).unwrap()
}
pub fn in_g2() -> GeoPoint {
    GeoPoint::new(42.85, 125.15, 5.0).unwrap()
}

/// Which database the tests run on (`GRIDCASE_TEST_DATABASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDatabase {
    Sqlite,
    Postgres,
}

impl TestDatabase {
    pub fn from_env() -> TestDatabase {
        match std::env::var("GRIDCASE_TEST_DATABASE").as_deref() {
            Ok("postgres") => TestDatabase::Postgres,
            Ok("sqlite") | Ok("") | Err(_) => TestDatabase::Sqlite,
            Ok(other) => panic!("GRIDCASE_TEST_DATABASE={other}: use sqlite or postgres"),
        }
    }

    /// A fresh database's URL on PostgreSQL; `None` on SQLite (the data
    /// folder's file).
    pub fn fresh_url(self) -> Option<String> {
        match self {
            TestDatabase::Sqlite => None,
            TestDatabase::Postgres => Some(
                gridcase_test_support::postgres::PgCluster::shared()
                    .and_then(|pg| pg.fresh_database("api"))
                    .expect("a database on the test cluster"),
            ),
        }
    }
}

pub struct Server {
    pub url: String,
    pub http: reqwest::Client,
    pub dir: TempDir,
    /// The PostgreSQL database, when the tests run on one.
    pub database_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub token: String,
    pub device_id: String,
    pub account_id: String,
    pub grid_ids: Vec<String>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            database_url: TestDatabase::from_env().fresh_url(),
            ..Config::default()
        };
        // Tests run the deadline scheduler's pass by hand, at a chosen time.
        config.centre.scheduler_period = None;
        tune(&mut config);
        let state = AppState::open(&config).await.unwrap();
        let database_url = config.database_url.clone();
        Admin::open_with(dir.path(), database_url.as_deref())
            .unwrap()
            .import_grids(GRIDS)
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcase_server::serve_on(listener, state, async {
            let _ = rx.await;
        }));
        Server {
            url,
            http: reqwest::Client::new(),
            dir,
            database_url,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Starts a graceful shutdown and waits until the server has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn begin_shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap()
    }

    /// The admin command, as a separate process would run it.
    pub fn admin(&self) -> Admin {
        Admin::open_with(self.dir.path(), self.database_url.as_deref()).unwrap()
    }

    /// Everything the database holds, as bytes to search (the SQLite file
    /// and its WAL; on PostgreSQL every row of every table as text).
    pub async fn database_bytes(&self) -> Vec<u8> {
        let Some(url) = &self.database_url else {
            let mut bytes = std::fs::read(gridcase_server::database_path(self.dir.path())).unwrap();
            bytes
                .extend(std::fs::read(self.dir.path().join("gridcase.db-wal")).unwrap_or_default());
            return bytes;
        };
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let tables = client
            .query(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .unwrap();
        let mut bytes = Vec::new();
        for t in tables {
            let table: String = t.get(0);
            let rows = client
                .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                .await
                .unwrap();
            for r in rows {
                bytes.extend(r.get::<_, String>(0).into_bytes());
            }
        }
        bytes
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A new grid leader's account and its code.
    pub fn new_code(&self, name: &str, grids: &[&str]) -> (String, String) {
        let grids: Vec<String> = grids.iter().map(|g| g.to_string()).collect();
        let leader = self.admin().create_leader(name, &grids, 7 * DAY).unwrap();
        (leader.account_id, leader.code)
    }

    pub async fn enrol(&self, code: &str, device_name: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/enrol"))
            .json(&EnrolRequest {
                code: code.into(),
                device_name: device_name.into(),
                enrolment_key: None,
            })
            .send()
            .await
            .unwrap()
    }

    /// A grid leader for `grids` with one enrolled device.
    pub async fn leader(&self, name: &str, grids: &[&str]) -> Device {
        let (_, code) = self.new_code(name, grids);
        self.device_with_code(&code).await
    }

    pub async fn device_with_code(&self, code: &str) -> Device {
        let resp = self.enrol(code, "手持终端").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let e: EnrolResponse = resp.json().await.unwrap();
        Device {
            token: e.token,
            device_id: e.device_id,
            account_id: e.account_id,
            grid_ids: e.grid_ids,
        }
    }

    /// A second device for the same account.
    pub async fn second_device(&self, dev: &Device) -> Device {
        let code = self.admin().issue_code(&dev.account_id, DAY).unwrap().code;
        self.device_with_code(&code).await
    }

    pub async fn sync_req(&self, dev: &Device, req: &SyncRequest) -> SyncResponse {
        let resp = self
            .http
            .post(self.url("/v1/sync"))
            .bearer_auth(&dev.token)
            .json(req)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn push(&self, dev: &Device, ops: &[Op]) -> Vec<PushResult> {
        let req = SyncRequest {
            push: ops.to_vec(),
            cursor: 0,
            pull_limit: 0,
            history: None,
        };
        self.sync_req(dev, &req).await.results
    }

    pub async fn pull(&self, dev: &Device, cursor: u64, limit: u32) -> SyncResponse {
        let req = SyncRequest {
            push: vec![],
            cursor,
            pull_limit: limit,
            history: None,
        };
        self.sync_req(dev, &req).await
    }

    /// Pulls everything after `cursor`, page by page.
    pub async fn pull_all(
        &self,
        dev: &Device,
        mut cursor: u64,
    ) -> (Vec<gridcase_core::protocol::PulledOp>, u64) {
        let mut all = Vec::new();
        loop {
            let page = self.pull(dev, cursor, 1000).await;
            all.extend(page.ops);
            cursor = page.cursor;
            if !page.more {
                return (all, cursor);
            }
        }
    }

    /// Any request, answering status and JSON body (Null if not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn upload_status(&self, dev: &Device, sha: &str) -> UploadStatus {
        let resp = self
            .http
            .get(self.url(&format!("/v1/photos/{sha}/upload")))
            .bearer_auth(&dev.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    pub async fn put_photo(
        &self,
        dev: &Device,
        sha: &str,
        offset: u64,
        total: u64,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.send(
            self.http
                .put(self.url(&format!("/v1/photos/{sha}?offset={offset}&total={total}")))
                .bearer_auth(&dev.token)
                .body(body),
        )
        .await
    }

    /// Uploads a whole file in one request.
    pub async fn upload(&self, dev: &Device, data: &[u8]) -> String {
        let sha = sha256_hex(data);
        let (status, body) = self
            .put_photo(dev, &sha, 0, data.len() as u64, data.to_vec())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["complete"], true);
        sha
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Some bytes standing in for a JPEG (the server does not decode photos).
pub fn photo_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// --- ops as a terminal makes them ---

pub fn op(dev: &Device, case_id: CaseId, kind: OpKind) -> Op {
    op_as(dev, Role::GridLeader, case_id, kind)
}

pub fn op_as(dev: &Device, role: Role, case_id: CaseId, kind: OpKind) -> Op {
    Op {
        id: OpId::new(),
        case_id,
        actor: Actor {
            role,
            id: dev.account_id.clone(),
        },
        device_time: now_millis(),
        at: None,
        recorded_before_enrolment_as: None,
        kind,
    }
}

pub fn create(dev: &Device, case_id: CaseId, at: Option<GeoPoint>) -> Op {
    let now = now_millis();
    op(
        dev,
        case_id,
        OpKind::Create {
            draft: CaseDraft {
                category: Category::CollapsedManhole,
                title: "下水井塌陷".into(),
                description: "暴雨后人民大街井盖塌陷".into(),
                location: at.map(|point| Location {
                    point,
                    address: Some("人民大街".into()),
                    source: gridcase_core::location::LocationSource::Typed,
                }),
                occurred_at: now,
                proposed_deadline: Some(now + DAY),
            },
        },
    )
}

pub fn edit_location(dev: &Device, case_id: CaseId, point: GeoPoint) -> Op {
    op(
        dev,
        case_id,
        OpKind::Edit {
            edit: CaseEdit {
                location: Some(Some(Location {
                    point,
                    address: None,
                    source: gridcase_core::location::LocationSource::Typed,
                })),
                ..CaseEdit::default()
            },
        },
    )
}

pub fn submit(dev: &Device, case_id: CaseId) -> Op {
    op(dev, case_id, OpKind::Submit)
}

pub fn photo_ref(photo: &[u8], thumb: &[u8]) -> PhotoRef {
    PhotoRef {
        id: PhotoId::new(),
        sha256: sha256_hex(photo),
        bytes: photo.len() as u64,
        width: 1920,
        height: 1440,
        thumb_sha256: sha256_hex(thumb),
        thumb_bytes: thumb.len() as u64,
        captured_at: None,
        captured_at_point: None,
    }
}

pub fn attach(dev: &Device, case_id: CaseId, photo: PhotoRef) -> Op {
    op(
        dev,
        case_id,
        OpKind::AttachPhoto {
            photo,
            location: None,
        },
    )
}

pub fn verify(dev: &Device, case_id: CaseId, done: bool) -> Op {
    op(
        dev,
        case_id,
        OpKind::Verify {
            done,
            note: "现场查看".into(),
            photo_ids: vec![],
        },
    )
}

pub fn rate(dev: &Device, case_id: CaseId, face: Face) -> Op {
    op_as(
        dev,
        Role::Resident,
        case_id,
        OpKind::Rate {
            face,
            comment: String::new(),
        },
    )
}

/// A case created at `at` and submitted: three ops, the server adds a fourth.
pub async fn reported_case(server: &Server, dev: &Device, at: GeoPoint) -> CaseId {
    let id = CaseId::new();
    let results = server
        .push(dev, &[create(dev, id, Some(at)), submit(dev, id)])
        .await;
    assert!(
        results.iter().all(|r| r.status == PushStatus::Accepted),
        "{results:?}"
    );
    id
}

pub fn assert_accepted(results: &[PushResult]) -> Vec<u64> {
    results
        .iter()
        .map(|r| {
            assert_eq!(r.status, PushStatus::Accepted, "{r:?}");
            r.server_seq.unwrap()
        })
        .collect()
}

pub fn kind_name(op: &Op) -> &'static str {
    op.kind.name()
}
