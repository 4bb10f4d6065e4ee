//! Accounts, enrolment codes and devices on PostgreSQL. Ids are uuid
//! columns: an id given as text that is not one matches no row.

use gridcase_core::time::Millis;
use uuid::Uuid;

use super::{col, id_text, uuid_of, PgConn};
use crate::store::devices::{DeviceRow, DeviceToken, EnrolCode, NewAccount, NewDevice};
use crate::store::StoreError;

fn uuid_required(id: &str, what: &'static str) -> Result<Uuid, StoreError> {
    uuid_of(id).ok_or_else(|| StoreError::Backend(format!("{what} is not a uuid")))
}

pub(crate) async fn device_by_token(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
) -> Result<Option<DeviceToken>, StoreError> {
    let row = c
        .query_opt(
            "SELECT id, account_id, revoked_at, replaced_by FROM devices WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    row.map(|r| {
        Ok(DeviceToken {
            device_id: id_text(col(&r, 0)?),
            account_id: id_text(col(&r, 1)?),
            revoked_at: col(&r, 2)?,
            replaced_by: col::<Option<Uuid>>(&r, 3)?.map(id_text),
        })
    })
    .transpose()
}

pub(crate) async fn account_grids(
    c: &mut PgConn<'_>,
    account_id: &str,
) -> Result<Vec<String>, StoreError> {
    let Some(account) = uuid_of(account_id) else {
        return Ok(Vec::new());
    };
    c.query(
        "SELECT grid_id FROM account_grids WHERE account_id = $1 ORDER BY grid_id",
        &[&account],
    )
    .await?
    .iter()
    .map(|r| col(r, 0))
    .collect()
}

pub(crate) async fn account_name(
    c: &mut PgConn<'_>,
    account_id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(account) = uuid_of(account_id) else {
        return Ok(None);
    };
    c.query_opt("SELECT name FROM accounts WHERE id = $1", &[&account])
        .await?
        .map(|r| col(&r, 0))
        .transpose()
}

pub(crate) async fn same_terminal(
    c: &mut PgConn<'_>,
    a: &str,
    b: &str,
) -> Result<bool, StoreError> {
    let (Some(a), Some(b)) = (uuid_of(a), uuid_of(b)) else {
        return Ok(false);
    };
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM devices x JOIN devices y
                 ON x.enrolment_key_hash = y.enrolment_key_hash
             WHERE x.id = $1 AND y.id = $2)",
            &[&a, &b],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn list_devices(
    c: &mut PgConn<'_>,
    only: Option<&str>,
) -> Result<Vec<DeviceRow>, StoreError> {
    let only = match only {
        Some(id) => match uuid_of(id) {
            Some(u) => Some(u),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let rows = c
        .query(
            "SELECT d.id, d.name, d.account_id, a.name, d.created_at, d.last_push_at,
                    d.revoked_at, d.replaced_by
             FROM devices d JOIN accounts a ON a.id = d.account_id
             WHERE $1::uuid IS NULL OR d.id = $1
             ORDER BY d.created_at, d.id",
            &[&only],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DeviceRow {
                device_id: id_text(col(r, 0)?),
                device_name: col(r, 1)?,
                account_id: id_text(col(r, 2)?),
                account_name: col(r, 3)?,
                created_at: col(r, 4)?,
                last_push_at: col(r, 5)?,
                revoked_at: col(r, 6)?,
                replaced_by: col::<Option<Uuid>>(r, 7)?.map(id_text),
            })
        })
        .collect()
}

