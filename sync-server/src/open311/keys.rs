//! Open311 API keys: one per client application (a city's 311 app, a QR-code
//! report page). The key is shown once when issued; only its SHA-256 is kept.

use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::AppError;

const KEY_PREFIX: &str = "o311_";
const KEY_BYTES: usize = 24;
/// Longer than any key this server issues; refused before hashing.
const MAX_KEY_CHARS: usize = 200;
pub const MAX_KEY_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    pub key_id: String,
    pub name: String,
    /// The key itself: shown once, never stored.
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub name: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.trim().as_bytes()).to_vec()
}

pub(crate) fn issue(conn: &Connection, name: &str, now: Millis) -> Result<IssuedKey, AppError> {
    gridcase_core::case::check_text("name", name, 1, MAX_KEY_NAME_CHARS).map_err(|e| {
        AppError::invalid(
            "name",
            crate::error::reasons::of_input(&e.reason),
            format!("name: {}", e.reason),
        )
    })?;
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the OS gave no randomness");
        AppError::internal()
    })?;
    let api_key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let key_id = crate::accounts::new_id();
    let name = name.trim().to_string();
    conn.execute(
        "INSERT INTO open311_keys (id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![key_id, name, hash(&api_key), now],
    )?;
    Ok(IssuedKey {
        key_id,
        name,
        api_key,
    })
}

/// Revokes a key at once; answers whether it was active before.
pub(crate) fn revoke(conn: &Connection, key_id: &str, now: Millis) -> Result<bool, AppError> {
    let revoked: Option<Option<Millis>> = conn
        .query_row(
            "SELECT revoked_at FROM open311_keys WHERE id = ?1",
            [key_id],
            |r| r.get(0),
        )
        .optional()?;
    match revoked {
        None => Err(AppError::not_found("no such Open311 key")),
        Some(Some(_)) => Ok(false),
        Some(None) => {
            conn.execute(
                "UPDATE open311_keys SET revoked_at = ?1 WHERE id = ?2",
                params![now, key_id],
            )?;
            Ok(true)
        }
    }
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<KeyInfo>, AppError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, created_at, revoked_at FROM open311_keys ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyInfo {
            key_id: r.get(0)?,
            name: r.get(1)?,
            created_at: r.get(2)?,
            revoked_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The id of the active key `api_key`, if it is one.
pub(crate) fn check(conn: &Connection, api_key: &str) -> Result<Option<String>, AppError> {
    if api_key.is_empty() || api_key.len() > MAX_KEY_CHARS {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            "SELECT id FROM open311_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
            [hash(api_key)],
            |r| r.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_works_until_revoked_and_only_its_hash_is_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::run(&mut conn).unwrap();
        let issued = issue(&conn, "市民热线 App", 1).unwrap();
        assert!(issued.api_key.starts_with(KEY_PREFIX));
        assert_eq!(
            check(&conn, &issued.api_key).unwrap(),
            Some(issued.key_id.clone())
        );
        assert_eq!(check(&conn, "o311_wrong").unwrap(), None);
        assert_eq!(check(&conn, "").unwrap(), None);
        let stored: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM open311_keys WHERE instr(CAST(key_hash AS TEXT), ?1) > 0",
                [&issued.api_key],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);
        assert!(revoke(&conn, &issued.key_id, 2).unwrap());
        assert!(!revoke(&conn, &issued.key_id, 3).unwrap());
        assert_eq!(check(&conn, &issued.api_key).unwrap(), None);
        assert!(issue(&conn, " ", 1).is_err());
    }
}
