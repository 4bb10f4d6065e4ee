//! The real `gridcase-server` binary, as the tests and benchmarks run it: on
//! 127.0.0.1 port 0 with a temporary data folder, its address read from its
//! log, admin commands run as separate processes against the same folder, and
//! stopped with SIGTERM. Its database can also be read directly (read-only).
//!
//! The binary is found, in order: `GRIDCASE_SERVER_BIN`; next to the running
//! executable (the benchmark binary lives in `target/<profile>/`); or, for a
//! test binary in `target/<profile>/deps/`, in `target/<profile>/`, built
//! first with `cargo build -p gridcase-server` if it is missing or older than
//! the server's or the core's sources (so `cargo test -p gridcase-tests`
//! alone works; `cargo test --workspace` builds it anyway).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use gridcase_core::ids::CaseId;
use gridcase_core::op::Op;
use gridcase_core::Case;
use serde::Deserialize;

const BIN_NAME: &str = "gridcase-server";
const LOG_LINES_KEPT: usize = 200;

/// The grid map every test server starts with.
pub fn fixture_grids() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grids/liaoyuan-sample.geojson")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// The server binary to run (see the module docs).
pub fn server_bin() -> Result<PathBuf> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find_server_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_server_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GRIDCASE_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the executable has a folder")?;
    let file = format!("{BIN_NAME}{}", std::env::consts::EXE_SUFFIX);
    if dir.file_name().is_some_and(|n| n == "deps") {
        // A test binary: target/<profile>/deps/<test>-<hash>.
        let profile_dir = dir.parent().context("deps has a parent")?;
        let bin = profile_dir.join(&file);
        if !bin.is_file() || is_stale(&bin) {
            build_server(profile_dir, &bin)?;
        }
        return Ok(bin);
    }
    let bin = dir.join(&file);
    if !bin.is_file() {
        bail!(
            "{} not found: build it (cargo build --release -p gridcase-server) or set GRIDCASE_SERVER_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// Whether a source the server is built from changed after the binary.
fn is_stale(bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let root = workspace_root();
    let newest = [
        "sync-server/src",
        "sync-server/migrations",
        "sync-server/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
    ]
    .iter()
    .filter_map(|p| newest_mtime(&root.join(p)))
    .max();
    newest.is_some_and(|t| t > built)
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

fn build_server(profile_dir: &Path, bin: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let target_dir = profile_dir
        .parent()
        .context("the profile folder has a parent")?;
    eprintln!("building {BIN_NAME} ({profile}) for the tests…");
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "gridcase-server", "--bin", BIN_NAME])
        .args(["--profile", &profile])
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .context("running cargo build -p gridcase-server")?;
    if !out.status.success() {
        if bin.is_file() {
            eprintln!(
                "warning: building {BIN_NAME} failed; using the existing binary:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Ok(());
        }
        bail!(
            "cargo build -p gridcase-server failed (or set GRIDCASE_SERVER_BIN):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !bin.is_file() {
        bail!("cargo built {BIN_NAME} but {} is not there", bin.display());
    }
    Ok(())
}

/// Runs `gridcase-server --data-dir DIR ARGS…` to the end; its stdout.
pub fn admin_in(data_dir: &Path, args: &[&str]) -> Result<String> {
    admin_in_with_env(data_dir, &[], args)
}

/// Like [`admin_in`], with extra environment variables (a staff password).
pub fn admin_in_with_env(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<String> {
    let out = Command::new(server_bin()?)
        .env("GRIDCASE_DATA_DIR", data_dir)
        .env("GRIDCASE_LOG", "warn")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {BIN_NAME} {args:?}"))?;
    if !out.status.success() {
        bail!(
            "{BIN_NAME} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A grid leader made with `admin create-leader`.
#[derive(Debug, Clone, Deserialize)]
pub struct Leader {
    pub account_id: String,
    pub name: String,
    pub grid_ids: Vec<String>,
    pub code: String,
}

/// A row of `admin list-cases --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedCase {
    pub case_id: String,
    pub status: String,
    pub grid_id: Option<String>,
    pub reported_by: String,
    pub title: String,
    /// The department's id (dispatch ops name departments by id).
    pub department: Option<String>,
    #[serde(default)]
    pub department_name: Option<String>,
    pub deadline: Option<i64>,
    pub updated_at: i64,
}

/// An op as the server stored it.
#[derive(Debug, Clone)]
pub struct ServerOp {
    pub seq: u64,
    pub device_id: Option<String>,
    pub op: Op,
}

/// What the server's database holds, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct ServerSnapshot {
    pub cases: BTreeMap<CaseId, ServerCase>,
    /// Every op, in server order.
    pub ops: Vec<ServerOp>,
    /// account id → grid ids.
    pub account_grids: BTreeMap<String, Vec<String>>,
    /// device id → account id.
    pub devices: BTreeMap<String, String>,
    /// op id → (device id, status, server seq) of `push_outcomes`.
    pub outcomes: BTreeMap<String, (String, String, Option<u64>)>,
}

#[derive(Debug, Clone)]
pub struct ServerCase {
    pub grid_id: Option<String>,
    pub reported_by: String,
    pub status: String,
    pub state: Case,
}

impl ServerSnapshot {
    /// Reads the database at `path` (read-only; the server may be running).
    pub fn read(path: &Path) -> Result<ServerSnapshot> {
        let mut conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let tx = conn.transaction()?;
        let mut snap = ServerSnapshot::default();
        {
            let mut stmt =
                tx.prepare("SELECT id, grid_id, reported_by, status, state FROM cases")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let state: String = r.get(4)?;
                snap.cases.insert(
                    CaseId::parse(&id).map_err(|e| anyhow!("case id {id}: {e}"))?,
                    ServerCase {
                        grid_id: r.get(1)?,
                        reported_by: r.get(2)?,
                        status: r.get(3)?,
                        state: serde_json::from_str(&state)?,
                    },
                );
            }
            let mut stmt = tx.prepare("SELECT seq, device_id, body FROM ops ORDER BY seq")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let body: String = r.get(2)?;
                snap.ops.push(ServerOp {
                    seq: r.get::<_, i64>(0)? as u64,
                    device_id: r.get(1)?,
                    op: serde_json::from_str(&body)?,
                });
            }
            let mut stmt = tx.prepare("SELECT account_id, grid_id FROM account_grids")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                snap.account_grids
                    .entry(r.get(0)?)
                    .or_default()
                    .push(r.get(1)?);
            }
            let mut stmt = tx.prepare("SELECT id, account_id FROM devices")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                snap.devices.insert(r.get(0)?, r.get(1)?);
            }
            let mut stmt =
                tx.prepare("SELECT op_id, device_id, status, server_seq FROM push_outcomes")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                snap.outcomes.insert(
                    r.get(0)?,
                    (
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                    ),
                );
            }
        }
        tx.commit()?;
        Ok(snap)
    }

    /// Whether `account` sees `case`: it reported it, or answers for its grid
    /// and the case is no longer a draft (a draft is its grid leader's own).
    pub fn visible_to(&self, account: &str, case: &ServerCase) -> bool {
        case.reported_by == account
            || case.status != "draft"
                && case.grid_id.as_ref().is_some_and(|g| {
                    self.account_grids
                        .get(account)
                        .is_some_and(|grids| grids.contains(g))
                })
    }

    /// The ops of one case, in server order.
    pub fn ops_of(&self, case: &CaseId) -> Vec<&ServerOp> {
        self.ops.iter().filter(|o| o.op.case_id == *case).collect()
    }
}

