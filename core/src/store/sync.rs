//! Sync state in the store: the enrolled account and cursor, the outbox as the
//! server acknowledges or refuses it, and ops pulled from the server. Every
//! sync answer is applied in one transaction together with the new cursor, so
//! a crash mid-way repeats the exchange (the server dedups by op id) instead of
//! losing or doubling anything.
//!
//! ## Which state a case shows
//!
//! A case is the fold of its ops: first every op the server has, in server
//! order; then this terminal's ops not yet acknowledged, in the order they were
//! recorded. So the terminal always shows the server's state with the grid
//! leader's unsynced work on top. When both sides changed the same case, the
//! server's order wins: a local op that no longer fits the server's state (the
//! grid leader cancelled a draft the centre has meanwhile dispatched, say) is
//! left out of the view, stays in the outbox, and is pushed; the server then
//! either accepts it or refuses it with a reason, and a refused op is kept on
//! the timeline, marked, never dropped silently.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, ToSql};

use super::attention::{adopt_pending_in, RefusedStep};
use super::{load_case, save_case, PhotoRow, Store, StoreError};
use crate::case::Case;
use crate::ids::CaseId;
use crate::op::{apply, Op, OpKind};
use crate::protocol::{NameKind, PulledOp, PushResult, PushStatus, SyncResponse};
use crate::time::Millis;

/// The account this terminal is enrolled as on a server.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncAccount {
    pub server_url: String,
    pub device_id: String,
    pub account_id: String,
    pub token: String,
    pub grid_ids: Vec<String>,
    pub cursor: u64,
    pub last_success_at: Option<Millis>,
    /// The server history `cursor` belongs to (none before the first answer).
    pub history: Option<String>,
    /// The version of the server's grid map held (0: none yet).
    pub grid_map_version: u64,
}

/// What applying one sync answer changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncApplied {
    pub accepted: u32,
    pub rejected: u32,
    pub deferred: u32,
    pub pulled: u32,
    pub changed_cases: Vec<CaseId>,
    /// The steps this answer refused, with the server's code and reason.
    pub refused: Vec<RefusedStep>,
}

/// What the enrolment answer brings besides the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnrolExtras {
    /// The deployment's time zone (IANA name), when the server said.
    pub time_zone: Option<String>,
    /// The grid leader's name as the centre knows it.
    pub account_name: Option<String>,
}

impl Store {
    pub fn sync_account(&self) -> Result<Option<SyncAccount>, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT server_url, device_id, account_id, token, grid_ids, cursor, last_success_at,
                     server_history, grid_map_version
                 FROM sync_account",
                [],
                |r| {
                    let grids: String = r.get(4)?;
                    Ok(SyncAccount {
                        server_url: r.get(0)?,
                        device_id: r.get(1)?,
                        account_id: r.get(2)?,
                        token: r.get(3)?,
                        grid_ids: serde_json::from_str(&grids).unwrap_or_default(),
                        cursor: r.get::<_, i64>(5)? as u64,
                        last_success_at: r.get(6)?,
                        history: r.get(7)?,
                        grid_map_version: r.get::<_, i64>(8)? as u64,
                    })
                },
            )
            .optional()
            .map_err(Into::into)
        })
    }

    /// Records the enrolment. Enrolling again (a new token, say) keeps the
    /// cursor and what goes with it when the server and device stay the same.
    pub fn save_sync_account(&self, a: &SyncAccount, now: Millis) -> Result<(), StoreError> {
        self.write(|tx| save_account_in(tx, a, now))
    }

    /// Records an enrolment with what its answer said (the deployment's
    /// zone, the grid leader's name), in one transaction. The first
    /// enrolment of this terminal also adopts its unsent work: steps
    /// recorded before enrolment become the enrolled account's, each saying
    /// under which local name it was recorded. Answers the cases adopted.
    pub fn enrol(
        &self,
        a: &SyncAccount,
        extras: &EnrolExtras,
        now: Millis,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<Vec<CaseId>, StoreError> {
        self.write(|tx| {
            let first: bool =
                tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM sync_account)", [], |r| {
                    r.get(0)
                })?;
            save_account_in(tx, a, now)?;
            if let Some(zone) = extras.time_zone.as_deref().filter(|z| !z.is_empty()) {
                tx.execute("UPDATE sync_account SET time_zone = ?1", [zone])?;
            }
            if let Some(name) = extras.account_name.as_deref().filter(|n| !n.is_empty()) {
                tx.execute("UPDATE sync_account SET account_name = ?1", [name])?;
                super::names::save_name_in(tx, NameKind::Actor, &a.account_id, name)?;
            }
            if !first {
                return Ok(Vec::new());
            }
            let cases = adopt_pending_in(tx, &a.account_id)?;
            for id in &cases {
                refold_case(tx, id, None, place)?;
            }
            Ok(cases)
        })
    }

    /// The deployment's time zone as the server last said it.
    pub fn time_zone(&self) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT time_zone FROM sync_account", [], |r| {
                    r.get::<_, Option<String>>(0)
                })
                .optional()?
                .flatten())
        })
    }

    /// When this terminal was first enrolled (what was recorded before was
    /// recorded under its local name).
    pub fn first_enrolled_at(&self) -> Result<Option<Millis>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT coalesce(first_enrolled_at, enrolled_at) FROM sync_account",
                    [],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }
}

