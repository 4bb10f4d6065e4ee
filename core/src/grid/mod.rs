//! The units of the grid and which unit a point falls in.
//!
//! Units form a tree: city (市) → county / district (县区) → township / street
//! (乡镇街道) → village / community (村社区) → grid (网格, about 500 households) →
//! micro-grid (微网格, about 70 households). A case's location places it in a grid,
//! and the grid decides who may see it. This module is pure (no I/O): the device and
//! the server load the same file and apply the same rules.
//!
//! # File format
//!
//! The server's admin import and the device both read a GeoJSON (RFC 7946)
//! `FeatureCollection`, UTF-8, coordinates WGS-84 `[longitude, latitude]`:
//!
//! ```json
//! { "type": "FeatureCollection",
//!   "features": [
//!     { "type": "Feature",
//!       "properties": { "id": "220400", "name": "辽源市", "level": "city", "parent": null },
//!       "geometry": null },
//!     { "type": "Feature",
//!       "properties": { "id": "220402", "name": "龙山区", "level": "county", "parent": "220400" },
//!       "geometry": { "type": "Polygon",
//!                     "coordinates": [[[125.0, 42.8], [125.3, 42.8], [125.3, 43.0], [125.0, 42.8]]] } }
//!   ] }
//! ```
//!
//! Other top-level members (`name`, `bbox`, …) are ignored. Each feature is one
//! unit; features may come in any order (a parent after its children is fine):
//!
//! - `"type": "Feature"`, and a `properties` object with
//!   - `id`: string, required, unique in the file, 1 to [`MAX_ID_CHARS`] characters,
//!     no control characters, no leading or trailing white space. Compared byte for
//!     byte. (A feature's top-level `"id"` member, if any, is ignored.)
//!   - `name`: string, required, not blank, at most [`MAX_NAME_CHARS`] characters.
//!   - `level`: one of `"city"`, `"county"`, `"township"`, `"village"`, `"grid"`,
//!     `"micro_grid"` (see [`UnitLevel`]).
//!   - `parent`: required member: the `id` of another feature in the same file, or
//!     `null` for a root. The parent's level must be shallower than the child's
//!     (levels may be skipped: a village may hold micro-grids directly). Parents may
//!     not form a cycle. Several roots are allowed (a district server may hold only
//!     its district; a province several cities), and a root may be of any level.
//!   - any other property is ignored.
//! - `geometry`: required member: a `Polygon`, a `MultiPolygon`, or `null` (a unit
//!   without a boundary, usual for the upper levels). Positions are
//!   `[lon, lat]` or `[lon, lat, altitude]` (altitude ignored), finite, lon within
//!   ±180 and lat within ±90. Every ring has at least 4 positions and its last
//!   position equals its first. A polygon has at least its exterior ring; holes
//!   follow it. A `MultiPolygon` has at least one polygon. Ring orientation does
//!   not matter. Polygons crossing the antimeridian are not supported.
//! - Coordinates are rounded to 7 decimal places (about 1 cm) on loading, so that
//!   [`GridMap::to_geojson`] round-trips exactly.
//! - Not checked: that a child's boundary lies within its parent's, that siblings
//!   do not overlap, that polygons do not self-intersect. Lookup stays well defined
//!   (deterministic) whatever the data.
//!
//! Errors name the feature's index and the member (`features[3].properties.level`)
//! and say why; see [`GridError`].
//!
//! # Which unit a point is in
//!
//! - A boundary belongs to the unit: a point exactly on an edge or a vertex of a
//!   unit's polygon (including the edge of one of its holes) is inside it.
//! - A point strictly inside a hole is not inside the unit.
//! - [`GridMap::locate`] gives the deepest unit (by [`UnitLevel`]) whose boundary
//!   contains the point; if several units of that level contain it (a point on
//!   the edge shared by two grids, or overlapping data), the one with the smallest
//!   id (byte-wise string order) wins. The answer does not depend on the order of
//!   the features in the file.
//! - [`GridMap::grid_of`] is the unit of level [`UnitLevel::Grid`] at or above
//!   `locate()`'s answer. If that branch of the tree has no grid level (a village
//!   not divided into grids yet, or micro-grids directly under a village), it is
//!   `locate()`'s answer itself. If `locate()` answers a unit that has grids or
//!   micro-grids below it (the point is in the village but in none of its grids,
//!   say in a hole), it is `None`: the case is still recorded, and the centre
//!   places it.
//! - A point outside every unit gives `None`. Non-finite coordinates give `None`.

