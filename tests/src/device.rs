//! A simulated handheld terminal: a real [`Terminal`] on a temporary data
//! folder, with helpers to record cases in the fixture's grids, sync, and read
//! back what the terminal holds (straight from its SQLite file, read-only) to
//! compare with the server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use gridcase_core::case::{CaseDraft, Category};
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::{Op, OpKind};
use gridcase_core::photo::sha256_hex;
use gridcase_core::store::CaseQuery;
use gridcase_core::sync::{SyncError, SyncReport};
use gridcase_core::terminal::{CasePhoto, PhotoSource};
use gridcase_core::time::{now_millis, DAY};
use gridcase_core::{Case, GeoPoint, Location, Terminal, TerminalConfig};

use crate::server::ServerSnapshot;

/// The fixture's first and second grid of 福民社区.
pub const G01: &str = "220402001001-G01";
pub const G02: &str = "220402001001-G02";

/// A point well inside `grid` (G01 or G02), varied by `i` (G02's hole, a
/// factory compound, is avoided).
pub fn point_in(grid: &str, i: u64) -> GeoPoint {
    let lat = 42.892 + (i % 97) as f64 * 0.000_16; // 42.892 .. 42.907
    let lon = match grid {
        G01 => 125.131 + (i % 89) as f64 * 0.000_14, // 125.131 .. 125.143
        G02 => 125.146 + (i % 23) as f64 * 0.000_13, // 125.146 .. 125.149
        other => panic!("no test points for grid {other}"),
    };
    GeoPoint::new(lat, lon, 5.0).expect("a valid point")
}

pub struct SimDevice {
    pub name: String,
    pub terminal: Terminal,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// One op as the terminal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOp {
    pub op: Op,
    pub server_seq: Option<u64>,
    /// Recorded here (`local`) or pulled (`server`).
    pub origin: String,
    /// `None` when acknowledged or pulled; `pending` or `rejected` when in the outbox.
    pub outbox: Option<String>,
}

/// One case as the terminal holds it.
#[derive(Debug, Clone)]
pub struct DeviceCase {
    pub case: Case,
    /// In the terminal's recording order.
    pub ops: Vec<DeviceOp>,
    /// (photo file, thumbnail file) sha256 per photo row.
    pub photos: Vec<(String, String)>,
}

/// Everything the terminal holds, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct DeviceView {
    pub cases: BTreeMap<CaseId, DeviceCase>,
    pub outbox_pending: u64,
    pub outbox_rejected: u64,
    pub photo_downloads: u64,
    pub cursor: u64,
}

