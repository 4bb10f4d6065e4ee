//! Steps that need the grid leader: what the server refused, why, and
//! sending it again; and adopting the work recorded before enrolment.
//!
//! A refused op is never settled and never hidden: it stays on the case's
//! timeline and in the outbox (state `rejected`), the case counts it
//! (`rejected_ops`), and lists can show only such cases. The server's answer
//! is final for an op id (see `protocol`), so sending a step again records a
//! copy with a new id at the end of the outbox; the refused op stays, marked
//! with the copy's id (`resent_as`), and no longer counts as needing attention.

use rusqlite::{params, Connection};

use super::sync::refold_case;
use super::{insert_op, Store, StoreError};
use crate::case::Case;
use crate::ids::{CaseId, OpId};
use crate::op::{Op, Role};
use crate::protocol::resending_may_help;
use crate::time::Millis;

/// The server's code for a step recorded in another account's name.
const FORBIDDEN: &str = "forbidden";

/// A step the server refused and nobody has sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedStep {
    pub case_id: CaseId,
    pub op: Op,
    /// The server's stable code (`not_allowed`, `not_visible`, ...).
    pub code: String,
    /// The server's words.
    pub reason: String,
    /// Whether sending it again can get a different answer.
    pub resending_may_help: bool,
}

impl RefusedStep {
    pub(super) fn new(op: Op, code: Option<String>, stored_reason: Option<String>) -> Self {
        let code = code.unwrap_or_else(|| "refused".into());
        // Stored as "code: words" (what older versions showed); the words alone here.
        let reason = stored_reason
            .map(|r| match r.strip_prefix(&format!("{code}: ")) {
                Some(words) => words.to_string(),
                None => r,
            })
            .unwrap_or_else(|| "refused by the server".into());
        RefusedStep {
            case_id: op.case_id,
            resending_may_help: resending_may_help(&code),
            op,
            code,
            reason,
        }
    }
}

impl Store {
    /// Refused steps not sent again, oldest first; of one case, or of all.
    pub fn refused_steps(&self, case: Option<&CaseId>) -> Result<Vec<RefusedStep>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT ops.body, outbox.reject_code, outbox.reject_reason
                 FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                 WHERE outbox.state = 'rejected' AND outbox.resent_as IS NULL
                   AND (?1 IS NULL OR ops.case_id = ?1)
                 ORDER BY ops.seq",
            )?;
            let mut rows = stmt.query([case.map(|c| c.to_string())])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let op: Op =
                    serde_json::from_str(&r.get::<_, String>(0)?).map_err(StoreError::corrupt)?;
                out.push(RefusedStep::new(op, r.get(1)?, r.get(2)?));
            }
            Ok(out)
        })
    }

    /// Sends a case's refused steps again where that may help (see
    /// [`RefusedStep::resending_may_help`]), in one transaction; answers how
    /// many went back into the outbox.
    pub fn resend_refused(
        &self,
        case_id: &CaseId,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<u32, StoreError> {
        self.write(|tx| {
            let n = resend_in(tx, case_id, None, &|_, code| resending_may_help(code))?;
            if n > 0 {
                refold_case(tx, case_id, None, place)?;
            }
            Ok(n)
        })
    }

    /// Steps recorded before this terminal was first enrolled (at
    /// `enrolled_at`) that an older
    /// version sent under their local name and had refused (`forbidden`):
    /// adopted as `account_id`'s and sent again. Answers the cases changed.
    pub fn adopt_refused_before_enrolment(
        &self,
        account_id: &str,
        enrolled_at: Millis,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<Vec<CaseId>, StoreError> {
        let adoptable = |op: &Op, code: &str| {
            code == FORBIDDEN
                && op.actor.id != account_id
                && matches!(op.actor.role, Role::GridLeader | Role::Resident)
                && op.device_time < enrolled_at
        };
        // Most terminals have none: look before taking the writer.
        let any = self
            .refused_steps(None)?
            .iter()
            .any(|s| adoptable(&s.op, &s.code));
        if !any {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let cases: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT DISTINCT ops.case_id FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                     WHERE outbox.state = 'rejected' AND outbox.resent_as IS NULL
                       AND outbox.reject_code = ?1 ORDER BY ops.case_id",
                )?;
                let rows = stmt.query_map([FORBIDDEN], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut changed = Vec::new();
            for id in cases {
                let id = CaseId::parse(&id).map_err(StoreError::corrupt)?;
                if resend_in(tx, &id, Some(account_id), &adoptable)? > 0 {
                    refold_case(tx, &id, None, place)?;
                    changed.push(id);
                }
            }
            if !changed.is_empty() {
                tracing::info!(
                    cases = changed.len(),
                    "steps recorded before enrolment adopted and sent again"
                );
            }
            Ok(changed)
        })
    }
}