mod format;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use geo::{coordinate_position::CoordPos, CoordinatePosition};
use geo_types::{Coord, MultiPolygon, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::location::GeoPoint;

pub use validate::{MAX_ID_CHARS, MAX_NAME_CHARS};

/// The level of a unit in the tree, from the top (city) down. The order of the
/// variants is the depth: `City < County < … < MicroGrid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitLevel {
    /// 市
    City,
    /// 县 / 区
    County,
    /// 乡 / 镇 / 街道
    Township,
    /// 村 / 社区
    Village,
    /// 网格, about 500 households
    Grid,
    /// 微网格, about 70 households: a building or a floor
    MicroGrid,
}

impl UnitLevel {
    pub const ALL: [UnitLevel; 6] = [
        UnitLevel::City,
        UnitLevel::County,
        UnitLevel::Township,
        UnitLevel::Village,
        UnitLevel::Grid,
        UnitLevel::MicroGrid,
    ];

    /// The name used in files and on the wire (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            UnitLevel::City => "city",
            UnitLevel::County => "county",
            UnitLevel::Township => "township",
            UnitLevel::Village => "village",
            UnitLevel::Grid => "grid",
            UnitLevel::MicroGrid => "micro_grid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == s)
    }
}

impl fmt::Display for UnitLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct GridUnit {
    pub id: String,
    pub name: String,
    pub level: UnitLevel,
    /// `None` for a root.
    pub parent_id: Option<String>,
    /// WGS-84, x = longitude, y = latitude. `None`: the unit has no boundary
    /// (usual for the upper levels); no point is ever located in it directly.
    pub boundary: Option<MultiPolygon<f64>>,
}

/// Why a grid file (or a list of units) was refused. [`GridError::field`] gives
/// the full path (`features[3].properties.level`) and [`GridError::reason`] the
/// why; the index is kept apart because [`InvalidInput::field`] is a
/// `&'static str`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// The document as a whole: not JSON (`geojson`), not a FeatureCollection
    /// (`type`), no `features` array (`features`).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// One unit: `index` is its position in `features` (for
    /// [`GridMap::from_units`], in the `Vec`, which is the feature it would be in
    /// [`GridMap::to_geojson`]'s output); `error.field` is the member within the
    /// feature, e.g. `properties.level`, `properties.parent`, `geometry.coordinates`.
    #[error("features[{index}].{}: {}", error.field, error.reason)]
    Feature { index: usize, error: InvalidInput },
}

impl GridError {
    fn feature(index: usize, field: &'static str, reason: impl Into<String>) -> Self {
        GridError::Feature {
            index,
            error: InvalidInput::new(field, reason),
        }
    }

    /// The full path of the offending member, e.g. `features[3].properties.level`,
    /// or `features` / `type` / `geojson` for the document as a whole.
    pub fn field(&self) -> String {
        match self {
            GridError::Invalid(e) => e.field.to_string(),
            GridError::Feature { index, error } => format!("features[{index}].{}", error.field),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            GridError::Invalid(e) => &e.reason,
            GridError::Feature { error, .. } => &error.reason,
        }
    }

    /// The index of the offending feature, if the problem is in one feature.
    pub fn feature_index(&self) -> Option<usize> {
        match self {
            GridError::Invalid(_) => None,
            GridError::Feature { index, .. } => Some(*index),
        }
    }
}

/// One polygon of one unit's boundary, by its bounding box: (unit, polygon).
type Entry = GeomWithData<Rectangle<[f64; 2]>, (usize, usize)>;

struct Inner {
    units: Vec<GridUnit>,
    by_id: HashMap<String, usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// What `grid_of` answers when `locate` answers this unit.
    grid_of: Vec<Option<usize>>,
    rtree: RTree<Entry>,
}

/// A validated tree of units with a spatial index. Cloning is cheap (shared).
#[derive(Clone)]
pub struct GridMap {
    inner: Arc<Inner>,
}

impl fmt::Debug for GridMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GridMap")
            .field("units", &self.inner.units.len())
            .finish_non_exhaustive()
    }
}