fn save_account_in(tx: &Connection, a: &SyncAccount, now: Millis) -> Result<(), StoreError> {
    let grids = serde_json::to_string(&a.grid_ids).map_err(StoreError::corrupt)?;
    tx.execute(
        "INSERT INTO sync_account (only_one, server_url, device_id, account_id, token,
             grid_ids, cursor, enrolled_at, first_enrolled_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (only_one) DO UPDATE SET
             cursor = CASE WHEN server_url = ?1 AND device_id = ?2 THEN cursor ELSE ?6 END,
             server_history = CASE WHEN server_url = ?1 AND device_id = ?2
                 THEN server_history ELSE NULL END,
             repulling = CASE WHEN server_url = ?1 AND device_id = ?2
                 THEN repulling ELSE 0 END,
             grid_map_version = CASE WHEN server_url = ?1 THEN grid_map_version ELSE 0 END,
             server_url = ?1, device_id = ?2, account_id = ?3, token = ?4,
             grid_ids = ?5, enrolled_at = ?7",
        params![
            a.server_url,
            a.device_id,
            a.account_id,
            a.token,
            grids,
            a.cursor as i64,
            now
        ],
    )?;
    Ok(())
}

impl Store {
    /// The outbox's waiting ops, oldest first.
    pub fn pending_ops(&self, limit: usize) -> Result<Vec<Op>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT ops.body FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                 WHERE outbox.state = 'pending' ORDER BY outbox.op_seq LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0))?;
            rows.map(|b| serde_json::from_str(&b?).map_err(StoreError::corrupt))
                .collect()
        })
    }

    /// Photo files (SHA-256 and size) that waiting ops refer to, in outbox
    /// order, leaving out photos of ops that cannot be accepted: ops in
    /// another account's name than `account_id` (`forbidden`), and ops of a
    /// case whose creation the server refused (`unknown_case`).
    pub fn pending_photo_files(&self, account_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|conn| {
            // Only photo ops are parsed: this runs whenever the server asks for photos.
            let mut stmt = conn.prepare_cached(
                "SELECT ops.body FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                 WHERE outbox.state = 'pending' AND ops.kind = 'attach_photo'
                   AND NOT EXISTS (SELECT 1 FROM ops c JOIN outbox b ON b.op_seq = c.seq
                       WHERE c.case_id = ops.case_id AND c.kind = 'create'
                         AND b.state = 'rejected' AND b.resent_as IS NULL)
                 ORDER BY outbox.op_seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let op: Op =
                    serde_json::from_str(&r.get::<_, String>(0)?).map_err(StoreError::corrupt)?;
                if op.actor.id != account_id {
                    continue;
                }
                if let OpKind::AttachPhoto { photo, .. } = op.kind {
                    for (sha, bytes) in [
                        (photo.sha256, photo.bytes),
                        (photo.thumb_sha256, photo.thumb_bytes),
                    ] {
                        if seen.insert(sha.clone()) {
                            out.push((sha, bytes));
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    /// Photo files of pulled cases not yet fetched.
    pub fn photo_downloads(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT sha256 FROM photo_downloads ORDER BY sha256")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub fn photo_downloaded(&self, sha256: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM photo_downloads WHERE sha256 = ?1", [sha256])?;
            Ok(())
        })
    }

    /// The secret this terminal sends with enrolments, made on first use.
    pub fn enrolment_key(&self) -> Result<String, StoreError> {
        self.write(|tx| {
            let key: Option<String> = tx
                .query_row("SELECT enrolment_key FROM terminal_secret", [], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(key) = key {
                return Ok(key);
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| StoreError::corrupt(format!("the OS gave no randomness: {e}")))?;
            let key = hex::encode(bytes);
            tx.execute(
                "INSERT INTO terminal_secret (only_one, enrolment_key) VALUES (1, ?1)",
                [&key],
            )?;
            Ok(key)
        })
    }

    /// Applies one sync answer: the fate of each pushed op, the pulled ops and
    /// departures (in the server's order) and the new cursor, all in one
    /// transaction. A `reset` answer goes to [`Store::start_over`] instead.
    pub fn apply_sync(
        &self,
        answer: &SyncResponse,
        now: Millis,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<SyncApplied, StoreError> {
        self.write(|tx| {
            // A pulled case arrives with its ops; its row is written after them.
            tx.pragma_update(None, "defer_foreign_keys", "ON")?;
            let mut out = SyncApplied::default();
            let mut changed = BTreeSet::new();
            for r in &answer.results {
                if let Some(case_id) = apply_push_result(tx, r, &mut out)? {
                    changed.insert(case_id);
                }
            }
            let mut left = answer.left.iter().peekable();
            for p in &answer.ops {
                while let Some(l) = left.next_if(|l| l.server_seq < p.server_seq) {
                    leave_case(tx, &l.case_id, &mut changed)?;
                }
                if apply_pulled(tx, p)? {
                    out.pulled += 1;
                }
                changed.insert(p.op.case_id.to_string());
            }
            for l in left {
                leave_case(tx, &l.case_id, &mut changed)?;
            }
            let repulling: bool =
                tx.query_row("SELECT repulling FROM sync_account", [], |r| r.get(0))?;
            if repulling && !answer.more {
                // The pull from 0 is complete: what the server did not deliver
                // again, it no longer has.
                changed.extend(drop_unconfirmed(tx)?);
                tx.execute("UPDATE sync_account SET repulling = 0", [])?;
            }
            for case_id in &changed {
                let id = CaseId::parse(case_id).map_err(StoreError::corrupt)?;
                let server_grid = answer
                    .ops
                    .iter()
                    .rev()
                    .find(|p| p.op.case_id == id)
                    .and_then(|p| p.grid_id.clone());
                refold_case(tx, &id, server_grid, place)?;
                out.changed_cases.push(id);
            }
            for n in &answer.names {
                super::names::save_name_in(tx, n.kind, &n.id, &n.name)?;
            }
            if !answer.time_zone.is_empty() {
                tx.prepare_cached("UPDATE sync_account SET time_zone = ?1")?
                    .execute([&answer.time_zone])?;
            }
            tx.prepare_cached(
                "UPDATE sync_account SET cursor = ?1, server_history = ?2, last_success_at = ?3",
            )?
            .execute(params![answer.cursor as i64, answer.history, now])?;
            Ok(out)
        })
    }

    /// The server was restored from a backup (its history changed): forget
    /// every server number, put this terminal's own acknowledged ops back in
    /// the outbox (the server dedups by op id and re-applies what it lost),
    /// and pull again from 0. Nothing is shown differently until the pull
    /// completes, when ops the server no longer has are dropped.
    pub fn start_over(&self, history: &str) -> Result<u64, StoreError> {
        self.write(|tx| {
            let requeued = tx.execute(
                "INSERT INTO outbox (op_seq) SELECT seq FROM ops
                 WHERE origin = 'local' AND server_seq IS NOT NULL",
                [],
            )?;
            tx.execute(
                "UPDATE cases SET pending_ops = (SELECT count(*) FROM outbox
                     JOIN ops ON ops.seq = outbox.op_seq
                     WHERE ops.case_id = cases.id AND outbox.state = 'pending')",
                [],
            )?;
            tx.execute(
                "UPDATE ops SET server_seq = NULL WHERE server_seq IS NOT NULL",
                [],
            )?;
            tx.execute(
                "UPDATE sync_account SET cursor = 0, server_history = ?1, repulling = 1",
                [history],
            )?;
            tracing::warn!(
                requeued,
                "the server's history changed: pulling again from 0"
            );
            Ok(requeued as u64)
        })
    }

    /// Remembers the version of the server's grid map just loaded.
    pub fn save_grid_map_version(&self, version: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sync_account SET grid_map_version = ?1",
                [version as i64],
            )?;
            Ok(())
        })
    }
}

