//! Cases of an area and period as CSV (for spreadsheets) and GeoJSON (for
//! maps), with what [`crate::public`] allows the reader and nothing else: a
//! member of staff gets the words and place of every case they answer for (as
//! the dashboard shows them), a public export withholds those of private
//! categories. The `withheld` column names what a row leaves out. Times are
//! W3C datetimes on the deployment's clock.
//!
//! The CSV is opened by centre staff in Excel or WPS: it starts with a UTF-8
//! byte order mark (without one Excel reads Chinese as mojibake), and every
//! text cell that a spreadsheet would take for a formula (leading `=`, `+`,
//! `-`, `@`, tab or carriage return) is prefixed with `'`, so a resident's
//! words can never run as a formula on a dispatcher's machine.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gridcase_core::case::Case;
use gridcase_core::grid::GridMap;
use gridcase_core::time::{now_millis, Millis};
use rusqlite::{named_params, Connection};
use serde_json::{json, Value};

use crate::calendar::{Period, Zone};
use crate::centre::session::StaffSession;
use crate::centre::staff::Staff;
use crate::error::{reasons, AppError};
use crate::open311::requests::{status_note, Open311Status};
use crate::public::{PublicCase, Reader};
use crate::status_sql;

/// Which cases to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportQuery {
    /// The unit and everything under it; `None`: every case.
    pub unit: Option<String>,
    /// Only the cases dispatched to this department (a handler's export).
    pub department: Option<String>,
    /// On the time each case was reported.
    pub period: Period,
    /// Who reads the export: what its rows may show.
    pub reader: Reader,
}

/// How the rows are written: names from the map, times on the zone.
#[derive(Clone, Copy)]
pub struct Output<'a> {
    pub map: &'a GridMap,
    pub zone: &'a Zone,
    /// Decides which open cases are already late.
    pub now: Millis,
}

/// The selected cases, oldest first. Drafts never leave the terminal's owner.
pub fn select(
    conn: &mut Connection,
    map: &GridMap,
    q: &ExportQuery,
) -> Result<Vec<PublicCase>, AppError> {
    if let Some(unit) = &q.unit {
        if map.get(unit).is_none() {
            return Err(AppError::invalid(
                "unit",
                reasons::NOT_A_UNIT,
                "unit: is not in the grid map",
            ));
        }
    }
    let departments = crate::db::departments(conn)?;
    let sql = format!(
        "SELECT c.state, c.resolved_at FROM cases c
         WHERE c.status NOT IN {} AND c.created_at >= :from AND c.created_at < :to
           AND (:unit IS NULL OR EXISTS (
               SELECT 1 FROM case_scopes s WHERE s.case_id = c.id AND s.unit_id = :unit))
           AND (:department IS NULL OR EXISTS (
               SELECT 1 FROM case_desk d WHERE d.case_id = c.id AND d.department_id = :department))
         ORDER BY c.created_at, c.id",
        *status_sql::DRAFT
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":from": q.period.from,
            ":to": q.period.to,
            ":unit": q.unit,
            ":department": q.department,
        },
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<Millis>>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (state, resolved_at) = row?;
        let case: Case = serde_json::from_str(&state).map_err(|e| {
            tracing::error!(error = %e, "a stored case does not parse");
            AppError::internal()
        })?;
        out.push(PublicCase::read_by(
            q.reader,
            &case,
            resolved_at,
            &departments,
        ));
    }
    Ok(out)
}

/// A text cell a spreadsheet will show as text, never run as a formula.
pub fn neutralise(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

const CSV_HEADER: [&str; 21] = [
    "case_id",
    "status",
    "status_name",
    "open311_status",
    "category",
    "category_name",
    "title",
    "description",
    "address",
    "lat",
    "lon",
    "grid_id",
    "grid_name",
    "department",
    "reported_at",
    "deadline",
    "resolved_at",
    "on_time",
    "rating",
    "updated_at",
    "withheld",
];

fn on_time_cell(c: &PublicCase, now: Millis) -> &'static str {
    match c.on_time(now) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    }
}

fn face_name(c: &PublicCase) -> &'static str {
    match c.face {
        Some(gridcase_core::case::Face::Smiley) => "smiley",
        Some(gridcase_core::case::Face::Frowny) => "frowny",
        None => "",
    }
}

/// The fields a row leaves out for its reader, as one cell: `title;address`.
fn withheld_cell(c: &PublicCase) -> String {
    c.withheld.join(";")
}

fn grid_name(map: &GridMap, c: &PublicCase) -> String {
    c.grid_id
        .as_deref()
        .and_then(|g| map.get(g))
        .map(|u| u.name.clone())
        .unwrap_or_default()
}

