//! The names people read for the ids in ops: the staff and grid leaders who
//! acted, the departments cases went to. The dashboard's timeline, the
//! figures, the exports and the terminals' sync answers
//! ([`gridcase_core::protocol::SyncResponse::names`]) all take them from here.
//!
//! A dispatch op names its department by id. Ops written before ids were
//! stored name it by its name; such a name is shown as it is.

use std::collections::{BTreeMap, HashMap};

use gridcase_core::op::{Op, OpKind};
use gridcase_core::protocol::{DisplayName, NameKind};
use rusqlite::{Connection, OptionalExtension};

use crate::error::AppError;

/// The prefix of the actor id of a department's steps recorded by an admin
/// command (`department:<id>`): no member of staff made them.
pub const DEPARTMENT_ACTOR_PREFIX: &str = "department:";

/// Every department by id, loaded once for a page of output.
#[derive(Debug, Clone, Default)]
pub struct Departments {
    by_id: HashMap<String, String>,
}

impl Departments {
    pub fn load(conn: &Connection) -> Result<Departments, AppError> {
        let mut stmt = conn.prepare_cached("SELECT id, name FROM departments")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        Ok(Departments {
            by_id: rows.collect::<Result<_, _>>()?,
        })
    }

    /// The name of the department a dispatch names (its id, or the name an
    /// older server stored).
    pub fn name_of(&self, department: &str) -> String {
        self.by_id
            .get(department)
            .cloned()
            .unwrap_or_else(|| department.to_string())
    }

    /// The same for an optional one.
    pub fn name_of_opt(&self, department: Option<&str>) -> Option<String> {
        department.map(|d| self.name_of(d))
    }
}

/// The name of whoever has `actor_id`: a member of staff, a grid leader's
/// account, a department acting through an admin command, an Open311 client.
/// `None` for the server itself and ids nobody is known by.
pub fn actor_name(conn: &Connection, actor_id: &str) -> Result<Option<String>, AppError> {
    let staff: Option<String> = conn
        .prepare_cached("SELECT name FROM staff WHERE id = ?1")?
        .query_row([actor_id], |r| r.get(0))
        .optional()?;
    if staff.is_some() {
        return Ok(staff);
    }
    let account: Option<String> = conn
        .prepare_cached("SELECT name FROM accounts WHERE id = ?1")?
        .query_row([actor_id], |r| r.get(0))
        .optional()?;
    if account.is_some() {
        return Ok(account);
    }
    if let Some(department) = actor_id.strip_prefix(DEPARTMENT_ACTOR_PREFIX) {
        return Ok(Some(Departments::load(conn)?.name_of(department)));
    }
    if let Some(key) = actor_id.strip_prefix("open311:") {
        return Ok(conn
            .prepare_cached("SELECT name FROM open311_keys WHERE id = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?);
    }
    Ok(None)
}

/// The names of the ids `ops` mention (actors, dispatch departments), each
/// once: what a sync answer carries for its page of ops, and no more.
pub fn for_ops<'a>(
    conn: &Connection,
    ops: impl IntoIterator<Item = &'a Op>,
) -> Result<Vec<DisplayName>, AppError> {
    let mut wanted: BTreeMap<(String, u8), NameKind> = BTreeMap::new();
    for op in ops {
        wanted.insert((op.actor.id.clone(), 0), NameKind::Actor);
        if let OpKind::Dispatch { department, .. } = &op.kind {
            wanted.insert((department.clone(), 1), NameKind::Department);
        }
    }
    let departments = if wanted.values().any(|k| *k == NameKind::Department) {
        Departments::load(conn)?
    } else {
        Departments::default()
    };
    let mut out = Vec::new();
    for ((id, _), kind) in wanted {
        let name = match kind {
            NameKind::Actor => actor_name(conn, &id)?,
            NameKind::Department => Some(departments.name_of(&id)),
        };
        if let Some(name) = name {
            out.push(DisplayName { id, kind, name });
        }
    }
    Ok(out)
}