/// Marks a pushed op accepted or refused; answers the case it belongs to if
/// anything changed.
fn apply_push_result(
    tx: &Connection,
    r: &PushResult,
    out: &mut SyncApplied,
) -> Result<Option<String>, StoreError> {
    let found: Option<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT ops.seq, ops.case_id, ops.body FROM ops JOIN outbox ON outbox.op_seq = ops.seq
             WHERE ops.id = ?1 AND outbox.state = 'pending'",
        )?
        .query_row([r.op_id.to_string()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    // An answer about an op no longer waiting (a repeated answer) changes nothing.
    let Some((seq, case_id, body)) = found else {
        return Ok(None);
    };
    match r.status {
        PushStatus::Accepted => {
            let server_seq = r
                .server_seq
                .ok_or_else(|| StoreError::corrupt("the server accepted an op without a number"))?;
            tx.prepare_cached("UPDATE ops SET server_seq = ?2 WHERE seq = ?1")?
                .execute(params![seq, server_seq as i64])?;
            tx.prepare_cached("DELETE FROM outbox WHERE op_seq = ?1")?
                .execute([seq])?;
            tx.prepare_cached("UPDATE cases SET pending_ops = pending_ops - 1 WHERE id = ?1")?
                .execute([&case_id])?;
            out.accepted += 1;
        }
        PushStatus::Rejected => {
            let reason = match (&r.code, &r.reason) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => "refused by the server".into(),
            };
            tx.prepare_cached(
                "UPDATE outbox SET state = 'rejected', reject_reason = ?2, reject_code = ?3,
                     attempts = attempts + 1 WHERE op_seq = ?1",
            )?
            .execute(params![seq, reason, r.code])?;
            let op: Op = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
            out.refused
                .push(RefusedStep::new(op, r.code.clone(), Some(reason)));
            tx.prepare_cached(
                "UPDATE cases SET pending_ops = pending_ops - 1,
                     rejected_ops = rejected_ops + 1 WHERE id = ?1",
            )?
            .execute([&case_id])?;
            out.rejected += 1;
        }
        PushStatus::Deferred => {
            out.deferred += 1;
            return Ok(None);
        }
    }
    Ok(Some(case_id))
}

