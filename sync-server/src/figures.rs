//! The month's figures (closure, on-time, satisfaction) for a unit of the grid
//! and a period, broken down by department, area, category and month, with a
//! department ranking and early warnings of rising categories.
//!
//! ## Which cases count
//!
//! Cases *reported* in the period (their `created_at`, the time the grid
//! leader or resident recorded them, on `[from, to)`) at or below the unit
//! (the case's grid or any unit above it is the unit). Drafts never count: the
//! centre has not seen them. Months are calendar months on the deployment's
//! clock ([`crate::calendar`], `--time-zone`).
//!
//! ## The rates, precisely
//!
//! - **closure rate** (办结率) = closed ÷ (cases − cancelled). *Closed* means
//!   the department resolved it and the grid leader confirmed it on site:
//!   status verified, rated or closed. A case the department calls resolved but
//!   nobody has checked is not closed yet. Cancelled cases (duplicates,
//!   mistaken reports) were never work, so they leave the denominator.
//! - **on-time rate** (按时办结率) = on time ÷ (on time + late), counting only
//!   cases whose outcome is known. *On time*: the case stands resolved
//!   (resolved, verified, rated or closed) and its last Resolve came at or
//!   before the deadline of the dispatch in force (the last Dispatch; a later
//!   dispatch can only follow a reopening, which sets a fresh deadline).
//!   *Late*: it stands resolved after that deadline, or it still awaits
//!   handling (submitted … reopened) and the deadline has passed at `now`.
//!   Cases still within their deadline, never dispatched, or cancelled are in
//!   neither.
//! - **satisfaction rate** (满意率) = smileys ÷ (smileys + frownies), over each
//!   case's standing rating: a case reopened by a frowny and rated again counts
//!   once, with its latest face — the outcome as the resident finally judged it.
//!
//! A rate is `None` when its denominator is zero.
//!
//! ## Early warning
//!
//! For each area (the children of the unit) and category, each whole calendar
//! month the period touches is compared with the month before (which may lie
//! before the period). A warning is raised when the month has at least
//! `min_cases` cases (cancelled ones excepted) and at least `rise_percent`
//! more than the month before; a category going from none to `min_cases` is a
//! warning too.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use axum::extract::{RawQuery, State};
use axum::Json;
use gridcase_core::case::{CaseStatus, Category};
use gridcase_core::grid::GridMap;
use gridcase_core::time::Millis;
use rusqlite::{Connection, ToSql};
use serde::Serialize;

use crate::calendar::{Period, Zone};
use crate::centre::session::StaffSession;
use crate::error::{reasons, AppError};
use crate::status_sql;

/// When a rise in a category is worth a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WarningRule {
    /// How much the month must exceed the month before, in percent.
    pub rise_percent: u32,
    /// The fewest cases in the month for a warning: three instead of one is
    /// noise, not a trend.
    pub min_cases: u32,
}

impl Default for WarningRule {
    fn default() -> Self {
        WarningRule {
            rise_percent: 50,
            min_cases: 5,
        }
    }
}

/// What to compute figures for.
#[derive(Debug, Clone, PartialEq)]
pub struct FiguresQuery {
    /// The unit whose cases count (and whose children are the areas); `None`:
    /// every case, with the top-level units as areas.
    pub unit: Option<String>,
    /// Only the cases dispatched to this department (a handler's figures).
    pub department: Option<String>,
    pub period: Period,
    /// Decides which open cases are already late.
    pub now: Millis,
    pub warning: WarningRule,
    /// Whose calendar months count.
    pub zone: Zone,
}

