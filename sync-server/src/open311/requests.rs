//! Open311 service requests are our cases.
//!
//! - `status` is `open` while someone still has to act, `closed` once the
//!   work is confirmed done on site (verified, rated, closed) or the case was
//!   withdrawn (cancelled). A frowny face or a failed check reopens it.
//! - `agency_responsible` is the department of the dispatch in force,
//!   `expected_datetime` its deadline; `status_notes` names our finer state.
//! - Only what [`crate::public`] allows is shown; drafts never are.
//!
//! A POSTed request becomes a case reported by a resident: Create and Submit by
//! `Role::Resident` (the actor id names the API key, not the person), then the
//! server's Receive, through the same rules as a terminal's ops, in one
//! transaction. The point must fall in one of our grids: that is how a case
//! reaches the grid leader who walks there. Open311 gives no GPS accuracy, so
//! the point is stored with an accuracy of 0 m ("as given").

use gridcase_core::case::{CaseDraft, CaseStatus, Category};
use gridcase_core::error::{DomainError, InvalidInput};
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::location::{GeoPoint, Location};
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::time::{Millis, DAY};
use rusqlite::{named_params, params, Connection};

use super::render::{Document, Open311Error, Value};
use super::services::{OCCURRED_AT_ATTRIBUTE, TITLE_ATTRIBUTE};
use crate::calendar::{self, DateEnd, Period, Zone};
use crate::cases;
use crate::error::{reasons, AppError};
use crate::public::PublicCase;
use crate::status_sql;

/// The spec's cap on one answer, and on the span of a date search.
pub const MAX_REQUESTS: usize = 1000;
pub const MAX_SPAN: Millis = 90 * DAY;

/// The actor id of a resident reporting through the client holding `key_id`.
pub fn resident_actor_id(key_id: &str) -> String {
    format!("{}{key_id}", crate::names::OPEN311_ACTOR_PREFIX)
}

/// Open311's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open311Status {
    Open,
    Closed,
}

impl Open311Status {
    pub fn of(status: CaseStatus) -> Open311Status {
        use CaseStatus::*;
        match status {
            Verified | Rated | Closed | Cancelled => Open311Status::Closed,
            Draft | Submitted | Received | Dispatched | InProgress | Resolved | Escalated
            | Reopened => Open311Status::Open,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Open311Status::Open => "open",
            Open311Status::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Option<Open311Status> {
        match s {
            "open" => Some(Open311Status::Open),
            "closed" => Some(Open311Status::Closed),
            _ => None,
        }
    }
}

/// Our finer state, for `status_notes`.
pub fn status_note(status: CaseStatus) -> &'static str {
    use CaseStatus::*;
    match status {
        Draft => "草稿 draft",
        Submitted => "已上报 submitted",
        Received => "已受理 received by the centre",
        Dispatched => "已派单 dispatched to a department",
        InProgress => "办理中 in progress",
        Resolved => "已办结，待网格员核实 resolved, awaiting the grid leader's check",
        Verified => "网格员已核实 checked done on site",
        Rated => "群众已评价 rated by the resident",
        Closed => "已结案 closed",
        Escalated => "已上报上级 escalated to the next level",
        Reopened => "重新办理 reopened",
        Cancelled => "已撤销 cancelled (duplicate or mistaken report)",
    }
}

/// One request as GET answers it.
pub fn request_value(case: &PublicCase, media_url: Option<String>, zone: &Zone) -> Value {
    let description = case
        .description
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| case.title.clone());
    let (lat, long) = case.point.map_or((Value::Null, Value::Null), |(lat, lon)| {
        (Value::Float(lat), Value::Float(lon))
    });
    Value::Object(vec![
        ("service_request_id", Value::str(case.id.to_string())),
        (
            "status",
            Value::str(Open311Status::of(case.status).as_str()),
        ),
        ("status_notes", Value::str(status_note(case.status))),
        ("service_name", Value::str(case.category.name_zh())),
        ("service_code", Value::str(case.category.code())),
        ("description", Value::opt_str(description)),
        (
            "agency_responsible",
            Value::opt_str(case.department.clone()),
        ),
        ("service_notice", Value::Null),
        (
            "requested_datetime",
            Value::str(zone.format_w3c(case.reported_at)),
        ),
        (
            "updated_datetime",
            Value::str(zone.format_w3c(case.updated_at)),
        ),
        (
            "expected_datetime",
            Value::opt_str(case.deadline.map(|t| zone.format_w3c(t))),
        ),
        ("address", Value::opt_str(case.address.clone())),
        ("address_id", Value::Null),
        ("zipcode", Value::Null),
        ("lat", lat),
        ("long", long),
        ("media_url", Value::opt_str(media_url)),
    ])
}