/// Stores a pulled op; answers whether it was new. An op held already (a
/// repeated page after a crash, a case re-delivered after it moved grid, or a
/// pull from 0 after the server was restored) only gets its number back if it
/// had lost it; the grid the answer carries may still be news.
fn apply_pulled(tx: &Connection, p: &PulledOp) -> Result<bool, StoreError> {
    let body = serde_json::to_string(&p.op).map_err(StoreError::corrupt)?;
    let case_id = p.op.case_id.to_string();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO ops (id, case_id, kind, device_time, body, server_seq, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'server')
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            p.op.id.to_string(),
            case_id,
            super::op_kind_code(&p.op),
            p.op.device_time,
            body,
            p.server_seq as i64,
        ])?;
    if inserted == 0 {
        tx.prepare_cached(
            "UPDATE ops SET server_seq = ?2 WHERE id = ?1 AND server_seq IS NULL AND origin = 'server'",
        )?
        .execute(params![p.op.id.to_string(), p.server_seq as i64])?;
        return Ok(false);
    }
    if let OpKind::AttachPhoto { photo, .. } = &p.op.kind {
        PhotoRow {
            photo: photo.clone(),
            case_id: p.op.case_id,
            op_id: p.op.id,
            added_at: p.op.device_time,
        }
        .insert_if_new(tx)?;
        for sha in [&photo.sha256, &photo.thumb_sha256] {
            tx.prepare_cached(
                "INSERT INTO photo_downloads (sha256) VALUES (?1) ON CONFLICT DO NOTHING",
            )?
            .execute([sha])?;
        }
    }
    Ok(true)
}

