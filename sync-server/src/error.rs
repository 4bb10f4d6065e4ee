//! Errors as the API answers them: an HTTP status and an [`ApiError`] body with a
//! stable `code`. Messages never contain case content (a resident's words), nor
//! the value that was refused — only where it was and why.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gridcase_core::error::{DomainError, TransitionError};
use gridcase_core::protocol::ApiError;
use serde::de::DeserializeOwned;

/// Stable error codes (the `code` of [`ApiError`] and of rejected ops).
pub mod codes {
    pub const UNAUTHORISED: &str = "unauthorised";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const TOO_LARGE: &str = "too_large";
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const PHOTO_HASH_MISMATCH: &str = "photo_hash_mismatch";
    pub const UPLOAD_OFFSET_MISMATCH: &str = "upload_offset_mismatch";
    pub const UPLOAD_BUSY: &str = "upload_busy";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const INTERNAL: &str = "internal";
    pub const ENROL_CODE_INVALID: &str = "enrol_code_invalid";
    pub const ENROL_CODE_USED: &str = "enrol_code_used";
    pub const ENROL_CODE_EXPIRED: &str = "enrol_code_expired";
    // Codes of rejected (or deferred) ops in a push.
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const NOT_ALLOWED: &str = "not_allowed";
    pub const UNKNOWN_CASE: &str = "unknown_case";
    pub const CASE_EXISTS: &str = "case_exists";
    pub const NOT_VISIBLE: &str = "not_visible";
    pub const FORBIDDEN: &str = "forbidden";
    pub const DUPLICATE_OP_ID: &str = "duplicate_op_id";
    pub const PHOTO_MISSING: &str = "photo_missing";
}

/// An error response: status plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub body: ApiError,
}

impl AppError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                code: code.to_string(),
                message: message.into(),
                field: None,
            },
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn code(&self) -> &str {
        &self.body.code
    }

    pub fn unauthorised(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED, message)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message).with_field(field)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_LARGE, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error (see the server log)",
        )
    }

    /// A failed I/O operation on the data folder: logged here, answered as internal.
    pub fn io(context: &str, err: std::io::Error) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::internal()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.body.code, self.body.message)?;
        if let Some(field) = &self.body.field {
            write!(f, " ({field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, _) = &err {
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                tracing::warn!(error = %err, "database busy");
                return Self::unavailable("the database is busy; try again");
            }
        }
        tracing::error!(error = %err, "database error");
        Self::internal()
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        tracing::error!(error = %err, "a blocking task failed");
        Self::internal()
    }
}

/// The stable code of an op the rules refuse.
pub fn rejection_code(err: &DomainError) -> &'static str {
    match err {
        DomainError::Invalid(_) => codes::INVALID_INPUT,
        DomainError::Transition(TransitionError::CaseNotCreated) => codes::UNKNOWN_CASE,
        DomainError::Transition(TransitionError::CaseAlreadyCreated) => codes::CASE_EXISTS,
        DomainError::Transition(_) => codes::NOT_ALLOWED,
    }
}

/// A JSON body, with errors as [`ApiError`]s: `too_large` past the route's body
/// limit, `invalid_request` (with the JSON path in `field`) for anything else.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::too_large("the request body is too large")
            } else {
                AppError::invalid("body", "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming where it went wrong (`push[2].device_time`) without
/// echoing what was there. Nesting is bounded by serde_json (128 levels).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        json_error(Some(path), err.inner())
    })?;
    de.end().map_err(|err| json_error(None, &err))?;
    Ok(value)
}

fn json_error(path: Option<String>, err: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", err.line(), err.column());
    let text = err.to_string();
    let message = match err.classify() {
        _ if text.starts_with("recursion limit exceeded") => {
            format!("JSON is nested too deeply ({at})")
        }
        Category::Syntax => format!("the body is not valid JSON ({at})"),
        Category::Eof => format!("the JSON ends too early ({at})"),
        Category::Io => format!("the body could not be read ({at})"),
        // serde's own messages may quote the refused value; only the ones that
        // name nothing but the schema are passed on.
        Category::Data if text.starts_with("missing field") => {
            let what = text.split(" at line").next().unwrap_or(&text);
            format!("{what} ({at})")
        }
        Category::Data => format!("a value has the wrong type or is not allowed here ({at})"),
    };
    let mut error = AppError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message);
    if let Some(path) = path.filter(|p| p != ".") {
        error = error.with_field(path);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridcase_core::protocol::SyncRequest;

    #[test]
    fn a_wrong_type_names_the_path_but_not_the_value() {
        let err = parse_json::<SyncRequest>(br#"{"cursor": "secret words"}"#).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_REQUEST);
        assert_eq!(err.body.field.as_deref(), Some("cursor"));
        assert!(!err.body.message.contains("secret"), "{}", err.body.message);
    }

    #[test]
    fn deep_nesting_and_trailing_garbage_are_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert!(
            err.body.message.contains("nested too deeply"),
            "{}",
            err.body.message
        );
        let err = parse_json::<SyncRequest>(b"{} x").unwrap_err();
        assert_eq!(err.code(), codes::INVALID_REQUEST);
    }
}
