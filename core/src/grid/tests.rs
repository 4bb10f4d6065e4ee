use geo_types::{polygon, LineString, MultiPolygon, Polygon};
use serde_json::{json, Value};

use super::*;

const LIAOYUAN: &str = include_str!("../../../tests/fixtures/grids/liaoyuan-sample.geojson");

const CITY: &str = "220400";
const COUNTY: &str = "220402";
const TOWNSHIP: &str = "220402001";
const VILLAGE: &str = "220402001001";
const VILLAGE_NO_GRIDS: &str = "220402001002";
const G1: &str = "220402001001-G01";
const G2: &str = "220402001001-G02";
const M1: &str = "220402001001-G01-M01";
const M2: &str = "220402001001-G01-M02";
const M3: &str = "220402001001-G01-M03";

fn liaoyuan() -> GridMap {
    GridMap::from_geojson(LIAOYUAN).expect("the sample loads")
}

fn pt(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint {
        lat,
        lon,
        accuracy_m: Some(5.0),
    }
}

fn located(map: &GridMap, lat: f64, lon: f64) -> Option<&str> {
    map.locate(&pt(lat, lon)).map(|u| u.id.as_str())
}

fn grid(map: &GridMap, lat: f64, lon: f64) -> Option<&str> {
    map.grid_of(&pt(lat, lon)).map(|u| u.id.as_str())
}

fn ids(units: Vec<&GridUnit>) -> Vec<&str> {
    units.into_iter().map(|u| u.id.as_str()).collect()
}

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygon<f64> {
    polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)]
}

fn unit(
    id: &str,
    level: UnitLevel,
    parent: Option<&str>,
    boundary: Option<Polygon<f64>>,
) -> GridUnit {
    GridUnit {
        id: id.into(),
        name: format!("unit {id}"),
        level,
        parent_id: parent.map(Into::into),
        boundary: boundary.map(|p| MultiPolygon(vec![p])),
    }
}

// ---------------------------------------------------------------- levels

#[test]
fn levels_have_names_and_an_order() {
    for level in UnitLevel::ALL {
        assert_eq!(UnitLevel::parse(level.as_str()), Some(level));
        assert_eq!(level.to_string(), level.as_str());
        let json = serde_json::to_string(&level).unwrap();
        assert_eq!(json, format!("\"{}\"", level.as_str()));
        assert_eq!(serde_json::from_str::<UnitLevel>(&json).unwrap(), level);
    }
    assert_eq!(UnitLevel::MicroGrid.as_str(), "micro_grid");
    assert_eq!(UnitLevel::parse("Grid"), None);
    assert_eq!(UnitLevel::parse("town"), None);
    assert!(UnitLevel::ALL.windows(2).all(|w| w[0] < w[1]));
}

// ---------------------------------------------------------------- the tree

#[test]
fn the_liaoyuan_sample_loads_as_a_tree() {
    let map = liaoyuan();
    assert_eq!(map.len(), 10);
    assert!(!map.is_empty());
    let city = map.get(CITY).unwrap();
    assert_eq!(city.name, "辽源市");
    assert_eq!(city.level, UnitLevel::City);
    assert_eq!(city.parent_id, None);
    assert_eq!(city.boundary, None);
    let g2 = map.get(G2).unwrap();
    assert_eq!(g2.level, UnitLevel::Grid);
    assert_eq!(g2.parent_id.as_deref(), Some(VILLAGE));
    assert_eq!(g2.boundary.as_ref().unwrap().0[0].interiors().len(), 1);
    assert_eq!(map.get(M3).unwrap().boundary.as_ref().unwrap().0.len(), 2);
    assert!(map.get("nope").is_none());
    assert_eq!(map.units()[0].id, CITY, "units keep the file's order");

    assert_eq!(ids(map.children(VILLAGE)), [G1, G2]);
    assert_eq!(ids(map.children(G1)), [M1, M2, M3]);
    assert_eq!(ids(map.children(TOWNSHIP)), [VILLAGE, VILLAGE_NO_GRIDS]);
    assert!(map.children(M1).is_empty());
    assert!(map.children("nope").is_empty());
}

#[test]
fn ancestors_go_from_the_parent_up_to_the_root() {
    let map = liaoyuan();
    assert_eq!(
        ids(map.ancestors(M2)),
        [G1, VILLAGE, TOWNSHIP, COUNTY, CITY]
    );
    assert_eq!(ids(map.ancestors(COUNTY)), [CITY]);
    assert!(map.ancestors(CITY).is_empty());
    assert!(map.ancestors("nope").is_empty());
}

#[test]
fn is_within_includes_the_unit_itself() {
    let map = liaoyuan();
    assert!(map.is_within(M2, M2));
    assert!(map.is_within(M2, G1));
    assert!(map.is_within(M2, CITY));
    assert!(map.is_within(G2, VILLAGE));
    assert!(!map.is_within(M2, G2));
    assert!(
        !map.is_within(G1, M2),
        "an ancestor is not within its descendant"
    );
    assert!(!map.is_within(VILLAGE_NO_GRIDS, VILLAGE));
    assert!(!map.is_within("nope", CITY));
    assert!(!map.is_within(M2, "nope"));
    assert!(!map.is_within("nope", "nope"));
}

