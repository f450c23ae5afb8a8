//! Storage: the one interface the rest of the server uses to read and change
//! state, split by concept — one trait per concept, each implemented once
//! per store, in a file of the same name:
//!
//! | concept | trait | who may call it |
//! |---|---|---|
//! | the database itself: migrations, readiness, changes from other processes, the clock | [`Database`] | anyone |
//! | organizations and API keys | [`AccountStore`] | anyone |
//! | people: users, memberships, sessions, invites | [`PeopleStore`] | anyone |
//! | plans, the organizations on them, and what they have used | [`PlanStore`] | anyone |
//! | domains organizations prove they own, and their checks | [`DomainStore`] | anyone |
//! | signing secrets | [`SigningSecretStore`] | anyone |
//! | reading jobs and their executions | [`JobStore`] | anyone |
//! | creating jobs and changing their status | [`LeaseStore`] | **the lease engine only** |
//! | queues: their settings and state | [`QueueStore`] | anyone |
//! | schedules | [`ScheduleStore`] | anyone |
//! | connected workers | [`WorkerStore`] | anyone |
//! | how long finished jobs are kept, and deleting them after | [`RetentionStore`] | anyone; the retention service deletes |
//! | target groups and their members | [`TargetGroupStore`] | anyone |
//! | push endpoints and their health | [`EndpointStore`] | anyone |
//!
//! [`Store`] is every trait but [`LeaseStore`]: it is what the API, worker
//! sessions and push delivery hold. Opening a store ([`Opened`]) gives its
//! [`LeaseStore`] apart, and the server hands that to the lease engine
//! (`lease::Engine::new`), which keeps it private: nothing else can
//! change a job's status, and the compiler says so.
//!
//! The two implementations behave the same way and pass the same
//! conformance suite (`server/tests/store.rs`):
//!
//! - [`postgres`]: the production store (tokio-postgres + deadpool-postgres).
//! - [`sqlite`]: the embedded store, compiled in, for `chronos serve` with
//!   nothing else installed.
//!
//! All SQL lives in these two modules and their `migrations/` folders; each
//! statement is built once, when the store is opened. Time comparisons (is a
//! job due? has a lease expired?) use the database's clock, never this
//! process's, so replicas with skewed clocks agree; tests may swap it for a
//! clock they move ([`Clock`]).

pub mod accounts;
pub mod clock;
pub mod database;
pub mod domains;
pub mod endpoints;
pub(crate) mod flow;
pub mod jobs;
pub mod leases;
pub mod people;
pub mod plans;
pub mod postgres;
pub mod queues;
pub mod retention;
pub mod schedules;
pub mod signing_secrets;
pub mod sqlite;
pub mod target_groups;
pub mod workers;

pub use accounts::{AccountStore, NewOrganization, OrgUpdate};
pub use clock::Clock;
pub use database::{Change, ChangeFn, Database};
pub use domains::DomainStore;
pub use endpoints::EndpointStore;
pub use jobs::{ExecutionsOf, JobFilter, JobStore, ScheduleFilter};
pub use leases::{
    AttemptEnd, CancelOutcome, Expired, FanOutCreated, Fired, Handoff, HealthRecorded,
    HttpResponse, Inserted, LeaseOutcome, LeaseStore, Moved, Outcome, Promoted, Published,
    PushSlots, RateReleases, RetryOutcome, WakeKey,
};
pub use people::PeopleStore;
pub use plans::{PlanDeleted, PlanStore};
pub use queues::{DeleteQueue, QueueCounts, QueueStore};
pub use retention::{Cutoffs, RetentionPeriods, RetentionSettings, RetentionStore};
pub use schedules::ScheduleStore;
pub use signing_secrets::SigningSecretStore;
pub use target_groups::{DeleteGroup, Renamed, TargetGroupStore};
pub use workers::{HeldLease, WorkerRegistration, WorkerStore};

use chronos_proto::JobStatus;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the server may read and write except job statuses: what the
/// API, worker sessions and push delivery hold.
pub trait Store:
    Database
    + AccountStore
    + PeopleStore
    + PlanStore
    + DomainStore
    + SigningSecretStore
    + JobStore
    + QueueStore
    + ScheduleStore
    + WorkerStore
    + RetentionStore
    + TargetGroupStore
    + EndpointStore
{
}

impl<T> Store for T where
    T: Database
        + AccountStore
        + PeopleStore
        + PlanStore
        + DomainStore
        + SigningSecretStore
        + JobStore
        + QueueStore
        + ScheduleStore
        + WorkerStore
        + RetentionStore
        + TargetGroupStore
        + EndpointStore
        + ?Sized
{
}

/// A shared handle to whichever store the server runs on.
pub type DynStore = Arc<dyn Store>;

/// The statements that create jobs and change their status, for the lease
/// engine alone.
pub type DynLeases = Arc<dyn LeaseStore>;

