//! What the dashboard reads: the queue of cases with its filters, one case
//! with its timeline, photos and the actions its reader may take, a case's
//! photo files, and the departments a dispatcher can choose from. Every query
//! is narrowed by [`Staff::visible_sql`].

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gridcase_core::case::{Case, CaseStatus, Category};
use gridcase_core::ids::{CaseId, PhotoId};
use gridcase_core::op::{Actor, Op, OpKind, PhotoRef, Role};
use gridcase_core::time::{now_millis, Millis};
use rusqlite::types::ToSql;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::actions::{self, Action};

use super::session::StaffSession;
use super::staff::{Department, Staff, StaffRole};
use crate::error::{reasons, AppError};
use crate::names::{self, Departments};
use crate::photos::is_sha256;
use crate::status_sql;
use crate::AppState;

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 200;
pub const MAX_SEARCH_CHARS: usize = 100;

/// The queue's filters, all optional: `?status=received,reopened&category=
/// collapsed_manhole&unit=t-1&department=…&overdue=true&q=井盖&mine=true&page=2`.
#[derive(Debug, Default, Deserialize)]
pub struct QueueFilter {
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub category: Option<String>,
    /// Cases in this unit (or below it).
    pub unit: Option<String>,
    /// Cases queued exactly at this unit (e.g. escalated to it).
    pub queue_unit: Option<String>,
    /// Cases dispatched to this department (its id).
    pub department: Option<String>,
    pub overdue: Option<bool>,
    /// Cases the map places in no grid, waiting at the top-level centre.
    pub unplaced: Option<bool>,
    /// Words in the title or description.
    pub q: Option<String>,
    /// A dispatcher: the open cases they hold (queued at their unit or
    /// below); a handler: the cases their department still has to finish.
    pub mine: Option<bool>,
    /// From 1.
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub case_id: String,
    pub status: String,
    pub category: String,
    pub title: String,
    pub grid_id: Option<String>,
    pub queue_unit_id: Option<String>,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub deadline: Option<Millis>,
    pub overdue: bool,
    pub chase_count: u32,
    pub received_at: Millis,
    pub updated_at: Millis,
    pub reopen_reason: Option<String>,
    /// In no grid: outside every grid of the map (or in a hole of one), and
    /// not placed in one by hand yet.
    pub unplaced: bool,
    /// Where the case is, for the map of the queue.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuePage {
    pub cases: Vec<QueueRow>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// Escapes `%`, `_` and `\` so a search is taken as plain text.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The queue page `filter` asks for, as `staff` may see it.
pub fn list(
    conn: &Connection,
    map: &gridcase_core::grid::GridMap,
    staff: &Staff,
    filter: &QueueFilter,
    now: Millis,
) -> Result<QueuePage, AppError> {
    let mut wheres = vec![staff.visible_sql().to_string()];
    let mut args: Vec<(&str, Box<dyn ToSql>)> =
        vec![(":scope", Box::new(staff.scope().to_string()))];
    if let Some(statuses) = filter.status.as_deref().filter(|s| !s.trim().is_empty()) {
        let mut list = Vec::new();
        for s in statuses.split(',') {
            let status = CaseStatus::parse(s.trim()).ok_or_else(|| {
                AppError::invalid("status", reasons::NOT_A_STATUS, "is not a case status")
            })?;
            list.push(status.as_str());
        }
        let json = serde_json::to_string(&list).map_err(|_| AppError::internal())?;
        wheres.push("c.status IN (SELECT value FROM json_each(:statuses))".into());
        args.push((":statuses", Box::new(json)));
    }
    if let Some(category) = filter.category.as_deref().filter(|s| !s.is_empty()) {
        let category = Category::parse(category).ok_or_else(|| {
            AppError::invalid(
                "category",
                reasons::NOT_A_CATEGORY,
                "is not a case category",
            )
        })?;
        wheres.push("d.category = :category".into());
        args.push((":category", Box::new(category.code())));
    }
    if let Some(unit) = filter.unit.as_deref().filter(|s| !s.is_empty()) {
        wheres.push(
            "EXISTS (SELECT 1 FROM case_scopes u WHERE u.case_id = c.id AND u.unit_id = :unit)"
                .into(),
        );
        args.push((":unit", Box::new(unit.to_string())));
    }
    if let Some(queue) = filter.queue_unit.as_deref().filter(|s| !s.is_empty()) {
        wheres.push("d.queue_unit_id = :queue_unit".into());
        args.push((":queue_unit", Box::new(queue.to_string())));
    }
    if let Some(department) = filter.department.as_deref().filter(|s| !s.is_empty()) {
        wheres.push("d.department_id = :department".into());
        args.push((":department", Box::new(department.to_string())));
    }
    if filter.overdue == Some(true) {
        wheres.push(format!(
            "d.deadline < :now AND c.status IN {}",
            *status_sql::AWAITING_HANDLING
        ));
    }
    if filter.unplaced == Some(true) {
        wheres.push("c.grid_id IS NULL".into());
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(AppError::invalid(
                "q",
                reasons::TOO_LONG,
                format!("must be at most {MAX_SEARCH_CHARS} characters"),
            ));
        }
        wheres.push(
            "(d.title LIKE :q ESCAPE '\\' OR json_extract(c.state, '$.description') LIKE :q ESCAPE '\\')"
                .into(),
        );
        args.push((":q", Box::new(like_pattern(q))));
    }
    if filter.mine == Some(true) {
        match staff.role {
            StaffRole::Dispatcher => {
                // Held: the queue's unit is on the case's chain (every unit of
                // it is) and not above the dispatcher's own unit.
                let above: Vec<&str> = staff
                    .unit_id
                    .as_deref()
                    .map(|u| {
                        map.ancestors(u)
                            .into_iter()
                            .map(|a| a.id.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let json = serde_json::to_string(&above).map_err(|_| AppError::internal())?;
                wheres.push(format!(
                    "d.queue_unit_id IS NOT NULL
                     AND d.queue_unit_id NOT IN (SELECT value FROM json_each(:above))
                     AND c.status NOT IN {}",
                    *status_sql::FINAL
                ));
                args.push((":above", Box::new(json)));
            }
            StaffRole::Department => {
                wheres.push(format!("c.status IN {}", *status_sql::AWAITING_DEPARTMENT));
            }
            StaffRole::Supervisor => {}
        }
    }
    let per_page = filter
        .per_page
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page = filter.page.unwrap_or(1).max(1);
    let from = "FROM cases c JOIN case_desk d ON d.case_id = c.id
                LEFT JOIN departments dep ON dep.id = d.department_id";
    let where_sql = wheres.join(" AND ");
    let now_used = where_sql.contains(":now");
    let count_sql = format!("SELECT COUNT(*) {from} WHERE {where_sql}");
    let rows_sql = format!(
        "SELECT c.id, c.status, d.category, d.title, c.grid_id, d.queue_unit_id, d.department_id,
                dep.name, d.deadline, c.status IN {awaiting} AND d.deadline < :now,
                json_extract(c.state, '$.chase_count'), d.received_at, c.updated_at, d.reopen_reason,
                json_extract(c.state, '$.location.point.lat'),
                json_extract(c.state, '$.location.point.lon')
         {from} WHERE {where_sql}
         ORDER BY d.deadline IS NULL, d.deadline, d.received_at, c.id
         LIMIT :limit OFFSET :offset",
        awaiting = *status_sql::AWAITING_HANDLING
    );
    let count_args: Vec<(&str, &dyn ToSql)> = args
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .chain(now_used.then_some((":now", &now as &dyn ToSql)))
        .collect();
    let total: u64 = conn
        .prepare_cached(&count_sql)?
        .query_row(count_args.as_slice(), |r| r.get(0))?;
    let limit = per_page as i64;
    let offset = (page as i64 - 1) * per_page as i64;
    let row_args: Vec<(&str, &dyn ToSql)> = args
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .chain([
            (":now", &now as &dyn ToSql),
            (":limit", &limit as &dyn ToSql),
            (":offset", &offset as &dyn ToSql),
        ])
        .collect();
    let mut stmt = conn.prepare_cached(&rows_sql)?;
    let rows = stmt.query_map(row_args.as_slice(), |r| {
        Ok(QueueRow {
            case_id: r.get(0)?,
            status: r.get(1)?,
            category: r.get(2)?,
            title: r.get(3)?,
            grid_id: r.get(4)?,
            queue_unit_id: r.get(5)?,
            department_id: r.get(6)?,
            department_name: r.get(7)?,
            deadline: r.get(8)?,
            overdue: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
            chase_count: r.get::<_, Option<u32>>(10)?.unwrap_or(0),
            received_at: r.get(11)?,
            updated_at: r.get(12)?,
            reopen_reason: r.get(13)?,
            unplaced: r.get::<_, Option<String>>(4)?.is_none(),
            lat: r.get(14)?,
            lon: r.get(15)?,
        })
    })?;
    Ok(QueuePage {
        cases: rows.collect::<Result<_, _>>()?,
        total,
        page,
        per_page,
    })
}

/// `GET /v1/centre/cases?…`
pub(crate) async fn queue_handler(
    State(state): State<AppState>,
    session: StaffSession,
    RawQuery(query): RawQuery,
) -> Result<Json<QueuePage>, AppError> {
    let filter: QueueFilter = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| {
            AppError::invalid(
                "query",
                reasons::WRONG_TYPE,
                "a filter has the wrong type (overdue and mine take true or false, page and per_page numbers)",
            )
        })?;
    let staff = session.staff;
    let grids = state.grids.clone();
    let page = state
        .db
        .read(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            list(tx, &map, &staff, &filter, now_millis())
        })
        .await?;
    Ok(Json(page))
}

/// One entry of a case's timeline: the op as recorded, its place in the
/// server's order, the name of who made it when the server knows them, and
/// for a dispatch the department's name.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub server_seq: u64,
    pub actor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_name: Option<String>,
    #[serde(flatten)]
    pub op: Op,
}

