//! The desk rows and departments on PostgreSQL.

use std::sync::LazyLock;

use gridcase_core::case::CaseStatus;
use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;
use uuid::Uuid;

use super::{col, id_text, uuid_of, PgConn};
use crate::store::departments::Department;
use crate::store::desk::{Desk, NewDesk, Unread};
use crate::store::StoreError;

/// Statuses that accept nothing more, from the core.
static FINAL: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| crate::status_sql::names(CaseStatus::is_final));

fn department_from(r: &tokio_postgres::Row) -> Result<Department, StoreError> {
    Ok(Department {
        id: id_text(col(r, 0)?),
        name: col(r, 1)?,
        unit_id: col(r, 2)?,
    })
}

pub(crate) async fn list_departments(
    c: &mut PgConn<'_>,
    serving: Option<&CaseId>,
) -> Result<Vec<Department>, StoreError> {
    let rows = c
        .query(
            "SELECT id, name, unit_id FROM departments d
             WHERE $1::uuid IS NULL OR d.unit_id IS NULL
                OR EXISTS (SELECT 1 FROM case_scopes s
                           WHERE s.case_id = $1 AND s.unit_id = d.unit_id)
             ORDER BY name",
            &[&serving.map(|c| *c.as_uuid())],
        )
        .await?;
    rows.iter().map(department_from).collect()
}

pub(crate) async fn find_department(
    c: &mut PgConn<'_>,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Option<Department>, StoreError> {
    let id = id.and_then(uuid_of);
    if id.is_none() && name.is_none() {
        return Ok(None);
    }
    c.query_opt(
        "SELECT id, name, unit_id FROM departments WHERE id = $1 OR name = $2",
        &[&id, &name],
    )
    .await?
    .map(|r| department_from(&r))
    .transpose()
}

pub(crate) async fn case_in_unit(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    unit_id: &str,
) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM case_scopes WHERE case_id = $1 AND unit_id = $2)",
            &[case_id.as_uuid(), &unit_id],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn insert_department(
    c: &mut PgConn<'_>,
    d: &Department,
    now: Millis,
) -> Result<(), StoreError> {
    let id = uuid_of(&d.id)
        .ok_or_else(|| StoreError::Backend("a department id that is not a uuid".into()))?;
    c.execute(
        "INSERT INTO departments (id, name, unit_id, created_at) VALUES ($1, $2, $3, $4)",
        &[&id, &d.name, &d.unit_id, &now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn load_desk(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
) -> Result<Option<Desk>, StoreError> {
    c.query_opt(
        "SELECT queue_unit_id, department_id, received_at, reopen_reason, overdue_chases
         FROM case_desk WHERE case_id = $1",
        &[case_id.as_uuid()],
    )
    .await?
    .map(|r| {
        Ok(Desk {
            queue_unit_id: col(&r, 0)?,
            department_id: col::<Option<Uuid>>(&r, 1)?.map(id_text),
            received_at: col(&r, 2)?,
            reopen_reason: col(&r, 3)?,
            overdue_chases: col::<i32>(&r, 4)?.max(0) as u32,
        })
    })
    .transpose()
}

pub(crate) async fn has_dispatcher(c: &mut PgConn<'_>, unit_id: &str) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE role = 'dispatcher' AND unit_id = $1)",
            &[&unit_id],
        )
        .await?;
    col(&row, 0)
}

pub(crate) async fn staff_unit(
    c: &mut PgConn<'_>,
    staff_id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(id) = uuid_of(staff_id) else {
        return Ok(None);
    };
    Ok(
        c.query_opt("SELECT unit_id FROM staff WHERE id = $1", &[&id])
            .await?
            .map(|r| col::<Option<String>>(&r, 0))
            .transpose()?
            .flatten(),
    )
}

pub(crate) async fn unread_desks(c: &mut PgConn<'_>) -> Result<Vec<Unread>, StoreError> {
    let rows = c
        .query(
            "SELECT d.case_id, d.queue_unit_id, c.grid_id FROM case_desk d
             JOIN cases c ON c.id = d.case_id
             WHERE c.status <> ALL($1)
               AND (d.queue_unit_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM staff s WHERE s.role = 'dispatcher'
                       AND s.unit_id = d.queue_unit_id))
             ORDER BY d.case_id",
            &[&*FINAL],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Unread {
                case_id: CaseId::from_uuid(col(r, 0)?),
                queue_unit_id: col(r, 1)?,
                grid_id: col(r, 2)?,
            })
        })
        .collect()
}

pub(crate) async fn insert_desk(c: &mut PgConn<'_>, d: &NewDesk<'_>) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO case_desk (case_id, queue_unit_id, category, title, deadline, received_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (case_id) DO NOTHING",
        &[
            d.case_id.as_uuid(),
            &d.queue_unit_id,
            &d.category,
            &d.title,
            &d.deadline,
            &d.received_at,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn desk_dispatched(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    department: &str,
    deadline: Option<Millis>,
    now: Millis,
) -> Result<(), StoreError> {
    // By id; a dispatch recorded before ids were stored names it.
    c.execute(
        "UPDATE case_desk SET department_id = COALESCE(
                 (SELECT id FROM departments WHERE id = $2),
                 (SELECT id FROM departments WHERE name = $3)),
             deadline = $4, deadline_set_at = $5, overdue_chases = 0, reopen_reason = NULL
         WHERE case_id = $1",
        &[
            case_id.as_uuid(),
            &uuid_of(department),
            &department,
            &deadline,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn desk_chased(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    now: Millis,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE case_desk SET overdue_chases = overdue_chases + 1
         WHERE case_id = $1 AND deadline IS NOT NULL AND deadline <= $2",
        &[case_id.as_uuid(), &now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_desk_queue(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    queue: Option<&str>,
    drop_department: bool,
) -> Result<(), StoreError> {
    let sql = if drop_department {
        "UPDATE case_desk SET queue_unit_id = $2, department_id = NULL WHERE case_id = $1"
    } else {
        "UPDATE case_desk SET queue_unit_id = $2 WHERE case_id = $1"
    };
    c.execute(sql, &[case_id.as_uuid(), &queue]).await?;
    Ok(())
}

pub(crate) async fn set_desk_reopen_reason(
    c: &mut PgConn<'_>,
    case_id: &CaseId,
    reason: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE case_desk SET reopen_reason = $2 WHERE case_id = $1",
        &[case_id.as_uuid(), &reason],
    )
    .await?;
    Ok(())
}
