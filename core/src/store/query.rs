//! The grid leader's case lists: drafts, waiting to sync, overdue, by status, by
//! grid, by text; ordered by deadline or by last change; in pages.
//!
//! Pages are keyset-based (the page token is the last row's sort key and id), so
//! page 200 costs what page 1 costs and a case recorded while scrolling does not
//! shift or repeat rows.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::{Store, StoreError};
use crate::case::{CaseStatus, Category};
use crate::error::InvalidInput;
use crate::ids::CaseId;
use crate::time::Millis;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseOrder {
    /// Most recently changed first.
    #[default]
    LastChange,
    /// Soonest deadline first; cases without a deadline last.
    Deadline,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseQuery {
    /// Only cases in one of these states; empty means any.
    pub statuses: Vec<CaseStatus>,
    pub grid_id: Option<String>,
    /// Only cases with operations not yet on the server.
    pub waiting_to_sync: bool,
    /// Only cases with steps the server refused that nobody sent again.
    pub refused: bool,
    /// Only cases recorded at or after this instant (say, the start of a
    /// day on the deployment's clock, `Zone::day_start`).
    pub recorded_from: Option<Millis>,
    /// Only cases recorded before this instant.
    pub recorded_before: Option<Millis>,
    /// Only cases past their deadline and still awaiting handling.
    pub overdue: bool,
    /// Words in the title, description or address.
    pub text: Option<String>,
    pub order: CaseOrder,
    /// 0 means the default page size.
    pub page_size: u32,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    pub id: CaseId,
    pub status: CaseStatus,
    pub category: Category,
    pub title: String,
    pub grid_id: Option<String>,
    pub deadline: Option<Millis>,
    pub overdue: bool,
    pub updated_at: Millis,
    pub waiting_to_sync: bool,
    /// Steps the server refused that nobody sent again.
    pub refused_steps: u32,
    pub created_at: Millis,
    pub photo_count: u32,
    /// SHA-256 of the first photo's thumbnail, for the list row.
    pub thumb_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CasePage {
    pub cases: Vec<CaseSummary>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

const NO_DEADLINE: i64 = i64::MAX;

impl Store {
    pub fn list_cases(&self, q: &CaseQuery, now: Millis) -> Result<CasePage, StoreError> {
        let plan = plan(q, now)?;
        self.read(|conn| run(conn, &plan, now))
    }
}

struct Plan {
    sql: String,
    params: Vec<Value>,
    page_size: u32,
    order: CaseOrder,
}

fn plan(q: &CaseQuery, now: Millis) -> Result<Plan, StoreError> {
    let page_size = match q.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(
                InvalidInput::new("page_size", format!("must be at most {MAX_PAGE_SIZE}")).into(),
            )
        }
        n => n,
    };
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let bind = |params: &mut Vec<Value>, v: Value| {
        params.push(v);
        format!("?{}", params.len())
    };

    if !q.statuses.is_empty() {
        let list: Vec<String> = q
            .statuses
            .iter()
            .map(|s| bind(&mut params, Value::Text(s.as_str().into())))
            .collect();
        conds.push(format!("status IN ({})", list.join(", ")));
    }
    if let Some(grid) = &q.grid_id {
        let p = bind(&mut params, Value::Text(grid.clone()));
        conds.push(format!("grid_id = {p}"));
    }
    if q.waiting_to_sync {
        conds.push("pending_ops > 0".into());
    }
    if q.refused {
        conds.push("rejected_ops > 0".into());
    }
    if let Some(from) = q.recorded_from {
        let p = bind(&mut params, Value::Integer(from));
        conds.push(format!("created_at >= {p}"));
    }
    if let Some(before) = q.recorded_before {
        let p = bind(&mut params, Value::Integer(before));
        conds.push(format!("created_at < {p}"));
    }
    if q.overdue {
        let open: Vec<String> = CaseStatus::ALL
            .into_iter()
            .filter(|s| s.awaits_handling())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let p = bind(&mut params, Value::Integer(now));
        conds.push(format!(
            "deadline_key < {p} AND status IN ({})",
            open.join(", ")
        ));
    }
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        crate::case::check_text("text", text, 1, MAX_QUERY_CHARS)?;
        if text.chars().count() >= 3 {
            // A quoted FTS5 phrase: the user's words are data, never query syntax.
            let phrase = format!("\"{}\"", text.replace('"', "\"\""));
            let p = bind(&mut params, Value::Text(phrase));
            conds.push(format!(
                "n IN (SELECT rowid FROM cases_search WHERE cases_search MATCH {p})"
            ));
        } else {
            let p = bind(&mut params, Value::Text(text.to_owned()));
            conds.push(format!(
                "(instr(title, {p}) > 0 OR instr(description, {p}) > 0 \
                 OR instr(coalesce(address, ''), {p}) > 0)"
            ));
        }
    }
    let (key_col, cmp, dir) = match q.order {
        CaseOrder::LastChange => ("updated_at", "<", "DESC"),
        CaseOrder::Deadline => ("deadline_key", ">", "ASC"),
    };
    if let Some(token) = &q.page_token {
        let (key, id) = parse_token(token)?;
        let k = bind(&mut params, Value::Integer(key));
        let i = bind(&mut params, Value::Text(id));
        conds.push(format!("({key_col}, id) {cmp} ({k}, {i})"));
    }
    let where_clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let limit = bind(&mut params, Value::Integer(page_size as i64 + 1));
    let sql = format!(
        "SELECT id, status, category, title, grid_id, deadline_key, updated_at, pending_ops,
            (SELECT count(*) FROM photos p WHERE p.case_id = c.id),
            (SELECT thumb_sha256 FROM photos p WHERE p.case_id = c.id
                ORDER BY added_at, id LIMIT 1),
            {key_col}, rejected_ops, created_at
         FROM cases c {where_clause}
         ORDER BY {key_col} {dir}, id {dir}
         LIMIT {limit}"
    );
    Ok(Plan {
        sql,
        params,
        page_size,
        order: q.order,
    })
}

