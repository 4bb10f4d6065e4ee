//! The checks every migration list must pass, for the tests next to it: as
//! application-services' `MigratedDatabaseFile`, a database file at an old
//! version is closed, reopened and upgraded, and must then equal a database
//! made fresh at the last version — tables, indexes, triggers, views, their
//! SQL, and the version.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::{migrate, migrate_up_to, schema_version, Migration, MigrationError};

/// Everything SQLite knows about a schema, in a comparable form: `(type,
/// name, sql)` of every table, index, trigger and view, in order.
pub fn schema(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .expect("sqlite_master is readable");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .expect("sqlite_master rows")
}

/// A database file migrated up to some version, to upgrade from.
pub struct MigratedDatabaseFile {
    pub path: PathBuf,
    migrations: &'static [Migration],
}

impl MigratedDatabaseFile {
    /// A new file `name` in `dir`, migrated to `version` (a count: 0 is an
    /// empty database), then closed, as a database an older program left.
    pub fn new(
        dir: &Path,
        name: &str,
        migrations: &'static [Migration],
        version: usize,
    ) -> MigratedDatabaseFile {
        let path = dir.join(name);
        let mut conn = Connection::open(&path).expect("opening the file");
        migrate_up_to(&mut conn, migrations, version).expect("migrating to the old version");
        assert_eq!(schema_version(&conn).unwrap(), version as i64);
        MigratedDatabaseFile { path, migrations }
    }

    /// Reopens the file and brings it up to the last version.
    pub fn upgrade(&self) -> Connection {
        let mut conn = Connection::open(&self.path).expect("reopening the file");
        migrate(&mut conn, self.migrations).expect("upgrading");
        conn
    }
}

/// A database made at the last version in one go.
pub fn fresh(migrations: &[Migration]) -> Connection {
    let mut conn = Connection::open_in_memory().expect("an in-memory database");
    migrate(&mut conn, migrations).expect("migrating a fresh database");
    conn
}

/// Writes rows into a database at the version given, before it is upgraded.
pub type Seed<'a> = &'a dyn Fn(&Connection, usize);

/// From every version (0 to the last), an upgraded file equals a fresh
/// database, and holds no broken foreign key. Panics naming the version that
/// differs. `seed`, when given, writes rows into the old file first (an
/// upgrade must carry data through, not just make the same tables).
pub fn assert_upgrades_equal_fresh(
    dir: &Path,
    migrations: &'static [Migration],
    seed: Option<Seed<'_>>,
) {
    let fresh = fresh(migrations);
    for start in 0..=migrations.len() {
        let old =
            MigratedDatabaseFile::new(dir, &format!("upgraded-{start}.db"), migrations, start);
        if let Some(seed) = seed {
            let conn = Connection::open(&old.path).unwrap();
            seed(&conn, start);
        }
        let upgraded = old.upgrade();
        assert_eq!(
            schema(&upgraded),
            schema(&fresh),
            "upgrading from version {start}"
        );
        assert_eq!(
            schema_version(&upgraded).unwrap(),
            schema_version(&fresh).unwrap(),
            "the version after upgrading from {start}"
        );
        let broken: i64 = upgraded
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            broken, 0,
            "broken foreign keys after upgrading from {start}"
        );
    }
}

/// Running the migrations again changes nothing, and a database a newer
/// program wrote is refused.
pub fn assert_idempotent_and_refuses_newer(migrations: &[Migration]) {
    let mut conn = fresh(migrations);
    let before = schema(&conn);
    assert!(migrate(&mut conn, migrations).unwrap().is_empty());
    assert_eq!(schema(&conn), before);
    conn.pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(
        migrate(&mut conn, migrations),
        Err(MigrationError::TooNew { found: 99, .. })
    ));
}

/// The `.sql` files in `dir` are exactly `migrations`, numbered 0001, 0002, …
/// in order: a file added but not listed (or listed twice) fails.
pub fn assert_listed_in_order(dir: &Path, migrations: &[Migration]) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let listed: Vec<String> = migrations
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    assert_eq!(files, listed, "the migration files of {}", dir.display());
    for (i, name) in files.iter().enumerate() {
        assert!(
            name.starts_with(&format!("{:04}_", i + 1)),
            "{name} is out of sequence"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TWO: &[Migration] = &[
        Migration {
            name: "0001_a",
            sql: "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);",
        },
        Migration {
            name: "0002_b",
            sql: "CREATE TABLE b (a_id INTEGER REFERENCES a(id));
                  CREATE INDEX b_by_a ON b(a_id);",
        },
    ];

    #[test]
    fn the_checks_pass_a_sound_list() {
        let dir = std::env::temp_dir().join(format!("gridcase-sql-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_upgrades_equal_fresh(&dir, TWO, None);
        assert_idempotent_and_refuses_newer(TWO);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The check can fail: a database whose upgrade leaves out what a fresh
    /// one has is caught.
    #[test]
    fn an_upgrade_that_differs_from_fresh_is_caught() {
        let dir = std::env::temp_dir().join(format!("gridcase-sql-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = MigratedDatabaseFile::new(&dir, "old.db", TWO, 1);
        // What a hand edit of a shipped migration does: the old file lacks
        // the column the edited 0001 now makes.
        static EDITED: &[Migration] = &[
            Migration {
                name: "0001_a",
                sql: "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT, y TEXT);",
            },
            Migration {
                name: "0002_b",
                sql: "CREATE TABLE b (a_id INTEGER REFERENCES a(id));
                      CREATE INDEX b_by_a ON b(a_id);",
            },
        ];
        let mut upgraded = Connection::open(&old.path).unwrap();
        migrate(&mut upgraded, EDITED).unwrap();
        assert_ne!(schema(&upgraded), schema(&fresh(EDITED)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        static BAD: &[Migration] = &[
            Migration {
                name: "0001_a",
                sql: "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            },
            Migration {
                name: "0002_bad",
                sql: "CREATE TABLE c (x); THIS IS NOT SQL;",
            },
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(migrate(&mut conn, BAD).is_err());
        assert_eq!(schema_version(&conn).unwrap(), 0);
        assert!(schema(&conn).is_empty());
    }
}
