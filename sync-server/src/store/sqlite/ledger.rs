//! The ledger's SQL on SQLite.
//!
//! Numbers: `ops.seq` is the server sequence number. Numbers are handed out
//! only inside a write transaction, and SQLite runs one write transaction at
//! a time (`BEGIN IMMEDIATE` on the writer; an admin command in another
//! process waits for the same lock), so numbers commit in increasing order
//! and in any read snapshot the highest number is the commit horizon: every
//! lower number has committed or will never exist.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use gridcase_core::case::Case;
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::Op;
use gridcase_core::protocol::{CaseLeft, PulledOp};
use gridcase_core::time::Millis;
use rusqlite::{named_params, params, Connection, OptionalExtension};

use crate::store::ledger::{NewOutcome, PullQuery, StoredCase, StoredOutcome};
use crate::store::{Seq, StoreError};

/// The account that may see a case: the reporter, or one answering for the
/// case's grid or a unit above it, once it is not a draft. `c` is the `cases`
/// row, `:account` the account. The draft status comes from the core.
static VISIBLE_TO_ACCOUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(c.reported_by = :account OR (c.status NOT IN {} AND EXISTS (
    SELECT 1 FROM case_scopes s JOIN account_grids g ON g.grid_id = s.unit_id
    WHERE s.case_id = c.id AND g.account_id = :account)))",
        *crate::status_sql::DRAFT
    )
});

fn parse_case(state: &str) -> Result<Case, StoreError> {
    serde_json::from_str(state).map_err(|e| StoreError::corrupt("a stored case", e))
}

fn parse_op(body: &str) -> Result<Op, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::corrupt("a stored op", e))
}

fn parse_case_id(id: &str) -> Result<CaseId, StoreError> {
    CaseId::parse(id).map_err(|e| StoreError::corrupt("a stored case id", e.reason))
}

pub(crate) fn horizon(conn: &Connection) -> Result<u64, StoreError> {
    // Departures share the numbering of ops.
    Ok(conn
        .prepare_cached(
            "SELECT max(COALESCE((SELECT MAX(seq) FROM ops), 0),
                        COALESCE((SELECT MAX(seq) FROM case_departures), 0))",
        )?
        .query_row([], |r| r.get(0))?)
}

fn next_seq(conn: &Connection) -> Result<u64, StoreError> {
    Ok(horizon(conn)? + 1)
}

pub(crate) fn history_id(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached("SELECT history_id FROM server_history WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

pub(crate) fn load_case(conn: &Connection, id: &CaseId) -> Result<Option<Case>, StoreError> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM cases WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    state.as_deref().map(parse_case).transpose()
}

pub(crate) fn case_exists(conn: &Connection, id: &CaseId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE id = ?1)")?
        .query_row([id.to_string()], |r| r.get(0))?)
}

pub(crate) fn case_visible_to(
    conn: &Connection,
    id: &CaseId,
    account_id: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM cases c WHERE c.id = :case AND {})",
        *VISIBLE_TO_ACCOUNT
    );
    Ok(conn.prepare_cached(&sql)?.query_row(
        named_params! {":case": id.to_string(), ":account": account_id},
        |r| r.get(0),
    )?)
}

pub(crate) fn placement_of(conn: &Connection, id: &CaseId) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT grid_id FROM case_placements WHERE case_id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?)
}