fn run(conn: &Connection, plan: &Plan, now: Millis) -> Result<CasePage, StoreError> {
    let mut stmt = conn.prepare_cached(&plan.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(plan.params.iter()))?;
    let mut cases = Vec::new();
    let mut last_key = None;
    let mut has_more = false;
    while let Some(r) = rows.next()? {
        if cases.len() == plan.page_size as usize {
            has_more = true;
            break;
        }
        let id: String = r.get(0)?;
        let status: String = r.get(1)?;
        let category: String = r.get(2)?;
        let deadline_key: i64 = r.get(5)?;
        let status = CaseStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt("unknown status in database"))?;
        let deadline = (deadline_key != NO_DEADLINE).then_some(deadline_key);
        let key: i64 = r.get(10)?;
        last_key = Some((key, id.clone()));
        cases.push(CaseSummary {
            id: CaseId::parse(&id).map_err(StoreError::corrupt)?,
            status,
            category: Category::parse(&category)
                .ok_or_else(|| StoreError::corrupt("unknown category in database"))?,
            title: r.get(3)?,
            grid_id: r.get(4)?,
            deadline,
            overdue: crate::deadline::is_overdue(deadline, status.awaits_handling(), now),
            updated_at: r.get(6)?,
            waiting_to_sync: r.get::<_, i64>(7)? > 0,
            refused_steps: r.get(11)?,
            created_at: r.get(12)?,
            photo_count: r.get(8)?,
            thumb_sha256: r.get(9)?,
        });
    }
    let _ = plan.order;
    let next_page_token = if has_more {
        last_key.map(|(k, id)| format!("{k}:{id}"))
    } else {
        None
    };
    Ok(CasePage {
        cases,
        next_page_token,
    })
}

fn parse_token(token: &str) -> Result<(i64, String), InvalidInput> {
    let bad = || InvalidInput::new("page_token", "is not a token from a previous page");
    let (key, id) = token.split_once(':').ok_or_else(bad)?;
    let key: i64 = key.parse().map_err(|_| bad())?;
    let id = CaseId::parse(id).map_err(|_| bad())?;
    Ok((key, id.to_string()))
}