/// The cases as CSV, one row each, header first.
pub fn to_csv(cases: &[PublicCase], o: Output<'_>) -> Result<Vec<u8>, AppError> {
    let (map, now) = (o.map, o.now);
    let w3c = |t: Millis| o.zone.format_w3c(t);
    let time_cell = |t: Option<Millis>| t.map(w3c).unwrap_or_default();
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        let failed = |e: csv::Error| {
            tracing::error!(error = %e, "writing CSV failed");
            AppError::internal()
        };
        writer.write_record(CSV_HEADER).map_err(failed)?;
        for c in cases {
            let text = |s: &Option<String>| neutralise(s.as_deref().unwrap_or(""));
            let (lat, lon) = c
                .point
                .map_or((String::new(), String::new()), |(lat, lon)| {
                    (lat.to_string(), lon.to_string())
                });
            let record: [String; 21] = [
                c.id.to_string(),
                c.status.as_str().to_string(),
                status_note(c.status).to_string(),
                Open311Status::of(c.status).as_str().to_string(),
                c.category.code().to_string(),
                c.category.name_zh().to_string(),
                text(&c.title),
                text(&c.description),
                text(&c.address),
                lat,
                lon,
                text(&c.grid_id),
                neutralise(&grid_name(map, c)),
                text(&c.department),
                w3c(c.reported_at),
                time_cell(c.deadline),
                time_cell(c.resolved_at),
                on_time_cell(c, now).to_string(),
                face_name(c).to_string(),
                w3c(c.updated_at),
                withheld_cell(c),
            ];
            writer.write_record(&record).map_err(failed)?;
        }
        writer.flush().map_err(|e| AppError::io("writing CSV", e))?;
    }
    Ok(out)
}

/// The cases as a GeoJSON FeatureCollection of points; a case whose place is
/// withheld has a null geometry (valid GeoJSON) and is still counted.
pub fn to_geojson(cases: &[PublicCase], o: Output<'_>) -> String {
    let (map, now) = (o.map, o.now);
    let w3c = |t: Millis| o.zone.format_w3c(t);
    let features: Vec<Value> = cases
        .iter()
        .map(|c| {
            let geometry = c.point.map_or(
                Value::Null,
                |(lat, lon)| json!({"type": "Point", "coordinates": [lon, lat]}),
            );
            json!({
                "type": "Feature",
                "id": c.id.to_string(),
                "geometry": geometry,
                "properties": {
                    "case_id": c.id.to_string(),
                    "status": c.status.as_str(),
                    "status_name": status_note(c.status),
                    "open311_status": Open311Status::of(c.status).as_str(),
                    "category": c.category.code(),
                    "category_name": c.category.name_zh(),
                    "title": c.title,
                    "description": c.description,
                    "address": c.address,
                    "grid_id": c.grid_id,
                    "grid_name": c.grid_id.as_ref().map(|_| grid_name(map, c)),
                    "department": c.department,
                    "reported_at": w3c(c.reported_at),
                    "deadline": c.deadline.map(w3c),
                    "resolved_at": c.resolved_at.map(w3c),
                    "on_time": c.on_time(now),
                    "rating": c.face.map(|_| face_name(c)),
                    "updated_at": w3c(c.updated_at),
                    "withheld": c.withheld,
                }
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// The query of both export endpoints: `unit`, `from`, `to` (all optional;
/// the default period is everything), with the unit still to be narrowed to
/// what the member of staff answers for.
fn export_query(zone: &Zone, raw: Option<&str>) -> Result<(ExportQuery, Option<String>), AppError> {
    let params = crate::query::QueryParams::parse(raw)?;
    let period = Period::parse(zone, params.get("from"), params.get("to"), Period::ALL)
        .map_err(crate::query::invalid)?;
    let requested = params.get("unit").map(str::to_string);
    Ok((
        ExportQuery {
            unit: None,
            department: None,
            period,
            reader: Reader::Staff,
        },
        requested,
    ))
}

/// The cases of the export `raw` asks for, within what `staff` answers for.
fn select_for(
    conn: &mut Connection,
    map: &GridMap,
    zone: &Zone,
    staff: &Staff,
    raw: Option<&str>,
) -> Result<Vec<PublicCase>, AppError> {
    let (mut q, requested) = export_query(zone, raw)?;
    let scope = staff.report_scope(map, requested.as_deref())?;
    q.unit = scope.unit;
    q.department = scope.department;
    select(conn, map, &q)
}

/// The cases `raw` asks for, within what the member of staff answers for,
/// written by `write`.
async fn export<T: Send + 'static>(
    state: &crate::AppState,
    session: StaffSession,
    raw: Option<String>,
    write: fn(&[PublicCase], Output<'_>) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let grids = state.grids.clone();
    let zone = state.zone.clone();
    let now = now_millis();
    state
        .db
        .read(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            let cases = select_for(tx, &map, &zone, &session.staff, raw.as_deref())?;
            let output = Output {
                map: &map,
                zone: &zone,
                now,
            };
            write(&cases, output)
        })
        .await
}

/// `GET /v1/export/cases.csv`, for a member of staff.
pub(crate) async fn csv_handler(
    State(state): State<crate::AppState>,
    session: StaffSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let body = export(&state, session, raw, to_csv).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"cases.csv\"",
        ),
    ];
    Ok((headers, body).into_response())
}

/// `GET /v1/export/cases.geojson`, for a member of staff.
pub(crate) async fn geojson_handler(
    State(state): State<crate::AppState>,
    session: StaffSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let body = export(&state, session, raw, |cases, o| Ok(to_geojson(cases, o))).await?;
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_neutralised_and_plain_text_kept() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        for fine in ["人民大街", "a=b", "42", ""] {
            assert_eq!(neutralise(fine), fine);
        }
    }
}
