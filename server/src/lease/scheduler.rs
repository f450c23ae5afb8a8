//! The scheduler: fires due schedules (what each pass makes of a due
//! schedule is `crate::schedule::fire`'s to say). It sleeps until the next schedule is
//! due (by the store's reckoning, so within milliseconds of the due time),
//! and is woken early when a schedule is created or changed here, or a
//! scheduled job ends (a fire may be waiting for it). It never sleeps
//! longer than [`MAX_SLEEP`], so schedules created through another server
//! process are seen too. Every process runs one; the store takes each due
//! schedule for one of them at a time, and a due time has one job at most.

use super::Engine;
use crate::schedule::fire;
use std::sync::Arc;
use std::time::Duration;

/// The longest the scheduler sleeps.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// After a store error, wait this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

pub async fn run(engine: Arc<Engine>) {
    let mut shutdown = engine.shutdown();
    loop {
        // Listen before looking, so a change made in between still wakes us.
        let woken = engine.scheduler_notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let sleep = match engine.fire_schedules(fire::plan).await {
            // It fired some and more are due: go on at once.
            Ok(fired) if fired.schedules > 0 && fired.next_due_in == Some(Duration::ZERO) => {
                Duration::ZERO
            }
            // Due but not taken (another process is firing it): look again soon.
            Ok(fired) => fired
                .next_due_in
                .unwrap_or(MAX_SLEEP)
                .clamp(Duration::from_millis(1), MAX_SLEEP),
            Err(e) => {
                tracing::warn!(error = %e, "firing schedules failed; retrying");
                RETRY_AFTER_ERROR
            }
        };
        if sleep.is_zero() {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = &mut woken => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