/// What a typed id (a full id, its first characters, or its last ones)
/// stands for on this terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMatch<T> {
    One(T),
    /// Nothing on this terminal has such an id.
    None,
    /// Several do (at most a few are listed).
    Many(Vec<T>),
}

/// The fewest characters a shortened id must have.
pub const MIN_ID_CHARS: usize = 4;
/// How many candidates an ambiguous id lists.
const CANDIDATES: i64 = 5;

/// A typed id as a LIKE pattern body: lowercase hex digits and hyphens
/// only, so nothing a person types is ever read as a pattern.
fn id_fragment(field: &'static str, text: &str) -> Result<String, InvalidInput> {
    let t = text.trim().to_ascii_lowercase();
    if t.chars().count() < MIN_ID_CHARS || t.len() > 36 {
        return Err(InvalidInput::new(
            field,
            format!("give the whole id, or at least its first or last {MIN_ID_CHARS} characters"),
        ));
    }
    if !t.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(InvalidInput::new(
            field,
            "is not an id (hex digits and hyphens)",
        ));
    }
    Ok(t)
}

fn find_ids(
    conn: &Connection,
    table: &str,
    extra: &str,
    fragment: &str,
    extra_param: Option<String>,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT id FROM {table} WHERE (id LIKE ?1 || '%' OR id LIKE '%' || ?1) {extra}
         ORDER BY id LIMIT {}",
        CANDIDATES + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut args = vec![fragment.to_string()];
    args.extend(extra_param);
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn to_match<T>(
    ids: Vec<String>,
    exact: &str,
    parse: impl Fn(&str) -> Result<T, InvalidInput>,
) -> Result<IdMatch<T>, StoreError> {
    // A whole id is itself, even if it were also the end of another.
    if let Some(id) = ids.iter().find(|id| id.as_str() == exact) {
        return Ok(IdMatch::One(parse(id).map_err(StoreError::corrupt)?));
    }
    let mut found = ids
        .iter()
        .take(CANDIDATES as usize)
        .map(|id| parse(id).map_err(StoreError::corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match found.len() {
        0 => IdMatch::None,
        1 => IdMatch::One(found.remove(0)),
        _ => IdMatch::Many(found),
    })
}

impl Store {
    /// The case a typed id stands for: the whole id, or its first or last
    /// characters (at least [`MIN_ID_CHARS`]).
    pub fn find_case_id(&self, text: &str) -> Result<IdMatch<CaseId>, StoreError> {
        let fragment = id_fragment("case_id", text)?;
        self.read(|conn| {
            let ids = find_ids(conn, "cases", "", &fragment, None)?;
            to_match(ids, &fragment, CaseId::parse)
        })
    }

    /// A photo of `case` by a typed id, as [`Store::find_case_id`].
    pub fn find_photo_id(
        &self,
        case: &CaseId,
        text: &str,
    ) -> Result<IdMatch<crate::ids::PhotoId>, StoreError> {
        let fragment = id_fragment("photo_id", text)?;
        self.read(|conn| {
            let ids = find_ids(
                conn,
                "photos",
                "AND case_id = ?2",
                &fragment,
                Some(case.to_string()),
            )?;
            to_match(ids, &fragment, crate::ids::PhotoId::parse)
        })
    }

    /// The shortest end of `id` (at least 8 characters) that no other case
    /// on this terminal ends with: what lists print.
    pub fn short_case_id(&self, id: &CaseId) -> Result<String, StoreError> {
        let full = id.to_string();
        self.read(|conn| {
            let mut n = 8;
            while n < full.len() {
                let tail = &full[full.len() - n..];
                let others: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM cases WHERE id LIKE '%' || ?1 AND id != ?2",
                    )?
                    .query_row(rusqlite::params![tail, full], |r| r.get(0))?;
                if others == 0 {
                    return Ok(tail.to_string());
                }
                n += 4;
            }
            Ok(full.clone())
        })
    }
}
