//! The retention service: every [`EVERY`], deletes the finished jobs that
//! are past their retention period (`store::retention` says which), in
//! batches of [`BATCH`]. The periods are read by each batch, so `chronos
//! retention` applies without a restart. Every replica runs one; their
//! batches are safe to race (on PostgreSQL, rows another holds are skipped).
//!
//! Also how periods are written (`7d`, `forever`), for `chronos retention`
//! and the log.

use crate::config::BadDuration;
use crate::store::{Cutoffs, DynStore, Result, RetentionPeriods};
use std::time::Duration;
use tokio::sync::watch;

/// How long between passes. Nothing waits on retention: jobs past their
/// period may stay this much longer.
pub const EVERY: Duration = Duration::from_secs(30);

/// Jobs deleted per batch: each batch is one short transaction, so the
/// lease path (on SQLite, the store's one thread) never waits long behind
/// it.
pub const BATCH: u32 = 500;

/// Runs passes until `shutdown`.
pub async fn run(store: DynStore, mut shutdown: watch::Receiver<bool>) {
    log_periods(&store).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
        match pass(&store).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, "deleted finished jobs past their retention period");
            }
            Err(e) => {
                tracing::warn!(error = %e, "deleting expired jobs failed; retrying at the next pass");
            }
        }
    }
}

/// Deletes batches until one comes back short (nothing left for now),
/// yielding between them, and returns how many jobs it deleted. The periods
/// and the store's clock are read once, for the whole pass. Tests call it
/// after moving the test clock, instead of waiting for a pass.
pub async fn pass(store: &DynStore) -> Result<u64> {
    let Some(cutoffs) = cutoffs(store).await? else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        let deleted = store.delete_expired(&cutoffs, BATCH).await?;
        total += deleted;
        if deleted < u64::from(BATCH) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// What is past its period now, by the store's clock; `None` when every
/// period is forever.
async fn cutoffs(store: &DynStore) -> Result<Option<Cutoffs>> {
    let periods = store.retention().await?.periods;
    Ok(Cutoffs::at(store.now().await?, &periods))
}

/// Says at every start how long finished jobs are kept; and, on a store an
/// older Chronos made that keeps every finished job until an operator sets
/// periods, says so as a warning, so that it is not missed.
async fn log_periods(store: &DynStore) {
    let settings = match store.retention().await {
        Ok(settings) => settings,
        Err(e) => {
            tracing::warn!(error = %e, "reading the retention periods failed");
            return;
        }
    };
    let p = settings.periods;
    tracing::info!(
        completed = %format_period(p.completed),
        failed = %format_period(p.failed),
        cancelled = %format_period(p.cancelled),
        "finished jobs are kept this long"
    );
    if settings.set_at.is_none() && p == RetentionPeriods::FOREVER {
        tracing::warn!(
            "finished jobs are kept forever: this store predates retention, and no periods \
             were set; set them with `chronos retention --completed 7d --failed 30d \
             --cancelled 30d` (`forever` keeps them, and silences this)"
        );
    }
}

/// The shortest period: a finished job stays readable at least this long.
pub const MIN_PERIOD: Duration = Duration::from_secs(60);

/// A period as operators write it (`chronos retention`): `90s`, `15m`,
/// `12h`, `7d`, at least [`MIN_PERIOD`], or `forever` (`None`).
pub fn parse_period(s: &str) -> Result<Option<Duration>, String> {
    if s == "forever" {
        return Ok(None);
    }
    let too_short = || format!("a retention period is at least 1 minute (or forever), not `{s}`");
    let period = match crate::config::parse_duration(s) {
        Ok(period) => period,
        Err(BadDuration::Malformed) => {
            return Err(format!(
                "`{s}` is not a period: write 90s, 15m, 12h, 7d or forever"
            ));
        }
        Err(BadDuration::Negative) => return Err(too_short()),
        Err(BadDuration::TooLong) => {
            return Err(format!(
                "`{s}` is too long a period; write forever to keep jobs"
            ));
        }
    };
    if period < MIN_PERIOD {
        return Err(too_short());
    }
    Ok(Some(period))
}

/// A period in the largest unit that writes it whole: `7d`, `36h`, `forever`.
pub fn format_period(period: Option<Duration>) -> String {
    let Some(period) = period else {
        return "forever".into();
    };
    let secs = period.as_secs();
    let (n, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(size, _)| secs % size == 0)
        .map_or((secs, "s"), |(size, unit)| (secs / size, unit));
    format!("{n}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(s: &str) -> Option<Duration> {
        parse_period(s).unwrap()
    }

    #[test]
    fn periods_are_a_whole_number_and_a_unit_or_forever() {
        assert_eq!(period("90s"), Some(Duration::from_secs(90)));
        assert_eq!(period("15m"), Some(Duration::from_secs(900)));
        assert_eq!(period("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(period("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(period("forever"), None);
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "1.5d",
            "+7d",
            " 7d",
            "7 d",
            "99999999999999999999d",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?} was accepted");
        }
        for short in ["0s", "0d", "59s", "-1d", "-0m"] {
            let e = parse_period(short).unwrap_err();
            assert!(e.contains("at least 1 minute"), "{short}: {e}");
        }
        assert_eq!(period("60s"), Some(MIN_PERIOD));
    }

    #[test]
    fn periods_print_in_the_largest_whole_unit() {
        for (secs, text) in [
            (604_800, "7d"),
            (129_600, "36h"),
            (5_400, "90m"),
            (90, "90s"),
        ] {
            assert_eq!(format_period(Some(Duration::from_secs(secs))), text);
            assert_eq!(period(text), Some(Duration::from_secs(secs)));
        }
        assert_eq!(format_period(None), "forever");
    }
}
