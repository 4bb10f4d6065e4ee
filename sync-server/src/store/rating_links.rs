//! The one-time links a resident rates a verified case through. Whether a
//! link is open, and what the resident sees, is decided in
//! [`crate::centre::rating_link`].

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

/// A link, found by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingLinkRow {
    pub case_id: CaseId,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

impl ReadTx<'_> {
    pub async fn rating_link(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<RatingLinkRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::rating_links::find(c, token_hash),
            ReadTx::Postgres(c) => postgres::rating_links::find(c, token_hash, false).await,
        }
    }
}

impl Tx<'_> {
    /// The link, locked until the transaction ends: two instances given the
    /// same link at once take turns, and the second finds it used.
    pub async fn lock_rating_link(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<RatingLinkRow>, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::rating_links::find(c, token_hash),
            ReadTx::Postgres(c) => postgres::rating_links::find(c, token_hash, true).await,
        }
    }

    pub async fn insert_rating_link(
        &mut self,
        token_hash: &[u8],
        case_id: &CaseId,
        device_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::rating_links::insert(c, token_hash, case_id, device_id, now, expires_at)
            }
            ReadTx::Postgres(c) => {
                postgres::rating_links::insert(c, token_hash, case_id, device_id, now, expires_at)
                    .await
            }
        }
    }

    pub async fn use_rating_link(
        &mut self,
        token_hash: &[u8],
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::rating_links::mark_used(c, token_hash, now),
            ReadTx::Postgres(c) => postgres::rating_links::mark_used(c, token_hash, now).await,
        }
    }
}
