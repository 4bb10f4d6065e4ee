//! Accounts, enrolment codes and devices: who may sync, with which token, for
//! which grids. The rules (codes, the repeat window, retiring the device a
//! terminal was) are in [`crate::accounts`].

use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

/// A device as its bearer token finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    pub device_id: String,
    pub account_id: String,
    pub revoked_at: Option<Millis>,
    /// The device that replaced this one (the same terminal enrolled again).
    pub replaced_by: Option<String>,
}

/// A device as the admin lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub device_id: String,
    pub device_name: String,
    pub account_id: String,
    pub account_name: String,
    pub created_at: Millis,
    pub last_push_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub replaced_by: Option<String>,
}

/// A grid leader's new account.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The units the account answers for (each once).
    pub grid_ids: &'a [String],
}

/// An enrolment code as stored (by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolCode {
    pub account_id: String,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
    /// The device its use made.
    pub device_id: Option<String>,
    /// The SHA-256 of the enrolment key of the terminal that used it.
    pub enrolment_key_hash: Option<Vec<u8>>,
}

/// A newly enrolled device.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub enrolment_key_hash: Option<&'a [u8]>,
    pub created_at: Millis,
}

impl ReadTx<'_> {
    /// The device whose token has this SHA-256.
    pub async fn device_by_token(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<DeviceToken>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::devices::device_by_token(c, token_hash),
            ReadTx::Postgres(c) => postgres::devices::device_by_token(c, token_hash).await,
        }
    }

    /// The units the account answers for, sorted.
    pub async fn account_grids(&mut self, account_id: &str) -> Result<Vec<String>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::devices::account_grids(c, account_id),
            ReadTx::Postgres(c) => postgres::devices::account_grids(c, account_id).await,
        }
    }

    pub async fn account_name(&mut self, account_id: &str) -> Result<Option<String>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::devices::account_name(c, account_id),
            ReadTx::Postgres(c) => postgres::devices::account_name(c, account_id).await,
        }
    }

    /// Whether two devices are the same terminal enrolled twice (the same
    /// enrolment key).
    pub async fn same_terminal(&mut self, a: &str, b: &str) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::devices::same_terminal(c, a, b),
            ReadTx::Postgres(c) => postgres::devices::same_terminal(c, a, b).await,
        }
    }

    /// Every device, oldest first.
    pub async fn list_devices(&mut self) -> Result<Vec<DeviceRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::devices::list_devices(c, None),
            ReadTx::Postgres(c) => postgres::devices::list_devices(c, None).await,
        }
    }

    pub async fn load_device(&mut self, device_id: &str) -> Result<Option<DeviceRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => Ok(sqlite::devices::list_devices(c, Some(device_id))?.pop()),
            ReadTx::Postgres(c) => Ok(postgres::devices::list_devices(c, Some(device_id))
                .await?
                .pop()),
        }
    }
}

impl Tx<'_> {
    /// Creates a grid leader's account with its units. An id already there
    /// is a [`StoreError::Conflict`].
    pub async fn insert_account(
        &mut self,
        account: &NewAccount<'_>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::devices::insert_account(c, account, now),
            ReadTx::Postgres(c) => postgres::devices::insert_account(c, account, now).await,
        }
    }

    pub async fn insert_enrol_code(
        &mut self,
        code_hash: &[u8],
        account_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::devices::insert_enrol_code(c, code_hash, account_id, now, expires_at)
            }
            ReadTx::Postgres(c) => {
                postgres::devices::insert_enrol_code(c, code_hash, account_id, now, expires_at)
                    .await
            }
        }
    }

    /// The code with this hash, locked until the transaction ends on
    /// PostgreSQL (one use, even when two instances race with it).
    pub async fn lock_enrol_code(
        &mut self,
        code_hash: &[u8],
    ) -> Result<Option<EnrolCode>, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::devices::enrol_code(c, code_hash),
            ReadTx::Postgres(c) => postgres::devices::lock_enrol_code(c, code_hash).await,
        }
    }

    /// Marks the code used by `device_id` (of the terminal with this key).
    pub async fn mark_code_used(
        &mut self,
        code_hash: &[u8],
        device_id: &str,
        enrolment_key_hash: Option<&[u8]>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::devices::mark_code_used(c, code_hash, device_id, enrolment_key_hash, now)
            }
            ReadTx::Postgres(c) => {
                postgres::devices::mark_code_used(c, code_hash, device_id, enrolment_key_hash, now)
                    .await
            }
        }
    }

    pub async fn insert_device(&mut self, device: &NewDevice<'_>) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::devices::insert_device(c, device),
            ReadTx::Postgres(c) => postgres::devices::insert_device(c, device).await,
        }
    }

    /// Gives a device that is not revoked a new token (and name); whether it
    /// was there to renew.
    pub async fn renew_device_token(
        &mut self,
        device_id: &str,
        token_hash: &[u8],
        name: &str,
    ) -> Result<bool, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::devices::renew_device_token(c, device_id, token_hash, name)
            }
            ReadTx::Postgres(c) => {
                postgres::devices::renew_device_token(c, device_id, token_hash, name).await
            }
        }
    }

    /// Retires every active device of the terminal with this key but
    /// `replaced_by`; how many.
    pub async fn retire_devices(
        &mut self,
        enrolment_key_hash: &[u8],
        replaced_by: &str,
        now: Millis,
    ) -> Result<usize, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::devices::retire_devices(c, enrolment_key_hash, replaced_by, now)
            }
            ReadTx::Postgres(c) => {
                postgres::devices::retire_devices(c, enrolment_key_hash, replaced_by, now).await
            }
        }
    }

    /// Revokes the device's token if it is active; whether it was.
    pub async fn revoke_device(
        &mut self,
        device_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::devices::revoke_device(c, device_id, now),
            ReadTx::Postgres(c) => postgres::devices::revoke_device(c, device_id, now).await,
        }
    }

    /// When the device last pushed.
    pub async fn touch_device_push(
        &mut self,
        device_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::devices::touch_device_push(c, device_id, now),
            ReadTx::Postgres(c) => postgres::devices::touch_device_push(c, device_id, now).await,
        }
    }
}