/// What `GET requests` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestQuery {
    /// `service_request_id=a,b`: these, whatever the other parameters say.
    Ids(Vec<String>),
    Search {
        categories: Vec<Category>,
        period: Period,
        statuses: Vec<Open311Status>,
    },
}

fn comma_list(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

impl RequestQuery {
    /// From the query string's pairs; `now` ends the default 90 days; a bare
    /// date is a day on `zone`.
    pub fn parse(
        pairs: &[(String, String)],
        now: Millis,
        zone: &Zone,
    ) -> Result<RequestQuery, Open311Error> {
        let all = |name: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let ids = comma_list(&all("service_request_id"));
        if !ids.is_empty() {
            if ids.len() > MAX_REQUESTS {
                return Err(Open311Error::field(
                    "service_request_id",
                    format!("at most {MAX_REQUESTS} ids at once"),
                ));
            }
            return Ok(RequestQuery::Ids(ids));
        }
        let categories = comma_list(&all("service_code"))
            .iter()
            .map(|code| {
                Category::parse(code)
                    .ok_or_else(|| Open311Error::field("service_code", "is not a service code"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let statuses = comma_list(&all("status"))
            .iter()
            .map(|s| {
                Open311Status::parse(s)
                    .ok_or_else(|| Open311Error::field("status", "must be open or closed"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let date = |field: &'static str| -> Result<Option<Millis>, Open311Error> {
            match all(field).as_slice() {
                [] => Ok(None),
                [one] if one.trim().is_empty() => Ok(None),
                [one] => calendar::parse_w3c(zone, field, one, DateEnd::Start)
                    .map(Some)
                    .map_err(|e| Open311Error::field(e.field, e.reason)),
                _ => Err(Open311Error::field(field, "is given more than once")),
            }
        };
        let period = match (date("start_date")?, date("end_date")?) {
            (None, None) => Period {
                from: now - MAX_SPAN,
                to: now + 1,
            },
            (Some(from), None) => Period {
                from,
                to: from + MAX_SPAN,
            },
            (None, Some(to)) => Period {
                from: to - MAX_SPAN,
                to: to + 1,
            },
            (Some(from), Some(to)) => {
                if to < from {
                    return Err(Open311Error::field("end_date", "is before start_date"));
                }
                if to - from > MAX_SPAN {
                    return Err(Open311Error::field(
                        "end_date",
                        "may not be more than 90 days after start_date",
                    ));
                }
                Period { from, to: to + 1 }
            }
        };
        Ok(RequestQuery::Search {
            categories,
            period,
            statuses,
        })
    }
}

/// The requests a query selects, newest first, at most [`MAX_REQUESTS`].
pub fn find(
    conn: &mut Connection,
    zone: &Zone,
    query: &RequestQuery,
) -> Result<Document, AppError> {
    let departments = crate::db::departments(conn)?;
    let select = format!(
        "SELECT c.state, c.resolved_at, r.media_url FROM cases c
        LEFT JOIN open311_requests r ON r.case_id = c.id WHERE c.status NOT IN {}",
        *status_sql::DRAFT
    );
    let (sql, ids, codes, statuses, period) = match query {
        RequestQuery::Ids(ids) => (
            format!(
                "{select} AND c.id IN (SELECT value FROM json_each(:ids))
                 ORDER BY c.created_at DESC, c.id DESC LIMIT :limit"
            ),
            serde_json::to_string(ids).map_err(|_| AppError::internal())?,
            None,
            None,
            Period { from: 0, to: 0 },
        ),
        RequestQuery::Search {
            categories,
            period,
            statuses,
        } => {
            let codes: Vec<&str> = categories.iter().map(|c| c.code()).collect();
            let ours: Vec<&str> = CaseStatus::ALL
                .iter()
                .filter(|s| statuses.contains(&Open311Status::of(**s)))
                .map(|s| s.as_str())
                .collect();
            (
                format!(
                    "{select} AND c.created_at >= :from AND c.created_at < :to
                     AND (:codes IS NULL OR c.category IN (SELECT value FROM json_each(:codes)))
                     AND (:statuses IS NULL OR c.status IN (SELECT value FROM json_each(:statuses)))
                     ORDER BY c.created_at DESC, c.id DESC LIMIT :limit"
                ),
                String::from("[]"),
                (!codes.is_empty()).then(|| serde_json::json!(codes).to_string()),
                (!statuses.is_empty()).then(|| serde_json::json!(ours).to_string()),
                *period,
            )
        }
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut bound = vec![(":limit", &(MAX_REQUESTS as i64) as &dyn rusqlite::ToSql)];
    if matches!(query, RequestQuery::Ids(_)) {
        bound.push((":ids", &ids));
    } else {
        bound.push((":from", &period.from));
        bound.push((":to", &period.to));
        bound.push((":codes", &codes));
        bound.push((":statuses", &statuses));
    }
    let rows = stmt.query_map(bound.as_slice(), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<Millis>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut items = Vec::new();
    for row in rows {
        let (state, resolved_at, media_url) = row?;
        let case = serde_json::from_str(&state).map_err(|e| {
            tracing::error!(error = %e, "a stored case does not parse");
            AppError::internal()
        })?;
        items.push(request_value(
            &PublicCase::of(&case, resolved_at, &departments),
            media_url,
            zone,
        ));
    }
    Ok(Document::list("service_requests", "request", items))
}

/// A request a client POSTs, parsed and checked, before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    pub draft: CaseDraft,
    pub contact: Contact,
    pub media_url: Option<String>,
}

/// Who filed it, kept for the centre to call back; never served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub device_id: Option<String>,
    pub account_id: Option<String>,
}

/// Our field names in Open311's words.
fn open311_field(field: &str) -> String {
    match field {
        "title" => format!("attribute[{TITLE_ATTRIBUTE}]"),
        "occurred_at" => format!("attribute[{OCCURRED_AT_ATTRIBUTE}]"),
        "location.address" => "address_string".into(),
        "location.lat" => "lat".into(),
        "location.lon" => "long".into(),
        other => other.into(),
    }
}

fn invalid(e: InvalidInput) -> Open311Error {
    Open311Error::field(&open311_field(e.field), e.reason)
}

/// The first line of the description, cut to fit a title.
fn title_from(description: &str, category: Category) -> String {
    let line = description
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let title: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(gridcase_core::case::MAX_TITLE_CHARS)
        .collect();
    if title.trim().is_empty() {
        category.name_zh().to_string()
    } else {
        title
    }
}

impl NewRequest {
    /// Reads a POST's form fields (the caller checks `api_key`).
    pub fn parse(
        pairs: &[(String, String)],
        now: Millis,
        zone: &Zone,
    ) -> Result<NewRequest, Open311Error> {
        let mut single: std::collections::HashMap<&str, &str> = Default::default();
        let mut attributes: Vec<(&str, &str)> = Vec::new();
        for (key, value) in pairs {
            if let Some(code) = key
                .strip_prefix("attribute[")
                .and_then(|k| k.strip_suffix(']'))
            {
                if attributes.iter().any(|(c, _)| *c == code) {
                    return Err(Open311Error::field(key, "is given more than once"));
                }
                attributes.push((code, value));
            } else if single.insert(key, value).is_some() {
                return Err(Open311Error::field(key, "is given more than once"));
            }
        }
        let get = |k: &str| single.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let code = get("service_code")
            .ok_or_else(|| Open311Error::field("service_code", "is required"))?;
        let category = Category::parse(code)
            .ok_or_else(|| Open311Error::field("service_code", "is not a service code"))?;
        let coordinate = |k: &'static str| -> Result<Option<f64>, Open311Error> {
            get(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| Open311Error::field(k, "is not a number"))
                })
                .transpose()
        };
        let point = match (coordinate("lat")?, coordinate("long")?) {
            (Some(lat), Some(lon)) => GeoPoint::new(lat, lon, 0.0).map_err(invalid)?,
            (Some(_), None) => return Err(Open311Error::field("long", "is required with lat")),
            (None, Some(_)) => return Err(Open311Error::field("lat", "is required with long")),
            (None, None) => {
                return Err(Open311Error::field(
                    "lat",
                    "lat and long are required: requests are placed in a grid by their \
                     coordinates (address_string and address_id alone cannot be placed)",
                ))
            }
        };
        let description = single.get("description").copied().unwrap_or("").to_string();
        let mut title = None;
        let mut occurred_at = now;
        for (code, value) in &attributes {
            match *code {
                TITLE_ATTRIBUTE => title = Some(value.trim().to_string()),
                OCCURRED_AT_ATTRIBUTE => {
                    occurred_at = calendar::parse_w3c(zone, "occurred_at", value, DateEnd::Start)
                        .map_err(invalid)?;
                }
                _ => {
                    return Err(Open311Error::field(
                        &format!("attribute[{code}]"),
                        "is not an attribute of this service",
                    ))
                }
            }
        }
        let title = title.unwrap_or_else(|| title_from(&description, category));
        let draft = CaseDraft {
            category,
            title,
            description,
            location: Some(Location {
                point,
                address: get("address_string").map(str::to_string),
                source: gridcase_core::location::LocationSource::Unknown,
            }),
            occurred_at,
            proposed_deadline: None,
        };
        draft.validate().map_err(invalid)?;
        let text = |k: &'static str, max: usize| -> Result<Option<String>, Open311Error> {
            let Some(v) = get(k) else { return Ok(None) };
            gridcase_core::case::check_text(k, v, 1, max).map_err(invalid)?;
            if v.contains(['\n', '\r']) {
                return Err(Open311Error::field(k, "must be a single line"));
            }
            Ok(Some(v.to_string()))
        };
        let contact = Contact {
            email: text("email", 254)?,
            first_name: text("first_name", 100)?,
            last_name: text("last_name", 100)?,
            phone: text("phone", 40)?,
            device_id: text("device_id", 200)?,
            account_id: text("account_id", 200)?,
        };
        let media_url = text("media_url", 2000)?;
        if let Some(url) = &media_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Open311Error::field("media_url", "must be an http(s) URL"));
            }
        }
        Ok(NewRequest {
            draft,
            contact,
            media_url,
        })
    }
}

fn refused(e: DomainError) -> AppError {
    match e {
        DomainError::Invalid(e) => AppError::invalid(
            open311_field(e.field),
            reasons::of_input(&e.reason),
            format!("{}: {}", open311_field(e.field), e.reason),
        ),
        other => {
            tracing::error!(error = %other, "the rules refused an Open311 request");
            AppError::internal()
        }
    }
}

/// Files a checked request as a resident's case, in the caller's write
/// transaction; any error leaves nothing written (the caller rolls back).
pub fn file(
    conn: &mut Connection,
    map: &GridMap,
    key_id: &str,
    request: NewRequest,
    now: Millis,
) -> Result<CaseId, AppError> {
    let point = request
        .draft
        .location
        .as_ref()
        .map(|l| l.point)
        .ok_or_else(AppError::internal)?;
    if map.grid_of(&point).is_none() {
        return Err(AppError::invalid(
            "lat",
            reasons::NO_GRID,
            "lat, long: the point is outside every grid this centre serves",
        ));
    }
    let case_id = CaseId::new();
    let actor = Actor {
        role: Role::Resident,
        id: resident_actor_id(key_id),
    };
    let create = OpKind::Create {
        draft: request.draft,
    };
    {
        let mut tx = crate::db::tx(conn);
        crate::db::now(cases::append_server_op(
            &mut tx,
            map,
            case_id,
            actor.clone(),
            create,
            now,
        ))?
        .map_err(refused)?;
        crate::db::now(cases::append_server_op(
            &mut tx,
            map,
            case_id,
            actor,
            OpKind::Submit,
            now,
        ))?
        .map_err(refused)?;
        crate::db::now(cases::receive(&mut tx, map, case_id, now))?;
    }
    let c = &request.contact;
    conn.execute(
        "INSERT INTO open311_requests (case_id, key_id, email, first_name, last_name, phone,
             client_device_id, client_account_id, media_url, requested_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            case_id.to_string(),
            key_id,
            c.email,
            c.first_name,
            c.last_name,
            c.phone,
            c.device_id,
            c.account_id,
            request.media_url,
            now
        ],
    )?;
    tracing::info!(case = %case_id, key = key_id, "Open311 request filed");
    Ok(case_id)
}

