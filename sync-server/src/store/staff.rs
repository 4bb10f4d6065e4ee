//! Staff, their dashboard sessions and login lockouts. What a role may do,
//! the password rules and the lockout policy are in
//! [`crate::centre::staff`] and [`crate::centre::session`]; the rows are
//! here. Counting a wrong password is one statement on the member's row, so
//! instances counting at once never lose a count.

use gridcase_core::ids::CaseId;
use gridcase_core::time::Millis;

use super::{postgres, sqlite, ReadTx, StoreError, Tx};

/// A member of staff as stored (the role as its stored word; the table
/// allows only the three roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: String,
    pub unit_id: Option<String>,
    pub department_id: Option<String>,
}

/// What a login checks before it hashes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub staff_id: String,
    pub password_hash: String,
    pub locked_until: Option<Millis>,
}

/// A session, found by the SHA-256 of its cookie's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub staff_id: String,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// Which cases a member of staff sees (the rule is
/// [`crate::centre::staff::Staff`]'s): those seen from a unit, or those
/// dispatched to a department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach<'a> {
    Unit(&'a str),
    Department(&'a str),
}

impl ReadTx<'_> {
    /// Whether the case exists, has reached the centre (it has a desk row),
    /// and is within `reach`.
    pub async fn case_within(
        &mut self,
        case_id: &CaseId,
        reach: Reach<'_>,
    ) -> Result<bool, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::case_within(c, case_id, reach),
            ReadTx::Postgres(c) => postgres::staff::case_within(c, case_id, reach).await,
        }
    }

    pub async fn load_staff(&mut self, staff_id: &str) -> Result<Option<StaffRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::find(c, Some(staff_id), None),
            ReadTx::Postgres(c) => postgres::staff::find(c, Some(staff_id), None).await,
        }
    }

    /// The member with this (normalised) login.
    pub async fn staff_by_login(&mut self, login: &str) -> Result<Option<StaffRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::find(c, None, Some(login)),
            ReadTx::Postgres(c) => postgres::staff::find(c, None, Some(login)).await,
        }
    }

    /// Every member, by login.
    pub async fn list_staff(&mut self) -> Result<Vec<StaffRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::list(c),
            ReadTx::Postgres(c) => postgres::staff::list(c).await,
        }
    }

    pub async fn staff_credentials(
        &mut self,
        login: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::credentials(c, login),
            ReadTx::Postgres(c) => postgres::staff::credentials(c, login).await,
        }
    }

    pub async fn staff_session(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<SessionRow>, StoreError> {
        match self {
            ReadTx::Sqlite(c) => sqlite::staff::session(c, token_hash),
            ReadTx::Postgres(c) => postgres::staff::session(c, token_hash).await,
        }
    }
}

impl Tx<'_> {
    /// A login already taken is a [`StoreError::Conflict`].
    pub async fn insert_staff(
        &mut self,
        staff: &StaffRow,
        password_hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::staff::insert(c, staff, password_hash, now),
            ReadTx::Postgres(c) => postgres::staff::insert(c, staff, password_hash, now).await,
        }
    }

    pub async fn set_staff_unit(
        &mut self,
        staff_id: &str,
        unit_id: &str,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::staff::set_unit(c, staff_id, unit_id),
            ReadTx::Postgres(c) => postgres::staff::set_unit(c, staff_id, unit_id).await,
        }
    }

    /// Replaces the password, lifts a lockout and ends every session of the
    /// member.
    pub async fn set_staff_password(
        &mut self,
        staff_id: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::staff::set_password(c, staff_id, password_hash),
            ReadTx::Postgres(c) => postgres::staff::set_password(c, staff_id, password_hash).await,
        }
    }

    /// Counts a wrong password; at `max_failures` the count starts again and
    /// the login is locked until `lock_until`. Answers whether it locked.
    pub async fn count_wrong_password(
        &mut self,
        staff_id: &str,
        max_failures: u32,
        lock_until: Millis,
    ) -> Result<bool, StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => {
                sqlite::staff::count_wrong_password(c, staff_id, max_failures, lock_until)
            }
            ReadTx::Postgres(c) => {
                postgres::staff::count_wrong_password(c, staff_id, max_failures, lock_until).await
            }
        }
    }

    /// A login that succeeded: forgets wrong passwords and a lockout, drops
    /// the member's ended sessions and starts this one.
    pub async fn start_session(
        &mut self,
        token_hash: &[u8],
        session: &SessionRow,
        now: Millis,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::staff::start_session(c, token_hash, session, now),
            ReadTx::Postgres(c) => {
                postgres::staff::start_session(c, token_hash, session, now).await
            }
        }
    }

    pub async fn end_session(&mut self, token_hash: &[u8]) -> Result<(), StoreError> {
        match &mut self.0 {
            ReadTx::Sqlite(c) => sqlite::staff::end_session(c, token_hash),
            ReadTx::Postgres(c) => postgres::staff::end_session(c, token_hash).await,
        }
    }
}
