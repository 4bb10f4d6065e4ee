//! Departments (职能部门) cases are dispatched to. Creating, checking and
//! choosing them is in [`crate::centre::staff`] and
//! [`crate::centre::actions`]; the dispatch of every way in (dashboard,
//! admin command) and the desk row of each case read them here.

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;
use serde::Serialize;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// The unit whose cases it serves (`None`: any).
    pub unit_id: Option<String>,
}

impl ReadTx<'_> {
    /// Every department, by name.
    pub async fn list_departments(&mut self) -> Result<Vec<Department>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::list_departments(c, None),
            ReadTx::Postgres(c) => postgres::desk::list_departments(c, None).await,
        }
    }

    /// The departments that serve the case's area (everywhere, or a unit the
    /// case is seen from), by name.
    pub async fn departments_serving(
        &mut self,
        case_id: &CaseId,
    ) -> Result<Vec<Department>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::list_departments(c, Some(case_id)),
            ReadTx::Postgres(c) => postgres::desk::list_departments(c, Some(case_id)).await,
        }
    }

    pub async fn load_department(&mut self, id: &str) -> Result<Option<Department>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::find_department(c, Some(id), None),
            ReadTx::Postgres(c) => postgres::desk::find_department(c, Some(id), None).await,
        }
    }

    /// The department of this name (names are unique).
    pub async fn department_named(&mut self, name: &str) -> Result<Option<Department>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::find_department(c, None, Some(name)),
            ReadTx::Postgres(c) => postgres::desk::find_department(c, None, Some(name)).await,
        }
    }

    /// Whether the case is seen from `unit_id` (it is in it, or below it).
    pub async fn case_in_unit(
        &mut self,
        case_id: &CaseId,
        unit_id: &str,
    ) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::desk::case_in_unit(c, case_id, unit_id),
            ReadTx::Postgres(c) => postgres::desk::case_in_unit(c, case_id, unit_id).await,
        }
    }
}

impl Tx<'_> {
    /// A name already taken is a [`StoreError::Conflict`].
    pub async fn insert_department(
        &mut self,
        department: &Department,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::desk::insert_department(c, department, now),
            ReadTx::Postgres(c) => postgres::desk::insert_department(c, department, now).await,
        }
    }
}