#[test]
fn an_empty_map_knows_nothing() {
    let map = GridMap::empty();
    assert!(map.is_empty());
    assert!(map.units().is_empty());
    assert_eq!(located(&map, 42.9, 125.14), None);
    assert_eq!(grid(&map, 42.9, 125.14), None);
    let reloaded = GridMap::from_geojson(&map.to_geojson()).unwrap();
    assert!(reloaded.is_empty());
    assert!(GridMap::default().is_empty());
    let empty = r#"{"type":"FeatureCollection","features":[]}"#;
    assert!(GridMap::from_geojson(empty).unwrap().is_empty());
}

#[test]
fn a_map_is_cheap_to_share_between_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<GridMap>();
    let map = liaoyuan();
    let copy = map.clone();
    let handle = std::thread::spawn(move || located(&copy, 42.895, 125.133).map(String::from));
    assert_eq!(handle.join().unwrap().as_deref(), Some(M1));
    assert!(format!("{map:?}").contains("10"));
}

// ---------------------------------------------------------------- lookup

#[test]
fn a_point_inside_lands_in_the_deepest_unit() {
    let map = liaoyuan();
    // (lat, lon, locate, grid_of)
    let cases: [(f64, f64, Option<&str>, Option<&str>); 9] = [
        (42.895, 125.133, Some(M1), Some(G1)),
        (42.895, 125.141, Some(M2), Some(G1)),
        // M03 is two buildings; one point in each.
        (42.9025, 125.132, Some(M3), Some(G1)),
        (42.908, 125.142, Some(M3), Some(G1)),
        // In grid 1 between its micro-grids.
        (42.9075, 125.1375, Some(G1), Some(G1)),
        (42.905, 125.152, Some(G2), Some(G2)),
        // A village not divided into grids: it is its own "grid".
        (42.9, 125.17, Some(VILLAGE_NO_GRIDS), Some(VILLAGE_NO_GRIDS)),
        // In the street but in no village; in the district but in no street.
        (42.92, 125.12, Some(TOWNSHIP), None),
        (42.82, 125.05, Some(COUNTY), None),
    ];
    for (lat, lon, want, want_grid) in cases {
        assert_eq!(located(&map, lat, lon), want, "locate {lat} {lon}");
        assert_eq!(grid(&map, lat, lon), want_grid, "grid_of {lat} {lon}");
    }
}

#[test]
fn a_point_outside_every_unit_is_nowhere() {
    let map = liaoyuan();
    for (lat, lon) in [
        (43.5, 126.0),
        (42.79, 125.1),
        (-42.9, 125.14),
        (42.9, -125.14),
    ] {
        assert_eq!(located(&map, lat, lon), None, "{lat} {lon}");
        assert_eq!(grid(&map, lat, lon), None, "{lat} {lon}");
    }
}

#[test]
fn a_point_in_a_hole_is_not_in_the_unit_but_its_edge_is() {
    let map = liaoyuan();
    // Inside the factory compound cut out of grid 2: in the community, in no grid.
    assert_eq!(located(&map, 42.8975, 125.1525), Some(VILLAGE));
    assert_eq!(grid(&map, 42.8975, 125.1525), None);
    // On the hole's edge and on its corner: the edge belongs to the grid.
    assert_eq!(located(&map, 42.8975, 125.15), Some(G2));
    assert_eq!(located(&map, 42.9, 125.1525), Some(G2));
    assert_eq!(located(&map, 42.895, 125.155), Some(G2));
    // Just outside the hole, inside the grid.
    assert_eq!(located(&map, 42.8975, 125.1499), Some(G2));
}

#[test]
fn a_point_on_a_shared_edge_goes_to_exactly_one_unit() {
    let map = liaoyuan();
    // On the edge between grid 1 and grid 2 (lon 125.145), where no micro-grid
    // touches it: both grids contain it, the smaller id wins.
    assert_eq!(located(&map, 42.903, 125.145), Some(G1));
    assert_eq!(grid(&map, 42.903, 125.145), Some(G1));
    // Further south micro-grid 2 also touches that edge, and it is deeper.
    assert_eq!(located(&map, 42.895, 125.145), Some(M2));
    assert_eq!(grid(&map, 42.895, 125.145), Some(G1));
    // Between micro-grids 1 and 2 (lon 125.1375).
    assert_eq!(located(&map, 42.893, 125.1375), Some(M1));
    // On grid 2's east edge, which is also the edge between the two villages.
    assert_eq!(located(&map, 42.9, 125.16), Some(G2));
    // On the outer edge of the district.
    assert_eq!(located(&map, 42.85, 125.3), Some(COUNTY));
    assert_eq!(located(&map, 42.8, 125.05), Some(COUNTY));
}

#[test]
fn a_point_on_a_vertex_goes_to_exactly_one_unit() {
    let map = liaoyuan();
    // The north end of the grid 1 / grid 2 edge is also a corner of M03's second building.
    assert_eq!(located(&map, 42.91, 125.145), Some(M3));
    assert_eq!(grid(&map, 42.91, 125.145), Some(G1));
    // The south end: a corner of both grids and of M02.
    assert_eq!(located(&map, 42.89, 125.145), Some(M2));
    // Grid 2's south-east corner: also a corner of both villages.
    assert_eq!(located(&map, 42.89, 125.16), Some(G2));
    // The new village's far corner: in nothing deeper.
    assert_eq!(located(&map, 42.91, 125.18), Some(VILLAGE_NO_GRIDS));
    // The township's apex.
    assert_eq!(located(&map, 42.96, 125.15), Some(TOWNSHIP));
}

