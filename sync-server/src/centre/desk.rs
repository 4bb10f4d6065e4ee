//! Where a received case stands at the centre (its `case_desk` row), kept in
//! step with its ops by [`follow`], which [`crate::cases::record`] calls for
//! every op whatever made it: a terminal's push, the dashboard, the scheduler,
//! an admin command. So the queue cannot drift from the timeline.
//!
//! - Received: the case queues at the nearest unit at or above its grid that
//!   has a dispatcher (its grid if none has one yet). Every dispatcher at or
//!   above the queue's unit holds it. A case outside every grid ("unplaced")
//!   queues at the top of the map, where the top-level centre places it in a
//!   grid by hand (a `place` op) or cancels it.
//! - Dispatched: to the department of that id; a reopen reason is cleared,
//!   and the deadline's clock (when it was set, its overdue chases) restarts.
//! - Chased after the deadline: one more overdue chase, which is what counts
//!   toward automatic escalation.
//! - Placed: the queue starts again at the new grid's home queue.
//! - Escalated: the queue moves to the nearest staffed unit above the level
//!   that could not solve it, out of that level's hands; the
//!   department lets go of it until the level above dispatches it again.
//! - Not done on site, or a frowny face: the case goes back to its department
//!   (which it never left) with the reason.

use gridcase_core::case::{Case, CaseStatus, Face};
use gridcase_core::grid::GridMap;
use gridcase_core::op::{Actor, Op, OpKind, Role};
use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use super::staff::load_staff;
use crate::error::AppError;

/// The reasons shown when the grid leader or resident gave none.
const NOT_DONE_ON_SITE: &str = "网格长现场核查：未办结";
const FROWNY_FACE: &str = "群众评价：不满意（苦脸）";

/// A case's desk row, as the centre's checks need it.
#[derive(Debug, Clone, Default)]
pub struct Desk {
    pub queue_unit_id: Option<String>,
    pub department_id: Option<String>,
    pub received_at: Millis,
    pub reopen_reason: Option<String>,
    /// Chases made at or after the deadline in force (since it was set).
    pub overdue_chases: u32,
}

pub(crate) fn load_desk(conn: &Connection, case_id: &str) -> Result<Option<Desk>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT queue_unit_id, department_id, received_at, reopen_reason, overdue_chases
             FROM case_desk WHERE case_id = ?1",
        )?
        .query_row([case_id], |r| {
            Ok(Desk {
                queue_unit_id: r.get(0)?,
                department_id: r.get(1)?,
                received_at: r.get(2)?,
                reopen_reason: r.get(3)?,
                overdue_chases: r.get(4)?,
            })
        })
        .optional()?)
}

fn has_dispatcher(conn: &Connection, unit_id: &str) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE role = 'dispatcher' AND unit_id = ?1)",
        )?
        .query_row([unit_id], |r| r.get(0))?)
}

/// The first of `units` (nearest first) with a dispatcher.
fn nearest_staffed(conn: &Connection, units: &[&str]) -> Result<Option<String>, AppError> {
    for unit in units {
        if has_dispatcher(conn, unit)? {
            return Ok(Some(unit.to_string()));
        }
    }
    Ok(None)
}

/// The top of the map: the units with no parent (usually the one city).
pub(crate) fn top_units(map: &GridMap) -> Vec<&str> {
    map.units()
        .iter()
        .filter(|u| u.parent_id.is_none())
        .map(|u| u.id.as_str())
        .collect()
}

/// The queue a newly received case in `grid` waits in: the nearest staffed
/// unit at or above it, else the grid itself (so whichever dispatcher above
/// it is appointed later holds it, and [`rehome`] moves it to them). A case
/// in no grid waits at the top of the map: a staffed top unit, else the
/// first one.
pub(crate) fn home_queue(
    conn: &Connection,
    map: &GridMap,
    grid: Option<&str>,
) -> Result<Option<String>, AppError> {
    let Some(grid) = grid else {
        let top = top_units(map);
        return Ok(nearest_staffed(conn, &top)?.or(top.first().map(|u| u.to_string())));
    };
    let mut units = vec![grid];
    units.extend(map.ancestors(grid).into_iter().map(|u| u.id.as_str()));
    Ok(nearest_staffed(conn, &units)?.or(Some(grid.to_string())))
}

