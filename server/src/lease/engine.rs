//! The lease engine: every change of a job's status goes through here, so
//! that whoever should hear of it does — waiting polls when a job is queued,
//! the sweeper when one is scheduled, the scheduler when a schedule's job
//! ends — whichever way the change came in (REST, a worker, push delivery,
//! the sweeper, the scheduler).
//!
//! The engine is the only holder of the store's [`LeaseStore`](crate::store::LeaseStore): it takes it
//! in [`Engine::new`] and never hands it out.

use super::Wanted;
use super::batch::Batcher;
use super::handoff::{HandBack, Waiting};
use super::wake::Wakers;
use crate::account::OrgId;
use crate::endpoint::{Enabled, EndpointKey, HealthPolicy, Tally};
use crate::job::slots::{MAX_LEASE_BATCH, Taker};
use crate::job::state::Failure;
use crate::job::{NewJob, RunAt};
use crate::schedule::PlanFn;
use crate::store::{
    AttemptEnd, CancelOutcome, Change, DynLeases, DynStore, Expired, FanOutCreated, Fired, Handoff,
    HealthRecorded, Inserted, LeaseOutcome, Moved, Opened, Outcome, Promoted, Published, PushSlots,
    Result, RetryOutcome, StoreError, WakeKey,
};
use crate::target_group::NewFanOut;
use chronos_proto::{Delivery, Job, JobStatus, Lease, LeasedJob, Timestamp};
use futures_util::future::{join_all, select_all};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

pub struct Engine {
    store: DynStore,
    /// The statements that create jobs and change their status; private.
    leases: DynLeases,
    wakers: Arc<Wakers>,
    /// Tells the sweeper to re-plan its sleep: a job was scheduled, or a
    /// lease's deadline moved.
    sweeper: Notify,
    /// Tells the scheduler to look again: a schedule changed, or a job of
    /// one ended (a fire may wait for it).
    scheduler: Notify,
    /// Tells the outcome publisher to look: a push delivery ended here.
    publisher: Notify,
    /// Becomes true at shutdown; waiting polls then answer at once.
    shutdown: watch::Receiver<bool>,
    /// Cancelled job ids, for the worker sessions that may hold them.
    cancelled: broadcast::Sender<Uuid>,
    /// Concurrent polls' leases, gathered into one statement.
    leaser: Batcher<LeaseRequest, Result<(OrgId, Vec<LeasedJob>)>>,
    /// Concurrent acks and fails, gathered into one statement per kind.
    finisher: Batcher<AttemptEnd, LeaseOutcome<Moved>>,
    /// Polls waiting on this process, for jobs created here to be handed to.
    waiting: Waiting,
    /// Puts back jobs leased for a poll that went away.
    hand_back: HandBack,
    /// Scheduler and sweeper passes done, for tests to wait on.
    passes: Passes,
    /// When the sweeper last looked for rate windows that let a start go
    /// (the store's time), so that each is woken for once.
    rates_checked: std::sync::Mutex<Option<Timestamp>>,
}

/// How many passes the engine's services have finished.
#[derive(Default)]
struct Passes {
    scheduler: AtomicU64,
    sweeper: AtomicU64,
}

/// One poll's share of a batched lease.
struct LeaseRequest {
    org: OrgId,
    wants: Wanted,
    taker: Taker,
}

/// How many requests one batch takes at most, and how many batches may be
/// in flight at once (one committing while the next gathers).
const MAX_ENDS_BATCH: usize = 1000;
const MAX_LEASE_REQUESTS: usize = 256;
const BATCHES_IN_FLIGHT: usize = 2;