#[test]
fn the_answer_does_not_depend_on_the_order_of_the_features() {
    let map = liaoyuan();
    let mut units = map.units().to_vec();
    units.reverse();
    let reversed = GridMap::from_units(units.clone()).unwrap();
    units.rotate_left(3);
    let rotated = GridMap::from_units(units).unwrap();
    let mut points = Vec::new();
    for i in 0..=40 {
        for j in 0..=40 {
            // A lattice through the sample, hitting edges and corners exactly.
            points.push((
                42.88 + f64::from(i) * 0.0025 / 2.0,
                125.125 + f64::from(j) * 0.0025,
            ));
        }
    }
    for (lat, lon) in points {
        let want = located(&map, lat, lon);
        assert_eq!(located(&reversed, lat, lon), want, "{lat} {lon}");
        assert_eq!(located(&rotated, lat, lon), want, "{lat} {lon}");
        assert_eq!(
            grid(&reversed, lat, lon),
            grid(&map, lat, lon),
            "{lat} {lon}"
        );
    }
}

#[test]
fn overlapping_units_of_one_level_go_to_the_smallest_id() {
    let units = vec![
        unit("v", UnitLevel::Village, None, None),
        unit(
            "b",
            UnitLevel::Grid,
            Some("v"),
            Some(square(0.0, 0.0, 2.0, 2.0)),
        ),
        unit(
            "a",
            UnitLevel::Grid,
            Some("v"),
            Some(square(1.0, 1.0, 3.0, 3.0)),
        ),
        unit(
            "c",
            UnitLevel::Grid,
            Some("v"),
            Some(square(0.0, 0.0, 3.0, 3.0)),
        ),
    ];
    let map = GridMap::from_units(units).unwrap();
    assert_eq!(located(&map, 1.5, 1.5), Some("a"));
    assert_eq!(located(&map, 0.5, 0.5), Some("b"));
    assert_eq!(located(&map, 2.5, 2.5), Some("a"));
    assert_eq!(located(&map, 0.5, 2.5), Some("c"));
}

#[test]
fn touching_parts_of_one_multipolygon_keep_their_shared_edge() {
    // The OGC "mod 2" rule would put a point on the edge two parts share on the
    // boundary of neither; a unit must still contain it.
    let mut u = unit("g", UnitLevel::Grid, None, None);
    u.boundary = Some(MultiPolygon(vec![
        square(0.0, 0.0, 1.0, 1.0),
        square(1.0, 0.0, 2.0, 1.0),
    ]));
    let map = GridMap::from_units(vec![u]).unwrap();
    assert_eq!(located(&map, 0.5, 1.0), Some("g"));
    assert_eq!(located(&map, 0.5, 0.5), Some("g"));
    assert_eq!(located(&map, 0.5, 1.5), Some("g"));
    assert_eq!(located(&map, 0.5, 2.5), None);
}

#[test]
fn grid_of_falls_back_to_the_deepest_unit_only_where_there_are_no_grids() {
    let units = vec![
        unit(
            "t",
            UnitLevel::Township,
            None,
            Some(square(0.0, 0.0, 10.0, 10.0)),
        ),
        // Divided into micro-grids directly, without a grid level.
        unit(
            "v1",
            UnitLevel::Village,
            Some("t"),
            Some(square(0.0, 0.0, 5.0, 5.0)),
        ),
        unit(
            "v1-m1",
            UnitLevel::MicroGrid,
            Some("v1"),
            Some(square(0.0, 0.0, 1.0, 1.0)),
        ),
        // Not divided at all.
        unit(
            "v2",
            UnitLevel::Village,
            Some("t"),
            Some(square(5.0, 0.0, 10.0, 5.0)),
        ),
        // Divided into grids.
        unit(
            "v3",
            UnitLevel::Village,
            Some("t"),
            Some(square(0.0, 5.0, 5.0, 10.0)),
        ),
        unit(
            "v3-g1",
            UnitLevel::Grid,
            Some("v3"),
            Some(square(0.0, 5.0, 1.0, 6.0)),
        ),
    ];
    let map = GridMap::from_units(units).unwrap();
    assert_eq!(grid(&map, 0.5, 0.5), Some("v1-m1"));
    assert_eq!(
        grid(&map, 3.0, 3.0),
        None,
        "in v1 but in none of its micro-grids"
    );
    assert_eq!(grid(&map, 3.0, 7.0), Some("v2"));
    assert_eq!(grid(&map, 5.5, 0.5), Some("v3-g1"));
    assert_eq!(grid(&map, 7.0, 3.0), None, "in v3 but in none of its grids");
    // In the township but in none of its villages: the township is divided
    // (below it are grids and micro-grids), so no grid.
    assert_eq!(located(&map, 7.0, 7.0), Some("t"));
    assert_eq!(grid(&map, 7.0, 7.0), None);
    // A township with no grids below it at all is its own "grid".
    let lone = GridMap::from_units(vec![
        unit(
            "t",
            UnitLevel::Township,
            None,
            Some(square(0.0, 0.0, 10.0, 10.0)),
        ),
        unit(
            "v",
            UnitLevel::Village,
            Some("t"),
            Some(square(0.0, 0.0, 5.0, 5.0)),
        ),
    ])
    .unwrap();
    assert_eq!(grid(&lone, 7.0, 7.0), Some("t"));
    assert_eq!(grid(&lone, 1.0, 1.0), Some("v"));
}

