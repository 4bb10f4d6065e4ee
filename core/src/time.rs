//! Every time in Gridcase is UTC milliseconds since the Unix epoch: devices in
//! different provinces, the server and the dashboard all compare the same numbers.

/// UTC milliseconds since 1970-01-01.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// The wall clock. Kept out of the pure rules: they take `now` as an argument so
/// the server and tests can decide what "now" is.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