impl Engine {
    /// Starts the engine's batchers; call within a tokio runtime. The
    /// engine keeps the store's lease statements to itself.
    pub fn new(opened: Opened, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let Opened { store, leases } = opened;
        let wakers = Arc::new(Wakers::default());
        let hand_back = hand_back(leases.clone(), wakers.clone());
        let leaser = {
            let hand_back = hand_back.clone();
            let leases = leases.clone();
            Batcher::start(
                MAX_LEASE_REQUESTS,
                BATCHES_IN_FLIGHT,
                move |requests| lease_together(leases.clone(), requests),
                // Leased for a poll that has gone (its client hung up).
                move |leased: Result<(OrgId, Vec<LeasedJob>)>| {
                    if let Ok((org, jobs)) = leased {
                        hand_back(org, jobs);
                    }
                },
            )
        };
        let finisher = {
            let leases = leases.clone();
            Batcher::start(
                MAX_ENDS_BATCH,
                BATCHES_IN_FLIGHT,
                move |ends| {
                    let leases = leases.clone();
                    async move { leases.end_attempts(ends).await }
                },
                // An ack whose sender has gone is done all the same.
                |_| {},
            )
        };
        Arc::new(Engine {
            store,
            leases,
            wakers,
            sweeper: Notify::new(),
            scheduler: Notify::new(),
            publisher: Notify::new(),
            shutdown,
            cancelled: broadcast::channel(1024).0,
            leaser,
            finisher,
            waiting: Waiting::default(),
            hand_back,
            passes: Passes::default(),
            rates_checked: std::sync::Mutex::new(None),
        })
    }

    /// The store, for what is not a job's status (the engine keeps that).
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn wakers(&self) -> &Wakers {
        &self.wakers
    }

