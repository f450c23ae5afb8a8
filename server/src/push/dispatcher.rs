//! The dispatcher: push delivery's worker. It leases push jobs through the
//! lease engine, as any worker does — deadlines, retries, fencing and
//! executions are the same code — and makes each attempt with a
//! [`Deliverer`].
//!
//! It leases only what it can start at once: at most `max_in_flight` calls
//! in all, and `per_host` to any one host (`host:port`), so a job is never
//! leased and then left waiting, and a slow endpoint fills only its own
//! slots while deliveries to the others go on.

use super::delivery::Deliverer;
use super::endpoint_health::EndpointHealth;
use super::guard::TargetPolicy;
use crate::account::OrgId;
use crate::endpoint::{EndpointKey, HealthPolicy};
use crate::job::target_host;
use crate::lease::Engine;
use crate::store::{LeaseOutcome, PushSlots};
use chronos_proto::{Delivery, LeasedJob};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};
use uuid::Uuid;

/// How much push delivery one server process does at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushConfig {
    /// Calls in flight at most, over all hosts.
    pub max_in_flight: u32,
    /// Calls in flight at most to one host.
    pub per_host: u32,
    /// When an endpoint is disabled (`crate::endpoint`).
    pub endpoint_health: HealthPolicy,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            max_in_flight: 256,
            per_host: 64,
            endpoint_health: HealthPolicy::default(),
        }
    }
}

/// A lease outlives the HTTP timeout by this much, so an attempt's end is
/// recorded before its lease can expire and the next attempt start.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// A missed wake-up delays delivery by at most this.
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// After a store error, wait this long before leasing again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// How long the dispatcher waits for a batch of slots to free up before it
/// leases for fewer.
const GATHER: Duration = Duration::from_millis(2);
/// At shutdown, calls in flight get this long to finish; the rest are cut
/// off and their jobs handed back to the queue.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Delivers push jobs until the engine shuts down.
pub async fn run(engine: Arc<Engine>, config: PushConfig, policy: TargetPolicy) {
    let deliverer = match Deliverer::new(engine.store().clone(), policy) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            tracing::error!(error = %e, "push delivery could not start its HTTP client");
            return;
        }
    };
    let slots = Arc::new(Slots::default());
    let canceller = tokio::spawn(cut_off_cancelled(engine.clone(), slots.clone()));
    let health = Arc::new(EndpointHealth::default());
    let recorder = tokio::spawn(health.clone().run(engine.clone(), config.endpoint_health));
    let wake = engine.wakers().push();
    let mut shutdown = engine.shutdown();
    let mut calls = JoinSet::new();
    while !*shutdown.borrow() {
        // Listen before looking, so a job queued in between still wakes us.
        let woken = wake.notified();
        let freed = slots.freed.notified();
        tokio::pin!(woken, freed);
        woken.as_mut().enable();
        freed.as_mut().enable();

        let request = slots.request(config);
        let blocked = request.max == 0 || request.busy.iter().any(|(_, n)| *n >= config.per_host);
        let mut leased_some = false;
        if request.max > 0 && health.any_disabled() {
            health.hold(&engine).await;
        }
        if request.max > 0 {
            match engine.lease_push(&request).await {
                Ok(leased) => {
                    leased_some = !leased.is_empty();
                    let hosts: Vec<String> = leased
                        .iter()
                        .map(|(_, job)| target_host(&job.job.delivery).unwrap_or_default())
                        .collect();
                    slots.served(request.after.as_deref(), &hosts);
                    // The disabled endpoints read here may be stale (one was
                    // enabled since): read them again before handing back.
                    if leased.iter().any(|(org, job)| held(&health, *org, job)) {
                        health.refresh(&engine).await;
                    }
                    for ((org, job), host) in leased.into_iter().zip(hosts) {
                        let token = job.lease.token;
                        if held(&health, org, &job) {
                            tokio::spawn(hand_back_held(
                                engine.clone(),
                                health.clone(),
                                org,
                                token,
                            ));
                            continue;
                        }
                        let call = slots.start(org, &job, host);
                        let (engine, deliverer) = (engine.clone(), deliverer.clone());
                        let health = health.clone();
                        let task = calls.spawn(deliver(engine, deliverer, health, org, job, call));
                        slots.running(token, task);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leasing push jobs failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER_ERROR) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            }
        }
        while calls.try_join_next().is_some() {}
        // More may be queued: the lease took all it asked for, or a host
        // filled up while it was being taken. Lease again once a quarter of
        // a host's slots are free (or GATHER has passed) rather than for
        // each call that ends: one statement per batch of deliveries, not
        // per delivery. (An eighth: 0.91 of the deliveries a second to one
        // endpoint, docs/benchmarks.md.)
        if leased_some {
            let batch = u64::from((config.per_host.min(config.max_in_flight) / 4).max(1));
            slots.wait_for_ends(batch, GATHER).await;
            continue;
        }
        tokio::select! {
            _ = &mut woken => {}
            // Jobs may wait for a host's (or any) slot to free up.
            _ = &mut freed, if blocked => {}
            _ = tokio::time::sleep(IDLE_LOOK) => {}
            _ = shutdown.changed() => {}
        }
    }
    canceller.abort();
    drain(&engine, &slots, calls).await;
    // The engine has shut down and the recorder stops: what the last calls
    // reported is written here.
    let _ = recorder.await;
    health.flush(&engine, config.endpoint_health).await;
}

