//! The grid map on PostgreSQL. An import takes the map's row lock, so two
//! imports at once number their versions one after the other.

use gridcase_core::time::Millis;

use super::{col, PgConn};
use crate::store::StoreError;

pub(crate) async fn grid_map_version(c: &mut PgConn<'_>) -> Result<Option<i64>, StoreError> {
    c.query_opt("SELECT version FROM grid_map WHERE id = 1", &[])
        .await?
        .map(|r| col(&r, 0))
        .transpose()
}

pub(crate) async fn load_grid_map(c: &mut PgConn<'_>) -> Result<Option<(i64, String)>, StoreError> {
    c.query_opt("SELECT version, geojson FROM grid_map WHERE id = 1", &[])
        .await?
        .map(|r| Ok((col(&r, 0)?, col(&r, 1)?)))
        .transpose()
}

pub(crate) async fn store_grid_map(
    c: &mut PgConn<'_>,
    geojson: &str,
    unit_count: usize,
    now: Millis,
) -> Result<i64, StoreError> {
    let units = i32::try_from(unit_count)
        .map_err(|_| StoreError::Backend("a map of more than 2^31 units".into()))?;
    let row = c
        .query_one(
            "INSERT INTO grid_map (id, version, geojson, unit_count, imported_at)
             VALUES (1, 1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET version = grid_map.version + 1,
                 geojson = excluded.geojson, unit_count = excluded.unit_count,
                 imported_at = excluded.imported_at
             RETURNING version",
            &[&geojson, &units, &now],
        )
        .await?;
    col(&row, 0)
}
