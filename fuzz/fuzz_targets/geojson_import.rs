//! A grid map file: a map or a `GridError`. A map that loads answers point
//! lookups and walks its tree without panicking, and what it writes back
//! loads again (an exported map must be importable).
#![no_main]

use gridcase_core::grid::GridMap;
use gridcase_core::location::GeoPoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(map) = GridMap::from_geojson(text) else {
        return;
    };
    for (lat, lon) in [(43.0, 125.0), (0.0, 0.0), (-90.0, 180.0), (f64::NAN, 1.0)] {
        let point = GeoPoint {
            lat,
            lon,
            accuracy_m: Some(5.0),
        };
        let _ = map.locate(&point);
        let _ = map.grid_of(&point);
    }
    for unit in map.units() {
        let _ = map.ancestors(&unit.id);
        let _ = map.children(&unit.id);
    }
    let again = GridMap::from_geojson(&map.to_geojson());
    assert!(again.is_ok(), "an exported map does not load: {again:?}");
});
