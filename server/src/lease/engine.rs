//! The lease engine: every change of a job's status goes through here, so
//! that whoever should hear of it does — waiting polls when a job is queued,
//! the sweeper when one is scheduled — whichever way the change came in
//! (REST, a worker, the sweeper).

use super::batch::Batcher;
use super::handoff::{HandBack, Waiting};
use super::state::Failure;
use super::wake::Wakers;
use crate::store::{
    AttemptEnd, CancelOutcome, Change, DynStore, Fired, Handoff, Inserted, LeaseOutcome,
    MAX_LEASE_BATCH, NewJob, OrgId, Outcome, PlanFn, PushSlots, Result, RetryOutcome, RunAt,
    StoreError, Taker, WakeKey,
};
use chronos_proto::{Delivery, Job, JobStatus, Lease, LeasedJob};
use futures_util::future::{join_all, select_all};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

pub struct Engine {
    store: DynStore,
    wakers: Arc<Wakers>,
    /// Tells the sweeper to re-plan its sleep: a job was scheduled, or a
    /// lease's deadline moved.
    sweeper: Notify,
    /// Tells the scheduler to look again: a schedule changed, or a job of
    /// one ended (a fire may wait for it).
    scheduler: Notify,
    /// Becomes true at shutdown; waiting polls then answer at once.
    shutdown: watch::Receiver<bool>,
    /// Cancelled job ids, for the worker sessions that may hold them.
    cancelled: broadcast::Sender<Uuid>,
    /// Concurrent polls' leases, gathered into one statement.
    leaser: Batcher<LeaseRequest, Result<(OrgId, Vec<LeasedJob>)>>,
    /// Concurrent acks and fails, gathered into one statement per kind.
    finisher: Batcher<AttemptEnd, LeaseOutcome<Job>>,
    /// Polls waiting on this process, for jobs created here to be handed to.
    waiting: Waiting,
    /// Puts back jobs leased for a poll that went away.
    hand_back: HandBack,
}

/// One poll's share of a batched lease.
struct LeaseRequest {
    org: OrgId,
    handlers: Vec<String>,
    taker: Taker,
}

/// How many requests one batch takes at most, and how many batches may be
/// in flight at once (one committing while the next gathers).
const MAX_ENDS_BATCH: usize = 1000;
const MAX_LEASE_REQUESTS: usize = 256;
const BATCHES_IN_FLIGHT: usize = 2;

impl Engine {
    /// Starts the engine's batchers; call within a tokio runtime.
    pub fn new(store: DynStore, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let wakers = Arc::new(Wakers::default());
        let hand_back = hand_back(store.clone(), wakers.clone());
        let leaser = {
            let hand_back = hand_back.clone();
            let store = store.clone();
            Batcher::start(
                MAX_LEASE_REQUESTS,
                BATCHES_IN_FLIGHT,
                move |requests| lease_together(store.clone(), requests),
                // Leased for a poll that has gone (its client hung up).
                move |leased: Result<(OrgId, Vec<LeasedJob>)>| {
                    if let Ok((org, jobs)) = leased {
                        hand_back(org, jobs);
                    }
                },
            )
        };
        let finisher = {
            let store = store.clone();
            Batcher::start(
                MAX_ENDS_BATCH,
                BATCHES_IN_FLIGHT,
                move |ends| {
                    let store = store.clone();
                    async move { store.end_attempts(ends).await }
                },
                // An ack whose sender has gone is done all the same.
                |_| {},
            )
        };
        Arc::new(Engine {
            store,
            wakers,
            sweeper: Notify::new(),
            scheduler: Notify::new(),
            shutdown,
            cancelled: broadcast::channel(1024).0,
            leaser,
            finisher,
            waiting: Waiting::default(),
            hand_back,
        })
    }

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

    /// A schedule was created or changed: the scheduler re-plans its sleep.
    pub fn schedule_changed(&self) {
        self.scheduler.notify_one();
    }