/// A store just opened: the handle everyone shares, and the lease
/// statements, to be handed to the lease engine.
#[derive(Clone)]
pub struct Opened {
    pub store: DynStore,
    pub leases: DynLeases,
}

impl Opened {
    /// Both handles of one store.
    pub fn of<S: Store + LeaseStore>(store: S) -> Self {
        let store = Arc::new(store);
        Opened {
            leases: store.clone(),
            store,
        }
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The idempotency key is already held by another job of the organization.
    #[error("idempotency key is already used by job {existing}")]
    IdempotencyConflict { existing: Uuid },
    /// A job named a queue its organization doesn't have; nothing of its
    /// batch was inserted.
    #[error("queue {name:?} does not exist")]
    QueueNotFound { name: String },
    /// The organization's plan allows no more jobs in this window.
    #[error("{}", .0.message())]
    QuotaExceeded(crate::account::plans::QuotaExceeded),
    /// Another `chronos serve` holds the embedded store's file.
    #[error(
        "another `chronos serve` is already using {path} (lock file {lock}); stop it, or give this one its own --data-dir"
    )]
    Locked { path: String, lock: String },
    /// The database was migrated by a newer Chronos than this one.
    #[error(
        "the database is at schema version {found}, newer than this chronos knows ({known}); upgrade chronos"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// The test clock was asked to move on a store that reads the real one.
    #[error(
        "this store reads the database's clock; only a store opened with the test clock can move it"
    )]
    NoTestClock,
    /// A connection to PostgreSQL could not be had.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// PostgreSQL refused or failed a statement.
    #[error("postgres: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// SQLite refused or failed a statement.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row held something this version cannot read.
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// Anything else (I/O on the data directory, a panicked blocking task).
    #[error("{0}")]
    Other(String),
    /// The error of a batch, told to each request in it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

/// tokio-postgres says only "db error" for errors the server reported; the
/// server's code and message are what an operator needs.
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Keyset pagination over ids, newest first. Ids are UUIDv7, so id order is
/// creation order.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub limit: u32,
    /// Return rows with ids below this one (the previous page's last id).
    pub before: Option<Uuid>,
}

/// One page, and the id to continue before if there are more rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// Stores fetch `limit + 1` rows; the extra one only tells that another
    /// page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Self {
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(&id)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// A store's "seconds until" (a due time, a deadline) as a duration; a time
/// already past is zero.
pub(crate) fn seconds_from_now(secs: Option<f64>) -> Option<std::time::Duration> {
    secs.map(|s| std::time::Duration::from_secs_f64(s.max(0.0)))
}

/// The test of a status column against `statuses`, as literals: `=
/// 'queued'` for one status, `IN ('scheduled', 'queued')` for several;
/// written `status {test}`. Literals, not parameters, so both planners can
/// use the partial indexes on status. SQLite uses an index `WHERE status =
/// 'queued'` only for a query that says `status = 'queued'`: with `status IN
/// ('queued')` it read every job of the organization on each lease. The
/// values are the fixed status names, never user input.
pub(crate) fn status_test(statuses: &[JobStatus]) -> String {
    match statuses {
        [_] => format!("= {}", status_literals(statuses)),
        _ => format!("IN ({})", status_literals(statuses)),
    }
}

/// Queued push jobs, written as the predicate of their index
/// (`jobs_queued_push`) says it, so that both stores' planners use it.
pub(crate) fn queued_push_test() -> String {
    format!(
        "status {} AND delivery_type = 'push' AND {FREE_FLOW}",
        status_test(crate::job::state::Transition::Lease.from())
    )
}

/// Scheduled jobs that are not held (migrations: postgres 0016, sqlite
/// 0015): promotion reads only these, through the partial index that holds
/// only these. A held job waits for its endpoint to be enabled
/// (`crate::endpoint`), however long past its `run_at`.
pub(crate) const NOT_HELD: &str = "held_reason IS NULL";

/// Jobs of queues that hold nothing back (migrations: postgres 0011,
/// sqlite 0009): the fast path's indexes hold only these, and every
/// statement that reads them says so, so that the planner uses them.
pub(crate) const FREE_FLOW: &str = "flow = 0";

/// `'scheduled', 'queued'`: statuses as SQL literals, comma-separated.
pub(crate) fn status_literals(statuses: &[JobStatus]) -> String {
    let items: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    items.join(", ")
}

/// A serde unit enum (a status, a policy) as the text a column holds.
pub(crate) fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Reads a column written by [`enum_text`].
pub(crate) fn enum_parse<T: serde::de::DeserializeOwned>(column: &str, text: String) -> Result<T> {
    serde_json::from_value(Value::String(text))
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Reads a JSON column into `T`.
pub(crate) fn json_parse<T: serde::de::DeserializeOwned>(column: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Writes `T` for a JSON column.
pub(crate) fn json_value<T: serde::Serialize>(column: &str, value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Other(format!("{column}: {e}")))
}
