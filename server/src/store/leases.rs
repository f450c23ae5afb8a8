//! Creating jobs and changing their status: every statement that inserts a
//! job or moves it along the state machine (`crate::job::state`). Only the
//! lease engine holds a [`LeaseStore`]; each status `UPDATE` is guarded by
//! its transition's `from` statuses, so a job in any other status is left
//! as it was.

use super::Result;
use crate::account::OrgId;
use crate::account::plans::QuotaExceeded;
use crate::endpoint::{Enabled, EndpointKey, HealthPolicy, Tally};
use crate::job::NewJob;
use crate::job::slots::Taker;
use crate::job::state::Failure;
use crate::schedule::PlanFn;
use crate::target_group::NewFanOut;
use async_trait::async_trait;
use chronos_proto::{Job, JobStatus, Lease, LeasedJob, Timestamp};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

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
        Self::of(org, job.delivery.kind(), job.handler.as_deref())
    }

    /// The key for a job of this delivery kind (`pull`/`push`) and handler.
    pub fn of(org: OrgId, delivery_kind: &str, handler: Option<&str>) -> Self {
        match (delivery_kind, handler) {
            ("pull", Some(handler)) => WakeKey::Pull(org, handler.to_string()),
            _ => WakeKey::Push,
        }
    }
}

/// A job as a status change left it, as far as whoever waits for it cares:
/// what an ack, fail or release answers, without the payload and result
/// unless the caller asked for the whole job.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    pub id: Uuid,
    pub status: JobStatus,
    pub attempt: u32,
    pub schedule_id: Option<Uuid>,
    /// Whose polls to wake if it is queued.
    pub wake: WakeKey,
    /// A push delivery with a fan-out or a callback queue: its end has an
    /// outcome to publish.
    pub followed: bool,
    /// The whole job, read by the same statement, for an attempt end that
    /// asked for it ([`AttemptEnd::whole_job`]); `None` otherwise.
    pub job: Option<Box<Job>>,
    /// Whose polls to wake because the attempt's end freed a slot of its
    /// controlled queue: the handlers of the queue's next jobs.
    pub freed: Vec<WakeKey>,
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
    /// Its organization's plan allows no more jobs now; nothing was
    /// inserted.
    OverQuota(QuotaExceeded),
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
    /// Its organization's plan allows no more jobs now; nothing was
    /// inserted.
    OverQuota(QuotaExceeded),
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
    /// The caller answers with the whole job (`POST /v1/leases/ack` and
    /// `fail`): the statement returns it in [`Moved::job`]. Worker sessions
    /// and push delivery do not, and pay for no payload or result.
    pub whole_job: bool,
}

/// A push target's answer, recorded on the attempt's execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// The body as text, cut to the size limit: the text it was, or, when
    /// it was not UTF-8, base64 of its bytes (`encoding`).
    pub body: String,
    pub encoding: chronos_proto::BodyEncoding,
    /// True when `body` was cut.
    pub truncated: bool,
}

impl HttpResponse {
    /// What the stores write in `executions.response_body_encoding`: NULL
    /// for UTF-8 text.
    pub fn encoding_column(&self) -> Option<&'static str> {
        match self.encoding {
            chronos_proto::BodyEncoding::Utf8 => None,
            other => Some(other.as_str()),
        }
    }
}

/// The push dispatcher's free slots, for [`LeaseStore::lease_push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSlots {
    /// How many jobs it can take now.
    pub max: u32,
    /// How many calls to one host may be in flight at once.
    pub per_host: u32,
    /// The hosts it is calling now, with how many calls each.
    pub busy: Vec<(String, u32)>,
    /// Hosts are served in turn, in host order from just after this one
    /// (the last host the previous lease served), wrapping round: when
    /// more hosts wait than one lease serves, the rest are next.
    pub after: Option<String>,
    /// How much longer than the job's timeout the lease lasts, so that the
    /// attempt's end is recorded before the lease can expire.
    pub lease_margin: Duration,
}

/// The answer to an ack, fail, release or extend.
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

/// The result of asking to cancel a job.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    /// Cancelled; with whose polls to wake for its queue's next jobs, when
    /// it held (or was next for) a slot of a controlled queue. Other server
    /// processes were told in the same transaction.
    Cancelled(Job, Vec<WakeKey>),
    /// Already completed, failed or cancelled; unchanged.
    AlreadyFinished(Job),
    NotFound,
}

/// The answer to a manual retry.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryOutcome {
    Retried(Job),
    /// Neither failed nor cancelled; unchanged.
    NotRetryable(Job),
    NotFound,
}

