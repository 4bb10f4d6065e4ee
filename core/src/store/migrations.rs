//! Numbered schema migrations. Each file runs once, in order, in its own
//! transaction, and `user_version` records how far a database has come. Never
//! edit a released migration: add the next one.

use rusqlite::Connection;

use super::StoreError;

pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_cases_ops_outbox",
        include_str!("migrations/0001_cases_ops_outbox.sql"),
    ),
    (
        "0002_case_search",
        include_str!("migrations/0002_case_search.sql"),
    ),
    (
        "0003_sync_state",
        include_str!("migrations/0003_sync_state.sql"),
    ),
    (
        "0004_sync_recovery",
        include_str!("migrations/0004_sync_recovery.sql"),
    ),
    (
        "0005_refusals_zone_names",
        include_str!("migrations/0005_refusals_zone_names.sql"),
    ),
];

pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    run_up_to(conn, MIGRATIONS.len())
}

pub(crate) fn run_up_to(conn: &mut Connection, target: usize) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
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
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        #[cfg(feature = "device")]
        tracing::info!(migration = name, "database migrated");
        let _ = name;
    }
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

    #[test]
    fn an_upgraded_database_equals_a_fresh_one() {
        for start in 0..MIGRATIONS.len() {
            let mut upgraded = Connection::open_in_memory().unwrap();
            run_up_to(&mut upgraded, start).unwrap();
            run(&mut upgraded).unwrap();
            let mut fresh = Connection::open_in_memory().unwrap();
            run(&mut fresh).unwrap();
            assert_eq!(
                schema(&upgraded),
                schema(&fresh),
                "upgrading from version {start}"
            );
            let version = |c: &Connection| -> i64 {
                c.pragma_query_value(None, "user_version", |r| r.get(0))
                    .unwrap()
            };
            assert_eq!(version(&upgraded), version(&fresh));
        }
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        let before = schema(&conn);
        run(&mut conn).unwrap();
        assert_eq!(schema(&conn), before);
    }

    #[test]
    fn a_database_from_a_newer_app_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
