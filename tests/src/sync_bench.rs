//! Sync benchmarks, against the real `gridcase-server` binary over loopback:
//!
//! (a) **Throughput.** One terminal records 1,000 cases × 10 ops (create, 8
//!     edits, submit: 10,000 device ops) and pushes them; a colleague's
//!     terminal in the same grid pulls them (11,000 ops with the server's
//!     receives). Ops/s for the push, the pull, and both; bytes per op (JSON
//!     bodies, as the client counts them). The ceiling: the very rows the
//!     server ended up with (ops, push outcomes, cases, case scopes) inserted
//!     straight into a fresh server database with rusqlite in one transaction,
//!     with the server's pragmas.
//! (b) **Idle sync.** A third terminal, talking through the proxy in
//!     pass-through mode (which sees the real bytes on the wire, HTTP heads
//!     included), syncs with nothing to do: requests and bytes each way.
//! (c) **Photos.** Through the proxy: a case with 3 photos of about 300 KB;
//!     bytes on the wire over the photo bytes (photos and thumbnails). Then a
//!     photo whose upload is cut at 50 % (the proxy forwards half the file and
//!     closes both connections): how many bytes the terminal sends again.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use gridcase_core::case::CaseEdit;
use gridcase_core::photo::{intake_bytes, PhotoConfig};
use gridcase_core::sync::SyncReport;

use crate::device::{point_in, SimDevice, G01};
use crate::fault_proxy::{Fate, FaultProxy, ProxyStats};
use crate::server::{admin_in, ServerProcess};

#[derive(Debug, Clone)]
pub struct SyncBenchOptions {
    pub cases: usize,
    /// Ops per case: create, `ops_per_case - 2` edits, submit.
    pub ops_per_case: usize,
    /// Target size of each photo file in (c).
    pub photo_bytes: usize,
    pub photos: usize,
}

impl Default for SyncBenchOptions {
    fn default() -> Self {
        SyncBenchOptions {
            cases: 1_000,
            ops_per_case: 10,
            photo_bytes: 300 * 1024,
            photos: 3,
        }
    }
}

/// Totals of a series of syncs.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub rounds: usize,
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub ops: u64,
    pub time: Duration,
}

