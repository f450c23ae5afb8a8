//! The PostgreSQL store: tokio-postgres over a deadpool pool.
//!
//! One file per concept, each implementing its trait ([`super::jobs`] in
//! `jobs.rs`, [`super::leases`] in `leases.rs`, …) with the statements it
//! runs. Every statement is built once, when the store is opened
//! (`Statements`), and prepared once per connection (`prepare_cached`).
//! `now()` is PostgreSQL's clock — or, on a store opened with the test
//! clock, `chronos_test_now()` ([`Clock`]); every "is it due yet" decision is
//! made here, in SQL.

/// Runs `$attempt`, an `async` block holding one transaction, again when
/// PostgreSQL ended it to break a deadlock: three tries in all. A macro
/// rather than a function taking an async closure: such a closure, borrowing
/// the connection, leaves the store's futures unable to prove `Send`.
macro_rules! retry_deadlocks {
    ($attempt:expr) => {{
        let mut tries = 0;
        loop {
            tries += 1;
            match $attempt.await {
                Err(e) if tries < 3 && super::is_deadlock(&e) => continue,
                result => break result,
            }
        }
    }};
}

mod accounts;
mod database;
mod domains;
mod endpoints;
mod fan_outs;
mod flow;
mod jobs;
mod leases;
mod listen;
mod people;
mod plans;
mod queues;
mod retention;
mod schedules;
mod signing_secrets;
mod target_groups;
mod workers;

use super::{Clock, LeaseOutcome, Result, StoreError, WakeKey, seconds_from_now};
use crate::account::OrgId;
use chrono::{DateTime, Utc};
use chronos_proto::Timestamp;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// The channel on which a transaction that queues jobs tells every server
/// process whose polls to wake: a comma-separated list of
/// `<organization id>/<handler>` and `push`, or `*` for everyone.
pub const NOTIFY_CHANNEL: &str = "chronos_jobs";

/// The channel on which a cancel tells every server process the job's id,
/// so the worker session holding it can tell its worker.
pub const CANCEL_CHANNEL: &str = "chronos_cancel";

/// The channel on which moving the test clock tells every server process
/// to look at its timers again.
pub const CLOCK_CHANNEL: &str = "chronos_clock";

/// What `chronos_queue_not_found()` raises (migration 0011), with the
/// queue's name as the detail.
const QUEUE_NOT_FOUND: &str = "CQ404";

/// An error of a statement that inserts jobs: a queue that does not exist
/// is the caller's to answer.
fn insert_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if db.code().code() == QUEUE_NOT_FOUND => StoreError::QueueNotFound {
            name: db.detail().unwrap_or_default().to_string(),
        },
        _ => StoreError::Postgres(e),
    }
}

/// Whether PostgreSQL ended the transaction to break a deadlock (it may be
/// tried again).
fn is_deadlock(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(e)
        if e.code() == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED))
}

/// A job row's wake key, as [`NOTIFY_CHANNEL`] carries it.
const WAKE_KEY_SQL: &str = "CASE WHEN delivery_type = 'push' THEN 'push' \
     ELSE organization_id::text || '/' || handler END";

/// Sends the `key` column of a set of rows as one notification (`*` when the
/// list would pass PostgreSQL's 8000-byte limit); nothing for no rows.
const NOTIFY_KEYS: &str = "CASE WHEN count(*) = 0 THEN NULL \
     WHEN sum(length(key) + 1) > 7900 THEN pg_notify('chronos_jobs', '*') \
     ELSE pg_notify('chronos_jobs', string_agg(key, ',')) END";

/// The columns a status change returns for [`super::Moved`].
const MOVED_COLUMNS: &str = "id, status, attempt, schedule_id, organization_id, delivery_type, \
     handler, (fan_out_id IS NOT NULL OR callback_queue_id IS NOT NULL) AS followed";

/// The rest of a job's columns, after [`MOVED_COLUMNS`], for an attempt's
/// end that answers with the whole job: `whole` (an SQL boolean) says
/// which rows. The others get NULLs, a few bytes each, and are read as
/// [`super::Moved`] alone ([`ended_from_row`]): a worker's ack costs what
/// it did before the HTTP answer came from the same statement.
fn whole_job_columns(whole: &str) -> String {
    let columns = [
        "name",
        "queue",
        "concurrency_key",
        "priority",
        "run_at",
        "max_retries",
        "timeout_seconds",
        "fire_at",
        "idempotency_key",
        "last_error",
        "created_at",
        "updated_at",
        "finished_at",
        "payload",
        "delivery",
        "result",
        "held_reason",
        "fan_out_id",
        "callback_queue_id",
    ];
    let cased: Vec<String> = columns
        .iter()
        .map(|c| format!("CASE WHEN {whole} THEN {c} END AS {c}"))
        .collect();
    format!("{whole} AS whole, {}", cased.join(", "))
}

