//! A case (事件): a resident's problem as the grid leader recorded it, and where it
//! stands in its life from draft to closed.

mod category;
mod transitions;

use serde::{Deserialize, Serialize};

pub use category::Category;
pub use transitions::{next_status, operation_name};

use crate::error::InvalidInput;
use crate::ids::{CaseId, PhotoId};
use crate::location::Location;
use crate::time::Millis;

pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_NOTE_CHARS: usize = 2_000;
pub const MAX_COMMENT_CHARS: usize = 500;

/// Where a case stands. The order is the brief's life of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Being written on the terminal; only the grid leader sees it.
    Draft,
    /// Finished on the terminal, waiting to reach the centre.
    Submitted,
    /// The centre has it and must dispatch it.
    Received,
    /// A department owns it, with a deadline.
    Dispatched,
    /// The department accepted it and is working on it.
    InProgress,
    /// The department says it is done.
    Resolved,
    /// The grid leader checked on site that it is really done.
    Verified,
    /// The resident rated the outcome with a smiley.
    Rated,
    Closed,
    /// Handed to the next level up because this level cannot solve it.
    Escalated,
    /// Back to the department: not done on site, or a frowny face.
    Reopened,
    /// Withdrawn: a duplicate or a mistaken report.
    Cancelled,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 12] = [
        CaseStatus::Draft,
        CaseStatus::Submitted,
        CaseStatus::Received,
        CaseStatus::Dispatched,
        CaseStatus::InProgress,
        CaseStatus::Resolved,
        CaseStatus::Verified,
        CaseStatus::Rated,
        CaseStatus::Closed,
        CaseStatus::Escalated,
        CaseStatus::Reopened,
        CaseStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Draft => "draft",
            CaseStatus::Submitted => "submitted",
            CaseStatus::Received => "received",
            CaseStatus::Dispatched => "dispatched",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Verified => "verified",
            CaseStatus::Rated => "rated",
            CaseStatus::Closed => "closed",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Reopened => "reopened",
            CaseStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Closed and cancelled cases accept nothing more.
    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Closed | CaseStatus::Cancelled)
    }

    /// Whether someone still owes work against the deadline. Once the department
    /// says it is resolved the clock stops, even if verification reopens it later
    /// (then it is open again).
    pub fn awaits_handling(self) -> bool {
        matches!(
            self,
            CaseStatus::Submitted
                | CaseStatus::Received
                | CaseStatus::Dispatched
                | CaseStatus::InProgress
                | CaseStatus::Escalated
                | CaseStatus::Reopened
        )
    }

    /// Whether a deadline the centre set is running: the case was dispatched
    /// and nobody has reported it resolved since (escalated or reopened ones
    /// included). What the centre chases.
    pub fn runs_against_centre_deadline(self) -> bool {
        self.awaits_handling() && !matches!(self, CaseStatus::Submitted | CaseStatus::Received)
    }

    /// Whether the department's work is waiting: what a handler still has to
    /// finish on a case dispatched to them.
    pub fn awaits_department(self) -> bool {
        matches!(
            self,
            CaseStatus::Dispatched | CaseStatus::InProgress | CaseStatus::Reopened
        )
    }

    /// Whether the department reported it resolved and nobody reopened it
    /// since (checked on site or not yet).
    pub fn is_resolved(self) -> bool {
        matches!(
            self,
            CaseStatus::Resolved | CaseStatus::Verified | CaseStatus::Rated | CaseStatus::Closed
        )
    }

    /// Whether the grid leader confirmed on site that it is done.
    pub fn is_done_on_site(self) -> bool {
        matches!(
            self,
            CaseStatus::Verified | CaseStatus::Rated | CaseStatus::Closed
        )
    }
}

impl std::fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The grid leader's on-site check of a resolved case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub done: bool,
    pub note: String,
    pub photo_ids: Vec<PhotoId>,
    pub at: Millis,
}

/// The resident's face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Face {
    Smiley,
    Frowny,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub face: Face,
    pub comment: String,
    pub at: Millis,
}

/// What a grid leader writes when starting a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDraft {
    pub category: Category,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub location: Option<Location>,
    /// When the problem happened (or was found).
    pub occurred_at: Millis,
    #[serde(default)]
    pub proposed_deadline: Option<Millis>,
}

