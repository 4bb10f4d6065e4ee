//! The old path, for the domains not yet moved behind the store (issue 11):
//! the centre's staff, sessions, queue, actions, rating links and scheduler;
//! Open311; figures and exports. Their SQL still runs on a connection here.
//! A thin shim over the store's SQLite backend: [`Db::write`] takes the same
//! writer as [`crate::store::Store::write`] (one writer, never two), reads
//! use the same pool. On PostgreSQL there is no connection to give: every
//! call answers `unavailable` and logs where it was called from.
//!
//! When such code calls a domain already on the store (the ledger, the grid
//! map, names, departments, the desk), it goes through the bridges below on
//! the connection it holds: [`tx`] / [`read_tx`] make a store transaction of
//! it and [`now`] runs the store's future at once (SQLite never waits). A
//! domain that moves deletes its uses of this module.

use std::future::Future;
use std::panic::Location;
use std::path::Path;

use gridcase_core::grid::GridMap;
use rusqlite::Connection;

use crate::error::AppError;
use crate::grids::GridCache;
use crate::names::Departments;
use crate::store::sqlite::SqliteStore;
use crate::store::{ReadTx, Store, StoreError, Tx};

pub use crate::store::sqlite::{open_connection, BUSY_TIMEOUT};

#[cfg(test)]
pub(crate) use crate::store::sqlite::migrations;

/// Opens (creating if needed) and migrates the SQLite database at `path`.
pub fn open_migrated(path: &Path) -> Result<Connection, StoreError> {
    crate::store::sqlite::open_migrated(path)
}

/// The old path's handle on the database. Cloning is cheap.
#[derive(Clone)]
pub struct Db {
    sqlite: Option<SqliteStore>,
}

impl Db {
    /// The old path over `store`: its SQLite backend, or nothing on PostgreSQL.
    pub fn over(store: &Store) -> Db {
        Db {
            sqlite: store.sqlite().cloned(),
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the store's writer,
    /// on the blocking pool; commits if it returns `Ok`, rolls back otherwise
    /// (and on panic).
    #[track_caller]
    pub fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T, AppError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AppError> + Send + 'static,
    {
        let at = Location::caller();
        let sqlite = self.sqlite.clone();
        async move {
            match sqlite {
                Some(s) => s.write_conn(f).await,
                None => Err(not_moved(at)),
            }
        }
    }

    /// Runs `f` in one read transaction (one consistent snapshot) on a pooled
    /// read connection, on the blocking pool.
    #[track_caller]
    pub fn read<T, F>(&self, f: F) -> impl Future<Output = Result<T, AppError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AppError> + Send + 'static,
    {
        let at = Location::caller();
        let sqlite = self.sqlite.clone();
        async move {
            match sqlite {
                Some(s) => s.read_conn(f).await,
                None => Err(not_moved(at)),
            }
        }
    }
}

/// What a domain not yet on the store answers on PostgreSQL.
fn not_moved(at: &'static Location<'static>) -> AppError {
    tracing::warn!(
        at = %format_args!("{}:{}", at.file(), at.line()),
        "this part of the server does not run on PostgreSQL yet (issue 11); answering unavailable"
    );
    AppError::unavailable("this part of the server does not run on PostgreSQL yet")
}

/// A store write transaction over the old path's connection (inside its
/// `BEGIN IMMEDIATE`).
pub(crate) fn tx(conn: &mut Connection) -> Tx<'_> {
    Tx::on_sqlite(conn)
}

/// A store read transaction over the old path's connection.
pub(crate) fn read_tx(conn: &mut Connection) -> ReadTx<'_> {
    ReadTx::on_sqlite(conn)
}

/// Runs a store future on the old path's connection at once: its SQLite arms
/// never wait.
pub(crate) fn now<F: Future>(fut: F) -> F::Output {
    futures_executor::block_on(fut)
}

/// The grid map, on the old path's connection.
pub(crate) fn grid_map(grids: &GridCache, conn: &mut Connection) -> Result<GridMap, StoreError> {
    now(grids.current(&mut read_tx(conn)))
}

/// Every department's name, on the old path's connection.
pub(crate) fn departments(conn: &mut Connection) -> Result<Departments, StoreError> {
    now(Departments::load(&mut read_tx(conn)))
}
