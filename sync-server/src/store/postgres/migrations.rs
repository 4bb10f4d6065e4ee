//! The PostgreSQL schema: numbered migrations in
//! `sync-server/migrations/postgres/`, each run once, in order, inside one
//! transaction that holds an advisory lock (several instances starting at
//! once on an empty database: one migrates, the others wait and find it
//! done). `schema_migrations` records what ran. Never edit a released
//! migration: add the next one.

use gridcase_sql::Migration;
use tokio_postgres::Client;

use super::classify;
use crate::store::StoreError;

pub(crate) static MIGRATIONS: &[Migration] = &[Migration {
    name: "0001_schema",
    sql: include_str!("../../../migrations/postgres/0001_schema.sql"),
}];

/// The advisory lock migrations run under ("gridcase" in ASCII).
const MIGRATION_LOCK: i64 = 0x6772_6964_6361_7365;

pub(crate) async fn run(client: &mut Client) -> Result<Vec<&'static str>, StoreError> {
    run_up_to(client, MIGRATIONS.len()).await
}

/// Runs the migrations after the database's version, up to `target` (a
/// count: 0 is an empty database).
pub(crate) async fn run_up_to(
    client: &mut Client,
    target: usize,
) -> Result<Vec<&'static str>, StoreError> {
    let err = |e| classify(e).0;
    let tx = client.transaction().await.map_err(err)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(err)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    let known = MIGRATIONS.len() as i64;
    if i64::from(current) > known {
        return Err(StoreError::TooNew {
            found: current.into(),
            known,
        });
    }
    let mut ran = Vec::new();
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target)
        .skip(current.max(0) as usize)
    {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| StoreError::Backend(format!("migration {}: {}", m.name, classify(e).0)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&((i + 1) as i32), &m.name],
        )
        .await
        .map_err(err)?;
        ran.push(m.name);
    }
    tx.commit().await.map_err(err)?;
    Ok(ran)
}

/// Everything PostgreSQL knows about the schema, in a comparable form:
/// columns (type, nullability, default, generation), constraints, indexes,
/// triggers and functions of the `public` schema, and the migrations
/// recorded.
#[cfg(test)]
pub(crate) async fn schema(client: &Client) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
                    || is_nullable || ' ' || coalesce(column_default, '') || ' '
                    || coalesce(generation_expression, '')
             FROM information_schema.columns WHERE table_schema = 'public'
                 AND NOT (table_name = 'schema_migrations' AND column_name = 'applied_at')
             UNION ALL
             SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
                    || pg_get_constraintdef(oid)
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
             UNION ALL
             SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
                 JOIN pg_class c ON c.oid = t.tgrelid
             WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'migration ' || version || ' ' || name FROM schema_migrations
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| classify(e).0)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::PgStore;

    /// An empty database of this test's own, and a client on it.
    async fn empty(name: &str) -> (PgStore, deadpool_postgres::Object) {
        let url = gridcase_test_support::postgres::PgCluster::shared()
            .and_then(|pg| pg.fresh_database(name))
            .expect("a database on the test binary's PostgreSQL cluster");
        let store = PgStore::connect(&url, 2).unwrap();
        let client = store.client().await.unwrap();
        (store, client)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upgraded_postgres_database_equals_a_fresh_one() {
        let (_fresh_store, mut fresh) = empty("migrate_fresh").await;
        run(&mut fresh).await.unwrap();
        let want = schema(&fresh).await.unwrap();
        assert!(want.iter().any(|l| l.starts_with("column ops.seq bigint")));
        for start in 0..=MIGRATIONS.len() {
            let (store, mut old) = empty(&format!("migrate_from_{start}")).await;
            run_up_to(&mut old, start).await.unwrap();
            // Another connection, as a restarted server has.
            let mut upgraded = store.client().await.unwrap();
            run(&mut upgraded).await.unwrap();
            assert_eq!(
                schema(&upgraded).await.unwrap(),
                want,
                "upgrading from version {start}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrating_twice_changes_nothing_and_newer_is_refused() {
        let (_store, mut client) = empty("migrate_twice").await;
        assert_eq!(run(&mut client).await.unwrap().len(), MIGRATIONS.len());
        let before = schema(&client).await.unwrap();
        assert!(run(&mut client).await.unwrap().is_empty());
        assert_eq!(schema(&client).await.unwrap(), before);
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES (99, 'from_the_future')",
                &[],
            )
            .await
            .unwrap();
        assert!(matches!(
            run(&mut client).await,
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    /// Instances starting together on an empty database: one migrates, the
    /// others wait for it and find nothing to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_starting_at_once_migrate_once() {
        let (store, _client) = empty("migrate_at_once").await;
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut client = store.client().await.unwrap();
                    run(&mut client).await.unwrap().len()
                })
            })
            .collect();
        let mut ran = Vec::new();
        for r in runs {
            ran.push(r.await.unwrap());
        }
        ran.sort();
        assert_eq!(ran, [0, 0, MIGRATIONS.len()]);
    }

    #[test]
    fn every_postgres_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        gridcase_sql::testing::assert_listed_in_order(&dir, MIGRATIONS);
    }
}
