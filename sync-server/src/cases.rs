//! The server's case ledger: every accepted op in server order, each case as its
//! ops add up, the grid the server's map places it in, and who may see it.
//! The rules, written once over the store's [`Tx`] for both backends; the
//! SQL is in [`crate::store::ledger`]'s backends.
//!
//! ## Server sequence numbers and the commit horizon
//!
//! `ops.seq` is the server sequence number, handed out only inside a write
//! transaction ([`Tx::append_op`], [`Tx::add_departures`],
//! [`Tx::renumber_case`]) and read back through [`crate::store::Numbering`].
//! In any read snapshot [`crate::store::ReadTx::horizon`] is the commit
//! horizon: every lower number has committed or never will exist, so a pull
//! never serves past it and a cursor never skips an op that commits later
//! with a lower number. On SQLite that is the highest number (one writer); on
//! PostgreSQL numbers are taken at the end of each write under the ledger
//! clock's row lock (see [`crate::store::postgres`]).
//!
//! ## When a case moves
//!
//! Who sees a case follows its grid. When the grid changes (a draft's place is
//! edited, or a new map is imported), the case's earlier ops are renumbered
//! to the end of the sequence (in their order) so that devices of the new grid,
//! whose cursors may be past them, receive the case's whole history. Devices
//! that had them already receive them again: a terminal ignores an op id it
//! already has. Push answers keep the number an op first got. The units the
//! case left get a departure numbered like an op, which a pull serves to the
//! accounts of those units that no longer see the case.

use std::collections::BTreeSet;

use gridcase_core::case::{Case, CaseStatus};
use gridcase_core::error::DomainError;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::{apply, Actor, Op, OpKind, Role};
use gridcase_core::time::Millis;

use crate::store::{ReadTx, Seq, StoreError, Tx};

/// The actor id of ops the server makes itself (`Receive`).
pub const SERVER_ACTOR_ID: &str = "server";

/// The grid the server's map places a case in; for a point the map places
/// in no grid, the grid the centre placed it in by hand (while that grid is
/// on the map).
pub(crate) async fn grid_of(
    tx: &mut ReadTx<'_>,
    map: &GridMap,
    case: &Case,
) -> Result<Option<String>, StoreError> {
    if let Some(mapped) = mapped_grid(map, case) {
        return Ok(Some(mapped));
    }
    let placed = tx.placement_of(&case.id).await?;
    Ok(placed.filter(|g| map.get(g).is_some()))
}

/// Whether the map itself places the case in a grid (not a hand placement).
pub(crate) fn mapped_grid(map: &GridMap, case: &Case) -> Option<String> {
    case.location
        .as_ref()
        .and_then(|l| map.grid_of(&l.point))
        .map(|u| u.id.clone())
}

/// The units a case in `grid` is seen from: its grid and every unit above it;
/// a case in no grid is seen from the top of the map, where the top-level
/// centre places it.
fn scopes_of(map: &GridMap, grid: Option<&str>) -> BTreeSet<String> {
    let mut units = BTreeSet::new();
    match grid {
        Some(grid) => {
            units.insert(grid.to_string());
            units.extend(map.ancestors(grid).into_iter().map(|u| u.id.clone()));
        }
        None => units.extend(
            crate::centre::desk::top_units(map)
                .into_iter()
                .map(str::to_string),
        ),
    }
    units
}

/// Writes the units a case is seen from. When `published`, the units it no
/// longer is in get a departure, numbered like an op, so their devices drop
/// it (a draft was never theirs to drop).
async fn write_scopes(
    tx: &mut Tx<'_>,
    map: &GridMap,
    case_id: &CaseId,
    grid: Option<&str>,
    published: bool,
) -> Result<(), StoreError> {
    let old = tx.case_scopes(case_id).await?;
    let new = scopes_of(map, grid);
    if old == new {
        return Ok(());
    }
    tx.set_case_scopes(case_id, &new).await?;
    let gone: Vec<&str> = old.difference(&new).map(String::as_str).collect();
    if published && !gone.is_empty() {
        tx.add_departures(case_id, &gone).await?;
    }
    Ok(())
}

