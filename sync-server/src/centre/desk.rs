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
//!
//! Written over the store's [`Tx`] (the SQL is `store::{sqlite,postgres}::desk`):
//! every op is recorded through it on both backends.

use gridcase_core::case::{Case, CaseStatus, Face};
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, Op, OpKind, Role};
use gridcase_core::time::Millis;

pub use crate::store::desk::Desk;
use crate::store::desk::NewDesk;
use crate::store::{ReadTx, StoreError, Tx};

/// The reasons shown when the grid leader or resident gave none.
const NOT_DONE_ON_SITE: &str = "网格长现场核查：未办结";
const FROWNY_FACE: &str = "群众评价：不满意（苦脸）";

/// The first of `units` (nearest first) with a dispatcher.
async fn nearest_staffed(
    tx: &mut ReadTx<'_>,
    units: &[&str],
) -> Result<Option<String>, StoreError> {
    for unit in units {
        if tx.has_dispatcher(unit).await? {
            return Ok(Some(unit.to_string()));
        }
    }
    Ok(None)
}

/// `unit` and every unit above it, nearest first.
fn chain<'m>(map: &'m GridMap, unit: &'m str) -> Vec<&'m str> {
    let mut units = vec![unit];
    units.extend(map.ancestors(unit).into_iter().map(|u| u.id.as_str()));
    units
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
pub(crate) async fn home_queue(
    tx: &mut ReadTx<'_>,
    map: &GridMap,
    grid: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(grid) = grid else {
        let top = top_units(map);
        return Ok(nearest_staffed(tx, &top)
            .await?
            .or(top.first().map(|u| u.to_string())));
    };
    Ok(nearest_staffed(tx, &chain(map, grid))
        .await?
        .or(Some(grid.to_string())))
}

/// Moves every open case whose queue no dispatcher reads (its unit has none,
/// or it has no queue) to the nearest unit at or above that queue which has
/// one, so every open case sits in a queue a person reads. Run when staff
/// are appointed or move. Answers how many moved.
pub(crate) async fn rehome(tx: &mut Tx<'_>, map: &GridMap) -> Result<usize, StoreError> {
    let mut moved = 0;
    for unread in tx.unread_desks().await? {
        let queue = unread.queue_unit_id;
        let new = match queue.as_deref().filter(|q| map.get(q).is_some()) {
            Some(q) => nearest_staffed(tx, &chain(map, q)).await?,
            None => home_queue(tx, map, unread.grid_id.as_deref()).await?,
        };
        if new.is_some() && new != queue {
            tx.set_desk_queue(&unread.case_id, new.as_deref()).await?;
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
pub(crate) async fn queue_above(
    tx: &mut ReadTx<'_>,
    map: &GridMap,
    level: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(level) = level else { return Ok(None) };
    let above: Vec<&str> = map
        .ancestors(level)
        .into_iter()
        .map(|u| u.id.as_str())
        .collect();
    nearest_staffed(tx, &above).await
}

/// The level a case is escalated from: the escalating dispatcher's own unit
/// (their centre cannot solve it), or for the server's automatic escalation
/// the nearest staffed unit holding the case's queue.
pub(crate) async fn escalation_level(
    tx: &mut ReadTx<'_>,
    map: &GridMap,
    actor: &Actor,
    queue: Option<&str>,
) -> Result<Option<String>, StoreError> {
    if actor.role == Role::Dispatcher {
        if let Some(unit) = tx.staff_unit(&actor.id).await? {
            return Ok(Some(unit));
        }
    }
    let Some(queue) = queue else { return Ok(None) };
    Ok(nearest_staffed(tx, &chain(map, queue))
        .await?
        .or(Some(queue.to_string())))
}

/// Brings the desk row in step with `op`, just recorded; `next` is the case
/// after it.
pub(crate) async fn follow(
    tx: &mut Tx<'_>,
    map: &GridMap,
    next: &Case,
    op: &Op,
    now: Millis,
) -> Result<(), StoreError> {
    let case_id = &next.id;
    // Only these ops move a case at the centre; the rest (most of what
    // terminals push) cost nothing here. An update of a case not received
    // yet changes no row.
    match &op.kind {
        OpKind::Receive => {
            let queue = home_queue(tx, map, next.grid_id.as_deref()).await?;
            tx.insert_desk(&NewDesk {
                case_id,
                queue_unit_id: queue.as_deref(),
                category: next.category.code(),
                title: &next.title,
                deadline: next.effective_deadline(),
                received_at: now,
            })
            .await?;
            if next.grid_id.is_none() {
                tracing::warn!(case = %case_id, queue = ?queue,
                    "a case outside every grid: the top-level centre must place it in a grid");
            }
        }
        OpKind::Dispatch { department, .. } => {
            tx.desk_dispatched(case_id, department, next.effective_deadline(), now)
                .await?;
        }
        OpKind::Chase { .. } => tx.desk_chased(case_id, now).await?,
        OpKind::Place { .. } => {
            let queue = home_queue(tx, map, next.grid_id.as_deref()).await?;
            tx.set_desk_queue(case_id, queue.as_deref()).await?;
        }
        OpKind::Escalate { .. } => {
            let Some(desk) = tx.load_desk(case_id).await? else {
                return Ok(());
            };
            let level = escalation_level(tx, map, &op.actor, desk.queue_unit_id.as_deref()).await?;
            let above = queue_above(tx, map, level.as_deref())
                .await?
                .or(desk.queue_unit_id);
            tx.desk_escalated(case_id, above.as_deref()).await?;
        }
        OpKind::Verify {
            done: false, note, ..
        } => set_reopen_reason(tx, case_id, note, NOT_DONE_ON_SITE).await?,
        OpKind::Rate {
            face: Face::Frowny,
            comment,
        } if next.status == CaseStatus::Reopened => {
            set_reopen_reason(tx, case_id, comment, FROWNY_FACE).await?
        }
        _ => {}
    }
    Ok(())
}

/// After a new map placed a case in `grid`: a queue that is no longer on the
/// grid's chain of units (moved, or gone from the map) starts again at the
/// case's home queue, so some centre holds it.
pub(crate) async fn follow_move(
    tx: &mut Tx<'_>,
    map: &GridMap,
    case_id: &CaseId,
    grid: Option<&str>,
) -> Result<(), StoreError> {
    let Some(desk) = tx.load_desk(case_id).await? else {
        return Ok(());
    };
    let still_on_chain = match (desk.queue_unit_id.as_deref(), grid) {
        (Some(queue), Some(grid)) => map.is_within(grid, queue),
        // Unplaced: still at the top of the map.
        (Some(queue), None) => top_units(map).contains(&queue),
        _ => false,
    };
    if !still_on_chain {
        let queue = home_queue(tx, map, grid).await?;
        tx.set_desk_queue(case_id, queue.as_deref()).await?;
    }
    Ok(())
}

async fn set_reopen_reason(
    tx: &mut Tx<'_>,
    case_id: &CaseId,
    given: &str,
    fallback: &str,
) -> Result<(), StoreError> {
    let reason = if given.trim().is_empty() {
        fallback
    } else {
        given.trim()
    };
    tx.set_desk_reopen_reason(case_id, reason).await
}
