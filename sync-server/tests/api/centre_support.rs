//! The centre's side of the harness: a map of two counties, departments,
//! staff logged in over HTTP with their session cookie and CSRF token.

#![allow(dead_code)]

use gridcase_core::case::Case;
use gridcase_core::ids::CaseId;
use gridcase_core::location::GeoPoint;
use gridcase_core::time::Millis;
use gridcase_server::centre::staff::{NewStaff, StaffRole};
use gridcase_server::centre::CentreConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{reported_case, Device, Server};

/// A city with two counties; county k-1 has township t-1 with grids g-1 and
/// g-2, county k-2 has township t-3 with grid g-3.
pub const COUNTIES: &str = r#"{ "type": "FeatureCollection", "features": [
  { "type": "Feature", "properties": { "id": "c", "name": "辽源市", "level": "city", "parent": null }, "geometry": null },
  { "type": "Feature", "properties": { "id": "k-1", "name": "龙山区", "level": "county", "parent": "c" }, "geometry": null },
  { "type": "Feature", "properties": { "id": "k-2", "name": "西安区", "level": "county", "parent": "c" }, "geometry": null },
  { "type": "Feature", "properties": { "id": "t-1", "name": "向阳街道", "level": "township", "parent": "k-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.2, 42.8], [125.2, 42.9], [125.0, 42.9], [125.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "g-1", "name": "一网格", "level": "grid", "parent": "t-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "g-2", "name": "二网格", "level": "grid", "parent": "t-1" },
    "geometry": { "type": "Polygon", "coordinates": [[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "t-3", "name": "富国街道", "level": "township", "parent": "k-2" },
    "geometry": { "type": "Polygon", "coordinates": [[[126.0, 42.8], [126.2, 42.8], [126.2, 42.9], [126.0, 42.9], [126.0, 42.8]]] } },
  { "type": "Feature", "properties": { "id": "g-3", "name": "三网格", "level": "grid", "parent": "t-3" },
    "geometry": { "type": "Polygon", "coordinates": [[[126.0, 42.8], [126.1, 42.8], [126.1, 42.9], [126.0, 42.9], [126.0, 42.8]]] } }
]}"#;

pub const PASSWORD: &str = "correct horse battery";

pub fn in_g3() -> GeoPoint {
    GeoPoint::new(42.85, 126.05, 5.0).unwrap()
}

/// A logged-in member of staff.
#[derive(Debug, Clone)]
pub struct StaffClient {
    pub id: String,
    pub login: String,
    pub cookie: String,
    pub csrf: String,
}