impl Wire {
    fn add(&mut self, r: &SyncReport) {
        self.rounds += 1;
        self.requests += r.requests;
        self.bytes_sent += r.bytes_sent;
        self.bytes_received += r.bytes_received;
    }
    fn per_sec(&self, ops: u64) -> f64 {
        ops as f64 / self.time.as_secs_f64()
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncBenchReport {
    pub device_ops: u64,
    pub record: Duration,
    pub push: Wire,
    pub pull: Wire,
    /// The same rows straight into SQLite.
    pub ceiling: Duration,
    pub ceiling_rows: u64,
    /// Through the proxy: pulling everything, with HTTP heads.
    pub pull_proxy: ProxyStats,
    pub pull_proxy_ops: u64,
    pub idle: ProxyStats,
    pub photo_file_bytes: u64,
    pub photo_files: usize,
    pub photo_sync: ProxyStats,
    /// The cut upload: file size, bytes the server held after the cut, body
    /// bytes the terminal sent for the file in all, and after the cut.
    pub cut_file_bytes: u64,
    pub cut_held: u64,
    pub cut_sent_total: u64,
    pub cut_sent_after: u64,
    pub cut_requests: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn kb(b: u64) -> f64 {
    b as f64 / 1024.0
}

impl SyncBenchReport {
    pub fn push_ops_per_sec(&self) -> f64 {
        self.push.per_sec(self.device_ops)
    }
    /// Ops pulled (the device ops and the server's receives) per second.
    pub fn pull_ops_per_sec(&self) -> f64 {
        self.pull.per_sec(self.pull.ops)
    }
    pub fn both_ops_per_sec(&self) -> f64 {
        self.device_ops as f64 / (self.push.time + self.pull.time).as_secs_f64()
    }
    pub fn ceiling_ops_per_sec(&self) -> f64 {
        self.device_ops as f64 / self.ceiling.as_secs_f64()
    }
    pub fn photo_wire_ratio(&self) -> f64 {
        self.photo_sync.bytes_from_clients() as f64 / self.photo_file_bytes as f64
    }
    /// Bytes sent after the cut beyond what the server still lacked.
    pub fn cut_resent(&self) -> u64 {
        self.cut_sent_after
            .saturating_sub(self.cut_file_bytes - self.cut_held)
    }

    pub fn markdown_rows(&self) -> Vec<String> {
        let n = self.device_ops;
        vec![
            format!(
                "| sync: push {n} ops (1 terminal → server, {} requests) | {:.0} ops/s ({:.2} s) | ceiling: same rows straight into the server's SQLite, one transaction: {:.0} ops/s ({:.0} ms) | {:.2}× |",
                self.push.requests,
                self.push_ops_per_sec(),
                self.push.time.as_secs_f64(),
                self.ceiling_ops_per_sec(),
                ms(self.ceiling),
                self.push_ops_per_sec() / self.ceiling_ops_per_sec()
            ),
            format!(
                "| sync: pull {} ops (server → colleague's terminal, {} requests) | {:.0} ops/s ({:.2} s) | | |",
                self.pull.ops,
                self.pull.requests,
                self.pull_ops_per_sec(),
                self.pull.time.as_secs_f64()
            ),
            format!(
                "| sync: push + pull {n} device ops end to end | {:.0} ops/s ({:.2} s) | ceiling | {:.2}× |",
                self.both_ops_per_sec(),
                (self.push.time + self.pull.time).as_secs_f64(),
                self.both_ops_per_sec() / self.ceiling_ops_per_sec()
            ),
            format!(
                "| sync: JSON bytes per op (bodies) | push {:.0} B up + {:.0} B down; pull {:.0} B down | | |",
                self.push.bytes_sent as f64 / n as f64,
                self.push.bytes_received as f64 / n as f64,
                self.pull.bytes_received as f64 / self.pull.ops as f64,
            ),
            format!(
                "| sync: pull through the proxy, wire bytes per op with HTTP heads | {:.0} B down, {:.1} B up ({} requests) | | |",
                self.pull_proxy.bytes_to_clients() as f64 / self.pull_proxy_ops.max(1) as f64,
                self.pull_proxy.bytes_from_clients() as f64 / self.pull_proxy_ops.max(1) as f64,
                self.pull_proxy.requests()
            ),
            format!(
                "| sync: idle sync on the wire (heads included) | {} request(s), {} B up + {} B down = {} B | target: 1 request, < 1 KB | {} |",
                self.idle.requests(),
                self.idle.bytes_from_clients(),
                self.idle.bytes_to_clients(),
                self.idle.bytes_from_clients() + self.idle.bytes_to_clients(),
                if self.idle.requests() == 1
                    && self.idle.bytes_from_clients() + self.idle.bytes_to_clients() < 1024
                {
                    "met"
                } else {
                    "missed"
                }
            ),
            format!(
                "| sync: {} photo files ({:.0} KB: 3 photos + thumbnails) uploaded, bytes on the wire up / photo bytes | {:.4}× ({} B up in {} requests) | target ≤ 1.02× | {} |",
                self.photo_files,
                kb(self.photo_file_bytes),
                self.photo_wire_ratio(),
                self.photo_sync.bytes_from_clients(),
                self.photo_sync.requests(),
                if self.photo_wire_ratio() <= 1.02 { "met" } else { "missed" }
            ),
            format!(
                "| sync: upload cut at 50 % of a {:.0} KB photo | {} B re-sent after the cut (server held {:.0} KB; {:.0} KB sent after the cut) | terminal sent {:.3}× the file in all (the cut request's unsent tail included) | |",
                kb(self.cut_file_bytes),
                self.cut_resent(),
                kb(self.cut_held),
                kb(self.cut_sent_after),
                self.cut_sent_total as f64 / self.cut_file_bytes as f64
            ),
        ]
    }

    pub fn detail(&self) -> String {
        format!(
            "record {} ops on the terminal (one transaction each): {:.2} s; push {} rounds {} requests; pull {} rounds {} requests; ceiling rows {}\nproxy pull: {}\nidle: {:?}\nphotos: {}\ncut: {:?}",
            self.device_ops,
            self.record.as_secs_f64(),
            self.push.rounds,
            self.push.requests,
            self.pull.rounds,
            self.pull.requests,
            self.ceiling_rows,
            self.pull_proxy.summary(),
            self.idle.exchanges,
            self.photo_sync.summary(),
            self.cut_requests
        )
    }
}

/// Runs the benchmark on its own runtime.
pub fn run(opts: &SyncBenchOptions) -> Result<SyncBenchReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let server = ServerProcess::start()?;
    let result = rt.block_on(run_on(&server, opts));
    if result.is_err() {
        eprintln!("server log (tail):\n{}", server.log_tail());
    }
    let report = result?;
    server.stop()?;
    Ok(report)
}

async fn sync_all(d: &SimDevice, wire: &mut Wire) -> Result<()> {
    for _ in 0..1_000 {
        let r = d
            .sync()
            .await
            .with_context(|| format!("{} syncing", d.name))?;
        wire.add(&r);
        wire.ops += r.ops_pulled as u64;
        if r.ops_pushed == 0 && r.ops_pulled == 0 && r.ops_waiting == 0 {
            return Ok(());
        }
    }
    anyhow::bail!("{} did not settle", d.name)
}

async fn run_on(server: &ServerProcess, opts: &SyncBenchOptions) -> Result<SyncBenchReport> {
    let mut report = SyncBenchReport::default();
    let pusher = SimDevice::open("bench-pusher")?;
    let puller = SimDevice::open("bench-puller")?;
    let watcher = SimDevice::open("bench-watcher")?;
    let proxy = FaultProxy::start(server.addr, 1).await?;
    for (d, url) in [
        (&pusher, &server.url),
        (&puller, &server.url),
        (&watcher, &proxy.url),
    ] {
        let leader = server.create_leader(&d.name, &[G01])?;
        d.enrol(url, &leader.code).await?;
    }

    // (a) Record, push, pull.
    let started = Instant::now();
    for i in 0..opts.cases {
        let case = pusher.new_case(&format!("基准事件 {i}"), point_in(G01, i as u64))?;
        for e in 0..opts.ops_per_case.saturating_sub(2) {
            let edit = CaseEdit {
                description: Some(format!("第{e}次补充：居民反映情况有变化，需要尽快处理。")),
                ..Default::default()
            };
            pusher.terminal.edit_case(&case.id, edit)?;
        }
        pusher.terminal.submit_case(&case.id)?;
    }
    report.record = started.elapsed();
    report.device_ops = pusher.terminal.store().outbox_len()?;
    ensure!(report.device_ops == (opts.cases * opts.ops_per_case) as u64);
    let started = Instant::now();
    sync_all(&pusher, &mut report.push).await?;
    report.push.time = started.elapsed();
    let started = Instant::now();
    sync_all(&puller, &mut report.pull).await?;
    report.pull.time = started.elapsed();
    ensure!(
        report.pull.ops == report.device_ops + opts.cases as u64,
        "pulled {} ops",
        report.pull.ops
    );
    let (ceiling, rows) = ceiling(&server.db_path())?;
    report.ceiling = ceiling;
    report.ceiling_rows = rows;

    // (b) Through the proxy: catch up, then an idle sync.
    let mut w = Wire::default();
    proxy.take_stats();
    sync_all(&watcher, &mut w).await?;
    report.pull_proxy = proxy.take_stats();
    report.pull_proxy_ops = w.ops;
    watcher.sync().await?;
    report.idle = proxy.take_stats();

    // (c) Photos of about `photo_bytes`, then a cut upload.
    let config = PhotoConfig::default();
    let case = watcher.new_case("三张现场照片", point_in(G01, 7))?;
    for k in 0..opts.photos {
        let jpeg = camera_like_jpeg(opts.photo_bytes, k as u64, &config)?;
        let p = watcher.add_photo(&case.id, jpeg).await?;
        report.photo_file_bytes += p.row.photo.bytes + p.row.photo.thumb_bytes;
        report.photo_files += 2;
    }
    proxy.take_stats();
    let r = watcher.sync().await?;
    ensure!(r.ops_waiting == 0, "{r:?}");
    report.photo_sync = proxy.take_stats();

    let case = watcher.new_case("断网重传", point_in(G01, 9))?;
    let jpeg = camera_like_jpeg(opts.photo_bytes, 99, &config)?;
    let p = watcher.add_photo(&case.id, jpeg).await?;
    let sha = p.row.photo.sha256.clone();
    report.cut_file_bytes = p.row.photo.bytes;
    proxy.cut_request_body_after("/v1/photos/", report.cut_file_bytes / 2);
    // The terminal retries by itself; a second sync only if it gave up.
    for _ in 0..5 {
        if watcher.sync().await.is_ok_and(|r| r.ops_waiting == 0) {
            break;
        }
    }
    ensure!(!proxy.cut_pending(), "the cut did not happen");
    let stats = proxy.take_stats();
    let mut after_cut = false;
    for e in stats.exchanges.iter() {
        report.cut_requests.push(format!(
            "{} {} body {} fwd {} {:?}",
            e.method, e.path, e.request_body, e.forwarded, e.fate
        ));
        if !e.path.starts_with(&format!("/v1/photos/{sha}?")) {
            continue;
        }
        report.cut_sent_total += e.request_body;
        if after_cut {
            report.cut_sent_after += e.request_body;
        }
        if e.fate == Fate::Cut {
            after_cut = true;
        }
    }
    report.cut_held = held_at_cut(&stats, &sha);
    ensure!(
        watcher.terminal.store().outbox_len()? == 0,
        "the cut upload finished"
    );
    ensure!(
        server.photo_file(&sha).is_some(),
        "the server has the cut photo"
    );
    Ok(report)
}

/// Bytes of the file the server held right after the cut: the bodies it got
/// whole before, plus the part of the cut request's body it got.
fn held_at_cut(stats: &ProxyStats, sha: &str) -> u64 {
    let prefix = format!("/v1/photos/{sha}?");
    let mut held = 0;
    for e in stats
        .exchanges
        .iter()
        .filter(|e| e.path.starts_with(&prefix))
    {
        match e.fate {
            Fate::Relayed => held += e.request_body,
            Fate::Cut => {
                held += e.forwarded - e.request_head;
                return held;
            }
            _ => {}
        }
    }
    held
}

/// A JPEG that the photo intake turns into a file of about `target` bytes:
/// a 1280 × 960 scene (kept at that size by the intake) of gradients with
/// seeded noise, the noise level found once per target by bisection.
pub fn camera_like_jpeg(target: usize, seed: u64, config: &PhotoConfig) -> Result<Vec<u8>> {
    static LEVELS: std::sync::Mutex<Vec<(usize, u32)>> = std::sync::Mutex::new(Vec::new());
    let known = LEVELS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, a)| *a);
    if let Some(amp) = known {
        return Ok(noisy(W, H, seed, amp));
    }
    const W: u32 = 1280;
    const H: u32 = 960;
    let (mut lo, mut hi) = (0u32, 256u32);
    let (mut best, mut best_amp) = (Vec::new(), 0);
    for _ in 0..9 {
        let amp = (lo + hi) / 2;
        let jpeg = noisy(W, H, seed, amp);
        let out = intake_bytes(&jpeg, config).context("intake")?.jpeg.len();
        (best, best_amp) = (jpeg, amp);
        if out.abs_diff(target) < target / 50 {
            break;
        }
        if out < target {
            lo = amp;
        } else {
            hi = amp;
        }
    }
    LEVELS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((target, best_amp));
    Ok(best)
}

