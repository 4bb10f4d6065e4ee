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

/// A map of at most this many units goes to terminals whole: a district's
/// few hundred grids are a few hundred kilobytes once, and then every point a
/// grid leader can record is named exactly as the server names it.
pub const WHOLE_MAP_UNITS: usize = 2_000;

/// How far around its own units a terminal of a big map sees the map, in
/// degrees (about a kilometre): the grids next door, where a point recorded
/// at a boundary, or a resident's problem just across the street, falls.
pub const NEIGHBOURHOOD_DEG: f64 = 0.01;

/// The units a terminal of an account with `grid_ids` gets: enough of the
/// map to name the grid of any point it can record. The whole map when it has
/// at most `whole_map_up_to` units; otherwise [`visible_units`] (its grids,
/// their ancestors and descendants) and every unit whose boundary comes
/// within [`NEIGHBOURHOOD_DEG`] of one of its units, with their ancestors.
/// Closed under `parent`, in map order, so it is itself a valid map. Seeing a
/// grid's outline is not seeing its cases: those follow `account_grids`.
pub fn terminal_units(map: &GridMap, grid_ids: &[String], whole_map_up_to: usize) -> Vec<GridUnit> {
    if map.len() <= whole_map_up_to {
        return map.units().to_vec();
    }
    let own = visible_units(map, grid_ids);
    let mut keep: HashSet<&str> = own.iter().map(|u| u.id.as_str()).collect();
    for unit in &own {
        for near in map.units_near(&unit.id, NEIGHBOURHOOD_DEG) {
            if keep.insert(&near.id) {
                keep.extend(map.ancestors(&near.id).into_iter().map(|u| u.id.as_str()));
            }
        }
    }
    map.units()
        .iter()
        .filter(|u| keep.contains(u.id.as_str()))
        .cloned()
        .collect()
}

/// `GET /v1/grids`: the terminal's part of the map ([`terminal_units`]) as
/// GeoJSON that `GridMap::from_geojson` reads.
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
                let subset = GridMap::from_units(terminal_units(&map, &mine, WHOLE_MAP_UNITS))
                    .map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIAOYUAN: &str = include_str!("../../tests/fixtures/grids/liaoyuan-sample.geojson");

    fn ids(units: &[GridUnit]) -> Vec<&str> {
        units.iter().map(|u| u.id.as_str()).collect()
    }

    #[test]
    fn a_small_map_goes_whole() {
        let map = GridMap::from_geojson(LIAOYUAN).unwrap();
        let all = terminal_units(&map, &["220402001001-G01".into()], WHOLE_MAP_UNITS);
        assert_eq!(all.len(), map.len());
    }

    #[test]
    fn a_big_map_goes_as_the_own_grids_and_the_ones_next_door() {
        let map = GridMap::from_geojson(LIAOYUAN).unwrap();
        let part = terminal_units(&map, &["220402001001-G01".into()], 0);
        let got = ids(&part);
        // Its own grid with its micro-grids and ancestors, and the grid next
        // door, so a point there is named, not "outside every grid".
        for id in [
            "220400",
            "220402",
            "220402001",
            "220402001001",
            "220402001001-G01",
            "220402001001-G01-M01",
            "220402001001-G02",
        ] {
            assert!(got.contains(&id), "{id} missing from {got:?}");
        }
        let sub = GridMap::from_units(part).unwrap();
        let next_door = gridcase_core::GeoPoint::new(42.895, 125.15, None).unwrap();
        assert_eq!(sub.grid_of(&next_door).unwrap().name, "福民社区第二网格");
    }
}