/// Which step of a case a photo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoStep {
    /// The scene as reported (the grid leader's, a resident's, the centre's).
    Scene,
    /// The department's work under way.
    Progress,
    /// The department's finished work.
    Result,
    /// The grid leader's check on site after the department resolved it.
    Check,
}

/// A photo of the case with the step it belongs to, who took it and when.
#[derive(Debug, Clone, Serialize)]
pub struct CasePhoto {
    pub step: PhotoStep,
    pub actor: Actor,
    pub actor_name: Option<String>,
    /// When it was attached (the attaching device's clock).
    pub at: Millis,
    pub server_seq: u64,
    #[serde(flatten)]
    pub photo: PhotoRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeskView {
    pub queue_unit_id: Option<String>,
    pub queue_unit_name: Option<String>,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub received_at: Millis,
    pub reopen_reason: Option<String>,
    pub overdue: bool,
    /// In no grid (see [`QueueRow::unplaced`]).
    pub unplaced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub case: Case,
    pub grid_name: Option<String>,
    pub desk: DeskView,
    pub timeline: Vec<TimelineEntry>,
    /// By step (scene, progress, result, on-site check), then in the order
    /// they were attached.
    pub photos: Vec<CasePhoto>,
    /// What the reader may do to the case now.
    pub actions: Vec<Action>,
}

/// The step of each photo of a timeline: a department's photo belongs to
/// the step it was sent for (the page sends photos just before the progress
/// report or the resolution they illustrate); the grid leader's once the
/// department has resolved the case, or named by the check, are the check's;
/// every other photo shows the scene.
fn photo_steps(entries: &[TimelineEntry]) -> Vec<CasePhoto> {
    let checked: Vec<PhotoId> = entries
        .iter()
        .filter_map(|e| match &e.op.kind {
            OpKind::Verify { photo_ids, .. } => Some(photo_ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut status: Option<CaseStatus> = None;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let OpKind::AttachPhoto { photo, .. } = &e.op.kind {
            let step = match e.op.actor.role {
                Role::Department => {
                    let next_step = entries[i + 1..].iter().find_map(|later| {
                        match (&later.op.kind, later.op.actor.id == e.op.actor.id) {
                            (OpKind::Resolve { .. }, true) => Some(PhotoStep::Result),
                            (OpKind::Progress { .. }, true) => Some(PhotoStep::Progress),
                            _ => None,
                        }
                    });
                    next_step.unwrap_or(PhotoStep::Progress)
                }
                _ if checked.contains(&photo.id) => PhotoStep::Check,
                Role::GridLeader if status == Some(CaseStatus::Resolved) => PhotoStep::Check,
                _ => PhotoStep::Scene,
            };
            out.push(CasePhoto {
                step,
                actor: e.op.actor.clone(),
                actor_name: e.actor_name.clone(),
                at: e.op.device_time,
                server_seq: e.server_seq,
                photo: photo.clone(),
            });
        }
        // The status after each op, as the rules have it (the ops were
        // accepted in this order, so each is allowed).
        status = gridcase_core::case::next_status(status, &e.op.kind, e.op.actor.role)
            .ok()
            .or(status);
    }
    out.sort_by_key(|p| (p.step, p.server_seq));
    out
}

/// The case as `staff` may see it; `not_found` if they may not.
pub fn view(
    conn: &mut Connection,
    map: &gridcase_core::grid::GridMap,
    staff: &Staff,
    case_id: &CaseId,
    now: Millis,
) -> Result<CaseView, AppError> {
    let not_found = || AppError::not_found("no such case");
    if !staff.sees(conn, case_id)? {
        return Err(not_found());
    }
    let mut tx = crate::db::read_tx(conn);
    let case = crate::db::now(tx.load_case(case_id))?.ok_or_else(not_found)?;
    let desk = crate::db::now(tx.load_desk(case_id))?.ok_or_else(not_found)?;
    let departments = crate::db::now(Departments::load(&mut tx))?;
    let ops = crate::db::now(tx.case_ops(case_id))?;
    let actors: Vec<&str> = ops.iter().map(|(_, op)| op.actor.id.as_str()).collect();
    let actor_names = crate::db::now(names::actor_names(&mut tx, &actors))?;
    let mut timeline = Vec::new();
    for (seq, op) in ops {
        let department_name = match &op.kind {
            OpKind::Dispatch { department, .. } => Some(departments.name_of(department)),
            _ => None,
        };
        timeline.push(TimelineEntry {
            server_seq: seq,
            actor_name: actor_names.get(&op.actor.id).cloned(),
            department_name,
            op,
        });
    }
    let photos = photo_steps(&timeline);
    let department_name = departments.name_of_opt(desk.department_id.as_deref());
    let unit_name = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| map.get(id))
            .map(|u| u.name.clone())
    };
    Ok(CaseView {
        grid_name: unit_name(&case.grid_id),
        actions: crate::db::now(actions::available(
            &mut crate::db::read_tx(conn),
            staff,
            map,
            &case,
            &desk,
        ))?,
        desk: DeskView {
            queue_unit_name: unit_name(&desk.queue_unit_id),
            queue_unit_id: desk.queue_unit_id,
            department_id: desk.department_id,
            department_name,
            received_at: desk.received_at,
            reopen_reason: desk.reopen_reason,
            overdue: case.is_overdue(now),
            unplaced: case.grid_id.is_none(),
        },
        case,
        timeline,
        photos,
    })
}

fn parse_case_id(id: &str) -> Result<CaseId, AppError> {
    CaseId::parse(id).map_err(|e| AppError::input(&e))
}

/// `GET /v1/centre/cases/{id}`
pub(crate) async fn case_handler(
    State(state): State<AppState>,
    session: StaffSession,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, AppError> {
    let case_id = parse_case_id(&id)?;
    let grids = state.grids.clone();
    let staff = session.staff;
    let view = state
        .db
        .read(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            view(tx, &map, &staff, &case_id, now_millis())
        })
        .await?;
    Ok(Json(view))
}

/// `GET /v1/centre/cases/{id}/photos/{sha256}`: a photo (or thumbnail) of a
/// case the reader may see.
pub(crate) async fn photo_handler(
    State(state): State<AppState>,
    session: StaffSession,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let case_id = parse_case_id(&id)?;
    if !is_sha256(&sha) {
        return Err(AppError::invalid(
            "sha256",
            reasons::NOT_A_SHA256,
            "a photo is named by its SHA-256: 64 lowercase hex digits",
        ));
    }
    let staff = session.staff;
    let visible = {
        let sha = sha.clone();
        state
            .db
            .read(move |tx| {
                if !staff.sees(tx, &case_id)? {
                    return Ok(false);
                }
                Ok(tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM case_photos WHERE sha256 = ?1 AND case_id = ?2)",
                    [sha, case_id.to_string()],
                    |r| r.get(0),
                )?)
            })
            .await?
    };
    if !visible {
        return Err(AppError::not_found("no such photo"));
    }
    crate::photos::serve_photo(&state, &sha).await
}