/// The answer to a POST.
pub fn filed(case_id: CaseId) -> Document {
    Document::list(
        "service_requests",
        "request",
        vec![Value::Object(vec![
            ("service_request_id", Value::str(case_id.to_string())),
            ("service_notice", Value::Null),
            ("account_id", Value::Null),
        ])],
    )
}

/// Whether a non-draft case with this id exists (for a 404 on GET by id).
pub fn exists(conn: &Connection, id: &str) -> Result<bool, AppError> {
    Ok(conn.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE id = :id AND status NOT IN {})",
            *status_sql::DRAFT
        ),
        named_params! {":id": id},
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NOW: Millis = 1_751_326_200_000;

    #[test]
    fn a_post_reads_spec_fields_and_names_what_is_wrong() {
        let ok = NewRequest::parse(
            &pairs(&[
                ("api_key", "k"),
                ("service_code", "collapsed_manhole"),
                ("lat", "42.87"),
                ("long", "125.07"),
                ("address_string", "人民大街"),
                ("description", "\n井盖塌陷，车掉进去了\n请尽快处理"),
                ("email", "resident@example.org"),
            ]),
            NOW,
            &Zone::default(),
        )
        .unwrap();
        assert_eq!(ok.draft.title, "井盖塌陷，车掉进去了");
        assert_eq!(ok.draft.occurred_at, NOW);
        assert_eq!(ok.contact.email.as_deref(), Some("resident@example.org"));
        let base = [
            ("service_code", "collapsed_manhole"),
            ("lat", "42.87"),
            ("long", "125.07"),
        ];
        let refused = |extra: &[(&str, &str)], without: &str| {
            let mut list: Vec<(&str, &str)> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != without)
                .collect();
            list.extend_from_slice(extra);
            NewRequest::parse(&pairs(&list), NOW, &Zone::default())
                .unwrap_err()
                .description
        };
        assert!(refused(&[], "service_code").starts_with("service_code:"));
        assert!(refused(&[("service_code", "x")], "service_code").starts_with("service_code:"));
        assert!(refused(&[], "lat").starts_with("lat:"));
        assert!(refused(&[("lat", "north")], "lat").starts_with("lat:"));
        assert!(refused(&[("lat", "95")], "lat").starts_with("lat:"));
        assert!(refused(&[("attribute[colour]", "red")], "").starts_with("attribute[colour]:"));
        assert!(refused(&[("attribute[title]", "a\nb")], "").starts_with("attribute[title]:"));
        assert!(refused(&[("attribute[occurred_at]", "soon")], "")
            .starts_with("attribute[occurred_at]:"));
        let long_address = "路".repeat(300);
        assert!(refused(&[("address_string", &long_address)], "").starts_with("address_string:"));
        assert!(refused(&[("media_url", "javascript:x")], "").starts_with("media_url:"));
        assert!(refused(&[("lat", "42.8")], "").starts_with("lat: is given more than once"));
    }

    #[test]
    fn a_search_defaults_to_ninety_days_and_refuses_a_longer_span() {
        let q = RequestQuery::parse(&[], NOW, &Zone::default()).unwrap();
        let RequestQuery::Search { period, .. } = q else {
            panic!("a search")
        };
        assert_eq!(period.to - period.from, MAX_SPAN + 1);
        let q = RequestQuery::parse(
            &pairs(&[("service_request_id", "a, b"), ("status", "bogus")]),
            NOW,
            &Zone::default(),
        )
        .unwrap();
        assert_eq!(q, RequestQuery::Ids(vec!["a".into(), "b".into()]));
        let err = RequestQuery::parse(
            &pairs(&[
                ("start_date", "2025-01-01T00:00:00Z"),
                ("end_date", "2025-06-01T00:00:00Z"),
            ]),
            NOW,
            &Zone::default(),
        )
        .unwrap_err();
        assert!(err.description.starts_with("end_date:"));
        let err = RequestQuery::parse(&pairs(&[("status", "open,pending")]), NOW, &Zone::default())
            .unwrap_err();
        assert!(err.description.starts_with("status:"));
        let q = RequestQuery::parse(
            &pairs(&[("status", "open"), ("status", "closed")]),
            NOW,
            &Zone::default(),
        );
        assert!(matches!(q, Ok(RequestQuery::Search { statuses, .. }) if statuses.len() == 2));
    }

    #[test]
    fn every_state_maps_to_open_or_closed() {
        assert_eq!(Open311Status::of(CaseStatus::Resolved), Open311Status::Open);
        assert_eq!(
            Open311Status::of(CaseStatus::Verified),
            Open311Status::Closed
        );
        assert_eq!(
            Open311Status::of(CaseStatus::Cancelled),
            Open311Status::Closed
        );
        assert_eq!(Open311Status::of(CaseStatus::Reopened), Open311Status::Open);
    }
}
