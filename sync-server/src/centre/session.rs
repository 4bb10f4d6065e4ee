//! Dashboard sessions: password login, a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie (only its SHA-256 is stored), expiry, logout, and
//! the CSRF checks every state-changing request passes: the per-session token
//! (the `X-CSRF-Token` header, or a `csrf_token` form field) and, when the
//! browser says where the request comes from, the same origin.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gridcase_core::time::{now_millis, Millis, MINUTE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codes;
use super::staff::{self, load_staff, Staff};
use crate::accounts::sha256;
use crate::error::{parse_json, reasons, AppError};
use crate::store::staff::SessionRow;
use crate::store::{ReadTx, StoreError};
use crate::AppState;

pub const SESSION_COOKIE: &str = "gridcase_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const CSRF_FIELD: &str = "csrf_token";
const MAX_COOKIE_TOKEN_CHARS: usize = 200;

/// A logged-in member of staff. Extracting it is the authentication.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub staff: Staff,
    pub csrf_token: String,
    pub expires_at: Millis,
    token_hash: Vec<u8>,
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    // A cookie header is `a=b; c=d`; only ours matters and its value is hex.
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_TOKEN_CHARS)
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token =
            session_token(&parts.headers).ok_or_else(|| AppError::unauthorised("log in first"))?;
        let hash = sha256(token.as_bytes());
        let now = now_millis();
        let found = state
            .store
            .read(move |tx| {
                let hash = hash.clone();
                Box::pin(async move {
                    let Some(row) = tx.staff_session(&hash).await? else {
                        return Ok::<_, StoreError>(None);
                    };
                    let staff = load_staff(tx, &row.staff_id).await?;
                    Ok(staff.map(|staff| StaffSession {
                        staff,
                        csrf_token: row.csrf_token,
                        expires_at: row.expires_at,
                        token_hash: hash,
                    }))
                })
            })
            .await?;
        match found {
            None => Err(AppError::unauthorised(
                "the session is unknown or ended; log in again",
            )),
            Some(session) if session.expires_at <= now => Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                codes::SESSION_EXPIRED,
                "the session has expired; log in again",
            )),
            Some(session) => Ok(session),
        }
    }
}

fn csrf_refused(message: &str) -> AppError {
    AppError::new(StatusCode::FORBIDDEN, codes::CSRF_FAILED, message)
}

/// Refuses a request a browser says comes from another site. Requests without
/// `Origin` (terminals, scripts) pass here; the CSRF token still guards them.
pub(crate) fn check_origin(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), AppError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same_host = authority.is_some() && authority == host;
        let public = public_url.is_some_and(|u| u.trim_end_matches('/') == origin);
        if !same_host && !public {
            return Err(csrf_refused("a request from another site is refused"));
        }
    } else if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return Err(csrf_refused("a request from another site is refused"));
        }
    }
    Ok(())
}

/// The CSRF check for a request whose body is not a form (a photo upload):
/// same origin and the session's token in the header.
pub(crate) fn check_csrf_header(
    headers: &HeaderMap,
    session: &StaffSession,
    public_url: Option<&str>,
) -> Result<(), AppError> {
    check_origin(headers, public_url)?;
    match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        Some(t) if same_secret(t, &session.csrf_token) => Ok(()),
        Some(_) => Err(csrf_refused("the CSRF token does not match the session")),
        None => Err(csrf_refused(&format!(
            "the {CSRF_HEADER} header is required"
        ))),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guess was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// A body as JSON, or as an HTML form's fields; an empty body is `{}`.
pub(crate) fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, AppError> {
    if is_form(headers) {
        serde_urlencoded::from_bytes(bytes).map_err(|_| {
            AppError::invalid(
                "body",
                reasons::WRONG_TYPE,
                "a form field is missing or has the wrong type",
            )
        })
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        parse_json(b"{}")
    } else {
        parse_json(bytes)
    }
}

async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::too_large("the request body is too large")
        } else {
            AppError::invalid(
                "body",
                reasons::BAD_BODY,
                "the request body could not be read",
            )
        }
    })
}

/// A state-changing request from a logged-in member of staff: same origin,
/// the session's CSRF token, and a body of `T` (JSON or form).
pub struct StaffPost<T> {
    pub session: StaffSession,
    pub body: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for StaffPost<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let (mut parts, body) = req.into_parts();
        check_origin(&parts.headers, state.centre.public_url.as_deref())?;
        let session = StaffSession::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let bytes = body_bytes(Request::from_parts(parts, body), state).await?;
        let sent = match headers.get(CSRF_HEADER) {
            Some(v) => v.to_str().ok().map(str::to_string),
            None if is_form(&headers) => serde_urlencoded::from_bytes::<CsrfField>(&bytes)
                .ok()
                .and_then(|f| f.csrf_token),
            None => None,
        };
        match sent {
            Some(t) if same_secret(&t, &session.csrf_token) => {}
            Some(_) => return Err(csrf_refused("the CSRF token does not match the session")),
            None => {
                return Err(csrf_refused(&format!(
                    "the {CSRF_HEADER} header (or the {CSRF_FIELD} form field) is required"
                )))
            }
        }
        let body = parse_body(&headers, &bytes)?;
        Ok(StaffPost { session, body })
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

/// What the dashboard needs to know about its session.
#[derive(Debug, Serialize)]
pub struct Me {
    pub staff: Staff,
    pub department_name: Option<String>,
    pub csrf_token: String,
    pub expires_at: Millis,
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue, AppError> {
    let secure = state
        .centre
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).map_err(|_| AppError::internal())
}

fn login_failed() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        codes::LOGIN_FAILED,
        "wrong login or password",
    )
}