/// `GET /v1/centre/departments[?case=<id>]`: the departments; with a case
/// (one the reader sees), only those serving its area, which are the ones a
/// dispatcher may choose for it.
pub(crate) async fn departments_handler(
    State(state): State<AppState>,
    session: StaffSession,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Department>>, AppError> {
    let params = crate::query::QueryParams::parse(query.as_deref())?;
    let case = params.get("case").map(parse_case_id).transpose()?;
    let staff = session.staff;
    Ok(Json(
        state
            .db
            .read(move |tx| match case {
                None => Ok(crate::db::now(crate::db::read_tx(tx).list_departments())?),
                Some(case) => {
                    if !staff.sees(tx, &case)? {
                        return Err(AppError::not_found("no such case"));
                    }
                    Ok(crate::db::now(
                        crate::db::read_tx(tx).departments_serving(&case),
                    )?)
                }
            })
            .await?,
    ))
}

/// `GET /v1/centre/grids`: the part of the map the reader works in (their
/// unit, its ancestors and everything under it; a department's unit, or the
/// whole map for a department serving everywhere), as GeoJSON.
pub(crate) async fn grids_handler(
    State(state): State<AppState>,
    session: StaffSession,
) -> Result<Response, AppError> {
    let grids = state.grids.clone();
    let staff = session.staff;
    let body = state
        .db
        .read(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            let unit = match staff.role {
                StaffRole::Department => match staff.department_id.as_deref() {
                    Some(id) => crate::db::now(crate::db::read_tx(tx).load_department(id))?
                        .and_then(|d| d.unit_id),
                    None => None,
                },
                _ => staff.unit_id.clone(),
            };
            let Some(unit) = unit else {
                return Ok(map.to_geojson());
            };
            let part = gridcase_core::grid::GridMap::from_units(crate::grids::visible_units(
                &map,
                &[unit],
            ))
            .map_err(|e| {
                tracing::error!(error = %e, "a part of the map is not a valid map");
                AppError::internal()
            })?;
            Ok(part.to_geojson())
        })
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        body,
    )
        .into_response())
}
