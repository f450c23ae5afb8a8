//! The sweeper: the one background pass that moves jobs on their own, by the
//! database's clock. It promotes `scheduled` jobs whose time has come to
//! `queued` (waking their polls), times out running attempts whose
//! deadline has passed (each a failed attempt, retried or failed for good),
//! and wakes the polls of jobs a rate limit held the moment its window
//! lets one start.
//!
//! It sleeps until the next due time or deadline the store reports, but
//! never longer than [`MAX_SLEEP`], so work created through another replica
//! is seen too; the engine wakes it early when it schedules a job or moves a
//! deadline. Every replica runs one; the store's updates are safe to race.

use super::engine::Engine;
use super::liveness::WORKER_GRACE;
use crate::store::Result;
use std::sync::Arc;
use std::time::Duration;

/// The longest the sweeper sleeps, which bounds how late a job scheduled
/// through another replica is promoted when that replica is gone.
pub const MAX_SLEEP: Duration = Duration::from_millis(500);
/// After a store error, wait this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// A pass that hits this many rows runs again at once.
const FULL_BATCH: u64 = 100;

pub async fn run(engine: Arc<Engine>) {
    let mut shutdown = engine.shutdown();
    let mut passes: u64 = 0;
    loop {
        let sleep = match sweep(&engine).await {
            Ok(sleep) => sleep,
            Err(e) => {
                tracing::warn!(error = %e, "sweeping jobs failed; retrying");
                RETRY_AFTER_ERROR
            }
        };
        passes += 1;
        if passes.is_multiple_of(1000) {
            engine.wakers().prune();
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = engine.sweeper_notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One pass; returns how long to sleep before the next.
async fn sweep(engine: &Engine) -> Result<Duration> {
    // Timeouts first: their retries are scheduled, and the promotion pass
    // then counts them in its next due time. The engine wakes the polls of
    // a lost worker's job, due again at once.
    let expired = engine.expire_leases(WORKER_GRACE).await?;
    for job in &expired.ended {
        tracing::info!(job_id = %job.id, status = %job.status, attempt = job.attempt, "attempt ended by the sweeper (timed out, or its worker is gone)");
    }
    let next_release_in = engine.release_rate_held().await?;
    let promoted = engine.promote_due_jobs().await?;
    if promoted.count >= FULL_BATCH || expired.ended.len() as u64 >= FULL_BATCH {
        return Ok(Duration::ZERO);
    }
    Ok([
        promoted.next_due_in,
        expired.next_expiry_in,
        next_release_in,
    ]
    .into_iter()
    .flatten()
    .fold(MAX_SLEEP, Duration::min))
}