#[test]
fn locate_never_panics() {
    let map = liaoyuan();
    let weird = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        -0.0,
        1e300,
        125.1,
        42.9,
    ];
    for &lat in &weird {
        for &lon in &weird {
            let p = GeoPoint {
                lat,
                lon,
                accuracy_m: Some(f64::NAN),
            };
            let _ = map.locate(&p);
            let _ = map.grid_of(&p);
        }
    }
    assert_eq!(located(&map, f64::NAN, 125.14), None);
    assert_eq!(located(&map, 42.9, f64::INFINITY), None);
    // Latitude and longitude swapped: nowhere, not a crash.
    assert_eq!(located(&map, 125.14, 42.9), None);
}

// ---------------------------------------------------------------- round trip

#[test]
fn to_geojson_round_trips() {
    let map = liaoyuan();
    let text = map.to_geojson();
    let again = GridMap::from_geojson(&text).unwrap();
    assert_eq!(again.units(), map.units());
    assert_eq!(again.to_geojson(), text, "writing is stable");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    let city = &doc["features"][0];
    assert_eq!(city["geometry"], Value::Null);
    assert_eq!(city["properties"]["parent"], Value::Null);
    assert_eq!(doc["features"][6]["geometry"]["type"], "Polygon");
    assert_eq!(doc["features"][9]["geometry"]["type"], "MultiPolygon");
    assert_eq!(doc["features"][9]["properties"]["level"], "micro_grid");
}

#[test]
fn coordinates_are_kept_to_seven_decimals_and_round_trip_exactly() {
    // Digits serde_json's fast float parser would not give back exactly.
    let awkward = [
        125.123_456_789_012_34,
        42.987_654_321_098_77,
        0.1 + 0.2,
        -179.999_999_999_999_97,
        -0.000_000_01,
    ];
    let mut ring: Vec<(f64, f64)> = awkward.windows(2).map(|w| (w[0], w[1] / 2.0)).collect();
    ring.push(ring[0]);
    let u = GridUnit {
        boundary: Some(MultiPolygon(vec![Polygon::new(
            LineString::from(ring),
            vec![],
        )])),
        ..unit("g", UnitLevel::Grid, None, None)
    };
    let map = GridMap::from_units(vec![u]).unwrap();
    let stored = &map.units()[0].boundary.as_ref().unwrap().0[0];
    let first = stored.exterior().0[0];
    assert_eq!(first.x, 125.123_456_8);
    assert_eq!(first.y, 21.493_827_2);
    for c in stored.exterior().coords() {
        assert_eq!(c.x, (c.x * 1e7).round() / 1e7);
        assert!(!(c.x == 0.0 && c.x.is_sign_negative()));
        assert!(!(c.y == 0.0 && c.y.is_sign_negative()));
    }
    let again = GridMap::from_geojson(&map.to_geojson()).unwrap();
    assert_eq!(again.units(), map.units());
}

// ---------------------------------------------------------------- validation

/// A valid two-unit file as JSON, for tests to break.
fn base_doc() -> Value {
    json!({
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": { "id": "v", "name": "福民社区", "level": "village", "parent": null },
                "geometry": null
            },
            {
                "type": "Feature",
                "properties": { "id": "g", "name": "第一网格", "level": "grid", "parent": "v" },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[125.13, 42.89], [125.145, 42.89], [125.145, 42.91], [125.13, 42.91], [125.13, 42.89]]]
                }
            }
        ]
    })
}

fn load(doc: &Value) -> Result<GridMap, GridError> {
    GridMap::from_geojson(&doc.to_string())
}

/// Applies `edit` to a copy of the base document and returns the error.
fn broken(edit: impl FnOnce(&mut Value)) -> GridError {
    let mut doc = base_doc();
    edit(&mut doc);
    load(&doc).expect_err("must be refused")
}

/// Removes member `key` of the object at JSON pointer `at`.
fn remove(doc: &mut Value, at: &str, key: &str) {
    let object = doc.pointer_mut(at).and_then(Value::as_object_mut);
    assert!(object.expect(at).remove(key).is_some(), "{at} has no {key}");
}

#[track_caller]
fn assert_refused(err: &GridError, field: &str, reason_has: &str) {
    assert_eq!(err.field(), field, "{err}");
    assert!(
        err.reason().contains(reason_has),
        "reason {:?} lacks {reason_has:?}",
        err.reason()
    );
    assert!(err.to_string().starts_with(field), "{err}");
}

#[test]
fn the_documented_example_loads() {
    let text = r#"
{ "type": "FeatureCollection",
  "features": [
    { "type": "Feature",
      "properties": { "id": "220400", "name": "辽源市", "level": "city", "parent": null },
      "geometry": null },
    { "type": "Feature",
      "properties": { "id": "220402", "name": "龙山区", "level": "county", "parent": "220400" },
      "geometry": { "type": "Polygon",
                    "coordinates": [[[125.0, 42.8], [125.3, 42.8], [125.3, 43.0], [125.0, 42.8]]] } }
  ] }"#;
    let map = GridMap::from_geojson(text).unwrap();
    assert_eq!(located(&map, 42.85, 125.2), Some("220402"));
}

