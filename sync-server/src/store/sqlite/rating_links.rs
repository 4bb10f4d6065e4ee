//! Rating links on SQLite (one writer: nothing to lock).

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::rating_links::RatingLinkRow;
use crate::store::StoreError;

pub(crate) fn find(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<RatingLinkRow>, StoreError> {
    let row: Option<(String, Millis, Option<Millis>)> = conn
        .prepare_cached(
            "SELECT case_id, expires_at, used_at FROM rating_links WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(case_id, expires_at, used_at)| {
        Ok(RatingLinkRow {
            case_id: CaseId::parse(&case_id)
                .map_err(|e| StoreError::corrupt("a rating link's case id", e.reason))?,
            expires_at,
            used_at,
        })
    })
    .transpose()
}

pub(crate) fn insert(
    conn: &Connection,
    token_hash: &[u8],
    case_id: &CaseId,
    device_id: &str,
    now: Millis,
    expires_at: Millis,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rating_links (token_hash, case_id, device_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_hash, case_id.to_string(), device_id, now, expires_at],
    )?;
    Ok(())
}

pub(crate) fn mark_used(
    conn: &Connection,
    token_hash: &[u8],
    now: Millis,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE rating_links SET used_at = ?1 WHERE token_hash = ?2",
        params![now, token_hash],
    )?;
    Ok(())
}
