//! Sets of case statuses as SQL lists (SQLite) and parameter arrays
//! (PostgreSQL), made from the core's own predicates on
//! [`CaseStatus`] (`awaits_handling`, `is_resolved`, …), so a query can never
//! disagree with the rules: no status name is typed into a query by hand.

use std::sync::LazyLock;

use gridcase_core::case::CaseStatus;

/// `('a', 'b')`, the statuses `holds` is true of, for `c.status IN …`.
/// Status names are the core's snake_case words: nothing to escape.
pub fn list(holds: impl Fn(CaseStatus) -> bool) -> String {
    let names: Vec<String> = CaseStatus::ALL
        .iter()
        .copied()
        .filter(|s| holds(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    if names.is_empty() {
        "(NULL)".to_string()
    } else {
        format!("({})", names.join(", "))
    }
}

/// The names of the statuses `holds` is true of, to bind as one PostgreSQL
/// `text[]` parameter (`c.status = ANY($1)`, `<> ALL($1)`).
pub fn names(holds: impl Fn(CaseStatus) -> bool) -> Vec<&'static str> {
    CaseStatus::ALL
        .iter()
        .copied()
        .filter(|s| holds(*s))
        .map(CaseStatus::as_str)
        .collect()
}

/// Someone still owes work against the deadline.
pub static AWAITING_HANDLING: LazyLock<String> =
    LazyLock::new(|| list(CaseStatus::awaits_handling));
/// A deadline the centre set is running: what the scheduler chases.
pub static UNDER_CENTRE_DEADLINE: LazyLock<String> =
    LazyLock::new(|| list(CaseStatus::runs_against_centre_deadline));
/// What a department handler still has to finish.
pub static AWAITING_DEPARTMENT: LazyLock<String> =
    LazyLock::new(|| list(CaseStatus::awaits_department));
/// Reported resolved by the department (checked on site or not).
pub static RESOLVED: LazyLock<String> = LazyLock::new(|| list(CaseStatus::is_resolved));
/// Confirmed done on site.
pub static DONE_ON_SITE: LazyLock<String> = LazyLock::new(|| list(CaseStatus::is_done_on_site));
/// Accepting nothing more.
pub static FINAL: LazyLock<String> = LazyLock::new(|| list(CaseStatus::is_final));
/// A draft: only its grid leader sees it.
pub static DRAFT: LazyLock<String> = LazyLock::new(|| list(|s| s == CaseStatus::Draft));
/// Withdrawn.
pub static CANCELLED: LazyLock<String> = LazyLock::new(|| list(|s| s == CaseStatus::Cancelled));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_made_from_the_core() {
        assert_eq!(&*DRAFT, "('draft')");
        assert_eq!(&*RESOLVED, "('resolved', 'verified', 'rated', 'closed')");
        assert_eq!(
            &*UNDER_CENTRE_DEADLINE,
            "('dispatched', 'in_progress', 'escalated', 'reopened')"
        );
        assert_eq!(list(|_| false), "(NULL)");
        assert_eq!(names(|s| s == CaseStatus::Draft), ["draft"]);
        assert_eq!(names(CaseStatus::is_resolved).len(), 4);
    }
}
