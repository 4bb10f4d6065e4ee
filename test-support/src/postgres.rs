//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary
//! folder, `postgres` on 127.0.0.1 and a free port, a fresh database (with its
//! own owner role) per test so tests run in parallel on one cluster.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use gridcase_test_support::postgres::PgCluster;
//! let pg = PgCluster::shared()?; // one per test binary, stopped at exit
//! let url = pg.fresh_database("api_login")?; // postgres://api_login_1:…@127.0.0.1:PORT/api_login_1
//! // … start gridcase-server with --database-url {url} …
//! # Ok(()) }
//! ```
//!
//! **Which PostgreSQL.** `GRIDCASE_PG_BIN` (a folder with `initdb` and
//! `postgres`); else `initdb` on `PATH` (symlinks followed, so a
//! `/usr/local/bin/initdb` that points into Debian's tree works: on the
//! development machine it is a link to `/usr/lib/postgresql/15/bin/initdb`);
//! else the newest `/usr/lib/postgresql/<major>/bin`, where Debian's
//! `postgresql` package puts the server programs (off `PATH`). Version 15 or
//! newer. `scripts/install-services.sh` installs Debian's `postgresql` when
//! none is found.
//!
//! **As root**, `initdb` and `postgres` run as an unprivileged account
//! ([`crate::service::ServiceUser`]: Debian's `postgres`, or `gridcase-test`
//! made with `useradd`); the folder is handed to it.
//!
//! **Lifetime.** `postgres` is started directly (not daemonised by `pg_ctl`)
//! as this process's child with a parent-death signal, so it stops with the
//! test binary even when that is killed ([`crate::service`]). [`PgCluster::shared`]
//! stops the cluster and removes its folder at process exit; an owned
//! [`PgCluster`] does so when dropped. Folders left by a killed test binary
//! are removed by the next start.
//!
//! **Tuned for tests.** `fsync = off` and `full_page_writes = off`: what they
//! protect against is the operating system losing its page cache (a power
//! cut, a kernel crash), which no test does. `synchronous_commit` stays
//! **on**, so a committed transaction is in the kernel before `COMMIT`
//! returns and survives any process crash: killing `postgres` (see
//! [`PgCluster::crash`]) or a server instance loses nothing committed, so
//! crash and failover tests are valid on the default cluster. A benchmark, or
//! a test that wants production durability, asks for
//! `PgOptions { durable: true, .. }` (fsync and full-page writes on) on a
//! cluster of its own. Also: `jit = off` (the planner's LLVM step costs more
//! than it saves on test-sized queries), `max_connections = 300` (several
//! server instances' pools and parallel tests on one cluster), time zone
//! UTC, locale C with UTF-8, no Unix socket (TCP on loopback only),
//! SCRAM-SHA-256 passwords as a deployment would have.
//!
//! **The driver: tokio-postgres with deadpool-postgres** (not sqlx), for the
//! server and for these tests:
//! - sqlx's Postgres driver shares a lockfile with its SQLite driver, and
//!   Cargo resolves the `links = "sqlite3"` of its optional `libsqlite3-sys`
//!   even with the `sqlite` feature off (sqlx issues #2964, #3301, #3556): the
//!   workspace's `rusqlite` (terminal store, server) could then only move when
//!   sqlx moves. tokio-postgres has no such tie.
//! - The store layer writes its SQL by hand per backend (issue 11: PostgreSQL
//!   as PostgreSQL); sqlx's main draw, compile-time checked `query!`, needs a
//!   live database or committed offline metadata at build time, which the
//!   cold CI build would have to provide. Its migrator would replace a
//!   numbered-folder runner the SQLite side needs anyway.
//! - Quicker to build on 2 cores: added to a tokio + reqwest + rusqlite
//!   crate, tokio-postgres + deadpool-postgres took 120 CPU-seconds, sqlx
//!   0.8.6 (`postgres`, `runtime-tokio`, `migrate`) 206. No TLS stack at
//!   all with `NoTls` (loopback and a
//!   deployment's private network; `tokio-postgres-rustls` adds rustls on
//!   ring when a deployment needs TLS to its database); no OpenSSL.
//! - Well kept: the rust-postgres project (tokio-postgres, postgres-types,
//!   postgres-protocol), with `deadpool-postgres` the pool most axum
//!   services use; pipelining, binary COPY, `LISTEN/NOTIFY` (the grid map's
//!   cache refresh across instances) and advisory locks are plain SQL.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::service::{self, LogTail, ServiceUser};

/// The superuser `initdb` makes.
const SUPERUSER: &str = "gridcase";
const DIR_PREFIX: &str = "gridcase-pg-";
/// The oldest major version the server supports (issue 11).
pub const MIN_MAJOR: u32 = 15;

