//! The one place that decides which operation is allowed in which state, by whom,
//! and what state follows. Terminal, server and dashboard all ask this function.

use super::CaseStatus::{self, *};
use crate::error::TransitionError;
use crate::op::{OpKind, Role};

pub fn operation_name(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Create { .. } => "create",
        OpKind::Edit { .. } => "edit",
        OpKind::AttachPhoto { .. } => "attach a photo to",
        OpKind::Submit => "submit",
        OpKind::Cancel { .. } => "cancel",
        OpKind::Receive => "receive",
        OpKind::Dispatch { .. } => "dispatch",
        OpKind::Accept => "accept",
        OpKind::Progress { .. } => "report progress on",
        OpKind::Resolve { .. } => "resolve",
        OpKind::Escalate { .. } => "escalate",
        OpKind::Chase { .. } => "chase",
        OpKind::Verify { .. } => "verify",
        OpKind::Rate { .. } => "rate",
        OpKind::Close => "close",
        OpKind::Place { .. } => "place",
    }
}

/// Who may perform an operation at all.
fn roles_for(kind: &OpKind) -> &'static [Role] {
    use Role::*;
    match kind {
        // Residents report by QR code; dispatchers record walk-ins at the centre.
        OpKind::Create { .. } | OpKind::Edit { .. } | OpKind::Submit => {
            &[GridLeader, Resident, Dispatcher]
        }
        OpKind::AttachPhoto { .. } => &[GridLeader, Resident, Dispatcher, Department],
        OpKind::Cancel { .. } => &[GridLeader, Dispatcher],
        OpKind::Receive => &[System],
        OpKind::Dispatch { .. } => &[Dispatcher],
        OpKind::Accept | OpKind::Progress { .. } | OpKind::Resolve { .. } => &[Department],
        OpKind::Escalate { .. } | OpKind::Chase { .. } | OpKind::Close => &[Dispatcher, System],
        OpKind::Verify { .. } => &[GridLeader],
        OpKind::Rate { .. } => &[Resident],
        OpKind::Place { .. } => &[Dispatcher],
    }
}

/// Decides whether `kind` may happen to a case in `status` (`None`: the case does
/// not exist yet) at the hands of `role`, and returns the status that follows.
pub fn next_status(
    status: Option<CaseStatus>,
    kind: &OpKind,
    role: Role,
) -> Result<CaseStatus, TransitionError> {
    let operation = operation_name(kind);
    if !roles_for(kind).contains(&role) {
        return Err(TransitionError::NotAllowedForRole {
            operation,
            role: role.as_str(),
        });
    }
    let Some(status) = status else {
        return match kind {
            OpKind::Create { .. } => Ok(Draft),
            _ => Err(TransitionError::CaseNotCreated),
        };
    };
    let next = match (kind, status) {
        (OpKind::Create { .. }, _) => return Err(TransitionError::CaseAlreadyCreated),
        (OpKind::Edit { .. }, Draft) => Some(Draft),
        // Follow-up photos are welcome while the case lives.
        (OpKind::AttachPhoto { .. }, s) if !s.is_final() => Some(s),
        (OpKind::Submit, Draft) => Some(Submitted),
        // A grid leader withdraws only what the centre has not started on.
        (OpKind::Cancel { .. }, Draft | Submitted | Received) if role == Role::GridLeader => {
            Some(Cancelled)
        }
        (OpKind::Cancel { .. }, s) if role == Role::Dispatcher && !s.is_final() && s != Draft => {
            Some(Cancelled)
        }
        (OpKind::Receive, Submitted) => Some(Received),
        // Dispatching again is reassignment.
        (OpKind::Dispatch { .. }, Received | Escalated | Reopened | Dispatched | InProgress) => {
            Some(Dispatched)
        }
        (OpKind::Accept, Dispatched | Reopened) => Some(InProgress),
        (OpKind::Progress { .. }, InProgress) => Some(InProgress),
        (OpKind::Resolve { .. }, Dispatched | InProgress | Reopened) => Some(Resolved),
        (OpKind::Escalate { .. }, Received | Dispatched | InProgress | Reopened) => Some(Escalated),
        (OpKind::Chase { .. }, s @ (Received | Dispatched | InProgress | Reopened | Escalated)) => {
            Some(s)
        }
        (OpKind::Verify { done: true, .. }, Resolved) => Some(Verified),
        (OpKind::Verify { done: false, .. }, Resolved) => Some(Reopened),
        (OpKind::Rate { face, .. }, Verified) => Some(match face {
            super::Face::Smiley => Rated,
            super::Face::Frowny => Reopened,
        }),
        (OpKind::Close, Verified | Rated) => Some(Closed),
        // Filing a case under a grid changes who sees it, not where it stands.
        (OpKind::Place { .. }, s) if !s.is_final() && s != Draft => Some(s),
        _ => None,
    };
    next.ok_or(TransitionError::NotAllowedInStatus { operation, status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Face;

    fn verify(done: bool) -> OpKind {
        OpKind::Verify {
            done,
            note: String::new(),
            photo_ids: vec![],
        }
    }

    #[test]
    fn closed_and_cancelled_accept_nothing() {
        let kinds = [
            OpKind::Submit,
            OpKind::Accept,
            OpKind::Close,
            OpKind::Chase {
                note: String::new(),
            },
            verify(true),
        ];
        for status in [Closed, Cancelled] {
            for kind in &kinds {
                for role in [
                    Role::GridLeader,
                    Role::Dispatcher,
                    Role::System,
                    Role::Department,
                ] {
                    assert!(next_status(Some(status), kind, role).is_err());
                }
            }
        }
    }

    #[test]
    fn only_a_resident_rates_and_only_a_grid_leader_verifies() {
        let rate = OpKind::Rate {
            face: Face::Smiley,
            comment: String::new(),
        };
        assert_eq!(
            next_status(Some(Verified), &rate, Role::Resident),
            Ok(Rated)
        );
        assert!(matches!(
            next_status(Some(Verified), &rate, Role::GridLeader),
            Err(TransitionError::NotAllowedForRole { .. })
        ));
        assert_eq!(
            next_status(Some(Resolved), &verify(false), Role::GridLeader),
            Ok(Reopened)
        );
        assert!(next_status(Some(Resolved), &verify(true), Role::Department).is_err());
    }

    #[test]
    fn a_grid_leader_cannot_cancel_what_is_being_handled() {
        let cancel = OpKind::Cancel {
            reason: "重复".into(),
        };
        assert_eq!(
            next_status(Some(Submitted), &cancel, Role::GridLeader),
            Ok(Cancelled)
        );
        assert!(next_status(Some(InProgress), &cancel, Role::GridLeader).is_err());
        assert_eq!(
            next_status(Some(InProgress), &cancel, Role::Dispatcher),
            Ok(Cancelled)
        );
    }

    #[test]
    fn the_error_says_what_and_in_which_state() {
        let err = next_status(Some(Draft), &verify(true), Role::GridLeader).unwrap_err();
        assert_eq!(err.to_string(), "cannot verify a case that is draft");
    }

    #[test]
    fn editing_is_only_for_drafts() {
        let edit = OpKind::Edit {
            edit: Default::default(),
        };
        assert_eq!(next_status(Some(Draft), &edit, Role::GridLeader), Ok(Draft));
        for st in CaseStatus::ALL.into_iter().filter(|s| *s != Draft) {
            assert!(next_status(Some(st), &edit, Role::GridLeader).is_err());
        }
    }
}
