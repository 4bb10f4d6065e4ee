//! What anyone may see of a case: Open311 readers, aggregators and exports.
//!
//! Never the reporter, the grid leader, the resident's contact details or
//! comment, nor photos. A case's words and place are shown only for problems
//! in public space (a collapsed manhole, clutter in a stairwell): for a family
//! dispute, a loan or a medical dispute the description names people and the
//! point is their home, so those show only their kind, progress and times.

use gridcase_core::case::{Case, CaseStatus, Category, Face};
use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

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

/// The public face of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicCase {
    pub id: CaseId,
    pub status: CaseStatus,
    pub category: Category,
    pub grid_id: Option<String>,
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
}

impl PublicCase {
    pub fn of(case: &Case, resolved_at: Option<Millis>) -> PublicCase {
        let shown = publicity(case.category) == Publicity::PublicSpace;
        let location = case.location.as_ref().filter(|_| shown);
        PublicCase {
            id: case.id,
            status: case.status,
            category: case.category,
            grid_id: case.grid_id.clone(),
            department: case.department.clone(),
            deadline: case.deadline,
            reported_at: case.created_at,
            updated_at: case.updated_at,
            resolved_at,
            face: case.rating.as_ref().map(|r| r.face),
            title: shown.then(|| case.title.clone()),
            description: shown.then(|| case.description.clone()),
            address: location.and_then(|l| l.address.clone()),
            point: location.map(|l| (l.point.lat, l.point.lon)),
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
    fn a_personal_matter_shows_neither_words_nor_place() {
        let p = PublicCase::of(&case(Category::FamilyDispute), None);
        assert_eq!(
            (p.title, p.description, p.address, p.point),
            (None, None, None, None)
        );
        assert_eq!(p.department.as_deref(), Some("住建局"));
        let p = PublicCase::of(&case(Category::CollapsedManhole), None);
        assert!(p.title.is_some() && p.address.is_some() && p.point.is_some());
    }

    #[test]
    fn on_time_is_known_once_resolved_or_overdue() {
        let mut c = case(Category::Environment);
        let deadline = c.deadline.unwrap();
        assert_eq!(PublicCase::of(&c, None).on_time(deadline - 1), None);
        assert_eq!(PublicCase::of(&c, None).on_time(deadline + 1), Some(false));
        c.status = CaseStatus::Resolved;
        assert_eq!(
            PublicCase::of(&c, Some(deadline)).on_time(deadline + 9),
            Some(true)
        );
        assert_eq!(
            PublicCase::of(&c, Some(deadline + 1)).on_time(0),
            Some(false)
        );
    }
}