impl CaseDraft {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_text("title", &self.title, 1, MAX_TITLE_CHARS)?;
        check_single_line("title", &self.title)?;
        check_text("description", &self.description, 0, MAX_DESCRIPTION_CHARS)?;
        if let Some(location) = &self.location {
            location.validate()?;
        }
        check_time("occurred_at", self.occurred_at)?;
        if let Some(deadline) = self.proposed_deadline {
            check_time("proposed_deadline", deadline)?;
        }
        Ok(())
    }
}

/// A change to a draft; `None` leaves a field as it is. Clearing the location
/// or deadline is `Some(None)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<Location>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_deadline: Option<Option<Millis>>,
}

impl CaseEdit {
    pub fn is_empty(&self) -> bool {
        *self == CaseEdit::default()
    }
}

/// A case as it stands after all its operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: CaseId,
    pub status: CaseStatus,
    pub category: Category,
    pub title: String,
    pub description: String,
    pub location: Option<Location>,
    /// The grid the location falls in, decided where the grid map is known.
    pub grid_id: Option<String>,
    pub occurred_at: Millis,
    pub proposed_deadline: Option<Millis>,
    /// The deadline the centre set when dispatching; it wins over the proposal.
    pub deadline: Option<Millis>,
    pub department: Option<String>,
    pub chase_count: u32,
    pub photo_ids: Vec<PhotoId>,
    pub verification: Option<Verification>,
    pub rating: Option<Rating>,
    pub reported_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Case {
    /// The deadline that counts: the centre's if dispatched, else the proposal.
    pub fn effective_deadline(&self) -> Option<Millis> {
        self.deadline.or(self.proposed_deadline)
    }

    pub fn is_overdue(&self, now: Millis) -> bool {
        crate::deadline::is_overdue(
            self.effective_deadline(),
            self.status.awaits_handling(),
            now,
        )
    }

    /// A draft may be incomplete; what reaches the centre may not.
    pub fn check_ready_to_submit(&self) -> Result<(), InvalidInput> {
        if self.location.is_none() {
            return Err(InvalidInput::new(
                "location",
                "is required before the case is submitted",
            ));
        }
        Ok(())
    }
}

/// Text as a grid leader types it: bounded, and free of control characters that
/// would garble a dashboard or a CSV export (newlines and tabs are fine).
pub fn check_text(
    field: &'static str,
    text: &str,
    min_chars: usize,
    max_chars: usize,
) -> Result<(), InvalidInput> {
    let trimmed_len = text.trim().chars().count();
    if trimmed_len < min_chars {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    // Count lazily: a 10 MB paste must not be walked to the end just to refuse it.
    if text.chars().nth(max_chars).is_some() {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_single_line(field: &'static str, text: &str) -> Result<(), InvalidInput> {
    if text.contains(['\n', '\r']) {
        return Err(InvalidInput::new(field, "must be a single line"));
    }
    Ok(())
}

/// Times before 2000 or after 2200 are clock faults, not real events.
pub fn check_time(field: &'static str, t: Millis) -> Result<(), InvalidInput> {
    const YEAR_2000: Millis = 946_684_800_000;
    const YEAR_2200: Millis = 7_258_118_400_000;
    if !(YEAR_2000..YEAR_2200).contains(&t) {
        return Err(InvalidInput::new(field, "is not a plausible time"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> CaseDraft {
        CaseDraft {
            category: Category::CollapsedManhole,
            title: "下水井塌陷".into(),
            description: "暴雨后人民大街井盖塌陷，一辆车掉入".into(),
            location: None,
            occurred_at: 1_790_000_000_000,
            proposed_deadline: None,
        }
    }

    #[test]
    fn a_plain_draft_is_valid() {
        draft().validate().unwrap();
    }

    #[test]
    fn empty_title_and_huge_description_are_refused() {
        let mut d = draft();
        d.title = "   ".into();
        assert_eq!(d.validate().unwrap_err().field, "title");
        let mut d = draft();
        d.description = "x".repeat(10 * 1024 * 1024);
        let err = d.validate().unwrap_err();
        assert_eq!(err.field, "description");
        assert!(err.reason.contains("5000"));
    }

    #[test]
    fn control_characters_are_refused_but_newlines_kept() {
        let mut d = draft();
        d.description = "第一行\n第二行\t完".into();
        d.validate().unwrap();
        d.description = "bell\u{7}".into();
        assert_eq!(d.validate().unwrap_err().field, "description");
        let mut d = draft();
        d.title = "two\nlines".into();
        assert_eq!(d.validate().unwrap_err().field, "title");
    }

    #[test]
    fn status_names_round_trip() {
        for st in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
    }
}
