//! The grid map: imported whole, one row, its version growing with each
//! import (what every instance's [`crate::grids::GridCache`] keys on).

use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

impl ReadTx<'_> {
    /// The version of the map in this snapshot (`None`: none imported).
    pub async fn grid_map_version(&mut self) -> Result<Option<i64>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::grids::grid_map_version(c),
            ReadTx::Postgres(c) => postgres::grids::grid_map_version(c).await,
        }
    }

    /// The map in this snapshot, as GeoJSON, with its version.
    pub async fn load_grid_map(&mut self) -> Result<Option<(i64, String)>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::grids::load_grid_map(c),
            ReadTx::Postgres(c) => postgres::grids::load_grid_map(c).await,
        }
    }
}

impl Tx<'_> {
    /// Replaces the map; answers its new version (one more than the last,
    /// however many instances import at once).
    pub async fn store_grid_map(
        &mut self,
        geojson: &str,
        unit_count: usize,
        now: Millis,
    ) -> Result<i64, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::grids::store_grid_map(c, geojson, unit_count, now),
            ReadTx::Postgres(c) => {
                postgres::grids::store_grid_map(c, geojson, unit_count, now).await
            }
        }
    }
}
