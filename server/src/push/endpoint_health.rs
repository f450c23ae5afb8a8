//! Endpoint health, as push delivery sees it (`crate::endpoint`): each
//! attempt's verdict on its endpoint is tallied here and written about once
//! a second — off the path of the attempt's own end, which stays one
//! statement — and the disabled endpoints are read back. While any is
//! disabled, the dispatcher holds what is queued for them before each
//! lease; a delivery that became queued between the two is handed back
//! unstarted, never called.

use crate::account::OrgId;
use crate::endpoint::{EndpointKey, HealthPolicy, Report, Tallies};
use crate::lease::Engine;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How often tallies are written and disabled endpoints read.
const TICK: Duration = Duration::from_secs(1);
/// Queued deliveries one hold statement moves at most.
const HOLD_BATCH: u32 = 1000;

/// What the dispatcher and its calls share about endpoints.
#[derive(Default)]
pub struct EndpointHealth {
    tallies: Mutex<Tallies>,
    disabled: RwLock<HashSet<(OrgId, EndpointKey)>>,
    /// A leased delivery's endpoint is disabled: hold now.
    hold_now: Notify,
}

impl EndpointHealth {
    /// Tallies one attempt's verdict.
    pub fn report(&self, report: Report) {
        self.tallies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(report);
    }

    /// Whether any endpoint is disabled: the dispatcher then holds what is
    /// queued for them before each lease.
    pub fn any_disabled(&self) -> bool {
        !self
            .disabled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Holds queued deliveries to disabled endpoints: a batch before each
    /// lease, more each tick.
    pub async fn hold(&self, engine: &Engine) -> u64 {
        match engine.hold_for_disabled_endpoints(HOLD_BATCH).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "holding deliveries to disabled endpoints failed");
                0
            }
        }
    }

    /// Whether deliveries of `org` to `endpoint` are held.
    pub fn is_disabled(&self, org: OrgId, endpoint: &EndpointKey) -> bool {
        let disabled = self.disabled.read().unwrap_or_else(|p| p.into_inner());
        disabled.contains(&(org, endpoint.clone()))
    }

    /// A delivery to a disabled endpoint was leased (queued before this
    /// process held it): hold what is queued at once.
    pub fn held_one(&self) {
        self.hold_now.notify_one();
    }

    /// Writes tallies, reads the disabled endpoints and holds their queued
    /// deliveries, each tick, until the engine shuts down.
    pub async fn run(self: Arc<Self>, engine: Arc<Engine>, policy: HealthPolicy) {
        let mut shutdown = engine.shutdown();
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(TICK) => false,
                _ = self.hold_now.notified() => false,
                _ = shutdown.changed() => true,
            } || *shutdown.borrow();
            self.flush(&engine, policy).await;
            if stop {
                return;
            }
            self.refresh(&engine).await;
        }
    }

    /// Writes the tallies gathered since the last write.
    pub async fn flush(&self, engine: &Engine, policy: HealthPolicy) {
        let tallies = {
            let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
            if tallies.is_empty() {
                return;
            }
            tallies.take()
        };
        match engine.record_endpoint_health(tallies, policy).await {
            Ok(recorded) => {
                for (org, endpoint) in &recorded.disabled {
                    tracing::warn!(org = %org.0, endpoint = %endpoint.url(), "endpoint disabled: its deliveries are held");
                }
                if recorded.released > 0 {
                    tracing::info!(
                        released = recorded.released,
                        "endpoint recovered: held deliveries released"
                    );
                }
                // Held from now on here, before the next read of them all.
                self.disabled
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(recorded.disabled);
            }
            // Health is advice: a lost tally delays a disable, loses no job.
            Err(e) => tracing::warn!(error = %e, "recording endpoint health failed"),
        }
    }

    /// Reads the disabled endpoints again, and holds what is queued for
    /// them.
    pub async fn refresh(&self, engine: &Engine) {
        let disabled = match engine.store().disabled_endpoints().await {
            Ok(disabled) => disabled,
            Err(e) => {
                tracing::warn!(error = %e, "reading disabled endpoints failed");
                return;
            }
        };
        let any = !disabled.is_empty();
        *self.disabled.write().unwrap_or_else(|p| p.into_inner()) = disabled.into_iter().collect();
        if !any {
            return;
        }
        // A long backlog is held a batch at a time, a few batches a tick.
        for _ in 0..10 {
            if self.hold(engine).await < u64::from(HOLD_BATCH) {
                break;
            }
        }
    }
}
