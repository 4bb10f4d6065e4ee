//! Errors as the API answers them: an HTTP status and an [`ApiError`] body with a
//! stable `code`. Messages never contain case content (a resident's words), nor
//! the value that was refused — only where it was and why.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gridcase_core::error::{DomainError, InvalidInput, TransitionError};
use gridcase_core::protocol::ApiError;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

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

/// Why a request was refused, as a stable code the dashboard translates
/// (`web/zh.js`, `web/en.js`: `reason_<code>`) and a terminal may: the
/// `reason` of [`ApiError`]. `code` says what kind of error it is; the reason
/// names the rule. The English `message` is for logs and programs.
pub mod reasons {
    // Any input.
    pub const REQUIRED: &str = "required";
    pub const TOO_LONG: &str = "too_long";
    pub const CONTROL_CHARACTERS: &str = "control_characters";
    pub const NOT_SINGLE_LINE: &str = "not_single_line";
    pub const IMPLAUSIBLE_TIME: &str = "implausible_time";
    pub const NOT_A_NUMBER: &str = "not_a_number";
    pub const NOT_AN_ID: &str = "not_an_id";
    pub const REPEATED: &str = "repeated";
    pub const WRONG_TYPE: &str = "wrong_type";
    pub const BAD_BODY: &str = "bad_body";
    /// A value the rules refuse for a reason without a code of its own.
    pub const INVALID: &str = "invalid";
    // Times and periods.
    pub const NOT_A_DATE: &str = "not_a_date";
    pub const IN_THE_PAST: &str = "in_the_past";
    pub const NO_PROPOSED_DEADLINE: &str = "no_proposed_deadline";
    pub const PERIOD_BACKWARDS: &str = "period_backwards";
    // The map, departments, staff, cases.
    pub const NO_GRID_MAP: &str = "no_grid_map";
    pub const NOT_A_UNIT: &str = "not_a_unit";
    pub const NOT_A_GRID: &str = "not_a_grid";
    pub const ALREADY_PLACED: &str = "already_placed";
    pub const NOT_UNPLACED: &str = "not_unplaced";
    pub const NOT_A_STATUS: &str = "not_a_status";
    pub const NOT_A_CATEGORY: &str = "not_a_category";
    pub const NO_SUCH_DEPARTMENT: &str = "no_such_department";
    pub const AMBIGUOUS_DEPARTMENT: &str = "ambiguous_department";
    pub const DEPARTMENT_NOT_SERVING: &str = "department_not_serving";
    pub const NOT_DISPATCHED: &str = "not_dispatched";
    pub const NAME_TAKEN: &str = "name_taken";
    pub const LOGIN_TAKEN: &str = "login_taken";
    pub const NO_SUCH_LOGIN: &str = "no_such_login";
    pub const NO_SUCH_ACCOUNT: &str = "no_such_account";
    pub const NO_SUCH_CASE: &str = "no_such_case";
    pub const AMBIGUOUS_CASE: &str = "ambiguous_case";
    pub const NO_SUCH_DEVICE: &str = "no_such_device";
    pub const NO_SUCH_KEY: &str = "no_such_key";
    pub const SPACES_IN_LOGIN: &str = "spaces_in_login";
    pub const PASSWORD_TOO_SHORT: &str = "password_too_short";
    pub const PASSWORD_TOO_LONG: &str = "password_too_long";
    pub const NEEDS_UNIT: &str = "needs_unit";
    pub const NEEDS_DEPARTMENT: &str = "needs_department";
    pub const UNIT_NOT_FOR_HANDLER: &str = "unit_not_for_handler";
    pub const DEPARTMENT_NOT_FOR_ROLE: &str = "department_not_for_role";
    pub const NO_GRID: &str = "no_grid";
    pub const NOT_A_ROLE: &str = "not_a_role";
    // Photos.
    pub const NOT_A_PICTURE: &str = "not_a_picture";
    pub const PICTURE_TOO_LARGE: &str = "picture_too_large";
    pub const PICTURE_DAMAGED: &str = "picture_damaged";
    pub const NOT_A_SHA256: &str = "not_a_sha256";
    // Who may act (HTTP 403 `forbidden`).
    pub const READ_ONLY: &str = "read_only";
    pub const DEPARTMENT_ONLY: &str = "department_only";
    pub const DISPATCHER_ONLY: &str = "dispatcher_only";
    pub const HELD_ELSEWHERE: &str = "held_elsewhere";
    pub const OUTSIDE_YOUR_AREA: &str = "outside_your_area";
    // What the case allows (HTTP 409 `not_allowed`).
    pub const NOT_ALLOWED_IN_STATUS: &str = "not_allowed_in_status";
    pub const NOT_ALLOWED_FOR_ROLE: &str = "not_allowed_for_role";
    pub const NO_LEVEL_ABOVE: &str = "no_level_above";
    pub const UNKNOWN_CASE: &str = "unknown_case";
    pub const CASE_EXISTS: &str = "case_exists";

