//! Long-poll workers keep no session: the handlers they ask for are
//! recorded in the store (`polled_handlers`), so that any server can tell
//! whether a queue's next job waits for a handler nobody serves. Recorded
//! at most every [`RECORD_EVERY`] per handler by each server process, so a
//! busy poller doesn't write on every poll.

use crate::account::OrgId;
use crate::store::DynStore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one server process records that a handler was polled for.
pub const RECORD_EVERY: Duration = Duration::from_secs(10);

/// How long a handler counts as served after its last poll: a poll waits up
/// to 60 s, and a worker polls again after running what it got.
pub const POLLED_ALIVE: Duration = Duration::from_secs(90);

/// Past this many remembered handlers of one organization, its stale ones
/// are forgotten (the names come from workers' requests).
const REMEMBERED: usize = 10_000;

/// When this process last recorded each (organization, handler).
#[derive(Default)]
pub struct PolledHandlers {
    /// By organization, then handler: a poll looks its handlers up by
    /// `&str`, without copying them.
    recorded: Mutex<HashMap<OrgId, HashMap<String, Instant>>>,
}

impl PolledHandlers {
    /// Records that a long-poll worker asked for `handlers`, unless this
    /// process did so lately. A store error is logged, not returned: the
    /// poll itself must not fail for it.
    pub async fn record(&self, store: &DynStore, org: OrgId, handlers: &[String]) {
        let due = self.due(org, handlers, Instant::now());
        if due.is_empty() {
            return;
        }
        if let Err(e) = store.record_polls(org, &due).await {
            tracing::warn!(error = %e, "could not record the handlers polled for");
            // Try again on the next poll.
            let mut recorded = self.recorded.lock().expect("not poisoned");
            if let Some(of_org) = recorded.get_mut(&org) {
                for handler in &due {
                    of_org.remove(handler);
                }
            }
        }
    }

    /// The handlers of `handlers` not recorded within [`RECORD_EVERY`] of
    /// `now`, sorted and distinct; marked recorded at `now`.
    fn due(&self, org: OrgId, handlers: &[String], now: Instant) -> Vec<String> {
        let mut recorded = self.recorded.lock().expect("not poisoned");
        let of_org = recorded.entry(org).or_default();
        if of_org.len() > REMEMBERED {
            of_org.retain(|_, at| now.duration_since(*at) < RECORD_EVERY);
        }
        let mut due: Vec<String> = handlers
            .iter()
            .filter(|h| {
                of_org
                    .get(h.as_str())
                    .is_none_or(|at| now.duration_since(*at) >= RECORD_EVERY)
            })
            .cloned()
            .collect();
        due.sort();
        due.dedup();
        for handler in &due {
            of_org.insert(handler.clone(), now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_handler_is_due_again_only_after_the_interval() {
        let polled = PolledHandlers::default();
        let org = OrgId(Uuid::nil());
        let t0 = Instant::now();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            polled.due(org, &names(&["b", "a", "b"]), t0),
            names(&["a", "b"])
        );
        assert!(
            polled
                .due(org, &names(&["a"]), t0 + RECORD_EVERY / 2)
                .is_empty()
        );
        assert_eq!(
            polled.due(org, &names(&["a", "c"]), t0 + RECORD_EVERY / 2),
            names(&["c"])
        );
        assert_eq!(
            polled.due(org, &names(&["a"]), t0 + RECORD_EVERY),
            names(&["a"])
        );
        // Another organization's handler of the same name is its own.
        let other = OrgId(Uuid::from_u128(1));
        assert_eq!(polled.due(other, &names(&["a"]), t0), names(&["a"]));
    }
}
