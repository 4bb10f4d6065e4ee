//! The deployment's clock. Times are stored and sent as UTC milliseconds
//! ([`crate::time`]); people read them on the wall clock of the centre they
//! work for. One zone per deployment (server configuration, default
//! Asia/Shanghai), sent to terminals with every sync answer, decides every
//! display, every day and month boundary, every export, figure and scheduler
//! rule, so "recorded on 1 December" means the same day on the terminal, the
//! dashboard and the export.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::error::InvalidInput;
use crate::time::Millis;

/// The zone of a deployment that configured none: China Standard Time.
pub const DEFAULT_ZONE: &str = "Asia/Shanghai";

/// A deployment's time zone, by its IANA name.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::named(DEFAULT_ZONE).expect("the bundled time zone database has Asia/Shanghai")
    }
}

impl Zone {
    /// The zone with this IANA name (`Asia/Shanghai`, `Asia/Urumqi`, `UTC`).
    pub fn named(name: &str) -> Result<Zone, InvalidInput> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| {
            InvalidInput::new("time_zone", "is not a time zone name (like Asia/Shanghai)")
        })?;
        Ok(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn civil(&self, ms: Millis) -> DateTime {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        self.tz.to_datetime(ts)
    }

    fn instant(&self, dt: DateTime) -> Millis {
        // A wall-clock time skipped or repeated by a daylight-saving change
        // takes the earlier reading (jiff's "compatible" rule).
        self.tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .map(|ts| ts.as_millisecond())
            .unwrap_or(0)
    }

    /// To the minute, as people read it: `2026-12-01 18:00`.
    pub fn format_minute(&self, ms: Millis) -> String {
        self.civil(ms).strftime("%Y-%m-%d %H:%M").to_string()
    }

    /// To the second: `2026-12-01 18:00:05`.
    pub fn format_second(&self, ms: Millis) -> String {
        self.civil(ms).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// The date: `2026-12-01`.
    pub fn format_date(&self, ms: Millis) -> String {
        self.civil(ms).date().strftime("%Y-%m-%d").to_string()
    }

    /// The month: `2026-12`.
    pub fn format_month(&self, ms: Millis) -> String {
        self.civil(ms).date().strftime("%Y-%m").to_string()
    }

    /// W3C datetime (RFC 3339) on this clock, to the second:
    /// `2026-12-01T18:00:00+08:00`.
    pub fn format_w3c(&self, ms: Millis) -> String {
        let ts =
            Timestamp::from_millisecond(ms - ms.rem_euclid(1000)).unwrap_or(Timestamp::UNIX_EPOCH);
        ts.to_zoned(self.tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// The offset from UTC at `ms`, in milliseconds (what a database adds to
    /// a UTC time to read this clock's calendar at that moment).
    pub fn offset_millis_at(&self, ms: Millis) -> Millis {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        Millis::from(self.tz.to_offset(ts).seconds()) * 1000
    }

    /// The first instant of the day `ms` falls in.
    pub fn day_start(&self, ms: Millis) -> Millis {
        self.instant(
            self.civil(ms)
                .date()
                .to_datetime(jiff::civil::Time::midnight()),
        )
    }

    /// The first instant of the day after the one `ms` falls in.
    pub fn next_day_start(&self, ms: Millis) -> Millis {
        let date = self.civil(ms).date();
        let next = date.tomorrow().unwrap_or(date);
        self.instant(next.to_datetime(jiff::civil::Time::midnight()))
    }

    /// The first instant of the month `ms` falls in.
    pub fn month_start(&self, ms: Millis) -> Millis {
        let date = self.civil(ms).date().first_of_month();
        self.instant(date.to_datetime(jiff::civil::Time::midnight()))
    }

    /// The first instant of the month after the one `ms` falls in.
    pub fn next_month_start(&self, ms: Millis) -> Millis {
        let first = self.civil(ms).date().first_of_month();
        match first.checked_add(jiff::Span::new().months(1)) {
            Ok(next) => self.instant(next.to_datetime(jiff::civil::Time::midnight())),
            Err(_) => Millis::MAX,
        }
    }

    /// The first instant of the month before the one `ms` falls in.
    pub fn previous_month_start(&self, ms: Millis) -> Millis {
        let first = self.civil(ms).date().first_of_month();
        match first.checked_sub(jiff::Span::new().months(1)) {
            Ok(prev) => self.instant(prev.to_datetime(jiff::civil::Time::midnight())),
            Err(_) => 0,
        }
    }

    /// The first instant of a calendar date on this clock.
    pub fn date_start(&self, year: i16, month: i8, day: i8) -> Result<Millis, InvalidInput> {
        let date = Date::new(year, month, day)
            .map_err(|_| InvalidInput::new("date", "is not a calendar date"))?;
        Ok(self.instant(date.to_datetime(jiff::civil::Time::midnight())))
    }

    /// A wall-clock time as people type it on this clock: `2026-12-01 18:00`,
    /// `2026-12-01T18:00`, with or without seconds, or a bare date
    /// `2026-12-01` (its first instant). A time with an explicit offset or
    /// `Z` (`2026-12-01T10:00:00Z`) is taken as written.
    pub fn parse_local(&self, field: &'static str, text: &str) -> Result<Millis, InvalidInput> {
        let text = text.trim();
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Ok(ts.as_millisecond());
        }
        let normalised = text.replacen(' ', "T", 1);
        if let Ok(dt) = normalised.parse::<DateTime>() {
            return Ok(self.instant(dt));
        }
        if let Ok(date) = text.parse::<Date>() {
            return Ok(self.instant(date.to_datetime(jiff::civil::Time::midnight())));
        }
        Err(InvalidInput::new(
            field,
            "is not a local date and time (2026-12-01 18:00) or a date (2026-12-01)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-06-30T23:30:00Z is 07:30 on 1 July in Liaoyuan.
    const LATE_JUNE_UTC: Millis = 1_751_326_200_000;

    #[test]
    fn the_default_is_china_standard_time() {
        let z = Zone::default();
        assert_eq!(z.name(), "Asia/Shanghai");
        assert_eq!(z.format_minute(LATE_JUNE_UTC), "2025-07-01 07:30");
        assert_eq!(z.format_date(LATE_JUNE_UTC), "2025-07-01");
        assert_eq!(z.format_month(LATE_JUNE_UTC), "2025-07");
        assert_eq!(
            z.format_w3c(LATE_JUNE_UTC + 999),
            "2025-07-01T07:30:00+08:00"
        );
        assert_eq!(z.offset_millis_at(LATE_JUNE_UTC), 8 * 3_600_000);
    }

    #[test]
    fn days_and_months_follow_the_zone() {
        let z = Zone::default();
        assert_eq!(
            z.format_w3c(z.day_start(LATE_JUNE_UTC)),
            "2025-07-01T00:00:00+08:00"
        );
        assert_eq!(
            z.format_w3c(z.next_day_start(LATE_JUNE_UTC)),
            "2025-07-02T00:00:00+08:00"
        );
        assert_eq!(
            z.format_w3c(z.month_start(LATE_JUNE_UTC)),
            "2025-07-01T00:00:00+08:00"
        );
        assert_eq!(
            z.format_w3c(z.next_month_start(LATE_JUNE_UTC)),
            "2025-08-01T00:00:00+08:00"
        );
        assert_eq!(
            z.format_w3c(z.previous_month_start(LATE_JUNE_UTC)),
            "2025-06-01T00:00:00+08:00"
        );
        let utc = Zone::named("UTC").unwrap();
        assert_eq!(utc.format_date(LATE_JUNE_UTC), "2025-06-30");
    }

    #[test]
    fn local_input_is_read_on_the_zone_clock() {
        let z = Zone::default();
        assert_eq!(
            z.parse_local("deadline", "2025-07-01 07:30").unwrap(),
            LATE_JUNE_UTC
        );
        assert_eq!(
            z.parse_local("deadline", "2025-07-01T07:30:00").unwrap(),
            LATE_JUNE_UTC
        );
        assert_eq!(
            z.parse_local("deadline", "2025-06-30T23:30:00Z").unwrap(),
            LATE_JUNE_UTC
        );
        assert_eq!(
            z.parse_local("from", "2025-07-01").unwrap(),
            z.day_start(LATE_JUNE_UTC)
        );
        let err = z.parse_local("deadline", "tomorrow").unwrap_err();
        assert_eq!(err.field, "deadline");
    }

    #[test]
    fn unknown_zones_are_refused_by_name() {
        let err = Zone::named("Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "time_zone");
    }
}