impl SimDevice {
    /// A terminal on a new temporary folder.
    pub fn open(name: &str) -> Result<SimDevice> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("gridcase-{name}-"))
            .tempdir()?;
        let mut d = Self::open_at(tmp.path(), name)?;
        d._tmp = Some(tmp);
        Ok(d)
    }

    /// A terminal on the temporary folder `tmp` (removed with the device),
    /// with its own configuration (a seeded sync, a short request timeout).
    pub fn open_with(
        tmp: tempfile::TempDir,
        name: &str,
        config: TerminalConfig,
    ) -> Result<SimDevice> {
        let terminal = Terminal::open(tmp.path(), config)?;
        Ok(SimDevice {
            name: name.to_string(),
            terminal,
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
        })
    }

    /// A terminal on `dir` (kept).
    pub fn open_at(dir: &Path, name: &str) -> Result<SimDevice> {
        let terminal = Terminal::open(dir, TerminalConfig::new(name))?;
        Ok(SimDevice {
            name: name.to_string(),
            terminal,
            dir: dir.to_path_buf(),
            _tmp: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.terminal.store().path().to_path_buf()
    }

    /// Enrols with the one-time `code`; ops recorded from now on carry the account.
    pub async fn enrol(&self, url: &str, code: &str) -> Result<String> {
        let account = self
            .terminal
            .enrol(url, code, &self.name)
            .await
            .with_context(|| format!("{} enrolling", self.name))?;
        Ok(account.account_id)
    }

    pub fn account_id(&self) -> Result<String> {
        Ok(self
            .terminal
            .store()
            .sync_account()?
            .ok_or_else(|| anyhow!("{} is not enrolled", self.name))?
            .account_id)
    }

    /// A draft at `point` with a proposed deadline a day ahead.
    pub fn new_case(&self, title: &str, point: GeoPoint) -> Result<Case> {
        let now = now_millis();
        Ok(self.terminal.create_case(
            CaseDraft {
                category: Category::ALL[title.len() % Category::ALL.len()],
                title: title.to_string(),
                description: format!("{title}：居民反映，网格员现场记录。"),
                location: Some(Location {
                    point,
                    address: Some("福民社区".into()),
                    source: gridcase_core::location::LocationSource::Typed,
                }),
                occurred_at: now,
                proposed_deadline: Some(now + DAY),
            },
            Some(point),
        )?)
    }

    pub async fn add_photo(&self, case: &CaseId, jpeg: Vec<u8>) -> Result<CasePhoto> {
        Ok(self
            .terminal
            .add_photo(case, PhotoSource::Bytes(jpeg))
            .await?)
    }

    pub async fn sync(&self) -> std::result::Result<SyncReport, SyncError> {
        self.terminal.sync_now(None).await
    }

    /// Syncs until a round pushes and pulls nothing and nothing waits; errors
    /// if that takes more than `max_rounds` or a round fails.
    pub async fn sync_until_idle(&self, max_rounds: usize) -> Result<Vec<SyncReport>> {
        let mut reports = Vec::new();
        for _ in 0..max_rounds {
            let r = self
                .sync()
                .await
                .with_context(|| format!("{} syncing", self.name))?;
            let idle = r.ops_pushed == 0 && r.ops_pulled == 0 && r.ops_waiting == 0;
            reports.push(r);
            if idle && self.terminal.store().photo_downloads()?.is_empty() {
                return Ok(reports);
            }
        }
        bail!("{} still had work after {max_rounds} syncs", self.name)
    }

    /// Like [`Self::sync_until_idle`], but a failed round (transient trouble)
    /// is retried after a short pause, up to `max_rounds` rounds in all.
    pub async fn sync_until_idle_retrying(&self, max_rounds: usize) -> Result<usize> {
        let mut last_err = None;
        for round in 0..max_rounds {
            match self.sync().await {
                Ok(r) => {
                    let idle = r.ops_pushed == 0 && r.ops_pulled == 0 && r.ops_waiting == 0;
                    if idle && self.terminal.store().photo_downloads()?.is_empty() {
                        return Ok(round + 1);
                    }
                }
                Err(e) => {
                    last_err = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        bail!(
            "{} still had work after {max_rounds} syncs (last error: {last_err:?})",
            self.name
        )
    }

    /// Every case id on the terminal, through the app's list query.
    pub fn listed_case_ids(&self) -> Result<BTreeSet<CaseId>> {
        let mut out = BTreeSet::new();
        let mut token = None;
        loop {
            let page = self.terminal.list_cases_blocking(&CaseQuery {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })?;
            out.extend(page.cases.iter().map(|c| c.id));
            token = page.next_page_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Reads everything the terminal holds, in one read transaction.
    pub fn view(&self) -> Result<DeviceView> {
        read_device_view(&self.db_path())
    }

    /// The photo file for `sha256` on this terminal, checked: present and
    /// holding bytes with that SHA-256.
    pub fn check_photo_file(&self, sha256: &str) -> Result<()> {
        let path = self.terminal.photo_file(sha256)?;
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{}: photo file {}", self.name, path.display()))?;
        if sha256_hex(&bytes) != sha256 {
            bail!(
                "{}: photo file {} has other content",
                self.name,
                path.display()
            );
        }
        Ok(())
    }
}

/// Reads a terminal's database (read-only; the terminal may be open).
pub fn read_device_view(db: &Path) -> Result<DeviceView> {
    let mut conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let tx = conn.transaction()?;
    let mut view = DeviceView::default();
    {
        let mut stmt = tx.prepare("SELECT id, body FROM cases")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let body: String = r.get(1)?;
            view.cases.insert(
                CaseId::parse(&id).map_err(|e| anyhow!("case id {id}: {e}"))?,
                DeviceCase {
                    case: serde_json::from_str(&body)?,
                    ops: Vec::new(),
                    photos: Vec::new(),
                },
            );
        }
        let mut stmt = tx.prepare(
            "SELECT ops.body, ops.server_seq, ops.origin, outbox.state
             FROM ops LEFT JOIN outbox ON outbox.op_seq = ops.seq ORDER BY ops.seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let body: String = r.get(0)?;
            let op: Op = serde_json::from_str(&body)?;
            let entry = DeviceOp {
                server_seq: r.get::<_, Option<i64>>(1)?.map(|s| s as u64),
                origin: r.get(2)?,
                outbox: r.get(3)?,
                op,
            };
            match view.cases.get_mut(&entry.op.case_id) {
                Some(c) => c.ops.push(entry),
                None => bail!("op {} of a case the terminal does not have", entry.op.id),
            }
        }
        let mut stmt =
            tx.prepare("SELECT case_id, sha256, thumb_sha256 FROM photos ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let case = CaseId::parse(&id).map_err(|e| anyhow!("case id {id}: {e}"))?;
            let c = view
                .cases
                .get_mut(&case)
                .ok_or_else(|| anyhow!("photo of a case the terminal does not have"))?;
            c.photos.push((r.get(1)?, r.get(2)?));
        }
        let count = |sql: &str| -> rusqlite::Result<u64> {
            tx.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        view.outbox_pending = count("SELECT count(*) FROM outbox WHERE state = 'pending'")?;
        view.outbox_rejected = count("SELECT count(*) FROM outbox WHERE state = 'rejected'")?;
        view.photo_downloads = count("SELECT count(*) FROM photo_downloads")?;
        view.cursor = count("SELECT coalesce(max(cursor), 0) FROM sync_account")?;
    }
    tx.commit()?;
    Ok(view)
}

/// `PRAGMA integrity_check` of a SQLite file.
pub fn integrity_check(db: &Path) -> Result<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// What [`compare_with_server`] looked at.
#[derive(Debug, Clone, Default)]
pub struct Compared {
    pub cases: usize,
    /// Ops the server refused, kept on the terminal's timeline.
    pub rejected: usize,
    pub ops: usize,
    pub photos: usize,
}

/// Checks that a settled terminal (nothing waiting) holds exactly what the
/// server holds for its account: the same cases (those it reported or that
/// are in its grids), each with the same state, the same ops in the same
/// server order, each op once; nothing waiting; ops the server refused kept
/// on the terminal only (counted); every photo file present with the right
/// content. Returns every difference found, not just the first.
pub fn compare_with_server(
    device: &SimDevice,
    server: &ServerSnapshot,
) -> Result<std::result::Result<Compared, Vec<String>>> {
    let account = device.account_id()?;
    let view = device.view()?;
    let name = &device.name;
    let mut diffs = Vec::new();
    if view.outbox_pending != 0 {
        diffs.push(format!("{name}: {} ops still waiting", view.outbox_pending));
    }
    if view.photo_downloads != 0 {
        diffs.push(format!(
            "{name}: {} photo downloads waiting",
            view.photo_downloads
        ));
    }
    let visible: BTreeSet<CaseId> = server
        .cases
        .iter()
        .filter(|(_, c)| server.visible_to(&account, c))
        .map(|(id, _)| *id)
        .collect();
    let held: BTreeSet<CaseId> = view.cases.keys().copied().collect();
    for id in visible.difference(&held) {
        diffs.push(format!("{name}: lacks case {id} that the server shows it"));
    }
    for id in held.difference(&visible) {
        diffs.push(format!(
            "{name}: holds case {id} the server does not show it"
        ));
    }
    let listed = device.listed_case_ids()?;
    if listed != held {
        diffs.push(format!(
            "{name}: the list query shows {} cases, the database holds {}",
            listed.len(),
            held.len()
        ));
    }
    let mut compared = Compared::default();
    for id in visible.intersection(&held) {
        let dc = &view.cases[id];
        let sc = &server.cases[id];
        compared.cases += 1;
        let (mine, state) = (&dc.case, &sc.state);
        if mine != state {
            // Report the fields that differ, not two JSON blobs.
            let (a, b) = (serde_json::to_value(mine)?, serde_json::to_value(state)?);
            let fields: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, v)| format!("{k}: device {v} server {}", b[k.as_str()]))
                .collect();
            diffs.push(format!("{name}: case {id} differs: {}", fields.join("; ")));
        }
        // The same ops in the same order (by the numbers the terminal holds).
        // Not the same numbers: the server renumbers a case's ops when it is
        // published (leaves the draft state) or moves grid, keeping their
        // order; a terminal keeps the number it first learnt.
        let server_ops: Vec<(OpId, u64)> =
            server.ops_of(id).iter().map(|o| (o.op.id, o.seq)).collect();
        let mut device_ops: Vec<(OpId, u64)> = Vec::new();
        for o in &dc.ops {
            match (o.server_seq, o.outbox.as_deref()) {
                (Some(seq), None) => device_ops.push((o.op.id, seq)),
                // Refused: kept on the timeline, out of the fold, not on the server.
                (None, Some("rejected")) if !server_ops.iter().any(|(s, _)| *s == o.op.id) => {
                    compared.rejected += 1;
                }
                _ => diffs.push(format!(
                    "{name}: op {} ({}) of case {id} not on the server: outbox {:?}",
                    o.op.id,
                    o.op.kind.name(),
                    o.outbox
                )),
            }
        }
        // (The terminal's op ids are a primary key: "held twice" cannot
        // happen there. Doubling is caught by comparing the order of ids
        // with the server's, and, in the tests that keep one, with the
        // test's own log of each case's steps.)
        device_ops.sort_by_key(|(_, seq)| *seq);
        let device_order: Vec<OpId> = device_ops.iter().map(|(id, _)| *id).collect();
        let server_order: Vec<OpId> = server_ops.iter().map(|(id, _)| *id).collect();
        if device_order != server_order {
            diffs.push(format!(
                "{name}: case {id} ops differ:\n  device {device_ops:?}\n  server {server_ops:?}"
            ));
        }
        compared.ops += device_ops.len();
        let attach_ops: Vec<(String, String)> = server
            .ops_of(id)
            .iter()
            .filter_map(|o| match &o.op.kind {
                OpKind::AttachPhoto { photo, .. } => {
                    Some((photo.sha256.clone(), photo.thumb_sha256.clone()))
                }
                _ => None,
            })
            .collect();
        let mut rows = dc.photos.clone();
        rows.sort();
        let mut want = attach_ops.clone();
        want.sort();
        if rows != want {
            diffs.push(format!(
                "{name}: case {id} has {} photo rows, the server {} photo ops",
                rows.len(),
                want.len()
            ));
        }
        if sc.state.photo_ids.len() != attach_ops.len() {
            diffs.push(format!(
                "server: case {id} lists {} photos but has {} photo ops",
                sc.state.photo_ids.len(),
                attach_ops.len()
            ));
        }
        for (photo, thumb) in &attach_ops {
            for sha in [photo, thumb] {
                compared.photos += 1;
                if let Err(e) = device.check_photo_file(sha) {
                    diffs.push(format!("{e:#}"));
                }
            }
        }
    }
    Ok(if diffs.is_empty() {
        Ok(compared)
    } else {
        Err(diffs)
    })
}
