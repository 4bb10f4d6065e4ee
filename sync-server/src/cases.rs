//! The server's case ledger: every accepted op in server order, each case as its
//! ops add up, the grid the server's map places it in, and who may see it.
//!
//! All functions run inside the caller's write (or read) transaction.
//!
//! ## Server sequence numbers and the commit horizon
//!
//! `ops.seq` is the server sequence number. [`next_seq`] hands out numbers
//! only inside a write transaction, and SQLite runs one write transaction at a
//! time (`BEGIN IMMEDIATE` on the writer connection; an admin command in
//! another process waits for the same lock). So numbers commit in increasing
//! order, and in any read snapshot the highest number, [`commit_horizon`], has
//! every lower number either committed or never to exist: a pull never serves
//! past it, so a cursor can never skip an op that commits later with a lower
//! number. A multi-writer database (PostgreSQL with a sequence) must replace
//! [`commit_horizon`] with the number below the oldest still-open writer's
//! first number (e.g. tracked in a table of in-flight allocations, or with
//! `pg_snapshot_xmin`), and nothing else changes.
//!
//! ## When a case moves
//!
//! Who sees a case follows its grid. When the grid changes (a draft's place is
//! edited, or a new map is imported), the case's earlier ops are renumbered
//! to the end of the sequence (in their order) so that devices of the new grid,
//! whose cursors may be past them, receive the case's whole history. Devices
//! that had them already receive them again: a terminal ignores an op id it
//! already has. Push answers keep the number an op first got. The units the
//! case left get a departure (`case_departures`) numbered like an op, which a
//! pull serves to the accounts of those units that no longer see the case.

use std::collections::BTreeSet;

use gridcase_core::case::Case;
use gridcase_core::case::CaseStatus;
use gridcase_core::error::DomainError;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::ids::OpId;
use gridcase_core::op::{apply, Actor, Op, OpKind, Role};
use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::AppError;

/// The account that may see a case: the reporter, or one answering for the
/// case's grid or a unit above it. `c` is the `cases` row, `:account` the account.
pub(crate) static VISIBLE_TO_ACCOUNT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "(c.reported_by = :account OR (c.status NOT IN {} AND EXISTS (
    SELECT 1 FROM case_scopes s JOIN account_grids g ON g.grid_id = s.unit_id
    WHERE s.case_id = c.id AND g.account_id = :account)))",
            *crate::status_sql::DRAFT
        )
    });

/// The actor id of ops the server makes itself (`Receive`).
pub const SERVER_ACTOR_ID: &str = "server";

/// The next server sequence number. Only inside a write transaction.
pub(crate) fn next_seq(conn: &Connection) -> Result<u64, AppError> {
    Ok(commit_horizon(conn)? + 1)
}

/// The highest number below which every op has committed, as of this
/// transaction's snapshot (see the module docs).
pub(crate) fn commit_horizon(conn: &Connection) -> Result<u64, AppError> {
    // Departures share the numbering of ops.
    Ok(conn
        .prepare_cached(
            "SELECT max(COALESCE((SELECT MAX(seq) FROM ops), 0),
                        COALESCE((SELECT MAX(seq) FROM case_departures), 0))",
        )?
        .query_row([], |r| r.get(0))?)
}

pub(crate) fn load_case(conn: &Connection, id: &CaseId) -> Result<Option<Case>, AppError> {
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM cases WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    state
        .map(|s| {
            serde_json::from_str(&s).map_err(|e| {
                tracing::error!(error = %e, case = %id, "a stored case does not parse");
                AppError::internal()
            })
        })
        .transpose()
}

pub(crate) fn is_visible(
    conn: &Connection,
    case_id: &CaseId,
    account_id: &str,
) -> Result<bool, AppError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM cases c WHERE c.id = :case AND {})",
        *VISIBLE_TO_ACCOUNT
    );
    Ok(conn.prepare_cached(&sql)?.query_row(
        rusqlite::named_params! {":case": case_id.to_string(), ":account": account_id},
        |r| r.get(0),
    )?)
}