#[test]
fn the_base_document_is_valid() {
    let map = load(&base_doc()).unwrap();
    assert_eq!(located(&map, 42.9, 125.14), Some("g"));
}

#[test]
fn a_document_that_is_not_a_feature_collection_is_refused() {
    let cases = [
        ("", "geojson", "not valid JSON"),
        ("{", "geojson", "not valid JSON"),
        ("not json", "geojson", "not valid JSON"),
        ("[]", "geojson", "JSON object"),
        ("42", "geojson", "JSON object"),
        ("{}", "type", "FeatureCollection"),
        (
            r#"{"type":"Feature","properties":{},"geometry":null}"#,
            "type",
            "\"Feature\"",
        ),
        (r#"{"type":"FeatureCollection"}"#, "features", "array"),
        (
            r#"{"type":"FeatureCollection","features":{}}"#,
            "features",
            "array",
        ),
        // A number JSON allows but f64 cannot hold.
        (
            r#"{"type":"FeatureCollection","features":[1e999]}"#,
            "geojson",
            "not valid JSON",
        ),
    ];
    for (text, field, reason) in cases {
        let err = GridMap::from_geojson(text).expect_err(text);
        assert!(matches!(err, GridError::Invalid(_)), "{text}: {err:?}");
        assert_eq!(err.feature_index(), None);
        assert_refused(&err, field, reason);
    }
}

#[test]
fn a_feature_that_is_not_a_feature_is_refused() {
    let err = broken(|d| d["features"][1] = json!("g"));
    assert_refused(&err, "features[1].type", "object");
    assert_eq!(err.feature_index(), Some(1));
    let err = broken(|d| d["features"][1]["type"] = json!("Polygon"));
    assert_refused(&err, "features[1].type", "Feature");
    let err = broken(|d| remove(d, "/features/1", "properties"));
    assert_refused(&err, "features[1].properties", "object");
    let err = broken(|d| d["features"][0]["properties"] = Value::Null);
    assert_refused(&err, "features[0].properties", "object");
}

#[test]
fn a_bad_id_is_refused() {
    let err = broken(|d| remove(d, "/features/1/properties", "id"));
    assert_refused(&err, "features[1].properties.id", "missing");
    let long = "x".repeat(MAX_ID_CHARS + 1);
    let cases = [
        (json!(""), "empty"),
        (json!(null), "missing"),
        (json!(7), "string"),
        (json!(" g"), "white space"),
        (json!("g\n"), "control"),
        (json!(long), "at most"),
    ];
    for (id, reason) in cases {
        let err = broken(|d| d["features"][1]["properties"]["id"] = id.clone());
        assert_refused(&err, "features[1].properties.id", reason);
    }
    let ok = "网".repeat(MAX_ID_CHARS);
    let mut doc = base_doc();
    doc["features"][1]["properties"]["id"] = json!(ok);
    assert!(load(&doc).is_ok(), "the limit counts characters, not bytes");
}

#[test]
fn a_duplicate_id_is_refused() {
    let err = broken(|d| {
        let copy = d["features"][1].clone();
        d["features"].as_array_mut().unwrap().push(copy);
    });
    assert_refused(&err, "features[2].properties.id", "duplicate");
    assert!(err.reason().contains("features[1]"), "{err}");
}

#[test]
fn a_bad_name_is_refused() {
    let err = broken(|d| remove(d, "/features/0/properties", "name"));
    assert_refused(&err, "features[0].properties.name", "missing");
    for (name, reason) in [
        (json!("  "), "empty"),
        (json!(["a"]), "string"),
        (json!("a\u{7}b"), "control"),
        (json!("名".repeat(MAX_NAME_CHARS + 1)), "at most"),
    ] {
        let err = broken(|d| d["features"][0]["properties"]["name"] = name.clone());
        assert_refused(&err, "features[0].properties.name", reason);
    }
}

#[test]
fn an_unknown_level_is_refused() {
    for level in ["town", "Grid", "microgrid", "micro-grid", ""] {
        let err = broken(|d| d["features"][1]["properties"]["level"] = json!(level));
        assert_refused(&err, "features[1].properties.level", "unknown level");
        assert!(
            err.reason().contains("micro_grid"),
            "lists the levels: {err}"
        );
    }
    let err = broken(|d| d["features"][1]["properties"]["level"] = json!(4));
    assert_refused(&err, "features[1].properties.level", "string");
    let err = broken(|d| remove(d, "/features/1/properties", "level"));
    assert_refused(&err, "features[1].properties.level", "missing");
}

#[test]
fn a_bad_parent_is_refused() {
    let err = broken(|d| d["features"][1]["properties"]["parent"] = json!("nowhere"));
    assert_refused(&err, "features[1].properties.parent", "does not exist");
    assert!(err.reason().contains("nowhere"));
    let err = broken(|d| remove(d, "/features/0/properties", "parent"));
    assert_refused(&err, "features[0].properties.parent", "null for a root");
    let err = broken(|d| d["features"][1]["properties"]["parent"] = json!(""));
    assert_refused(&err, "features[1].properties.parent", "empty");
    let err = broken(|d| d["features"][1]["properties"]["parent"] = json!(3));
    assert_refused(&err, "features[1].properties.parent", "string");
}

#[test]
fn a_parent_may_come_after_its_child_in_the_file() {
    let mut doc = base_doc();
    doc["features"].as_array_mut().unwrap().reverse();
    let map = load(&doc).unwrap();
    assert_eq!(ids(map.ancestors("g")), ["v"]);
}

#[test]
fn a_cycle_of_parents_is_refused() {
    // Two grids each other's parent.
    let err = broken(|d| {
        d["features"][0]["properties"]["parent"] = json!("g");
    });
    assert_refused(&err, "features[0].properties.parent", "cycle of 2 units");
    // A unit its own parent.
    let err = broken(|d| d["features"][0]["properties"]["parent"] = json!("v"));
    assert_refused(&err, "features[0].properties.parent", "own id");
    // A cycle that does not include the first unit visited.
    let units = vec![
        unit("r", UnitLevel::City, None, None),
        unit("x", UnitLevel::County, Some("r"), None),
        unit("a", UnitLevel::Township, Some("c"), None),
        unit("b", UnitLevel::Village, Some("a"), None),
        unit("c", UnitLevel::Grid, Some("b"), None),
    ];
    let err = GridMap::from_units(units).unwrap_err();
    assert_refused(&err, "features[2].properties.parent", "cycle of 3 units");
}

#[test]
fn a_child_must_be_deeper_than_its_parent() {
    let err = broken(|d| d["features"][1]["properties"]["level"] = json!("village"));
    assert_refused(
        &err,
        "features[1].properties.level",
        "deeper than its parent",
    );
    let err = broken(|d| d["features"][1]["properties"]["level"] = json!("city"));
    assert_refused(
        &err,
        "features[1].properties.level",
        "a city cannot be under a village",
    );
    // Skipping levels is fine: a micro-grid directly under a village.
    let mut doc = base_doc();
    doc["features"][1]["properties"]["level"] = json!("micro_grid");
    assert!(load(&doc).is_ok());
}

#[test]
fn a_geometry_other_than_a_polygon_is_refused() {
    let err = broken(|d| remove(d, "/features/1", "geometry"));
    assert_refused(&err, "features[1].geometry", "missing");
    let others = [
        json!({"type": "Point", "coordinates": [125.14, 42.9]}),
        json!({"type": "LineString", "coordinates": [[125.14, 42.9], [125.15, 42.9]]}),
        json!({"type": "MultiPoint", "coordinates": [[125.14, 42.9]]}),
        json!({"type": "GeometryCollection", "geometries": []}),
        json!({"type": "Feature", "geometry": null}),
    ];
    for geometry in others {
        let err = broken(|d| d["features"][1]["geometry"] = geometry.clone());
        assert_refused(
            &err,
            "features[1].geometry.type",
            "must be \"Polygon\" or \"MultiPolygon\"",
        );
    }
    let err = broken(|d| d["features"][1]["geometry"] = json!({"coordinates": []}));
    assert_refused(&err, "features[1].geometry.type", "missing");
    let err = broken(|d| d["features"][1]["geometry"] = json!([[125.0, 42.0]]));
    assert_refused(&err, "features[1].geometry", "geometry object");
}

#[test]
fn malformed_coordinates_are_refused() {
    let bad = [
        json!({"type": "Polygon"}),
        json!({"type": "Polygon", "coordinates": "125,42"}),
        json!({"type": "Polygon", "coordinates": [[["125", "42"]]]}),
        // A position needs two numbers.
        json!({"type": "Polygon", "coordinates": [[[125.1], [125.2], [125.3], [125.1]]]}),
        json!({"type": "MultiPolygon", "coordinates": [[[125.1, 42.9]]]}),
    ];
    for geometry in bad {
        let err = broken(|d| d["features"][1]["geometry"] = geometry.clone());
        assert_refused(&err, "features[1].geometry.coordinates", "is not a valid");
    }
}

fn ring_error(coordinates: Value, kind: &str) -> GridError {
    broken(|d| d["features"][1]["geometry"] = json!({"type": kind, "coordinates": coordinates}))
}

#[test]
fn short_or_open_rings_and_empty_polygons_are_refused() {
    let field = "features[1].geometry.coordinates";
    let err = ring_error(
        json!([[[125.13, 42.89], [125.145, 42.89], [125.13, 42.89]]]),
        "Polygon",
    );
    assert_refused(
        &err,
        field,
        "polygon 0, exterior ring: has 3 positions, a ring needs at least 4",
    );
    let err = ring_error(
        json!([[
            [125.13, 42.89],
            [125.145, 42.89],
            [125.145, 42.91],
            [125.13, 42.91]
        ]]),
        "Polygon",
    );
    assert_refused(&err, field, "exterior ring: is not closed");
    let err = ring_error(
        json!([
            [
                [125.13, 42.89],
                [125.145, 42.89],
                [125.145, 42.91],
                [125.13, 42.91],
                [125.13, 42.89]
            ],
            [
                [125.135, 42.895],
                [125.14, 42.895],
                [125.14, 42.9],
                [125.135, 42.9]
            ]
        ]),
        "Polygon",
    );
    assert_refused(&err, field, "polygon 0, hole 0: is not closed");
    let err = ring_error(json!([]), "Polygon");
    assert_refused(&err, field, "polygon 0: has no exterior ring");
    let err = ring_error(json!([]), "MultiPolygon");
    assert_refused(&err, field, "has no polygon");
    let err = ring_error(
        json!([
            [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]],
            [[[2.0, 0.0], [3.0, 0.0], [3.0, 1.0]]]
        ]),
        "MultiPolygon",
    );
    assert_refused(&err, field, "polygon 1, exterior ring: has 3 positions");
    // The altitude, if any, is ignored and not compared.
    let mut doc = base_doc();
    doc["features"][1]["geometry"]["coordinates"] = json!([[
        [125.13, 42.89, 200.0],
        [125.145, 42.89, 210.0],
        [125.145, 42.91, 0.0],
        [125.13, 42.89, 5.0]
    ]]);
    assert!(load(&doc).is_ok());
}

