//! Names on PostgreSQL: one statement per table for all the ids asked.

use std::collections::HashMap;

use uuid::Uuid;

use super::{col, uuid_of, PgConn};
use crate::store::names::Names;
use crate::store::StoreError;

/// `table` is one of the store's own table names (never input). Ids that
/// are not uuids name nobody in these tables.
pub(crate) async fn names_in(
    c: &mut PgConn<'_>,
    table: &'static str,
    ids: &[&str],
) -> Result<Names, StoreError> {
    let asked: HashMap<Uuid, &str> = ids
        .iter()
        .filter_map(|id| Some((uuid_of(id)?, *id)))
        .collect();
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<Uuid> = asked.keys().copied().collect();
    let rows = c
        .query(
            &format!("SELECT id, name FROM {table} WHERE id = ANY($1)"),
            &[&keys],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = col(r, 0)?;
        if let Some(asked) = asked.get(&id) {
            out.push((asked.to_string(), col(r, 1)?));
        }
    }
    Ok(out)
}