pub(crate) fn case_scopes(conn: &Connection, id: &CaseId) -> Result<BTreeSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT unit_id FROM case_scopes WHERE case_id = ?1")?;
    let rows = stmt.query_map([id.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn pull_ops(conn: &Connection, q: &PullQuery<'_>) -> Result<Vec<PulledOp>, StoreError> {
    let sql = format!(
        "SELECT o.seq, o.body, c.grid_id FROM ops o JOIN cases c ON c.id = o.case_id
         WHERE o.seq > :from AND o.seq <= :horizon AND o.device_id IS NOT :device
           AND {}
         ORDER BY o.seq LIMIT :n",
        *VISIBLE_TO_ACCOUNT
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":from": q.after,
            ":horizon": q.upto,
            ":device": q.device_id,
            ":account": q.account_id,
            ":n": i64::from(q.limit),
        },
        |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    let mut ops = Vec::new();
    for row in rows {
        let (seq, body, grid_id) = row?;
        ops.push(PulledOp {
            server_seq: seq,
            grid_id,
            op: parse_op(&body)?,
        });
    }
    Ok(ops)
}

pub(crate) fn pull_departures(
    conn: &Connection,
    q: &PullQuery<'_>,
) -> Result<Vec<CaseLeft>, StoreError> {
    let sql = format!(
        "SELECT DISTINCT d.seq, d.case_id FROM case_departures d
         WHERE d.seq > :from AND d.seq <= :horizon
           AND EXISTS (SELECT 1 FROM account_grids g
                       WHERE g.account_id = :account AND g.grid_id = d.unit_id)
           AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND {})
         ORDER BY d.seq LIMIT :n",
        *VISIBLE_TO_ACCOUNT
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":from": q.after,
            ":horizon": q.upto,
            ":account": q.account_id,
            ":n": i64::from(q.limit),
        },
        |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut left = Vec::new();
    for row in rows {
        let (seq, case_id) = row?;
        left.push(CaseLeft {
            server_seq: seq,
            case_id: parse_case_id(&case_id)?,
        });
    }
    Ok(left)
}

pub(crate) fn photo_visible_to(
    conn: &Connection,
    sha256: &str,
    account_id: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM case_photos p JOIN cases c ON c.id = p.case_id
         WHERE p.sha256 = :sha AND {})",
        *VISIBLE_TO_ACCOUNT
    );
    Ok(conn.prepare_cached(&sql)?.query_row(
        named_params! {":sha": sha256, ":account": account_id},
        |r| r.get(0),
    )?)
}

pub(crate) fn list_cases(conn: &Connection) -> Result<Vec<StoredCase>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state, updated_at FROM cases ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Millis>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (state, updated_at) = row?;
        out.push(StoredCase {
            case: parse_case(&state)?,
            updated_at,
        });
    }
    Ok(out)
}

pub(crate) fn all_cases(conn: &Connection) -> Result<Vec<Case>, StoreError> {
    Ok(list_cases(conn)?.into_iter().map(|c| c.case).collect())
}

pub(crate) fn case_ids_starting(
    conn: &Connection,
    prefix: &str,
    limit: u32,
) -> Result<Vec<CaseId>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM cases WHERE substr(id, 1, length(?1)) = ?1 LIMIT ?2")?;
    let rows = stmt.query_map(params![prefix, i64::from(limit)], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(parse_case_id(&row?)?);
    }
    Ok(out)
}

pub(crate) fn case_ops(conn: &Connection, id: &CaseId) -> Result<Vec<(u64, Op)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, body FROM ops WHERE case_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([id.to_string()], |r| {
        Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row?;
        out.push((seq, parse_op(&body)?));
    }
    Ok(out)
}

pub(crate) fn stored_outcome(
    conn: &Connection,
    op_id: &OpId,
) -> Result<Option<StoredOutcome>, StoreError> {
    type Row = (String, String, Option<u64>, Option<String>, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT device_id, status, server_seq, code, reason FROM push_outcomes WHERE op_id = ?1",
        )?
        .query_row([op_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(
        row.map(|(device_id, status, seq, code, reason)| StoredOutcome {
            device_id,
            accepted: status == "accepted",
            seq: seq.map(Seq::numbered),
            code,
            reason,
        }),
    )
}

pub(crate) fn op_exists(conn: &Connection, op_id: &OpId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ops WHERE id = ?1)")?
        .query_row([op_id.to_string()], |r| r.get(0))?)
}

fn state_json(case: &Case) -> Result<String, StoreError> {
    serde_json::to_string(case).map_err(|e| StoreError::Backend(format!("a case as JSON: {e}")))
}

