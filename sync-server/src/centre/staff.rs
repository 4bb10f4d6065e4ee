//! Departments and staff, their passwords, and the one rule of who at the
//! centre sees and acts on which case ([`Staff`]).
//!
//! - A dispatcher answers for a unit and everything under it: they see every
//!   case in it, and act on the cases queued at it or at a unit under it (a
//!   case escalated above them stays visible, but is no longer theirs).
//! - A department handler sees the cases dispatched to their department, and
//!   accepts, reports progress on and resolves them.
//! - A supervisor sees their unit's cases and acts on none.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use gridcase_core::case::check_text;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, Role};
use gridcase_core::time::Millis;
use rusqlite::{named_params, Connection};
use serde::Serialize;

use crate::accounts::new_id;
use crate::error::{reasons, AppError};
use crate::store::staff::{Reach, StaffRow};
use crate::store::{ReadTx, StoreError, Tx};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_LOGIN_CHARS: usize = 64;
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 reads the whole password; a megabyte of it is an attack, not a password.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Dispatcher,
    Department,
    Supervisor,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Dispatcher => "dispatcher",
            StaffRole::Department => "department",
            StaffRole::Supervisor => "supervisor",
        }
    }

    pub fn parse(s: &str) -> Option<StaffRole> {
        [
            StaffRole::Dispatcher,
            StaffRole::Department,
            StaffRole::Supervisor,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// The role the case rules know this person by.
    pub fn op_role(self) -> Role {
        match self {
            StaffRole::Dispatcher => Role::Dispatcher,
            StaffRole::Department => Role::Department,
            StaffRole::Supervisor => Role::Supervisor,
        }
    }
}

/// A member of staff as a session knows them.
#[derive(Debug, Clone, Serialize)]
pub struct Staff {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: StaffRole,
    /// The unit of a dispatcher or supervisor.
    pub unit_id: Option<String>,
    /// The department of a handler.
    pub department_id: Option<String>,
}

/// The condition on a case `c` (joined with its desk row `d`) that it is
/// visible to the staff member bound as `:scope` (see [`Staff::scope`]).
const VISIBLE_IN_UNIT: &str =
    "EXISTS (SELECT 1 FROM case_scopes s WHERE s.case_id = c.id AND s.unit_id = :scope)";
const VISIBLE_TO_DEPARTMENT: &str = "d.department_id = :scope";

impl Staff {
    pub fn actor(&self) -> Actor {
        Actor {
            role: self.role.op_role(),
            id: self.id.clone(),
        }
    }

    /// The SQL condition every centre query of cases adds: `c` is the
    /// `cases` row, `d` its `case_desk` row, `:scope` bound to [`Self::scope`].
    pub fn visible_sql(&self) -> &'static str {
        match self.role {
            StaffRole::Dispatcher | StaffRole::Supervisor => VISIBLE_IN_UNIT,
            StaffRole::Department => VISIBLE_TO_DEPARTMENT,
        }
    }

    /// The value of `:scope` in [`Self::visible_sql`].
    pub fn scope(&self) -> &str {
        match self.role {
            StaffRole::Department => self.department_id.as_deref().unwrap_or(""),
            _ => self.unit_id.as_deref().unwrap_or(""),
        }
    }

    /// Which cases the member sees, as the store asks it.
    pub fn reach(&self) -> Reach<'_> {
        match self.role {
            StaffRole::Dispatcher | StaffRole::Supervisor => Reach::Unit(self.scope()),
            StaffRole::Department => Reach::Department(self.scope()),
        }
    }

    /// Whether the case exists, has reached the centre, and is visible.
    pub async fn may_see(&self, tx: &mut ReadTx<'_>, case_id: &CaseId) -> Result<bool, StoreError> {
        tx.case_within(case_id, self.reach()).await
    }

    /// [`Self::may_see`] on the old path's connection (the queue, not yet on
    /// the store).
    pub fn sees(&self, conn: &Connection, case_id: &CaseId) -> Result<bool, AppError> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM cases c JOIN case_desk d ON d.case_id = c.id
             WHERE c.id = :case AND {})",
            self.visible_sql()
        );
        Ok(conn.prepare_cached(&sql)?.query_row(
            named_params! {":case": case_id.to_string(), ":scope": self.scope()},
            |r| r.get(0),
        )?)
    }

    /// Whether this dispatcher's centre is the one to act on a case queued at
    /// `queue_unit`: theirs, or a level below theirs.
    pub fn holds_queue(&self, map: &GridMap, queue_unit: Option<&str>) -> bool {
        match (self.role, queue_unit, self.unit_id.as_deref()) {
            (StaffRole::Dispatcher, Some(queue), Some(unit)) => {
                queue == unit || map.is_within(queue, unit)
            }
            _ => false,
        }
    }

    /// Whether this handler's department is the one the case is dispatched to.
    pub fn owns_department(&self, department_id: Option<&str>) -> bool {
        self.role == StaffRole::Department
            && department_id.is_some()
            && self.department_id.as_deref() == department_id
    }
}

