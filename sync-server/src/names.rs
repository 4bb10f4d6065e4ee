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

use crate::store::{ReadTx, StoreError};

/// The prefix of the actor id of a department's steps recorded by an admin
/// command (`department:<id>`): no member of staff made them.
pub const DEPARTMENT_ACTOR_PREFIX: &str = "department:";
/// The prefix of the actor id of a case an Open311 client filed
/// (`open311:<key id>`).
pub const OPEN311_ACTOR_PREFIX: &str = "open311:";

/// Every department by id, loaded once for a page of output.
#[derive(Debug, Clone, Default)]
pub struct Departments {
    by_id: HashMap<String, String>,
}

impl Departments {
    pub async fn load(tx: &mut ReadTx<'_>) -> Result<Departments, StoreError> {
        Ok(Departments {
            by_id: tx
                .list_departments()
                .await?
                .into_iter()
                .map(|d| (d.id, d.name))
                .collect(),
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

/// The names of whoever has the `actor_ids`: a member of staff, a grid
/// leader's account, a department acting through an admin command, an
/// Open311 client — in that order when an id could be more than one. The
/// server itself and ids nobody is known by get no name.
pub async fn actor_names(
    tx: &mut ReadTx<'_>,
    actor_ids: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut left: Vec<&str> = actor_ids.to_vec();
    for (id, name) in tx.staff_names(&left).await? {
        names.insert(id, name);
    }
    left.retain(|id| !names.contains_key(*id));
    for (id, name) in tx.account_names(&left).await? {
        names.insert(id, name);
    }
    left.retain(|id| !names.contains_key(*id));
    if left
        .iter()
        .any(|id| id.starts_with(DEPARTMENT_ACTOR_PREFIX))
    {
        let departments = Departments::load(tx).await?;
        for id in &left {
            if let Some(department) = id.strip_prefix(DEPARTMENT_ACTOR_PREFIX) {
                names.insert(id.to_string(), departments.name_of(department));
            }
        }
    }
    let keys: Vec<&str> = left
        .iter()
        .filter_map(|id| id.strip_prefix(OPEN311_ACTOR_PREFIX))
        .collect();
    if !keys.is_empty() {
        for (key, name) in tx.open311_key_names(&keys).await? {
            names.insert(format!("{OPEN311_ACTOR_PREFIX}{key}"), name);
        }
    }
    Ok(names)
}

/// The name of whoever has `actor_id` (see [`actor_names`]).
pub async fn actor_name(tx: &mut ReadTx<'_>, actor_id: &str) -> Result<Option<String>, StoreError> {
    Ok(actor_names(tx, &[actor_id]).await?.remove(actor_id))
}

/// The names of the ids `ops` mention (actors, dispatch departments), each
/// once: what a sync answer carries for its page of ops, and no more.
pub async fn for_ops<'a>(
    tx: &mut ReadTx<'_>,
    ops: impl IntoIterator<Item = &'a Op>,
) -> Result<Vec<DisplayName>, StoreError> {
    let mut wanted: BTreeMap<(String, u8), NameKind> = BTreeMap::new();
    for op in ops {
        wanted.insert((op.actor.id.clone(), 0), NameKind::Actor);
        if let OpKind::Dispatch { department, .. } = &op.kind {
            wanted.insert((department.clone(), 1), NameKind::Department);
        }
    }
    let departments = if wanted.values().any(|k| *k == NameKind::Department) {
        Departments::load(tx).await?
    } else {
        Departments::default()
    };
    let actors: Vec<&str> = wanted
        .iter()
        .filter(|(_, k)| **k == NameKind::Actor)
        .map(|((id, _), _)| id.as_str())
        .collect();
    let mut actor_names = if actors.is_empty() {
        HashMap::new()
    } else {
        actor_names(tx, &actors).await?
    };
    let mut out = Vec::new();
    for ((id, _), kind) in wanted {
        let name = match kind {
            NameKind::Actor => actor_names.remove(&id),
            NameKind::Department => Some(departments.name_of(&id)),
        };
        if let Some(name) = name {
            out.push(DisplayName { id, kind, name });
        }
    }
    Ok(out)
}
