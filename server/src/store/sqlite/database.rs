//! The database itself: migrations, the first organization, readiness and
//! the test clock. One server process per file, so there are no changes of
//! other processes to follow.

use super::accounts::{insert_key, org_from_row};
use super::queues::insert_default_queue;
use super::{NOW, SqliteStore, retention, ts};
use crate::account::Organization;
use crate::account::keys::NewApiKey;
use crate::store::{Change, ChangeFn, Clock, Database, Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Timestamp;
use rusqlite::{TransactionBehavior, params};
use std::time::Duration;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "signing secrets",
        include_str!("migrations/0002_signing_secrets.sql"),
    ),
    (
        3,
        "push targets",
        include_str!("migrations/0003_push_targets.sql"),
    ),
    (
        4,
        "schedules",
        include_str!("migrations/0004_schedules.sql"),
    ),
    (
        RETENTION,
        "retention",
        include_str!("migrations/0005_retention.sql"),
    ),
    (
        6,
        "lease indexes",
        include_str!("migrations/0006_lease_indexes.sql"),
    ),
    (
        7,
        "push by host",
        include_str!("migrations/0007_push_by_host.sql"),
    ),
    (8, "queues", include_str!("migrations/0008_queues.sql")),
    (9, "flow", include_str!("migrations/0009_flow.sql")),
    (10, "rates", include_str!("migrations/0010_rates.sql")),
    (
        11,
        "schedule keys",
        include_str!("migrations/0011_schedule_keys.sql"),
    ),
    (
        12,
        "polled handlers",
        include_str!("migrations/0012_polled_handlers.sql"),
    ),
    (
        13,
        "key started",
        include_str!("migrations/0013_key_started.sql"),
    ),
    (
        14,
        "target groups",
        include_str!("migrations/0014_target_groups.sql"),
    ),
    (
        15,
        "endpoint health, callbacks per attempt",
        include_str!("migrations/0015_endpoint_health_and_attempts.sql"),
    ),
    (
        16,
        "people, memberships, sessions, invites; key expiry and queues",
        include_str!("migrations/0016_accounts.sql"),
    ),
    (
        17,
        "plans and usage counts",
        include_str!("migrations/0017_plans.sql"),
    ),
    (
        18,
        "skipped runs of schedules",
        include_str!("migrations/0018_skipped_runs.sql"),
    ),
    (
        19,
        "domains and their usage",
        include_str!("migrations/0019_domains.sql"),
    ),
];

/// The version that creates the retention settings.
const RETENTION: i64 = 5;

/// The test clock: SQLite's clock plus an offset, kept both in milliseconds
/// and as the date-function modifier the statements add after `'now'`.
/// Not a migration: production files never have it.
const TEST_CLOCK: &str = "
    CREATE TABLE IF NOT EXISTS chronos_test_clock (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        offset_ms INTEGER NOT NULL DEFAULT 0,
        modifier  TEXT NOT NULL DEFAULT '+0.000 seconds'
    ) STRICT;
    INSERT OR IGNORE INTO chronos_test_clock (id) VALUES (1);";

/// How often a server on the test clock looks whether a test moved it.
const CLOCK_LOOK: Duration = Duration::from_millis(10);

pub(super) struct Sql {
    now: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            now: clock.sqlite(format!("SELECT {NOW}")),
        }
    }
}

impl SqliteStore {
    /// Applies pending migrations up to version `last`, as
    /// [`Database::migrate`] does all of them: tests make a store as an
    /// older Chronos left it.
    pub async fn migrate_to(&self, last: i64) -> Result<Vec<i64>> {
        let clock = self.clock;
        self.call(move |conn, _| {
            // IMMEDIATE takes the write lock first: a concurrent migrator waits.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS chronos_migrations (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ) STRICT",
            )?;
            let done: Vec<i64> = tx
                .prepare("SELECT version FROM chronos_migrations")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
                return Err(StoreError::SchemaTooNew { found, known });
            }
            let mut applied = Vec::new();
            for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= last) {
                if done.contains(&version) {
                    continue;
                }
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO chronos_migrations (version, name) VALUES (?1, ?2)",
                    params![version, name],
                )?;
                applied.push(version);
            }
            // A store this run creates from nothing starts with the default
            // retention; one an older Chronos made keeps every job (the
            // migration's NULLs) until its operator chooses, as deleting
            // history on an upgrade would surprise. Whether any version was
            // applied before tells them apart (read in this write
            // transaction, so a concurrent migrator waits and then finds it).
            if done.is_empty() && applied.contains(&RETENTION) {
                retention::start_with_defaults(&tx)?;
            }
            if clock == Clock::Test {
                tx.execute_batch(TEST_CLOCK)?;
            }
            tx.commit()?;
            Ok(applied)
        })
        .await
    }
}

#[async_trait]
impl Database for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.call(|conn, _| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn now(&self) -> Result<Timestamp> {
        self.call(|conn, sql| ts(conn.query_row(&sql.database.now, [], |r| r.get(0))?))
            .await
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        self.migrate_to(i64::MAX).await
    }

    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>> {
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let any: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM organizations)", [], |r| {
                    r.get(0)
                })?;
            if any {
                return Ok(None);
            }
            let org = tx.query_row(
                &sql.accounts.insert_organization,
                params![
                    admin_key.organization_id.0.to_string(),
                    "default",
                    "Default"
                ],
                |row| Ok(org_from_row(row)),
            )??;
            insert_default_queue(&tx, &sql.queues, org.id.0)?;
            insert_key(&tx, &sql.accounts, &admin_key)?;
            tx.commit()?;
            Ok(Some(org))
        })
        .await
    }

    /// One server per file: nobody else queues jobs behind its back, so
    /// only the test clock is followed — moved by a test from another
    /// connection or process, it is read every few milliseconds (tests
    /// only; a production store starts no task).
    fn watch_changes(
        &self,
        on_change: ChangeFn,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.clock != Clock::Test {
            return None;
        }
        let conn = self.conn.clone();
        Some(tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(CLOCK_LOOK) => {}
                    _ = shutdown.changed() => return,
                }
                let conn = conn.clone();
                let offset = tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    conn.query_row("SELECT offset_ms FROM chronos_test_clock", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .await;
                if let Ok(Ok(offset)) = offset {
                    if seen.is_some_and(|seen| seen != offset) {
                        on_change(Change::ClockMoved);
                    }
                    seen = Some(offset);
                }
            }
        }))
    }

    async fn advance_clock(&self, by: Duration) -> Result<()> {
        if self.clock != Clock::Test {
            return Err(StoreError::NoTestClock);
        }
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.call(move |conn, _| {
            conn.execute(
                "UPDATE chronos_test_clock SET offset_ms = offset_ms + ?1,
                     modifier = printf('+%.3f seconds', (offset_ms + ?1) / 1000.0)",
                params![ms],
            )?;
            Ok(())
        })
        .await
    }
}