#[test]
fn out_of_range_coordinates_are_refused() {
    let field = "features[1].geometry.coordinates";
    let cases = [
        ((180.5, 42.0), "longitude"),
        ((-181.0, 42.0), "longitude"),
        ((125.0, 90.01), "latitude"),
        ((125.0, -95.0), "latitude"),
        // Latitude and longitude swapped, a common mistake.
        ((42.9, 125.1), "latitude"),
    ];
    for ((x, y), reason) in cases {
        let err = ring_error(
            json!([[[x, y], [125.145, 42.89], [125.145, 42.91], [x, y]]]),
            "Polygon",
        );
        assert_refused(&err, field, reason);
        assert!(err.reason().contains("position 0"), "{err}");
    }
    let ok = ring_error(
        json!([[[180.0, 90.0], [-180.0, -90.0], [0.0, 0.0]]]),
        "Polygon",
    );
    assert!(ok.reason().contains("3 positions"), "limits are inclusive");
}

#[test]
fn from_units_applies_the_same_checks() {
    let good = || {
        vec![
            unit("v", UnitLevel::Village, None, None),
            unit(
                "g",
                UnitLevel::Grid,
                Some("v"),
                Some(square(125.13, 42.89, 125.145, 42.91)),
            ),
        ]
    };
    assert!(GridMap::from_units(good()).is_ok());
    type Edit = fn(&mut Vec<GridUnit>);
    let cases: [(Edit, &str, &str); 11] = [
        (
            |u| u[1].id = String::new(),
            "features[1].properties.id",
            "empty",
        ),
        (
            |u| u[1].name = "\t".into(),
            "features[1].properties.name",
            "empty",
        ),
        (
            |u| u[1].id = "v".into(),
            "features[1].properties.id",
            "duplicate",
        ),
        (
            |u| u[1].parent_id = Some("x".into()),
            "features[1].properties.parent",
            "does not exist",
        ),
        (
            |u| u[1].parent_id = Some(String::new()),
            "features[1].properties.parent",
            "empty",
        ),
        (
            |u| u[1].level = UnitLevel::City,
            "features[1].properties.level",
            "deeper",
        ),
        (
            |u| u[0].parent_id = Some("g".into()),
            "features[0].properties.parent",
            "cycle",
        ),
        (
            |u| u[1].boundary = Some(MultiPolygon(vec![])),
            "features[1].geometry.coordinates",
            "has no polygon",
        ),
        (
            |u| u[1].boundary = Some(MultiPolygon(vec![square(125.0, f64::NAN, 125.1, 42.0)])),
            "features[1].geometry.coordinates",
            "finite",
        ),
        (
            |u| u[1].boundary = Some(MultiPolygon(vec![square(125.0, 42.0, f64::INFINITY, 42.1)])),
            "features[1].geometry.coordinates",
            "finite",
        ),
        (
            |u| {
                u[1].boundary = Some(MultiPolygon(vec![Polygon::new(
                    LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]),
                    vec![],
                )]))
            },
            "features[1].geometry.coordinates",
            "a ring needs at least 4",
        ),
    ];
    for (edit, field, reason) in cases {
        let mut units = good();
        edit(&mut units);
        let err = GridMap::from_units(units).unwrap_err();
        assert_refused(&err, field, reason);
    }
    let mut units = good();
    units[1].boundary = Some(MultiPolygon(vec![Polygon::new(
        LineString::new(vec![]),
        vec![],
    )]));
    assert_refused(
        &GridMap::from_units(units).unwrap_err(),
        "features[1].geometry.coordinates",
        "has 0 positions",
    );
}

