//! Errors of the pure domain rules. They name the field and the reason, never the
//! value: a case's text is a resident's words and must not leak into logs.

use crate::case::CaseStatus;

/// Input that a rule refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// An operation that the case's state, or the actor's role, does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {operation} a case that is {status}")]
    NotAllowedInStatus {
        operation: &'static str,
        status: CaseStatus,
    },
    #[error("a {role} may not {operation} a case")]
    NotAllowedForRole {
        operation: &'static str,
        role: &'static str,
    },
    #[error("the case must be created before anything else happens to it")]
    CaseNotCreated,
    #[error("the case already exists")]
    CaseAlreadyCreated,
}

/// Anything the pure rules can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Transition(#[from] TransitionError),
}