/// A case left this terminal's grids. It is dropped, with its ops and photo
/// rows (the files go with the next collection), unless the grid leader has
/// work on it not yet accepted: that stays, is pushed, and its refusal shows.
fn leave_case(
    tx: &Connection,
    case_id: &CaseId,
    changed: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let id = case_id.to_string();
    let unsent: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox JOIN ops ON ops.seq = outbox.op_seq
                            WHERE ops.case_id = ?1)",
        )?
        .query_row([&id], |r| r.get(0))?;
    if unsent {
        tracing::info!(case = %id, "a case left this terminal's grids; kept for its unsent work");
        return Ok(());
    }
    forget_ops(tx, "case_id = ?1", params![id])?;
    tx.prepare_cached("DELETE FROM cases WHERE id = ?1")?
        .execute([&id])?;
    changed.remove(&id);
    Ok(())
}

/// Deletes the ops matching `filter` and their photo rows, and forgets
/// downloads no remaining photo needs.
fn forget_ops(tx: &Connection, filter: &str, args: &[&dyn ToSql]) -> Result<(), StoreError> {
    tx.execute(
        &format!("DELETE FROM photos WHERE op_id IN (SELECT id FROM ops WHERE {filter})"),
        args,
    )?;
    tx.execute(&format!("DELETE FROM ops WHERE {filter}"), args)?;
    tx.execute(
        "DELETE FROM photo_downloads WHERE sha256 NOT IN (SELECT sha256 FROM photos)
             AND sha256 NOT IN (SELECT thumb_sha256 FROM photos)",
        [],
    )?;
    Ok(())
}

/// After a complete pull from 0: drops pulled ops the restored server no longer
/// has; answers the cases they belonged to (cases left with no op go too).
fn drop_unconfirmed(tx: &Connection) -> Result<Vec<String>, StoreError> {
    let cases: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT DISTINCT case_id FROM ops WHERE origin = 'server' AND server_seq IS NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if cases.is_empty() {
        return Ok(cases);
    }
    tracing::warn!(
        cases = cases.len(),
        "ops the restored server lost are dropped"
    );
    forget_ops(tx, "origin = 'server' AND server_seq IS NULL", params![])?;
    let mut kept = Vec::new();
    for id in cases {
        let any: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM ops WHERE case_id = ?1)",
            [&id],
            |r| r.get(0),
        )?;
        if any {
            kept.push(id);
        } else {
            tx.execute("DELETE FROM cases WHERE id = ?1", [&id])?;
        }
    }
    Ok(kept)
}

/// Recomputes a case from its ops: the server's in server order, then this
/// terminal's waiting ones in recording order; refused ops are left out.
pub(super) fn refold_case(
    tx: &Connection,
    id: &CaseId,
    server_grid: Option<String>,
    place: &dyn Fn(&Case) -> Option<String>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT ops.body, ops.server_seq, outbox.state FROM ops
         LEFT JOIN outbox ON outbox.op_seq = ops.seq
         WHERE ops.case_id = ?1
         ORDER BY ops.server_seq IS NULL, ops.server_seq, ops.seq",
    )?;
    let mut rows = stmt.query([id.to_string()])?;
    let mut case: Option<Case> = None;
    while let Some(r) = rows.next()? {
        let state: Option<String> = r.get(2)?;
        if state.as_deref() == Some("rejected") {
            continue;
        }
        let op: Op = serde_json::from_str(&r.get::<_, String>(0)?).map_err(StoreError::corrupt)?;
        match apply(case.as_ref(), &op) {
            Ok(next) => case = Some(next),
            Err(e) => {
                // The server's state moved on; this op waits for the server's verdict.
                tracing::info!(op = %op.id, error = %e, "op does not fit the server's state; left out of the view");
            }
        }
    }
    drop(rows);
    let Some(mut case) = case else {
        return Ok(()); // nothing applicable yet (its create has not arrived)
    };
    let existing = load_case(tx, id)?;
    let stored_grid: Option<String> = tx
        .prepare_cached("SELECT server_grid_id FROM cases WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?
        .flatten();
    let server_grid = server_grid.or(stored_grid);
    case.grid_id = server_grid
        .clone()
        .or_else(|| existing.as_ref().and_then(|c| c.grid_id.clone()))
        .or_else(|| place(&case));
    save_case(tx, &case, existing.is_none())?;
    if let Some(grid) = server_grid {
        tx.prepare_cached("UPDATE cases SET server_grid_id = ?2 WHERE id = ?1")?
            .execute(params![id.to_string(), grid])?;
    }
    Ok(())
}