/// Which cases a member of staff may count and export: the figures and the
/// export endpoints narrow every query by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportScope {
    /// The unit (and everything under it); `None`: every unit.
    pub unit: Option<String>,
    /// Only cases dispatched to this department.
    pub department: Option<String>,
}

impl Staff {
    /// The scope of a report this person asks for on `requested` unit: a
    /// dispatcher or supervisor gets their own unit or one under it (their own
    /// by default), a handler their department's cases in any unit.
    pub fn report_scope(
        &self,
        map: &GridMap,
        requested: Option<&str>,
    ) -> Result<ReportScope, AppError> {
        if let Some(unit) = requested {
            if map.get(unit).is_none() {
                return Err(AppError::invalid(
                    "unit",
                    reasons::NOT_A_UNIT,
                    "unit: is not in the grid map",
                ));
            }
        }
        match self.role {
            StaffRole::Department => Ok(ReportScope {
                unit: requested.map(str::to_string),
                // The CHECK on staff gives every handler a department; an
                // empty id matches no case rather than every case.
                department: Some(self.department_id.clone().unwrap_or_default()),
            }),
            StaffRole::Dispatcher | StaffRole::Supervisor => {
                let own = self.unit_id.as_deref().unwrap_or("");
                let unit = requested.unwrap_or(own);
                if unit != own && !map.is_within(unit, own) {
                    return Err(AppError::forbidden(
                        reasons::OUTSIDE_YOUR_AREA,
                        "unit: is outside the area you answer for",
                    )
                    .with_field("unit"));
                }
                Ok(ReportScope {
                    unit: Some(unit.to_string()),
                    department: None,
                })
            }
        }
    }
}

impl From<StaffRow> for Staff {
    fn from(r: StaffRow) -> Staff {
        Staff {
            id: r.id,
            login: r.login,
            name: r.name,
            // The table's CHECK allows only the three roles.
            role: StaffRole::parse(&r.role).unwrap_or(StaffRole::Supervisor),
            unit_id: r.unit_id,
            department_id: r.department_id,
        }
    }
}

pub(crate) async fn load_staff(
    tx: &mut ReadTx<'_>,
    staff_id: &str,
) -> Result<Option<Staff>, StoreError> {
    Ok(tx.load_staff(staff_id).await?.map(Staff::from))
}

fn no_such_login() -> AppError {
    AppError::invalid(
        "login",
        reasons::NO_SUCH_LOGIN,
        "no member of staff has this login",
    )
}

/// The Argon2id PHC string of a password (a fresh random salt each time).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    check_password(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "hashing a password failed");
            AppError::internal()
        })
}

/// Whether `password` matches the PHC string. A malformed stored hash is a
/// mismatch (and logged), never a panic.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match Argon2::default().verify_password(password.as_bytes(), phc) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::PasswordInvalid) => false,
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash does not parse");
            false
        }
    }
}

/// A PHC string of some password nobody has: verifying against it costs what
/// a real check costs, so an unknown login answers as slowly as a known one.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"no account has this password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn check_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            reasons::PASSWORD_TOO_SHORT,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid(
            "password",
            reasons::PASSWORD_TOO_LONG,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A login as people type it: case and surrounding spaces do not matter.
