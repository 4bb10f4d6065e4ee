//! Accounts, enrolment codes and devices on SQLite.

use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::devices::{DeviceRow, DeviceToken, EnrolCode, NewAccount, NewDevice};
use crate::store::StoreError;

pub(crate) fn device_by_token(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<DeviceToken>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, account_id, revoked_at, replaced_by FROM devices WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(DeviceToken {
                device_id: r.get(0)?,
                account_id: r.get(1)?,
                revoked_at: r.get(2)?,
                replaced_by: r.get(3)?,
            })
        })
        .optional()?)
}

pub(crate) fn account_grids(
    conn: &Connection,
    account_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT grid_id FROM account_grids WHERE account_id = ?1 ORDER BY grid_id",
    )?;
    let rows = stmt.query_map([account_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn account_name(
    conn: &Connection,
    account_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name FROM accounts WHERE id = ?1")?
        .query_row([account_id], |r| r.get(0))
        .optional()?)
}

pub(crate) fn same_terminal(conn: &Connection, a: &str, b: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM devices x JOIN devices y
                 ON x.enrolment_key_hash = y.enrolment_key_hash
             WHERE x.id = ?1 AND y.id = ?2 AND x.enrolment_key_hash IS NOT NULL)",
        )?
        .query_row([a, b], |r| r.get(0))?)
}

pub(crate) fn list_devices(
    conn: &Connection,
    only: Option<&str>,
) -> Result<Vec<DeviceRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.name, d.account_id, a.name, d.created_at, d.last_push_at, d.revoked_at,
                d.replaced_by
         FROM devices d JOIN accounts a ON a.id = d.account_id
         WHERE ?1 IS NULL OR d.id = ?1
         ORDER BY d.created_at, d.id",
    )?;
    let rows = stmt.query_map([only], |r| {
        Ok(DeviceRow {
            device_id: r.get(0)?,
            device_name: r.get(1)?,
            account_id: r.get(2)?,
            account_name: r.get(3)?,
            created_at: r.get(4)?,
            last_push_at: r.get(5)?,
            revoked_at: r.get(6)?,
            replaced_by: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn insert_account(
    conn: &Connection,
    account: &NewAccount<'_>,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO accounts (id, name, role, created_at) VALUES (?1, ?2, 'grid_leader', ?3)",
    )?
    .execute(params![account.id, account.name, now])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO account_grids (account_id, grid_id) VALUES (?1, ?2)")?;
    for grid in account.grid_ids {
        stmt.execute(params![account.id, grid])?;
    }
    Ok(())
}

pub(crate) fn insert_enrol_code(
    conn: &Connection,
    code_hash: &[u8],
    account_id: &str,
    now: Millis,
    expires_at: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO enrol_codes (code_hash, account_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![code_hash, account_id, now, expires_at])?;
    Ok(())
}

pub(crate) fn enrol_code(
    conn: &Connection,
    code_hash: &[u8],
) -> Result<Option<EnrolCode>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT account_id, expires_at, used_at, device_id, enrolment_key_hash
             FROM enrol_codes WHERE code_hash = ?1",
        )?
        .query_row([code_hash], |r| {
            Ok(EnrolCode {
                account_id: r.get(0)?,
                expires_at: r.get(1)?,
                used_at: r.get(2)?,
                device_id: r.get(3)?,
                enrolment_key_hash: r.get(4)?,
            })
        })
        .optional()?)
}

pub(crate) fn mark_code_used(
    conn: &Connection,
    code_hash: &[u8],
    device_id: &str,
    enrolment_key_hash: Option<&[u8]>,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE enrol_codes SET used_at = ?1, device_id = ?2, enrolment_key_hash = ?3
         WHERE code_hash = ?4",
    )?
    .execute(params![now, device_id, enrolment_key_hash, code_hash])?;
    Ok(())
}

pub(crate) fn insert_device(conn: &Connection, d: &NewDevice<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO devices (id, account_id, name, token_hash, created_at, enrolment_key_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.id,
        d.account_id,
        d.name,
        d.token_hash,
        d.created_at,
        d.enrolment_key_hash
    ])?;
    Ok(())
}

pub(crate) fn renew_device_token(
    conn: &Connection,
    device_id: &str,
    token_hash: &[u8],
    name: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE devices SET token_hash = ?1, name = ?2 WHERE id = ?3 AND revoked_at IS NULL",
        )?
        .execute(params![token_hash, name, device_id])?
        > 0)
}

pub(crate) fn retire_devices(
    conn: &Connection,
    enrolment_key_hash: &[u8],
    replaced_by: &str,
    now: Millis,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE devices SET revoked_at = ?1, replaced_by = ?2
             WHERE enrolment_key_hash = ?3 AND id != ?2 AND revoked_at IS NULL",
        )?
        .execute(params![now, replaced_by, enrolment_key_hash])?)
}

pub(crate) fn revoke_device(
    conn: &Connection,
    device_id: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL")?
        .execute(params![now, device_id])?
        > 0)
}

pub(crate) fn touch_device_push(
    conn: &Connection,
    device_id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE devices SET last_push_at = ?1 WHERE id = ?2")?
        .execute(params![now, device_id])?;
    Ok(())
}
