//! Accounts, enrolment codes and devices.
//!
//! An admin creates a grid leader's account with its grids and gets a one-time
//! enrolment code; the terminal exchanges the code (`POST /v1/enrol`) for a
//! device token. The server keeps only SHA-256 hashes of codes and tokens, so a
//! copy of the database does not let anyone act as a device. Codes are single
//! use and expire; tokens last until revoked, or until the same terminal (the
//! same enrolment key) enrols again: the new device retires the one it
//! replaces, whose token stops working.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use gridcase_core::protocol::{EnrolRequest, EnrolResponse, ENROL_REPEAT_WINDOW_MS};
use gridcase_core::time::{now_millis, Millis};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{codes, reasons, ApiJson, AppError};
use crate::store::devices::NewDevice;
use crate::store::Tx;
use crate::AppState;

/// Enrolment codes: 12 symbols of Crockford's base 32 (60 bits), shown as
/// `XXXX-XXXX-XXXX`: easy to read out and type, and case, dashes, spaces and the
/// look-alikes O/I/L are forgiven.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_SYMBOLS: usize = 12;
/// Random bytes in a device token.
const TOKEN_BYTES: usize = 32;
const TOKEN_PREFIX: &str = "gcd_";
const MAX_TOKEN_CHARS: usize = 200;
pub const MAX_DEVICE_NAME_CHARS: usize = 100;

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| {
        tracing::error!(error = %e, "the OS gave no randomness");
        AppError::internal()
    })?;
    Ok(buf)
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// A fresh code, as shown to people.
fn new_code() -> Result<String, AppError> {
    let bytes = random_bytes::<CODE_SYMBOLS>()?;
    let symbols: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[(*b & 31) as usize] as char)
        .collect();
    Ok(symbols
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The canonical form of a code as someone typed it, or `None` if it cannot be one.
fn normalise_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let mut out = String::with_capacity(CODE_SYMBOLS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

fn new_token() -> Result<String, AppError> {
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        hex::encode(random_bytes::<TOKEN_BYTES>()?)
    ))
}

/// An account's new enrolment code (the only time its text is known).
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCode {
    pub account_id: String,
    pub code: String,
    pub expires_at: Millis,
}

/// Stores a new code for `account_id`, valid for `ttl_ms`.
pub(crate) async fn issue_code(
    tx: &mut Tx<'_>,
    account_id: &str,
    ttl_ms: Millis,
    now: Millis,
) -> Result<IssuedCode, AppError> {
    let code = new_code()?;
    let canonical = normalise_code(&code).ok_or_else(AppError::internal)?;
    let expires_at = now.saturating_add(ttl_ms);
    tx.insert_enrol_code(&sha256(canonical.as_bytes()), account_id, now, expires_at)
        .await?;
    Ok(IssuedCode {
        account_id: account_id.to_string(),
        code,
        expires_at,
    })
}