/// What one promotion pass of the sweeper did.
#[derive(Clone, Debug, PartialEq)]
pub struct Promoted {
    /// Jobs moved from `scheduled` to `queued`.
    pub count: u64,
    /// Whose jobs they were.
    pub woken: Vec<WakeKey>,
    /// How long until the next scheduled job is due, by the store's clock.
    pub next_due_in: Option<Duration>,
}

/// What [`LeaseStore::rate_releases`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct RateReleases {
    /// The polls of the next jobs of the queues a window let go.
    pub woken: Vec<WakeKey>,
    /// The store's now when it looked: the `since` of the next call.
    pub checked_at: Timestamp,
    /// How long until the next window lets a start go, by the store's clock.
    pub next_in: Option<Duration>,
}

/// What one pass over expired leases did.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    /// Attempts ended now, with their jobs as they are after it.
    pub ended: Vec<Moved>,
    /// How long until the next running attempt's deadline.
    pub next_expiry_in: Option<Duration>,
}

/// What one scheduler pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fired {
    /// Jobs created, with their organizations.
    pub jobs: Vec<(OrgId, Job)>,
    /// How long until the next active schedule is due.
    pub next_due_in: Option<Duration>,
    /// Schedules looked at; a full batch means more may be due.
    pub schedules: usize,
    /// Fires that made no job because their organization's quota was
    /// spent (recorded as skipped runs).
    pub skipped: usize,
}

/// What became of a fan-out's insert.
#[derive(Clone, Debug, PartialEq)]
pub enum FanOutCreated {
    /// The fan-out and every delivery, in the order given.
    Created(Vec<Job>),
    /// A delivery's idempotency key is held by this job: nothing was
    /// inserted.
    Conflict { existing: Uuid },
    /// Not every delivery fits in the organization's quota: nothing was
    /// inserted.
    OverQuota(QuotaExceeded),
}

/// What one pass of the outcome publisher did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Published {
    /// Ended deliveries whose outcome it published (a full batch: more may
    /// wait).
    pub taken: usize,
    /// The callback messages it created, with their organizations.
    pub created: Vec<(OrgId, Job)>,
}

/// What writing the dispatcher's tallies did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthRecorded {
    /// Endpoints disabled by these tallies.
    pub disabled: Vec<(OrgId, EndpointKey)>,
    /// Held deliveries released by endpoints that recovered.
    pub released: u64,
}