    /// Every reason, for the check that the dashboard translates each.
    pub const ALL: &[&str] = &[
        REQUIRED,
        TOO_LONG,
        CONTROL_CHARACTERS,
        NOT_SINGLE_LINE,
        IMPLAUSIBLE_TIME,
        NOT_A_NUMBER,
        NOT_AN_ID,
        REPEATED,
        WRONG_TYPE,
        BAD_BODY,
        INVALID,
        NOT_A_DATE,
        IN_THE_PAST,
        NO_PROPOSED_DEADLINE,
        PERIOD_BACKWARDS,
        NO_GRID_MAP,
        NOT_A_UNIT,
        NOT_A_GRID,
        ALREADY_PLACED,
        NOT_UNPLACED,
        NOT_A_STATUS,
        NOT_A_CATEGORY,
        NO_SUCH_DEPARTMENT,
        AMBIGUOUS_DEPARTMENT,
        DEPARTMENT_NOT_SERVING,
        NOT_DISPATCHED,
        NAME_TAKEN,
        LOGIN_TAKEN,
        NO_SUCH_LOGIN,
        NO_SUCH_ACCOUNT,
        NO_SUCH_CASE,
        AMBIGUOUS_CASE,
        NO_SUCH_DEVICE,
        NO_SUCH_KEY,
        SPACES_IN_LOGIN,
        PASSWORD_TOO_SHORT,
        PASSWORD_TOO_LONG,
        NEEDS_UNIT,
        NEEDS_DEPARTMENT,
        UNIT_NOT_FOR_HANDLER,
        DEPARTMENT_NOT_FOR_ROLE,
        NO_GRID,
        NOT_A_ROLE,
        NOT_A_PICTURE,
        PICTURE_TOO_LARGE,
        PICTURE_DAMAGED,
        NOT_A_SHA256,
        READ_ONLY,
        DEPARTMENT_ONLY,
        DISPATCHER_ONLY,
        HELD_ELSEWHERE,
        OUTSIDE_YOUR_AREA,
        NOT_ALLOWED_IN_STATUS,
        NOT_ALLOWED_FOR_ROLE,
        NO_LEVEL_ABOVE,
        UNKNOWN_CASE,
        CASE_EXISTS,
    ];

    /// The reason of a refusal by the core's input rules, which give it in
    /// words. Tied to the core's wording by a test: a rewording there must
    /// choose its code here.
    pub fn of_input(reason: &str) -> &'static str {
        if reason.starts_with("must not be empty") || reason.starts_with("is required") {
            REQUIRED
        } else if reason.starts_with("must be at most") {
            TOO_LONG
        } else if reason.contains("control characters") {
            CONTROL_CHARACTERS
        } else if reason.contains("single line") {
            NOT_SINGLE_LINE
        } else if reason.contains("plausible time") {
            IMPLAUSIBLE_TIME
        } else if reason.starts_with("is not a local date") || reason.starts_with("is not a W3C") {
            NOT_A_DATE
        } else if reason.starts_with("must be after") {
            PERIOD_BACKWARDS
        } else if reason.starts_with("is not a valid") || reason.contains("UUID") {
            NOT_AN_ID
        } else {
            INVALID
        }
    }
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
                reason: None,
            },
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// The rule that refused it ([`reasons`]).
    pub fn because(mut self, reason: &'static str) -> Self {
        self.body.reason = Some(reason.to_string());
        self
    }

    pub fn reason(&self) -> Option<&str> {
        self.body.reason.as_deref()
    }

    /// A refusal by the core's input rules, naming the field.
    pub fn input(e: &InvalidInput) -> Self {
        Self::invalid(e.field, reasons::of_input(&e.reason), e.reason.clone())
    }

    pub fn code(&self) -> &str {
        &self.body.code
    }

    pub fn unauthorised(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED, message)
    }

    pub fn invalid(
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
            .with_field(field)
            .because(reason)
    }

    /// Not this person's step (HTTP 403 `forbidden`).
    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message).because(reason)
    }

    /// The case's status or the rules do not allow it (HTTP 409).
    pub fn not_allowed(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::NOT_ALLOWED, message).because(reason)
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
        StoreError::from(err).into()
    }
}

