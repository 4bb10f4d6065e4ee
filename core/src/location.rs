//! Where a case is: a GPS point with its accuracy, and optionally an address.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// A WGS-84 point as the phone's GPS gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
    /// Radius of the 68% confidence circle, metres.
    pub accuracy_m: f64,
}

/// The longest address we keep; a resident's description belongs in the case text.
pub const MAX_ADDRESS_CHARS: usize = 200;

impl GeoPoint {
    pub fn new(lat: f64, lon: f64, accuracy_m: f64) -> Result<Self, InvalidInput> {
        let p = Self {
            lat,
            lon,
            accuracy_m,
        };
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_coordinate("location.lat", self.lat, 90.0)?;
        check_coordinate("location.lon", self.lon, 180.0)?;
        if !self.accuracy_m.is_finite() {
            return Err(InvalidInput::new(
                "location.accuracy_m",
                "is not a finite number",
            ));
        }
        if self.accuracy_m < 0.0 {
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

/// A case's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub point: GeoPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
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
}
