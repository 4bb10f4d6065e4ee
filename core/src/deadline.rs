//! The grid leader's proposed deadline (办结时限): by when the case must be handled.

use crate::error::InvalidInput;
use crate::time::{Millis, DAY};

/// How far ahead a grid leader may set a deadline unless configured otherwise.
pub const DEFAULT_HORIZON: Millis = 90 * DAY;

/// A proposed deadline must be in the future and within the horizon: a deadline
/// in the past is a typo, one in the year 3000 is no deadline at all.
pub fn check_proposed_deadline(
    deadline: Millis,
    now: Millis,
    horizon: Millis,
) -> Result<(), InvalidInput> {
    if deadline <= now {
        return Err(InvalidInput::new(
            "proposed_deadline",
            "must be in the future",
        ));
    }
    if deadline - now > horizon {
        let days = horizon / DAY;
        return Err(InvalidInput::new(
            "proposed_deadline",
            format!("must be within {days} days from now"),
        ));
    }
    Ok(())
}

/// Overdue is derived from the deadline and the clock each time it is asked,
/// never stored, so it cannot go stale while the terminal sleeps in a drawer.
pub fn is_overdue(deadline: Option<Millis>, still_open: bool, now: Millis) -> bool {
    still_open && deadline.is_some_and(|d| d < now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HOUR;

    const NOW: Millis = 1_790_000_000_000;

    #[test]
    fn tomorrow_is_a_sensible_deadline() {
        assert!(check_proposed_deadline(NOW + DAY, NOW, DEFAULT_HORIZON).is_ok());
    }

    #[test]
    fn past_and_far_future_are_refused() {
        assert!(check_proposed_deadline(NOW - HOUR, NOW, DEFAULT_HORIZON).is_err());
        assert!(check_proposed_deadline(NOW, NOW, DEFAULT_HORIZON).is_err());
        let year_3000 = 32_503_680_000_000;
        let err = check_proposed_deadline(year_3000, NOW, DEFAULT_HORIZON).unwrap_err();
        assert_eq!(err.field, "proposed_deadline");
        assert!(err.reason.contains("90 days"));
    }

    #[test]
    fn overdue_only_while_open() {
        assert!(is_overdue(Some(NOW - 1), true, NOW));
        assert!(!is_overdue(Some(NOW - 1), false, NOW));
        assert!(!is_overdue(Some(NOW + 1), true, NOW));
        assert!(!is_overdue(None, true, NOW));
    }
}
