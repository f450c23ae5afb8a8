//! Direct hand-off. A job created on this process while a poll here waits
//! for its handler is inserted already leased to that poll and handed to
//! it: one statement and one commit instead of an insert, a wake-up and a
//! lease. This is what makes pickup on an idle server fast.
//!
//! A waiting poll registers a one-shot slot for each of its handlers; a
//! create claims the longest-waiting slot, and gives it back if the job
//! could not be leased at once (a job of the handler was already queued
//! ahead of it, or the insert failed); a poll whose key is limited to
//! other queues is passed over. A poll registers only while it
//! waits with nothing in hand, so a handed job never exceeds what it asked
//! for; when it stops waiting it waits for a create that claimed it. A job
//! handed to a poll that was cancelled goes back to the queue, never lost.

use super::Wanted;
use crate::account::OrgId;
use crate::account::keys::may_use_queue;
use chronos_proto::LeasedJob;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Key = (OrgId, String);

/// What to do with a job leased to a poll that went away: put it back.
pub type HandBack = Arc<dyn Fn(OrgId, Vec<LeasedJob>) + Send + Sync>;

#[derive(Default)]
pub struct Waiting {
    polls: Mutex<HashMap<Key, VecDeque<Arc<Waiter>>>>,
    /// Polls registered now, for tests to wait on rather than sleep.
    count: AtomicUsize,
}

struct Waiter {
    worker_id: Option<String>,
    /// The queues its key is limited to; `None`: every queue.
    queues: Option<Vec<String>>,
    slot: Mutex<Slot>,
}

struct Slot {
    /// Taken while a create holds it.
    sender: Option<oneshot::Sender<LeasedJob>>,
    /// The poll stopped waiting: a create holding the sender hands its job
    /// over or drops the sender, never puts it back.
    closing: bool,
}

/// A waiting poll's registration; it deregisters when dropped.
pub struct Registration<'a> {
    waiting: &'a Waiting,
    org: OrgId,
    handlers: Vec<String>,
    waiter: Arc<Waiter>,
    handed: oneshot::Receiver<LeasedJob>,
    /// `handed` has completed (a oneshot may be awaited only once).
    received: bool,
    /// Deregistered already.
    stopped: bool,
    hand_back: HandBack,
}

/// A poll claimed by a create, reserved for one job.
pub struct Claim {
    key: Key,
    waiter: Arc<Waiter>,
    sender: oneshot::Sender<LeasedJob>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Waiting {
    /// Registers a poll waiting for any job it `wants`.
    pub fn register<'a>(
        &'a self,
        org: OrgId,
        wants: &Wanted,
        worker_id: Option<&str>,
        hand_back: HandBack,
    ) -> Registration<'a> {
        let (sender, handed) = oneshot::channel();
        let waiter = Arc::new(Waiter {
            worker_id: worker_id.map(str::to_string),
            queues: wants.queues.clone(),
            slot: Mutex::new(Slot {
                sender: Some(sender),
                closing: false,
            }),
        });
        let mut polls = lock(&self.polls);
        for h in &wants.handlers {
            polls
                .entry((org, h.clone()))
                .or_default()
                .push_back(waiter.clone());
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        Registration {
            waiting: self,
            org,
            handlers: wants.handlers.clone(),
            waiter,
            handed,
            received: false,
            stopped: false,
            hand_back,
        }
    }

    /// How many polls are waiting on this process now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The longest-waiting poll for `handler` that may take a job of
    /// `queue`, if any, reserved.
    pub fn claim(&self, org: OrgId, handler: &str, queue: &str) -> Option<Claim> {
        let key = (org, handler.to_string());
        let mut polls = lock(&self.polls);
        let line = polls.get_mut(&key)?;
        let mut claimed = None;
        // Polls that have stopped are dropped on the way; one limited to
        // other queues keeps its place.
        line.retain(|waiter| {
            if claimed.is_some() {
                return true;
            }
            let allowed = may_use_queue(waiter.queues.as_deref(), queue);
            let mut slot = lock(&waiter.slot);
            if slot.closing || slot.sender.as_ref().is_none_or(|s| s.is_closed()) {
                return false;
            }
            if !allowed {
                return true;
            }
            claimed = slot.sender.take().map(|sender| (waiter.clone(), sender));
            false
        });
        if line.is_empty() {
            polls.remove(&key);
        }
        let (waiter, sender) = claimed?;
        Some(Claim {
            key,
            waiter,
            sender,
        })
    }

    /// Gives a claim back unused: the poll waits on, first in line.
    pub fn unclaim(&self, claim: Claim) {
        {
            let mut slot = lock(&claim.waiter.slot);
            if slot.closing || claim.sender.is_closed() {
                // Dropping the sender tells the poll no job is coming.
                return;
            }
            slot.sender = Some(claim.sender);
        }
        lock(&self.polls)
            .entry(claim.key)
            .or_default()
            .push_front(claim.waiter);
    }
}

impl Claim {
    /// Who the job will be leased to.
    pub fn worker_id(&self) -> Option<&str> {
        self.waiter.worker_id.as_deref()
    }

    /// Hands the leased job over; gives it back if the poll has gone.
    pub fn hand(self, job: LeasedJob) -> Result<(), Box<LeasedJob>> {
        self.sender.send(job).map_err(Box::new)
    }
}

impl Registration<'_> {
    /// Completes with a job handed to this poll.
    pub async fn handed(&mut self) -> Option<LeasedJob> {
        if self.received {
            return std::future::pending().await;
        }
        let handed = (&mut self.handed).await.ok();
        self.received = true;
        handed
    }

    /// Stops taking jobs. A create that claimed this poll and is still
    /// inserting is waited for, so its job is returned here rather than
    /// handed back.
    pub async fn finish(mut self) -> Option<LeasedJob> {
        let in_flight = self.stop();
        if self.received {
            return None;
        }
        if in_flight {
            // Bounded: the claimer hands the job over or drops the sender
            // once its one statement is done.
            let waited = tokio::time::timeout(FINISH_WAIT, &mut self.handed).await;
            if let Ok(handed) = waited {
                self.received = true;
                return handed.ok();
            }
        }
        self.handed.close();
        self.received = true;
        self.handed.try_recv().ok()
    }

    /// Deregisters; says whether a create holds the sender right now.
    fn stop(&mut self) -> bool {
        if !std::mem::replace(&mut self.stopped, true) {
            self.waiting.count.fetch_sub(1, Ordering::SeqCst);
        }
        let in_flight = {
            let mut slot = lock(&self.waiter.slot);
            slot.closing = true;
            slot.sender.take().is_none()
        };
        let mut polls = lock(&self.waiting.polls);
        for h in &self.handlers {
            let key = (self.org, h.clone());
            if let Some(queue) = polls.get_mut(&key) {
                queue.retain(|w| !Arc::ptr_eq(w, &self.waiter));
                if queue.is_empty() {
                    polls.remove(&key);
                }
            }
        }
        in_flight
    }
}

/// How long a finishing poll waits for a create that claimed it.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // Cancelled mid-wait (its client hung up): a create holding the
        // sender now fails to hand over, and hands back; one that already
        // did is handed back here.
        self.stop();
        if self.received {
            return;
        }
        self.handed.close();
        if let Ok(job) = self.handed.try_recv() {
            (self.hand_back)(self.org, vec![job]);
        }
    }
}
