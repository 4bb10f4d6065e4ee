//! Rating links on PostgreSQL.

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

use super::{col, uuid_of, PgConn};
use crate::store::rating_links::RatingLinkRow;
use crate::store::StoreError;

pub(crate) async fn find(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
    for_update: bool,
) -> Result<Option<RatingLinkRow>, StoreError> {
    let sql = if for_update {
        "SELECT case_id, expires_at, used_at FROM rating_links WHERE token_hash = $1 FOR UPDATE"
    } else {
        "SELECT case_id, expires_at, used_at FROM rating_links WHERE token_hash = $1"
    };
    c.query_opt(sql, &[&token_hash])
        .await?
        .map(|r| {
            Ok(RatingLinkRow {
                case_id: CaseId::from_uuid(col(&r, 0)?),
                expires_at: col(&r, 1)?,
                used_at: col(&r, 2)?,
            })
        })
        .transpose()
}

pub(crate) async fn insert(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
    case_id: &CaseId,
    device_id: &str,
    now: Millis,
    expires_at: Millis,
) -> Result<(), StoreError> {
    let device = uuid_of(device_id).ok_or(StoreError::NotFound("device"))?;
    c.execute(
        "INSERT INTO rating_links (token_hash, case_id, device_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&token_hash, case_id.as_uuid(), &device, &now, &expires_at],
    )
    .await?;
    Ok(())
}

pub(crate) async fn mark_used(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
    now: Millis,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE rating_links SET used_at = $1 WHERE token_hash = $2",
        &[&now, &token_hash],
    )
    .await?;
    Ok(())
}
