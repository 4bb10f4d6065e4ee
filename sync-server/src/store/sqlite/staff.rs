//! Staff, sessions and lockouts on SQLite.

use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use gridcase_core::ids::CaseId;

use crate::store::staff::{Credentials, Reach, SessionRow, StaffRow};
use crate::store::StoreError;

const COLUMNS: &str = "id, login, name, role, unit_id, department_id";

fn staff_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffRow> {
    Ok(StaffRow {
        id: r.get(0)?,
        login: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        unit_id: r.get(4)?,
        department_id: r.get(5)?,
    })
}

pub(crate) fn find(
    conn: &Connection,
    id: Option<&str>,
    login: Option<&str>,
) -> Result<Option<StaffRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM staff WHERE id = ?1 OR login = ?2"
        ))?
        .query_row(params![id, login], staff_from)
        .optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<StaffRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM staff ORDER BY login"))?;
    let rows = stmt.query_map([], staff_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn credentials(
    conn: &Connection,
    login: &str,
) -> Result<Option<Credentials>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, password_hash, locked_until FROM staff WHERE login = ?1")?
        .query_row([login], |r| {
            Ok(Credentials {
                staff_id: r.get(0)?,
                password_hash: r.get(1)?,
                locked_until: r.get(2)?,
            })
        })
        .optional()?)
}

pub(crate) fn session(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT staff_id, csrf_token, expires_at FROM staff_sessions WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(SessionRow {
                staff_id: r.get(0)?,
                csrf_token: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .optional()?)
}

pub(crate) fn insert(
    conn: &Connection,
    s: &StaffRow,
    password_hash: &str,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO staff (id, login, name, role, unit_id, department_id, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.id,
        s.login,
        s.name,
        s.role,
        s.unit_id,
        s.department_id,
        password_hash,
        now
    ])?;
    Ok(())
}

pub(crate) fn set_unit(conn: &Connection, staff_id: &str, unit_id: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE staff SET unit_id = ?2 WHERE id = ?1",
        params![staff_id, unit_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("member of staff"));
    }
    Ok(())
}

pub(crate) fn set_password(
    conn: &Connection,
    staff_id: &str,
    password_hash: &str,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE staff SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
        params![staff_id, password_hash],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("member of staff"));
    }
    conn.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [staff_id])?;
    Ok(())
}

pub(crate) fn count_wrong_password(
    conn: &Connection,
    staff_id: &str,
    max_failures: u32,
    lock_until: Millis,
) -> Result<bool, StoreError> {
    let failures: u32 = conn.query_row(
        "UPDATE staff SET failed_logins = failed_logins + 1 WHERE id = ?1
         RETURNING failed_logins",
        [staff_id],
        |r| r.get(0),
    )?;
    if failures >= max_failures {
        conn.execute(
            "UPDATE staff SET failed_logins = 0, locked_until = ?1 WHERE id = ?2",
            params![lock_until, staff_id],
        )?;
        return Ok(true);
    }
    Ok(false)
}

pub(crate) fn start_session(
    conn: &Connection,
    token_hash: &[u8],
    s: &SessionRow,
    now: Millis,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
        [&s.staff_id],
    )?;
    conn.execute(
        "DELETE FROM staff_sessions WHERE staff_id = ?1 AND expires_at <= ?2",
        params![s.staff_id, now],
    )?;
    conn.execute(
        "INSERT INTO staff_sessions (token_hash, staff_id, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_hash, s.staff_id, s.csrf_token, now, s.expires_at],
    )?;
    Ok(())
}

pub(crate) fn end_session(conn: &Connection, token_hash: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM staff_sessions WHERE token_hash = ?1",
        [token_hash],
    )?;
    Ok(())
}

pub(crate) fn case_within(
    conn: &Connection,
    case_id: &CaseId,
    reach: Reach<'_>,
) -> Result<bool, StoreError> {
    let (sql, scope) = match reach {
        Reach::Unit(unit) => (
            "SELECT EXISTS (SELECT 1 FROM case_desk d
             JOIN case_scopes s ON s.case_id = d.case_id
             WHERE d.case_id = ?1 AND s.unit_id = ?2)",
            unit,
        ),
        Reach::Department(department) => (
            "SELECT EXISTS (SELECT 1 FROM case_desk d
             WHERE d.case_id = ?1 AND d.department_id = ?2)",
            department,
        ),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![case_id.to_string(), scope], |r| r.get(0))?)
}
