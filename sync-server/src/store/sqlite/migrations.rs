//! The SQLite schema: numbered migrations in `sync-server/migrations/sqlite/`,
//! run by [`gridcase_sql::migrate`] (the terminal's runner too). Each runs
//! once, in order; `user_version` records how far a database has come. Never
//! edit a released migration: add the next one.

use gridcase_sql::Migration;
use rusqlite::Connection;

use crate::store::StoreError;

pub(crate) static MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_init",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        name: "0002_sync_recovery",
        sql: include_str!("../../../migrations/sqlite/0002_sync_recovery.sql"),
    },
    Migration {
        name: "0003_centre",
        sql: include_str!("../../../migrations/sqlite/0003_centre.sql"),
    },
    Migration {
        name: "0004_open311",
        sql: include_str!("../../../migrations/sqlite/0004_open311.sql"),
    },
    Migration {
        name: "0005_no_case_out_of_sight",
        sql: include_str!("../../../migrations/sqlite/0005_no_case_out_of_sight.sql"),
    },
];

/// Brings the database up to date (one `BEGIN IMMEDIATE`: a server and an
/// admin command starting on a fresh database never both migrate it).
pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    for name in gridcase_sql::migrate(conn, MIGRATIONS)? {
        tracing::info!(migration = name, backend = "sqlite", "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridcase_sql::testing;

    #[test]
    fn an_upgraded_database_equals_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        testing::assert_upgrades_equal_fresh(dir.path(), MIGRATIONS, None);
    }

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        testing::assert_listed_in_order(&dir, MIGRATIONS);
    }

    #[test]
    fn migrating_twice_changes_nothing_and_newer_is_refused() {
        testing::assert_idempotent_and_refuses_newer(MIGRATIONS);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