/// Exchanges a code for a device, in the caller's write transaction.
///
/// The same terminal (the same `enrolment_key`) may repeat the exchange for
/// [`ENROL_REPEAT_WINDOW_MS`] after the first: its answer may have been lost
/// after the server committed. The repeat gives the same device a fresh token
/// (only hashes are kept, so the first one cannot be sent again), which also
/// retires the token nobody received.
pub(crate) async fn enrol(
    tx: &mut Tx<'_>,
    code: &str,
    device_name: &str,
    enrolment_key: Option<&str>,
    now: Millis,
    zone: &gridcase_core::zone::Zone,
) -> Result<EnrolResponse, AppError> {
    // 400, not 401: the request is not unauthorised, its code is bad, and the
    // terminal should show which way (unknown, used, expired).
    let refused = |code: &str, message: &str| AppError::new(StatusCode::BAD_REQUEST, code, message);
    let Some(canonical) = normalise_code(code) else {
        return Err(
            refused(codes::ENROL_CODE_INVALID, "this is not an enrolment code").with_field("code"),
        );
    };
    if enrolment_key.is_some_and(|k| k.is_empty() || k.len() > MAX_TOKEN_CHARS) {
        return Err(AppError::invalid(
            "enrolment_key",
            reasons::TOO_LONG,
            format!("must be 1 to {MAX_TOKEN_CHARS} characters"),
        ));
    }
    let key_hash = enrolment_key.map(|k| sha256(k.as_bytes()));
    let hash = sha256(canonical.as_bytes());
    // Locked: a code is used once, even by two instances at once.
    let Some(found) = tx.lock_enrol_code(&hash).await? else {
        return Err(refused(codes::ENROL_CODE_INVALID, "unknown enrolment code").with_field("code"));
    };
    let used = || {
        refused(
            codes::ENROL_CODE_USED,
            "this enrolment code was already used; ask the centre for a new one",
        )
        .with_field("code")
    };
    let account_id = found.account_id;
    if let Some(used_at) = found.used_at {
        let same_terminal = key_hash.is_some() && key_hash == found.enrolment_key_hash;
        let in_time = now.saturating_sub(used_at) <= ENROL_REPEAT_WINDOW_MS;
        let (Some(device_id), true, true) = (found.device_id, same_terminal, in_time) else {
            return Err(used());
        };
        let token = new_token()?;
        let renewed = tx
            .renew_device_token(&device_id, &sha256(token.as_bytes()), device_name.trim())
            .await?;
        if !renewed {
            return Err(used()); // revoked meanwhile: a new code is needed
        }
        return Ok(EnrolResponse {
            token,
            device_id,
            grid_ids: tx.account_grids(&account_id).await?,
            account_name: tx.account_name(&account_id).await?.unwrap_or_default(),
            account_id,
            time_zone: zone.name().to_string(),
        });
    }
    if found.expires_at <= now {
        return Err(refused(
            codes::ENROL_CODE_EXPIRED,
            "this enrolment code has expired; ask the centre for a new one",
        )
        .with_field("code"));
    }
    let device_id = new_id();
    let token = new_token()?;
    tx.insert_device(&NewDevice {
        id: &device_id,
        account_id: &account_id,
        name: device_name.trim(),
        token_hash: &sha256(token.as_bytes()),
        enrolment_key_hash: key_hash.as_deref(),
        created_at: now,
    })
    .await?;
    // The same terminal enrolled before (a new code after a reset, another
    // account's code): the device it was is retired, so no second token of
    // one terminal stays active.
    if let Some(key_hash) = &key_hash {
        let retired = tx.retire_devices(key_hash, &device_id, now).await?;
        if retired > 0 {
            tracing::info!(device = %device_id, retired, "a terminal enrolled again; its old device is retired");
        }
    }
    tx.mark_code_used(&hash, &device_id, key_hash.as_deref(), now)
        .await?;
    Ok(EnrolResponse {
        token,
        device_id,
        grid_ids: tx.account_grids(&account_id).await?,
        account_name: tx.account_name(&account_id).await?.unwrap_or_default(),
        account_id,
        time_zone: zone.name().to_string(),
    })
}

/// `POST /v1/enrol`
pub(crate) async fn enrol_handler(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<Json<EnrolResponse>, AppError> {
    gridcase_core::case::check_text("device_name", &req.device_name, 1, MAX_DEVICE_NAME_CHARS)
        .map_err(|e| AppError::input(&e))?;
    let zone = state.zone.clone();
    let response = state
        .store
        .write(move |tx| {
            let (req, zone) = (req.clone(), zone.clone());
            Box::pin(async move {
                enrol(
                    tx,
                    &req.code,
                    &req.device_name,
                    req.enrolment_key.as_deref(),
                    now_millis(),
                    &zone,
                )
                .await
            })
        })
        .await?;
    tracing::info!(device = %response.device_id, account = %response.account_id, "device enrolled");
    Ok(Json(response))
}

/// The device a request comes from, by its bearer token. Extracting it is the
/// authentication: handlers that take it answer only enrolled, unrevoked devices.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device_id: String,
    pub account_id: String,
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| AppError::unauthorised("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_CHARS)
            .ok_or_else(|| {
                AppError::unauthorised("the Authorization header must be \"Bearer <token>\"")
            })?;
        let hash = sha256(token.as_bytes());
        let found = state
            .store
            .read(move |tx| {
                let hash = hash.clone();
                Box::pin(async move { tx.device_by_token(&hash).await })
            })
            .await?;
        match found {
            Some(d) if d.revoked_at.is_none() => Ok(DeviceAuth {
                device_id: d.device_id,
                account_id: d.account_id,
            }),
            Some(d) if d.replaced_by.is_some() => Err(AppError::unauthorised(
                "this terminal enrolled again; this device's token was retired",
            )),
            Some(_) => Err(AppError::unauthorised(
                "this device was revoked; enrol it again with a new code",
            )),
            None => Err(AppError::unauthorised("unknown device token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_forgive_case_dashes_and_look_alikes() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), 14);
        let canonical = normalise_code(&code).unwrap();
        assert_eq!(
            normalise_code(&code.to_lowercase().replace('-', " ")),
            Some(canonical)
        );
        assert_eq!(
            normalise_code("oooo-iiii-llll"),
            Some("000011111111".into())
        );
        assert_eq!(
            normalise_code("ABCD-EFGH-JKU0"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(normalise_code("ABCD"), None);
        assert_eq!(normalise_code("张三李四"), None);
    }

    #[test]
    fn tokens_are_long_and_different() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
    }
}
