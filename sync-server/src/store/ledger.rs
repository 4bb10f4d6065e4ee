//! The ledger: every accepted op in server order, each case as its ops add
//! up, the units it is seen from, its departures, the answers given to
//! pushes, and the server's history id. The rules that decide what goes in
//! are in [`crate::cases`] and [`crate::sync`]; this is what they read and
//! write.

use std::collections::BTreeSet;

use gridcase_core::case::Case;
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::Op;
use gridcase_core::protocol::{CaseLeft, PulledOp};
use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, Seq, StoreError, Tx};

/// The answer remembered for a pushed op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutcome {
    /// The device that pushed it.
    pub device_id: String,
    pub accepted: bool,
    /// The number the op first got (accepted ops).
    pub seq: Option<Seq>,
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// An answer to remember ([`Tx::remember_outcome`]).
#[derive(Debug, Clone)]
pub struct NewOutcome<'a> {
    pub op_id: OpId,
    pub device_id: &'a str,
    pub accepted: bool,
    pub seq: Option<Seq>,
    pub code: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub decided_at: Millis,
}

/// One page of a pull: entries numbered in `after+1 ..= upto`, seen by the
/// account, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct PullQuery<'a> {
    pub account_id: &'a str,
    /// The pulling device: its own ops are not sent back.
    pub device_id: &'a str,
    pub after: u64,
    pub upto: u64,
    pub limit: u32,
}

/// A case as stored, with when it last changed on the server.
#[derive(Debug, Clone)]
pub struct StoredCase {
    pub case: Case,
    pub updated_at: Millis,
}

impl ReadTx<'_> {
    /// The highest number below which every op and departure has committed,
    /// as of this transaction's snapshot: a pull never serves past it.
    pub async fn horizon(&mut self) -> Result<u64, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::horizon(c),
            ReadTx::Postgres(c) => postgres::ledger::horizon(c).await,
        }
    }

    /// The id of this database's history of numbers ([`gridcase_core::protocol`]).
    pub async fn history_id(&mut self) -> Result<String, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::history_id(c),
            ReadTx::Postgres(c) => postgres::ledger::history_id(c).await,
        }
    }

    pub async fn load_case(&mut self, id: &CaseId) -> Result<Option<Case>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::load_case(c, id),
            ReadTx::Postgres(c) => postgres::ledger::load_case(c, id, false).await,
        }
    }

    pub async fn case_exists(&mut self, id: &CaseId) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::case_exists(c, id),
            ReadTx::Postgres(c) => postgres::ledger::case_exists(c, id).await,
        }
    }

    /// Whether `account_id` sees the case: it reported it, or (once it is no
    /// longer a draft) answers for a unit the case is seen from.
    pub async fn case_visible_to(
        &mut self,
        id: &CaseId,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::case_visible_to(c, id, account_id),
            ReadTx::Postgres(c) => postgres::ledger::case_visible_to(c, id, account_id).await,
        }
    }

    /// The grid the centre filed a case under by hand (a `place` op).
    pub async fn placement_of(&mut self, id: &CaseId) -> Result<Option<String>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::placement_of(c, id),
            ReadTx::Postgres(c) => postgres::ledger::placement_of(c, id).await,
        }
    }

    /// The units the case is seen from.
    pub async fn case_scopes(&mut self, id: &CaseId) -> Result<BTreeSet<String>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::case_scopes(c, id),
            ReadTx::Postgres(c) => postgres::ledger::case_scopes(c, id).await,
        }
    }

    /// The ops of the page, in number order, not made by the pulling device.
    pub async fn pull_ops(&mut self, q: &PullQuery<'_>) -> Result<Vec<PulledOp>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::pull_ops(c, q),
            ReadTx::Postgres(c) => postgres::ledger::pull_ops(c, q).await,
        }
    }

    /// The departures of the page from the account's units, of cases it no
    /// longer sees by any other way, in number order.
    pub async fn pull_departures(
        &mut self,
        q: &PullQuery<'_>,
    ) -> Result<Vec<CaseLeft>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::pull_departures(c, q),
            ReadTx::Postgres(c) => postgres::ledger::pull_departures(c, q).await,
        }
    }

    /// Whether the account sees a case that uses the photo file `sha256`.
    pub async fn photo_visible_to(
        &mut self,
        sha256: &str,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::photo_visible_to(c, sha256, account_id),
            ReadTx::Postgres(c) => postgres::ledger::photo_visible_to(c, sha256, account_id).await,
        }
    }

    /// Every case, by id.
    pub async fn list_cases(&mut self) -> Result<Vec<StoredCase>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::list_cases(c),
            ReadTx::Postgres(c) => postgres::ledger::list_cases(c).await,
        }
    }

    /// The ids of at most `limit` cases whose id starts with `prefix`
    /// (lower-case hex and dashes).
    pub async fn case_ids_starting(
        &mut self,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<CaseId>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::case_ids_starting(c, prefix, limit),
            ReadTx::Postgres(c) => postgres::ledger::case_ids_starting(c, prefix, limit).await,
        }
    }

    /// A case's ops with their numbers, in order (its timeline).
    pub async fn case_ops(&mut self, id: &CaseId) -> Result<Vec<(u64, Op)>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::case_ops(c, id),
            ReadTx::Postgres(c) => postgres::ledger::case_ops(c, id).await,
        }
    }

    /// The answer already given for a pushed op.
    pub async fn stored_outcome(
        &mut self,
        op_id: &OpId,
    ) -> Result<Option<StoredOutcome>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::stored_outcome(c, op_id),
            ReadTx::Postgres(c) => postgres::ledger::stored_outcome(c, op_id).await,
        }
    }

    /// Whether an op of this id is in the ledger (any maker).
    pub async fn op_exists(&mut self, op_id: &OpId) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::ledger::op_exists(c, op_id),
            ReadTx::Postgres(c) => postgres::ledger::op_exists(c, op_id).await,
        }
    }
}

