//! The ledger's SQL on PostgreSQL. Numbers are pending until the transaction
//! ends (see [`super`]): ops, departures and push answers written here carry
//! `pending`, and [`super::PgConn::number`] gives them their numbers.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use gridcase_core::case::{Case, CaseStatus};
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::{Op, OpKind};
use gridcase_core::protocol::{CaseLeft, PulledOp};
use gridcase_core::time::Millis;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::{big, col, unsigned, uuid_of, PgConn};
use crate::store::ledger::{NewOutcome, PullQuery, StoredCase, StoredOutcome};
use crate::store::{Seq, StoreError};

/// The statuses only a case's reporter sees (a draft), from the core.
static DRAFT: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| crate::status_sql::names(|s| s == CaseStatus::Draft));

/// The account that may see case `c`: its reporter (`$account_text`), or
/// once it is not a draft (`$drafts`) one answering for a unit it is seen
/// from (`$account`).
fn visible(account_text: &str, drafts: &str, account: &str) -> String {
    format!(
        "(c.reported_by = {account_text} OR (c.status <> ALL({drafts}) AND EXISTS (
            SELECT 1 FROM case_scopes s JOIN account_grids g ON g.grid_id = s.unit_id
            WHERE s.case_id = c.id AND g.account_id = {account})))"
    )
}

static CASE_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT EXISTS (SELECT 1 FROM cases c WHERE c.id = $1 AND {})",
        visible("$2", "$3", "$4")
    )
});

static PULL_OPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT o.seq, o.body, c.grid_id FROM ops o JOIN cases c ON c.id = o.case_id
         WHERE o.seq > $1 AND o.seq <= $2 AND o.device_id IS DISTINCT FROM $3
           AND {}
         ORDER BY o.seq LIMIT $7",
        visible("$4", "$5", "$6")
    )
});

static PULL_DEPARTURES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT d.seq, d.case_id FROM case_departures d
         WHERE d.seq > $1 AND d.seq <= $2
           AND EXISTS (SELECT 1 FROM account_grids g
                       WHERE g.account_id = $3 AND g.grid_id = d.unit_id)
           AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND {})
         ORDER BY d.seq LIMIT $6",
        visible("$4", "$5", "$3")
    )
});

static PHOTO_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT EXISTS (SELECT 1 FROM case_photos p JOIN cases c ON c.id = p.case_id
         WHERE p.sha256 = $1 AND {})",
        visible("$2", "$3", "$4")
    )
});

fn case_of(row: &tokio_postgres::Row, idx: usize) -> Result<Case, StoreError> {
    let Json(case) = col::<Json<Case>>(row, idx)?;
    Ok(case)
}

fn op_of(row: &tokio_postgres::Row, idx: usize) -> Result<Op, StoreError> {
    let Json(op) = col::<Json<Op>>(row, idx)?;
    Ok(op)
}

pub(crate) async fn horizon(c: &mut PgConn<'_>) -> Result<u64, StoreError> {
    let row = c
        .query_one("SELECT last FROM ledger_clock WHERE id = 1", &[])
        .await?;
    Ok(unsigned(col(&row, 0)?))
}

pub(crate) async fn history_id(c: &mut PgConn<'_>) -> Result<String, StoreError> {
    let row = c
        .query_one("SELECT history_id FROM server_history WHERE id = 1", &[])
        .await?;
    col(&row, 0)
}

pub(crate) async fn load_case(
    c: &mut PgConn<'_>,
    id: &CaseId,
    for_update: bool,
) -> Result<Option<Case>, StoreError> {
    let sql = if for_update {
        "SELECT state FROM cases WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT state FROM cases WHERE id = $1"
    };
    c.query_opt(sql, &[id.as_uuid()])
        .await?
        .map(|row| case_of(&row, 0))
        .transpose()
}

pub(crate) async fn case_exists(c: &mut PgConn<'_>, id: &CaseId) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE id = $1)",
            &[id.as_uuid()],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn case_visible_to(
    c: &mut PgConn<'_>,
    id: &CaseId,
    account_id: &str,
) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            &CASE_VISIBLE,
            &[id.as_uuid(), &account_id, &*DRAFT, &uuid_of(account_id)],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn placement_of(
    c: &mut PgConn<'_>,
    id: &CaseId,
) -> Result<Option<String>, StoreError> {
    c.query_opt(
        "SELECT grid_id FROM case_placements WHERE case_id = $1",
        &[id.as_uuid()],
    )
    .await?
    .map(|row| col(&row, 0))
    .transpose()
}

pub(crate) async fn case_scopes(
    c: &mut PgConn<'_>,
    id: &CaseId,
) -> Result<BTreeSet<String>, StoreError> {
    c.query(
        "SELECT unit_id FROM case_scopes WHERE case_id = $1",
        &[id.as_uuid()],
    )
    .await?
    .iter()
    .map(|row| col(row, 0))
    .collect()
}

pub(crate) async fn pull_ops(
    c: &mut PgConn<'_>,
    q: &PullQuery<'_>,
) -> Result<Vec<PulledOp>, StoreError> {
    let rows = c
        .query(
            &PULL_OPS,
            &[
                &big(q.after),
                &big(q.upto),
                // No device has the nil id: a pull for none sends back every op.
                &uuid_of(q.device_id).unwrap_or_default(),
                &q.account_id,
                &*DRAFT,
                &uuid_of(q.account_id),
                &i64::from(q.limit),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PulledOp {
                server_seq: unsigned(col(row, 0)?),
                op: op_of(row, 1)?,
                grid_id: col(row, 2)?,
            })
        })
        .collect()
}