impl Default for GridMap {
    fn default() -> Self {
        Self::empty()
    }
}

impl GridMap {
    /// Parses and checks a GeoJSON FeatureCollection (see the module docs).
    pub fn from_geojson(text: &str) -> Result<GridMap, GridError> {
        Self::from_units(format::parse(text)?)
    }

    /// Checks units built in code, with the same rules as [`GridMap::from_geojson`]
    /// (errors name `features[i]` for `units[i]`). Coordinates are rounded to 7
    /// decimal places, as on loading a file.
    pub fn from_units(mut units: Vec<GridUnit>) -> Result<GridMap, GridError> {
        for (index, unit) in units.iter_mut().enumerate() {
            validate::check_unit(index, unit)?;
        }
        let links = validate::check_tree(&units)?;
        Ok(Self::build(units, links))
    }

    /// The map as a GeoJSON FeatureCollection, in [`GridMap::units`] order; reading
    /// it back with [`GridMap::from_geojson`] gives an equal map.
    pub fn to_geojson(&self) -> String {
        format::write(&self.inner.units)
    }

    /// A map without units: every lookup gives `None`.
    pub fn empty() -> GridMap {
        Self::build(Vec::new(), validate::Links::default())
    }

    /// All units, in the order they were given.
    pub fn units(&self) -> &[GridUnit] {
        &self.inner.units
    }

