//! The deadline scheduler: chases (催办) dispatched cases whose deadline is
//! near, and again once it has passed, as ops of the server (role System) on the case's
//! timeline, so the grid leader's terminal pulls them like any other op. Each
//! stage is chased once per deadline (a new deadline arms both again); a case
//! chased often enough after its deadline goes to the level above.
//!
//! "Near" is a share of the time the deadline gave: the last quarter of the
//! span from its dispatch to it, and never more than `near_deadline` before
//! it. A 24-hour deadline is near after 18 hours, a week's in its last day.
//!
//! [`tick`] is one pass with the clock given, so tests can run it at any
//! "now"; [`spawn`] runs it every period until shutdown.

use std::time::Duration;

use gridcase_core::case::Case;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::time::{now_millis, Millis};
use rusqlite::{params, Connection};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::actions::escalate_if_chased_enough;
use super::CentreConfig;
use crate::cases::{self, SERVER_ACTOR_ID};
use crate::error::AppError;
use crate::status_sql;
use crate::AppState;

const NEAR_NOTE: &str = "临近办结时限，请抓紧办理";
const OVERDUE_NOTE: &str = "已超过办结时限，请尽快办结";
/// Cases chased in one pass at most; the rest wait for the next pass, so one
/// write transaction never holds the writer for long.
const MAX_CHASES_PER_TICK: usize = 500;
/// The last 1/NEAR_SHARE of the time a deadline gives is "near" it.
pub const NEAR_SHARE: i64 = 4;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickSummary {
    pub near: usize,
    pub overdue: usize,
    pub escalated: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Near,
    Overdue,
}

/// One pass at `now`, in the caller's write transaction.
pub fn tick(
    conn: &mut Connection,
    map: &GridMap,
    config: &CentreConfig,
    now: Millis,
) -> Result<TickSummary, AppError> {
    // Only cases a department owes work on against a deadline the centre
    // set (a received case waiting for dispatch shows as overdue in the
    // queue; there is nobody to urge yet); resolved ones stop the clock.
    let due: Vec<(String, Millis, Stage)> = {
        let sql = format!(
            "SELECT d.case_id, d.deadline, d.deadline <= :now FROM case_desk d JOIN cases c ON c.id = d.case_id
             WHERE d.deadline IS NOT NULL
               AND json_extract(c.state, '$.deadline') IS NOT NULL
               AND c.status IN {}
               AND ((d.deadline <= :now AND d.overdue_chased_for IS NOT d.deadline)
                 OR (d.deadline > :now
                     AND d.deadline - min(:near,
                         (d.deadline - COALESCE(d.deadline_set_at, d.received_at)) / :share) <= :now
                     AND d.near_chased_for IS NOT d.deadline))
             ORDER BY d.deadline, d.case_id LIMIT :max",
            *status_sql::UNDER_CENTRE_DEADLINE
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            rusqlite::named_params! {
                ":now": now,
                ":near": config.near_deadline,
                ":share": NEAR_SHARE,
                ":max": MAX_CHASES_PER_TICK as i64,
            },
            |r| {
                let overdue: bool = r.get(2)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    if overdue { Stage::Overdue } else { Stage::Near },
                ))
            },
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut summary = TickSummary::default();
    for (case_id, deadline, stage) in due {
        let id = CaseId::parse(&case_id).map_err(|_| AppError::internal())?;
        let note = match stage {
            Stage::Near => NEAR_NOTE,
            Stage::Overdue => OVERDUE_NOTE,
        };
        let Some(case) = chase(conn, map, id, note, now)? else {
            continue;
        };
        // A case found already overdue is not also chased as near afterwards.
        let column = match stage {
            Stage::Near => "near_chased_for = ?2",
            Stage::Overdue => "near_chased_for = ?2, overdue_chased_for = ?2",
        };
        conn.execute(
            &format!("UPDATE case_desk SET {column} WHERE case_id = ?1"),
            params![case_id, deadline],
        )?;
        match stage {
            Stage::Near => summary.near += 1,
            Stage::Overdue => summary.overdue += 1,
        }
        if crate::db::now(escalate_if_chased_enough(
            &mut crate::db::tx(conn),
            map,
            config,
            &case,
            now,
        ))?
        .is_some()
        {
            summary.escalated += 1;
        }
    }
    if summary != TickSummary::default() {
        tracing::info!(
            near = summary.near,
            overdue = summary.overdue,
            escalated = summary.escalated,
            "deadline chases"
        );
    }
    Ok(summary)
}

fn chase(
    conn: &mut Connection,
    map: &GridMap,
    case_id: CaseId,
    note: &str,
    now: Millis,
) -> Result<Option<Case>, AppError> {
    let actor = Actor {
        role: Role::System,
        id: SERVER_ACTOR_ID.to_string(),
    };
    let kind = OpKind::Chase {
        note: note.to_string(),
    };
    let appended = crate::db::now(cases::append_server_op(
        &mut crate::db::tx(conn),
        map,
        case_id,
        actor,
        kind,
        now,
    ))?;
    match appended {
        Ok((_, case)) => Ok(Some(case)),
        Err(e) => {
            // The query chose only chaseable statuses; never stop the pass.
            tracing::error!(case = %case_id, error = %e, "a scheduled chase was refused");
            Ok(None)
        }
    }
}

/// One pass now, through the server's writer.
pub async fn run_once(state: &AppState) -> Result<TickSummary, AppError> {
    let config = state.centre.clone();
    let grids = state.grids.clone();
    state
        .db
        .write(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            tick(tx, &map, &config, now_millis())
        })
        .await
}

/// The scheduler's task, and how to stop it.
pub struct Scheduler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// Stops the task and waits for a pass in progress to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the deadline scheduler ended badly");
        }
    }
}

/// Runs [`tick`] every `period` until stopped.
pub fn spawn(state: AppState, period: Duration) -> Scheduler {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        // The first pass one period after start, not at once: a server
        // restarted in a hurry first serves the terminals waiting for it.
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(e) = run_once(&state).await {
                        tracing::warn!(error = %e, "a deadline pass failed; trying again next period");
                    }
                }
                _ = stopped.changed() => break,
            }
        }
        tracing::debug!("deadline scheduler stopped");
    });
    Scheduler { stop, task }
}