    pub(super) fn sweeper_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.sweeper.notified()
    }

    pub(crate) fn scheduler_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.scheduler.notified()
    }

    pub(super) fn publisher_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.publisher.notified()
    }

    /// One pass of the outcome publisher
    /// ([`LeaseStore::publish_outcomes`](crate::store::LeaseStore::publish_outcomes)):
    /// the callback messages it creates are announced like any other job.
    pub async fn publish_outcomes(&self, limit: u32) -> Result<Published> {
        let published = self.leases.publish_outcomes(limit).await?;
        self.announce_all(published.created.iter().map(|(org, job)| (*org, job)));
        Ok(published)
    }

    /// Writes push delivery's endpoint tallies. An endpoint that recovered
    /// has its held deliveries released: the sweeper promotes them now.
    pub async fn record_endpoint_health(
        &self,
        tallies: Vec<((OrgId, EndpointKey), Tally)>,
        policy: HealthPolicy,
    ) -> Result<HealthRecorded> {
        let recorded = self.leases.record_endpoint_health(tallies, policy).await?;
        if recorded.released > 0 {
            self.sweeper.notify_one();
        }
        Ok(recorded)
    }

    /// Holds queued deliveries to disabled endpoints, up to `limit`.
    pub async fn hold_for_disabled_endpoints(&self, limit: u32) -> Result<u64> {
        self.leases.hold_for_disabled_endpoints(limit).await
    }

    /// Holds a push job leased for a disabled endpoint, its lease undone.
    pub async fn hold_leased(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Uuid>> {
        self.leases.hold_leased(org, token).await
    }

    /// Enables an endpoint; its held deliveries are promoted now.
    pub async fn enable_endpoint(&self, org: OrgId, id: Uuid) -> Result<Enabled> {
        let enabled = self.leases.enable_endpoint(org, id).await?;
        if matches!(enabled, Enabled::Done(_, n) if n > 0) {
            self.sweeper.notify_one();
        }
        Ok(enabled)
    }

    /// Creates a fan-out and its deliveries, all or nothing.
    pub async fn create_fan_out(
        &self,
        org: OrgId,
        fan_out: NewFanOut,
        jobs: Vec<NewJob>,
    ) -> Result<FanOutCreated> {
        let created = self.leases.create_fan_out(org, fan_out, jobs).await?;
        if let FanOutCreated::Created(jobs) = &created {
            self.announce_all(jobs.iter().map(|job| (org, job)));
        }
        Ok(created)
    }

    /// A queue may start jobs it held (resumed, unblocked, a limit raised
    /// or removed): this server's polls look again at once. Other servers
    /// hear of it from the store (PostgreSQL's `NOTIFY`), which on the
    /// embedded store is this server alone.
    pub fn queue_opened(&self) {
        self.wakers.wake_all();
    }

    /// A schedule was created or changed: the scheduler re-plans its sleep.
    pub fn schedule_changed(&self) {
        self.scheduler.notify_one();
    }

    /// One scheduler pass ([`LeaseStore::fire_schedules`](crate::store::LeaseStore::fire_schedules)); the jobs it
    /// creates are announced like any other.
    pub async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        let fired = self.leases.fire_schedules(plan).await?;
        if fired.skipped > 0 {
            tracing::info!(
                skipped = fired.skipped,
                "schedule fires skipped: their organizations' quotas are spent"
            );
        }
        self.announce_all(fired.jobs.iter().map(|(org, job)| (*org, job)));
        self.passes.scheduler.fetch_add(1, Ordering::SeqCst);
        Ok(fired)
    }

    /// One sweeper pass over expired leases ([`LeaseStore::expire_leases`](crate::store::LeaseStore::expire_leases));
    /// jobs due again at once wake their polls.
    pub async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired> {
        let expired = self.leases.expire_leases(worker_grace).await?;
        for moved in &expired.ended {
            self.announce_moved(moved);
        }
        Ok(expired)
    }

    /// Wakes the polls of queues a rate window let a start go since the
    /// last look ([`LeaseStore::rate_releases`](crate::store::LeaseStore::rate_releases)):
    /// a job held by a rate limit is leased the moment it may start. Returns
    /// how long until the next window does. Each process looks for itself
    /// and wakes its own polls.
    pub async fn release_rate_held(&self) -> Result<Option<Duration>> {
        let since = *self.rates_checked.lock().unwrap_or_else(|p| p.into_inner());
        let released = self.leases.rate_releases(since).await?;
        for key in &released.woken {
            self.wakers.wake(key);
        }
        *self.rates_checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(released.checked_at);
        Ok(released.next_in)
    }

    /// One promotion pass ([`LeaseStore::promote_due_jobs`](crate::store::LeaseStore::promote_due_jobs)), waking the
    /// polls of the jobs it queued.
    pub async fn promote_due_jobs(&self) -> Result<Promoted> {
        let promoted = self.leases.promote_due_jobs().await?;
        for key in &promoted.woken {
            self.wakers.wake(key);
        }
        // The last step of a sweep: expired leases are ended just before.
        self.passes.sweeper.fetch_add(1, Ordering::SeqCst);
        Ok(promoted)
    }

    /// Scheduler passes finished so far. A test that moved the clock waits
    /// for two more: the second began after the move.
    pub fn scheduler_passes(&self) -> u64 {
        self.passes.scheduler.load(Ordering::SeqCst)
    }

    /// Sweeper passes (leases expired, due jobs promoted) finished so far.
    pub fn sweeper_passes(&self) -> u64 {
        self.passes.sweeper.load(Ordering::SeqCst)
    }

    /// The store's clock moved (tests): due times and deadlines may have
    /// come, so the timers look again.
    pub fn clock_moved(&self) {
        self.sweeper.notify_one();
        self.scheduler.notify_one();
    }

    /// How many polls (HTTP long-polls and worker sessions' dispatchers)
    /// wait for jobs on this process now.
    pub fn waiting_polls(&self) -> usize {
        self.waiting.count()
    }

    /// Becomes true when the server shuts down.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Tells whoever waits for `job` that it changed ([`Engine::tell`]).
    fn announce(&self, org: OrgId, job: &Job) {
        // A job read whole doesn't say whether its outcome is followed: any
        // push delivery may be.
        let push = matches!(job.delivery, Delivery::Push { .. });
        self.tell(job.status, job.schedule_id, push, || {
            WakeKey::for_job(org, job)
        });
    }

    /// [`Engine::announce`] for a job a lease statement moved.
    fn announce_moved(&self, moved: &Moved) {
        self.tell(moved.status, moved.schedule_id, moved.followed, || {
            moved.wake.clone()
        });
        // A followed delivery's failed attempt may have a callback to
        // publish (`callback_on: "every_attempt"`).
        if moved.followed && matches!(moved.status, JobStatus::Scheduled | JobStatus::Queued) {
            self.publisher.notify_one();
        }
        moved.freed.iter().for_each(|k| self.wakers.wake(k));
    }

    /// Whoever waits for a job now in `status`: its polls if it is queued,
    /// the sweeper if it waits for its time, the outcome publisher if it is
    /// a push delivery with a fan-out or callback that has ended (`followed`),
    /// the scheduler if it is a schedule's
    /// job that has ended (a fire may wait for it).
    fn tell(
        &self,
        status: JobStatus,
        schedule_id: Option<Uuid>,
        followed: bool,
        wake: impl FnOnce() -> WakeKey,
    ) {
        match status {
            JobStatus::Queued => self.wakers.wake(&wake()),
            JobStatus::Scheduled => self.sweeper.notify_one(),
            // A callback or a fan-out's count to publish.
            _ if status.is_finished() && followed => self.publisher.notify_one(),
            _ => {}
        }
        if schedule_id.is_some() && status.is_finished() {
            self.scheduler.notify_one();
        }
    }

    /// [`Engine::announce`] for many jobs: each handler's polls are woken
    /// once, however many of its jobs came.
    fn announce_all<'a>(&self, jobs: impl Iterator<Item = (OrgId, &'a Job)>) {
        let mut woken = HashSet::new();
        for (org, job) in jobs {
            if job.status != JobStatus::Queued || woken.insert(WakeKey::for_job(org, job)) {
                self.announce(org, job);
            }
        }
    }

    pub async fn create_job(&self, org: OrgId, job: NewJob) -> Result<Job> {
        // Due now, and a poll here waits for its handler: lease it to that
        // poll as it is inserted.
        let claim = match (&job.delivery, &job.handler, job.run_at) {
            (Delivery::Pull, Some(handler), RunAt::Now) => {
                self.waiting.claim(org, handler, &job.queue)
            }
            _ => None,
        };
        let Some(claim) = claim else {
            let job = self.leases.create_job(org, job).await?;
            self.announce(org, &job);
            return Ok(job);
        };
        let handoff = self
            .leases
            .create_leased_job(org, job, claim.worker_id())
            .await;
        match handoff {
            Ok(Handoff::Leased(leased)) => {
                let job = leased.job.clone();
                if let Err(leased) = claim.hand(*leased) {
                    (self.hand_back)(org, vec![*leased]);
                }
                Ok(job)
            }
            Ok(Handoff::Queued(job)) => {
                self.waiting.unclaim(claim);
                self.announce(org, &job);
                Ok(*job)
            }
            Ok(Handoff::Conflict { existing }) => {
                self.waiting.unclaim(claim);
                Err(StoreError::IdempotencyConflict { existing })
            }
            Ok(Handoff::OverQuota(refusal)) => {
                self.waiting.unclaim(claim);
                Err(StoreError::QuotaExceeded(refusal))
            }
            Err(e) => {
                self.waiting.unclaim(claim);
                Err(e)
            }
        }
    }

    /// Creates jobs in one transaction (`POST /v1/jobs/batch`).
    pub async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        let inserted = self.leases.create_jobs(org, jobs).await?;
        self.announce_all(inserted.iter().filter_map(|item| match item {
            Inserted::Created(job) => Some((org, &**job)),
            Inserted::Conflict { .. } | Inserted::OverQuota(_) => None,
        }));
        Ok(inserted)
    }

    /// Leases up to `max` jobs it `wants`, waiting up to `wait` for one to
    /// be queued if none is. Returns as soon as a job is leased, within
    /// moments of it becoming due; empty when the wait ends, `stop`
    /// completes, or the server shuts down. `stop` only cuts the waiting: a
    /// lease already taken is always returned.
    pub async fn poll(
        &self,
        org: OrgId,
        wants: &Wanted,
        max: u32,
        wait: Duration,
        worker_id: Option<&str>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Vec<LeasedJob>> {
        tokio::pin!(stop);
        let deadline = Instant::now() + wait;
        let notifiers: Vec<Arc<Notify>> = (wants.handlers.iter())
            .map(|h| self.wakers.pull(org, h))
            .collect();
        let mut shutdown = self.shutdown.clone();
        loop {
            // Listen before looking, so a job queued in between still wakes us.
            let mut woken: Vec<_> = notifiers.iter().map(|n| Box::pin(n.notified())).collect();
            for w in &mut woken {
                w.as_mut().enable();
            }
            let leased = self
                .leaser
                .call(LeaseRequest {
                    org,
                    wants: wants.clone(),
                    taker: Taker {
                        worker_id: worker_id.map(str::to_string),
                        max,
                    },
                })
                .await??
                .1;
            if !leased.is_empty() || Instant::now() >= deadline || *shutdown.borrow() {
                return Ok(leased);
            }
            // While it waits, a job created here may be handed to it directly.
            let mut waiting = self
                .waiting
                .register(org, wants, worker_id, self.hand_back.clone());
            let (handed, ended) = tokio::select! {
                handed = waiting.handed() => (handed, false),
                _ = select_all(woken) => (None, false),
                _ = tokio::time::sleep_until(deadline) => (None, true),
                _ = shutdown.changed() => (None, true),
                _ = &mut stop => (None, true),
            };
            // Stop taking hand-offs; one being inserted right now is waited for.
            if let Some(job) = handed.or(waiting.finish().await) {
                return Ok(vec![job]);
            }
            if ended {
                return Ok(Vec::new());
            }
        }
    }

    /// Completes the attempt `token` holds; with `whole_job`, the answer
    /// carries the job ([`AttemptEnd::whole_job`]).
    pub async fn ack(
        &self,
        org: OrgId,
        token: Uuid,
        result: Option<Value>,
        whole_job: bool,
    ) -> Result<LeaseOutcome<Moved>> {
        self.finish(AttemptEnd {
            org,
            token,
            outcome: Outcome::Ack(result),
            response: None,
            whole_job,
        })
        .await
    }

    /// Fails the attempt `token` holds; `whole_job` as for [`Engine::ack`].
    pub async fn fail(
        &self,
        org: OrgId,
        token: Uuid,
        failure: Failure,
        whole_job: bool,
    ) -> Result<LeaseOutcome<Moved>> {
        self.finish(AttemptEnd {
            org,
            token,
            outcome: Outcome::Fail(failure),
            response: None,
            whole_job,
        })
        .await
    }

    /// Ends an attempt (an ack or a fail, with what a push target answered).
    pub async fn finish(&self, end: AttemptEnd) -> Result<LeaseOutcome<Moved>> {
        let outcome = self.finisher.call(end).await?;
        if let LeaseOutcome::Done(moved) = &outcome {
            self.announce_moved(moved);
        }
        Ok(outcome)
    }

    /// Leases push jobs for the dispatcher, within its free slots.
    pub async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        self.leases.lease_push(slots).await
    }

    pub async fn extend(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>> {
        let outcome = self.leases.extend_lease(org, token, by).await?;
        self.sweeper.notify_one();
        Ok(outcome)
    }

    pub async fn release(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Moved>> {
        let outcome = self.leases.release_lease(org, token).await?;
        if let LeaseOutcome::Done(moved) = &outcome {
            self.announce_moved(moved);
        }
        Ok(outcome)
    }

    /// Cancels a job; if it was running, its worker's session is told.
    pub async fn cancel(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        let outcome = self.leases.cancel_job(org, id).await?;
        if let CancelOutcome::Cancelled(job, freed) = &outcome {
            // Nobody listening is fine: no session holds it here.
            let _ = self.cancelled.send(id);
            self.announce(org, job);
            // A running job held a slot of its queue.
            for key in freed {
                self.wakers.wake(key);
            }
        }
        Ok(outcome)
    }

    /// Acts on what another server process did (PostgreSQL's notifications).
    pub fn heard(&self, change: Change) {
        match change {
            Change::Queued(Some(keys)) => keys.iter().for_each(|k| self.wakers.wake(k)),
            Change::Queued(None) => self.wakers.wake_all(),
            Change::Cancelled(id) => {
                let _ = self.cancelled.send(id);
            }
            Change::ClockMoved => self.clock_moved(),
        }
    }

    /// Ids of cancelled jobs (through this process, or heard from others),
    /// for worker sessions to tell their handlers. An id may come twice.
    pub fn cancellations(&self) -> broadcast::Receiver<Uuid> {
        self.cancelled.subscribe()
    }

    pub async fn retry(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        let outcome = self.leases.retry_job(org, id).await?;
        if let RetryOutcome::Retried(job) = &outcome {
            self.announce(org, job);
        }
        Ok(outcome)
    }
}

/// Leases for a batch of polls: one statement per organization and what
/// the polls want (those run side by side), the jobs dealt out over the polls'
/// free slots by the store. A statement that fails fails only its own
/// requests: the others' leases are taken and must reach them.
async fn lease_together(
    leases: DynLeases,
    requests: Vec<LeaseRequest>,
) -> Result<Vec<Result<(OrgId, Vec<LeasedJob>)>>> {
    // Groups of request indexes that one statement can serve.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let fits = groups.iter_mut().find(|g| {
            let first = &requests[g[0]];
            let room: u32 = g.iter().map(|&j| requests[j].taker.max).sum();
            first.org == r.org
                && first.wants == r.wants
                && (room + r.taker.max) as usize <= MAX_LEASE_BATCH
        });
        match fits {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let statements = groups.iter().map(|g| {
        let first = &requests[g[0]];
        let takers: Vec<Taker> = g.iter().map(|&i| requests[i].taker.clone()).collect();
        let leases = leases.clone();
        async move {
            leases
                .lease_batch(
                    first.org,
                    &first.wants.handlers,
                    first.wants.queues.as_deref(),
                    &takers,
                )
                .await
        }
    });
    let mut leased: Vec<Result<(OrgId, Vec<LeasedJob>)>> =
        requests.iter().map(|r| Ok((r.org, Vec::new()))).collect();
    for (group, outcome) in groups.iter().zip(join_all(statements).await) {
        match outcome {
            Ok(jobs) => {
                for (&i, jobs) in group.iter().zip(jobs) {
                    leased[i] = Ok((requests[i].org, jobs));
                }
            }
            Err(e) => {
                let e = std::sync::Arc::new(e);
                for &i in group {
                    leased[i] = Err(StoreError::Shared(e.clone()));
                }
            }
        }
    }
    Ok(leased)
}

/// Puts jobs leased for a poll that went away back in the queue at once
/// (not after their timeout), waking the polls that can take them.
fn hand_back(leases: DynLeases, wakers: Arc<Wakers>) -> HandBack {
    Arc::new(move |org, jobs: Vec<LeasedJob>| {
        if jobs.is_empty() {
            return;
        }
        let (leases, wakers) = (leases.clone(), wakers.clone());
        tokio::spawn(async move {
            for job in jobs {
                match leases.release_lease(org, job.lease.token).await {
                    Ok(LeaseOutcome::Done(moved)) => {
                        wakers.wake(&moved.wake);
                        moved.freed.iter().for_each(|k| wakers.wake(k));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "handing back an unclaimed lease failed"),
                }
            }
        });
    })
}