/// How a cluster is set up.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// fsync and full-page writes on, as in production (see the module docs).
    pub durable: bool,
    pub max_connections: u32,
    /// More `postgresql.conf` settings, `(name, value)`, value as written in
    /// the file (quote strings: `("work_mem", "'16MB'")`).
    pub settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            durable: false,
            max_connections: 300,
            settings: Vec::new(),
        }
    }
}

/// The PostgreSQL programs found (see the module docs).
#[derive(Debug, Clone)]
pub struct PgBin {
    pub dir: PathBuf,
    /// `postgres --version`, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
    pub version: String,
    pub major: u32,
}

impl PgBin {
    pub fn find() -> Result<PgBin> {
        let dir = Self::find_dir().ok_or_else(|| {
            anyhow!(
                "PostgreSQL's initdb and postgres were not found (GRIDCASE_PG_BIN, PATH, \
                 /usr/lib/postgresql/*/bin): run scripts/install-services.sh as root \
                 (apt-get install postgresql)"
            )
        })?;
        let out = Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .with_context(|| format!("running {}/postgres --version", dir.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major = version
            .split_whitespace()
            .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| anyhow!("cannot read the version of {version:?}"))?;
        if major < MIN_MAJOR {
            bail!(
                "{} is {version}: PostgreSQL {MIN_MAJOR} or newer is needed",
                dir.display()
            );
        }
        Ok(PgBin {
            dir,
            version,
            major,
        })
    }

    fn find_dir() -> Option<PathBuf> {
        let complete = |d: &Path| {
            service::is_executable(&d.join("initdb")) && service::is_executable(&d.join("postgres"))
        };
        if let Some(d) = std::env::var_os("GRIDCASE_PG_BIN") {
            return Some(PathBuf::from(d));
        }
        if let Some(initdb) = service::find_program("initdb", &[]) {
            if let Some(dir) = initdb.canonicalize().ok()?.parent() {
                if complete(dir) {
                    return Some(dir.to_path_buf());
                }
            }
        }
        let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                complete(&bin).then_some((major, bin))
            })
            .collect();
        debian.sort();
        debian.pop().map(|(_, d)| d)
    }
}

/// A running throwaway cluster.
pub struct PgCluster {
    bin: PgBin,
    port: u16,
    password: String,
    dir: PathBuf,
    data: PathBuf,
    tmp: Mutex<Option<tempfile::TempDir>>,
    child: Mutex<Option<Child>>,
    log: LogTail,
    user: Option<ServiceUser>,
    next_db: AtomicU32,
}

