//! Staff, sessions and lockouts on PostgreSQL. Ids are uuid columns: an id
//! given as text that is not one matches no row.

use gridcase_core::time::Millis;
use uuid::Uuid;

use super::{col, id_text, uuid_of, PgConn};
use gridcase_core::ids::CaseId;

use crate::store::staff::{Credentials, Reach, SessionRow, StaffRow};
use crate::store::StoreError;

fn staff_from(r: &tokio_postgres::Row) -> Result<StaffRow, StoreError> {
    Ok(StaffRow {
        id: id_text(col(r, 0)?),
        login: col(r, 1)?,
        name: col(r, 2)?,
        role: col(r, 3)?,
        unit_id: col(r, 4)?,
        department_id: col::<Option<Uuid>>(r, 5)?.map(id_text),
    })
}

fn required(id: &str, what: &'static str) -> Result<Uuid, StoreError> {
    uuid_of(id).ok_or(StoreError::NotFound(what))
}

pub(crate) async fn find(
    c: &mut PgConn<'_>,
    id: Option<&str>,
    login: Option<&str>,
) -> Result<Option<StaffRow>, StoreError> {
    let id = id.and_then(uuid_of);
    if id.is_none() && login.is_none() {
        return Ok(None);
    }
    c.query_opt(
        "SELECT id, login, name, role, unit_id, department_id FROM staff
         WHERE id = $1 OR login = $2",
        &[&id, &login],
    )
    .await?
    .map(|r| staff_from(&r))
    .transpose()
}

pub(crate) async fn list(c: &mut PgConn<'_>) -> Result<Vec<StaffRow>, StoreError> {
    c.query(
        "SELECT id, login, name, role, unit_id, department_id FROM staff ORDER BY login",
        &[],
    )
    .await?
    .iter()
    .map(staff_from)
    .collect()
}

pub(crate) async fn credentials(
    c: &mut PgConn<'_>,
    login: &str,
) -> Result<Option<Credentials>, StoreError> {
    c.query_opt(
        "SELECT id, password_hash, locked_until FROM staff WHERE login = $1",
        &[&login],
    )
    .await?
    .map(|r| {
        Ok(Credentials {
            staff_id: id_text(col(&r, 0)?),
            password_hash: col(&r, 1)?,
            locked_until: col(&r, 2)?,
        })
    })
    .transpose()
}

pub(crate) async fn session(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
) -> Result<Option<SessionRow>, StoreError> {
    c.query_opt(
        "SELECT staff_id, csrf_token, expires_at FROM staff_sessions WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?
    .map(|r| {
        Ok(SessionRow {
            staff_id: id_text(col(&r, 0)?),
            csrf_token: col(&r, 1)?,
            expires_at: col(&r, 2)?,
        })
    })
    .transpose()
}

pub(crate) async fn insert(
    c: &mut PgConn<'_>,
    s: &StaffRow,
    password_hash: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let id = uuid_of(&s.id)
        .ok_or_else(|| StoreError::Backend("a staff id that is not a uuid".into()))?;
    let department = match &s.department_id {
        Some(d) => Some(required(d, "department")?),
        None => None,
    };
    c.execute(
        "INSERT INTO staff (id, login, name, role, unit_id, department_id, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &s.login,
            &s.name,
            &s.role,
            &s.unit_id,
            &department,
            &password_hash,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_unit(
    c: &mut PgConn<'_>,
    staff_id: &str,
    unit_id: &str,
) -> Result<(), StoreError> {
    let id = required(staff_id, "member of staff")?;
    let n = c
        .execute(
            "UPDATE staff SET unit_id = $2 WHERE id = $1",
            &[&id, &unit_id],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("member of staff"));
    }
    Ok(())
}

pub(crate) async fn set_password(
    c: &mut PgConn<'_>,
    staff_id: &str,
    password_hash: &str,
) -> Result<(), StoreError> {
    let id = required(staff_id, "member of staff")?;
    let n = c
        .execute(
            "UPDATE staff SET password_hash = $2, failed_logins = 0, locked_until = NULL
             WHERE id = $1",
            &[&id, &password_hash],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("member of staff"));
    }
    c.execute("DELETE FROM staff_sessions WHERE staff_id = $1", &[&id])
        .await?;
    Ok(())
}

/// One statement: the row lock makes instances counting at once take turns,
/// and the count restarts in the same statement that locks the login.
pub(crate) async fn count_wrong_password(
    c: &mut PgConn<'_>,
    staff_id: &str,
    max_failures: u32,
    lock_until: Millis,
) -> Result<bool, StoreError> {
    let id = required(staff_id, "member of staff")?;
    let max = i32::try_from(max_failures).unwrap_or(i32::MAX);
    let row = c
        .query_one(
            "UPDATE staff SET
                 failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
             WHERE id = $1
             RETURNING failed_logins = 0",
            &[&id, &max, &lock_until],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn start_session(
    c: &mut PgConn<'_>,
    token_hash: &[u8],
    s: &SessionRow,
    now: Millis,
) -> Result<(), StoreError> {
    let id = required(&s.staff_id, "member of staff")?;
    c.execute(
        "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1",
        &[&id],
    )
    .await?;
    c.execute(
        "DELETE FROM staff_sessions WHERE staff_id = $1 AND expires_at <= $2",
        &[&id, &now],
    )
    .await?;
    c.execute(
        "INSERT INTO staff_sessions (token_hash, staff_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&token_hash, &id, &s.csrf_token, &now, &s.expires_at],
    )
    .await?;
    Ok(())
}

pub(crate) async fn end_session(c: &mut PgConn<'_>, token_hash: &[u8]) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM staff_sessions WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    Ok(())
}

pub(crate) async fn case_within(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    reach: Reach<'_>,
) -> Result<bool, StoreError> {
    let row = match reach {
        Reach::Unit(unit) => {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM case_desk d
                 JOIN case_scopes s ON s.case_id = d.case_id
                 WHERE d.case_id = $1 AND s.unit_id = $2)",
                &[case_id.as_uuid(), &unit],
            )
            .await?
        }
        Reach::Department(department) => {
            let Some(department) = uuid_of(department) else {
                return Ok(false);
            };
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM case_desk d
                 WHERE d.case_id = $1 AND d.department_id = $2)",
                &[case_id.as_uuid(), &department],
            )
            .await?
        }
    };
    col(&row, 0)
}
