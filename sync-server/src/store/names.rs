//! The names people read for the ids in ops (who acted, which department):
//! batched lookups, so a page of a thousand ops costs a few statements. Which
//! name wins for an id is decided in [`crate::names`].

use super::{postgres, sqlite, ReadTx, StoreError};

/// `(id, name)` pairs; the id as it was asked for.
pub type Names = Vec<(String, String)>;

impl ReadTx<'_> {
    /// The members of staff among `ids`.
    pub async fn staff_names(&mut self, ids: &[&str]) -> Result<Names, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::names::names_in(c, "staff", ids),
            ReadTx::Postgres(c) => postgres::names::names_in(c, "staff", ids).await,
        }
    }

    /// The grid leaders' accounts among `ids`.
    pub async fn account_names(&mut self, ids: &[&str]) -> Result<Names, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::names::names_in(c, "accounts", ids),
            ReadTx::Postgres(c) => postgres::names::names_in(c, "accounts", ids).await,
        }
    }

    /// The Open311 clients among the key ids `ids`.
    pub async fn open311_key_names(&mut self, ids: &[&str]) -> Result<Names, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::names::names_in(c, "open311_keys", ids),
            ReadTx::Postgres(c) => postgres::names::names_in(c, "open311_keys", ids).await,
        }
    }
}