/// The statements only the lease engine runs.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Inserts jobs in one transaction, each `scheduled` or `queued`
    /// depending on whether it is due, and returns, in order, what became of
    /// each once committed.
    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>>;

    /// Inserts a fan-out and its deliveries (`jobs`, each naming it in
    /// `follow.fan_out_id`) in one transaction: all or nothing.
    async fn create_fan_out(
        &self,
        org: OrgId,
        fan_out: NewFanOut,
        jobs: Vec<NewJob>,
    ) -> Result<FanOutCreated>;

    /// Publishes the outcomes of up to `limit` deliveries that ended
    /// (completed, failed or cancelled) with a fan-out or a callback queue
    /// and whose outcome is not yet published, each once, skipping those
    /// another process is publishing. In one transaction per pass: creates
    /// each one's callback messages ([`crate::target_group::callback`]),
    /// counts its fan-out down under the fan-out's row lock — the last
    /// delivery to end, whichever process publishes it, creates the group
    /// callback — and marks it published.
    async fn publish_outcomes(&self, limit: u32) -> Result<Published>;

    /// Writes the push dispatcher's tallies (sorted by organization and
    /// endpoint: rows are locked in that order) to their endpoints, in one
    /// transaction: each endpoint's next health is
    /// [`Health::after`](crate::endpoint::Health::after)'s, by
    /// the store's clock. An endpoint that recovers has its held
    /// deliveries released (no longer held; promotion makes them due).
    async fn record_endpoint_health(
        &self,
        tallies: Vec<((OrgId, EndpointKey), Tally)>,
        policy: HealthPolicy,
    ) -> Result<HealthRecorded>;

    /// Holds up to `limit` queued push jobs whose endpoint is disabled:
    /// [`Transition::Hold`](crate::job::state::Transition::Hold), `held_reason`
    /// [`HELD_ENDPOINT_DISABLED`](crate::endpoint::HELD_ENDPOINT_DISABLED).
    /// Returns how many.
    async fn hold_for_disabled_endpoints(&self, limit: u32) -> Result<u64>;

    /// Holds a push job leased with `token` before any request was made
    /// ([`Transition::HoldLeased`](crate::job::state::Transition::HoldLeased)):
    /// its attempt is not counted and its execution is gone. Returns its id.
    async fn hold_leased(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Uuid>>;

    /// Enables an endpoint of the organization and releases its held
    /// deliveries.
    async fn enable_endpoint(&self, org: OrgId, id: Uuid) -> Result<Enabled>;

    /// Inserts one job ([`LeaseStore::create_jobs`] with one).
    async fn create_job(&self, org: OrgId, job: NewJob) -> Result<Job> {
        match self.create_jobs(org, vec![job]).await?.pop() {
            Some(Inserted::Created(job)) => Ok(*job),
            Some(Inserted::Conflict { existing }) => {
                Err(super::StoreError::IdempotencyConflict { existing })
            }
            Some(Inserted::OverQuota(refusal)) => Err(super::StoreError::QuotaExceeded(refusal)),
            None => Err(super::StoreError::Other(
                "an insert of one job answered nothing".into(),
            )),
        }
    }

    /// Inserts one pull job that is due now and, in the same statement,
    /// leases it to `worker_id` (a poll waiting for its handler on this
    /// process): running, attempt 1, a new token and deadline, an open
    /// execution. If a job of its handler is already queued, it would jump
    /// that queue: it is then inserted `queued`, as [`LeaseStore::create_jobs`]
    /// would; and so it is for an organization on a plan other than
    /// `unlimited` (its jobs are counted).
    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff>;

    /// Moves up to a batch of `scheduled` jobs whose `run_at` has passed to
    /// `queued`.
    async fn promote_due_jobs(&self) -> Result<Promoted>;

    /// The moments queues held by a rate limit (their own or a key's) may
    /// start a job again: whose polls to wake for the windows that let a
    /// start go after `since` (the `checked_at` of the last call; `None`:
    /// the last second), and how long until the next window does.
    async fn rate_releases(&self, since: Option<Timestamp>) -> Result<RateReleases>;

    /// Leases queued pull jobs of these handlers for several takers at once
    /// (one statement), best first (priority, then run_at, then creation),
    /// dealt out as [`crate::job::slots::lease_slots`] says: each becomes
    /// `running` with a new attempt, a new token, a deadline `timeout`
    /// seconds from now, and an open execution. Returns each taker's jobs,
    /// in the takers' order. With `queues`, only jobs of those queues (a
    /// key limited to them).
    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        queues: Option<&[String]>,
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>>;

    /// Leases up to `max` jobs for one taker ([`LeaseStore::lease_batch`]).
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
            .lease_batch(org, handlers, None, &[taker])
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
    /// statement, all fails in one transaction): an ack completes the job,
    /// a fail schedules it again or fails it, as
    /// [`crate::job::state::RunningAttempt::end`] decides. Each applies only
    /// if its token is still the job's current lease and the deadline has
    /// not passed; the answers come in the order of `ends`, as if applied
    /// one after the other (the same token twice: the second finds it lost).
    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Moved>>>;

    /// Completes one attempt ([`LeaseStore::end_attempts`]).
    async fn ack_job(
        &self,
        org: OrgId,
        token: Uuid,
        result: Option<Value>,
    ) -> Result<LeaseOutcome<Moved>> {
        let ack = AttemptEnd {
            org,
            token,
            outcome: Outcome::Ack(result),
            response: None,
            whole_job: false,
        };
        Ok(self
            .end_attempts(vec![ack])
            .await?
            .pop()
            .unwrap_or(LeaseOutcome::Unknown))
    }

    /// Fails one attempt ([`LeaseStore::end_attempts`]).
    async fn fail_job(
        &self,
        org: OrgId,
        token: Uuid,
        failure: Failure,
    ) -> Result<LeaseOutcome<Moved>> {
        let fail = AttemptEnd {
            org,
            token,
            outcome: Outcome::Fail(failure),
            response: None,
            whole_job: false,
        };
        Ok(self
            .end_attempts(vec![fail])
            .await?
            .pop()
            .unwrap_or(LeaseOutcome::Unknown))
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
    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Moved>>;

    /// Ends running attempts that cannot finish: those whose deadline has
    /// passed (timed out), and those of WebSocket workers gone for longer
    /// than `worker_grace`. Each counts as a failed attempt.
    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired>;

    /// Cancels a scheduled, queued or running job (closing its open
    /// execution).
    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome>;

    /// Queues a failed or cancelled job again, with a fresh retry budget.
    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome>;

    /// One scheduler pass: takes the active schedules that are due (by the
    /// store's clock) or hold a waiting fire whose last job has ended,
    /// skipping those another process is firing; asks `plan` what each
    /// does; inserts its fires' jobs — a due time that already has its job
    /// is skipped — and moves its next run, in one transaction.
    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired>;
}