/// Moves every open case whose queue no dispatcher reads (its unit has none,
/// or it has no queue) to the nearest unit at or above that queue which has
/// one, so every open case sits in a queue a person reads. Run when staff
/// are appointed or move. Answers how many moved.
pub(crate) fn rehome(conn: &Connection, map: &GridMap) -> Result<usize, AppError> {
    let waiting: Vec<(String, Option<String>, Option<String>)> = {
        let sql = format!(
            "SELECT d.case_id, d.queue_unit_id, c.grid_id FROM case_desk d JOIN cases c ON c.id = d.case_id
             WHERE c.status NOT IN {}
               AND (d.queue_unit_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM staff s WHERE s.role = 'dispatcher' AND s.unit_id = d.queue_unit_id))",
            *crate::status_sql::FINAL
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut moved = 0;
    for (case_id, queue, grid) in waiting {
        let new = match queue.as_deref().filter(|q| map.get(q).is_some()) {
            Some(q) => {
                let mut units = vec![q];
                units.extend(map.ancestors(q).into_iter().map(|u| u.id.as_str()));
                nearest_staffed(conn, &units)?
            }
            None => home_queue(conn, map, grid.as_deref())?,
        };
        if new.is_some() && new != queue {
            conn.execute(
                "UPDATE case_desk SET queue_unit_id = ?2 WHERE case_id = ?1",
                params![case_id, new],
            )?;
            moved += 1;
        }
    }
    if moved > 0 {
        tracing::info!(cases = moved, "cases moved to a queue a dispatcher reads");
    }
    Ok(moved)
}

/// The nearest staffed unit above `level`, where a case escalated from that
/// level goes; `None` if no centre above it has a dispatcher.
pub(crate) fn queue_above(
    conn: &Connection,
    map: &GridMap,
    level: Option<&str>,
) -> Result<Option<String>, AppError> {
    let Some(level) = level else { return Ok(None) };
    let above: Vec<&str> = map
        .ancestors(level)
        .into_iter()
        .map(|u| u.id.as_str())
        .collect();
    nearest_staffed(conn, &above)
}

/// The level a case is escalated from: the escalating dispatcher's own unit
/// (their centre cannot solve it), or for the server's automatic escalation
/// the nearest staffed unit holding the case's queue.
pub(crate) fn escalation_level(
    conn: &Connection,
    map: &GridMap,
    actor: &Actor,
    queue: Option<&str>,
) -> Result<Option<String>, AppError> {
    if actor.role == Role::Dispatcher {
        if let Some(unit) = load_staff(conn, &actor.id)?.and_then(|s| s.unit_id) {
            return Ok(Some(unit));
        }
    }
    let Some(queue) = queue else { return Ok(None) };
    let mut units = vec![queue];
    units.extend(map.ancestors(queue).into_iter().map(|u| u.id.as_str()));
    Ok(nearest_staffed(conn, &units)?.or(Some(queue.to_string())))
}

/// Brings the desk row in step with `op`, just recorded; `next` is the case
/// after it.
pub(crate) fn follow(
    conn: &Connection,
    map: &GridMap,
    next: &Case,
    op: &Op,
    now: Millis,
) -> Result<(), AppError> {
    let case_id = next.id.to_string();
    // Only these ops move a case at the centre; the rest (most of what
    // terminals push) cost nothing here. An UPDATE of a case not received
    // yet changes no row.
    match &op.kind {
        OpKind::Receive => {
            let queue = home_queue(conn, map, next.grid_id.as_deref())?;
            conn.execute(
                "INSERT OR IGNORE INTO case_desk
                     (case_id, queue_unit_id, category, title, deadline, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    case_id,
                    queue,
                    next.category.code(),
                    next.title,
                    next.effective_deadline(),
                    now
                ],
            )?;
            if next.grid_id.is_none() {
                tracing::warn!(case = %case_id, queue = ?queue,
                    "a case outside every grid: the top-level centre must place it in a grid");
            }
        }
        OpKind::Dispatch { department, .. } => {
            // By id; a dispatch recorded before ids were stored names it.
            conn.execute(
                "UPDATE case_desk SET department_id = COALESCE(
                         (SELECT id FROM departments WHERE id = ?2),
                         (SELECT id FROM departments WHERE name = ?2)),
                     deadline = ?3, deadline_set_at = ?4, overdue_chases = 0, reopen_reason = NULL
                 WHERE case_id = ?1",
                params![case_id, department, next.effective_deadline(), now],
            )?;
        }
        OpKind::Chase { .. } => {
            conn.execute(
                "UPDATE case_desk SET overdue_chases = overdue_chases + 1
                 WHERE case_id = ?1 AND deadline IS NOT NULL AND deadline <= ?2",
                params![case_id, now],
            )?;
        }
        OpKind::Place { .. } => {
            let queue = home_queue(conn, map, next.grid_id.as_deref())?;
            conn.execute(
                "UPDATE case_desk SET queue_unit_id = ?2 WHERE case_id = ?1",
                params![case_id, queue],
            )?;
        }
        OpKind::Escalate { .. } => {
            let Some(desk) = load_desk(conn, &case_id)? else {
                return Ok(());
            };
            let level = escalation_level(conn, map, &op.actor, desk.queue_unit_id.as_deref())?;
            let above = queue_above(conn, map, level.as_deref())?.or(desk.queue_unit_id);
            conn.execute(
                "UPDATE case_desk SET queue_unit_id = ?2, department_id = NULL WHERE case_id = ?1",
                params![case_id, above],
            )?;
        }
        OpKind::Verify {
            done: false, note, ..
        } => {
            set_reopen_reason(conn, &case_id, note, NOT_DONE_ON_SITE)?;
        }
        OpKind::Rate {
            face: Face::Frowny,
            comment,
        } if next.status == CaseStatus::Reopened => {
            set_reopen_reason(conn, &case_id, comment, FROWNY_FACE)?;
        }
        _ => {}
    }
    Ok(())
}

