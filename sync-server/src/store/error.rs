//! What can go wrong in the store, whatever the backend. Mapped to the API's
//! answer once, in [`crate::error`] (`impl From<StoreError> for AppError`);
//! the admin commands map it to their own [`crate::admin::AdminError`].

/// A store operation's failure. Messages name the problem, never a
/// resident's words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What the operation needed is not there (a row it must update).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A constraint of the database decided a race (two instances inserting
    /// the same op id, the same case): the writer that lost is run again by
    /// [`super::Store::write`], and sees the winner. Surfaces only when it
    /// keeps losing.
    #[error("a concurrent change won: {what}")]
    Conflict { what: String },
    /// The database cannot answer now (busy, a connection lost, the pool
    /// exhausted, shutting down): try again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not read back (a case's JSON, an id).
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
    /// The database was written by a newer server.
    #[error("the database has schema version {found}, newer than this server knows ({known}); upgrade the server")]
    TooNew { found: i64, known: i64 },
    /// The database cannot be used as configured (a URL that does not
    /// parse, TLS asked for).
    #[error("{0}")]
    Config(String),
    /// Anything else the database reported (logged where it is answered).
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{what}: {e}"))
    }

    /// Whether trying the whole transaction again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Conflict { .. }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, _) = &err {
            match e.code {
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return StoreError::Unavailable("the database is busy".into())
                }
                rusqlite::ErrorCode::ConstraintViolation
                    if matches!(
                        e.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    return StoreError::Conflict {
                        what: err.to_string(),
                    }
                }
                _ => {}
            }
        }
        StoreError::Backend(err.to_string())
    }
}

impl From<gridcase_sql::MigrationError> for StoreError {
    fn from(e: gridcase_sql::MigrationError) -> Self {
        match e {
            gridcase_sql::MigrationError::TooNew { found, known } => {
                StoreError::TooNew { found, known }
            }
            gridcase_sql::MigrationError::Sqlite(e) => e.into(),
        }
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Backend(format!("a database task failed: {e}"))
    }
}
