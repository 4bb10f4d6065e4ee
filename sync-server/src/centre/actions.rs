//! The centre's steps on a case: dispatch (and reassign), accept, progress,
//! resolve, escalate, chase, cancel, close, and placing a case outside every
//! grid in one. Each is one op, recorded in one
//! write transaction through the rules every terminal runs; [`Staff`] decides
//! who may take it, [`gridcase_core::case::next_status`] whether the case
//! allows it now.

use axum::extract::{Path, State};
use axum::Json;
use gridcase_core::case::{next_status, Case, CaseStatus};
use gridcase_core::grid::{GridMap, UnitLevel};
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, PhotoRef, Role};
use gridcase_core::time::{now_millis, Millis};
use gridcase_core::zone::Zone;
use serde::{Deserialize, Serialize};

use crate::store::{ReadTx, Seq, StoreError, Tx};

use super::desk::{self, Desk};
use super::session::StaffPost;
use super::staff::{self, Staff, StaffRole};
use super::CentreConfig;
use crate::cases::{self, SERVER_ACTOR_ID};
use crate::error::{reasons, refused, AppError};
use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Dispatch,
    Accept,
    Progress,
    Resolve,
    Escalate,
    Chase,
    Cancel,
    Close,
    Place,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Dispatch,
        Action::Accept,
        Action::Progress,
        Action::Resolve,
        Action::Escalate,
        Action::Chase,
        Action::Cancel,
        Action::Close,
        Action::Place,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Dispatch => "dispatch",
            Action::Accept => "accept",
            Action::Progress => "progress",
            Action::Resolve => "resolve",
            Action::Escalate => "escalate",
            Action::Chase => "chase",
            Action::Cancel => "cancel",
            Action::Close => "close",
            Action::Place => "place",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The centre's own steps, and the department's.
    fn by_department(self) -> bool {
        matches!(self, Action::Accept | Action::Progress | Action::Resolve)
    }

    /// The op this action makes, with placeholder texts: enough for the rules
    /// to say whether the case allows it now.
    fn sample_kind(self) -> OpKind {
        match self {
            Action::Dispatch => OpKind::Dispatch {
                department: "-".into(),
                deadline: 0,
                note: String::new(),
            },
            Action::Accept => OpKind::Accept,
            Action::Progress => OpKind::Progress {
                note: String::new(),
            },
            Action::Resolve => OpKind::Resolve {
                note: String::new(),
            },
            Action::Escalate => OpKind::Escalate {
                reason: String::new(),
            },
            Action::Chase => OpKind::Chase {
                note: String::new(),
            },
            Action::Cancel => OpKind::Cancel {
                reason: String::new(),
            },
            Action::Close => OpKind::Close,
            Action::Place => OpKind::Place {
                grid_id: "-".into(),
                note: String::new(),
            },
        }
    }
}

/// Every action's fields; each action reads the ones it needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionBody {
    /// Dispatch: the department.
    pub department_id: Option<String>,
    /// Dispatch: by when, UTC milliseconds; the grid leader's proposal if absent.
    pub deadline: Option<Millis>,
    /// Dispatch: by when, as a wall-clock time on the deployment's zone
    /// (`2026-12-01T18:00`, what a date-time picker gives); instead of `deadline`.
    pub deadline_local: Option<String>,
    /// Place: the grid to file a case outside every grid under.
    pub grid_id: Option<String>,
    /// Dispatch, progress, resolve, chase, place.
    pub note: Option<String>,
    /// Escalate, cancel: why (required).
    pub reason: Option<String>,
}

/// What an action recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub case_id: String,
    pub status: CaseStatus,
    pub server_seqs: Vec<u64>,
    /// Whether the case also went to the level above (after a chase).
    pub escalated: bool,
}

