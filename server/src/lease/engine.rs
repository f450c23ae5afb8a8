//! The lease engine: every change of a job's status goes through here, so
//! that whoever should hear of it does — waiting polls when a job is queued,
//! the sweeper when one is scheduled — whichever way the change came in
//! (REST, a worker, the sweeper).

use super::state::Failure;
use super::wake::Wakers;
use crate::store::{
    CancelOutcome, Change, DynStore, LeaseOutcome, NewJob, OrgId, Result, RetryOutcome, WakeKey,
};
use chronos_proto::{Job, JobStatus, Lease, LeasedJob};
use futures_util::future::select_all;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

pub struct Engine {
    store: DynStore,
    wakers: Wakers,
    /// Tells the sweeper to re-plan its sleep: a job was scheduled, or a
    /// lease's deadline moved.
    sweeper: Notify,
    /// Becomes true at shutdown; waiting polls then answer at once.
    shutdown: watch::Receiver<bool>,
    /// Cancelled job ids, for the worker sessions that may hold them.
    cancelled: broadcast::Sender<Uuid>,
}

impl Engine {
    pub fn new(store: DynStore, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Engine {
            store,
            wakers: Wakers::default(),
            sweeper: Notify::new(),
            shutdown,
            cancelled: broadcast::channel(1024).0,
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

    pub async fn create_job(&self, org: OrgId, job: NewJob) -> Result<Job> {
        let job = self.store.create_job(org, job).await?;
        self.announce(org, &job);
        Ok(job)
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
            let leased = self.store.lease_jobs(org, handlers, max, worker_id).await?;
            if !leased.is_empty() || Instant::now() >= deadline || *shutdown.borrow() {
                return Ok(leased);
            }
            tokio::select! {
                _ = select_all(woken) => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = shutdown.changed() => return Ok(Vec::new()),
                _ = &mut stop => return Ok(Vec::new()),
            }
        }
    }

    pub async fn ack(
        &self,
        org: OrgId,
        token: Uuid,
        result: Option<Value>,
    ) -> Result<LeaseOutcome<Job>> {
        self.store.ack_job(org, token, result).await
    }

    pub async fn fail(
        &self,
        org: OrgId,
        token: Uuid,
        failure: Failure,
    ) -> Result<LeaseOutcome<Job>> {
        let outcome = self.store.fail_job(org, token, failure).await?;
        if let LeaseOutcome::Done(job) = &outcome {
            self.announce(org, job);
        }
        Ok(outcome)
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
        if let CancelOutcome::Cancelled(_) = &outcome {
            // Nobody listening is fine: no session holds it here.
            let _ = self.cancelled.send(id);
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
