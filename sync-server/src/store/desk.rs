//! Where a received case stands at the centre (its `case_desk` row), kept in
//! step with every op by [`crate::centre::desk::follow`] in the transaction
//! that records the op, whichever way it came (a terminal's push, the
//! dashboard, the scheduler, an admin command), so the queue cannot drift
//! from the timeline. The rules are in [`crate::centre::desk`].

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

/// A case's desk row, as the centre's checks need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desk {
    pub queue_unit_id: Option<String>,
    pub department_id: Option<String>,
    pub received_at: Millis,
    pub reopen_reason: Option<String>,
    /// Chases made at or after the deadline in force (since it was set).
    pub overdue_chases: u32,
}

/// The desk row of a case just received.
#[derive(Debug, Clone)]
pub struct NewDesk<'a> {
    pub case_id: &'a CaseId,
    pub queue_unit_id: Option<&'a str>,
    pub category: &'a str,
    pub title: &'a str,
    pub deadline: Option<Millis>,
    pub received_at: Millis,
}

/// An open case whose queue no dispatcher reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub case_id: CaseId,
    pub queue_unit_id: Option<String>,
    pub grid_id: Option<String>,
}

impl ReadTx<'_> {
    pub async fn load_desk(&mut self, case_id: &CaseId) -> Result<Option<Desk>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::load_desk(c, case_id),
            ReadTx::Postgres(c) => postgres::desk::load_desk(c, case_id).await,
        }
    }

    /// Whether a dispatcher answers for `unit_id`.
    pub async fn has_dispatcher(&mut self, unit_id: &str) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::has_dispatcher(c, unit_id),
            ReadTx::Postgres(c) => postgres::desk::has_dispatcher(c, unit_id).await,
        }
    }

    /// The unit a member of staff answers for (a dispatcher's, a
    /// supervisor's).
    pub async fn staff_unit(&mut self, staff_id: &str) -> Result<Option<String>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::staff_unit(c, staff_id),
            ReadTx::Postgres(c) => postgres::desk::staff_unit(c, staff_id).await,
        }
    }

    /// The open cases (status not final, by the core) whose queue has no
    /// dispatcher, or that have no queue.
    pub async fn unread_desks(&mut self) -> Result<Vec<Unread>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::unread_desks(c),
            ReadTx::Postgres(c) => postgres::desk::unread_desks(c).await,
        }
    }
}

impl Tx<'_> {
    /// The desk row of a case just received (nothing if it has one).
    pub async fn insert_desk(&mut self, desk: &NewDesk<'_>) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::insert_desk(c, desk),
            ReadTx::Postgres(c) => postgres::desk::insert_desk(c, desk).await,
        }
    }

    /// Dispatched to `department` (its id, or the name a dispatch recorded
    /// before ids were stored) with `deadline`: the deadline's clock and its
    /// overdue chases restart, a reopen reason is cleared.
    pub async fn desk_dispatched(
        &mut self,
        case_id: &CaseId,
        department: &str,
        deadline: Option<Millis>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::desk::desk_dispatched(c, case_id, department, deadline, now)
            }
            ReadTx::Postgres(c) => {
                postgres::desk::desk_dispatched(c, case_id, department, deadline, now).await
            }
        }
    }

    /// Chased at `now`: one more overdue chase if the deadline has passed.
    pub async fn desk_chased(&mut self, case_id: &CaseId, now: Millis) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::desk_chased(c, case_id, now),
            ReadTx::Postgres(c) => postgres::desk::desk_chased(c, case_id, now).await,
        }
    }

    /// The unit whose dispatchers must act on the case now.
    pub async fn set_desk_queue(
        &mut self,
        case_id: &CaseId,
        queue_unit_id: Option<&str>,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::set_desk_queue(c, case_id, queue_unit_id, false),
            ReadTx::Postgres(c) => {
                postgres::desk::set_desk_queue(c, case_id, queue_unit_id, false).await
            }
        }
    }

    /// Escalated to the queue of `queue_unit_id`: its department lets go of it.
    pub async fn desk_escalated(
        &mut self,
        case_id: &CaseId,
        queue_unit_id: Option<&str>,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::set_desk_queue(c, case_id, queue_unit_id, true),
            ReadTx::Postgres(c) => {
                postgres::desk::set_desk_queue(c, case_id, queue_unit_id, true).await
            }
        }
    }

    /// Why the case came back (not done on site, a frowny face).
    pub async fn set_desk_reopen_reason(
        &mut self,
        case_id: &CaseId,
        reason: &str,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::set_desk_reopen_reason(c, case_id, reason),
            ReadTx::Postgres(c) => postgres::desk::set_desk_reopen_reason(c, case_id, reason).await,
        }
    }
}