/// Counts and rates over a set of cases (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub cases: u64,
    pub cancelled: u64,
    pub closed: u64,
    pub closure_rate: Option<f64>,
    pub on_time: u64,
    pub late: u64,
    pub on_time_rate: Option<f64>,
    pub smiley: u64,
    pub frowny: u64,
    pub satisfaction_rate: Option<f64>,
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Tally {
    fn from_counts(
        cases: u64,
        cancelled: u64,
        closed: u64,
        on_time: u64,
        late: u64,
        smiley: u64,
        frowny: u64,
    ) -> Tally {
        Tally {
            cases,
            cancelled,
            closed,
            closure_rate: rate(closed, cases - cancelled.min(cases)),
            on_time,
            late,
            on_time_rate: rate(on_time, on_time + late),
            smiley,
            frowny,
            satisfaction_rate: rate(smiley, smiley + frowny),
        }
    }
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The department, unit id, category code or month (`2025-07`); `None`
    /// for cases not dispatched yet in the department breakdown.
    pub key: Option<String>,
    /// A name for people: the unit's or category's name.
    pub name: Option<String>,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCount {
    pub status: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedDepartment {
    pub rank: u32,
    /// Its name.
    pub department: String,
    pub department_id: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub area_id: String,
    pub area_name: String,
    pub category: &'static str,
    pub category_name: &'static str,
    pub month: String,
    pub count: u64,
    pub previous_count: u64,
    /// `None` when the month before had none.
    pub rise_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub unit: Option<String>,
    pub from: String,
    pub to: String,
    pub warning_rule: WarningRule,
    pub total: Tally,
    /// Of `total`, the cases in no grid (outside every grid of the map, not
    /// placed in one by hand yet): they count in the unit at the top of the
    /// map, in no area below it.
    pub unplaced: Tally,
    pub by_status: Vec<StatusCount>,
    pub by_department: Vec<Line>,
    pub by_area: Vec<Line>,
    pub by_category: Vec<Line>,
    pub by_month: Vec<Line>,
    /// Departments with dispatched cases, best first: by on-time rate, then
    /// satisfaction rate, then closure rate (a rate not known yet ranks below
    /// any known one), then more cases, then name.
    pub department_ranking: Vec<RankedDepartment>,
    pub warnings: Vec<Warning>,
}

/// The six conditions counted besides the cases themselves, in the order
/// of [`Tally::from_counts`], as SQL over `c` (see the module docs for each
/// rule; the status sets are the core's).
fn tally_flags() -> [String; 6] {
    let cancelled = &*status_sql::CANCELLED;
    let done = &*status_sql::DONE_ON_SITE;
    let resolved = &*status_sql::RESOLVED;
    let awaiting = &*status_sql::AWAITING_HANDLING;
    [
        format!("c.status IN {cancelled}"),
        format!("c.status IN {done}"),
        format!("c.status IN {resolved} AND c.resolved_at <= c.deadline"),
        format!(
            "(c.status IN {resolved} AND c.resolved_at > c.deadline)
             OR (c.status IN {awaiting} AND c.deadline < :now)"
        ),
        "c.rating_face = 'smiley'".to_string(),
        "c.rating_face = 'frowny'".to_string(),
    ]
}

fn tally_columns() -> String {
    let sums: Vec<String> = tally_flags()
        .iter()
        .map(|flag| format!("COALESCE(SUM({flag}), 0)"))
        .collect();
    format!("COUNT(*), {}", sums.join(", "))
}

static IN_SCOPE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "c.status NOT IN {} AND c.created_at >= :from AND c.created_at < :to
    AND (:unit IS NULL OR EXISTS (
        SELECT 1 FROM case_scopes s WHERE s.case_id = c.id AND s.unit_id = :unit))
    AND (:department IS NULL OR EXISTS (
        SELECT 1 FROM case_desk dd WHERE dd.case_id = c.id AND dd.department_id = :department))",
        *status_sql::DRAFT
    )
});

struct Params {
    from: Millis,
    to: Millis,
    unit: Option<String>,
    department: Option<String>,
    now: Millis,
    areas: String,
}

impl Params {
    /// The named parameters `sql` uses (SQLite refuses a name it does not have).
    fn bind<'a>(&'a self, sql: &str) -> Vec<(&'static str, &'a dyn ToSql)> {
        let all: [(&'static str, &'a dyn ToSql); 6] = [
            (":from", &self.from),
            (":to", &self.to),
            (":unit", &self.unit),
            (":department", &self.department),
            (":now", &self.now),
            (":areas", &self.areas),
        ];
        all.into_iter().filter(|(n, _)| sql.contains(n)).collect()
    }
}

