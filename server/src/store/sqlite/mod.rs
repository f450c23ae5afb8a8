//! The embedded store: SQLite, compiled into the binary (rusqlite, bundled).
//!
//! One connection, used from blocking tasks; SQLite serializes writers anyway,
//! and one connection keeps every statement's view consistent. WAL mode lets
//! short CLI commands (`chronos keys create`) write beside a running server;
//! `synchronous = FULL` makes every acknowledged commit durable.
//!
//! Only one `chronos serve` may use a file: it holds an exclusive lock on
//! `<file>.lock` for its lifetime. Timestamps are TEXT in one fixed format
//! (`2026-01-02T03:04:05.678Z`), so comparing them as strings compares times,
//! and `'now'` is SQLite's own clock, as `now()` is PostgreSQL's — or, on a
//! store opened with the test clock, SQLite's clock moved by the offset in
//! `chronos_test_clock` ([`Clock`]).
//!
//! One file per concept, as in the PostgreSQL store; every statement is
//! built once, when the store is opened (`Statements`).

mod accounts;
mod database;
mod domains;
mod endpoints;
mod fan_outs;
mod flow;
mod jobs;
mod leases;
mod people;
mod plans;
mod queues;
mod retention;
mod schedules;
mod signing_secrets;
mod target_groups;
mod workers;

use super::{Clock, LeaseOutcome, Moved, Result, StoreError, WakeKey, seconds_from_now};
use crate::account::OrgId;
use chronos_proto::Timestamp;
use rusqlite::{Connection, Row, params};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// SQLite's clock, in the one timestamp format the store uses.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The columns a status change returns for [`Moved`].
const MOVED_COLUMNS: &str = "id, status, attempt, schedule_id, organization_id, delivery_type, \
     handler, (fan_out_id IS NOT NULL OR callback_queue_id IS NOT NULL) AS followed";

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
    sql: Arc<Statements>,
    /// Held for the store's lifetime when opened by `chronos serve`.
    _serve_lock: Option<File>,
}

/// Every statement the store runs, built once for its clock.
struct Statements {
    database: database::Sql,
    accounts: accounts::Sql,
    people: people::Sql,
    domains: domains::Sql,
    plans: plans::Sql,
    signing_secrets: signing_secrets::Sql,
    target_groups: target_groups::Sql,
    endpoints: endpoints::Sql,
    fan_outs: fan_outs::Sql,
    jobs: jobs::Sql,
    flow: flow::Sql,
    leases: leases::Sql,
    queues: queues::Sql,
    retention: retention::Sql,
    schedules: schedules::Sql,
    workers: workers::Sql,
}

/// The most page cache the store's connection keeps, in KiB.
const CACHE_KIB: i64 = 64 * 1024;

/// How many prepared statements the connection keeps: more than the store
/// has, so none is prepared twice.
const STATEMENT_CACHE: usize = 512;

/// Who is opening the file: the server (exclusive), or a short CLI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    Serve,
    Command,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, mode: OpenMode, clock: Clock) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Other(format!(
                    "cannot create data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let serve_lock = match mode {
            OpenMode::Serve => Some(lock_for_serve(path)?),
            OpenMode::Command => None,
        };
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // SQLite's default page cache is 2 MiB: past that, every page a
        // statement touches is read again from the OS with a system call,
        // which cost the store's one thread a sixth of its time in a drain
        // (docs/benchmarks.md). The cache grows only as pages are used.
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        // rusqlite keeps 16 prepared statements by default, fewer than a
        // drain uses (a keyed lease alone uses ten): past that, a
        // `prepare_cached` parses and plans its statement again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans that don't depend on the values bound. Otherwise SQLite
        // plans a statement again at every new value of a parameter it
        // looked at while planning (a `LIMIT ?`, a value compared with an
        // indexed column): each probe of a keyed lease was planned anew,
        // half the store thread's time in a keyed drain. Our statements
        // name their partial indexes' conditions as literals, so no plan
        // needs the values.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        let c = &clock;
        let sql = Statements {
            database: database::Sql::new(c),
            accounts: accounts::Sql::new(c),
            people: people::Sql::new(c),
            domains: domains::Sql::new(c),
            plans: plans::Sql::new(c),
            signing_secrets: signing_secrets::Sql::new(c),
            target_groups: target_groups::Sql::new(c),
            endpoints: endpoints::Sql::new(c),
            fan_outs: fan_outs::Sql::new(c),
            jobs: jobs::Sql::new(c),
            flow: flow::Sql::new(c),
            leases: leases::Sql::new(c),
            queues: queues::Sql::new(c),
            retention: retention::Sql::new(c),
            schedules: schedules::Sql::new(c),
            workers: workers::Sql::new(c),
        };
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            clock,
            sql: Arc::new(sql),
            _serve_lock: serve_lock,
        })
    }

    /// Runs `f` on the connection, with the statements, in a blocking task.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Statements) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let sql = self.sql.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn, &sql)
        })
        .await
        .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
    }
}

impl Clock {
    /// A statement as this clock reads it: SQLite's `'now'`, or `'now'`
    /// moved by the test clock's offset.
    fn sqlite(&self, sql: String) -> String {
        match self {
            Clock::Database => sql,
            Clock::Test => sql.replace("'now'", "'now', (SELECT modifier FROM chronos_test_clock)"),
        }
    }
}

