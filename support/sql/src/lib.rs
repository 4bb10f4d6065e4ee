//! What Gridcase's two SQLite stores — the terminal's (`gridcase-core`'s
//! `store`) and the server's SQLite backend (`gridcase-server`'s
//! `store::sqlite`) — would otherwise each write for themselves, in the style
//! of Mozilla application-services' `components/support/sql`
//! (`open_database.rs`):
//!
//! - [`open_connection`]: a connection with the durability settings every
//!   Gridcase database runs with (WAL, `synchronous = FULL`, foreign keys, a
//!   busy timeout);
//! - [`Migration`] and [`migrate`]: numbered SQL files run once each, in order,
//!   with `user_version` recording how far a database has come;
//! - [`Readers`]: the pool of read connections beside the one writer;
//! - [`testing`]: the "upgraded equals fresh" check every migration list
//!   must pass ([`testing::MigratedDatabaseFile`]).
//!
//! It depends on rusqlite only: no logging, no async runtime; callers log
//! what [`migrate`] reports and wrap the writer in the mutex they need.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub mod testing;

/// How long a connection waits for another writer before giving up busy.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Creates the file if missing; WAL and `synchronous = FULL` are set.
    ReadWrite,
    /// Never writes (the file's WAL mode is its own; sync settings do not
    /// apply to a reader).
    ReadOnly,
}

/// Opens `path` with the settings every Gridcase database runs with:
///
/// - WAL: readers never block the writer, nor the writer readers;
/// - `synchronous = FULL`: a commit that returned survives a power cut (an op
///   acknowledged to a terminal, a case the grid leader saved);
/// - `foreign_keys = ON`, per connection (SQLite's default is off);
/// - a busy timeout, so a writer in another process (an admin command) is
///   waited for, not failed at once.
pub fn open_connection(
    path: &Path,
    access: Access,
    busy_timeout: Duration,
) -> rusqlite::Result<Connection> {
    let flags = match access {
        Access::ReadWrite => {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        }
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if access == Access::ReadWrite {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

/// Whether the connection's database is in WAL mode (it can stay in another
/// mode: an in-memory database, a file system without shared memory).
pub fn is_wal(conn: &Connection) -> rusqlite::Result<bool> {
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    Ok(mode.eq_ignore_ascii_case("wal"))
}

/// One numbered schema migration: `NNNN_name.sql`, run once. Never edit one
/// that shipped: add the next.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The file's name without `.sql`, e.g. `0003_centre`.
    pub name: &'static str,
    pub sql: &'static str,
}

/// Why a database could not be brought up to date.
#[derive(Debug)]
pub enum MigrationError {
    /// A newer program wrote this database: this one must not touch it.
    TooNew {
        found: i64,
        known: i64,
    },
    Sqlite(rusqlite::Error),
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationError::TooNew { found, known } => write!(
                f,
                "the database has schema version {found}, newer than this program knows ({known}); upgrade the program"
            ),
            MigrationError::Sqlite(e) => write!(f, "migrating the database: {e}"),
        }
    }
}

impl std::error::Error for MigrationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MigrationError::Sqlite(e) => Some(e),
            MigrationError::TooNew { .. } => None,
        }
    }
}

impl From<rusqlite::Error> for MigrationError {
    fn from(e: rusqlite::Error) -> Self {
        MigrationError::Sqlite(e)
    }
}

/// The schema version `user_version` records.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database up to the last of `migrations`; answers the names of
/// those it ran (for the caller's log).
pub fn migrate(
    conn: &mut Connection,
    migrations: &[Migration],
) -> Result<Vec<&'static str>, MigrationError> {
    migrate_up_to(conn, migrations, migrations.len())
}

/// Runs the migrations after the database's version up to `target` (a count:
/// 0 is an empty database), all in one `BEGIN IMMEDIATE` transaction: two
/// processes opening a new database at once (a server and an admin command)
/// never both migrate it, and a migration that fails leaves the database as
/// it was.
pub fn migrate_up_to(
    conn: &mut Connection,
    migrations: &[Migration],
    target: usize,
) -> Result<Vec<&'static str>, MigrationError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = schema_version(&tx)?;
    let known = migrations.len() as i64;
    if current > known {
        return Err(MigrationError::TooNew {
            found: current,
            known,
        });
    }
    let mut ran = Vec::new();
    for (i, m) in migrations
        .iter()
        .enumerate()
        .take(target)
        .skip(current.max(0) as usize)
    {
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        ran.push(m.name);
    }
    tx.commit()?;
    Ok(ran)
}

/// The read connections beside a database's one writer: taken for one read
/// and given back, opened on demand, at most `keep` kept idle. Callers bound
/// how many are out at once if they need to (the server does, with a
/// semaphore).
pub struct Readers {
    path: PathBuf,
    access: Access,
    busy_timeout: Duration,
    keep: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: &Path, access: Access, busy_timeout: Duration, keep: usize) -> Readers {
        Readers {
            path: path.to_path_buf(),
            access,
            busy_timeout,
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An idle reader, or a new one (`on_open` sees a new one first: the
    /// terminal keeps its interrupt handle).
    pub fn take(&self, on_open: impl FnOnce(&Connection)) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = open_connection(&self.path, self.access, self.busy_timeout)?;
                on_open(&conn);
                Ok(conn)
            }
        }
    }

    /// Keeps `conn` for the next read (unless `keep` are idle already). A
    /// connection left inside a transaction (its read failed half-way) is
    /// closed instead.
    pub fn give_back(&self, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }

    /// Closes the idle readers (the ones out are closed when given back
    /// after this, if `keep` is 0).
    pub fn close_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