impl Tx<'_> {
    /// The case, locked until this transaction ends on PostgreSQL (two
    /// instances deciding ops of one case take turns, as SQLite's one writer
    /// makes them).
    pub async fn load_case(&mut self, id: &CaseId) -> Result<Option<Case>, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::load_case(c, id),
            ReadTx::Postgres(c) => postgres::ledger::load_case(c, id, true).await,
        }
    }

    /// Every case, by id, each locked (a new map re-places them all).
    pub async fn lock_all_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::all_cases(c),
            ReadTx::Postgres(c) => postgres::ledger::lock_all_cases(c).await,
        }
    }

    /// Stores a new case; a case of that id already there is a
    /// [`StoreError::Conflict`] (another instance created it meanwhile).
    pub async fn insert_case(&mut self, case: &Case, now: Millis) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::insert_case(c, case, now),
            ReadTx::Postgres(c) => postgres::ledger::insert_case(c, case, now).await,
        }
    }

    pub async fn update_case(&mut self, case: &Case, now: Millis) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::update_case(c, case, now),
            ReadTx::Postgres(c) => postgres::ledger::update_case(c, case, now).await,
        }
    }

    /// Files the case under `grid_id` by hand (replacing an earlier filing).
    pub async fn set_placement(
        &mut self,
        id: &CaseId,
        grid_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::set_placement(c, id, grid_id, now),
            ReadTx::Postgres(c) => postgres::ledger::set_placement(c, id, grid_id, now).await,
        }
    }

    /// Replaces the units the case is seen from.
    pub async fn set_case_scopes(
        &mut self,
        id: &CaseId,
        units: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::set_case_scopes(c, id, units),
            ReadTx::Postgres(c) => postgres::ledger::set_case_scopes(c, id, units).await,
        }
    }

    /// Records that the case left `units`, under one number.
    pub async fn add_departures(&mut self, id: &CaseId, units: &[&str]) -> Result<Seq, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::add_departures(c, id, units),
            ReadTx::Postgres(c) => postgres::ledger::add_departures(c, id, units).await,
        }
    }

    /// Moves all of a case's ops to the end of the sequence, in their order.
    pub async fn renumber_case(&mut self, id: &CaseId) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::renumber_case(c, id),
            ReadTx::Postgres(c) => postgres::ledger::renumber_case(c, id).await,
        }
    }

    /// Appends an accepted op with the next number (`device_id`: the device
    /// that pushed it, `None` for the server's own). An op id already there
    /// is a [`StoreError::Conflict`].
    pub async fn append_op(&mut self, op: &Op, device_id: Option<&str>) -> Result<Seq, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::append_op(c, op, device_id),
            ReadTx::Postgres(c) => postgres::ledger::append_op(c, op, device_id).await,
        }
    }

    /// Records that the case uses these photo files (once each).
    pub async fn add_case_photos(&mut self, id: &CaseId, shas: &[&str]) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::add_case_photos(c, id, shas),
            ReadTx::Postgres(c) => postgres::ledger::add_case_photos(c, id, shas).await,
        }
    }

    /// Remembers the answer given for a pushed op. One per op id: a second
    /// is a [`StoreError::Conflict`].
    pub async fn remember_outcome(&mut self, o: &NewOutcome<'_>) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::ledger::remember_outcome(c, o),
            ReadTx::Postgres(c) => postgres::ledger::remember_outcome(c, o).await,
        }
    }
}
