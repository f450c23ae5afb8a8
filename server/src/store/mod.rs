//! Storage: the one interface the rest of the server uses to read and change
//! state, with two implementations that behave the same way:
//!
//! - [`postgres`]: the production store (tokio-postgres + deadpool-postgres).
//! - [`sqlite`]: the embedded store, compiled in, for `chronos serve` with
//!   nothing else installed.
//!
//! All SQL lives in these two modules and their `migrations/` folders. Time
//! comparisons (is a job due? has a lease expired?) use the database's clock,
//! never this process's, so replicas with skewed clocks agree.
//!
//! Every job status change is one of the transitions in
//! [`crate::lease::state`]; the stores apply them with the `from` states
//! that module defines, and ask it what follows a failed attempt. Nothing
//! but the lease engine ([`crate::lease`]) calls the methods that change a
//! job's status.

pub mod postgres;
pub mod sqlite;

use crate::lease::state::Failure;
use crate::schedule::{JobTemplate, TimingSpec};
use async_trait::async_trait;
use chronos_proto::{CatchUp, Overlap, ScheduleStatus};
use chronos_proto::{Delivery, Execution, Job, JobStatus, Lease, LeasedJob, Scope, Timestamp};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A shared handle to whichever store the server runs on.
pub type DynStore = Arc<dyn Store>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The idempotency key is already held by another job of the organization.
    #[error("idempotency key is already used by job {existing}")]
    IdempotencyConflict { existing: Uuid },
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

/// An organization's id. Every query about jobs, keys and the rest takes one,
/// so a key can only ever reach its own organization's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrgId(pub Uuid);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API key as stored: the public id and a SHA-256 of the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub organization_id: OrgId,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    /// The key as the API shows it: never the hash.
    pub fn to_wire(&self) -> chronos_proto::ApiKey {
        chronos_proto::ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// A key to insert.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: String,
    pub organization_id: OrgId,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<Scope>,
}

/// A signing secret as stored: its value, and the previous one while it
/// still signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningSecretRecord {
    pub id: Uuid,
    pub name: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
}

impl SigningSecretRecord {
    /// As listed: never the values.
    pub fn to_wire(&self) -> chronos_proto::SigningSecret {
        chronos_proto::SigningSecret {
            id: self.id,
            name: self.name.clone(),
            created_at: self.created_at,
            rotated_at: self.rotated_at,
            previous_expires_at: self.previous_expires_at.filter(|t| *t > Timestamp::now()),
        }
    }

    /// The values that sign a request at `now`: the current one, and the
    /// previous one within its window.
    pub fn signing_values(&self, now: Timestamp) -> Vec<&str> {
        let mut values = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_expires_at)
            && until > now
        {
            values.push(previous);
        }
        values
    }
}

/// Whose executions [`Store::executions`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionsOf {
    Job(Uuid),
    /// Every job the schedule created.
    Schedule(Uuid),
}

impl ExecutionsOf {
    /// The table that must hold the id for the organization.
    pub(crate) fn owner_table(self) -> &'static str {
        match self {
            ExecutionsOf::Job(_) => "jobs",
            ExecutionsOf::Schedule(_) => "schedules",
        }
    }

    /// The condition on `executions.job_id`, with the id as `id` and the
    /// organization as `org` (each store's placeholders).
    pub(crate) fn jobs_sql(self, id: &str, org: &str) -> String {
        match self {
            ExecutionsOf::Job(_) => format!("job_id = {id}"),
            ExecutionsOf::Schedule(_) => format!(
                "job_id IN (SELECT id FROM jobs WHERE organization_id = {org} AND schedule_id = {id})"
            ),
        }
    }

    pub(crate) fn id(self) -> Uuid {
        match self {
            ExecutionsOf::Job(id) | ExecutionsOf::Schedule(id) => id,
        }
    }
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRecord {
    pub id: Uuid,
    pub name: String,
    pub status: ScheduleStatus,
    pub timing: TimingSpec,
    pub timezone: String,
    pub template: JobTemplate,
    pub catch_up: CatchUp,
    pub overlap: Overlap,
    pub failure_notify: bool,
    /// Intervals count from here.
    pub anchor_at: Timestamp,
    /// When it fires next; `None` unless active.
    pub next_run_at: Option<Timestamp>,
    /// A due time held back (`overlap: wait`) until the last job ends.
    pub waiting_fire_at: Option<Timestamp>,
    pub last_run_at: Option<Timestamp>,
    pub last_job_id: Option<Uuid>,
    /// The status of the last job, read with the schedule.
    pub last_status: Option<JobStatus>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One job a scheduler pass creates for a due time (`fire_at`), unique per
/// schedule and due time.
#[derive(Clone, Debug)]
pub struct Fire {
    pub fire_at: Timestamp,
    pub job: NewJob,
}

/// What a scheduler pass does with one due schedule.
#[derive(Clone, Debug, Default)]
pub struct FirePlan {
    pub fires: Vec<Fire>,
    pub next_run_at: Option<Timestamp>,
    pub waiting_fire_at: Option<Timestamp>,
}

/// Decides a due schedule's [`FirePlan`] at the database's `now`.
pub type PlanFn = fn(&ScheduleRecord, Timestamp) -> FirePlan;

/// What one scheduler pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fired {
    /// Jobs created, with their organizations.
    pub jobs: Vec<(OrgId, Job)>,
    /// How long until the next active schedule is due.
    pub next_due_in: Option<Duration>,
    /// Schedules looked at; a full batch means more may be due.
    pub schedules: usize,
}