pub struct PgStore {
    pool: Pool,
    /// For the LISTEN connection, which lives outside the pool.
    config: tokio_postgres::Config,
    clock: Clock,
    sql: Statements,
    /// Which organizations' leases take controlled queues' jobs first.
    flow_seen: flow::Seen,
    flow_cursors: flow::Cursors,
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

impl PgStore {
    /// Builds a pool for `url` (`postgres://user@host:port/db`). Connections
    /// are opened lazily; call [`super::Database::ping`] to check the server
    /// answers.
    pub fn connect(url: &str, max_connections: usize, clock: Clock) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            // A request waits at most this long for a connection, then fails
            // cleanly instead of hanging while the database is away.
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Other(format!("database pool: {e}")))?;
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
        Ok(PgStore {
            pool,
            config,
            clock,
            sql,
            flow_seen: flow::Seen::default(),
            flow_cursors: flow::Cursors::default(),
        })
    }
}

impl Clock {
    /// A statement as this clock reads it: the database's `now()`, or the
    /// test clock's `chronos_test_now()`.
    fn pg(&self, sql: String) -> String {
        match self {
            Clock::Database => sql,
            Clock::Test => sql.replace("now()", "chronos_test_now()"),
        }
    }
}

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp(t)
}

fn opt_ts(row: &Row, col: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<_, Option<DateTime<Utc>>>(col)?.map(ts))
}

fn u32_col(row: &Row, col: &str) -> Result<u32> {
    let v: i32 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

/// An interval literal PostgreSQL reads.
pub(super) fn interval(d: Duration) -> String {
    format!("interval '{} seconds'", d.as_secs())
}

/// Reads [`MOVED_COLUMNS`].
fn moved_from_row(row: &Row) -> Result<super::Moved> {
    let status: String = row.try_get("status")?;
    let delivery_type: String = row.try_get("delivery_type")?;
    let handler: Option<String> = row.try_get("handler")?;
    Ok(super::Moved {
        id: row.try_get("id")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        attempt: u32_col(row, "attempt")?,
        schedule_id: row.try_get("schedule_id")?,
        wake: WakeKey::of(
            OrgId(row.try_get("organization_id")?),
            &delivery_type,
            handler.as_deref(),
        ),
        followed: row.try_get("followed")?,
        job: None,
        freed: Vec::new(),
    })
}

/// Reads [`MOVED_COLUMNS`] and [`whole_job_columns`]: the whole job too
/// where it was asked for.
fn ended_from_row(row: &Row) -> Result<super::Moved> {
    let mut moved = moved_from_row(row)?;
    if let Some(keys) = row.try_get::<_, Option<&str>>("freed")? {
        moved.freed = parse_wake_payload(keys).unwrap_or_default();
    }
    if row.try_get::<_, bool>("whole")? {
        moved.job = Some(Box::new(jobs::job_from_row(row)?));
    }
    Ok(moved)
}

/// An ack, fail, release or extend matched no current lease: was the token
/// ever one of this organization's?
async fn lease_miss<T>(
    client: &deadpool_postgres::Client,
    org: OrgId,
    token: Uuid,
) -> Result<LeaseOutcome<T>> {
    let stmt = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job_id
                            WHERE e.lease_token = $2 AND j.organization_id = $1)",
        )
        .await?;
    let known: bool = client.query_one(&stmt, &[&org.0, &token]).await?.get(0);
    Ok(if known {
        LeaseOutcome::Lost
    } else {
        LeaseOutcome::Unknown
    })
}

/// Reads a [`NOTIFY_CHANNEL`] payload; `None` means "wake everyone".
pub fn parse_wake_payload(payload: &str) -> Option<Vec<WakeKey>> {
    if payload == "*" {
        return None;
    }
    let mut keys = Vec::new();
    for part in payload.split(',').filter(|p| !p.is_empty()) {
        if part == "push" {
            keys.push(WakeKey::Push);
            continue;
        }
        let (org, handler) = part.split_once('/')?;
        keys.push(WakeKey::Pull(
            OrgId(Uuid::parse_str(org).ok()?),
            handler.to_string(),
        ));
    }
    Some(keys)
}
