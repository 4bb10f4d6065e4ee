//! The centre's calendar: W3C datetimes in and out, days and months as the
//! centre counts them, all on the deployment's clock ([`Zone`], configured
//! with `--time-zone`, Asia/Shanghai by default).
//!
//! Times are stored as UTC milliseconds; a month or a day only means something
//! on a wall clock. So "June" is June in the deployment's zone, and a case
//! reported at 07:00 on 1 July in Liaoyuan counts in July even though it is
//! still 30 June in UTC. Nothing here assumes an offset: the zone decides,
//! daylight saving included.

use gridcase_core::error::InvalidInput;
use gridcase_core::time::Millis;
pub use gridcase_core::zone::Zone;

/// Which end of a day a bare date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateEnd {
    /// The day's first instant: a period starting that day.
    Start,
    /// The next day's first instant: a period ending with that day, inclusive.
    After,
}

fn is_bare_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Reads a W3C datetime with its offset (`2025-07-01T07:00:00+08:00`, `…Z`),
/// a wall-clock time on the zone (`2025-07-01 07:00`), or a bare date
/// (`2025-07-01`, its first instant or the next day's, by `end`).
pub fn parse_w3c(
    zone: &Zone,
    field: &'static str,
    text: &str,
    end: DateEnd,
) -> Result<Millis, InvalidInput> {
    let text = text.trim();
    let at = zone.parse_local(field, text)?;
    Ok(if is_bare_date(text) && end == DateEnd::After {
        zone.next_day_start(at)
    } else {
        at
    })
}

/// A half-open span of time `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

impl Period {
    /// Everything (an export without dates).
    pub const ALL: Period = Period {
        from: 0,
        to: Millis::MAX,
    };

    /// `from` and `to` as an API or a command gives them: a W3C datetime, a
    /// local time or a date (`to` as a date includes that day). Missing ends
    /// take `default`'s.
    pub fn parse(
        zone: &Zone,
        from: Option<&str>,
        to: Option<&str>,
        default: Period,
    ) -> Result<Period, InvalidInput> {
        let from = match from.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_w3c(zone, "from", s, DateEnd::Start)?,
            None => default.from,
        };
        let to = match to.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_w3c(zone, "to", s, DateEnd::After)?,
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
    pub fn months(&self, zone: &Zone) -> Vec<Millis> {
        let mut out = Vec::new();
        let mut m = zone.month_start(self.from);
        while m < self.to {
            out.push(m);
            let next = zone.next_month_start(m);
            if next <= m {
                break;
            }
            m = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-06-30T23:30:00Z is 07:30 on 1 July in Liaoyuan.
    const LATE_JUNE_UTC: Millis = 1_751_326_200_000;

    fn cst() -> Zone {
        Zone::default()
    }

    #[test]
    fn w3c_times_keep_their_offset_and_dates_their_end() {
        let z = cst();
        let utc = parse_w3c(&z, "start_date", "2025-06-30T23:30:00Z", DateEnd::Start).unwrap();
        let pst = parse_w3c(
            &z,
            "start_date",
            "2025-06-30T15:30:00-08:00",
            DateEnd::Start,
        )
        .unwrap();
        assert_eq!(utc, LATE_JUNE_UTC);
        assert_eq!(pst, LATE_JUNE_UTC);
        let start = parse_w3c(&z, "from", "2025-07-01", DateEnd::Start).unwrap();
        let after = parse_w3c(&z, "to", "2025-07-01", DateEnd::After).unwrap();
        assert_eq!(z.format_w3c(start), "2025-07-01T00:00:00+08:00");
        assert_eq!(z.format_w3c(after), "2025-07-02T00:00:00+08:00");
        let err = parse_w3c(&z, "end_date", "yesterday", DateEnd::Start).unwrap_err();
        assert_eq!(err.field, "end_date");
    }

    #[test]
    fn a_date_is_a_day_on_the_deployments_clock() {
        let urumqi = Zone::named("Asia/Urumqi").unwrap();
        let start = parse_w3c(&urumqi, "from", "2025-07-01", DateEnd::Start).unwrap();
        assert_eq!(urumqi.format_w3c(start), "2025-07-01T00:00:00+06:00");
        let utc = Zone::named("UTC").unwrap();
        let p = Period::parse(&utc, Some("2025-07-01"), Some("2025-07-01"), Period::ALL).unwrap();
        assert!(p.contains(LATE_JUNE_UTC + 3_600_000));
        assert!(!p.contains(LATE_JUNE_UTC), "still 30 June in UTC");
    }

    #[test]
    fn a_period_lists_the_months_it_touches_and_refuses_to_run_backwards() {
        let z = cst();
        let all = Period { from: 0, to: 1 };
        let p = Period::parse(&z, Some("2025-05-20"), Some("2025-07-01"), all).unwrap();
        let months: Vec<String> = p
            .months(&z)
            .into_iter()
            .map(|m| z.format_month(m))
            .collect();
        assert_eq!(months, ["2025-05", "2025-06", "2025-07"]);
        let err = Period::parse(&z, Some("2025-07-02"), Some("2025-07-01"), all).unwrap_err();
        assert_eq!(err.field, "to");
        assert_eq!(Period::parse(&z, None, None, all).unwrap(), all);
    }
}
