//! The outcome publisher: publishes what the end of a push delivery calls
//! for — its callback message, its fan-out's count and, for the last one,
//! the group callback — each once, in the store's transaction
//! ([`LeaseStore::publish_outcomes`](crate::store::LeaseStore::publish_outcomes)).
//!
//! The end itself is the record: a delivery that ended is published by the
//! next pass of any process, so a crash between the two loses nothing. The
//! engine wakes it when a push delivery ends here; it also looks every
//! [`MAX_SLEEP`], for deliveries ended by a process that went away before
//! it published them. Every replica runs one; passes skip what another
//! process is publishing.

use super::engine::Engine;
use crate::store::Result;
use std::sync::Arc;
use std::time::Duration;

/// The longest a delivery ended by a process that died waits for its
/// outcome to be published.
pub const MAX_SLEEP: Duration = Duration::from_secs(2);
/// After a store error, wait this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// Ended deliveries one pass publishes at most; a full pass runs again at
/// once.
const BATCH: u32 = 100;

pub async fn run(engine: Arc<Engine>) {
    let mut shutdown = engine.shutdown();
    loop {
        // Listen before looking, so an end in between still wakes us.
        let woken = engine.publisher_notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let sleep = match publish(&engine).await {
            Ok(true) => continue,
            Ok(false) => MAX_SLEEP,
            Err(e) => {
                tracing::warn!(error = %e, "publishing delivery outcomes failed; retrying");
                RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = woken => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One pass; whether it took a full batch (more may wait).
async fn publish(engine: &Engine) -> Result<bool> {
    let published = engine.publish_outcomes(BATCH).await?;
    for (_, job) in &published.created {
        tracing::debug!(job_id = %job.id, queue = %job.queue, "callback published");
    }
    Ok(published.taken as u32 >= BATCH)
}