/// Whether `staff` is the one to take `action` on a case standing at `desk`
/// (whatever its status): `Err` says why not.
fn check_may(staff: &Staff, map: &GridMap, action: Action, desk: &Desk) -> Result<(), AppError> {
    match staff.role {
        StaffRole::Supervisor => Err(AppError::forbidden(
            reasons::READ_ONLY,
            "a supervisor's view is read-only",
        )),
        StaffRole::Department if action.by_department() => {
            if staff.owns_department(desk.department_id.as_deref()) {
                Ok(())
            } else {
                Err(AppError::forbidden(
                    reasons::DEPARTMENT_ONLY,
                    "only the department the case is dispatched to may do this",
                ))
            }
        }
        StaffRole::Department => Err(AppError::forbidden(
            reasons::DISPATCHER_ONLY,
            "only a dispatcher may do this",
        )),
        StaffRole::Dispatcher if action.by_department() => Err(AppError::forbidden(
            reasons::DEPARTMENT_ONLY,
            "only the department the case is dispatched to may do this",
        )),
        StaffRole::Dispatcher => {
            if staff.holds_queue(map, desk.queue_unit_id.as_deref()) {
                Ok(())
            } else {
                Err(AppError::forbidden(
                    reasons::HELD_ELSEWHERE,
                    "the case is queued at another centre; only its dispatchers may do this",
                ))
            }
        }
    }
}

/// The actions `staff` may take on the case now (for the dashboard's buttons).
pub async fn available(
    tx: &mut ReadTx<'_>,
    staff: &Staff,
    map: &GridMap,
    case: &Case,
    desk: &Desk,
) -> Result<Vec<Action>, StoreError> {
    let can_escalate = desk::queue_above(tx, map, staff.unit_id.as_deref())
        .await?
        .is_some();
    let can_place = cases::mapped_grid(map, case).is_none();
    Ok(Action::ALL
        .into_iter()
        .filter(|a| check_may(staff, map, *a, desk).is_ok())
        .filter(|a| next_status(Some(case.status), &a.sample_kind(), staff.role.op_role()).is_ok())
        .filter(|a| *a != Action::Escalate || can_escalate)
        .filter(|a| *a != Action::Place || can_place)
        .collect())
}

fn required_text(field: &'static str, value: Option<String>) -> Result<String, AppError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(AppError::invalid(field, reasons::REQUIRED, "is required")),
    }
}

/// The department a dispatch names, checked as every way in checks it
/// (dashboard and admin command): it exists (by id, or by its name) and
/// serves the case's area.
pub(crate) async fn department_for(
    tx: &mut crate::store::ReadTx<'_>,
    field: &'static str,
    case: &Case,
    given: Option<String>,
) -> Result<staff::Department, AppError> {
    let given = required_text(field, given)?;
    let department = staff::resolve_department(tx, field, &given).await?;
    if !staff::serves_case(tx, &department, &case.id).await? {
        return Err(AppError::invalid(
            field,
            reasons::DEPARTMENT_NOT_SERVING,
            "the department does not serve this case's area",
        ));
    }
    Ok(department)
}

/// The deadline of a dispatch: as given (UTC ms, or a wall-clock time on the
/// zone), else the one already set if still ahead (a reassignment keeps it),
/// else the grid leader's proposal (it is their right to set it). Never past.
pub(crate) fn dispatch_deadline(
    zone: &Zone,
    case: &Case,
    deadline: Option<Millis>,
    deadline_local: Option<&str>,
    now: Millis,
) -> Result<Millis, AppError> {
    let given = match deadline_local.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Some(
            zone.parse_local("deadline", text)
                .map_err(|e| AppError::input(&e))?,
        ),
        None => deadline,
    };
    let deadline = given
        .or(case.deadline.filter(|d| *d > now))
        .or(case.proposed_deadline)
        .ok_or_else(|| {
            AppError::invalid(
                "deadline",
                reasons::NO_PROPOSED_DEADLINE,
                "is required: the case has no proposed deadline",
            )
        })?;
    if deadline <= now {
        return Err(AppError::invalid(
            "deadline",
            reasons::IN_THE_PAST,
            "must be in the future",
        ));
    }
    Ok(deadline)
}

async fn dispatch_kind(
    tx: &mut ReadTx<'_>,
    zone: &Zone,
    case: &Case,
    body: ActionBody,
    now: Millis,
) -> Result<OpKind, AppError> {
    let department = department_for(tx, "department_id", case, body.department_id).await?;
    let deadline = dispatch_deadline(
        zone,
        case,
        body.deadline,
        body.deadline_local.as_deref(),
        now,
    )?;
    Ok(OpKind::Dispatch {
        department: department.id,
        deadline,
        note: body.note.unwrap_or_default(),
    })
}