pub(crate) async fn pull_departures(
    c: &mut PgConn<'_>,
    q: &PullQuery<'_>,
) -> Result<Vec<CaseLeft>, StoreError> {
    let rows = c
        .query(
            &PULL_DEPARTURES,
            &[
                &big(q.after),
                &big(q.upto),
                &uuid_of(q.account_id),
                &q.account_id,
                &*DRAFT,
                &i64::from(q.limit),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CaseLeft {
                server_seq: unsigned(col(row, 0)?),
                case_id: CaseId::from_uuid(col(row, 1)?),
            })
        })
        .collect()
}

/// A SHA-256 as the database holds it; `None` if `hex` is not one.
fn sha_bytes(hex: &str) -> Option<Vec<u8>> {
    hex::decode(hex).ok().filter(|b| b.len() == 32)
}

pub(crate) async fn photo_visible_to(
    c: &mut PgConn<'_>,
    sha256: &str,
    account_id: &str,
) -> Result<bool, StoreError> {
    let Some(sha) = sha_bytes(sha256) else {
        return Ok(false);
    };
    let row = c
        .query_one(
            &PHOTO_VISIBLE,
            &[&sha, &account_id, &*DRAFT, &uuid_of(account_id)],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn list_cases(c: &mut PgConn<'_>) -> Result<Vec<StoredCase>, StoreError> {
    let rows = c
        .query("SELECT state, updated_at FROM cases ORDER BY id", &[])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredCase {
                case: case_of(row, 0)?,
                updated_at: col(row, 1)?,
            })
        })
        .collect()
}

pub(crate) async fn lock_all_cases(c: &mut PgConn<'_>) -> Result<Vec<Case>, StoreError> {
    let rows = c
        .query("SELECT state FROM cases ORDER BY id FOR UPDATE", &[])
        .await?;
    rows.iter().map(|row| case_of(row, 0)).collect()
}