async fn department_name(tx: &mut ReadTx<'_>, staff: &Staff) -> Result<Option<String>, StoreError> {
    Ok(match &staff.department_id {
        Some(id) => tx.load_department(id).await?.map(|d| d.name),
        None => None,
    })
}

/// `POST /v1/centre/login` (JSON or form): sets the session cookie.
pub(crate) async fn login_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, AppError> {
    check_origin(&headers, state.centre.public_url.as_deref())?;
    let req: LoginRequest = parse_body(&headers, &bytes)?;
    let Ok(login) = staff::normalise_login(&req.login) else {
        return Err(login_failed());
    };
    let now = now_millis();
    let row = {
        let login = login.clone();
        state
            .store
            .read(move |tx| {
                let login = login.clone();
                Box::pin(async move { tx.staff_credentials(&login).await })
            })
            .await?
            .map(|c| (c.staff_id, c.password_hash, c.locked_until))
    };
    if let Some((_, _, Some(until))) = &row {
        if *until > now {
            let minutes = (until - now + MINUTE - 1) / MINUTE;
            return Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::TOO_MANY_ATTEMPTS,
                format!("too many wrong passwords; try again in {minutes} minutes"),
            ));
        }
    }
    let phc = row
        .as_ref()
        .map_or_else(|| staff::decoy_hash().to_string(), |(_, h, _)| h.clone());
    let password = req.password;
    let matches =
        tokio::task::spawn_blocking(move || staff::verify_password(&phc, &password)).await?;
    let Some((staff_id, _, _)) = row else {
        return Err(login_failed());
    };
    let config = state.centre.clone();
    if !matches {
        let lock_until = now + config.login_lockout;
        let max_failures = config.login_max_failures;
        let locked = state
            .store
            .write(move |tx| {
                let staff_id = staff_id.clone();
                Box::pin(async move {
                    tx.count_wrong_password(&staff_id, max_failures, lock_until)
                        .await
                })
            })
            .await
            .map_err(AppError::from)?;
        if locked {
            tracing::warn!("a staff login was locked after repeated wrong passwords");
        }
        return Err(login_failed());
    }
    let token = super::random_hex::<32>()?;
    let csrf_token = super::random_hex::<32>()?;
    let expires_at = now + config.session_ttl;
    let me = {
        let (token_hash, csrf_token) = (sha256(token.as_bytes()), csrf_token.clone());
        state
            .store
            .write(move |tx| {
                let session = SessionRow {
                    staff_id: staff_id.clone(),
                    csrf_token: csrf_token.clone(),
                    expires_at,
                };
                let token_hash = token_hash.clone();
                Box::pin(async move {
                    tx.start_session(&token_hash, &session, now).await?;
                    let staff = load_staff(tx, &session.staff_id)
                        .await?
                        .ok_or_else(AppError::internal)?;
                    Ok::<_, AppError>(Me {
                        department_name: department_name(tx, &staff).await?,
                        staff,
                        csrf_token: session.csrf_token,
                        expires_at,
                    })
                })
            })
            .await?
    };
    tracing::info!(staff = %me.staff.id, role = me.staff.role.as_str(), "staff logged in");
    let cookie = cookie(&state, &token, config.session_ttl / 1000)?;
    Ok(([(header::SET_COOKIE, cookie)], Json(me)).into_response())
}

/// `POST /v1/centre/logout`: ends the session and clears the cookie.
pub(crate) async fn logout_handler(
    State(state): State<AppState>,
    post: StaffPost<serde_json::Value>,
) -> Result<Response, AppError> {
    let hash = post.session.token_hash.clone();
    state
        .store
        .write(move |tx| {
            let hash = hash.clone();
            Box::pin(async move { tx.end_session(&hash).await })
        })
        .await
        .map_err(AppError::from)?;
    let cookie = cookie(&state, "", 0)?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(serde_json::json!({"logged_out": true})),
    )
        .into_response())
}

/// `GET /v1/centre/me`: who is logged in, and the CSRF token for their posts.
pub(crate) async fn me_handler(
    State(state): State<AppState>,
    session: StaffSession,
) -> Result<Json<Me>, AppError> {
    let staff = session.staff.clone();
    let department_name = state
        .store
        .read(move |tx| {
            let staff = staff.clone();
            Box::pin(async move { department_name(tx, &staff).await })
        })
        .await
        .map_err(AppError::from)?;
    Ok(Json(Me {
        staff: session.staff,
        department_name,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "theme=dark; gridcase_session=abc123 ; x=y")]);
        assert_eq!(session_token(&h), Some("abc123"));
        assert_eq!(session_token(&headers(&[("cookie", "x=y")])), None);
    }

    #[test]
    fn another_origin_is_refused_and_the_same_passes() {
        let same = headers(&[("host", "centre:8787"), ("origin", "http://centre:8787")]);
        assert!(check_origin(&same, None).is_ok());
        let other = headers(&[("host", "centre:8787"), ("origin", "https://evil.example")]);
        assert_eq!(
            check_origin(&other, None).unwrap_err().code(),
            codes::CSRF_FAILED
        );
        let public = headers(&[
            ("host", "10.0.0.2:8787"),
            ("origin", "https://centre.example"),
        ]);
        assert!(check_origin(&public, Some("https://centre.example/")).is_ok());
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(check_origin(&cross, None).is_err());
        assert!(check_origin(&HeaderMap::new(), None).is_ok());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abcd", "abce"));
        assert!(!same_secret("abcd", "abc"));
    }
}