/// Marks `op` as recorded before enrolment under its local name and makes it
/// `account_id`'s.
fn adopt(op: &mut Op, account_id: &str) {
    if op.actor.id != account_id {
        let local = std::mem::replace(&mut op.actor.id, account_id.to_string());
        op.recorded_before_enrolment_as.get_or_insert(local);
    }
}

/// At the first enrolment: every waiting step recorded under a local name
/// becomes `account_id`'s (never sent: no enrolment, no sync), keeping its
/// id and its place in the outbox. Answers the cases whose steps changed.
pub(super) fn adopt_pending_in(
    tx: &Connection,
    account_id: &str,
) -> Result<Vec<CaseId>, StoreError> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(
            "SELECT ops.seq, ops.body FROM outbox JOIN ops ON ops.seq = outbox.op_seq
             WHERE outbox.state = 'pending' AND ops.origin = 'local' ORDER BY ops.seq",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut cases = Vec::new();
    for (seq, body) in rows {
        let mut op: Op = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
        if op.actor.id == account_id || !matches!(op.actor.role, Role::GridLeader | Role::Resident)
        {
            continue;
        }
        adopt(&mut op, account_id);
        let body = serde_json::to_string(&op).map_err(StoreError::corrupt)?;
        tx.prepare_cached("UPDATE ops SET body = ?2 WHERE seq = ?1")?
            .execute(params![seq, body])?;
        if !cases.contains(&op.case_id) {
            cases.push(op.case_id);
        }
    }
    if !cases.is_empty() {
        tracing::info!(
            cases = cases.len(),
            "work recorded before enrolment adopted by the enrolled account"
        );
    }
    Ok(cases)
}

/// Sends again the refused steps of one case that `select` picks (adopting
/// them as `adopt_as`'s when given): each gets a copy with a new id at the
/// end of the outbox, and the refused op is marked with it. Waiting steps of
/// the case recorded after the first step sent again move behind the copies,
/// so the case's steps still reach the server in the order they happened.
/// Answers how many steps were sent again. Inside the caller's transaction.
fn resend_in(
    tx: &Connection,
    case_id: &CaseId,
    adopt_as: Option<&str>,
    select: &dyn Fn(&Op, &str) -> bool,
) -> Result<u32, StoreError> {
    // A waiting op is deleted and written again behind the copies; its photo
    // row points at it all along.
    tx.pragma_update(None, "defer_foreign_keys", "ON")?;
    type Row = (i64, String, String, Option<String>);
    let rows: Vec<Row> = {
        let mut stmt = tx.prepare(
            "SELECT ops.seq, ops.body, outbox.state, outbox.reject_code
             FROM ops JOIN outbox ON outbox.op_seq = ops.seq
             WHERE ops.case_id = ?1
               AND (outbox.state = 'pending' OR outbox.resent_as IS NULL)
             ORDER BY ops.seq",
        )?;
        let rows = stmt.query_map([case_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut resent = 0;
    for (seq, body, state, code) in rows {
        let op: Op = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
        if state == "pending" {
            if resent == 0 {
                continue;
            }
            tx.prepare_cached("DELETE FROM outbox WHERE op_seq = ?1")?
                .execute([seq])?;
            tx.prepare_cached("DELETE FROM ops WHERE seq = ?1")?
                .execute([seq])?;
            let moved = insert_op(tx, &op)?;
            tx.prepare_cached("INSERT INTO outbox (op_seq) VALUES (?1)")?
                .execute([moved])?;
            continue;
        }
        if !select(&op, code.as_deref().unwrap_or_default()) {
            continue;
        }
        let mut copy = op.clone();
        copy.id = OpId::new();
        if let Some(account) = adopt_as {
            adopt(&mut copy, account);
        }
        let copy_seq = insert_op(tx, &copy)?;
        tx.prepare_cached("INSERT INTO outbox (op_seq) VALUES (?1)")?
            .execute([copy_seq])?;
        tx.prepare_cached("UPDATE outbox SET resent_as = ?2 WHERE op_seq = ?1")?
            .execute(params![seq, copy.id.to_string()])?;
        tx.prepare_cached("UPDATE photos SET op_id = ?2 WHERE op_id = ?1")?
            .execute(params![op.id.to_string(), copy.id.to_string()])?;
        resent += 1;
    }
    if resent > 0 {
        tx.prepare_cached(
            "UPDATE cases SET
                 pending_ops = (SELECT count(*) FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                     WHERE ops.case_id = cases.id AND outbox.state = 'pending'),
                 rejected_ops = (SELECT count(*) FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                     WHERE ops.case_id = cases.id AND outbox.state = 'rejected'
                       AND outbox.resent_as IS NULL)
             WHERE id = ?1",
        )?
        .execute([case_id.to_string()])?;
    }
    Ok(resent)
}
