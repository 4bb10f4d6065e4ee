//! The PostgreSQL backend (PostgreSQL 15 or newer): a deadpool-postgres pool
//! of tokio-postgres connections, without TLS (`NoTls`: loopback or a
//! private network; a URL asking `sslmode=require` is refused at start, and
//! `sslmode=prefer`, the driver's default, connects without it).
//!
//! ## Transactions
//!
//! A write is one `READ COMMITTED` transaction; rows a domain reads in order
//! to change them are locked (`SELECT … FOR UPDATE`: a case, an enrolment
//! code), so two instances deciding on the same case take turns as SQLite's
//! one writer makes them. A serialization failure, a deadlock, or a unique
//! constraint deciding a race (two instances inserting the same op id) marks
//! the transaction transient; [`PgStore::write`] rolls it back and runs the
//! closure again from scratch (it is `FnMut`), up to [`MAX_ATTEMPTS`] times:
//! the run that follows sees what the winner committed and answers as if it
//! had come second. A read is one `REPEATABLE READ READ ONLY` transaction: a
//! pull reads the horizon and the ops of one snapshot.
//!
//! ## Numbering: the commit horizon
//!
//! With several writers, numbers taken from a sequence could commit out of
//! order (a lower number committing after a higher one, after a pull already
//! served past it: the pull's cursor would skip it). So numbers are taken at
//! the END of a write, under a row lock released only at commit: `UPDATE
//! ledger_clock SET last = last + n RETURNING last`. Until then the
//! transaction's ops, departures and push answers carry a pending ordinal
//! (`pending`, `seq` NULL; [`super::Seq`]); [`PgConn::number`] gives them
//! `last - n + 1 ..= last` in one statement per table. A second writer waits
//! at the clock's row for the first's COMMIT, and PostgreSQL releases the lock
//! only once the commit is visible, so numbers are taken in commit order and
//! in any snapshot `SELECT last FROM ledger_clock` is the commit horizon:
//! every lower number is committed or will never exist. The lock is held
//! only for the numbering statements and the COMMIT.

pub(crate) mod desk;
pub(crate) mod devices;
pub(crate) mod grids;
pub(crate) mod ledger;
pub(crate) mod migrations;
pub(crate) mod names;
pub(crate) mod rating_links;
pub(crate) mod staff;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use super::tx::{Numbering, ReadTx, Tx, TxFuture};
use super::StoreError;

