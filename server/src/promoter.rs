//! The promoter: moves `scheduled` jobs to `queued` when their `run_at`
//! passes by the database's clock (the `Promote` transition).
//!
//! It sleeps until the next job is due, as the store reports it, but never
//! longer than [`MAX_SLEEP`], so jobs created through another replica are
//! picked up too; creating a job here wakes it early. Every replica runs one;
//! the store's update is safe to race.

use crate::store::DynStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The longest the promoter sleeps, which bounds how late a job created on
/// another replica can be promoted.
pub const MAX_SLEEP: Duration = Duration::from_millis(500);
/// After a store error, wait this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

pub async fn run(store: DynStore, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let sleep = match store.promote_due_jobs().await {
            Ok(p) => {
                if p.count > 0 {
                    tracing::debug!(count = p.count, "promoted due jobs");
                }
                // A full batch means more may be due now.
                if p.count >= 1000 {
                    Duration::ZERO
                } else {
                    p.next_due_in.map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP))
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "promoting due jobs failed; retrying");
                RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
