//! The SQLite backend, the embedded default: one writer connection behind an
//! async mutex (SQLite runs one write transaction at a time anyway; waiting
//! for it happens on the async side, not on a blocking thread), a bounded
//! pool of read connections, all SQLite work on the blocking pool so the
//! runtime never waits on it. WAL, `foreign_keys = ON`, `synchronous = FULL`
//! on every connection ([`gridcase_sql::open_connection`]). Every write is one
//! `BEGIN IMMEDIATE` transaction: it commits whole or not at all. The old
//! path's [`crate::db::Db`] runs on the same writer.
//!
//! A store closure's future is driven with `futures::executor::block_on` on
//! the blocking thread that holds the connection: every SQLite arm of a
//! [`super::Tx`] method runs its statement at once, so the future completes
//! without ever pending. Closures must only await store methods.

pub(crate) mod desk;
pub(crate) mod devices;
pub(crate) mod grids;
pub(crate) mod ledger;
pub(crate) mod migrations;
pub(crate) mod names;
pub(crate) mod rating_links;
pub(crate) mod staff;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gridcase_sql::{Access, Readers};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::StoreError;

/// How long a connection waits for another writer (an admin command in
/// another process) before giving up with `unavailable`.
pub const BUSY_TIMEOUT: Duration = gridcase_sql::DEFAULT_BUSY_TIMEOUT;

/// Opens a connection with the server's settings.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = gridcase_sql::open_connection(path, Access::ReadWrite, BUSY_TIMEOUT)?;
    if !gridcase_sql::is_wal(&conn)? {
        tracing::warn!(path = %path.display(), "SQLite did not switch to WAL");
    }
    Ok(conn)
}

/// Opens (creating if needed) and migrates the database at `path`.
pub fn open_migrated(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = open_connection(path)?;
    migrations::run(&mut conn)?;
    Ok(conn)
}

struct Inner {
    path: PathBuf,
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Readers,
    read_permits: Arc<Semaphore>,
}

/// The SQLite backend's handle. Cloning is cheap.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`, with
    /// at most `read_connections` reads at once.
    pub fn open(path: &Path, read_connections: usize) -> Result<SqliteStore, StoreError> {
        let writer = open_migrated(path)?;
        let read_connections = read_connections.max(1);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Arc::new(tokio::sync::Mutex::new(writer)),
                // Readers open read-write so each has the same settings as the
                // writer; they only ever run read transactions.
                readers: Readers::new(path, Access::ReadWrite, BUSY_TIMEOUT, read_connections),
                read_permits: Arc::new(Semaphore::new(read_connections)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer, on the
    /// blocking pool; commits if it returns `Ok`, rolls back otherwise (and on
    /// panic). What [`super::Store::write`] and the old path's
    /// [`crate::db::Db::write`] both run on: one writer.
    pub(crate) async fn write_conn<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        // Waiting for the writer happens here, not on a blocking thread.
        let mut conn = self.inner.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let mut tx = Immediate::begin(&mut conn).map_err(E::from)?;
            let out = f(tx.conn())?;
            gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_BEFORE_COMMIT);
            tx.commit().map_err(E::from)?;
            gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_AFTER_COMMIT);
            Ok(out)
        })
        .await
        .map_err(|e| E::from(e.into()))?
    }

    /// Runs `f` in one read transaction (one consistent snapshot) on a pooled
    /// read connection, on the blocking pool.
    pub(crate) async fn read_conn<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                E::from(StoreError::Unavailable(
                    "the server is shutting down".into(),
                ))
            })?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = inner.readers.take(|_| {}).map_err(|e| E::from(e.into()))?;
            let out = (|| {
                conn.execute_batch("BEGIN").map_err(|e| E::from(e.into()))?;
                let out = f(&mut conn);
                // A read changes nothing: ending it either way is the same,
                // and a failed read must not keep its snapshot.
                let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
                conn.execute_batch(end).map_err(|e| E::from(e.into()))?;
                out
            })();
            inner.readers.give_back(conn);
            out
        })
        .await
        .map_err(|e| E::from(e.into()))?
    }
}

/// `BEGIN IMMEDIATE` on a connection held by `&mut` (so a [`super::Tx`] over
/// it is `Send`), rolled back when dropped uncommitted: on an error, and on
/// a panic in the closure, the writer is never left inside a transaction.
struct Immediate<'c> {
    conn: &'c mut Connection,
    done: bool,
}

impl<'c> Immediate<'c> {
    fn begin(conn: &'c mut Connection) -> Result<Immediate<'c>, StoreError> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Immediate { conn, done: false })
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn
    }

    fn commit(mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if !self.done && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back a failed write");
            }
        }
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
        let store = SqliteStore::open(&dir.path().join("gridcase.db"), 2).unwrap();
        let read = |c: &mut Connection| -> Result<(String, i64, bool), StoreError> {
            Ok((
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                c.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
            ))
        };
        let writer = store.write_conn(read).await.unwrap();
        let reader = store.read_conn(read).await.unwrap();
        for (who, (mode, sync, fk)) in [("writer", writer), ("reader", reader)] {
            assert_eq!(mode, "wal", "{who}");
            assert_eq!(sync, 2, "{who}: synchronous=FULL");
            assert!(fk, "{who}: foreign_keys=ON");
        }
    }

    /// A write that panics half-way leaves the writer usable and nothing of
    /// it behind.
    #[tokio::test]
    async fn a_panicking_write_rolls_back_and_frees_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gridcase.db"), 2).unwrap();
        let panicked = store
            .write_conn(|c: &mut Connection| -> Result<(), StoreError> {
                c.execute(
                    "UPDATE server_history SET history_id = 'x' WHERE id = 1",
                    [],
                )?;
                panic!("a bug in the middle of a write");
            })
            .await;
        assert!(panicked.is_err());
        let history: String = store
            .write_conn(|c: &mut Connection| -> Result<String, StoreError> {
                Ok(c.query_row("SELECT history_id FROM server_history", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_ne!(history, "x");
    }
}