#[test]
fn hostile_shapes_do_not_overflow_the_stack() {
    let deep = "[".repeat(100_000);
    let err = GridMap::from_geojson(&deep).unwrap_err();
    assert_refused(&err, "geojson", "not valid JSON");
    let deep_geometry = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"id":"a","name":"a","level":"grid","parent":null}},"geometry":{{"type":"Polygon","coordinates":{}0{}}}}}]}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    assert!(GridMap::from_geojson(&deep_geometry).is_err());

    // A parent chain as long as the file, and one big cycle: found without
    // recursion, in linear time.
    const N: usize = 50_000;
    let chain: Vec<GridUnit> = (0..N)
        .map(|i| {
            let parent = (i > 0).then(|| format!("u{}", i - 1));
            unit(&format!("u{i}"), UnitLevel::Grid, parent.as_deref(), None)
        })
        .collect();
    let err = GridMap::from_units(chain.clone()).unwrap_err();
    assert_refused(&err, "features[1].properties.level", "deeper");
    let mut cycle = chain;
    cycle[0].parent_id = Some(format!("u{}", N - 1));
    let err = GridMap::from_units(cycle).unwrap_err();
    assert_refused(
        &err,
        "features[0].properties.parent",
        &format!("cycle of {N} units"),
    );
}

