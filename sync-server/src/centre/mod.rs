//! The centre (综治中心): staff and departments, dashboard sessions, the case
//! queue and the centre's steps on a case, the deadline scheduler, and the
//! residents' one-time rating links.
//!
//! Every step the centre takes is an ordinary op recorded through
//! [`crate::cases::append_server_op`], so the rules of
//! [`gridcase_core::case::next_status`] decide it and the grid leader's
//! terminal pulls it like any other. Who may see and act on which case is
//! decided in one place, [`staff::Staff`].

pub mod actions;
pub mod department_photo;
pub mod desk;
pub mod queue;
pub mod rating_link;
pub mod scheduler;
pub mod session;
pub mod staff;

use axum::routing::{get, post};
use axum::Router;
use gridcase_core::time::{Millis, DAY, HOUR, MINUTE};

use crate::AppState;

/// Error codes of the centre's endpoints, besides [`crate::error::codes`].
pub mod codes {
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    pub const SESSION_EXPIRED: &str = "session_expired";
    pub const CSRF_FAILED: &str = "csrf_failed";
}

/// The centre's settings.
#[derive(Debug, Clone)]
pub struct CentreConfig {
    /// How long a dashboard login lasts.
    pub session_ttl: Millis,
    /// Wrong passwords in a row before a login is refused for `login_lockout`.
    pub login_max_failures: u32,
    pub login_lockout: Millis,
    /// How often the deadline scheduler looks at the cases; `None`: never
    /// (tests run its tick by hand).
    pub scheduler_period: Option<std::time::Duration>,
    /// How long before its deadline a case is chased as "near".
    pub near_deadline: Millis,
    /// After this many chases an unfinished case goes to the level above;
    /// 0: never automatically.
    pub escalate_after_chases: u32,
    /// How long a resident's rating link stays valid.
    pub rating_link_ttl: Millis,
    /// The server's address as residents' phones reach it (`https://…`), for
    /// rating links; `None`: the address the terminal used.
    pub public_url: Option<String>,
}

impl Default for CentreConfig {
    fn default() -> Self {
        CentreConfig {
            session_ttl: 12 * HOUR,
            login_max_failures: 5,
            login_lockout: 15 * MINUTE,
            scheduler_period: Some(std::time::Duration::from_secs(60)),
            near_deadline: DAY,
            escalate_after_chases: 3,
            rating_link_ttl: 7 * DAY,
            public_url: None,
        }
    }
}

/// The centre's routes: the dashboard's JSON API under `/v1/centre`, the
/// terminal's rating-link request, and the residents' rating page.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/centre/login", post(session::login_handler))
        .route("/v1/centre/logout", post(session::logout_handler))
        .route("/v1/centre/me", get(session::me_handler))
        .route("/v1/centre/departments", get(queue::departments_handler))
        .route("/v1/centre/grids", get(queue::grids_handler))
        .route("/v1/centre/cases", get(queue::queue_handler))
        .route("/v1/centre/cases/{id}", get(queue::case_handler))
        .route(
            "/v1/centre/cases/{id}/photos/{sha}",
            get(queue::photo_handler),
        )
        .route(
            "/v1/centre/cases/{id}/photos",
            post(department_photo::upload_handler).layer(axum::extract::DefaultBodyLimit::max(
                gridcase_core::protocol::MAX_PHOTO_BYTES as usize,
            )),
        )
        .route(
            "/v1/centre/cases/{id}/{action}",
            post(actions::action_handler),
        )
        .route(
            "/v1/cases/{id}/rating-link",
            post(rating_link::issue_handler),
        )
        .route(
            "/r/{token}",
            get(rating_link::page_handler).post(rating_link::rate_handler),
        )
}

/// Random bytes from the OS, as hex.
pub(crate) fn random_hex<const N: usize>() -> Result<String, crate::error::AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| {
        tracing::error!(error = %e, "the OS gave no randomness");
        crate::error::AppError::internal()
    })?;
    Ok(hex::encode(buf))
}