/// When a new job becomes due. Relative times are added to the database's
/// clock, not this process's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunAt {
    Now,
    After(Duration),
    At(Timestamp),
}

/// A validated job to insert.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: Uuid,
    pub name: String,
    pub handler: Option<String>,
    pub payload: Value,
    pub queue: String,
    pub priority: i32,
    pub delivery: Delivery,
    pub run_at: RunAt,
    pub max_retries: u32,
    pub timeout_seconds: u32,
    pub schedule_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
}

/// What became of one job of a batch insert.
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    Created(Box<Job>),
    /// Its idempotency key is held by this job (perhaps an earlier one of
    /// the same batch); nothing was inserted.
    Conflict {
        existing: Uuid,
    },
}

/// What became of a job created for a poll waiting for its handler.
#[derive(Clone, Debug, PartialEq)]
pub enum Handoff {
    /// Inserted already leased to the poll's worker.
    Leased(Box<LeasedJob>),
    /// Inserted `queued`: jobs of its handler were queued ahead of it.
    Queued(Box<Job>),
    /// Its idempotency key is held by this job; nothing was inserted.
    Conflict { existing: Uuid },
}

/// One worker's share of a batched lease: up to `max` jobs, to run as
/// `worker_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taker {
    pub worker_id: Option<String>,
    pub max: u32,
}

/// The most jobs one lease statement takes.
pub const MAX_LEASE_BATCH: usize = 1000;

/// For each job a batched lease takes, in order, the index of the taker
/// who gets it: round-robin over those with room, so that when there are
/// fewer jobs than free slots they spread over the workers instead of
/// filling the first one. At most `limit` slots.
pub(crate) fn lease_slots(takers: &[Taker], limit: usize) -> Vec<usize> {
    let mut left: Vec<u32> = takers.iter().map(|t| t.max).collect();
    let mut slots = Vec::new();
    while slots.len() < limit && left.iter().any(|&l| l > 0) {
        for (i, l) in left.iter_mut().enumerate() {
            if *l > 0 && slots.len() < limit {
                *l -= 1;
                slots.push(i);
            }
        }
    }
    slots
}

/// How a worker says an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ack(Option<Value>),
    Fail(Failure),
}

/// One attempt's end, as a worker reports it: the token of its lease and
/// what happened.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptEnd {
    pub org: OrgId,
    pub token: Uuid,
    pub outcome: Outcome,
    /// What the target answered, for a push attempt that got an answer.
    pub response: Option<HttpResponse>,
}

/// A push target's answer, recorded on the attempt's execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// The body as text, cut to the size limit.
    pub body: String,
    /// True when `body` was cut.
    pub truncated: bool,
}

/// The push dispatcher's free slots, for [`Store::lease_push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSlots {
    /// How many jobs it can take now.
    pub max: u32,
    /// How many calls to one host may be in flight at once.
    pub per_host: u32,
    /// The hosts it is calling now, with how many calls each.
    pub busy: Vec<(String, u32)>,
    /// How much longer than the job's timeout the lease lasts, so that the
    /// attempt's end is recorded before the lease can expire.
    pub lease_margin: Duration,
}