pub fn normalise_login(login: &str) -> Result<String, AppError> {
    let login = login.trim().to_lowercase();
    if login.is_empty() {
        return Err(AppError::invalid(
            "login",
            reasons::REQUIRED,
            "must not be empty",
        ));
    }
    if login.chars().count() > MAX_LOGIN_CHARS {
        return Err(AppError::invalid(
            "login",
            reasons::TOO_LONG,
            format!("must be at most {MAX_LOGIN_CHARS} characters"),
        ));
    }
    if login.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            "login",
            reasons::SPACES_IN_LOGIN,
            "must not contain spaces or control characters",
        ));
    }
    Ok(login)
}

fn check_name(field: &'static str, name: &str) -> Result<String, AppError> {
    check_text(field, name, 1, MAX_NAME_CHARS).map_err(|e| AppError::input(&e))?;
    if name.contains(['\n', '\r']) {
        return Err(AppError::invalid(
            field,
            reasons::NOT_SINGLE_LINE,
            "must be a single line",
        ));
    }
    Ok(name.trim().to_string())
}

fn check_unit(map: &GridMap, field: &'static str, unit: &str) -> Result<(), AppError> {
    if map.is_empty() {
        return Err(AppError::invalid(
            field,
            reasons::NO_GRID_MAP,
            "no grid map is imported yet; import one first",
        ));
    }
    if map.get(unit).is_none() {
        return Err(AppError::invalid(
            field,
            reasons::NOT_A_UNIT,
            "is not a unit of the imported map",
        ));
    }
    Ok(())
}

pub use crate::store::departments::Department;

/// Creates a department (its name unique), serving `unit_id` and below if
/// given.
pub(crate) async fn create_department(
    tx: &mut Tx<'_>,
    map: &GridMap,
    name: &str,
    unit_id: Option<&str>,
    now: Millis,
) -> Result<Department, AppError> {
    let name = check_name("name", name)?;
    if let Some(unit) = unit_id {
        check_unit(map, "unit", unit)?;
    }
    let taken = || {
        AppError::invalid(
            "name",
            reasons::NAME_TAKEN,
            "a department of that name exists already",
        )
    };
    if tx.department_named(&name).await?.is_some() {
        return Err(taken());
    }
    let department = Department {
        id: new_id(),
        name,
        unit_id: unit_id.map(str::to_string),
    };
    tx.insert_department(&department, now).await?;
    Ok(department)
}

/// The department `given` names: its id, or its name as people type it
/// (names are unique). Refused by `field` when there is none.
pub(crate) async fn resolve_department(
    tx: &mut ReadTx<'_>,
    field: &'static str,
    given: &str,
) -> Result<Department, AppError> {
    let given = given.trim();
    if let Some(d) = tx.load_department(given).await? {
        return Ok(d);
    }
    tx.department_named(given).await?.ok_or_else(|| {
        AppError::invalid(
            field,
            reasons::NO_SUCH_DEPARTMENT,
            "no department has this id or name (list-departments shows them)",
        )
    })
}

/// Whether `department` serves the area of the case: it serves everywhere,
/// or the case is in its unit (or below it).
pub(crate) async fn serves_case(
    tx: &mut ReadTx<'_>,
    department: &Department,
    case_id: &CaseId,
) -> Result<bool, StoreError> {
    match &department.unit_id {
        None => Ok(true),
        Some(unit) => tx.case_in_unit(case_id, unit).await,
    }
}

/// What the admin gives to create a member of staff.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub login: String,
    pub name: String,
    pub role: StaffRole,
    /// For a dispatcher or supervisor.
    pub unit_id: Option<String>,
    /// For a department handler.
    pub department_id: Option<String>,
    pub password: String,
}