impl PgCluster {
    /// The cluster all tests of this test binary share, started on first use
    /// and stopped (its folder removed) when the binary exits.
    pub fn shared() -> Result<&'static PgCluster> {
        static SHARED: OnceLock<std::result::Result<PgCluster, String>> = OnceLock::new();
        let cluster = SHARED.get_or_init(|| {
            let started = PgCluster::start().map_err(|e| format!("{e:#}"));
            if started.is_ok() {
                service::at_exit(|| {
                    if let Some(Ok(c)) = SHARED.get() {
                        c.shut_down();
                    }
                });
            }
            started
        });
        cluster.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// A cluster of this test's own with the default options.
    pub fn start() -> Result<PgCluster> {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> Result<PgCluster> {
        let bin = service::find_or_install("postgres", PgBin::find)?;
        let user = ServiceUser::when_root()?;
        sweep_stale_dirs();
        let tmp = tempfile::Builder::new().prefix(DIR_PREFIX).tempdir()?;
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())?;
        let password = random_hex(16);
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password)?;
        let data = dir.join("data");
        if let Some(u) = &user {
            u.own(&dir)?;
        }
        let mut initdb = Command::new(bin.dir.join("initdb"));
        initdb
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--pwfile"])
            .arg(&pwfile)
            .args(["--auth-host=scram-sha-256", "--auth-local=scram-sha-256"])
            .args([
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        if let Some(u) = &user {
            initdb.uid(u.uid).gid(u.gid);
        }
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_file(&pwfile)?;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        use std::io::Write;
        let on_off = |b: bool| if b { "on" } else { "off" };
        writeln!(conf, "\n# gridcase-tests (tests/src/postgres.rs)")?;
        let mut settings: Vec<(String, String)> = [
            ("listen_addresses", "'127.0.0.1'".to_string()),
            ("unix_socket_directories", "''".to_string()),
            ("max_connections", opts.max_connections.to_string()),
            ("fsync", on_off(opts.durable).to_string()),
            ("full_page_writes", on_off(opts.durable).to_string()),
            ("synchronous_commit", "on".to_string()),
            ("jit", "off".to_string()),
            ("timezone", "'UTC'".to_string()),
            ("log_timezone", "'UTC'".to_string()),
            ("log_line_prefix", "'%m [%p] %d '".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(opts.settings.iter().cloned());
        for (k, v) in &settings {
            writeln!(conf, "{k} = {v}")?;
        }
        drop(conf);
        let mut cluster = PgCluster {
            bin,
            port: 0,
            password,
            dir,
            data,
            tmp: Mutex::new(Some(tmp)),
            child: Mutex::new(None),
            log: LogTail::default(),
            user,
            next_db: AtomicU32::new(1),
        };
        cluster.port = service::retry_on_port("postgres", |port| {
            cluster.spawn(port)?;
            Ok(port)
        })?;
        Ok(cluster)
    }

    fn spawn(&self, port: u16) -> Result<()> {
        let mut cmd = Command::new(self.bin.dir.join("postgres"));
        cmd.current_dir(&self.dir)
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SIGQUIT: immediate shutdown, what a dying test binary wants.
        let mut child = service::spawn_tied(cmd, libc::SIGQUIT, self.user.as_ref())?;
        self.log.follow(child.stdout.take().expect("piped"));
        self.log.follow(child.stderr.take().expect("piped"));
        let pid_file = self.data.join("postmaster.pid");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let ready = service::wait_until(
            "postgres",
            &mut child,
            &self.log,
            Duration::from_secs(60),
            || {
                // Line 8 of postmaster.pid is the postmaster's status (what
                // pg_ctl -w reads); "ready" once it accepts connections.
                std::fs::read_to_string(&pid_file)
                    .is_ok_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
                    && service::is_listening(addr)
            },
        );
        if let Err(e) = ready {
            service::stop_child(&mut child, libc::SIGQUIT, Duration::from_secs(5));
            return Err(e);
        }
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    pub fn bin(&self) -> &PgBin {
        &self.bin
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// What the cluster logged lately (for a failing test's message).
    pub fn log_tail(&self) -> String {
        self.log.tail()
    }

    /// The superuser's URL for database `db` (for a test that must see
    /// behind the server's back, e.g. `pg_terminate_backend`); the server
    /// itself gets a database owner's URL from [`Self::create_database`].
    pub fn superuser_url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Creates database `name` owned by a new login role of the same name
    /// (not a superuser, as a deployment's server would be) and returns its
    /// URL, `postgres://NAME:PASSWORD@127.0.0.1:PORT/NAME`. `name`: lower-case
    /// letters, digits and `_`, starting with a letter or `_`, at most 63
    /// bytes. Fails if it exists.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            bail!(
                "database name {name:?}: use a-z, 0-9 and _, at most 63, not starting with a digit"
            );
        }
        let password = random_hex(12);
        // Identifiers are checked above; the password is hex.
        let ddl = [
            format!("CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""),
        ];
        let admin = self.superuser_url("postgres");
        service::block_on_own_runtime(async move {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .context("connecting to the test cluster as its superuser")?;
            let conn = tokio::spawn(conn);
            for stmt in &ddl {
                client
                    .batch_execute(stmt)
                    .await
                    .with_context(|| format!("{stmt:?}"))?;
            }
            drop(client);
            let _ = conn.await;
            Ok(())
        })?;
        Ok(format!(
            "postgres://{name}:{password}@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// [`Self::create_database`] with a name made unique in this cluster:
    /// `{prefix}_{n}` (the prefix is cut to fit).
    pub fn fresh_database(&self, prefix: &str) -> Result<String> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("_{n}");
        let mut prefix: String = prefix
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if prefix.is_empty() || prefix.starts_with(|c: char| c.is_ascii_digit()) {
            prefix.insert(0, 'd');
        }
        prefix.truncate(63 - suffix.len());
        self.create_database(&format!("{prefix}{suffix}"))
    }

    /// Stops the cluster as a crash would (immediate shutdown: no checkpoint;
    /// the next start replays the WAL). Everything committed survives (see the
    /// module docs). [`Self::restart`] brings it back on the same port. On the
    /// shared cluster this stops it for every test of the binary: take a
    /// cluster of your own.
    pub fn crash(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            service::stop_child(&mut child, libc::SIGQUIT, Duration::from_secs(10));
        }
    }

    /// A clean stop (fast shutdown: open sessions are ended).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            service::stop_child(&mut child, libc::SIGINT, Duration::from_secs(20));
        }
    }

    /// Starts the stopped or crashed cluster again on its port.
    pub fn restart(&self) -> Result<()> {
        self.stop();
        self.spawn(self.port)
    }

    /// Whether the postmaster is running.
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn shut_down(&self) {
        self.stop();
        if let Some(tmp) = self.tmp.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tmp.close();
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Removes the folders of clusters whose test binary died without cleaning up
/// (its `postgres` died with it: see the module docs).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let is_ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let owner = std::fs::read_to_string(e.path().join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok());
        // SAFETY: kill with signal 0 only checks that the process exists.
        let dead = owner.is_some_and(|pid| {
            let gone = unsafe { libc::kill(pid, 0) } != 0;
            gone && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        });
        if dead {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `bytes` random bytes as hex (passwords of throwaway clusters).
fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}
