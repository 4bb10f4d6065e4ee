//! The typed DAO a store closure gets: [`ReadTx`] (an enum over the two
//! backends) for reads, [`Tx`] (a [`ReadTx`] that may also write) for writes.
//!
//! Every method is an `async fn` matching on the backend: the SQLite arm runs
//! its statement at once and never waits, the PostgreSQL arm awaits the
//! driver. So domain code is written once, over `Tx`, and runs on both. The
//! methods of each domain are declared next to its typed rows
//! (`store/<domain>.rs`), their SQL per backend in `store/sqlite/<domain>.rs`
//! and `store/postgres/<domain>.rs`.
//!
//! Methods take `&mut self` (even reads): a future holding `&mut ReadTx` is
//! `Send` because a SQLite connection is `Send` (not `Sync`), which the
//! server's handlers need.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;

use super::postgres::PgConn;
use super::StoreError;

/// What a store closure returns: a boxed future borrowing the transaction.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// One read transaction (one snapshot), on either backend.
pub enum ReadTx<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(PgConn<'c>),
}

/// One write transaction: everything a [`ReadTx`] reads (it derefs to one),
/// and the writes. Reads through a `Tx` see the transaction's own writes; on
/// PostgreSQL the rows a `Tx` reads in order to change them are locked
/// (`SELECT … FOR UPDATE`) where a domain needs it, which the `Tx` method of
/// the same name does (e.g. [`Tx::load_case`]).
pub struct Tx<'c>(pub(super) ReadTx<'c>);

impl<'c> Deref for Tx<'c> {
    type Target = ReadTx<'c>;
    fn deref(&self) -> &ReadTx<'c> {
        &self.0
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'c> ReadTx<'c> {
    /// Reads on a connection the old path already holds inside its own
    /// transaction ([`crate::db`]'s shim; SQLite only).
    pub(crate) fn on_sqlite(conn: &'c mut rusqlite::Connection) -> ReadTx<'c> {
        ReadTx::Sqlite(conn)
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> super::BackendKind {
        match self {
            ReadTx::Sqlite(_) => super::BackendKind::Sqlite,
            ReadTx::Postgres(_) => super::BackendKind::Postgres,
        }
    }

    /// Whether the database answers (`GET /healthz`).
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        match self {
            ReadTx::Sqlite(c) => {
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
                Ok(())
            }
            ReadTx::Postgres(c) => c.query_one("SELECT 1", &[]).await.map(drop),
        }
    }
}

impl<'c> Tx<'c> {
    /// Writes on a connection the old path holds inside its own `BEGIN
    /// IMMEDIATE` ([`crate::db`]'s shim; SQLite only).
    pub(crate) fn on_sqlite(conn: &'c mut rusqlite::Connection) -> Tx<'c> {
        Tx(ReadTx::Sqlite(conn))
    }

    /// Gives every number this transaction handed out so far its final
    /// value, and answers how to read them ([`Numbering::of`]). On SQLite
    /// numbers are final when handed out; on PostgreSQL they are taken here,
    /// under the ledger clock's row lock, which is held until the
    /// transaction commits (see [`super::postgres`]): call it last, just
    /// before the closure returns. [`super::Store::write`] calls it once
    /// more before committing, so nothing is ever committed unnumbered.
    pub async fn number(&mut self) -> Result<Numbering, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(_) => Ok(Numbering::default()),
            ReadTx::Postgres(c) => c.number().await,
        }
    }
}

/// A server sequence number as a write hands it out (an op's, a
/// departure's): final at once on SQLite; on PostgreSQL pending until the
/// transaction numbers ([`Tx::number`]). Read its value with
/// [`Numbering::of`]: the type keeps a pending number from reaching an
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq(SeqRepr);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqRepr {
    Final(u64),
    /// The `n`th number this transaction asked for.
    Pending(u32),
}

impl Seq {
    pub(crate) fn numbered(n: u64) -> Seq {
        Seq(SeqRepr::Final(n))
    }

    pub(crate) fn pending(n: u32) -> Seq {
        Seq(SeqRepr::Pending(n))
    }

    /// The pending ordinal, if not yet numbered (for a backend to store).
    pub(crate) fn pending_ordinal(self) -> Option<u32> {
        match self.0 {
            SeqRepr::Pending(n) => Some(n),
            SeqRepr::Final(_) => None,
        }
    }

    /// The number, if final (for a backend to store).
    pub(crate) fn final_value(self) -> Option<u64> {
        match self.0 {
            SeqRepr::Final(n) => Some(n),
            SeqRepr::Pending(_) => None,
        }
    }
}

/// How the pending numbers of a transaction were numbered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Numbering {
    /// `(after, upto, first)`: ordinals `after+1 ..= upto` got `first ..`.
    pub(crate) ranges: Vec<(u32, u32, u64)>,
}

impl Numbering {
    /// The final value of `seq`. An error only if the transaction had not
    /// numbered it yet (a bug: call [`Tx::number`] after the last write).
    pub fn of(&self, seq: Seq) -> Result<u64, StoreError> {
        match seq.0 {
            SeqRepr::Final(n) => Ok(n),
            SeqRepr::Pending(k) => self
                .ranges
                .iter()
                .find(|(after, upto, _)| *after < k && k <= *upto)
                .map(|(after, _, first)| first + u64::from(k - after - 1))
                .ok_or_else(|| {
                    StoreError::Backend(format!(
                        "number {k} of this transaction was read before it was numbered"
                    ))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_numbers_read_through_their_range() {
        let n = Numbering {
            ranges: vec![(0, 3, 101), (3, 5, 200)],
        };
        assert_eq!(n.of(Seq::numbered(7)).unwrap(), 7);
        assert_eq!(n.of(Seq::pending(1)).unwrap(), 101);
        assert_eq!(n.of(Seq::pending(3)).unwrap(), 103);
        assert_eq!(n.of(Seq::pending(4)).unwrap(), 200);
        assert!(n.of(Seq::pending(6)).is_err(), "not numbered yet");
    }
}
