//! A case's timeline: its operations in the order they happened here, with
//! whether each has reached the server.

use rusqlite::OptionalExtension;

use super::{Store, StoreError};
use crate::ids::{CaseId, OpId};
use crate::op::Op;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpSyncState {
    /// Recorded here, waiting in the outbox.
    Pending,
    /// The server refused it; kept and shown, never dropped silently.
    Rejected,
    /// The server has it.
    Synced,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub op: Op,
    pub sync: OpSyncState,
    /// The server's words, as `code: reason`.
    pub reject_reason: Option<String>,
    /// The server's stable code of the refusal.
    pub reject_code: Option<String>,
    /// A refused step the grid leader sent again: the copy's id.
    pub resent_as: Option<OpId>,
}

impl Store {
    pub fn timeline(&self, case_id: &CaseId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT ops.body, outbox.state, outbox.reject_reason, outbox.reject_code,
                     outbox.resent_as
                 FROM ops LEFT JOIN outbox ON outbox.op_seq = ops.seq
                 WHERE ops.case_id = ?1 ORDER BY ops.seq",
            )?;
            let mut rows = stmt.query([case_id.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let body: String = r.get(0)?;
                let state: Option<String> = r.get(1)?;
                let op: Op = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                out.push(TimelineEntry {
                    op,
                    sync: match state.as_deref() {
                        Some("pending") => OpSyncState::Pending,
                        Some(_) => OpSyncState::Rejected,
                        None => OpSyncState::Synced,
                    },
                    reject_reason: r.get(2)?,
                    reject_code: r.get(3)?,
                    resent_as: r
                        .get::<_, Option<String>>(4)?
                        .map(|id| OpId::parse(&id))
                        .transpose()
                        .map_err(StoreError::corrupt)?,
                });
            }
            Ok(out)
        })
    }

    /// Number of operations still waiting to reach the server.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT count(*) FROM outbox WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
    }
}
