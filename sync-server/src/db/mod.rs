//! The SQLite database: one writer connection behind an async mutex, a small
//! pool of read connections, and all work on the blocking pool so the async
//! runtime never waits on SQLite. Every write is one `BEGIN IMMEDIATE`
//! transaction: it commits whole or not at all.

pub(crate) mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::error::AppError;

pub use migrations::MigrationError;

/// How long a connection waits for another writer (say an admin command)
/// before giving up with `unavailable`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection with the server's settings: WAL (readers never block the
/// writer), foreign keys on, full sync (an op acknowledged to a device survives
/// a power cut), and a busy timeout.
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite did not switch to WAL");
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Opens (creating if needed) and migrates the database at `path`.
pub fn open_migrated(path: &Path) -> Result<Connection, MigrationError> {
    let mut conn = open_connection(path)?;
    migrations::run(&mut conn)?;
    Ok(conn)
}

struct Inner {
    path: PathBuf,
    writer: Arc<tokio::sync::Mutex<Connection>>,
    idle_readers: Mutex<Vec<Connection>>,
    read_permits: Arc<Semaphore>,
}

/// The server's handle on the database. Cloning is cheap.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl Db {
    pub fn open(path: &Path, read_connections: usize) -> Result<Db, MigrationError> {
        let writer = open_migrated(path)?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Arc::new(tokio::sync::Mutex::new(writer)),
                idle_readers: Mutex::new(Vec::new()),
                read_permits: Arc::new(Semaphore::new(read_connections.max(1))),
            }),
        })
    }

    /// Runs `f` in one write transaction on the blocking pool; commits if it
    /// returns `Ok`, rolls back otherwise (and on panic).
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, AppError> + Send + 'static,
    {
        // Waiting for the writer happens here, not on a blocking thread.
        let mut conn = self.inner.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_BEFORE_COMMIT);
            tx.commit()?;
            gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_AFTER_COMMIT);
            Ok(out)
        })
        .await?
    }

    /// Runs `f` in one read transaction (one consistent snapshot) on a pooled
    /// read connection, on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, AppError> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::unavailable("the server is shutting down"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = inner.idle_readers.lock().ok().and_then(|mut v| v.pop());
            let mut conn = match idle {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let out = (|| {
                let tx = conn.transaction()?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            if let Ok(mut idle) = inner.idle_readers.lock() {
                idle.push(conn);
            }
            out
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability settings on the server's own connections (per
    /// connection: a fresh one would not show them): WAL, a full sync at each
    /// commit (an op acknowledged to a terminal survives a power cut), and
    /// foreign keys, on the writer and the readers alike.
    #[tokio::test]
    async fn the_database_runs_in_wal_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("gridcase.db"), 2).unwrap();
        let read = |tx: &Transaction<'_>| -> Result<(String, i64, bool), AppError> {
            Ok((
                tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                tx.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
            ))
        };
        let writer = db.write(move |tx| read(tx)).await.unwrap();
        let reader = db.read(move |tx| read(tx)).await.unwrap();
        for (who, (mode, sync, fk)) in [("writer", writer), ("reader", reader)] {
            assert_eq!(mode, "wal", "{who}");
            assert_eq!(sync, 2, "{who}: synchronous=FULL");
            assert!(fk, "{who}: foreign_keys=ON");
        }
    }
}