/// The one place a store error becomes an answer: what cannot be done now
/// is `unavailable` (the client tries again), anything else `internal`,
/// logged without the case's content.
impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Unavailable(_) | StoreError::Conflict { .. } => {
                tracing::warn!(error = %err, "database unavailable");
                Self::unavailable("the database is busy; try again")
            }
            StoreError::NotFound(what) => {
                tracing::error!(what, "a row the server needed is missing");
                Self::internal()
            }
            StoreError::Corrupt(_)
            | StoreError::TooNew { .. }
            | StoreError::Config(_)
            | StoreError::Backend(_) => {
                tracing::error!(error = %err, "database error");
                Self::internal()
            }
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        tracing::error!(error = %err, "a blocking task failed");
        Self::internal()
    }
}

/// A refusal by the case rules as the API answers it: 400 for input (with
/// the field), 409 for a step the case or the role does not allow.
pub fn refused(err: &DomainError) -> AppError {
    match err {
        DomainError::Invalid(i) => AppError::input(i),
        DomainError::Transition(t) => {
            let reason = match t {
                TransitionError::NotAllowedInStatus { .. } => reasons::NOT_ALLOWED_IN_STATUS,
                TransitionError::NotAllowedForRole { .. } => reasons::NOT_ALLOWED_FOR_ROLE,
                TransitionError::CaseNotCreated => reasons::UNKNOWN_CASE,
                TransitionError::CaseAlreadyCreated => reasons::CASE_EXISTS,
            };
            AppError::new(StatusCode::CONFLICT, rejection_code(err), err.to_string())
                .because(reason)
        }
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
                AppError::invalid(
                    "body",
                    reasons::BAD_BODY,
                    "the request body could not be read",
                )
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
    let reason = match err.classify() {
        Category::Data if text.starts_with("missing field") => reasons::REQUIRED,
        Category::Data => reasons::WRONG_TYPE,
        _ => reasons::BAD_BODY,
    };
    let mut error =
        AppError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message).because(reason);
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
    fn the_cores_input_reasons_have_codes() {
        use gridcase_core::case::check_text;
        let code = |r: Result<(), InvalidInput>| reasons::of_input(&r.unwrap_err().reason);
        assert_eq!(code(check_text("note", " ", 1, 10)), reasons::REQUIRED);
        assert_eq!(code(check_text("note", "abcdef", 0, 3)), reasons::TOO_LONG);
        assert_eq!(
            code(check_text("note", "a\u{7}b", 0, 10)),
            reasons::CONTROL_CHARACTERS
        );
        assert_eq!(
            code(gridcase_core::case::check_time("deadline", 5)),
            reasons::IMPLAUSIBLE_TIME
        );
        let zone = gridcase_core::zone::Zone::default();
        assert_eq!(
            reasons::of_input(&zone.parse_local("deadline", "soon").unwrap_err().reason),
            reasons::NOT_A_DATE
        );
        assert_eq!(
            reasons::of_input(&gridcase_core::ids::CaseId::parse("x").unwrap_err().reason),
            reasons::NOT_AN_ID
        );
        assert!(reasons::ALL.iter().all(|r| !r.is_empty()));
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
