//! Numbered schema migrations (`migrations/NNNN_name.sql`), run by the
//! runner the server's SQLite backend uses too ([`gridcase_sql::migrate`]):
//! each once, in order, `user_version` recording how far a database has come.
//! Never edit a released migration: add the next one.

use gridcase_sql::{Migration, MigrationError};
use rusqlite::Connection;

use super::StoreError;

pub(crate) static MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_cases_ops_outbox",
        sql: include_str!("migrations/0001_cases_ops_outbox.sql"),
    },
    Migration {
        name: "0002_case_search",
        sql: include_str!("migrations/0002_case_search.sql"),
    },
    Migration {
        name: "0003_sync_state",
        sql: include_str!("migrations/0003_sync_state.sql"),
    },
    Migration {
        name: "0004_sync_recovery",
        sql: include_str!("migrations/0004_sync_recovery.sql"),
    },
    Migration {
        name: "0005_refusals_zone_names",
        sql: include_str!("migrations/0005_refusals_zone_names.sql"),
    },
];

pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    run_up_to(conn, MIGRATIONS.len())
}

pub(crate) fn run_up_to(conn: &mut Connection, target: usize) -> Result<(), StoreError> {
    let ran = gridcase_sql::migrate_up_to(conn, MIGRATIONS, target)?;
    for name in ran {
        tracing::info!(migration = name, "database migrated");
    }
    Ok(())
}

impl From<MigrationError> for StoreError {
    fn from(e: MigrationError) -> Self {
        match e {
            MigrationError::TooNew { found, known } => StoreError::TooNew { found, known },
            MigrationError::Sqlite(e) => e.into(),
        }
    }
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
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
        testing::assert_listed_in_order(&dir, MIGRATIONS);
    }

    #[test]
    fn migrating_twice_changes_nothing_and_a_newer_database_is_refused() {
        testing::assert_idempotent_and_refuses_newer(MIGRATIONS);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
