use crate::error::{DomainError, InvalidInput, TransitionError};

/// What can go wrong in the local store. Messages name the problem, never the
/// case's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the case was not found")]
    CaseNotFound,
    #[error("the store was closed")]
    Closed,
    #[error("the database was interrupted")]
    Interrupted,
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data could not be read back: {0}")]
    Corrupt(String),
    #[error("the database was written by a newer version of Gridcase (schema {found}, this app knows {known})")]
    TooNew { found: i64, known: i64 },
}

impl StoreError {
    pub(crate) fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                StoreError::Interrupted
            }
            other => StoreError::Sqlite(other),
        }
    }
}

impl From<DomainError> for StoreError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(i) => StoreError::Invalid(i),
            DomainError::Transition(t) => StoreError::Transition(t),
        }
    }
}