/// The grid the server's map places a case in; for a point the map places
/// in no grid, the grid the centre placed it in by hand (while that grid is
/// on the map).
pub(crate) fn grid_of(
    conn: &Connection,
    map: &GridMap,
    case: &Case,
) -> Result<Option<String>, AppError> {
    let mapped = case
        .location
        .as_ref()
        .and_then(|l| map.grid_of(&l.point))
        .map(|u| u.id.clone());
    if mapped.is_some() {
        return Ok(mapped);
    }
    let placed: Option<String> = conn
        .prepare_cached("SELECT grid_id FROM case_placements WHERE case_id = ?1")?
        .query_row([case.id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(placed.filter(|g| map.get(g).is_some()))
}

/// Whether the map itself places the case in a grid (not a hand placement).
pub(crate) fn mapped_grid(map: &GridMap, case: &Case) -> Option<String> {
    case.location
        .as_ref()
        .and_then(|l| map.grid_of(&l.point))
        .map(|u| u.id.clone())
}

/// Writes the units a case is seen from: its grid and every unit above it; a
/// case in no grid is seen from the top of the map, where the top-level
/// centre places it. When `published`, the units it no longer is in get a
/// departure, numbered like an op, so their devices drop it (a draft was
/// never theirs to drop).
fn write_scopes(
    conn: &Connection,
    map: &GridMap,
    case_id: &str,
    grid: Option<&str>,
    published: bool,
) -> Result<(), AppError> {
    let old: BTreeSet<String> = {
        let mut stmt = conn.prepare_cached("SELECT unit_id FROM case_scopes WHERE case_id = ?1")?;
        let rows = stmt.query_map([case_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut new = BTreeSet::new();
    match grid {
        Some(grid) => {
            new.insert(grid.to_string());
            new.extend(map.ancestors(grid).into_iter().map(|u| u.id.clone()));
        }
        None => new.extend(
            crate::centre::desk::top_units(map)
                .into_iter()
                .map(str::to_string),
        ),
    }
    if old == new {
        return Ok(());
    }
    conn.execute("DELETE FROM case_scopes WHERE case_id = ?1", [case_id])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO case_scopes (case_id, unit_id) VALUES (?1, ?2)")?;
    for unit in &new {
        stmt.execute([case_id, unit.as_str()])?;
    }
    let gone: Vec<&String> = old.difference(&new).collect();
    if published && !gone.is_empty() {
        let seq = next_seq(conn)?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO case_departures (seq, case_id, unit_id) VALUES (?1, ?2, ?3)",
        )?;
        for unit in gone {
            stmt.execute(params![seq, case_id, unit])?;
        }
    }
    Ok(())
}

/// Moves all of a case's ops to the end of the sequence, in order.
fn renumber(conn: &Connection, case_id: &str) -> Result<(), AppError> {
    let seqs: Vec<u64> = {
        let mut stmt =
            conn.prepare_cached("SELECT seq FROM ops WHERE case_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([case_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for old in seqs {
        let new = next_seq(conn)?;
        conn.execute("UPDATE ops SET seq = ?1 WHERE seq = ?2", params![new, old])?;
    }
    Ok(())
}

fn save_case(conn: &Connection, case: &Case, now: Millis) -> Result<(), AppError> {
    let state = serde_json::to_string(case).map_err(|_| AppError::internal())?;
    conn.execute(
        "INSERT INTO cases (id, grid_id, reported_by, status, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET grid_id = excluded.grid_id, status = excluded.status,
             state = excluded.state, updated_at = excluded.updated_at",
        params![
            case.id.to_string(),
            case.grid_id,
            case.reported_by,
            case.status.as_str(),
            state,
            now
        ],
    )?;
    Ok(())
}

/// Records an op the rules accepted: `next` is `apply(prev, op)`. Places the
/// case with the server's map, stores it, and appends the op with the next
/// number. Returns the number and the case as stored.
pub(crate) fn record(
    conn: &Connection,
    map: &GridMap,
    prev: Option<&Case>,
    mut next: Case,
    op: &Op,
    device_id: Option<&str>,
    now: Millis,
) -> Result<(u64, Case), AppError> {
    let case_id = op.case_id.to_string();
    if let OpKind::Place { grid_id, .. } = &op.kind {
        conn.execute(
            "INSERT INTO case_placements (case_id, grid_id, placed_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (case_id) DO UPDATE SET grid_id = excluded.grid_id,
                 placed_at = excluded.placed_at",
            params![case_id, grid_id, now],
        )?;
    }
    next.grid_id = grid_of(conn, map, &next)?;
    save_case(conn, &next, now)?;
    let moved = prev.is_some_and(|p| p.grid_id != next.grid_id);
    if prev.is_none() || moved {
        let was_published = prev.is_some_and(|p| p.status != CaseStatus::Draft);
        write_scopes(conn, map, &case_id, next.grid_id.as_deref(), was_published)?;
    }
    // A draft is its grid leader's own; once it leaves the draft state the
    // others of its grid start seeing it, and must receive its whole history
    // even though their cursors are past it.
    let published =
        prev.is_some_and(|p| p.status == CaseStatus::Draft) && next.status != CaseStatus::Draft;
    if moved || published {
        renumber(conn, &case_id)?;
    }
    let seq = next_seq(conn)?;
    let body = serde_json::to_string(op).map_err(|_| AppError::internal())?;
    conn.execute(
        "INSERT INTO ops (seq, id, case_id, device_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![seq, op.id.to_string(), case_id, device_id, body],
    )?;
    if let OpKind::AttachPhoto { photo, .. } = &op.kind {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO case_photos (sha256, case_id) VALUES (?1, ?2)",
        )?;
        stmt.execute([photo.sha256.as_str(), case_id.as_str()])?;
        stmt.execute([photo.thumb_sha256.as_str(), case_id.as_str()])?;
    }
    crate::centre::desk::follow(conn, map, &next, op, now)?;
    Ok((seq, next))
}

/// An op made on the server (receiving, the centre's steps), through the same
/// rules as a device's. `Err` if the rules refuse it.
pub(crate) fn append_server_op(
    conn: &Connection,
    map: &GridMap,
    case_id: CaseId,
    actor: Actor,
    kind: OpKind,
    now: Millis,
) -> Result<Result<(u64, Case), DomainError>, AppError> {
    let prev = load_case(conn, &case_id)?;
    let op = Op {
        id: OpId::new(),
        case_id,
        actor,
        device_time: now,
        at: None,
        recorded_before_enrolment_as: None,
        kind,
    };
    let next = match apply(prev.as_ref(), &op) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(record(conn, map, prev.as_ref(), next, &op, None, now)?))
}

/// The server's own `Receive`, appended when a `Submit` is accepted.
pub(crate) fn receive(
    conn: &Connection,
    map: &GridMap,
    case_id: CaseId,
    now: Millis,
) -> Result<(), AppError> {
    let actor = Actor {
        role: Role::System,
        id: SERVER_ACTOR_ID.to_string(),
    };
    if let Err(e) = append_server_op(conn, map, case_id, actor, OpKind::Receive, now)? {
        // Cannot happen (a submitted case may always be received); never block
        // the device's push over it.
        tracing::error!(case = %case_id, error = %e, "receiving a submitted case was refused");
    }
    Ok(())
}

/// Re-places every case with a newly imported map; returns how many moved.
pub(crate) fn replace_all(
    conn: &Connection,
    map: &GridMap,
    now: Millis,
) -> Result<usize, AppError> {
    let cases: Vec<(String, String)> = {
        let mut stmt = conn.prepare("SELECT id, state FROM cases ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut moved = 0;
    for (id, state) in cases {
        let mut case: Case = serde_json::from_str(&state).map_err(|_| AppError::internal())?;
        let grid = grid_of(conn, map, &case)?;
        // Scopes hold ancestors too, which the new map may have changed.
        write_scopes(
            conn,
            map,
            &id,
            grid.as_deref(),
            case.status != CaseStatus::Draft,
        )?;
        crate::centre::desk::follow_move(conn, map, &id, grid.as_deref())?;
        if grid != case.grid_id {
            case.grid_id = grid;
            save_case(conn, &case, now)?;
            renumber(conn, &id)?;
            moved += 1;
        }
    }
    Ok(moved)
}