/// The host a push job calls, as its slots are counted: `host:port`, the
/// port explicit. `None` for pull jobs (and unparsable URLs, which the API
/// refuses).
pub fn target_host(delivery: &Delivery) -> Option<String> {
    let Delivery::Push { http, .. } = delivery else {
        return None;
    };
    let url = url::Url::parse(&http.url).ok()?;
    Some(format!(
        "{}:{}",
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}

/// Which jobs a schedule filter selects.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ScheduleFilter {
    #[default]
    Any,
    /// Only one-off jobs (`?schedule_id=null`).
    None,
    Id(Uuid),
}

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Any of these statuses; empty means all.
    pub statuses: Vec<JobStatus>,
    pub handler: Option<String>,
    pub queue: Option<String>,
    pub schedule: ScheduleFilter,
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

/// The result of asking to cancel a job.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    Cancelled(Job),
    /// Already completed, failed or cancelled; unchanged.
    AlreadyFinished(Job),
    NotFound,
}

/// Who should hear that jobs became queued: the polls waiting for a pull
/// handler of an organization, or push delivery.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WakeKey {
    Pull(OrgId, String),
    Push,
}

impl WakeKey {
    /// The key for a queued job.
    pub fn for_job(org: OrgId, job: &Job) -> Self {
        match (&job.delivery, &job.handler) {
            (Delivery::Pull, Some(handler)) => WakeKey::Pull(org, handler.clone()),
            _ => WakeKey::Push,
        }
    }
}

/// What one promotion pass of the sweeper did.
#[derive(Clone, Debug, PartialEq)]
pub struct Promoted {
    /// Jobs moved from `scheduled` to `queued`.
    pub count: u64,
    /// Whose jobs they were.
    pub woken: Vec<WakeKey>,
    /// How long until the next scheduled job is due, by the database's clock.
    pub next_due_in: Option<Duration>,
}

/// What one pass over expired leases did.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    /// Attempts timed out now, with their jobs as they are after it.
    pub jobs: Vec<Job>,
    /// How long until the next running attempt's deadline.
    pub next_expiry_in: Option<Duration>,
}

/// The answer to an ack, fail or extend.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaseOutcome<T> {
    Done(T),
    /// The token was a lease of this job, but is no longer its current one
    /// (expired, re-leased, timed out, cancelled, or already acked).
    Lost,
    /// No lease of this organization ever had this token.
    Unknown,
}

impl<T> LeaseOutcome<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> LeaseOutcome<U> {
        match self {
            LeaseOutcome::Done(v) => LeaseOutcome::Done(f(v)),
            LeaseOutcome::Lost => LeaseOutcome::Lost,
            LeaseOutcome::Unknown => LeaseOutcome::Unknown,
        }
    }
}

/// A worker saying hello over WebSocket.
#[derive(Clone, Debug)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub session_id: Uuid,
    pub handlers: Vec<String>,
    pub max_in_flight: u32,
    pub sdk: String,
}

/// A lease a worker holds: its token and job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub token: Uuid,
    pub job_id: Uuid,
}

/// The answer to a manual retry.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryOutcome {
    Retried(Job),
    /// Neither failed nor cancelled; unchanged.
    NotRetryable(Job),
    NotFound,
}

/// What other server processes did that this one should act on.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Jobs became queued for these keys; `None` means some may have been
    /// missed, so every waiting poll should look again.
    Queued(Option<Vec<WakeKey>>),
    /// A job was cancelled: a worker session holding it tells its worker.
    Cancelled(Uuid),
}

/// Called with each [`Change`] other server processes make.
pub type ChangeFn = Arc<dyn Fn(Change) + Send + Sync>;