/// The version of the SQLite compiled in.
pub fn engine_version() -> &'static str {
    rusqlite::version()
}

fn lock_for_serve(db: &Path) -> Result<File> {
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Other(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {
            // The pid is for people reading the file; the lock is what counts.
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: db.display().to_string(),
            lock: lock_path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Other(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(s: String) -> Result<Timestamp> {
    Timestamp::parse(&s).map_err(|e| corrupt(&format!("timestamp {s}"), e))
}

fn opt_ts(s: Option<String>) -> Result<Option<Timestamp>> {
    s.map(ts).transpose()
}

fn uuid(s: String) -> Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| corrupt("uuid", e))
}

fn opt_uuid(s: Option<String>) -> Result<Option<Uuid>> {
    s.map(uuid).transpose()
}

fn json(s: String) -> Result<serde_json::Value> {
    serde_json::from_str(&s).map_err(|e| corrupt("json", e))
}

fn u32_col(row: &Row, col: &str) -> Result<u32> {
    let v: i64 = row.get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("wire types always serialize")
}

/// A time modifier for SQLite's date functions: `+12.500 seconds`.
fn modifier(d: Duration) -> String {
    format!("+{:.3} seconds", d.as_secs_f64())
}

/// SQLite's clock moved by `d` (a text timestamp).
pub(super) fn now_plus(d: Duration) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '{}')", modifier(d))
}

pub(super) fn now_minus(d: Duration) -> String {
    format!(
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{} seconds')",
        d.as_secs()
    )
}

/// A row's wake key, from its `organization_id`, `delivery_type` and
/// `handler`.
fn wake_key(row: &Row) -> Result<WakeKey> {
    let delivery_type: String = row.get("delivery_type")?;
    let handler: Option<String> = row.get("handler")?;
    Ok(WakeKey::of(
        OrgId(uuid(row.get("organization_id")?)?),
        &delivery_type,
        handler.as_deref(),
    ))
}

/// Reads [`MOVED_COLUMNS`].
fn moved_from_row(row: &Row) -> Result<Moved> {
    let status: String = row.get("status")?;
    Ok(Moved {
        id: uuid(row.get("id")?)?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        attempt: u32_col(row, "attempt")?,
        schedule_id: opt_uuid(row.get("schedule_id")?)?,
        wake: wake_key(row)?,
        followed: row.get("followed")?,
        job: None,
        freed: Vec::new(),
    })
}

/// The columns an attempt's end returns: the job's, with what [`Moved`]
/// reads. (One process, one file: nothing crosses a network, so they are
/// always returned, and the job is read only when asked for.)
const ENDED_COLUMNS: &str = "id, name, handler, payload, status, queue, concurrency_key, priority, \
     delivery, run_at, attempt, max_retries, timeout_seconds, schedule_id, fire_at, \
     idempotency_key, result, last_error, created_at, updated_at, finished_at, held_reason, \
     fan_out_id, callback_queue_id, organization_id, delivery_type, flow, \
     (fan_out_id IS NOT NULL OR callback_queue_id IS NOT NULL) AS followed";

/// Reads [`ENDED_COLUMNS`]: the whole job too when `whole_job`.
fn ended_from_row(row: &Row, whole_job: bool) -> Result<Moved> {
    let mut moved = moved_from_row(row)?;
    if whole_job {
        moved.job = Some(Box::new(jobs::job_from_row(row)?));
    }
    Ok(moved)
}

/// An ack, fail, release or extend matched no current lease: was the token
/// ever one of this organization's?
fn lease_miss<T>(conn: &Connection, org: OrgId, token: Uuid) -> Result<LeaseOutcome<T>> {
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job_id
                            WHERE e.lease_token = ?2 AND j.organization_id = ?1)",
        )?
        .query_row(params![org.0.to_string(), token.to_string()], |r| r.get(0))?;
    Ok(if known {
        LeaseOutcome::Lost
    } else {
        LeaseOutcome::Unknown
    })
}

#[cfg(test)]
mod query_plans {
    use super::{OpenMode, SqliteStore};
    use crate::store::{Clock, Database};

    /// SQLite plans without statistics, and then prefers `jobs_by_org` for
    /// any statement naming the organization: that index holds every job
    /// the organization ever had, so on a store with history such a read
    /// of the running jobs read all of them (600 ms per connecting worker
    /// with a million finished jobs). These go through the running jobs'
    /// own, small index.
    #[tokio::test]
    async fn running_jobs_are_read_through_their_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("chronos.db"),
            OpenMode::Command,
            Clock::Database,
        )
        .unwrap();
        store.migrate().await.unwrap();
        let plans = store
            .call(|conn, sql| {
                let statements = [
                    ("workers.held", &sql.workers.held),
                    ("workers.list", &sql.workers.list),
                    ("leases.forget_workers", &sql.leases.forget_workers),
                ];
                let mut plans = Vec::new();
                for (name, text) in statements {
                    let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {text}"))?;
                    let unbound = vec![rusqlite::types::Null; explain.parameter_count()];
                    let steps: Vec<String> = explain
                        .query_map(rusqlite::params_from_iter(unbound), |r| {
                            r.get::<_, String>(3)
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    plans.push((name, steps.join(" / ")));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        for (name, plan) in plans {
            assert!(
                plan.contains("jobs_running_deadline") && !plan.contains("jobs_by_org"),
                "{name} reads jobs through another index: {plan}"
            );
        }
    }
}