/// How many times a transient write runs before its error is answered.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a request waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL backend's handle. Cloning is cheap.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to `url` with a pool of at most `max_connections`, and brings
    /// the schema up to date.
    pub async fn open(url: &str, max_connections: usize) -> Result<PgStore, StoreError> {
        let store = PgStore::connect(url, max_connections)?;
        let mut client = store.client().await?;
        let ran = migrations::run(&mut client).await?;
        for name in ran {
            tracing::info!(migration = name, backend = "postgres", "database migrated");
        }
        Ok(store)
    }

    /// The pool, without migrating (the migration tests start from empty).
    pub(crate) fn connect(url: &str, max_connections: usize) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Config(format!("--database-url is not a PostgreSQL URL: {e}"))
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::Config(
                "--database-url asks for TLS (sslmode=require), which this server does not \
                 build in: reach PostgreSQL over loopback or a private network, or a local TLS \
                 tunnel"
                    .into(),
            ));
        }
        if config.get_application_name().is_none() {
            config.application_name("gridcase-server");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(format!("the PostgreSQL pool: {e}")))?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs `f` in one write transaction, numbers what it handed out, and
    /// commits; runs it again when the transaction was transient (see the
    /// module docs).
    pub(crate) async fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: for<'t, 'c> FnMut(&'t mut Tx<'c>) -> TxFuture<'t, Result<T, E>>,
    {
        let mut client = self.client().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let txn = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(|e| E::from(classify(e).0))?;
            let (out, transient) = {
                let mut tx = Tx(ReadTx::Postgres(PgConn::new(&txn)));
                let out = f(&mut tx).await;
                let out = match out {
                    Ok(v) => tx.number().await.map(|_| v).map_err(E::from),
                    Err(e) => Err(e),
                };
                let transient = match tx.0 {
                    ReadTx::Postgres(c) => c.transient,
                    ReadTx::Sqlite(_) => None,
                };
                (out, transient)
            };
            match out {
                Ok(v) => {
                    gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_BEFORE_COMMIT);
                    match txn.commit().await {
                        Ok(()) => {
                            gridcase_core::failpoint::hit(
                                gridcase_core::failpoint::SERVER_AFTER_COMMIT,
                            );
                            return Ok(v);
                        }
                        Err(e) => {
                            let (err, transient) = classify(e);
                            if transient && attempt < MAX_ATTEMPTS {
                                tracing::debug!(attempt, error = %err, "a write's commit lost a race; running it again");
                                backoff(attempt).await;
                                continue;
                            }
                            return Err(E::from(err));
                        }
                    }
                }
                Err(e) => {
                    if let Err(r) = txn.rollback().await {
                        tracing::debug!(error = %r, "rolling back a failed write");
                    }
                    match transient {
                        Some(why) if attempt < MAX_ATTEMPTS => {
                            tracing::debug!(attempt, why, "a write lost a race; running it again");
                            backoff(attempt).await;
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    /// Runs `f` in one `REPEATABLE READ READ ONLY` transaction: one snapshot.
    pub(crate) async fn read<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: for<'t, 'c> FnMut(&'t mut ReadTx<'c>) -> TxFuture<'t, Result<T, E>>,
    {
        let mut client = self.client().await?;
        let txn = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| E::from(classify(e).0))?;
        let out = {
            let mut tx = ReadTx::Postgres(PgConn::new(&txn));
            f(&mut tx).await
        };
        // A read changes nothing; ending it either way is the same.
        let end = if out.is_ok() {
            txn.commit().await
        } else {
            txn.rollback().await
        };
        if let Err(e) = end {
            if out.is_ok() {
                return Err(E::from(classify(e).0));
            }
        }
        out
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt))).await;
}

/// One transaction on a pooled connection, as a [`ReadTx`] or [`Tx`] holds it.
pub struct PgConn<'c> {
    tx: &'c deadpool_postgres::Transaction<'c>,
    /// Why running the whole transaction again may succeed, once a statement
    /// failed so (kept here because the closure may turn the error into its
    /// own type).
    transient: Option<String>,
    /// Pending ordinals handed out, and those numbered so far.
    handed: u32,
    numbered: u32,
    ranges: Vec<(u32, u32, u64)>,
}