/// Filing a case the map places in no grid under `grid_id`: a grid of the
/// map, in the dispatcher's area.
fn place_kind(
    map: &GridMap,
    staff: &Staff,
    case: &Case,
    body: ActionBody,
) -> Result<OpKind, AppError> {
    if cases::mapped_grid(map, case).is_some() {
        return Err(AppError::not_allowed(
            reasons::ALREADY_PLACED,
            "the map places this case in a grid already",
        ));
    }
    let grid_id = required_text("grid_id", body.grid_id)?.trim().to_string();
    let is_grid = map
        .get(&grid_id)
        .is_some_and(|u| u.level == UnitLevel::Grid);
    if !is_grid {
        return Err(AppError::invalid(
            "grid_id",
            reasons::NOT_A_GRID,
            "is not a grid of the map",
        ));
    }
    if let Some(unit) = staff.unit_id.as_deref() {
        if !map.is_within(&grid_id, unit) {
            return Err(AppError::forbidden(
                reasons::OUTSIDE_YOUR_AREA,
                "grid_id: is outside the area you answer for",
            )
            .with_field("grid_id"));
        }
    }
    Ok(OpKind::Place {
        grid_id,
        note: body.note.unwrap_or_default(),
    })
}

/// Takes `action` on the case as `staff`, in the caller's write transaction.
#[allow(clippy::too_many_arguments)]
pub async fn act(
    tx: &mut Tx<'_>,
    map: &GridMap,
    config: &CentreConfig,
    zone: &Zone,
    staff: &Staff,
    case_id: CaseId,
    action: Action,
    body: ActionBody,
    now: Millis,
) -> Result<Recorded, AppError> {
    let not_found = || AppError::not_found("no such case");
    if !staff.may_see(tx, &case_id).await? {
        return Err(not_found());
    }
    let case = tx.load_case(&case_id).await?.ok_or_else(not_found)?;
    let desk = tx.load_desk(&case_id).await?.ok_or_else(not_found)?;
    check_may(staff, map, action, &desk)?;
    let kind = match action {
        Action::Dispatch => dispatch_kind(tx, zone, &case, body, now).await?,
        Action::Accept => OpKind::Accept,
        Action::Progress => OpKind::Progress {
            note: body.note.unwrap_or_default(),
        },
        Action::Resolve => OpKind::Resolve {
            note: body.note.unwrap_or_default(),
        },
        Action::Escalate => {
            let reason = required_text("reason", body.reason)?;
            let above = desk::queue_above(tx, map, staff.unit_id.as_deref()).await?;
            if above.is_none() {
                return Err(AppError::not_allowed(
                    reasons::NO_LEVEL_ABOVE,
                    "there is no level above this one to escalate to",
                ));
            }
            OpKind::Escalate { reason }
        }
        Action::Chase => OpKind::Chase {
            note: body.note.unwrap_or_default(),
        },
        Action::Cancel => OpKind::Cancel {
            reason: required_text("reason", body.reason)?,
        },
        Action::Close => OpKind::Close,
        Action::Place => place_kind(map, staff, &case, body)?,
    };
    let (seq, after) = cases::append_server_op(tx, map, case_id, staff.actor(), kind, now)
        .await?
        .map_err(|e| refused(&e))?;
    let mut seqs = vec![seq];
    let mut status = after.status;
    let mut escalated = false;
    if action == Action::Chase {
        if let Some((seq, case)) = escalate_if_chased_enough(tx, map, config, &after, now).await? {
            seqs.push(seq);
            status = case.status;
            escalated = true;
        }
    }
    let numbering = tx.number().await?;
    let server_seqs = seqs
        .into_iter()
        .map(|s| numbering.of(s))
        .collect::<Result<_, _>>()?;
    tracing::info!(case = %case_id, action = action.as_str(), staff = %staff.id, "centre step");
    Ok(Recorded {
        case_id: case_id.to_string(),
        status,
        server_seqs,
        escalated,
    })
}