    pub fn len(&self) -> usize {
        self.inner.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.units.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&GridUnit> {
        self.index_of(id).map(|i| &self.inner.units[i])
    }

    /// The units whose parent is `id`, in the order they were given. Empty for an
    /// unknown id.
    pub fn children(&self, id: &str) -> Vec<&GridUnit> {
        match self.index_of(id) {
            Some(i) => self.inner.children[i]
                .iter()
                .map(|&c| &self.inner.units[c])
                .collect(),
            None => Vec::new(),
        }
    }

    /// The units from `id`'s parent up to its root (not `id` itself). Empty for a
    /// root or an unknown id.
    pub fn ancestors(&self, id: &str) -> Vec<&GridUnit> {
        let mut out = Vec::new();
        if let Some(i) = self.index_of(id) {
            let mut next = self.inner.parent[i];
            while let Some(p) = next {
                out.push(&self.inner.units[p]);
                next = self.inner.parent[p];
            }
        }
        out
    }

    /// Whether `id` is `ancestor_id` or lies below it. False if either is unknown.
    pub fn is_within(&self, id: &str, ancestor_id: &str) -> bool {
        let (Some(mut i), Some(a)) = (self.index_of(id), self.index_of(ancestor_id)) else {
            return false;
        };
        loop {
            if i == a {
                return true;
            }
            match self.inner.parent[i] {
                Some(p) => i = p,
                None => return false,
            }
        }
    }

    /// Units with a boundary whose bounding box comes within `margin_deg`
    /// degrees of the bounding box of `id`'s boundary (the unit itself
    /// included), in map order. Empty for an unknown id or a unit without a
    /// boundary. What a terminal needs to name the grid next door.
    pub fn units_near(&self, id: &str, margin_deg: f64) -> Vec<&GridUnit> {
        let Some(i) = self.index_of(id) else {
            return Vec::new();
        };
        let Some(boundary) = &self.inner.units[i].boundary else {
            return Vec::new();
        };
        let mut found = std::collections::BTreeSet::new();
        for polygon in &boundary.0 {
            let Some(rect) = bounding_box(polygon) else {
                continue;
            };
            let (lo, hi) = (rect.lower(), rect.upper());
            let m = margin_deg.max(0.0);
            let area = AABB::from_corners([lo[0] - m, lo[1] - m], [hi[0] + m, hi[1] + m]);
            for entry in self.inner.rtree.locate_in_envelope_intersecting(&area) {
                found.insert(entry.data.0);
            }
        }
        found.into_iter().map(|u| &self.inner.units[u]).collect()
    }

    /// The deepest unit whose boundary contains the point (boundary inclusive;
    /// ties at the same level go to the smallest id). `None` outside every unit.
    pub fn locate(&self, point: &GeoPoint) -> Option<&GridUnit> {
        self.locate_index(point.lon, point.lat)
            .map(|i| &self.inner.units[i])
    }

    /// The grid the point falls in: the unit of level [`UnitLevel::Grid`] at or
    /// above [`GridMap::locate`]'s answer; `locate`'s answer itself if that branch
    /// has no grid level; `None` if the point is outside every grid of an area
    /// divided into grids, or outside every unit.
    pub fn grid_of(&self, point: &GeoPoint) -> Option<&GridUnit> {
        let found = self.locate_index(point.lon, point.lat)?;
        self.inner.grid_of[found].map(|i| &self.inner.units[i])
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.inner.by_id.get(id).copied()
    }

    fn locate_index(&self, lon: f64, lat: f64) -> Option<usize> {
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        let inner = &*self.inner;
        let coord = Coord { x: lon, y: lat };
        let mut best: Option<usize> = None;
        for entry in inner
            .rtree
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
        {
            let (unit, polygon) = entry.data;
            if let Some(b) = best {
                if !self.beats(unit, b) {
                    continue;
                }
            }
            let Some(polygon) = inner.units[unit]
                .boundary
                .as_ref()
                .and_then(|b| b.0.get(polygon))
            else {
                continue;
            };
            if polygon_contains(polygon, &coord) {
                best = Some(unit);
            }
        }
        best
    }

    /// Whether unit `a` should be chosen over unit `b` when both contain a point.
    fn beats(&self, a: usize, b: usize) -> bool {
        let (ua, ub) = (&self.inner.units[a], &self.inner.units[b]);
        ua.level > ub.level || (ua.level == ub.level && ua.id < ub.id)
    }

    fn build(units: Vec<GridUnit>, links: validate::Links) -> GridMap {
        let validate::Links {
            by_id,
            parent,
            children,
        } = links;
        let grid_of = grid_answers(&units, &parent);
        let mut entries = Vec::new();
        for (u, unit) in units.iter().enumerate() {
            let Some(boundary) = &unit.boundary else {
                continue;
            };
            for (k, polygon) in boundary.0.iter().enumerate() {
                if let Some(rect) = bounding_box(polygon) {
                    entries.push(GeomWithData::new(rect, (u, k)));
                }
            }
        }
        GridMap {
            inner: Arc::new(Inner {
                units,
                by_id,
                parent,
                children,
                grid_of,
                rtree: RTree::bulk_load(entries),
            }),
        }
    }
}

/// Boundary inclusive: on an edge or vertex (of the exterior or of a hole) is
/// inside; strictly inside a hole is outside. Tested polygon by polygon, so that
/// two touching polygons of one MultiPolygon do not cancel each other's shared
/// edge out (the OGC "mod 2" rule `MultiPolygon::coordinate_position` applies).
fn polygon_contains(polygon: &Polygon<f64>, coord: &Coord<f64>) -> bool {
    polygon.coordinate_position(coord) != CoordPos::Outside
}

fn bounding_box(polygon: &Polygon<f64>) -> Option<Rectangle<[f64; 2]>> {
    let mut coords = polygon.exterior().coords();
    let first = coords.next()?;
    let (mut lo, mut hi) = ([first.x, first.y], [first.x, first.y]);
    for c in coords {
        lo = [lo[0].min(c.x), lo[1].min(c.y)];
        hi = [hi[0].max(c.x), hi[1].max(c.y)];
    }
    Some(Rectangle::from_corners(lo, hi))
}

/// For each unit, what `grid_of` answers when `locate` answers it.
fn grid_answers(units: &[GridUnit], parent: &[Option<usize>]) -> Vec<Option<usize>> {
    // Whether the unit, or something below it, is a grid or deeper. Units are at
    // most six deep (levels strictly increase), so walking up is cheap.
    let mut divided = vec![false; units.len()];
    for (i, unit) in units.iter().enumerate() {
        if unit.level < UnitLevel::Grid {
            continue;
        }
        let mut next = Some(i);
        while let Some(u) = next {
            if divided[u] {
                break;
            }
            divided[u] = true;
            next = parent[u];
        }
    }
    (0..units.len())
        .map(|i| {
            let mut next = Some(i);
            while let Some(u) = next {
                match units[u].level {
                    UnitLevel::Grid => return Some(u),
                    level if level < UnitLevel::Grid => break,
                    _ => next = parent[u],
                }
            }
            if units[i].level > UnitLevel::Grid || !divided[i] {
                Some(i)
            } else {
                None
            }
        })
        .collect()
}