// ---------------------------------------------------------------- scale

/// Jiulongpo: 1,522 grids, 7,545 micro-grids. Here 50 × 30 grids of 0.01° square,
/// each cut into 5 micro-grids (vertical strips 0.002° wide): 1,500 grids and
/// 7,500 micro-grids, plus a district and 30 streets without boundaries.
#[test]
fn locating_ten_thousand_points_among_seven_thousand_micro_grids() {
    const COLS: usize = 50;
    const ROWS: usize = 30;
    const STRIPS: usize = 5;
    let x = |k: usize| 106.4 + k as f64 * 0.002;
    let y = |row: usize| 29.4 + row as f64 * 0.01;
    let grid_id = |row: usize, col: usize| format!("G{row:02}{col:02}");
    let micro_id = |row: usize, k: usize| format!("G{row:02}{:02}-M{}", k / STRIPS, k % STRIPS);

    let mut units = vec![unit("500107", UnitLevel::County, None, None)];
    for row in 0..ROWS {
        let street = format!("S{row:02}");
        units.push(unit(&street, UnitLevel::Township, Some("500107"), None));
        for col in 0..COLS {
            let g = grid_id(row, col);
            let (k0, k1) = (col * STRIPS, (col + 1) * STRIPS);
            units.push(unit(
                &g,
                UnitLevel::Grid,
                Some(&street),
                Some(square(x(k0), y(row), x(k1), y(row + 1))),
            ));
            for k in k0..k1 {
                let b = square(x(k), y(row), x(k + 1), y(row + 1));
                units.push(unit(
                    &micro_id(row, k),
                    UnitLevel::MicroGrid,
                    Some(&g),
                    Some(b),
                ));
            }
        }
    }
    let map = GridMap::from_units(units).unwrap();
    assert_eq!(map.len(), 1 + ROWS + ROWS * COLS + ROWS * COLS * STRIPS);
    assert_eq!(
        map.units()
            .iter()
            .filter(|u| u.level == UnitLevel::MicroGrid)
            .count(),
        7_500
    );

    // A small deterministic generator (xorshift64*).
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut unit_fraction = || 0.02 + 0.96 * ((next() >> 11) as f64 / (1u64 << 53) as f64);

    let (mut inside, mut on_edges, mut outside) = (0, 0, 0);
    for i in 0..10_000 {
        let k = (unit_fraction() * (COLS * STRIPS) as f64) as usize % (COLS * STRIPS);
        let row = (unit_fraction() * ROWS as f64) as usize % ROWS;
        let lat = y(row) + 0.01 * unit_fraction();
        match i % 20 {
            // On the west edge of micro-grid k (exactly the stored coordinate):
            // it and its western neighbour contain the point; the smaller id wins.
            0 if k > 0 => {
                let edge = map
                    .get(&micro_id(row, k))
                    .unwrap()
                    .boundary
                    .as_ref()
                    .unwrap()
                    .0[0]
                    .exterior()
                    .0[0]
                    .x;
                let p = pt(lat, edge);
                assert_eq!(
                    map.locate(&p).unwrap().id,
                    micro_id(row, k - 1),
                    "edge {lat} {edge}"
                );
                on_edges += 1;
            }
            // West of everything.
            1 => {
                assert!(map.locate(&pt(lat, x(0) - 0.001)).is_none());
                assert!(map.grid_of(&pt(lat, x(0) - 0.001)).is_none());
                outside += 1;
            }
            _ => {
                let lon = x(k) + 0.002 * unit_fraction();
                let p = pt(lat, lon);
                let found = map.locate(&p).expect("inside");
                assert_eq!(found.id, micro_id(row, k), "{lat} {lon}");
                assert_eq!(map.grid_of(&p).unwrap().id, grid_id(row, k / STRIPS));
                inside += 1;
            }
        }
    }
    assert_eq!(inside + on_edges + outside, 10_000);
    assert!(on_edges > 400 && outside > 400, "{on_edges} {outside}");

    // The whole map survives a trip through its file.
    let again = GridMap::from_geojson(&map.to_geojson()).unwrap();
    assert_eq!(again.units(), map.units());
}

#[test]
fn the_units_near_a_grid_include_the_grid_next_door() {
    let map = liaoyuan();
    let near = ids(map.units_near(G1, 0.001));
    assert!(near.contains(&G1) && near.contains(&G2), "{near:?}");
    assert!(
        near.contains(&VILLAGE) && near.contains(&COUNTY),
        "{near:?}"
    );
    assert!(!near.contains(&CITY), "the city has no boundary");
    assert!(map.units_near(CITY, 1.0).is_empty());
    assert!(map.units_near("nope", 1.0).is_empty());
}