pub(crate) async fn insert_account(
    c: &mut PgConn<'_>,
    account: &NewAccount<'_>,
    now: Millis,
) -> Result<(), StoreError> {
    let id = uuid_required(account.id, "an account id")?;
    c.execute(
        "INSERT INTO accounts (id, name, role, created_at) VALUES ($1, $2, 'grid_leader', $3)",
        &[&id, &account.name, &now],
    )
    .await?;
    c.execute(
        "INSERT INTO account_grids (account_id, grid_id) SELECT $1, unnest($2::text[])",
        &[&id, &account.grid_ids],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_enrol_code(
    c: &mut PgConn<'_>,
    code_hash: &[u8],
    account_id: &str,
    now: Millis,
    expires_at: Millis,
) -> Result<(), StoreError> {
    let account = uuid_required(account_id, "an account id")?;
    c.execute(
        "INSERT INTO enrol_codes (code_hash, account_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
        &[&code_hash, &account, &now, &expires_at],
    )
    .await?;
    Ok(())
}

pub(crate) async fn lock_enrol_code(
    c: &mut PgConn<'_>,
    code_hash: &[u8],
) -> Result<Option<EnrolCode>, StoreError> {
    let row = c
        .query_opt(
            "SELECT account_id, expires_at, used_at, device_id, enrolment_key_hash
             FROM enrol_codes WHERE code_hash = $1 FOR UPDATE",
            &[&code_hash],
        )
        .await?;
    row.map(|r| {
        Ok(EnrolCode {
            account_id: id_text(col(&r, 0)?),
            expires_at: col(&r, 1)?,
            used_at: col(&r, 2)?,
            device_id: col::<Option<Uuid>>(&r, 3)?.map(id_text),
            enrolment_key_hash: col(&r, 4)?,
        })
    })
    .transpose()
}

pub(crate) async fn mark_code_used(
    c: &mut PgConn<'_>,
    code_hash: &[u8],
    device_id: &str,
    enrolment_key_hash: Option<&[u8]>,
    now: Millis,
) -> Result<(), StoreError> {
    let device = uuid_required(device_id, "a device id")?;
    c.execute(
        "UPDATE enrol_codes SET used_at = $1, device_id = $2, enrolment_key_hash = $3
         WHERE code_hash = $4",
        &[&now, &device, &enrolment_key_hash, &code_hash],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_device(c: &mut PgConn<'_>, d: &NewDevice<'_>) -> Result<(), StoreError> {
    let id = uuid_required(d.id, "a device id")?;
    let account = uuid_required(d.account_id, "an account id")?;
    c.execute(
        "INSERT INTO devices (id, account_id, name, token_hash, created_at, enrolment_key_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &id,
            &account,
            &d.name,
            &d.token_hash,
            &d.created_at,
            &d.enrolment_key_hash,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn renew_device_token(
    c: &mut PgConn<'_>,
    device_id: &str,
    token_hash: &[u8],
    name: &str,
) -> Result<bool, StoreError> {
    let Some(id) = uuid_of(device_id) else {
        return Ok(false);
    };
    Ok(c.execute(
        "UPDATE devices SET token_hash = $1, name = $2 WHERE id = $3 AND revoked_at IS NULL",
        &[&token_hash, &name, &id],
    )
    .await?
        > 0)
}

pub(crate) async fn retire_devices(
    c: &mut PgConn<'_>,
    enrolment_key_hash: &[u8],
    replaced_by: &str,
    now: Millis,
) -> Result<usize, StoreError> {
    let by = uuid_required(replaced_by, "a device id")?;
    Ok(c.execute(
        "UPDATE devices SET revoked_at = $1, replaced_by = $2
         WHERE enrolment_key_hash = $3 AND id <> $2 AND revoked_at IS NULL",
        &[&now, &by, &enrolment_key_hash],
    )
    .await? as usize)
}

pub(crate) async fn revoke_device(
    c: &mut PgConn<'_>,
    device_id: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    let Some(id) = uuid_of(device_id) else {
        return Ok(false);
    };
    Ok(c.execute(
        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        &[&now, &id],
    )
    .await?
        > 0)
}

pub(crate) async fn touch_device_push(
    c: &mut PgConn<'_>,
    device_id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let Some(id) = uuid_of(device_id) else {
        return Ok(());
    };
    c.execute(
        "UPDATE devices SET last_push_at = $1 WHERE id = $2",
        &[&now, &id],
    )
    .await?;
    Ok(())
}
