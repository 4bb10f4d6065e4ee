//! The centre's calendar: W3C datetimes in and out, days and months as the
//! centre counts them.
//!
//! Times are stored as UTC milliseconds; a month or a day only means something
//! on a wall clock. The centres this server serves keep China Standard Time
//! (UTC+8, no daylight saving), so "June" is June there, and a case reported
//! at 07:00 on 1 July in Liaoyuan counts in July even though it is still 30 June
//! in UTC.

use gridcase_core::error::InvalidInput;
use gridcase_core::time::Millis;
use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// China Standard Time.
pub const CENTRE_OFFSET: UtcOffset = offset!(+8);

fn to_datetime(ms: Millis) -> OffsetDateTime {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(CENTRE_OFFSET)
}

fn to_millis(t: OffsetDateTime) -> Millis {
    (t.unix_timestamp_nanos() / 1_000_000) as Millis
}

fn start_of_day(date: Date) -> Millis {
    to_millis(date.midnight().assume_offset(CENTRE_OFFSET))
}

/// A time as W3C datetime (RFC 3339) on the centre's clock, to the second:
/// `2025-07-01T07:00:00+08:00`.
pub fn format_w3c(ms: Millis) -> String {
    let t = to_datetime(ms);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// The date on the centre's clock: `2025-07-01`.
pub fn format_date(ms: Millis) -> String {
    to_datetime(ms)
        .date()
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Which end of a day a bare date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateEnd {
    /// The day's first instant: a period starting that day.
    Start,
    /// The next day's first instant: a period ending with that day, inclusive.
    After,
}

/// Reads a W3C datetime with its offset (`2025-07-01T07:00:00+08:00`,
/// `…Z`), or a bare date (`2025-07-01`) on the centre's clock.
pub fn parse_w3c(field: &'static str, text: &str, end: DateEnd) -> Result<Millis, InvalidInput> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(to_millis(t));
    }
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(match end {
            DateEnd::Start => start_of_day(date),
            DateEnd::After => start_of_day(date.next_day().unwrap_or(date)),
        });
    }
    Err(InvalidInput::new(
        field,
        "is not a W3C datetime (2025-07-01T08:00:00+08:00) or a date (2025-07-01)",
    ))
}

/// The first instant of the month `ms` falls in.
pub fn month_start(ms: Millis) -> Millis {
    start_of_day(to_datetime(ms).date().replace_day(1).unwrap_or(Date::MIN))
}

/// The first instant of the month after the one `ms` falls in.
pub fn next_month_start(ms: Millis) -> Millis {
    let date = to_datetime(ms).date();
    let (year, month) = match date.month() {
        Month::December => (date.year() + 1, Month::January),
        m => (date.year(), m.next()),
    };
    Date::from_calendar_date(year, month, 1).map_or(Millis::MAX, start_of_day)
}

/// The first instant of the month before the one `ms` falls in.
pub fn previous_month_start(ms: Millis) -> Millis {
    let date = to_datetime(ms).date();
    let (year, month) = match date.month() {
        Month::January => (date.year() - 1, Month::December),
        m => (date.year(), m.previous()),
    };
    Date::from_calendar_date(year, month, 1).map_or(0, start_of_day)
}

/// The month `ms` falls in, as figures name it: `2025-07`.
pub fn month_key(ms: Millis) -> String {
    to_datetime(ms)
        .date()
        .format(format_description!("[year]-[month]"))
        .unwrap_or_default()
}

/// What SQLite adds to a UTC millisecond time to read the centre's calendar.
pub fn offset_millis() -> Millis {
    Millis::from(CENTRE_OFFSET.whole_seconds()) * 1000
}

/// A half-open span of time `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

impl Period {
    /// `from` and `to` as an API or a command gives them: a W3C datetime or a
    /// date (`to` as a date includes that day). Missing ends take `default`'s.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        default: Period,
    ) -> Result<Period, InvalidInput> {
        let from = match from.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_w3c("from", s, DateEnd::Start)?,
            None => default.from,
        };
        let to = match to.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_w3c("to", s, DateEnd::After)?,
            None => default.to,
        };
        if to <= from {
            return Err(InvalidInput::new("to", "must be after from"));
        }
        Ok(Period { from, to })
    }

    pub fn contains(&self, t: Millis) -> bool {
        (self.from..self.to).contains(&t)
    }

    /// The starts of the calendar months the period touches, in order.
    pub fn months(&self) -> Vec<Millis> {
        let mut out = Vec::new();
        let mut m = month_start(self.from);
        while m < self.to {
            out.push(m);
            m = next_month_start(m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-06-30T23:30:00Z is 07:30 on 1 July in Liaoyuan.
    const LATE_JUNE_UTC: Millis = 1_751_326_200_000;

    #[test]
    fn months_follow_the_centre_clock() {
        assert_eq!(month_key(LATE_JUNE_UTC), "2025-07");
        assert_eq!(format_w3c(LATE_JUNE_UTC), "2025-07-01T07:30:00+08:00");
        assert_eq!(
            format_w3c(month_start(LATE_JUNE_UTC)),
            "2025-07-01T00:00:00+08:00"
        );
        assert_eq!(
            format_w3c(next_month_start(LATE_JUNE_UTC)),
            "2025-08-01T00:00:00+08:00"
        );
        assert_eq!(
            format_w3c(previous_month_start(LATE_JUNE_UTC)),
            "2025-06-01T00:00:00+08:00"
        );
        let december = parse_w3c("t", "2024-12-15", DateEnd::Start).unwrap();
        assert_eq!(month_key(next_month_start(december)), "2025-01");
        assert_eq!(
            month_key(previous_month_start(next_month_start(december))),
            "2024-12"
        );
    }

    #[test]
    fn w3c_times_keep_their_offset_and_dates_their_end() {
        let z = parse_w3c("start_date", "2025-06-30T23:30:00Z", DateEnd::Start).unwrap();
        let pst = parse_w3c("start_date", "2025-06-30T15:30:00-08:00", DateEnd::Start).unwrap();
        assert_eq!(z, LATE_JUNE_UTC);
        assert_eq!(pst, LATE_JUNE_UTC);
        let start = parse_w3c("from", "2025-07-01", DateEnd::Start).unwrap();
        let after = parse_w3c("to", "2025-07-01", DateEnd::After).unwrap();
        assert_eq!(format_w3c(start), "2025-07-01T00:00:00+08:00");
        assert_eq!(format_w3c(after), "2025-07-02T00:00:00+08:00");
        let err = parse_w3c("end_date", "yesterday", DateEnd::Start).unwrap_err();
        assert_eq!(err.field, "end_date");
    }

    #[test]
    fn a_period_lists_the_months_it_touches_and_refuses_to_run_backwards() {
        let all = Period { from: 0, to: 1 };
        let p = Period::parse(Some("2025-05-20"), Some("2025-07-01"), all).unwrap();
        let months: Vec<String> = p.months().into_iter().map(month_key).collect();
        assert_eq!(months, ["2025-05", "2025-06", "2025-07"]);
        let err = Period::parse(Some("2025-07-02"), Some("2025-07-01"), all).unwrap_err();
        assert_eq!(err.field, "to");
        assert_eq!(Period::parse(None, None, all).unwrap(), all);
    }
}