/// The session cookie (`name=value`) a login answer sets.
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gridcase_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Logs in a new supervisor of `unit` on `server` and answers their session
/// cookie: figures and exports are for staff only.
pub async fn supervisor_cookie(server: &Server, unit: &str) -> String {
    let login = format!("supervisor-{unit}");
    server
        .admin()
        .create_staff(&NewStaff {
            login: login.clone(),
            name: "督导".into(),
            role: StaffRole::Supervisor,
            unit_id: Some(unit.into()),
            department_id: None,
            password: PASSWORD.into(),
        })
        .unwrap();
    let resp = server
        .http
        .post(server.url("/v1/centre/login"))
        .json(&json!({"login": login, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    session_cookie(&resp).expect("a session cookie")
}

/// The county map, with departments: 市政 (k-1 only), 住建 (everywhere).
pub struct Centre {
    pub server: Server,
    pub municipal: String,
    pub housing: String,
    pub k2_water: String,
}

impl Centre {
    pub async fn start() -> Centre {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut CentreConfig)) -> Centre {
        let server = Server::start_with(|c| tune(&mut c.centre)).await;
        let mut admin = server.admin();
        admin.import_grids(COUNTIES).unwrap();
        let municipal = admin.create_department("市政", Some("k-1")).unwrap().id;
        let housing = admin.create_department("住建", None).unwrap().id;
        let k2_water = admin
            .create_department("西安区水务", Some("k-2"))
            .unwrap()
            .id;
        Centre {
            server,
            municipal,
            housing,
            k2_water,
        }
    }

    pub fn create_staff(
        &self,
        login: &str,
        role: StaffRole,
        unit: Option<&str>,
        department: Option<&str>,
    ) -> String {
        self.server
            .admin()
            .create_staff(&NewStaff {
                login: login.into(),
                name: format!("{login} 同志"),
                role,
                unit_id: unit.map(str::to_string),
                department_id: department.map(str::to_string),
                password: PASSWORD.into(),
            })
            .unwrap()
            .id
    }

    pub async fn login(&self, login: &str, password: &str) -> reqwest::Response {
        self.server
            .http
            .post(self.server.url("/v1/centre/login"))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn logged_in(&self, login: &str) -> StaffClient {
        let resp = self.login(login, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = session_cookie(&resp).expect("a session cookie");
        let body: Value = resp.json().await.unwrap();
        StaffClient {
            id: body["staff"]["id"].as_str().unwrap().into(),
            login: login.into(),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().into(),
        }
    }

    pub async fn dispatcher(&self, login: &str, unit: &str) -> StaffClient {
        self.create_staff(login, StaffRole::Dispatcher, Some(unit), None);
        self.logged_in(login).await
    }

    pub async fn handler(&self, login: &str, department: &str) -> StaffClient {
        self.create_staff(login, StaffRole::Department, None, Some(department));
        self.logged_in(login).await
    }

    pub async fn supervisor(&self, login: &str, unit: &str) -> StaffClient {
        self.create_staff(login, StaffRole::Supervisor, Some(unit), None);
        self.logged_in(login).await
    }

    pub async fn get(&self, who: &StaffClient, path: &str) -> (StatusCode, Value) {
        self.server
            .send(
                self.server
                    .http
                    .get(self.server.url(path))
                    .header("cookie", &who.cookie),
            )
            .await
    }

    pub async fn post(&self, who: &StaffClient, path: &str, body: Value) -> (StatusCode, Value) {
        self.server
            .send(
                self.server
                    .http
                    .post(self.server.url(path))
                    .header("cookie", &who.cookie)
                    .header("x-csrf-token", &who.csrf)
                    .json(&body),
            )
            .await
    }

    /// An action on a case, answering status and body.
    pub async fn act(
        &self,
        who: &StaffClient,
        case: CaseId,
        action: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.post(who, &format!("/v1/centre/cases/{case}/{action}"), body)
            .await
    }

    /// An action that must succeed.
    pub async fn ok(&self, who: &StaffClient, case: CaseId, action: &str, body: Value) -> Value {
        let (status, body) = self.act(who, case, action, body).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        body
    }

    pub async fn case(&self, who: &StaffClient, case: CaseId) -> (StatusCode, Value) {
        self.get(who, &format!("/v1/centre/cases/{case}")).await
    }

    /// The ids in the staff member's queue with `query`.
    pub async fn queue_ids(&self, who: &StaffClient, query: &str) -> Vec<String> {
        let (status, body) = self.get(who, &format!("/v1/centre/cases?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn leader(&self, name: &str, grids: &[&str]) -> Device {
        self.server.leader(name, grids).await
    }

    pub async fn report(&self, dev: &Device, at: GeoPoint) -> CaseId {
        reported_case(&self.server, dev, at).await
    }

    /// The case as the server stores it.
    pub fn stored(&self, case: CaseId) -> Case {
        let conn = rusqlite::Connection::open(self.server.dir.path().join("gridcase.db")).unwrap();
        let state: String = conn
            .query_row(
                "SELECT state FROM cases WHERE id = ?1",
                [case.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&state).unwrap()
    }

    /// One pass of the deadline scheduler at `now`.
    pub fn run_deadlines(&self, config: &CentreConfig, now: Millis) -> (usize, usize, usize) {
        let s = self.server.admin().run_deadlines(config, now).unwrap();
        (s.near, s.overdue, s.escalated)
    }
}

pub fn dispatch_body(department: &str) -> Value {
    json!({"department_id": department, "note": "请尽快处理"})
}