/// Tallies grouped by `key` (an SQL expression), with `join` for the areas
/// and `and` narrowing the cases further.
fn tally_by(
    conn: &Connection,
    params: &Params,
    key: &str,
    join: &str,
    and: &str,
) -> Result<Vec<(Option<String>, Tally)>, AppError> {
    let sql = format!(
        "SELECT {key}, {} FROM cases c {join} WHERE {} {and} GROUP BY 1 ORDER BY 1",
        tally_columns(),
        *IN_SCOPE
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params.bind(&sql).as_slice(), |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok((
            r.get::<_, Option<String>>(0)?,
            Tally::from_counts(n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(6)?, n(7)?),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Tallies by the calendar month each case was reported in, on the zone's
/// clock. Computed here, not in SQL: a month's first instant is the zone's
/// to say (its offset, its daylight saving), not a fixed sum.
fn tally_by_month(
    conn: &Connection,
    params: &Params,
    zone: &Zone,
) -> Result<Vec<(String, Tally)>, AppError> {
    let flags: Vec<String> = tally_flags()
        .iter()
        .map(|flag| format!("({flag})"))
        .collect();
    let sql = format!(
        "SELECT c.created_at, {} FROM cases c WHERE {}",
        flags.join(", "),
        *IN_SCOPE
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut counts: BTreeMap<String, [u64; 7]> = BTreeMap::new();
    let mut rows = stmt.query(params.bind(&sql).as_slice())?;
    while let Some(r) = rows.next()? {
        let month = zone.format_month(r.get(0)?);
        let entry = counts.entry(month).or_default();
        entry[0] += 1;
        for (i, slot) in entry.iter_mut().enumerate().skip(1) {
            if r.get::<_, Option<bool>>(i)?.unwrap_or(false) {
                *slot += 1;
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|(month, n)| {
            (
                month,
                Tally::from_counts(n[0], n[1], n[2], n[3], n[4], n[5], n[6]),
            )
        })
        .collect())
}

/// The areas figures break a unit into: its children, or itself if it has
/// none (a grid with no micro-grids); the top-level units for everything.
fn areas(map: &GridMap, unit: Option<&str>) -> Vec<(String, String)> {
    let units: Vec<_> = match unit {
        Some(id) => {
            let children = map.children(id);
            if children.is_empty() {
                map.get(id).into_iter().collect()
            } else {
                children
            }
        }
        None => map
            .units()
            .iter()
            .filter(|u| u.parent_id.is_none())
            .collect(),
    };
    units
        .into_iter()
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect()
}

fn order_key(rate: Option<f64>) -> f64 {
    rate.map_or(-1.0, |r| r)
}

/// Computes the figures in one read snapshot.
pub fn compute(
    conn: &mut Connection,
    map: &GridMap,
    q: &FiguresQuery,
) -> Result<Figures, AppError> {
    if let Some(unit) = &q.unit {
        if map.get(unit).is_none() {
            return Err(AppError::invalid(
                "unit",
                reasons::NOT_A_UNIT,
                "unit: is not in the grid map",
            ));
        }
    }
    let areas = areas(map, q.unit.as_deref());
    let area_ids: Vec<&str> = areas.iter().map(|(id, _)| id.as_str()).collect();
    let params = Params {
        from: q.period.from,
        to: q.period.to,
        unit: q.unit.clone(),
        department: q.department.clone(),
        now: q.now,
        areas: serde_json::json!(area_ids).to_string(),
    };
    let total = tally_by(conn, &params, "NULL", "", "")?
        .into_iter()
        .next()
        .map(|(_, t)| t)
        .unwrap_or_default();
    let unplaced = tally_by(conn, &params, "NULL", "", "AND c.grid_id IS NULL")?
        .into_iter()
        .next()
        .map(|(_, t)| t)
        .unwrap_or_default();

    let by_status = {
        let sql = format!(
            "SELECT c.status, COUNT(*) FROM cases c WHERE {} GROUP BY 1",
            *IN_SCOPE
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let counted: HashMap<String, u64> = stmt
            .query_map(params.bind(&sql).as_slice(), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<Result<_, _>>()?;
        CaseStatus::ALL
            .iter()
            .filter(|s| **s != CaseStatus::Draft)
            .map(|s| StatusCount {
                status: s.as_str(),
                count: counted.get(s.as_str()).copied().unwrap_or(0),
            })
            .collect()
    };

    let departments = crate::db::departments(conn)?;
    let mut by_department: Vec<Line> = tally_by(conn, &params, "c.department", "", "")?
        .into_iter()
        .map(|(key, tally)| Line {
            name: departments.name_of_opt(key.as_deref()),
            key,
            tally,
        })
        .collect();
    by_department.sort_by(|a, b| {
        b.tally
            .cases
            .cmp(&a.tally.cases)
            .then_with(|| a.key.cmp(&b.key))
    });

    let area_join = "JOIN case_scopes a ON a.case_id = c.id
        AND a.unit_id IN (SELECT value FROM json_each(:areas))";
    let area_tallies: HashMap<Option<String>, Tally> =
        tally_by(conn, &params, "a.unit_id", area_join, "")?
            .into_iter()
            .collect();
    let by_area = areas
        .iter()
        .map(|(id, name)| Line {
            key: Some(id.clone()),
            name: Some(name.clone()),
            tally: area_tallies
                .get(&Some(id.clone()))
                .cloned()
                .unwrap_or_default(),
        })
        .collect();

    let mut by_category: Vec<Line> = tally_by(conn, &params, "c.category", "", "")?
        .into_iter()
        .map(|(key, tally)| Line {
            name: key
                .as_deref()
                .and_then(Category::parse)
                .map(|c| c.name_zh().to_string()),
            key,
            tally,
        })
        .collect();
    by_category.sort_by(|a, b| {
        b.tally
            .cases
            .cmp(&a.tally.cases)
            .then_with(|| a.key.cmp(&b.key))
    });

    let by_month = tally_by_month(conn, &params, &q.zone)?
        .into_iter()
        .map(|(key, tally)| Line {
            name: Some(key.clone()),
            key: Some(key),
            tally,
        })
        .collect();

    let mut ranked: Vec<&Line> = by_department.iter().filter(|l| l.key.is_some()).collect();
    ranked.sort_by(|a, b| {
        let (a, b) = (&a.tally, &b.tally);
        order_key(b.on_time_rate)
            .total_cmp(&order_key(a.on_time_rate))
            .then_with(|| order_key(b.satisfaction_rate).total_cmp(&order_key(a.satisfaction_rate)))
            .then_with(|| order_key(b.closure_rate).total_cmp(&order_key(a.closure_rate)))
            .then_with(|| b.cases.cmp(&a.cases))
    });
    let department_ranking = ranked
        .into_iter()
        .enumerate()
        .map(|(i, l)| RankedDepartment {
            rank: i as u32 + 1,
            department: l.name.clone().unwrap_or_default(),
            department_id: l.key.clone().unwrap_or_default(),
            tally: l.tally.clone(),
        })
        .collect();

    let warnings = warnings(conn, &params, q, &areas)?;

    Ok(Figures {
        unit: q.unit.clone(),
        from: q.zone.format_w3c(q.period.from),
        to: q.zone.format_w3c(q.period.to),
        warning_rule: q.warning,
        total,
        unplaced,
        by_status,
        by_department,
        by_area,
        by_category,
        by_month,
        department_ranking,
        warnings,
    })
}

fn warnings(
    conn: &Connection,
    params: &Params,
    q: &FiguresQuery,
    areas: &[(String, String)],
) -> Result<Vec<Warning>, AppError> {
    let zone = &q.zone;
    let months = q.period.months(zone);
    let (Some(&first), Some(&last)) = (months.first(), months.last()) else {
        return Ok(Vec::new());
    };
    // Whole months, and the month before the first one.
    let whole = Params {
        from: zone.previous_month_start(first),
        to: zone.next_month_start(last),
        unit: params.unit.clone(),
        department: params.department.clone(),
        now: params.now,
        areas: params.areas.clone(),
    };
    let sql = format!(
        "SELECT a.unit_id, c.category, c.created_at FROM cases c
         JOIN case_scopes a ON a.case_id = c.id AND a.unit_id IN (SELECT value FROM json_each(:areas))
         WHERE {} AND c.status NOT IN {}",
        *IN_SCOPE,
        *status_sql::CANCELLED
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut counts: BTreeMap<(String, String), HashMap<String, u64>> = BTreeMap::new();
    let mut rows = stmt.query(whole.bind(&sql).as_slice())?;
    while let Some(r) = rows.next()? {
        let month = zone.format_month(r.get(2)?);
        *counts
            .entry((r.get(0)?, r.get(1)?))
            .or_default()
            .entry(month)
            .or_default() += 1;
    }
    let names: HashMap<&str, &str> = areas
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let rule = q.warning;
    let mut out = Vec::new();
    for ((area, code), by_month) in &counts {
        let Some(category) = Category::parse(code) else {
            continue;
        };
        for &m in &months {
            let month = zone.format_month(m);
            let previous = zone.format_month(zone.previous_month_start(m));
            let count = by_month.get(&month).copied().unwrap_or(0);
            let before = by_month.get(&previous).copied().unwrap_or(0);
            let risen = count * 100 >= before * (100 + u64::from(rule.rise_percent));
            if count >= u64::from(rule.min_cases) && count > before && risen {
                out.push(Warning {
                    area_id: area.clone(),
                    area_name: names.get(area.as_str()).copied().unwrap_or("").to_string(),
                    category: category.code(),
                    category_name: category.name_zh(),
                    month,
                    count,
                    previous_count: before,
                    rise_percent: (before > 0)
                        .then(|| (count as f64 - before as f64) * 100.0 / before as f64),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.month
            .cmp(&a.month)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.area_id.cmp(&b.area_id))
    });
    Ok(out)
}

/// The default period: the current month and the eleven before it.
pub fn last_twelve_months(zone: &Zone, now: Millis) -> Period {
    let mut from = zone.month_start(now);
    for _ in 0..11 {
        from = zone.previous_month_start(from);
    }
    Period {
        from,
        to: zone.next_month_start(now),
    }
}

/// `GET /v1/figures?unit=&from=&to=&rise_percent=&min_cases=`: for a member
/// of staff, within what they answer for ([`Staff::report_scope`]).
///
/// [`Staff::report_scope`]: crate::centre::staff::Staff::report_scope
pub(crate) async fn figures_handler(
    State(state): State<crate::AppState>,
    session: StaffSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<Figures>, AppError> {
    let params = crate::query::QueryParams::parse(raw.as_deref())?;
    let now = gridcase_core::time::now_millis();
    let zone = state.zone.clone();
    let period = Period::parse(
        &zone,
        params.get("from"),
        params.get("to"),
        last_twelve_months(&zone, now),
    )
    .map_err(crate::query::invalid)?;
    let defaults = WarningRule::default();
    let requested = params.get("unit").map(str::to_string);
    let mut query = FiguresQuery {
        unit: None,
        department: None,
        period,
        now,
        warning: WarningRule {
            rise_percent: params.u32_or("rise_percent", defaults.rise_percent)?,
            min_cases: params.u32_or("min_cases", defaults.min_cases)?.max(1),
        },
        zone,
    };
    let grids = state.grids.clone();
    let figures = state
        .db
        .read(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            let scope = session.staff.report_scope(&map, requested.as_deref())?;
            query.unit = scope.unit;
            query.department = scope.department;
            compute(tx, &map, &query)
        })
        .await?;
    Ok(Json(figures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{parse_w3c, DateEnd};
    use crate::cases::append_server_op;
    use gridcase_core::case::{CaseDraft, Face};
    use gridcase_core::ids::CaseId;
    use gridcase_core::location::{GeoPoint, Location};
    use gridcase_core::op::{Actor, OpKind, Role};

    const MAP: &str = r#"{ "type": "FeatureCollection", "features": [
      { "type": "Feature", "properties": { "id": "c-1", "name": "辽源市", "level": "city", "parent": null }, "geometry": null },
      { "type": "Feature", "properties": { "id": "t-1", "name": "向阳街道", "level": "township", "parent": "c-1" }, "geometry": null },
      { "type": "Feature", "properties": { "id": "g-1", "name": "一网格", "level": "grid", "parent": "t-1" },
        "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]] } },
      { "type": "Feature", "properties": { "id": "g-2", "name": "二网格", "level": "grid", "parent": "t-1" },
        "geometry": { "type": "Polygon", "coordinates": [[[125.1, 42.8], [125.2, 42.8], [125.2, 42.9], [125.1, 42.9], [125.1, 42.8]]] } },
      { "type": "Feature", "properties": { "id": "t-2", "name": "别的街道", "level": "township", "parent": "c-1" }, "geometry": null },
      { "type": "Feature", "properties": { "id": "g-3", "name": "三网格", "level": "grid", "parent": "t-2" },
        "geometry": { "type": "Polygon", "coordinates": [[[126.0, 42.8], [126.1, 42.8], [126.1, 42.9], [126.0, 42.9], [126.0, 42.8]]] } }
    ]}"#;

    fn at(s: &str) -> Millis {
        parse_w3c(&Zone::default(), "t", s, DateEnd::Start).unwrap()
    }

    struct Ledger {
        conn: std::cell::RefCell<Connection>,
        map: GridMap,
    }

    impl Ledger {
        fn new() -> Ledger {
            let mut conn = Connection::open_in_memory().unwrap();
            crate::db::migrations::run(&mut conn).unwrap();
            Ledger {
                conn: std::cell::RefCell::new(conn),
                map: GridMap::from_geojson(MAP).unwrap(),
            }
        }

        fn step(&self, id: CaseId, role: Role, kind: OpKind, when: &str) {
            let actor = Actor {
                role,
                id: role.as_str().to_string(),
            };
            let mut conn = self.conn.borrow_mut();
            crate::db::now(append_server_op(
                &mut crate::db::tx(&mut conn),
                &self.map,
                id,
                actor,
                kind,
                at(when),
            ))
            .unwrap()
            .unwrap();
        }

        /// Recorded, submitted and received on `when`.
        fn report(&self, category: Category, (lat, lon): (f64, f64), when: &str) -> CaseId {
            let id = CaseId::new();
            let draft = CaseDraft {
                category,
                title: "事件".into(),
                description: String::new(),
                location: Some(Location {
                    point: GeoPoint::new(lat, lon, 5.0).unwrap(),
                    address: None,
                    source: gridcase_core::location::LocationSource::Typed,
                }),
                occurred_at: at(when),
                proposed_deadline: None,
            };
            self.step(id, Role::GridLeader, OpKind::Create { draft }, when);
            self.step(id, Role::GridLeader, OpKind::Submit, when);
            self.step(id, Role::System, OpKind::Receive, when);
            id
        }

        fn dispatch(&self, id: CaseId, department: &str, deadline: &str, when: &str) {
            let kind = OpKind::Dispatch {
                department: department.into(),
                deadline: at(deadline),
                note: String::new(),
            };
            self.step(id, Role::Dispatcher, kind, when);
        }

        fn resolve(&self, id: CaseId, when: &str) {
            self.step(id, Role::Department, OpKind::Accept, when);
            let kind = OpKind::Resolve {
                note: String::new(),
            };
            self.step(id, Role::Department, kind, when);
        }

        fn verify_and_rate(&self, id: CaseId, face: Face, when: &str) {
            let verify = OpKind::Verify {
                done: true,
                note: String::new(),
                photo_ids: vec![],
            };
            self.step(id, Role::GridLeader, verify, when);
            let rate = OpKind::Rate {
                face,
                comment: String::new(),
            };
            self.step(id, Role::Resident, rate, when);
        }
    }

    const G1: (f64, f64) = (42.87, 125.07);
    const G2: (f64, f64) = (42.85, 125.15);
    const G3: (f64, f64) = (42.85, 126.05);

    fn june(unit: Option<&str>, rule: WarningRule) -> FiguresQuery {
        FiguresQuery {
            unit: unit.map(str::to_string),
            department: None,
            period: Period {
                from: at("2025-06-01"),
                to: at("2025-07-01"),
            },
            now: at("2025-07-01"),
            warning: rule,
            zone: Zone::default(),
        }
    }

    #[test]
    fn rates_on_a_hand_built_month() {
        let l = Ledger::new();
        // A: on time, checked, smiley, closed.
        let a = l.report(Category::CollapsedManhole, G1, "2025-06-02T09:00:00+08:00");
        l.dispatch(a, "市政局", "2025-06-10", "2025-06-02T10:00:00+08:00");
        l.resolve(a, "2025-06-09T18:00:00+08:00");
        l.verify_and_rate(a, Face::Smiley, "2025-06-11");
        l.step(a, Role::Dispatcher, OpKind::Close, "2025-06-12");
        // B: resolved two days late, then a frowny face reopens it.
        let b = l.report(Category::CollapsedManhole, G1, "2025-06-03");
        l.dispatch(b, "市政局", "2025-06-10", "2025-06-03");
        l.resolve(b, "2025-06-12");
        l.verify_and_rate(b, Face::Frowny, "2025-06-13");
        // C: past its deadline and still not resolved.
        let c = l.report(Category::Environment, G2, "2025-06-05");
        l.dispatch(c, "环保局", "2025-06-20", "2025-06-05");
        // D: being handled, deadline still ahead: neither on time nor late.
        let d = l.report(Category::Environment, G2, "2025-06-06");
        l.dispatch(d, "环保局", "2025-08-01", "2025-06-06");
        l.step(d, Role::Department, OpKind::Accept, "2025-06-07");
        // E: a duplicate, withdrawn.
        let e = l.report(Category::Environment, G2, "2025-06-07");
        let cancel = OpKind::Cancel {
            reason: "重复".into(),
        };
        l.step(e, Role::GridLeader, cancel, "2025-06-07");
        // Another township, and May: outside the figures.
        l.report(Category::Environment, G3, "2025-06-08");
        l.report(Category::CollapsedManhole, G1, "2025-05-20");
        l.report(Category::CollapsedManhole, G1, "2025-05-21");

        let f = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(
                Some("t-1"),
                WarningRule {
                    rise_percent: 50,
                    min_cases: 2,
                },
            ),
        )
        .unwrap();
        let t = &f.total;
        assert_eq!((t.cases, t.cancelled, t.closed), (5, 1, 1));
        assert_eq!(
            t.closure_rate,
            Some(0.25),
            "A closed of the 4 not cancelled"
        );
        assert_eq!(
            (t.on_time, t.late),
            (1, 2),
            "A on time; B and C late; D unknown"
        );
        assert_eq!((t.smiley, t.frowny, t.satisfaction_rate), (1, 1, Some(0.5)));

        let status = |s: &str| f.by_status.iter().find(|c| c.status == s).unwrap().count;
        assert_eq!(
            (
                status("closed"),
                status("reopened"),
                status("dispatched"),
                status("in_progress"),
                status("cancelled")
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(f.by_status.iter().map(|c| c.count).sum::<u64>(), 5);

        let area: Vec<(Option<&str>, u64)> = f
            .by_area
            .iter()
            .map(|l| (l.key.as_deref(), l.tally.cases))
            .collect();
        assert_eq!(area, [(Some("g-1"), 2), (Some("g-2"), 3)]);

        let dept = |name: &str| {
            f.by_department
                .iter()
                .find(|l| l.key.as_deref() == Some(name))
                .unwrap()
        };
        assert_eq!(dept("市政局").tally.on_time_rate, Some(0.5));
        assert_eq!(dept("环保局").tally.on_time_rate, Some(0.0));
        assert_eq!(dept("环保局").tally.cases, 2);
        assert!(f
            .by_department
            .iter()
            .any(|l| l.key.is_none() && l.tally.cases == 1));
        let ranking: Vec<(u32, &str)> = f
            .department_ranking
            .iter()
            .map(|r| (r.rank, r.department.as_str()))
            .collect();
        assert_eq!(ranking, [(1, "市政局"), (2, "环保局")]);

        let category: Vec<(Option<&str>, u64)> = f
            .by_category
            .iter()
            .map(|l| (l.key.as_deref(), l.tally.cases))
            .collect();
        assert_eq!(
            category,
            [(Some("environment"), 3), (Some("collapsed_manhole"), 2)]
        );
        let months: Vec<Option<&str>> = f.by_month.iter().map(|l| l.key.as_deref()).collect();
        assert_eq!(months, [Some("2025-06")]);

        // Environment in g-2: none in May, two (not counting the cancelled one)
        // in June. Manholes in g-1: two in May, two in June: no rise.
        let warnings: Vec<(&str, &str, &str, u64, u64)> = f
            .warnings
            .iter()
            .map(|w| {
                (
                    w.area_id.as_str(),
                    w.category,
                    w.month.as_str(),
                    w.count,
                    w.previous_count,
                )
            })
            .collect();
        assert_eq!(warnings, [("g-2", "environment", "2025-06", 2, 0)]);
        let stricter = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(
                Some("t-1"),
                WarningRule {
                    rise_percent: 50,
                    min_cases: 3,
                },
            ),
        )
        .unwrap();
        assert!(stricter.warnings.is_empty());

        // The whole city: the other township's case too; areas are townships.
        let city = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(None, WarningRule::default()),
        )
        .unwrap();
        assert_eq!(city.total.cases, 6);
        let areas: Vec<Option<&str>> = city.by_area.iter().map(|l| l.key.as_deref()).collect();
        assert_eq!(areas, [Some("c-1")]);
        let city = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(Some("c-1"), WarningRule::default()),
        )
        .unwrap();
        let areas: Vec<(Option<&str>, u64)> = city
            .by_area
            .iter()
            .map(|l| (l.key.as_deref(), l.tally.cases))
            .collect();
        assert_eq!(areas, [(Some("t-1"), 5), (Some("t-2"), 1)]);
    }

    #[test]
    fn a_rise_over_a_busy_month_warns_by_the_percentage() {
        let l = Ledger::new();
        for day in 1..=4 {
            l.report(Category::SafetyHazard, G1, &format!("2025-05-{day:02}"));
        }
        for day in 1..=6 {
            l.report(Category::SafetyHazard, G1, &format!("2025-06-{day:02}"));
        }
        let rule = |rise_percent| WarningRule {
            rise_percent,
            min_cases: 5,
        };
        let f = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(Some("t-1"), rule(50)),
        )
        .unwrap();
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(f.warnings[0].rise_percent, Some(50.0));
        let f = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(Some("t-1"), rule(51)),
        )
        .unwrap();
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn an_unknown_unit_is_refused_by_name_and_an_empty_scope_has_no_rates() {
        let l = Ledger::new();
        let err = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(Some("nowhere"), WarningRule::default()),
        )
        .unwrap_err();
        assert_eq!(err.body.field.as_deref(), Some("unit"));
        let f = compute(
            &mut l.conn.borrow_mut(),
            &l.map,
            &june(Some("t-2"), WarningRule::default()),
        )
        .unwrap();
        assert_eq!(f.total.cases, 0);
        assert_eq!(f.total.closure_rate, None);
        assert_eq!(f.total.on_time_rate, None);
    }
}