/// After a new map placed a case in `grid`: a queue that is no longer on the
/// grid's chain of units (moved, or gone from the map) starts again at the
/// case's home queue, so some centre holds it.
pub(crate) fn follow_move(
    conn: &Connection,
    map: &GridMap,
    case_id: &str,
    grid: Option<&str>,
) -> Result<(), AppError> {
    let Some(desk) = load_desk(conn, case_id)? else {
        return Ok(());
    };
    let still_on_chain = match (desk.queue_unit_id.as_deref(), grid) {
        (Some(queue), Some(grid)) => map.is_within(grid, queue),
        // Unplaced: still at the top of the map.
        (Some(queue), None) => top_units(map).contains(&queue),
        _ => false,
    };
    if !still_on_chain {
        let queue = home_queue(conn, map, grid)?;
        conn.execute(
            "UPDATE case_desk SET queue_unit_id = ?2 WHERE case_id = ?1",
            params![case_id, queue],
        )?;
    }
    Ok(())
}

fn set_reopen_reason(
    conn: &Connection,
    case_id: &str,
    given: &str,
    fallback: &str,
) -> Result<(), AppError> {
    let reason = if given.trim().is_empty() {
        fallback
    } else {
        given.trim()
    };
    conn.execute(
        "UPDATE case_desk SET reopen_reason = ?2 WHERE case_id = ?1",
        params![case_id, reason],
    )?;
    Ok(())
}
