//! What a reader may see of a case: the public (Open311 readers and
//! aggregators, the resident's rating page, a public export) or a member of
//! the centre's staff (their own exports).
//!
//! Never the reporter, the grid leader, the resident's contact details or
//! comment, nor photos. For the public, a case's words and place are shown
//! only for problems in public space (a collapsed manhole, clutter in a
//! stairwell): for a family dispute, a loan or a medical dispute the
//! description names people and the point is their home, so those show only
//! their kind, progress and times. Staff see the words and place of the
//! cases they answer for, in an export as on the dashboard. What was
//! withheld is listed ([`PublicCase::withheld`]), so an export says so.

use gridcase_core::case::{Case, CaseStatus, Category, Face};
use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

use crate::names::Departments;

/// Whether a category's words and place may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publicity {
    /// A problem in public space: title, description, address and point shown.
    PublicSpace,
    /// A matter between people: only kind, status, department and times.
    Personal,
}

/// Decided per category, exhaustively: a new category must choose.
pub fn publicity(category: Category) -> Publicity {
    use Category::*;
    match category {
        Environment | StairwellClutter | CollapsedManhole | SafetyHazard => Publicity::PublicSpace,
        LandDispute | PrivateLending | LeakingHouse | GrainSubsidy | NeighbourDispute
        | FamilyDispute | UnpaidWages | LabourDispute | ConsumerDispute | TrainingRefund
        | FlatNotHandedOver | MedicalDispute | TrafficAccident | FinancialLoan
        | LandRequisition | Rental | WorkInjury | FraudPrevention | Other => Publicity::Personal,
    }
}

/// Who reads a case, and so what they may see of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Anyone: private categories' words and place are withheld.
    Public,
    /// A member of the centre's staff reading a case they answer for.
    Staff,
}

/// The fields [`PublicCase::withheld`] names.
pub const WITHHELD_FIELDS: [&str; 4] = ["title", "description", "address", "location"];

/// A case as a reader may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicCase {
    pub id: CaseId,
    pub status: CaseStatus,
    pub category: Category,
    pub grid_id: Option<String>,
    /// The name of the department of the dispatch in force.
    pub department: Option<String>,
    /// The deadline of the dispatch in force.
    pub deadline: Option<Millis>,
    pub reported_at: Millis,
    pub updated_at: Millis,
    pub resolved_at: Option<Millis>,
    pub face: Option<Face>,
    /// Only for [`Publicity::PublicSpace`].
    pub title: Option<String>,
    pub description: Option<String>,
    pub address: Option<String>,
    /// `(lat, lon)`.
    pub point: Option<(f64, f64)>,
    /// Which of [`WITHHELD_FIELDS`] this reader may not see (empty: all shown).
    pub withheld: Vec<&'static str>,
}

impl PublicCase {
    /// What anyone may see.
    pub fn of(case: &Case, resolved_at: Option<Millis>, departments: &Departments) -> PublicCase {
        Self::read_by(Reader::Public, case, resolved_at, departments)
    }

    /// What `reader` may see.
    pub fn read_by(
        reader: Reader,
        case: &Case,
        resolved_at: Option<Millis>,
        departments: &Departments,
    ) -> PublicCase {
        let shown = reader == Reader::Staff || publicity(case.category) == Publicity::PublicSpace;
        let location = case.location.as_ref().filter(|_| shown);
        PublicCase {
            id: case.id,
            status: case.status,
            category: case.category,
            grid_id: case.grid_id.clone(),
            department: departments.name_of_opt(case.department.as_deref()),
            deadline: case.deadline,
            reported_at: case.created_at,
            updated_at: case.updated_at,
            resolved_at,
            face: case.rating.as_ref().map(|r| r.face),
            title: shown.then(|| case.title.clone()),
            description: shown.then(|| case.description.clone()),
            address: location.and_then(|l| l.address.clone()),
            point: location.map(|l| (l.point.lat, l.point.lon)),
            withheld: if shown {
                Vec::new()
            } else {
                WITHHELD_FIELDS.to_vec()
            },
        }
    }

    /// Resolved at or before the deadline of the dispatch in force; `None`
    /// while that is not known yet (see [`crate::figures`] for the rule).
    pub fn on_time(&self, now: Millis) -> Option<bool> {
        let deadline = self.deadline?;
        if self.status.awaits_handling() {
            return (deadline < now).then_some(false);
        }
        if self.status == CaseStatus::Cancelled {
            return None;
        }
        self.resolved_at.map(|r| r <= deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridcase_core::location::{GeoPoint, Location};

    fn case(category: Category) -> Case {
        Case {
            id: CaseId::new(),
            status: CaseStatus::Dispatched,
            category,
            title: "张三家漏水".into(),
            description: "张三说楼上李四家漏水".into(),
            location: Some(Location {
                point: GeoPoint::new(42.87, 125.07, 5.0).unwrap(),
                address: Some("人民大街 5 号 3 单元".into()),
                source: gridcase_core::location::LocationSource::Typed,
            }),
            grid_id: Some("g-1".into()),
            occurred_at: 1_750_000_000_000,
            proposed_deadline: None,
            deadline: Some(1_750_100_000_000),
            department: Some("住建局".into()),
            chase_count: 0,
            photo_ids: vec![],
            verification: None,
            rating: None,
            reported_by: "leader-account".into(),
            created_at: 1_750_000_000_000,
            updated_at: 1_750_000_000_000,
        }
    }

    #[test]
    fn a_personal_matter_shows_neither_words_nor_place_to_the_public() {
        let none = Departments::default();
        let p = PublicCase::of(&case(Category::FamilyDispute), None, &none);
        assert_eq!(p.withheld, WITHHELD_FIELDS);
        assert_eq!(
            (p.title, p.description, p.address, p.point),
            (None, None, None, None)
        );
        assert_eq!(p.department.as_deref(), Some("住建局"));
        let p = PublicCase::of(&case(Category::CollapsedManhole), None, &none);
        assert!(p.title.is_some() && p.address.is_some() && p.point.is_some());
        assert!(p.withheld.is_empty());
        let p = PublicCase::read_by(Reader::Staff, &case(Category::FamilyDispute), None, &none);
        assert!(p.title.is_some() && p.address.is_some() && p.point.is_some());
        assert!(p.withheld.is_empty());
    }

    #[test]
    fn on_time_is_known_once_resolved_or_overdue() {
        let mut c = case(Category::Environment);
        let deadline = c.deadline.unwrap();
        assert_eq!(
            PublicCase::of(&c, None, &Departments::default()).on_time(deadline - 1),
            None
        );
        assert_eq!(
            PublicCase::of(&c, None, &Departments::default()).on_time(deadline + 1),
            Some(false)
        );
        c.status = CaseStatus::Resolved;
        assert_eq!(
            PublicCase::of(&c, Some(deadline), &Departments::default()).on_time(deadline + 9),
            Some(true)
        );
        assert_eq!(
            PublicCase::of(&c, Some(deadline + 1), &Departments::default()).on_time(0),
            Some(false)
        );
    }
}
