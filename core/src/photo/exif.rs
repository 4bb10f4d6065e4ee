//! What we keep from a photo's EXIF: which way is up, when it was taken and
//! where. Everything else in the EXIF (camera serial numbers, owner names,
//! thumbnails) is read by nobody and never reaches the output files.

use exif::{In, Tag, Value};

use crate::location::GeoPoint;
use crate::time::Millis;

/// Offset assumed for an EXIF capture time that carries none: China Standard
/// Time (UTC+8), where the terminals are used. Cameras write local wall-clock
/// time, and phones since 2018 usually add `OffsetTimeOriginal`.
pub const DEFAULT_UTC_OFFSET_MINUTES: i32 = 8 * 60;

/// The fields of a photo's EXIF that intake uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ExifInfo {
    /// 1-8 as in the EXIF spec; 1 (upright) when absent or invalid.
    pub orientation: u8,
    pub captured_at: Option<Millis>,
    pub gps: Option<GeoPoint>,
}

/// Reads the TIFF-structured EXIF payload (what follows `Exif\0\0` in a JPEG
/// APP1, or a PNG `eXIf` / WebP `EXIF` chunk). Broken EXIF is not an error:
/// the picture is still good, we just learn nothing from it.
pub(crate) fn parse(raw: &[u8]) -> ExifInfo {
    let mut info = ExifInfo {
        orientation: 1,
        ..Default::default()
    };
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let ex = match reader.read_raw(raw.to_vec()) {
        Ok(ex) => ex,
        Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
        Err(e) => {
            tracing::debug!(error = %e, "photo EXIF unreadable; ignored");
            return info;
        }
    };
    if let Some(o) = ex
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
    {
        if (1..=8).contains(&o) {
            info.orientation = o as u8;
        }
    }
    info.captured_at = capture_time(&ex);
    info.gps = gps(&ex);
    info
}

fn ascii(ex: &exif::Exif, tag: Tag) -> Option<&[u8]> {
    match &ex.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(v) => v.first().map(|s| s.as_slice()),
        _ => None,
    }
}

fn capture_time(ex: &exif::Exif) -> Option<Millis> {
    let raw = ascii(ex, Tag::DateTimeOriginal).or_else(|| ascii(ex, Tag::DateTime))?;
    let mut dt = exif::DateTime::from_ascii(raw).ok()?;
    if let Some(sub) = ascii(ex, Tag::SubSecTimeOriginal) {
        let _ = dt.parse_subsec(sub);
    }
    if let Some(off) = ascii(ex, Tag::OffsetTimeOriginal) {
        let _ = dt.parse_offset(off);
    }
    let offset = dt
        .offset
        .map(i32::from)
        .unwrap_or(DEFAULT_UTC_OFFSET_MINUTES);
    if !(-14 * 60..=14 * 60).contains(&offset) {
        return None;
    }
    local_to_utc_millis(
        dt.year as i32,
        dt.month as u32,
        dt.day as u32,
        dt.hour as u32,
        dt.minute as u32,
        dt.second as u32,
        dt.nanosecond.unwrap_or(0) / 1_000_000,
        offset,
    )
}

/// Wall-clock time at `offset_minutes` east of UTC to UTC milliseconds; None
/// for impossible dates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn local_to_utc_millis(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    offset_minutes: i32,
) -> Option<Millis> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > days_in_month
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year } as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64
        - offset_minutes as i64 * 60;
    Some(secs * 1000 + millis as i64)
}

fn rational_f64(ex: &exif::Exif, tag: Tag, i: usize) -> Option<f64> {
    match &ex.get_field(tag, In::PRIMARY)?.value {
        Value::Rational(v) => {
            let r = v.get(i)?;
            (r.denom != 0).then(|| r.num as f64 / r.denom as f64)
        }
        Value::SRational(v) => {
            let r = v.get(i)?;
            (r.denom != 0).then(|| r.num as f64 / r.denom as f64)
        }
        _ => None,
    }
}

fn degrees(ex: &exif::Exif, tag: Tag) -> Option<f64> {
    let d = rational_f64(ex, tag, 0)?;
    let m = rational_f64(ex, tag, 1).unwrap_or(0.0);
    let s = rational_f64(ex, tag, 2).unwrap_or(0.0);
    Some(d + m / 60.0 + s / 3600.0)
}

fn gps(ex: &exif::Exif) -> Option<GeoPoint> {
    if ascii(ex, Tag::GPSStatus) == Some(b"V") {
        return None; // "measurement void"
    }
    let mut lat = degrees(ex, Tag::GPSLatitude)?;
    let mut lon = degrees(ex, Tag::GPSLongitude)?;
    if ascii(ex, Tag::GPSLatitudeRef).is_some_and(|r| r.eq_ignore_ascii_case(b"S")) {
        lat = -lat;
    }
    if ascii(ex, Tag::GPSLongitudeRef).is_some_and(|r| r.eq_ignore_ascii_case(b"W")) {
        lon = -lon;
    }
    // Cameras without a fix sometimes write zeros.
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    // Unknown unless the camera said: an invented figure would look measured.
    let accuracy =
        rational_f64(ex, Tag::GPSHPositioningError, 0).filter(|a| a.is_finite() && *a >= 0.0);
    GeoPoint::new(lat, lon, accuracy).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_conversion() {
        assert_eq!(local_to_utc_millis(1970, 1, 1, 0, 0, 0, 0, 0), Some(0));
        assert_eq!(local_to_utc_millis(1970, 1, 1, 8, 0, 0, 0, 480), Some(0));
        // 2024-02-29T12:34:56.789Z
        assert_eq!(
            local_to_utc_millis(2024, 2, 29, 12, 34, 56, 789, 0),
            Some(1_709_210_096_789)
        );
        assert_eq!(local_to_utc_millis(2023, 2, 29, 0, 0, 0, 0, 0), None);
        assert_eq!(local_to_utc_millis(2023, 13, 1, 0, 0, 0, 0, 0), None);
    }

    #[test]
    fn garbage_exif_is_ignored() {
        let info = parse(b"not a tiff at all");
        assert_eq!(info.orientation, 1);
        assert_eq!(info.captured_at, None);
        assert_eq!(info.gps, None);
    }
}