fn noisy(w: u32, h: u32, seed: u64, amp: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = if amp == 0 { 0 } else { rng.u32(0..amp) } as i32 - amp as i32 / 2;
        let c = |v: u32| (v as i32 + n).clamp(0, 255) as u8;
        image::Rgb([
            c(x * 200 / w + 20),
            c(y * 180 / h + 40),
            c(((x + y) * 90 / (w + h)) + 100),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&img)
        .expect("encoding to memory cannot fail");
    out
}

/// The rows the server holds after the push, inserted straight into a fresh
/// server database in one transaction (the server's pragmas: WAL,
/// synchronous = FULL, foreign keys). Returns the time and the row count.
fn ceiling(server_db: &Path) -> Result<(Duration, u64)> {
    let src = rusqlite::Connection::open_with_flags(
        server_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let tmp = tempfile::tempdir()?;
    admin_in(tmp.path(), &["admin", "list-cases", "--json"])?; // creates and migrates
    let mut dst = rusqlite::Connection::open(tmp.path().join("gridcase.db"))?;
    dst.pragma_update(None, "journal_mode", "WAL")?;
    dst.pragma_update(None, "synchronous", "FULL")?;
    dst.pragma_update(None, "foreign_keys", "ON")?;
    // The accounts and devices exist before any push.
    for table in ["accounts", "account_grids", "devices"] {
        let cols = columns(&src, table)?;
        copy_rows(&src, &dst, table, &cols)?;
    }
    type OpRow = (i64, String, String, Option<String>, String);
    let ops: Vec<OpRow> = src
        .prepare("SELECT seq, id, case_id, device_id, body FROM ops ORDER BY seq")?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    type CaseRow = (String, Option<String>, String, String, String, i64);
    let cases: Vec<CaseRow> = src
        .prepare("SELECT id, grid_id, reported_by, status, state, updated_at FROM cases")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let scopes: Vec<(String, String)> = src
        .prepare("SELECT case_id, unit_id FROM case_scopes")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    type OutcomeRow = (String, String, String, Option<i64>, i64);
    let outcomes: Vec<OutcomeRow> = src
        .prepare("SELECT op_id, device_id, status, server_seq, decided_at FROM push_outcomes")?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let rows = (ops.len() + cases.len() + scopes.len() + outcomes.len()) as u64;

    let started = Instant::now();
    let tx = dst.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut ins = tx.prepare(
            "INSERT INTO cases (id, grid_id, reported_by, status, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for c in &cases {
            ins.execute(rusqlite::params![c.0, c.1, c.2, c.3, c.4, c.5])?;
        }
        let mut ins = tx.prepare("INSERT INTO case_scopes (case_id, unit_id) VALUES (?1, ?2)")?;
        for s in &scopes {
            ins.execute(rusqlite::params![s.0, s.1])?;
        }
        let mut ins = tx.prepare(
            "INSERT INTO ops (seq, id, case_id, device_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for o in &ops {
            ins.execute(rusqlite::params![o.0, o.1, o.2, o.3, o.4])?;
        }
        let mut ins = tx.prepare(
            "INSERT INTO push_outcomes (op_id, device_id, status, server_seq, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for o in &outcomes {
            ins.execute(rusqlite::params![o.0, o.1, o.2, o.3, o.4])?;
        }
    }
    tx.commit()?;
    Ok((started.elapsed(), rows))
}

fn columns(conn: &rusqlite::Connection, table: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

fn copy_rows(
    src: &rusqlite::Connection,
    dst: &rusqlite::Connection,
    table: &str,
    cols: &[String],
) -> Result<()> {
    let list = cols.join(", ");
    let marks = (1..=cols.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut read = src.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut write = dst.prepare(&format!("INSERT INTO {table} ({list}) VALUES ({marks})"))?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let values: Vec<rusqlite::types::Value> = (0..cols.len())
            .map(|i| r.get(i))
            .collect::<Result<_, _>>()?;
        write.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}
