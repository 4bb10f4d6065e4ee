//! The server's store: every SQL statement of the domains moved so far lives
//! here, behind typed methods (issue 11; the design is `STORE-DESIGN.md`, the
//! checklist for moving a domain `store/README.md`). Handlers, the admin
//! commands and the domain logic call [`Store::write`] / [`Store::read`] with a
//! closure that gets a typed DAO ([`Tx`] / [`ReadTx`]), never a connection or
//! a SQL string:
//!
//! ```ignore
//! let results = state.store.write(move |tx| {
//!     let op = op.clone();
//!     Box::pin(async move {
//!         let prev = tx.load_case(&op.case_id).await?;
//!         // … the rules, written once for both backends …
//!         tx.append_op(&op, Some(device)).await
//!     })
//! }).await?;
//! ```
//!
//! The closure may run more than once on PostgreSQL (a transaction that lost a
//! race runs again from scratch), so it clones what it moves into its future.
//!
//! - `store/<domain>.rs`: the typed rows a domain exchanges and its `Tx` /
//!   `ReadTx` methods, each matching on the backend (no SQL);
//! - [`sqlite`]: the embedded default (one writer, pooled readers), its
//!   migrations and one file of SQL per domain;
//! - [`postgres`]: PostgreSQL (a pool, transactions retried on serialization
//!   failures and lost races, the commit horizon), its migrations and one
//!   file of SQL per domain.
//!
//! Domains on the store: the ledger (ops, cases, scopes, departures, push
//! answers, numbering, pull), devices/accounts/enrolment codes, grids, names,
//! departments and the desk row every op keeps in step. The others still run
//! on the old path ([`crate::db::Db`], SQLite only), which shares this
//! store's SQLite writer.

pub mod departments;
pub mod desk;
pub mod devices;
mod error;
pub mod grids;
pub mod ledger;
pub mod names;
pub mod postgres;
pub mod rating_links;
pub mod sqlite;
pub mod staff;
mod tx;

#[cfg(test)]
mod conformance;

use std::path::PathBuf;

pub use error::StoreError;
pub use tx::{Numbering, ReadTx, Seq, Tx, TxFuture};

/// Where the server keeps its data.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded default: one SQLite file, at most `read_connections`
    /// reads at once beside its one writer.
    Sqlite {
        path: PathBuf,
        read_connections: usize,
    },
    /// A PostgreSQL database, `postgres://user:password@host:port/db`, through
    /// a pool of at most `max_connections`.
    Postgres { url: String, max_connections: usize },
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// The backend a [`Store`] runs on.
#[derive(Clone)]
pub enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// The server's handle on its database. Cloning is cheap.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens the database at `location`, creating and migrating it if needed.
    pub async fn open(location: &Location) -> Result<Store, StoreError> {
        let backend = match location {
            Location::Sqlite {
                path,
                read_connections,
            } => {
                let (path, n) = (path.clone(), *read_connections);
                // Opening and migrating a file is blocking work.
                Backend::Sqlite(
                    tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path, n))
                        .await??,
                )
            }
            Location::Postgres {
                url,
                max_connections,
            } => Backend::Postgres(postgres::PgStore::open(url, *max_connections).await?),
        };
        Ok(Store { backend })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The SQLite backend, for the old path's shim ([`crate::db::Db`]) that
    /// must share its writer. `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&sqlite::SqliteStore> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `f` in one write transaction and commits if it returns `Ok`
    /// (everything it wrote, or nothing). Before committing, what the
    /// transaction numbered is given its final numbers ([`Tx::number`]). On
    /// PostgreSQL `f` runs again, from scratch, when the transaction lost a
    /// race (see [`postgres`]).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t, 'c> FnMut(&'t mut Tx<'c>) -> TxFuture<'t, Result<T, E>> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(s) => {
                let mut f = f;
                s.write_conn(move |conn| {
                    let mut tx = Tx::on_sqlite(conn);
                    // SQLite's arms never wait: this completes in one poll.
                    futures_executor::block_on(f(&mut tx))
                })
                .await
            }
            Backend::Postgres(p) => p.write(f).await,
        }
    }

    /// Runs `f` in one read transaction: one consistent snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t, 'c> FnMut(&'t mut ReadTx<'c>) -> TxFuture<'t, Result<T, E>> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(s) => {
                let mut f = f;
                s.read_conn(move |conn| {
                    let mut tx = ReadTx::on_sqlite(conn);
                    futures_executor::block_on(f(&mut tx))
                })
                .await
            }
            Backend::Postgres(p) => p.read(f).await,
        }
    }
}