impl<'c> PgConn<'c> {
    fn new(tx: &'c deadpool_postgres::Transaction<'c>) -> PgConn<'c> {
        PgConn {
            tx,
            transient: None,
            handed: 0,
            numbered: 0,
            ranges: Vec::new(),
        }
    }

    fn failed(&mut self, e: tokio_postgres::Error) -> StoreError {
        let (err, transient) = classify(e);
        if transient && self.transient.is_none() {
            self.transient = Some(err.to_string());
        }
        err
    }

    async fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        match self.tx.prepare_cached(sql).await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.failed(e)),
        }
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql).await?;
        match self.tx.query(&stmt, params).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.failed(e)),
        }
    }

    pub(crate) async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let stmt = self.statement(sql).await?;
        match self.tx.query_opt(&stmt, params).await {
            Ok(row) => Ok(row),
            Err(e) => Err(self.failed(e)),
        }
    }

    pub(crate) async fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let stmt = self.statement(sql).await?;
        match self.tx.query_one(&stmt, params).await {
            Ok(row) => Ok(row),
            Err(e) => Err(self.failed(e)),
        }
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let stmt = self.statement(sql).await?;
        match self.tx.execute(&stmt, params).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The next pending ordinal (a number this transaction will take at its
    /// end).
    pub(crate) fn next_pending(&mut self) -> u32 {
        self.handed += 1;
        self.handed
    }

    /// The last pending ordinal handed out: the next `n` are `after + 1 ..=
    /// after + n` once [`Self::reserve_pending`] hands them out.
    pub(crate) fn last_pending(&self) -> u32 {
        self.handed
    }

    /// Hands out the next `n` ordinals (used by a statement that numbered `n`
    /// rows `last_pending() + 1 ..` itself).
    pub(crate) fn reserve_pending(&mut self, n: u32) {
        self.handed += n;
    }

    /// Numbers every pending row of this transaction (see the module docs).
    /// Answers every range numbered so far, so a [`Numbering`] taken last
    /// reads every [`super::Seq`] this transaction handed out.
    pub(crate) async fn number(&mut self) -> Result<Numbering, StoreError> {
        let (after, upto) = (self.numbered, self.handed);
        if upto > after {
            let n = i64::from(upto - after);
            let last: i64 = self
                .query_one(
                    "UPDATE ledger_clock SET last = last + $1 WHERE id = 1 RETURNING last",
                    &[&n],
                )
                .await?
                .get(0);
            let first = last - n + 1;
            // Ordinal k gets first + (k - after - 1); the partial indexes on
            // `pending` make these touch only this transaction's rows (others'
            // pending rows are uncommitted, so not visible).
            let base = first - i64::from(after) - 1;
            self.execute(
                "UPDATE ops SET seq = $1::bigint + pending, pending = NULL WHERE pending IS NOT NULL",
                &[&base],
            )
            .await?;
            self.execute(
                "UPDATE case_departures SET seq = $1::bigint + pending, pending = NULL
                 WHERE pending IS NOT NULL",
                &[&base],
            )
            .await?;
            self.execute(
                "UPDATE push_outcomes SET server_seq = $1::bigint + pending, pending = NULL
                 WHERE pending IS NOT NULL",
                &[&base],
            )
            .await?;
            self.ranges.push((after, upto, first as u64));
            self.numbered = upto;
        }
        Ok(Numbering {
            ranges: self.ranges.clone(),
        })
    }
}

/// A driver error as the store reports it, and whether running the
/// transaction again may cure it.
pub(crate) fn classify(e: tokio_postgres::Error) -> (StoreError, bool) {
    if let Some(code) = e.code() {
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return (
                StoreError::Unavailable(format!("the database is busy ({message}); try again")),
                true,
            );
        }
        if *code == SqlState::UNIQUE_VIOLATION {
            return (StoreError::Conflict { what: message }, true);
        }
        if [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::QUERY_CANCELED,
        ]
        .contains(code)
        {
            return (StoreError::Unavailable(message), false);
        }
        return (
            StoreError::Backend(format!("{} ({})", message, code.code())),
            false,
        );
    }
    if e.is_closed() {
        return (
            StoreError::Unavailable("the connection to PostgreSQL was lost".into()),
            false,
        );
    }
    (StoreError::Unavailable(e.to_string()), false)
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => classify(e).0,
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no PostgreSQL connection became free in time".into())
        }
        PoolError::Closed => StoreError::Unavailable("the server is shutting down".into()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// A uuid column's value from an id the server was given as text; `None`
/// when it cannot be one (then no row has it).
pub(crate) fn uuid_of(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id).ok()
}

/// An id as the server speaks it (hyphenated, lower case).
pub(crate) fn id_text(id: uuid::Uuid) -> String {
    id.hyphenated().to_string()
}

/// Column `idx` of `row`, or [`StoreError::Corrupt`] (never a panic) when it
/// does not read as `T`.
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|e| StoreError::corrupt("a stored row", e))
}

/// A number as PostgreSQL's bigint holds it.
pub(crate) fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A bigint number as the server counts.
pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