/// Whether `staff` may add a photo to the case: the department it is
/// dispatched to, as for reporting progress.
pub async fn check_may_attach_photo(
    tx: &mut ReadTx<'_>,
    map: &GridMap,
    staff: &Staff,
    case_id: &CaseId,
) -> Result<(), AppError> {
    let not_found = || AppError::not_found("no such case");
    if !staff.may_see(tx, case_id).await? {
        return Err(not_found());
    }
    let desk = tx.load_desk(case_id).await?.ok_or_else(not_found)?;
    check_may(staff, map, Action::Progress, &desk)
}

/// A department's photo of its progress or result, attached to the case as
/// `staff` (the department the case is dispatched to), in the caller's write
/// transaction.
pub async fn attach_photo(
    tx: &mut Tx<'_>,
    map: &GridMap,
    staff: &Staff,
    case_id: CaseId,
    photo: PhotoRef,
    now: Millis,
) -> Result<Recorded, AppError> {
    check_may_attach_photo(tx, map, staff, &case_id).await?;
    let kind = OpKind::AttachPhoto {
        photo,
        location: None,
    };
    let (seq, after) = cases::append_server_op(tx, map, case_id, staff.actor(), kind, now)
        .await?
        .map_err(|e| refused(&e))?;
    let seq = tx.number().await?.of(seq)?;
    tracing::info!(case = %case_id, staff = %staff.id, "department photo");
    Ok(Recorded {
        case_id: case_id.to_string(),
        status: after.status,
        server_seqs: vec![seq],
        escalated: false,
    })
}

/// The server's own escalation of a case chased `escalate_after_chases`
/// times without being resolved, when there is a level above to go to.
pub(crate) async fn escalate_if_chased_enough(
    tx: &mut Tx<'_>,
    map: &GridMap,
    config: &CentreConfig,
    case: &Case,
    now: Millis,
) -> Result<Option<(Seq, Case)>, StoreError> {
    let limit = config.escalate_after_chases;
    if limit == 0 {
        return Ok(None);
    }
    let Some(desk) = tx.load_desk(&case.id).await? else {
        return Ok(None);
    };
    // Only chases past the deadline count: a reminder before it is not a
    // failure to act.
    if desk.overdue_chases < limit {
        return Ok(None);
    }
    let reason = format!(
        "超过办结时限后催办{}次仍未办结，自动上报",
        desk.overdue_chases
    );
    let kind = OpKind::Escalate { reason };
    if next_status(Some(case.status), &kind, Role::System).is_err() {
        return Ok(None);
    }
    let actor = Actor {
        role: Role::System,
        id: SERVER_ACTOR_ID.to_string(),
    };
    let level = desk::escalation_level(tx, map, &actor, desk.queue_unit_id.as_deref()).await?;
    if desk::queue_above(tx, map, level.as_deref())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    match cases::append_server_op(tx, map, case.id, actor, kind, now).await? {
        Ok(done) => {
            tracing::info!(case = %case.id, chases = desk.overdue_chases, "case escalated automatically");
            Ok(Some(done))
        }
        Err(e) => {
            tracing::error!(case = %case.id, error = %e, "automatic escalation was refused");
            Ok(None)
        }
    }
}

/// `POST /v1/centre/cases/{id}/{action}`
pub(crate) async fn action_handler(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    post: StaffPost<ActionBody>,
) -> Result<Json<Recorded>, AppError> {
    let action = Action::parse(&action).ok_or_else(|| AppError::not_found("no such action"))?;
    let case_id = CaseId::parse(&id).map_err(|e| AppError::input(&e))?;
    let staff = post.session.staff;
    let body = post.body;
    let config = state.centre.clone();
    let zone = state.zone.clone();
    let grids = state.grids.clone();
    let recorded = state
        .store
        .write(move |tx| {
            let (grids, config, zone, staff, body) = (
                grids.clone(),
                config.clone(),
                zone.clone(),
                staff.clone(),
                body.clone(),
            );
            Box::pin(async move {
                let map = grids.current(tx).await?;
                act(
                    tx,
                    &map,
                    &config,
                    &zone,
                    &staff,
                    case_id,
                    action,
                    body,
                    now_millis(),
                )
                .await
            })
        })
        .await?;
    Ok(Json(recorded))
}