/// Records an op the rules accepted: `next` is `apply(prev, op)`. Places the
/// case with the server's map, stores it, and appends the op with the next
/// number. Returns the number and the case as stored.
pub(crate) async fn record(
    tx: &mut Tx<'_>,
    map: &GridMap,
    prev: Option<&Case>,
    mut next: Case,
    op: &Op,
    device_id: Option<&str>,
    now: Millis,
) -> Result<(Seq, Case), StoreError> {
    let case_id = op.case_id;
    if let OpKind::Place { grid_id, .. } = &op.kind {
        tx.set_placement(&case_id, grid_id, now).await?;
    }
    next.grid_id = grid_of(tx, map, &next).await?;
    if prev.is_none() {
        tx.insert_case(&next, now).await?;
    } else {
        tx.update_case(&next, now).await?;
    }
    let moved = prev.is_some_and(|p| p.grid_id != next.grid_id);
    if prev.is_none() || moved {
        let was_published = prev.is_some_and(|p| p.status != CaseStatus::Draft);
        write_scopes(tx, map, &case_id, next.grid_id.as_deref(), was_published).await?;
    }
    // A draft is its grid leader's own; once it leaves the draft state the
    // others of its grid start seeing it, and must receive its whole history
    // even though their cursors are past it.
    let published =
        prev.is_some_and(|p| p.status == CaseStatus::Draft) && next.status != CaseStatus::Draft;
    if moved || published {
        tx.renumber_case(&case_id).await?;
    }
    let seq = tx.append_op(op, device_id).await?;
    if let OpKind::AttachPhoto { photo, .. } = &op.kind {
        tx.add_case_photos(&case_id, &[&photo.sha256, &photo.thumb_sha256])
            .await?;
    }
    crate::centre::desk::follow(tx, map, &next, op, now).await?;
    Ok((seq, next))
}

/// An op made on the server (receiving, the centre's steps), through the same
/// rules as a device's. `Err` if the rules refuse it.
pub(crate) async fn append_server_op(
    tx: &mut Tx<'_>,
    map: &GridMap,
    case_id: CaseId,
    actor: Actor,
    kind: OpKind,
    now: Millis,
) -> Result<Result<(Seq, Case), DomainError>, StoreError> {
    let prev = tx.load_case(&case_id).await?;
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
    Ok(Ok(
        record(tx, map, prev.as_ref(), next, &op, None, now).await?
    ))
}

/// The server's own `Receive`, appended when a `Submit` is accepted.
pub(crate) async fn receive(
    tx: &mut Tx<'_>,
    map: &GridMap,
    case_id: CaseId,
    now: Millis,
) -> Result<(), StoreError> {
    let actor = Actor {
        role: Role::System,
        id: SERVER_ACTOR_ID.to_string(),
    };
    if let Err(e) = append_server_op(tx, map, case_id, actor, OpKind::Receive, now).await? {
        // Cannot happen (a submitted case may always be received); never block
        // the device's push over it.
        tracing::error!(case = %case_id, error = %e, "receiving a submitted case was refused");
    }
    Ok(())
}

/// Re-places every case with a newly imported map; returns how many moved.
pub(crate) async fn replace_all(
    tx: &mut Tx<'_>,
    map: &GridMap,
    now: Millis,
) -> Result<usize, StoreError> {
    let mut moved = 0;
    for mut case in tx.lock_all_cases().await? {
        let grid = grid_of(tx, map, &case).await?;
        // Scopes hold ancestors too, which the new map may have changed.
        write_scopes(
            tx,
            map,
            &case.id,
            grid.as_deref(),
            case.status != CaseStatus::Draft,
        )
        .await?;
        crate::centre::desk::follow_move(tx, map, &case.id, grid.as_deref()).await?;
        if grid != case.grid_id {
            case.grid_id = grid;
            tx.update_case(&case, now).await?;
            tx.renumber_case(&case.id).await?;
            moved += 1;
        }
    }
    Ok(moved)
}
