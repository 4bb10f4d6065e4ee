//! The desk rows and departments on SQLite.

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::departments::Department;
use crate::store::desk::{Desk, NewDesk, Unread};
use crate::store::StoreError;

fn department_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Department> {
    Ok(Department {
        id: r.get(0)?,
        name: r.get(1)?,
        unit_id: r.get(2)?,
    })
}

pub(crate) fn list_departments(
    conn: &Connection,
    serving: Option<&CaseId>,
) -> Result<Vec<Department>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, unit_id FROM departments d
         WHERE ?1 IS NULL OR d.unit_id IS NULL
            OR EXISTS (SELECT 1 FROM case_scopes s WHERE s.case_id = ?1 AND s.unit_id = d.unit_id)
         ORDER BY name",
    )?;
    let rows = stmt.query_map([serving.map(|c| c.to_string())], department_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn find_department(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Option<Department>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, name, unit_id FROM departments WHERE id = ?1 OR name = ?2")?
        .query_row(params![id, name], department_from)
        .optional()?)
}

pub(crate) fn case_in_unit(
    conn: &Connection,
    case_id: &CaseId,
    unit_id: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM case_scopes WHERE case_id = ?1 AND unit_id = ?2)",
        )?
        .query_row(params![case_id.to_string(), unit_id], |r| r.get(0))?)
}

pub(crate) fn insert_department(
    conn: &Connection,
    d: &Department,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO departments (id, name, unit_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![d.id, d.name, d.unit_id, now])?;
    Ok(())
}

pub(crate) fn load_desk(conn: &Connection, case_id: &CaseId) -> Result<Option<Desk>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT queue_unit_id, department_id, received_at, reopen_reason, overdue_chases
             FROM case_desk WHERE case_id = ?1",
        )?
        .query_row([case_id.to_string()], |r| {
            Ok(Desk {
                queue_unit_id: r.get(0)?,
                department_id: r.get(1)?,
                received_at: r.get(2)?,
                reopen_reason: r.get(3)?,
                overdue_chases: r.get(4)?,
            })
        })
        .optional()?)
}

pub(crate) fn has_dispatcher(conn: &Connection, unit_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE role = 'dispatcher' AND unit_id = ?1)",
        )?
        .query_row([unit_id], |r| r.get(0))?)
}

pub(crate) fn staff_unit(conn: &Connection, staff_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT unit_id FROM staff WHERE id = ?1")?
        .query_row([staff_id], |r| r.get(0))
        .optional()?
        .flatten())
}

pub(crate) fn unread_desks(conn: &Connection) -> Result<Vec<Unread>, StoreError> {
    let sql = format!(
        "SELECT d.case_id, d.queue_unit_id, c.grid_id FROM case_desk d JOIN cases c ON c.id = d.case_id
         WHERE c.status NOT IN {}
           AND (d.queue_unit_id IS NULL OR NOT EXISTS (
               SELECT 1 FROM staff s WHERE s.role = 'dispatcher' AND s.unit_id = d.queue_unit_id))
         ORDER BY d.case_id",
        *crate::status_sql::FINAL
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (case_id, queue_unit_id, grid_id) = row?;
        out.push(Unread {
            case_id: CaseId::parse(&case_id)
                .map_err(|e| StoreError::corrupt("a stored case id", e.reason))?,
            queue_unit_id,
            grid_id,
        });
    }
    Ok(out)
}

pub(crate) fn insert_desk(conn: &Connection, d: &NewDesk<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO case_desk
             (case_id, queue_unit_id, category, title, deadline, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.case_id.to_string(),
        d.queue_unit_id,
        d.category,
        d.title,
        d.deadline,
        d.received_at
    ])?;
    Ok(())
}

pub(crate) fn desk_dispatched(
    conn: &Connection,
    case_id: &CaseId,
    department: &str,
    deadline: Option<Millis>,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE case_desk SET department_id = COALESCE(
                 (SELECT id FROM departments WHERE id = ?2),
                 (SELECT id FROM departments WHERE name = ?2)),
             deadline = ?3, deadline_set_at = ?4, overdue_chases = 0, reopen_reason = NULL
         WHERE case_id = ?1",
    )?
    .execute(params![case_id.to_string(), department, deadline, now])?;
    Ok(())
}

pub(crate) fn desk_chased(
    conn: &Connection,
    case_id: &CaseId,
    now: Millis,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE case_desk SET overdue_chases = overdue_chases + 1
         WHERE case_id = ?1 AND deadline IS NOT NULL AND deadline <= ?2",
    )?
    .execute(params![case_id.to_string(), now])?;
    Ok(())
}

pub(crate) fn set_desk_queue(
    conn: &Connection,
    case_id: &CaseId,
    queue: Option<&str>,
    drop_department: bool,
) -> Result<(), StoreError> {
    let sql = if drop_department {
        "UPDATE case_desk SET queue_unit_id = ?2, department_id = NULL WHERE case_id = ?1"
    } else {
        "UPDATE case_desk SET queue_unit_id = ?2 WHERE case_id = ?1"
    };
    conn.prepare_cached(sql)?
        .execute(params![case_id.to_string(), queue])?;
    Ok(())
}

pub(crate) fn set_desk_reopen_reason(
    conn: &Connection,
    case_id: &CaseId,
    reason: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE case_desk SET reopen_reason = ?2 WHERE case_id = ?1")?
        .execute(params![case_id.to_string(), reason])?;
    Ok(())
}
