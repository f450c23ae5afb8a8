//! The database itself: migrations, the first organization, readiness,
//! changes from other processes, and the test clock.

use super::accounts::{insert_key, org_from_row};
use super::{CLOCK_CHANNEL, PgStore, listen, retention, ts};
use crate::account::Organization;
use crate::account::keys::NewApiKey;
use crate::store::{ChangeFn, Clock, Database, Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Timestamp;
use std::time::Duration;
use uuid::Uuid;

/// Versioned migrations, applied in order. A migration is never edited once
/// released; a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "queue indexes",
        include_str!("migrations/0002_queue_indexes.sql"),
    ),
    (
        3,
        "signing secrets",
        include_str!("migrations/0003_signing_secrets.sql"),
    ),
    (
        4,
        "push targets",
        include_str!("migrations/0004_push_targets.sql"),
    ),
    (
        5,
        "schedules",
        include_str!("migrations/0005_schedules.sql"),
    ),
    (
        RETENTION,
        "retention",
        include_str!("migrations/0006_retention.sql"),
    ),
    (
        7,
        "lease indexes",
        include_str!("migrations/0007_lease_indexes.sql"),
    ),
    (
        8,
        "execution keys",
        include_str!("migrations/0008_execution_keys.sql"),
    ),
    (
        9,
        "push by host",
        include_str!("migrations/0009_push_by_host.sql"),
    ),
    (10, "queues", include_str!("migrations/0010_queues.sql")),
    (11, "flow", include_str!("migrations/0011_flow.sql")),
    (12, "rates", include_str!("migrations/0012_rates.sql")),
    (
        13,
        "schedule keys",
        include_str!("migrations/0013_schedule_keys.sql"),
    ),
    (
        14,
        "polled handlers",
        include_str!("migrations/0014_polled_handlers.sql"),
    ),
    (
        15,
        "target groups",
        include_str!("migrations/0015_target_groups.sql"),
    ),
    (
        16,
        "endpoint health, callbacks per attempt",
        include_str!("migrations/0016_endpoint_health_and_attempts.sql"),
    ),
    (
        17,
        "people, memberships, sessions, invites; key expiry and queues",
        include_str!("migrations/0017_accounts.sql"),
    ),
    (
        18,
        "plans and usage counts",
        include_str!("migrations/0018_plans.sql"),
    ),
    (
        19,
        "skipped runs of schedules",
        include_str!("migrations/0019_skipped_runs.sql"),
    ),
    (
        20,
        "domains and their usage",
        include_str!("migrations/0020_domains.sql"),
    ),
];

/// The version that creates the retention settings.
const RETENTION: i64 = 6;

/// The test clock: the database's clock plus an offset that tests move. Not
/// a migration: production databases never have it.
const TEST_CLOCK: &str = "
    CREATE TABLE IF NOT EXISTS chronos_test_clock (
        id        int PRIMARY KEY CHECK (id = 1),
        offset_ms bigint NOT NULL DEFAULT 0
    );
    INSERT INTO chronos_test_clock (id) VALUES (1) ON CONFLICT DO NOTHING;
    CREATE OR REPLACE FUNCTION chronos_test_now() RETURNS timestamptz
        LANGUAGE sql STABLE
        AS $$ SELECT now() + (SELECT offset_ms FROM chronos_test_clock) * interval '1 millisecond' $$;";

/// Advisory lock key held while migrating or bootstrapping, so that replicas
/// starting together take turns. ("chronos" in ASCII, truncated to 63 bits.)
const SCHEMA_LOCK: i64 = 0x0063_6872_6f6e_6f73;

pub(super) struct Sql {
    now: String,
    advance_clock: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            now: clock.pg("SELECT now()".into()),
            advance_clock: format!(
                "WITH moved AS (
                     UPDATE chronos_test_clock SET offset_ms = offset_ms + $1 RETURNING 1
                 )
                 SELECT pg_notify('{CLOCK_CHANNEL}', '') FROM moved"
            ),
        }
    }
}

impl PgStore {
    /// Applies pending migrations up to version `last`, as
    /// [`Database::migrate`] does all of them: tests make a store as an
    /// older Chronos left it.
    pub async fn migrate_to(&self, last: i64) -> Result<Vec<i64>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Held until commit: a second replica waits here, then finds nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS chronos_migrations (
                 version    bigint PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let done: Vec<i64> = tx
            .query("SELECT version FROM chronos_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        let mut applied = Vec::new();
        for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= last) {
            if done.contains(&version) {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO chronos_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await?;
            applied.push(version);
        }
        // A store this run creates from nothing starts with the default
        // retention; one an older Chronos made keeps every job (the
        // migration's NULLs) until its operator chooses, as deleting history
        // on an upgrade would surprise. Whether any version was applied
        // before tells them apart; it is read under the lock, so of replicas
        // starting together only the one that migrates decides.
        if done.is_empty() && applied.contains(&RETENTION) {
            retention::start_with_defaults(&tx).await?;
        }
        if self.clock == Clock::Test {
            tx.batch_execute(TEST_CLOCK).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }
}

#[async_trait]
impl Database for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn now(&self) -> Result<Timestamp> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.database.now).await?;
        Ok(ts(client.query_one(&stmt, &[]).await?.try_get(0)?))
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        self.migrate_to(i64::MAX).await
    }

    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM organizations)", &[])
            .await?
            .get(0);
        if any {
            return Ok(None);
        }
        let org = tx
            .query_one(
                &self.sql.accounts.insert_organization,
                &[
                    &admin_key.organization_id.0,
                    &"default",
                    &"Default",
                    &Uuid::now_v7(),
                ],
            )
            .await?;
        insert_key(&tx, &self.sql.accounts, &admin_key).await?;
        tx.commit().await?;
        Ok(Some(org_from_row(&org)?))
    }

    fn watch_changes(
        &self,
        on_change: ChangeFn,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        Some(tokio::spawn(listen::run(
            self.config.clone(),
            on_change,
            shutdown,
        )))
    }

    async fn advance_clock(&self, by: Duration) -> Result<()> {
        if self.clock != Clock::Test {
            return Err(StoreError::NoTestClock);
        }
        let client = self.pool.get().await?;
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        client
            .execute(&self.sql.database.advance_clock, &[&ms])
            .await?;
        Ok(())
    }
}