pub(crate) fn insert_case(conn: &Connection, case: &Case, now: Millis) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cases (id, grid_id, reported_by, status, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        case.id.to_string(),
        case.grid_id,
        case.reported_by,
        case.status.as_str(),
        state_json(case)?,
        now
    ])?;
    Ok(())
}

pub(crate) fn update_case(conn: &Connection, case: &Case, now: Millis) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE cases SET grid_id = ?2, status = ?3, state = ?4, updated_at = ?5 WHERE id = ?1",
        )?
        .execute(params![
            case.id.to_string(),
            case.grid_id,
            case.status.as_str(),
            state_json(case)?,
            now
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound("the case to update"));
    }
    Ok(())
}

pub(crate) fn set_placement(
    conn: &Connection,
    id: &CaseId,
    grid_id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO case_placements (case_id, grid_id, placed_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (case_id) DO UPDATE SET grid_id = excluded.grid_id,
             placed_at = excluded.placed_at",
    )?
    .execute(params![id.to_string(), grid_id, now])?;
    Ok(())
}

pub(crate) fn set_case_scopes(
    conn: &Connection,
    id: &CaseId,
    units: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let case_id = id.to_string();
    conn.prepare_cached("DELETE FROM case_scopes WHERE case_id = ?1")?
        .execute([&case_id])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO case_scopes (case_id, unit_id) VALUES (?1, ?2)")?;
    for unit in units {
        stmt.execute([case_id.as_str(), unit.as_str()])?;
    }
    Ok(())
}

pub(crate) fn add_departures(
    conn: &Connection,
    id: &CaseId,
    units: &[&str],
) -> Result<Seq, StoreError> {
    let seq = next_seq(conn)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO case_departures (seq, case_id, unit_id) VALUES (?1, ?2, ?3)",
    )?;
    for unit in units {
        stmt.execute(params![seq, id.to_string(), unit])?;
    }
    Ok(Seq::numbered(seq))
}

pub(crate) fn renumber_case(conn: &Connection, id: &CaseId) -> Result<(), StoreError> {
    let seqs: Vec<u64> = {
        let mut stmt =
            conn.prepare_cached("SELECT seq FROM ops WHERE case_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([id.to_string()], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut stmt = conn.prepare_cached("UPDATE ops SET seq = ?1 WHERE seq = ?2")?;
    for old in seqs {
        let new = next_seq(conn)?;
        stmt.execute(params![new, old])?;
    }
    Ok(())
}

pub(crate) fn append_op(
    conn: &Connection,
    op: &Op,
    device_id: Option<&str>,
) -> Result<Seq, StoreError> {
    let seq = next_seq(conn)?;
    let body = serde_json::to_string(op)
        .map_err(|e| StoreError::Backend(format!("an op as JSON: {e}")))?;
    // `cases.resolved_at` follows a resolve by the trigger of migration 0004.
    conn.prepare_cached(
        "INSERT INTO ops (seq, id, case_id, device_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        seq,
        op.id.to_string(),
        op.case_id.to_string(),
        device_id,
        body
    ])?;
    Ok(Seq::numbered(seq))
}

pub(crate) fn add_case_photos(
    conn: &Connection,
    id: &CaseId,
    shas: &[&str],
) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO case_photos (sha256, case_id) VALUES (?1, ?2)")?;
    for sha in shas {
        stmt.execute([*sha, id.to_string().as_str()])?;
    }
    Ok(())
}

pub(crate) fn remember_outcome(conn: &Connection, o: &NewOutcome<'_>) -> Result<(), StoreError> {
    let seq = match o.seq {
        Some(s) => Some(
            s.final_value()
                .ok_or_else(|| StoreError::Backend("a pending number on SQLite".into()))?,
        ),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO push_outcomes (op_id, device_id, status, server_seq, code, reason, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        o.op_id.to_string(),
        o.device_id,
        if o.accepted { "accepted" } else { "rejected" },
        seq,
        o.code,
        o.reason,
        o.decided_at
    ])?;
    Ok(())
}
