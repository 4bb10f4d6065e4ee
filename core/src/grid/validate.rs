//! The checks every unit and the tree must pass, whichever way they were loaded.

use std::collections::HashMap;

use geo_types::{LineString, MultiPolygon};

use super::{GridError, GridUnit};

/// The longest unit id, in characters.
pub const MAX_ID_CHARS: usize = 100;
/// The longest unit name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Coordinates are kept to 1e-7 degree (about 1 cm). A value with that few
/// decimals survives JSON printing and parsing exactly.
const COORD_SCALE: f64 = 1e7;

/// An id or a name quoted for an error message, shortened if it is long.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

pub(super) fn check_id(index: usize, field: &'static str, id: &str) -> Result<(), GridError> {
    let err = |reason: &str| Err(GridError::feature(index, field, reason));
    if id.is_empty() {
        return err("must not be empty");
    }
    if id.chars().count() > MAX_ID_CHARS {
        return err(&format!("must be at most {MAX_ID_CHARS} characters"));
    }
    if id.chars().any(char::is_control) {
        return err("must not contain control characters");
    }
    if id.trim() != id {
        return err("must not start or end with white space");
    }
    Ok(())
}

/// Checks one unit's own fields and rounds its coordinates.
pub(super) fn check_unit(index: usize, unit: &mut GridUnit) -> Result<(), GridError> {
    check_id(index, "properties.id", &unit.id)?;
    let name_err = |reason: &str| Err(GridError::feature(index, "properties.name", reason));
    if unit.name.trim().is_empty() {
        return name_err("must not be empty");
    }
    if unit.name.chars().count() > MAX_NAME_CHARS {
        return name_err(&format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if unit.name.chars().any(char::is_control) {
        return name_err("must not contain control characters");
    }
    if let Some(parent) = &unit.parent_id {
        if parent.is_empty() {
            return Err(GridError::feature(
                index,
                "properties.parent",
                "must not be empty (use null for a root)",
            ));
        }
    }
    if let Some(boundary) = &mut unit.boundary {
        check_boundary(index, boundary)?;
    }
    Ok(())
}

fn check_boundary(index: usize, boundary: &mut MultiPolygon<f64>) -> Result<(), GridError> {
    let err = |reason: String| Err(GridError::feature(index, "geometry.coordinates", reason));
    if boundary.0.is_empty() {
        return err("has no polygon (use a null geometry for a unit without a boundary)".into());
    }
    for (p, polygon) in boundary.0.iter_mut().enumerate() {
        let mut result = Ok(());
        polygon.exterior_mut(|ring| result = check_ring(p, 0, ring));
        if let Err(reason) = result {
            return err(reason);
        }
        polygon.interiors_mut(|holes| {
            for (h, ring) in holes.iter_mut().enumerate() {
                result = check_ring(p, h + 1, ring);
                if result.is_err() {
                    return;
                }
            }
        });
        if let Err(reason) = result {
            return err(reason);
        }
    }
    Ok(())
}

/// `ring` 0 is the exterior; 1.. are the holes.
pub(super) fn ring_name(polygon: usize, ring: usize) -> String {
    if ring == 0 {
        format!("polygon {polygon}, exterior ring")
    } else {
        format!("polygon {polygon}, hole {}", ring - 1)
    }
}

fn check_ring(polygon: usize, ring: usize, line: &mut LineString<f64>) -> Result<(), String> {
    let name = || ring_name(polygon, ring);
    if line.0.len() < 4 {
        return Err(format!(
            "{}: has {} positions, a ring needs at least 4",
            name(),
            line.0.len()
        ));
    }
    for (k, c) in line.0.iter().enumerate() {
        check_coordinate(c.x, c.y).map_err(|why| format!("{}, position {k}: {why}", name()))?;
    }
    if line.0.first() != line.0.last() {
        return Err(format!(
            "{}: is not closed (the last position must equal the first)",
            name()
        ));
    }
    for c in &mut line.0 {
        c.x = snap(c.x);
        c.y = snap(c.y);
    }
    Ok(())
}

pub(super) fn check_coordinate(lon: f64, lat: f64) -> Result<(), &'static str> {
    if !lon.is_finite() || !lat.is_finite() {
        return Err("coordinates must be finite numbers");
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err("longitude must be between -180 and 180");
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err("latitude must be between -90 and 90");
    }
    Ok(())
}

fn snap(v: f64) -> f64 {
    let s = (v * COORD_SCALE).round() / COORD_SCALE;
    // -0.0 and 0.0 compare equal but print differently; keep one.
    if s == 0.0 {
        0.0
    } else {
        s
    }
}

/// The tree, by unit index.
#[derive(Default)]
pub(super) struct Links {
    pub by_id: HashMap<String, usize>,
    pub parent: Vec<Option<usize>>,
    pub children: Vec<Vec<usize>>,
}

/// Unique ids, existing parents, no cycle, each child deeper than its parent.
/// Linear in the number of units, and no recursion.
pub(super) fn check_tree(units: &[GridUnit]) -> Result<Links, GridError> {
    let mut by_id: HashMap<String, usize> = HashMap::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        if let Some(first) = by_id.insert(unit.id.clone(), i) {
            return Err(GridError::feature(
                i,
                "properties.id",
                format!(
                    "duplicate id {}: features[{first}] has it already",
                    quote(&unit.id)
                ),
            ));
        }
    }

    let mut parent = Vec::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        let p = match &unit.parent_id {
            None => None,
            Some(pid) => match by_id.get(pid.as_str()) {
                Some(&p) => Some(p),
                None => {
                    return Err(GridError::feature(
                        i,
                        "properties.parent",
                        format!("unit {} does not exist", quote(pid)),
                    ))
                }
            },
        };
        parent.push(p);
    }

    check_cycles(units, &parent)?;

    for (i, unit) in units.iter().enumerate() {
        if let Some(p) = parent[i] {
            let above = &units[p];
            if unit.level <= above.level {
                return Err(GridError::feature(
                    i,
                    "properties.level",
                    format!(
                        "a {} cannot be under a {} ({}): a unit must be deeper than its parent",
                        unit.level,
                        above.level,
                        quote(&above.id)
                    ),
                ));
            }
        }
    }

    let mut children = vec![Vec::new(); units.len()];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push(i);
        }
    }
    Ok(Links {
        by_id,
        parent,
        children,
    })
}

fn check_cycles(units: &[GridUnit], parent: &[Option<usize>]) -> Result<(), GridError> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; units.len()];
    let mut path = Vec::new();
    for start in 0..units.len() {
        if state[start] != NEW {
            continue;
        }
        let mut next = Some(start);
        while let Some(u) = next {
            match state[u] {
                DONE => break,
                ON_PATH => {
                    // The cycle is the part of the path from `u` on.
                    let from = path.iter().position(|&v| v == u).unwrap_or(0);
                    let cycle = &path[from..];
                    let first = cycle.iter().copied().min().unwrap_or(u);
                    let reason = if cycle.len() == 1 {
                        "is the unit's own id".to_string()
                    } else {
                        format!(
                            "leads back to this unit: a cycle of {} units through {}",
                            cycle.len(),
                            quote(units[first].parent_id.as_deref().unwrap_or(""))
                        )
                    };
                    return Err(GridError::feature(first, "properties.parent", reason));
                }
                _ => {
                    state[u] = ON_PATH;
                    path.push(u);
                    next = parent[u];
                }
            }
        }
        for v in path.drain(..) {
            state[v] = DONE;
        }
    }
    Ok(())
}
