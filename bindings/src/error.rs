use gridcase_core::sync::SyncError;
use gridcase_core::terminal::Error as CoreError;

/// The one error type of the Gridcase API. Variants are what an app reacts to
/// differently; messages carry field names and reasons, never case content.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum GridcaseError {
    /// Bad input: which field, and why. Show it next to the field.
    #[error("{field}: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("{what} was not found")]
    NotFound { what: String },
    /// The case's state (or the role) does not allow this now.
    #[error("{reason}")]
    NotAllowed { reason: String },
    /// The photo could not be used (not an image, too large, broken...).
    #[error("photo refused: {reason}")]
    Photo { reason: String },
    /// The device's storage failed (disk full, database damaged...).
    #[error("storage failed: {reason}")]
    Storage { reason: String },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// Sync needs an enrolment first.
    #[error("not enrolled with a server")]
    NotEnrolled,
    /// No network path to the server; everything stays in the outbox.
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// The server is down, overloaded or the connection broke; try later.
    #[error("server unavailable: {reason}")]
    ServerUnavailable { reason: String },
    /// The server does not accept this terminal's token; enrol again.
    #[error("unauthorised")]
    Unauthorised,
    /// The server refused the request (a wrong enrolment code, say).
    #[error("rejected ({code}): {reason}")]
    Rejected { code: String, reason: String },
}

impl From<CoreError> for GridcaseError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(i) => i.into(),
            CoreError::NotAllowed(t) => GridcaseError::NotAllowed {
                reason: t.to_string(),
            },
            CoreError::NotFound { what } => GridcaseError::NotFound { what: what.into() },
            CoreError::Photo(p) => GridcaseError::Photo { reason: p.reason() },
            CoreError::PhotoIn { index, error } => GridcaseError::Photo {
                reason: format!("photo {}: {}", index + 1, error.reason()),
            },
            e @ CoreError::Ambiguous { what, .. } => GridcaseError::InvalidInput {
                field: format!("{what}_id"),
                reason: e.to_string(),
            },
            CoreError::Grid(g) => GridcaseError::InvalidInput {
                field: g.field(),
                reason: g.reason().to_string(),
            },
            CoreError::Storage(s) => {
                tracing::error!(error = %s, "storage failure");
                GridcaseError::Storage {
                    reason: s.to_string(),
                }
            }
            CoreError::Closed => GridcaseError::Closed,
            CoreError::Sync(e) => e.into(),
        }
    }
}

impl From<gridcase_core::InvalidInput> for GridcaseError {
    fn from(i: gridcase_core::InvalidInput) -> Self {
        GridcaseError::InvalidInput {
            field: i.field.to_owned(),
            reason: i.reason,
        }
    }
}

impl From<SyncError> for GridcaseError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotEnrolled => GridcaseError::NotEnrolled,
            SyncError::Offline { reason } => GridcaseError::Offline { reason },
            SyncError::ServerUnavailable { reason } => GridcaseError::ServerUnavailable { reason },
            SyncError::Unauthorised => GridcaseError::Unauthorised,
            SyncError::Refused { code, message } => GridcaseError::Rejected {
                code,
                reason: message,
            },
            SyncError::Protocol { reason } => GridcaseError::ServerUnavailable { reason },
            SyncError::InvalidServer { reason } => GridcaseError::InvalidInput {
                field: "server_url".into(),
                reason,
            },
            SyncError::Store(s) => CoreError::from(s).into(),
            SyncError::Io(e) => GridcaseError::Storage {
                reason: e.to_string(),
            },
        }
    }
}