pub(crate) async fn case_ids_starting(
    c: &mut PgConn<'_>,
    prefix: &str,
    limit: u32,
) -> Result<Vec<CaseId>, StoreError> {
    let rows = c
        .query(
            "SELECT id FROM cases WHERE starts_with(id::text, $1) ORDER BY id LIMIT $2",
            &[&prefix, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|row| Ok(CaseId::from_uuid(col(row, 0)?)))
        .collect()
}

/// In a write, the ops this transaction appended are not numbered yet: they
/// come last, with number 0.
pub(crate) async fn case_ops(
    c: &mut PgConn<'_>,
    id: &CaseId,
) -> Result<Vec<(u64, Op)>, StoreError> {
    let rows = c
        .query(
            "SELECT COALESCE(seq, 0), body FROM ops WHERE case_id = $1
             ORDER BY seq NULLS LAST, pending",
            &[id.as_uuid()],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((unsigned(col(row, 0)?), op_of(row, 1)?)))
        .collect()
}

pub(crate) async fn stored_outcome(
    c: &mut PgConn<'_>,
    op_id: &OpId,
) -> Result<Option<StoredOutcome>, StoreError> {
    let Some(row) = c
        .query_opt(
            "SELECT device_id, status, server_seq, pending, code, reason
             FROM push_outcomes WHERE op_id = $1",
            &[op_id.as_uuid()],
        )
        .await?
    else {
        return Ok(None);
    };
    let seq = match (col::<Option<i64>>(&row, 2)?, col::<Option<i32>>(&row, 3)?) {
        (Some(n), _) => Some(Seq::numbered(unsigned(n))),
        (None, Some(k)) => Some(Seq::pending(k as u32)),
        (None, None) => None,
    };
    Ok(Some(StoredOutcome {
        device_id: super::id_text(col::<Uuid>(&row, 0)?),
        accepted: col::<String>(&row, 1)? == "accepted",
        seq,
        code: col(&row, 4)?,
        reason: col(&row, 5)?,
    }))
}

pub(crate) async fn op_exists(c: &mut PgConn<'_>, op_id: &OpId) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM ops WHERE id = $1)",
            &[op_id.as_uuid()],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn insert_case(
    c: &mut PgConn<'_>,
    case: &Case,
    now: Millis,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO cases (id, grid_id, reported_by, status, state, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            case.id.as_uuid(),
            &case.grid_id,
            &case.reported_by,
            &case.status.as_str(),
            &Json(case),
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update_case(
    c: &mut PgConn<'_>,
    case: &Case,
    now: Millis,
) -> Result<(), StoreError> {
    let changed = c
        .execute(
            "UPDATE cases SET grid_id = $2, status = $3, state = $4, updated_at = $5
             WHERE id = $1",
            &[
                case.id.as_uuid(),
                &case.grid_id,
                &case.status.as_str(),
                &Json(case),
                &now,
            ],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("the case to update"));
    }
    Ok(())
}

pub(crate) async fn set_placement(
    c: &mut PgConn<'_>,
    id: &CaseId,
    grid_id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO case_placements (case_id, grid_id, placed_at) VALUES ($1, $2, $3)
         ON CONFLICT (case_id) DO UPDATE SET grid_id = excluded.grid_id,
             placed_at = excluded.placed_at",
        &[id.as_uuid(), &grid_id, &now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_case_scopes(
    c: &mut PgConn<'_>,
    id: &CaseId,
    units: &BTreeSet<String>,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM case_scopes WHERE case_id = $1",
        &[id.as_uuid()],
    )
    .await?;
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    c.execute(
        "INSERT INTO case_scopes (case_id, unit_id) SELECT $1, unnest($2::text[])",
        &[id.as_uuid(), &units],
    )
    .await?;
    Ok(())
}

pub(crate) async fn add_departures(
    c: &mut PgConn<'_>,
    id: &CaseId,
    units: &[&str],
) -> Result<Seq, StoreError> {
    let k = c.next_pending();
    c.execute(
        "INSERT INTO case_departures (pending, case_id, unit_id)
         SELECT $1, $2, unnest($3::text[])",
        &[&(k as i32), id.as_uuid(), &units],
    )
    .await?;
    Ok(Seq::pending(k))
}

pub(crate) async fn renumber_case(c: &mut PgConn<'_>, id: &CaseId) -> Result<(), StoreError> {
    // Committed ops keep their order (by number) ahead of this
    // transaction's own (by their pending order); all become pending again,
    // numbered at the end after everything numbered so far.
    let after = c.last_pending();
    let moved = c
        .execute(
            "WITH moved AS (
                 SELECT id, row_number() OVER (ORDER BY seq NULLS LAST, pending) AS r
                 FROM ops WHERE case_id = $1)
             UPDATE ops SET seq = NULL, pending = $2::integer + moved.r::integer
             FROM moved WHERE ops.id = moved.id",
            &[id.as_uuid(), &(after as i32)],
        )
        .await?;
    c.reserve_pending(moved as u32);
    Ok(())
}

pub(crate) async fn append_op(
    c: &mut PgConn<'_>,
    op: &Op,
    device_id: Option<&str>,
) -> Result<Seq, StoreError> {
    let k = c.next_pending();
    let device = device_id.and_then(uuid_of);
    c.execute(
        "INSERT INTO ops (id, pending, case_id, device_id, body) VALUES ($1, $2, $3, $4, $5)",
        &[
            op.id.as_uuid(),
            &(k as i32),
            op.case_id.as_uuid(),
            &device,
            &Json(op),
        ],
    )
    .await?;
    // What SQLite's trigger of migration 0004 does: when the department last
    // reported the case resolved, by the op's own clock.
    if matches!(op.kind, OpKind::Resolve { .. }) {
        c.execute(
            "UPDATE cases SET resolved_at = $2 WHERE id = $1",
            &[op.case_id.as_uuid(), &op.device_time],
        )
        .await?;
    }
    Ok(Seq::pending(k))
}

pub(crate) async fn add_case_photos(
    c: &mut PgConn<'_>,
    id: &CaseId,
    shas: &[&str],
) -> Result<(), StoreError> {
    let bytes = shas
        .iter()
        .map(|s| {
            sha_bytes(s).ok_or_else(|| StoreError::Backend("a photo hash is not a SHA-256".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    c.execute(
        "INSERT INTO case_photos (sha256, case_id) SELECT unnest($1::bytea[]), $2
         ON CONFLICT DO NOTHING",
        &[&bytes, id.as_uuid()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn remember_outcome(
    c: &mut PgConn<'_>,
    o: &NewOutcome<'_>,
) -> Result<(), StoreError> {
    let seq = o.seq.and_then(Seq::final_value).map(big);
    let pending = o.seq.and_then(Seq::pending_ordinal).map(|k| k as i32);
    let device = uuid_of(o.device_id)
        .ok_or_else(|| StoreError::Backend("a device id that is not a uuid".into()))?;
    c.execute(
        "INSERT INTO push_outcomes
             (op_id, device_id, status, server_seq, pending, code, reason, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            o.op_id.as_uuid(),
            &device,
            &if o.accepted { "accepted" } else { "rejected" },
            &seq,
            &pending,
            &o.code,
            &o.reason,
            &o.decided_at,
        ],
    )
    .await?;
    Ok(())
}
