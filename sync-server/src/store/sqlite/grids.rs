//! The grid map on SQLite.

use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::StoreError;

pub(crate) fn grid_map_version(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM grid_map WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

pub(crate) fn load_grid_map(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version, geojson FROM grid_map WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub(crate) fn store_grid_map(
    conn: &Connection,
    geojson: &str,
    unit_count: usize,
    now: Millis,
) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO grid_map (id, version, geojson, unit_count, imported_at)
             VALUES (1, 1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET version = grid_map.version + 1,
                 geojson = excluded.geojson, unit_count = excluded.unit_count,
                 imported_at = excluded.imported_at
             RETURNING version",
        )?
        .query_row(params![geojson, unit_count as i64, now], |r| r.get(0))?)
}
