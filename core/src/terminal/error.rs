use crate::error::{InvalidInput, TransitionError};
use crate::grid::GridError;
use crate::photo::PhotoError;
use crate::store::StoreError;

/// Everything the terminal API can refuse or fail at. Messages name fields and
/// reasons only: a resident's words never end up in an error or a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    NotAllowed(#[from] TransitionError),
    #[error("{what} was not found")]
    NotFound { what: &'static str },
    #[error("photo refused: {0}")]
    Photo(#[from] PhotoError),
    /// One of several photos of one step was refused (`index` from 0, in
    /// the order given); nothing of the step was stored.
    #[error("photo {} refused: {error}", index + 1)]
    PhotoIn { index: usize, error: PhotoError },
    /// A shortened id fits several; the candidates are whole ids.
    #[error("the {what} id fits {} {what}s; type more of it", candidates.len())]
    Ambiguous {
        what: &'static str,
        candidates: Vec<String>,
    },
    #[error("grid map refused: {0}")]
    Grid(#[from] GridError),
    #[error("storage failed: {0}")]
    Storage(StoreError),
    #[error("the terminal's store is closed")]
    Closed,
    #[cfg(feature = "sync")]
    #[error("sync failed: {0}")]
    Sync(crate::sync::SyncError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(i) => Error::Invalid(i),
            // The store met an op for a case it does not have.
            StoreError::Transition(TransitionError::CaseNotCreated) => {
                Error::NotFound { what: "case" }
            }
            StoreError::Transition(t) => Error::NotAllowed(t),
            StoreError::CaseNotFound => Error::NotFound { what: "case" },
            StoreError::Closed | StoreError::Interrupted => Error::Closed,
            other => Error::Storage(other),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(StoreError::Io(e))
    }
}
