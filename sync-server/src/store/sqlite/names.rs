//! Names on SQLite.

use rusqlite::{Connection, OptionalExtension};

use crate::store::names::Names;
use crate::store::StoreError;

/// `table` is one of the store's own table names (never input).
pub(crate) fn names_in(
    conn: &Connection,
    table: &'static str,
    ids: &[&str],
) -> Result<Names, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT name FROM {table} WHERE id = ?1"))?;
    let mut out = Vec::new();
    for id in ids {
        let name: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
        if let Some(name) = name {
            out.push((id.to_string(), name));
        }
    }
    Ok(out)
}
