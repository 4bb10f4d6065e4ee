//! The server's grid map: imported whole by the admin, kept in the database
//! (so an import made while the server runs, or by another instance on the
//! same PostgreSQL, is seen at once: every transaction reads the version in
//! its snapshot, the truth), cached parsed in memory by version.

use std::collections::HashSet;
use std::sync::RwLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use gridcase_core::grid::{GridMap, GridUnit};
use gridcase_core::protocol::GRID_MAP_VERSION_HEADER;
use gridcase_core::time::Millis;
use serde::Serialize;

use crate::accounts::DeviceAuth;
use crate::cases;
use crate::error::{codes, AppError};
use crate::store::{ReadTx, StoreError, Tx};
use crate::AppState;

/// The parsed map of the version last seen.
#[derive(Default)]
pub struct GridCache {
    cached: RwLock<Option<(i64, GridMap)>>,
}

impl GridCache {
    /// The map as of `tx`'s snapshot: the version there decides, so an import
    /// by another process or instance is picked up by the next transaction
    /// here (the map itself is re-read only when the version changed).
    pub async fn current(&self, tx: &mut ReadTx<'_>) -> Result<GridMap, StoreError> {
        let Some(version) = tx.grid_map_version().await? else {
            return Ok(GridMap::empty());
        };
        if let Ok(cached) = self.cached.read() {
            if let Some((v, map)) = cached.as_ref() {
                if *v == version {
                    return Ok(map.clone());
                }
            }
        }
        let Some((version, text)) = tx.load_grid_map().await? else {
            return Ok(GridMap::empty());
        };
        let map = GridMap::from_geojson(&text)
            .map_err(|e| StoreError::corrupt("the stored grid map", e.reason()))?;
        if let Ok(mut cached) = self.cached.write() {
            // Another request may have cached a newer one meanwhile; a
            // transaction with an older snapshot still gets its own.
            if cached.as_ref().is_none_or(|(v, _)| *v < version) {
                *cached = Some((version, map.clone()));
            }
        }
        Ok(map)
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub version: i64,
    pub units: usize,
    /// Cases whose grid changed with the new map.
    pub cases_moved: usize,
}

/// Replaces the map in the caller's transaction: checks the file with the
/// device's own reader, stores it, and re-places every case with it.
pub(crate) async fn import(
    tx: &mut Tx<'_>,
    geojson: &str,
    now: Millis,
) -> Result<ImportSummary, AppError> {
    let map = GridMap::from_geojson(geojson).map_err(|e| {
        AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            format!("the grid file is refused: {}", e.reason()),
        )
        .with_field(e.field())
    })?;
    let version = tx.store_grid_map(&map.to_geojson(), map.len(), now).await?;
    let cases_moved = cases::replace_all(tx, &map, now).await?;
    Ok(ImportSummary {
        version,
        units: map.len(),
        cases_moved,
    })
}

/// The units a device of an account with `grid_ids` may see: those grids, their
/// ancestors and their descendants, in map order. Closed under `parent`, so it
/// is itself a valid map.
pub fn visible_units(map: &GridMap, grid_ids: &[String]) -> Vec<GridUnit> {
    let mut keep: HashSet<&str> = HashSet::new();
    for id in grid_ids {
        let Some(unit) = map.get(id) else { continue };
        keep.insert(&unit.id);
        keep.extend(map.ancestors(id).into_iter().map(|u| u.id.as_str()));
        let mut stack = vec![unit.id.as_str()];
        while let Some(next) = stack.pop() {
            for child in map.children(next) {
                if keep.insert(&child.id) {
                    stack.push(&child.id);
                }
            }
        }
    }
    map.units()
        .iter()
        .filter(|u| keep.contains(u.id.as_str()))
        .cloned()
        .collect()
}

/// `GET /v1/grids`: the visible units as GeoJSON that `GridMap::from_geojson` reads.
pub(crate) async fn grids_handler(
    State(state): State<AppState>,
    device: DeviceAuth,
) -> Result<impl IntoResponse, AppError> {
    let grids = state.grids.clone();
    let body = state
        .store
        .read(move |tx| {
            let (grids, device) = (grids.clone(), device.clone());
            Box::pin(async move {
                let map = grids.current(tx).await?;
                let mine = tx.account_grids(&device.account_id).await?;
                let subset = GridMap::from_units(visible_units(&map, &mine)).map_err(|e| {
                    tracing::error!(error = %e, "a visible part of the map is not a valid map");
                    AppError::internal()
                })?;
                let version = tx.grid_map_version().await?.unwrap_or(0).max(0) as u64;
                Ok::<_, AppError>((subset.to_geojson(), version))
            })
        })
        .await?;
    let (body, version) = body;
    Ok((
        [
            (header::CONTENT_TYPE, "application/geo+json".to_string()),
            (
                header::HeaderName::from_static(GRID_MAP_VERSION_HEADER),
                version.to_string(),
            ),
        ],
        body,
    ))
}