    /// One scheduler pass ([`Store::fire_schedules`]); the jobs it creates
    /// are announced like any other.
    pub async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        let fired = self.store.fire_schedules(plan).await?;
        self.announce_all(fired.jobs.iter().map(|(org, job)| (*org, job)));
        Ok(fired)
    }

    /// Becomes true when the server shuts down.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Tells whoever waits for `job` that it changed: polls if it is queued,
    /// the sweeper if it waits for its time.
    fn announce(&self, org: OrgId, job: &Job) {
        match job.status {
            JobStatus::Queued => self.wakers.wake(&WakeKey::for_job(org, job)),
            JobStatus::Scheduled => self.sweeper.notify_one(),
            _ => {}
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
            (Delivery::Pull, Some(handler), RunAt::Now) => self.waiting.claim(org, handler),
            _ => None,
        };
        let Some(claim) = claim else {
            let job = self.store.create_job(org, job).await?;
            self.announce(org, &job);
            return Ok(job);
        };
        let handoff = self
            .store
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
            Err(e) => {
                self.waiting.unclaim(claim);
                Err(e)
            }
        }
    }

    /// Creates jobs in one transaction (`POST /v1/jobs/batch`).
    pub async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        let inserted = self.store.create_jobs(org, jobs).await?;
        self.announce_all(inserted.iter().filter_map(|item| match item {
            Inserted::Created(job) => Some((org, &**job)),
            Inserted::Conflict { .. } => None,
        }));
        Ok(inserted)
    }

    /// Leases up to `max` jobs of `handlers`, waiting up to `wait` for one to
    /// be queued if none is. Returns as soon as a job is leased, within
    /// moments of it becoming due; empty when the wait ends, `stop`
    /// completes, or the server shuts down. `stop` only cuts the waiting: a
    /// lease already taken is always returned.
    pub async fn poll(
        &self,
        org: OrgId,
        handlers: &[String],
        max: u32,
        wait: Duration,
        worker_id: Option<&str>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Vec<LeasedJob>> {
        tokio::pin!(stop);
        let deadline = Instant::now() + wait;
        let notifiers: Vec<Arc<Notify>> =
            handlers.iter().map(|h| self.wakers.pull(org, h)).collect();
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
                    handlers: handlers.to_vec(),
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
            let mut waiting =
                self.waiting
                    .register(org, handlers, worker_id, self.hand_back.clone());
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

    pub async fn ack(
        &self,
        org: OrgId,
        token: Uuid,
        result: Option<Value>,
    ) -> Result<LeaseOutcome<Job>> {
        self.finish(AttemptEnd {
            org,
            token,
            outcome: Outcome::Ack(result),
            response: None,
        })
        .await
    }

    pub async fn fail(
        &self,
        org: OrgId,
        token: Uuid,
        failure: Failure,
    ) -> Result<LeaseOutcome<Job>> {
        self.finish(AttemptEnd {
            org,
            token,
            outcome: Outcome::Fail(failure),
            response: None,
        })
        .await
    }

    /// Ends an attempt (an ack or a fail, with what a push target answered).
    pub async fn finish(&self, end: AttemptEnd) -> Result<LeaseOutcome<Job>> {
        let org = end.org;
        let outcome = self.finisher.call(end).await?;
        if let LeaseOutcome::Done(job) = &outcome {
            self.announce(org, job);
            if job.schedule_id.is_some() && job.status.is_finished() {
                self.scheduler.notify_one();
            }
        }
        Ok(outcome)
    }

    /// Leases push jobs for the dispatcher, within its free slots.
    pub async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        self.store.lease_push(slots).await
    }

    pub async fn extend(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>> {
        let outcome = self.store.extend_lease(org, token, by).await?;
        self.sweeper.notify_one();
        Ok(outcome)
    }

    pub async fn release(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Job>> {
        let outcome = self.store.release_lease(org, token).await?;
        if let LeaseOutcome::Done(job) = &outcome {
            self.announce(org, job);
        }
        Ok(outcome)
    }

    /// Cancels a job; if it was running, its worker's session is told.
    pub async fn cancel(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        let outcome = self.store.cancel_job(org, id).await?;
        if let CancelOutcome::Cancelled(job) = &outcome {
            // Nobody listening is fine: no session holds it here.
            let _ = self.cancelled.send(id);
            if job.schedule_id.is_some() {
                self.scheduler.notify_one();
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
        }
    }

    /// Ids of cancelled jobs (through this process, or heard from others),
    /// for worker sessions to tell their handlers. An id may come twice.
    pub fn cancellations(&self) -> broadcast::Receiver<Uuid> {
        self.cancelled.subscribe()
    }

    pub async fn retry(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        let outcome = self.store.retry_job(org, id).await?;
        if let RetryOutcome::Retried(job) = &outcome {
            self.announce(org, job);
        }
        Ok(outcome)
    }
}

/// Leases for a batch of polls: one statement per organization and set of
/// handlers (those run side by side), the jobs dealt out over the polls'
/// free slots by the store. A statement that fails fails only its own
/// requests: the others' leases are taken and must reach them.
async fn lease_together(
    store: DynStore,
    requests: Vec<LeaseRequest>,
) -> Result<Vec<Result<(OrgId, Vec<LeasedJob>)>>> {
    // Groups of request indexes that one statement can serve.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let fits = groups.iter_mut().find(|g| {
            let first = &requests[g[0]];
            let room: u32 = g.iter().map(|&j| requests[j].taker.max).sum();
            first.org == r.org
                && first.handlers == r.handlers
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
        let store = store.clone();
        async move { store.lease_batch(first.org, &first.handlers, &takers).await }
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
fn hand_back(store: DynStore, wakers: Arc<Wakers>) -> HandBack {
    Arc::new(move |org, jobs: Vec<LeasedJob>| {
        if jobs.is_empty() {
            return;
        }
        let (store, wakers) = (store.clone(), wakers.clone());
        tokio::spawn(async move {
            for job in jobs {
                match store.release_lease(org, job.lease.token).await {
                    Ok(LeaseOutcome::Done(job)) => wakers.wake(&WakeKey::for_job(org, &job)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "handing back an unclaimed lease failed"),
                }
            }
        });
    })
}
