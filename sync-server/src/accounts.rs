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
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{codes, reasons, ApiJson, AppError};
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
pub(crate) fn issue_code(
    conn: &Connection,
    account_id: &str,
    ttl_ms: Millis,
    now: Millis,
) -> Result<IssuedCode, AppError> {
    let code = new_code()?;
    let canonical = normalise_code(&code).ok_or_else(AppError::internal)?;
    let expires_at = now.saturating_add(ttl_ms);
    conn.execute(
        "INSERT INTO enrol_codes (code_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![sha256(canonical.as_bytes()), account_id, now, expires_at],
    )?;
    Ok(IssuedCode {
        account_id: account_id.to_string(),
        code,
        expires_at,
    })
}

pub(crate) fn account_grids(conn: &Connection, account_id: &str) -> Result<Vec<String>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT grid_id FROM account_grids WHERE account_id = ?1 ORDER BY grid_id",
    )?;
    let rows = stmt.query_map([account_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Exchanges a code for a device, in the caller's write transaction.
///
/// The same terminal (the same `enrolment_key`) may repeat the exchange for
/// [`ENROL_REPEAT_WINDOW_MS`] after the first: its answer may have been lost
/// after the server committed. The repeat gives the same device a fresh token
/// (only hashes are kept, so the first one cannot be sent again), which also
/// retires the token nobody received.
pub(crate) fn enrol(
    conn: &Connection,
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
    type CodeRow = (
        String,
        Millis,
        Option<Millis>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let row: Option<CodeRow> = conn
        .query_row(
            "SELECT account_id, expires_at, used_at, device_id, enrolment_key_hash
             FROM enrol_codes WHERE code_hash = ?1",
            [&hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((account_id, expires_at, used_at, used_by, used_key)) = row else {
        return Err(refused(codes::ENROL_CODE_INVALID, "unknown enrolment code").with_field("code"));
    };
    let used = || {
        refused(
            codes::ENROL_CODE_USED,
            "this enrolment code was already used; ask the centre for a new one",
        )
        .with_field("code")
    };
    if let Some(used_at) = used_at {
        let same_terminal = key_hash.is_some() && key_hash == used_key;
        let in_time = now.saturating_sub(used_at) <= ENROL_REPEAT_WINDOW_MS;
        let (Some(device_id), true, true) = (used_by, same_terminal, in_time) else {
            return Err(used());
        };
        let token = new_token()?;
        let renewed = conn.execute(
            "UPDATE devices SET token_hash = ?1, name = ?2 WHERE id = ?3 AND revoked_at IS NULL",
            params![sha256(token.as_bytes()), device_name.trim(), device_id],
        )?;
        if renewed == 0 {
            return Err(used()); // revoked meanwhile: a new code is needed
        }
        return Ok(EnrolResponse {
            token,
            device_id,
            grid_ids: account_grids(conn, &account_id)?,
            account_name: account_name(conn, &account_id)?,
            account_id,
            time_zone: zone.name().to_string(),
        });
    }
    if expires_at <= now {
        return Err(refused(
            codes::ENROL_CODE_EXPIRED,
            "this enrolment code has expired; ask the centre for a new one",
        )
        .with_field("code"));
    }
    let device_id = new_id();
    let token = new_token()?;
    conn.execute(
        "INSERT INTO devices (id, account_id, name, token_hash, created_at, enrolment_key_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            device_id,
            account_id,
            device_name.trim(),
            sha256(token.as_bytes()),
            now,
            key_hash
        ],
    )?;
    // The same terminal enrolled before (a new code after a reset, another
    // account's code): the device it was is retired, so no second token of
    // one terminal stays active.
    if let Some(key_hash) = &key_hash {
        let retired = conn.execute(
            "UPDATE devices SET revoked_at = ?1, replaced_by = ?2
             WHERE enrolment_key_hash = ?3 AND id != ?2 AND revoked_at IS NULL",
            params![now, device_id, key_hash],
        )?;
        if retired > 0 {
            tracing::info!(device = %device_id, retired, "a terminal enrolled again; its old device is retired");
        }
    }
    conn.execute(
        "UPDATE enrol_codes SET used_at = ?1, device_id = ?2, enrolment_key_hash = ?3
         WHERE code_hash = ?4",
        params![now, device_id, key_hash, hash],
    )?;
    Ok(EnrolResponse {
        token,
        device_id,
        grid_ids: account_grids(conn, &account_id)?,
        account_name: account_name(conn, &account_id)?,
        account_id,
        time_zone: zone.name().to_string(),
    })
}

fn account_name(conn: &Connection, account_id: &str) -> Result<String, AppError> {
    Ok(conn
        .prepare_cached("SELECT name FROM accounts WHERE id = ?1")?
        .query_row([account_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// Whether two devices are the same terminal enrolled twice (the same
/// enrolment key): what one pushed, the other may push again.
pub(crate) fn same_terminal(conn: &Connection, a: &str, b: &str) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM devices x JOIN devices y
                 ON x.enrolment_key_hash = y.enrolment_key_hash
             WHERE x.id = ?1 AND y.id = ?2 AND x.enrolment_key_hash IS NOT NULL)",
        )?
        .query_row([a, b], |r| r.get(0))?)
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
        .db
        .write(move |tx| {
            enrol(
                tx,
                &req.code,
                &req.device_name,
                req.enrolment_key.as_deref(),
                now_millis(),
                &zone,
            )
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
            .db
            .read(move |tx| {
                Ok(tx
                    .query_row(
                        "SELECT id, account_id, revoked_at, replaced_by FROM devices WHERE token_hash = ?1",
                        [hash],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Option<Millis>>(2)?,
                                r.get::<_, Option<String>>(3)?,
                            ))
                        },
                    )
                    .optional()?)
            })
            .await?;
        match found {
            Some((device_id, account_id, None, _)) => Ok(DeviceAuth {
                device_id,
                account_id,
            }),
            Some((_, _, Some(_), Some(_))) => Err(AppError::unauthorised(
                "this terminal enrolled again; this device's token was retired",
            )),
            Some((_, _, Some(_), None)) => Err(AppError::unauthorised(
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

    /// The same terminal may repeat its enrolment (its answer may have been
    /// lost) for the repeat window after the first, and not a moment later.
    #[test]
    fn a_repeated_enrolment_works_within_the_window_and_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = crate::admin::Admin::open(dir.path()).unwrap();
        admin
            .import_grids(
                r#"{ "type": "FeatureCollection", "features": [
                  { "type": "Feature", "properties": { "id": "g-1", "name": "一网格", "level": "grid", "parent": null },
                    "geometry": { "type": "Polygon", "coordinates": [[[125.0, 42.8], [125.1, 42.8], [125.1, 42.9], [125.0, 42.9], [125.0, 42.8]]] } }
                ]}"#,
            )
            .unwrap();
        let leader = admin
            .create_leader("张三", &["g-1".to_string()], 7 * gridcase_core::time::DAY)
            .unwrap();
        let conn = crate::db::open_migrated(&crate::database_path(dir.path())).unwrap();
        let t0 = now_millis();
        let zone = gridcase_core::zone::Zone::default();
        let first = enrol(&conn, &leader.code, "t", Some("key-1"), t0, &zone).unwrap();
        // Another terminal never may; the same one may, up to the window's end.
        let other = enrol(&conn, &leader.code, "t", Some("key-2"), t0 + 1, &zone).unwrap_err();
        assert_eq!(other.body.code, codes::ENROL_CODE_USED);
        let again = enrol(
            &conn,
            &leader.code,
            "t",
            Some("key-1"),
            t0 + ENROL_REPEAT_WINDOW_MS,
            &zone,
        )
        .unwrap();
        assert_eq!(again.device_id, first.device_id);
        assert_ne!(
            again.token, first.token,
            "a fresh token retires the lost one"
        );
        let late = enrol(
            &conn,
            &leader.code,
            "t",
            Some("key-1"),
            t0 + ENROL_REPEAT_WINDOW_MS + 1,
            &zone,
        )
        .unwrap_err();
        assert_eq!(late.body.code, codes::ENROL_CODE_USED);
        let devices: i64 = conn
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(devices, 1);
    }

    #[test]
    fn tokens_are_long_and_different() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
    }
}
