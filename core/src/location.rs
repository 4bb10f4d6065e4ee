//! Where a case is: a GPS point with its accuracy (when known), where the
//! point came from, and optionally an address.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// A WGS-84 point as the phone's GPS gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
    /// Radius of the 68% confidence circle, metres; `None` when nothing
    /// measured it (a photo without `GPSHPositioningError`, typed
    /// coordinates). Never invented: "unknown" is said as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

/// The longest address we keep; a resident's description belongs in the case text.
pub const MAX_ADDRESS_CHARS: usize = 200;

impl GeoPoint {
    /// A point with its accuracy in metres, or `None` for unknown
    /// (`GeoPoint::new(42.9, 125.1, 5.0)`, `GeoPoint::new(42.9, 125.1, None)`).
    pub fn new(
        lat: f64,
        lon: f64,
        accuracy_m: impl Into<Option<f64>>,
    ) -> Result<Self, InvalidInput> {
        let p = Self {
            lat,
            lon,
            accuracy_m: accuracy_m.into(),
        };
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_coordinate("location.lat", self.lat, 90.0)?;
        check_coordinate("location.lon", self.lon, 180.0)?;
        let Some(accuracy) = self.accuracy_m else {
            return Ok(());
        };
        if !accuracy.is_finite() {
            return Err(InvalidInput::new(
                "location.accuracy_m",
                "is not a finite number",
            ));
        }
        if accuracy < 0.0 {
            return Err(InvalidInput::new(
                "location.accuracy_m",
                "must not be negative",
            ));
        }
        Ok(())
    }
}

fn check_coordinate(field: &'static str, value: f64, limit: f64) -> Result<(), InvalidInput> {
    if !value.is_finite() {
        return Err(InvalidInput::new(field, "is not a finite number"));
    }
    if !(-limit..=limit).contains(&value) {
        return Err(InvalidInput::new(
            field,
            format!("must be between -{limit} and {limit} degrees"),
        ));
    }
    Ok(())
}

/// Where a case's point came from, so the centre knows how far to trust it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationSource {
    /// The terminal's own GPS when the step was recorded.
    DeviceGps,
    /// The GPS tags (EXIF) of a photo of the case.
    PhotoExif,
    /// Coordinates typed in by hand.
    Typed,
    /// A point tapped on a map.
    MapTap,
    /// Not said: recorded before sources were kept, or by a channel that
    /// does not say (Open311).
    #[default]
    Unknown,
}

impl LocationSource {
    pub const ALL: [LocationSource; 5] = [
        LocationSource::DeviceGps,
        LocationSource::PhotoExif,
        LocationSource::Typed,
        LocationSource::MapTap,
        LocationSource::Unknown,
    ];

    /// The name used in storage and on the wire (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            LocationSource::DeviceGps => "device_gps",
            LocationSource::PhotoExif => "photo_exif",
            LocationSource::Typed => "typed",
            LocationSource::MapTap => "map_tap",
            LocationSource::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A case's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub point: GeoPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Where `point` came from; older records say nothing (`unknown`).
    #[serde(default)]
    pub source: LocationSource,
}

impl Location {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.point.validate()?;
        if let Some(address) = &self.address {
            crate::case::check_text("location.address", address, 0, MAX_ADDRESS_CHARS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_luzhou_is_fine() {
        assert!(GeoPoint::new(28.87, 105.44, 8.0).is_ok());
    }

    #[test]
    fn broken_coordinates_name_the_field() {
        let cases = [
            (f64::NAN, 105.0, 5.0, "location.lat"),
            (28.0, f64::INFINITY, 5.0, "location.lon"),
            (28.0, f64::NEG_INFINITY, 5.0, "location.lon"),
            (90.5, 105.0, 5.0, "location.lat"),
            (28.0, -180.1, 5.0, "location.lon"),
            (28.0, 105.0, -1.0, "location.accuracy_m"),
            (28.0, 105.0, f64::NAN, "location.accuracy_m"),
        ];
        for (lat, lon, acc, field) in cases {
            let err = GeoPoint::new(lat, lon, acc).unwrap_err();
            assert_eq!(err.field, field, "{lat} {lon} {acc}");
        }
    }

    #[test]
    fn the_poles_and_the_date_line_are_valid() {
        assert!(GeoPoint::new(90.0, 180.0, 0.0).is_ok());
        assert!(GeoPoint::new(-90.0, -180.0, 0.0).is_ok());
    }

    #[test]
    fn an_unknown_accuracy_stays_unknown() {
        let p = GeoPoint::new(42.9, 125.1, None).unwrap();
        let json = serde_json::to_value(p).unwrap();
        assert!(json.get("accuracy_m").is_none(), "{json}");
        let back: GeoPoint = serde_json::from_value(json).unwrap();
        assert_eq!(back.accuracy_m, None);
    }

    #[test]
    fn locations_written_before_sources_were_kept_still_read() {
        let old = r#"{"point":{"lat":42.9,"lon":125.1,"accuracy_m":6.0},"address":"人民大街"}"#;
        let l: Location = serde_json::from_str(old).unwrap();
        assert_eq!(l.point.accuracy_m, Some(6.0));
        assert_eq!(l.source, LocationSource::Unknown);
        let l = Location {
            point: GeoPoint::new(42.9, 125.1, 6.5).unwrap(),
            address: None,
            source: LocationSource::PhotoExif,
        };
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["source"], "photo_exif");
        for s in LocationSource::ALL {
            assert_eq!(LocationSource::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
