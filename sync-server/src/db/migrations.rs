//! Numbered schema migrations (`sync-server/migrations/NNNN_name.sql`). Each runs
//! once, in order, in its own transaction; `user_version` records how far a
//! database has come. Never edit a released migration: add the next one.

use rusqlite::Connection;

pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    (
        "0002_sync_recovery",
        include_str!("../../migrations/0002_sync_recovery.sql"),
    ),
    (
        "0003_centre",
        include_str!("../../migrations/0003_centre.sql"),
    ),
    (
        "0004_open311",
        include_str!("../../migrations/0004_open311.sql"),
    ),
    (
        "0005_no_case_out_of_sight",
        include_str!("../../migrations/0005_no_case_out_of_sight.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the database has schema version {found}, newer than this server knows ({known}); upgrade the server")]
    TooNew { found: i64, known: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub(crate) fn run(conn: &mut Connection) -> Result<(), MigrationError> {
    run_up_to(conn, MIGRATIONS.len())
}

pub(crate) fn run_up_to(conn: &mut Connection, target: usize) -> Result<(), MigrationError> {
    // Immediate: two processes (the server and an admin command) starting on a
    // fresh database must not both migrate it.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(MigrationError::TooNew {
            found: current,
            known,
        });
    }
    for (i, (name, sql)) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target)
        .skip(current as usize)
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tracing::info!(migration = name, "database migrated");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything SQLite knows about the schema, in a comparable form.
    fn schema(conn: &Connection) -> Vec<(String, String, String)> {
        let mut stmt = conn
            .prepare(
                "SELECT type, name, coalesce(sql, '') FROM sqlite_master
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn an_upgraded_database_equals_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        for start in 0..=MIGRATIONS.len() {
            // A file, closed and reopened between versions, as a real upgrade is.
            let path = dir.path().join(format!("upgraded-{start}.db"));
            let mut old = Connection::open(&path).unwrap();
            run_up_to(&mut old, start).unwrap();
            assert_eq!(version(&old), start as i64);
            drop(old);
            let mut upgraded = Connection::open(&path).unwrap();
            run(&mut upgraded).unwrap();
            let mut fresh = Connection::open_in_memory().unwrap();
            run(&mut fresh).unwrap();
            assert_eq!(
                schema(&upgraded),
                schema(&fresh),
                "upgrading from version {start}"
            );
            assert_eq!(version(&upgraded), version(&fresh));
            let check: String = upgraded
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .unwrap_or_else(|_| "ok".into());
            assert_eq!(check, "ok");
        }
    }

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| format!("{n}.sql")).collect();
        assert_eq!(files, listed);
        for (i, name) in files.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} is out of sequence"
            );
        }
    }

    #[test]
    fn migrating_twice_changes_nothing_and_newer_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        let before = schema(&conn);
        run(&mut conn).unwrap();
        assert_eq!(schema(&conn), before);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(MigrationError::TooNew { found: 99, .. })
        ));
    }
}
