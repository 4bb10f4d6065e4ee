//! The names people read for the ids ops carry: who acted (王调度, not an
//! account id) and which department a case went to. The server sends them
//! with the ops that mention them; they are kept with the page they came in.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{Store, StoreError};
use crate::protocol::NameKind;

/// Every name this terminal knows, by kind and id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    actors: HashMap<String, String>,
    departments: HashMap<String, String>,
}

impl Names {
    /// The name of an account (grid leader or member of staff), if known.
    pub fn actor(&self, id: &str) -> Option<&str> {
        self.actors.get(id).map(String::as_str)
    }

    /// The name of a department, if known (older servers sent the name
    /// itself as the department; it then has no entry and reads as it is).
    pub fn department(&self, id: &str) -> Option<&str> {
        self.departments.get(id).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty() && self.departments.is_empty()
    }

    fn insert(&mut self, kind: NameKind, id: String, name: String) {
        match kind {
            NameKind::Actor => self.actors.insert(id, name),
            NameKind::Department => self.departments.insert(id, name),
        };
    }
}

fn kind_code(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Actor => "actor",
        NameKind::Department => "department",
    }
}

/// Keeps (or renames) one name, inside the caller's transaction.
pub(super) fn save_name_in(
    tx: &Connection,
    kind: NameKind,
    id: &str,
    name: &str,
) -> Result<(), StoreError> {
    // A name is shown on a line of a screen: bounded and printable, like a
    // grid leader's own text.
    if crate::case::check_text("name", name, 1, 100).is_err()
        || crate::case::check_text("id", id, 1, 200).is_err()
    {
        tracing::warn!("a display name from the server was left out: not printable");
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO display_names (kind, id, name) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name",
    )?
    .execute([kind_code(kind), id, name])?;
    Ok(())
}

impl Store {
    /// Every display name held.
    pub fn names(&self) -> Result<Names, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT kind, id, name FROM display_names")?;
            let mut rows = stmt.query([])?;
            let mut names = Names::default();
            while let Some(r) = rows.next()? {
                let kind = match r.get::<_, String>(0)?.as_str() {
                    "actor" => NameKind::Actor,
                    _ => NameKind::Department,
                };
                names.insert(kind, r.get(1)?, r.get(2)?);
            }
            Ok(names)
        })
    }
}