/// A running `gridcase-server serve`.
pub struct ServerProcess {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// A server on a new temporary data folder with the fixture grid map.
    pub fn start() -> Result<ServerProcess> {
        let tmp = tempfile::Builder::new()
            .prefix("gridcase-server-")
            .tempdir()?;
        let data_dir = tmp.path().join("data");
        let grids = fixture_grids();
        admin_in(
            &data_dir,
            &["admin", "import-grids", path_str(&grids)?, "--json"],
        )?;
        let mut server = Self::start_in(&data_dir)?;
        server._tmp = Some(tmp);
        Ok(server)
    }

    /// A server on an existing data folder (kept when the server stops).
    pub fn start_in(data_dir: &Path) -> Result<ServerProcess> {
        Self::start_in_with_env(data_dir, &[])
    }

    /// Like [`Self::start_in`], with extra environment variables (an armed
    /// abort point, `gridcase_core::failpoint::ENV`).
    pub fn start_in_with_env(data_dir: &Path, env: &[(&str, &str)]) -> Result<ServerProcess> {
        let mut child = Command::new(server_bin()?)
            .env("GRIDCASE_DATA_DIR", data_dir)
            .envs(env.iter().copied())
            .env("GRIDCASE_LOG", "info")
            // The tests chase by hand (`admin run-deadlines`): a scheduler
            // running on its own clock would add ops they do not expect.
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--deadline-period-secs",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting gridcase-server")?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log: Arc<Mutex<VecDeque<String>>> = Default::default();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let keep = log.clone();
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("addr=").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        sent = tx.send(addr.to_string()).is_ok();
                    }
                }
                let mut kept = keep.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == LOG_LINES_KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let started = Instant::now();
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => break addr,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("gridcase-server exited before listening:\n{}", tail(&log));
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!("gridcase-server exited ({status}):\n{}", tail(&log));
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("gridcase-server did not log its address:\n{}", tail(&log));
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("the logged address {addr:?}"))?;
        Ok(ServerProcess {
            addr,
            url: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            child: Some(child),
            log,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server process's id (for its CPU time and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("gridcase.db")
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// An admin command against this server's data folder.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        admin_in(&self.data_dir, args)
    }

    pub fn admin_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Result<String> {
        admin_in_with_env(&self.data_dir, env, args)
    }

    pub fn create_leader(&self, name: &str, grids: &[&str]) -> Result<Leader> {
        let mut args = vec!["admin", "create-leader", "--name", name, "--json"];
        for g in grids {
            args.extend(["--grid", g]);
        }
        Ok(serde_json::from_str(&self.admin(&args)?)?)
    }

    /// The id of the department named `name`, created (serving everywhere)
    /// if the centre has none of that name yet: a dispatch must name one
    /// that exists.
    pub fn department_id(&self, name: &str) -> Result<String> {
        let listed: Vec<serde_json::Value> =
            serde_json::from_str(&self.admin(&["admin", "list-departments", "--json"])?)?;
        if let Some(id) = listed
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["id"].as_str())
        {
            return Ok(id.to_string());
        }
        let created: serde_json::Value = serde_json::from_str(&self.admin(&[
            "admin",
            "create-department",
            "--name",
            name,
            "--json",
        ])?)?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("create-department printed no id: {created}"))
    }

    /// 派单 to the department named `department` (created if need be).
    pub fn dispatch(&self, case: &CaseId, department: &str, hours: u32) -> Result<()> {
        let department = self.department_id(department)?;
        let department = department.as_str();
        let (case, hours) = (case.to_string(), hours.to_string());
        self.admin(&[
            "admin",
            "dispatch",
            &case,
            "--department",
            department,
            "--deadline-hours",
            &hours,
        ])
        .map(drop)
    }

    pub fn chase(&self, case: &CaseId, note: &str) -> Result<()> {
        self.admin(&["admin", "chase", &case.to_string(), "--note", note])
            .map(drop)
    }

    pub fn resolve(&self, case: &CaseId, note: &str) -> Result<()> {
        self.admin(&["admin", "resolve", &case.to_string(), "--note", note])
            .map(drop)
    }

    pub fn list_cases(&self) -> Result<Vec<ListedCase>> {
        Ok(serde_json::from_str(&self.admin(&[
            "admin",
            "list-cases",
            "--json",
        ])?)?)
    }

    pub fn snapshot(&self) -> Result<ServerSnapshot> {
        ServerSnapshot::read(&self.db_path())
    }

    /// The complete photo file the server keeps for `sha256`, if any.
    pub fn photo_file(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.data_dir.join("photos").join(&sha256[..2]).join(sha256);
        p.is_file().then_some(p)
    }

    /// Partial uploads left in `uploads/`.
    pub fn partial_uploads(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data_dir.join("uploads"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// Sends SIGTERM and returns at once (the server finishes what is in
    /// flight, then exits: see [`Self::wait_exit`]).
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Waits up to `timeout` for the process to end by itself (an abort
    /// point, a shutdown); its status, or `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().context("the server was stopped")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(Some(status));
            }
            if started.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits (up to 10 s) for a clean exit.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "gridcase-server did not stop on SIGTERM:\n{}",
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(log: &Mutex<VecDeque<String>>) -> String {
    let kept = log.lock().unwrap_or_else(|e| e.into_inner());
    kept.iter().cloned().collect::<Vec<_>>().join("\n")
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", p.display()))
}