/// Checks and stores a member of staff; the password is hashed by the caller
/// (outside the write transaction: Argon2 takes a while on purpose).
pub(crate) async fn create_staff(
    tx: &mut Tx<'_>,
    map: &GridMap,
    new: &NewStaff,
    password_hash: &str,
    now: Millis,
) -> Result<Staff, AppError> {
    let login = normalise_login(&new.login)?;
    let name = check_name("name", &new.name)?;
    let department_id = match new.role {
        StaffRole::Dispatcher | StaffRole::Supervisor => {
            let unit = new.unit_id.as_deref().ok_or_else(|| {
                AppError::invalid(
                    "unit",
                    reasons::NEEDS_UNIT,
                    "a dispatcher or supervisor needs a unit",
                )
            })?;
            check_unit(map, "unit", unit)?;
            if new.department_id.is_some() {
                return Err(AppError::invalid(
                    "department",
                    reasons::DEPARTMENT_NOT_FOR_ROLE,
                    "only a department handler has a department",
                ));
            }
            None
        }
        StaffRole::Department => {
            let department = new.department_id.as_deref().ok_or_else(|| {
                AppError::invalid(
                    "department",
                    reasons::NEEDS_DEPARTMENT,
                    "a department handler needs a department",
                )
            })?;
            let department = resolve_department(tx, "department", department).await?;
            if new.unit_id.is_some() {
                return Err(AppError::invalid(
                    "unit",
                    reasons::UNIT_NOT_FOR_HANDLER,
                    "a department handler answers for a department, not a unit",
                ));
            }
            Some(department.id)
        }
    };
    let taken = || AppError::invalid("login", reasons::LOGIN_TAKEN, "is taken already");
    if tx.staff_by_login(&login).await?.is_some() {
        return Err(taken());
    }
    let row = StaffRow {
        id: new_id(),
        login,
        name,
        role: new.role.as_str().to_string(),
        unit_id: new.unit_id.clone(),
        department_id,
    };
    // Two instances creating the same login at once: the unique login
    // decides, and the loser's transaction runs again and finds it taken.
    tx.insert_staff(&row, password_hash, now).await?;
    let staff = Staff::from(row);
    // A new dispatcher may be the first to read cases waiting below them.
    if staff.role == StaffRole::Dispatcher {
        super::desk::rehome(tx, map).await?;
    }
    Ok(staff)
}

/// Moves a dispatcher or supervisor to another unit, then re-homes the cases
/// that no dispatcher reads any more (or that the move lets one read).
pub(crate) async fn move_staff(
    tx: &mut Tx<'_>,
    map: &GridMap,
    login: &str,
    unit: &str,
) -> Result<Staff, AppError> {
    let login = normalise_login(login)?;
    let staff = Staff::from(tx.staff_by_login(&login).await?.ok_or_else(no_such_login)?);
    if staff.role == StaffRole::Department {
        return Err(AppError::invalid(
            "unit",
            reasons::UNIT_NOT_FOR_HANDLER,
            "a department handler answers for a department, not a unit",
        ));
    }
    check_unit(map, "unit", unit)?;
    tx.set_staff_unit(&staff.id, unit).await?;
    if staff.role == StaffRole::Dispatcher {
        super::desk::rehome(tx, map).await?;
    }
    load_staff(tx, &staff.id)
        .await?
        .ok_or_else(AppError::internal)
}

/// Replaces a member's password (hashed by the caller), lifts a lockout and
/// ends every session they have: whoever knew the old one is out at once.
pub(crate) async fn set_password(
    tx: &mut Tx<'_>,
    login: &str,
    password_hash: &str,
) -> Result<Staff, AppError> {
    let login = normalise_login(login)?;
    let staff = tx.staff_by_login(&login).await?.ok_or_else(no_such_login)?;
    tx.set_staff_password(&staff.id, password_hash).await?;
    Ok(Staff::from(staff))
}

pub(crate) async fn list_staff(tx: &mut ReadTx<'_>) -> Result<Vec<Staff>, StoreError> {
    Ok(tx
        .list_staff()
        .await?
        .into_iter()
        .map(Staff::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_itself() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse battery "));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(!verify_password(decoy_hash(), "correct horse battery"));
    }

    #[test]
    fn short_and_huge_passwords_are_refused_by_field() {
        assert_eq!(
            hash_password("short").unwrap_err().body.field.as_deref(),
            Some("password")
        );
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(hash_password(&huge).is_err());
    }

    #[test]
    fn logins_forgive_case_but_not_spaces_inside() {
        assert_eq!(normalise_login("  Wang.Li ").unwrap(), "wang.li");
        assert!(normalise_login("wang li").is_err());
        assert!(normalise_login("").is_err());
    }
}
