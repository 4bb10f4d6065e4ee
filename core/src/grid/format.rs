//! Reading and writing the GeoJSON grid file (the format is in the module docs).

use geo_types::{Coord, LineString, MultiPolygon, Polygon};
use geojson::{Feature, FeatureCollection, Geometry, JsonObject, Position};
use serde_json::Value;

use super::validate::{quote, ring_name};
use super::{GridError, GridUnit, UnitLevel};
use crate::error::InvalidInput;

pub(super) fn parse(text: &str) -> Result<Vec<GridUnit>, GridError> {
    // serde_json refuses nesting deeper than 128 levels, so a hostile file cannot
    // overflow the stack here.
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| InvalidInput::new("geojson", format!("is not valid JSON: {e}")))?;
    let Value::Object(mut doc) = doc else {
        return Err(InvalidInput::new(
            "geojson",
            "must be a JSON object (a GeoJSON FeatureCollection)",
        )
        .into());
    };
    match doc.get("type") {
        Some(Value::String(t)) if t == "FeatureCollection" => {}
        Some(Value::String(t)) => {
            return Err(InvalidInput::new(
                "type",
                format!("must be \"FeatureCollection\", not {}", quote(t)),
            )
            .into())
        }
        _ => return Err(InvalidInput::new("type", "must be \"FeatureCollection\"").into()),
    }
    let Some(Value::Array(features)) = doc.remove("features") else {
        return Err(InvalidInput::new("features", "must be an array of features").into());
    };
    features
        .into_iter()
        .enumerate()
        .map(|(index, feature)| parse_feature(index, feature))
        .collect()
}

fn parse_feature(index: usize, feature: Value) -> Result<GridUnit, GridError> {
    let err = |field: &'static str, reason: &str| Err(GridError::feature(index, field, reason));
    let Value::Object(mut feature) = feature else {
        return err("type", "a feature must be a JSON object");
    };
    match feature.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        _ => return err("type", "must be \"Feature\""),
    }
    let Some(Value::Object(properties)) = feature.get("properties") else {
        return err(
            "properties",
            "must be an object with id, name, level and parent",
        );
    };

    let id = string_property(index, properties, "id", "properties.id")?;
    let name = string_property(index, properties, "name", "properties.name")?;
    let level = match properties.get("level") {
        None => return err("properties.level", "is missing"),
        Some(Value::String(s)) => match UnitLevel::parse(s) {
            Some(level) => level,
            None => {
                let known: Vec<&str> = UnitLevel::ALL.iter().map(|l| l.as_str()).collect();
                return Err(GridError::feature(
                    index,
                    "properties.level",
                    format!(
                        "unknown level {}; expected one of {}",
                        quote(s),
                        known.join(", ")
                    ),
                ));
            }
        },
        Some(_) => return err("properties.level", "must be a string"),
    };
    let parent_id = match properties.get("parent") {
        None => return err("properties.parent", "is missing (use null for a root)"),
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return err("properties.parent", "must be a unit id (a string) or null"),
    };
    let boundary = match feature.remove("geometry") {
        None => {
            return err(
                "geometry",
                "is missing (use null for a unit without a boundary)",
            )
        }
        Some(Value::Null) => None,
        Some(geometry) => Some(parse_geometry(index, geometry)?),
    };
    Ok(GridUnit {
        id,
        name,
        level,
        parent_id,
        boundary,
    })
}

fn string_property(
    index: usize,
    properties: &JsonObject,
    key: &str,
    field: &'static str,
) -> Result<String, GridError> {
    match properties.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(GridError::feature(index, field, "is missing")),
        Some(_) => Err(GridError::feature(index, field, "must be a string")),
    }
}

fn parse_geometry(index: usize, geometry: Value) -> Result<MultiPolygon<f64>, GridError> {
    let kind = match &geometry {
        Value::Object(g) => match g.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(GridError::feature(index, "geometry.type", "is missing")),
        },
        _ => {
            return Err(GridError::feature(
                index,
                "geometry",
                "must be a GeoJSON geometry object or null",
            ))
        }
    };
    if kind != "Polygon" && kind != "MultiPolygon" {
        return Err(GridError::feature(
            index,
            "geometry.type",
            format!(
                "must be \"Polygon\" or \"MultiPolygon\" (or a null geometry), not {}",
                quote(&kind)
            ),
        ));
    }
    let geometry = Geometry::from_json_value(geometry).map_err(|e| {
        GridError::feature(
            index,
            "geometry.coordinates",
            format!("is not a valid {kind}: {e}"),
        )
    })?;
    let polygons = match geometry.value {
        geojson::Value::Polygon(rings) => vec![polygon(index, 0, rings)?],
        geojson::Value::MultiPolygon(polygons) => polygons
            .into_iter()
            .enumerate()
            .map(|(p, rings)| polygon(index, p, rings))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(GridError::feature(
                index,
                "geometry.type",
                "must be \"Polygon\" or \"MultiPolygon\"",
            ))
        }
    };
    Ok(MultiPolygon(polygons))
}

/// Checks what `Polygon::new` would hide (it closes open rings): length and
/// closure. Coordinates are checked later, with units built in code.
fn polygon(index: usize, p: usize, rings: Vec<Vec<Position>>) -> Result<Polygon<f64>, GridError> {
    let err = |reason: String| Err(GridError::feature(index, "geometry.coordinates", reason));
    if rings.is_empty() {
        return err(format!("polygon {p}: has no exterior ring"));
    }
    let mut lines = Vec::with_capacity(rings.len());
    for (r, ring) in rings.into_iter().enumerate() {
        if ring.len() < 4 {
            return err(format!(
                "{}: has {} positions, a ring needs at least 4",
                ring_name(p, r),
                ring.len()
            ));
        }
        // geojson guarantees at least two numbers per position; an altitude is dropped.
        let coords: Vec<Coord<f64>> = ring
            .iter()
            .map(|pos| Coord {
                x: pos.first().copied().unwrap_or(f64::NAN),
                y: pos.get(1).copied().unwrap_or(f64::NAN),
            })
            .collect();
        if coords.first() != coords.last() {
            return err(format!(
                "{}: is not closed (the last position must equal the first)",
                ring_name(p, r)
            ));
        }
        lines.push(LineString(coords));
    }
    let exterior = lines.remove(0);
    Ok(Polygon::new(exterior, lines))
}

pub(super) fn write(units: &[GridUnit]) -> String {
    let features = units
        .iter()
        .map(|unit| {
            let mut properties = JsonObject::new();
            properties.insert("id".into(), Value::String(unit.id.clone()));
            properties.insert("name".into(), Value::String(unit.name.clone()));
            properties.insert("level".into(), Value::String(unit.level.as_str().into()));
            properties.insert(
                "parent".into(),
                unit.parent_id.clone().map_or(Value::Null, Value::String),
            );
            let geometry = unit.boundary.as_ref().map(|b| match b.0.as_slice() {
                [one] => Geometry::new(geojson::Value::from(one)),
                _ => Geometry::new(geojson::Value::from(b)),
            });
            Feature {
                bbox: None,
                geometry,
                id: None,
                properties: Some(properties),
                foreign_members: None,
            }
        })
        .collect();
    FeatureCollection {
        bbox: None,
        features,
        foreign_members: None,
    }
    .to_string()
}