/// Whether `leased` goes to an endpoint this organization's deliveries to
/// are held at (it was queued before the hold reached it).
fn held(health: &EndpointHealth, org: OrgId, leased: &LeasedJob) -> bool {
    // Most of the time nothing is disabled: no URL to parse.
    if !health.any_disabled() {
        return false;
    }
    let Delivery::Push { http, .. } = &leased.job.delivery else {
        return false;
    };
    EndpointKey::of(&http.url).is_some_and(|key| health.is_disabled(org, &key))
}

/// Holds a delivery leased for a disabled endpoint, its lease undone (no
/// request was made: no attempt counts), and has the queued ones held.
async fn hand_back_held(engine: Arc<Engine>, health: Arc<EndpointHealth>, org: OrgId, token: Uuid) {
    if let Err(e) = engine.hold_leased(org, token).await {
        tracing::warn!(error = %e, "holding a leased delivery failed; its lease will expire");
    }
    health.held_one();
}

/// Cuts off the call of a job cancelled while it is in flight (through
/// this server or another): the cancellation already ended its attempt.
async fn cut_off_cancelled(engine: Arc<Engine>, slots: Arc<Slots>) {
    let mut cancelled = engine.cancellations();
    loop {
        match cancelled.recv().await {
            Ok(job_id) => slots.cancel(job_id),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// One call: make the attempt, end it through the engine, free the slot.
async fn deliver(
    engine: Arc<Engine>,
    deliverer: Arc<Deliverer>,
    health: Arc<EndpointHealth>,
    org: OrgId,
    leased: LeasedJob,
    call: Call,
) {
    let (end, report) = deliverer.deliver(org, &leased).await;
    if let Some(report) = report {
        health.report(report);
    }
    let job_id = leased.job.id;
    match engine.finish(end).await {
        Ok(LeaseOutcome::Done(job)) => {
            tracing::debug!(%job_id, status = %job.status, attempt = job.attempt, "push attempt ended");
        }
        Ok(_) => {
            tracing::info!(%job_id, "push attempt ended after its lease did (cancelled or timed out)");
        }
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "recording a push attempt failed; its lease will expire");
        }
    }
    call.ended();
}

/// Waits a little for calls in flight, then cuts the rest off and hands
/// their jobs back, so another server (or this one, restarted) takes them
/// at once instead of after their deadline.
async fn drain(engine: &Engine, slots: &Slots, mut calls: JoinSet<()>) {
    let all_done = async { while calls.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_done).await.is_ok() {
        return;
    }
    calls.abort_all();
    while calls.join_next().await.is_some() {}
    for (org, token) in slots.take_cut_off() {
        if let Err(e) = engine.release(org, token).await {
            tracing::warn!(error = %e, "handing back a push job at shutdown failed; its lease will expire");
        }
    }
}

/// The calls in flight, by host.
#[derive(Default)]
struct Slots {
    state: Mutex<SlotState>,
    /// A call ended: a slot is free.
    freed: Notify,
}

#[derive(Default)]
struct SlotState {
    by_host: HashMap<String, u32>,
    total: u32,
    /// Calls ended, ever.
    ended: u64,
    /// The last host the previous lease served: the next starts after it.
    after: Option<String>,
    /// Calls in flight by lease token: to stop one whose job is cancelled,
    /// and to hand back those cut off at shutdown.
    calls: HashMap<Uuid, InFlight>,
}

struct InFlight {
    org: OrgId,
    job_id: Uuid,
    task: Option<AbortHandle>,
}

/// A call's hold on its slot, given back when dropped (also when the call
/// is cut off).
struct Call {
    slots: Arc<Slots>,
    host: String,
    token: Uuid,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the dispatcher has room for now.
    fn request(&self, config: PushConfig) -> PushSlots {
        let state = self.lock();
        PushSlots {
            max: config.max_in_flight.saturating_sub(state.total),
            per_host: config.per_host,
            busy: state.by_host.iter().map(|(h, n)| (h.clone(), *n)).collect(),
            after: state.after.clone(),
            lease_margin: LEASE_MARGIN,
        }
    }

    /// Notes the last host a lease starting after `after` served, in the
    /// order the store walks hosts: those after `after`, then from the
    /// first up to it.
    fn served(&self, after: Option<&str>, hosts: &[String]) {
        let (wrapped, beyond): (Vec<&String>, Vec<&String>) = hosts
            .iter()
            .partition(|h| after.is_some_and(|a| h.as_str() <= a));
        if let Some(last) = wrapped.into_iter().max().or(beyond.into_iter().max()) {
            self.lock().after = Some(last.clone());
        }
    }

    /// Takes a slot of `host` for the call of `leased`.
    fn start(self: &Arc<Self>, org: OrgId, leased: &LeasedJob, host: String) -> Call {
        let token = leased.lease.token;
        let mut state = self.lock();
        *state.by_host.entry(host.clone()).or_default() += 1;
        state.total += 1;
        let call = InFlight {
            org,
            job_id: leased.job.id,
            task: None,
        };
        state.calls.insert(token, call);
        Call {
            slots: self.clone(),
            host,
            token,
        }
    }

    /// Waits until `n` more calls have ended, or `most` has passed.
    async fn wait_for_ends(&self, n: u64, most: Duration) {
        let deadline = tokio::time::Instant::now() + most;
        let start = self.lock().ended;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.lock().ended - start >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return;
            }
        }
    }

    /// Notes the task making the call of lease `token`.
    fn running(&self, token: Uuid, task: AbortHandle) {
        if let Some(call) = self.lock().calls.get_mut(&token) {
            call.task = Some(task);
        }
    }

    /// Stops the call of a cancelled job, if one is in flight.
    fn cancel(&self, job_id: Uuid) {
        let mut state = self.lock();
        let token = state
            .calls
            .iter()
            .find_map(|(token, call)| (call.job_id == job_id).then_some(*token));
        if let Some(call) = token.and_then(|t| state.calls.remove(&t))
            && let Some(task) = call.task
        {
            task.abort();
            tracing::info!(%job_id, "push call stopped: its job was cancelled");
        }
    }

    /// Leases of calls that were cut off before they ended.
    fn take_cut_off(&self) -> Vec<(OrgId, Uuid)> {
        let mut state = self.lock();
        state.calls.drain().map(|(t, c)| (c.org, t)).collect()
    }
}

impl Call {
    /// The attempt was recorded: nothing to stop or hand back.
    fn ended(self) {
        self.slots.lock().calls.remove(&self.token);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        if let Some(n) = state.by_host.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                state.by_host.remove(&self.host);
            }
        }
        state.total -= 1;
        state.ended += 1;
        drop(state);
        self.slots.freed.notify_waiters();
    }
}