/// The storage interface. Both implementations pass the same conformance
/// suite (`server/tests/store.rs`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`, for logs.
    fn kind(&self) -> &'static str;

    /// Is the store reachable? (`/readyz`)
    async fn ping(&self) -> Result<()>;

    /// Applies pending migrations under a lock, so concurrent starts apply
    /// each migration once. Returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;

    /// On an empty store, creates the default organization and `admin_key`
    /// for it, under the same kind of lock; returns the organization if it was
    /// created now, `None` if any organization already existed.
    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>>;

    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization>;
    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>>;

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord>;
    /// Looks a key up by its public id, across organizations (authentication).
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>>;
    /// Marks a key revoked (idempotently); `None` if the organization has no such key.
    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>>;

    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord>;
    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>>;
    /// Newest first.
    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>>;
    /// Replaces the value with `secret`; the old one keeps signing for
    /// `window` (by the database's clock). `None` if there is no such secret.
    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>>;

    /// Inserts jobs in one transaction, each `scheduled` or `queued`
    /// depending on whether it is due, and returns, in order, what became of
    /// each once committed.
    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>>;

    /// Inserts one pull job that is due now and, in the same statement,
    /// leases it to `worker_id` (a poll waiting for its handler on this
    /// process): running, attempt 1, a new token and deadline, an open
    /// execution. If a job of its handler is already queued, it would jump
    /// that queue: it is then inserted `queued`, as [`Store::create_jobs`]
    /// would.
    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff>;

    /// Inserts one job ([`Store::create_jobs`] with one).
    async fn create_job(&self, org: OrgId, job: NewJob) -> Result<Job> {
        match self.create_jobs(org, vec![job]).await?.pop() {
            Some(Inserted::Created(job)) => Ok(*job),
            Some(Inserted::Conflict { existing }) => {
                Err(StoreError::IdempotencyConflict { existing })
            }
            None => Err(StoreError::Other(
                "an insert of one job answered nothing".into(),
            )),
        }
    }
    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>>;
    async fn list_jobs(
        &self,
        org: OrgId,
        filter: &JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>>;
    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome>;
    /// The attempts of a job, or of the jobs a schedule created, newest
    /// first; `None` if the organization has no such job or schedule.
    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>>;

    /// A job's attempts ([`Store::executions`]).
    async fn list_executions(
        &self,
        org: OrgId,
        job_id: Uuid,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>> {
        self.executions(org, ExecutionsOf::Job(job_id), page).await
    }

    /// Moves every `scheduled` job whose `run_at` has passed to `queued`.
    async fn promote_due_jobs(&self) -> Result<Promoted>;

    /// Leases queued pull jobs of these handlers for several takers at once
    /// (one statement), best first (priority, then run_at, then creation),
    /// dealt out as [`lease_slots`] says: each becomes `running` with a new
    /// attempt, a new token, a deadline `timeout` seconds from now, and an
    /// open execution. Returns each taker's jobs, in the takers' order.
    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>>;

    /// Leases up to `max` jobs for one taker ([`Store::lease_batch`]).
    async fn lease_jobs(
        &self,
        org: OrgId,
        handlers: &[String],
        max: u32,
        worker_id: Option<&str>,
    ) -> Result<Vec<LeasedJob>> {
        let taker = Taker {
            worker_id: worker_id.map(str::to_string),
            max,
        };
        Ok(self
            .lease_batch(org, handlers, &[taker])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Leases queued push jobs for the dispatcher, best first, only as many
    /// as `slots` has room for, in all and per target host: each becomes
    /// `running` with a new attempt, token and open execution, its deadline
    /// `timeout + lease_margin` from now. Returns each with its organization.
    async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>>;

    /// Ends attempts as their workers report, together (all acks in one
    /// statement, all fails in one transaction): an ack
    /// completes the job, a fail schedules it again or fails it, as
    /// [`crate::lease::state::after_failure`] says. Each applies only if
    /// its token is still the job's current lease and the deadline has not
    /// passed; the answers come in the order of `ends`, as if applied one
    /// after the other (the same token twice: the second finds it lost).
    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Job>>>;

    /// Completes one attempt ([`Store::end_attempts`]).
    async fn ack_job(
        &self,
        org: OrgId,
        token: Uuid,
        result: Option<Value>,
    ) -> Result<LeaseOutcome<Job>> {
        let ack = AttemptEnd {
            org,
            token,
            outcome: Outcome::Ack(result),
            response: None,
        };
        let mut outcomes = self.end_attempts(vec![ack]).await?;
        Ok(outcomes.pop().unwrap_or(LeaseOutcome::Unknown))
    }

    /// Fails one attempt ([`Store::end_attempts`]).
    async fn fail_job(
        &self,
        org: OrgId,
        token: Uuid,
        failure: Failure,
    ) -> Result<LeaseOutcome<Job>> {
        let fail = AttemptEnd {
            org,
            token,
            outcome: Outcome::Fail(failure),
            response: None,
        };
        let mut outcomes = self.end_attempts(vec![fail]).await?;
        Ok(outcomes.pop().unwrap_or(LeaseOutcome::Unknown))
    }

    /// Moves the deadline of the attempt `token` holds to `by` from now.
    async fn extend_lease(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>>;

    /// Hands the attempt `token` holds back: the job is queued again and the
    /// attempt does not count against its retries (its execution is
    /// `released`).
    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Job>>;

    /// Queues a failed or cancelled job again, with a fresh retry budget.
    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome>;

    /// Ends running attempts that cannot finish: those whose deadline has
    /// passed (`timed_out`), and those of WebSocket workers gone for longer
    /// than `worker_grace` (`failed`, due again at once). Each counts as a
    /// failed attempt.
    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired>;

    /// Records a worker's session (a reconnect replaces the last one) and
    /// returns the leases it still holds, which it keeps.
    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>>;

    /// The session is alive.
    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()>;

    /// The session ended; unless it reconnects, its leases end after the grace.
    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()>;

    /// Workers connected to any server process, heard from within `alive`.
    async fn list_workers(
        &self,
        org: OrgId,
        alive: Duration,
    ) -> Result<Vec<chronos_proto::worker::ConnectedWorker>>;

    async fn insert_schedule(
        &self,
        org: OrgId,
        schedule: &ScheduleRecord,
    ) -> Result<ScheduleRecord>;
    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>>;
    /// Newest first, optionally only those of one status.
    async fn list_schedules(
        &self,
        org: OrgId,
        status: Option<ScheduleStatus>,
        page: PageRequest,
    ) -> Result<Page<ScheduleRecord>>;
    /// Writes a schedule's definition, status and next run (not its last
    /// run, which only fires change); `None` if there is no such schedule.
    async fn update_schedule(
        &self,
        org: OrgId,
        schedule: &ScheduleRecord,
    ) -> Result<Option<ScheduleRecord>>;
    /// Deletes a schedule; the jobs it created stay. False if there was none.
    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool>;
    /// Records a job made for the schedule outside its timing (`trigger`)
    /// as its last run.
    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()>;
    /// One scheduler pass: takes the active schedules that are due (by the
    /// database's clock) or hold a waiting fire whose last job has ended,
    /// skipping those another process is firing; asks `plan` what each
    /// does; inserts its fires' jobs — a due time that already has its job
    /// is skipped — and moves its next run, in one transaction.
    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired>;

    /// Starts following the jobs other server processes queue or cancel (on
    /// PostgreSQL, LISTEN/NOTIFY), calling `on_change` for each, until
    /// `shutdown`. `None` where no other process can share the store.
    fn watch_changes(
        &self,
        on_change: ChangeFn,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>>;
}

/// The columns both stores select for a job, an execution and a key (the row
/// readers look them up by name).
pub(crate) const JOB_COLUMNS: &str = "id, name, handler, payload, status, queue, priority, \
     delivery, run_at, attempt, max_retries, timeout_seconds, schedule_id, fire_at, \
     idempotency_key, result, last_error, created_at, updated_at, finished_at";
pub(crate) const EXECUTION_COLUMNS: &str = "id, job_id, attempt, status, worker_id, \
     http_status, response_body, response_truncated, error, started_at, finished_at";
pub(crate) const SCHEDULE_COLUMNS: &str = "s.id, s.name, s.status, s.timing, s.timezone, \
     s.template, s.catch_up, s.overlap, s.failure_notify, s.anchor_at, s.next_run_at, \
     s.waiting_fire_at, s.last_run_at, s.last_job_id, s.created_at, s.updated_at, \
     lj.status AS last_status";
pub(crate) const SIGNING_SECRET_COLUMNS: &str =
    "id, name, secret, previous_secret, previous_expires_at, created_at, rotated_at";
pub(crate) const API_KEY_COLUMNS: &str =
    "id, organization_id, name, secret_sha256, scopes, created_at, revoked_at";

/// `('scheduled', 'queued')`: statuses as an SQL list of literals. Literals,
/// not parameters, so both planners can use the partial indexes on status.
/// The values are the fixed status names, never user input.
pub(crate) fn status_list(statuses: &[JobStatus]) -> String {
    let items: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", items.join(", "))
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
