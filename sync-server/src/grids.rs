//! The server's grid map: imported whole by the admin, kept in the database
//! (so an import made while the server runs is seen at once), cached parsed in
//! memory by version.

use std::collections::HashSet;
use std::sync::RwLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use gridcase_core::grid::{GridMap, GridUnit};
use gridcase_core::protocol::GRID_MAP_VERSION_HEADER;
use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::accounts::{account_grids, DeviceAuth};
use crate::cases;
use crate::error::{codes, AppError};
use crate::AppState;

/// The parsed map of the version last seen.
#[derive(Default)]
pub struct GridCache {
    cached: RwLock<Option<(i64, GridMap)>>,
}

impl GridCache {
    /// The map as of `conn`'s snapshot (re-read only when an import changed it).
    pub fn current(&self, conn: &Connection) -> Result<GridMap, AppError> {
        let version: Option<i64> = conn
            .query_row("SELECT version FROM grid_map WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(version) = version else {
            return Ok(GridMap::empty());
        };
        if let Ok(cached) = self.cached.read() {
            if let Some((v, map)) = cached.as_ref() {
                if *v == version {
                    return Ok(map.clone());
                }
            }
        }
        let text: String = conn.query_row(
            "SELECT geojson FROM grid_map WHERE version = ?1",
            [version],
            |r| r.get(0),
        )?;
        let map = GridMap::from_geojson(&text).map_err(|e| {
            tracing::error!(error = %e, "the stored grid map does not load");
            AppError::internal()
        })?;
        if let Ok(mut cached) = self.cached.write() {
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
pub(crate) fn import(
    conn: &Connection,
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
    let version: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM grid_map",
        [],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO grid_map (id, version, geojson, unit_count, imported_at) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, geojson = excluded.geojson,
             unit_count = excluded.unit_count, imported_at = excluded.imported_at",
        params![version, map.to_geojson(), map.len() as i64, now],
    )?;
    let cases_moved = cases::replace_all(conn, &map, now)?;
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
        .db
        .read(move |tx| {
            let map = grids.current(tx)?;
            let mine = account_grids(tx, &device.account_id)?;
            let subset = GridMap::from_units(visible_units(&map, &mine)).map_err(|e| {
                tracing::error!(error = %e, "a visible part of the map is not a valid map");
                AppError::internal()
            })?;
            let version: u64 = tx.query_row(
                "SELECT COALESCE((SELECT version FROM grid_map WHERE id = 1), 0)",
                [],
                |r| r.get(0),
            )?;
            Ok((subset.to_geojson(), version))
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
