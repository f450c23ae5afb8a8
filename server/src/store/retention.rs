//! Retention: how long finished jobs are kept, and deleting those past it.
//!
//! The periods live in the store (one row), so `chronos retention` changes
//! them for every server process at once, without a restart. A job is
//! deleted, with its executions, once it has been finished (completed,
//! failed or cancelled) for longer than its status's period, by the store's
//! clock — unless it is one of the last [`KEPT_PER_SCHEDULE`] jobs of its
//! schedule, which a schedule's history and its overlap rule read, or a
//! delivery whose outcome is still to publish. A fan-out goes once each of
//! its deliveries is past its period.

use super::{Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Timestamp;
use std::time::Duration;
use uuid::Uuid;

/// The newest jobs of each schedule that are kept however old they are.
pub const KEPT_PER_SCHEDULE: u32 = 100;

/// Job ids come from the clock of the server process that created the job,
/// cutoffs from the store's: ids are looked for this far past the cutoff,
/// so that a process whose clock ran ahead does not hide its jobs.
const ID_CLOCK_MARGIN: Duration = Duration::from_secs(3600);

/// How long finished jobs are kept, per final status; `None` keeps them
/// forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPeriods {
    pub completed: Option<Duration>,
    pub failed: Option<Duration>,
    pub cancelled: Option<Duration>,
}

impl RetentionPeriods {
    /// What a store created from nothing starts with.
    pub const DEFAULT: RetentionPeriods = RetentionPeriods {
        completed: Some(Duration::from_secs(7 * 86_400)),
        failed: Some(Duration::from_secs(30 * 86_400)),
        cancelled: Some(Duration::from_secs(30 * 86_400)),
    };

    /// Nothing is ever deleted: what a store that held jobs before retention
    /// existed starts with.
    pub const FOREVER: RetentionPeriods = RetentionPeriods {
        completed: None,
        failed: None,
        cancelled: None,
    };

    /// The periods as the stores' columns hold them: whole seconds, in the
    /// order completed, failed, cancelled; NULL for forever.
    pub fn as_seconds(&self) -> Result<[Option<i64>; 3]> {
        let seconds = |period: Option<Duration>| {
            period
                .map(|d| {
                    i64::try_from(d.as_secs()).map_err(|_| {
                        StoreError::Other(format!("a retention period of {d:?} is too long"))
                    })
                })
                .transpose()
        };
        Ok([
            seconds(self.completed)?,
            seconds(self.failed)?,
            seconds(self.cancelled)?,
        ])
    }

    /// Reads what [`as_seconds`](Self::as_seconds) wrote.
    pub fn from_seconds(columns: [Option<i64>; 3]) -> Result<Self> {
        let period = |col: &str, secs: Option<i64>| {
            secs.map(|s| {
                u64::try_from(s)
                    .map(Duration::from_secs)
                    .map_err(|_| StoreError::Corrupt(format!("{col}_seconds = {s}")))
            })
            .transpose()
        };
        let [completed, failed, cancelled] = columns;
        Ok(RetentionPeriods {
            completed: period("completed", completed)?,
            failed: period("failed", failed)?,
            cancelled: period("cancelled", cancelled)?,
        })
    }
}

/// The periods as the store keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    pub periods: RetentionPeriods,
    /// When an operator last set them (`chronos retention`); `None` if never:
    /// the periods are then the ones the store was created or upgraded with.
    pub set_at: Option<Timestamp>,
}

/// What a pass of deletion batches compares against, computed from the
/// store's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    /// Per finished status, jobs finished before this are past their
    /// period; `None` keeps them.
    pub completed: Option<Timestamp>,
    pub failed: Option<Timestamp>,
    pub cancelled: Option<Timestamp>,
    /// No job whose id is at or above this can be past its period: it was
    /// created after the latest cutoff (ids are UUIDv7, so id order is
    /// creation order). Bounds the walk over the primary key, which then
    /// never reads the recent part of the table.
    pub below_id: Uuid,
}

impl Cutoffs {
    /// Fan-outs that finished before this are past their period: by then
    /// every delivery of theirs is too, whatever its status. `None` while
    /// any status is kept forever.
    pub fn fan_outs(&self) -> Option<Timestamp> {
        [self.completed?, self.failed?, self.cancelled?]
            .into_iter()
            .min()
    }
}

/// What keeps a finished job whose outcome (callback, fan-out count) is not
/// yet published from deletion, both stores (the job is `j`).
pub(crate) const OUTCOME_PUBLISHED: &str = "NOT (NOT j.outcome_published \
     AND (j.fan_out_id IS NOT NULL OR j.callback_queue_id IS NOT NULL))";

impl Cutoffs {
    /// The cutoffs at `now` (the store's clock); `None` when every period is
    /// forever and there is nothing to look for.
    pub fn at(now: Timestamp, periods: &RetentionPeriods) -> Option<Cutoffs> {
        let before = |period: Option<Duration>| {
            let period = chrono::TimeDelta::from_std(period?).ok()?;
            now.0.checked_sub_signed(period).map(Timestamp)
        };
        let completed = before(periods.completed);
        let failed = before(periods.failed);
        let cancelled = before(periods.cancelled);
        let latest = [completed, failed, cancelled].into_iter().flatten().max()?;
        let margin = chrono::TimeDelta::from_std(ID_CLOCK_MARGIN).expect("an hour");
        Some(Cutoffs {
            completed,
            failed,
            cancelled,
            below_id: uuid_v7_floor(Timestamp(latest.0 + margin)),
        })
    }
}

/// The smallest UUIDv7 of the millisecond `at`: every id made at or after
/// `at` sorts at or above it, every id made before sorts below (the first
/// 48 bits are the milliseconds since the epoch, and both stores compare
/// ids byte by byte — PostgreSQL's `uuid`, SQLite's lowercase text alike).
pub(crate) fn uuid_v7_floor(at: Timestamp) -> Uuid {
    let millis = at.0.timestamp_millis().clamp(0, (1 << 48) - 1) as u128;
    Uuid::from_u128(millis << 80)
}

#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// The retention periods now.
    async fn retention(&self) -> Result<RetentionSettings>;

    /// Replaces the periods (whole seconds, at least one; `None` is forever),
    /// stamping `set_at` with the store's clock; returns them as stored.
    async fn set_retention(&self, periods: RetentionPeriods) -> Result<RetentionSettings>;

    /// Deletes at most `batch` jobs past their status's `cutoffs`, oldest
    /// first, with their executions, in one short transaction, and returns
    /// how many. Never touches the last [`KEPT_PER_SCHEDULE`] jobs of a
    /// schedule, nor jobs that are not finished; on PostgreSQL, skips rows
    /// another transaction holds (a lease, a retry) rather than waiting.
    /// Fewer than `batch` means none are left for now.
    async fn delete_expired(&self, cutoffs: &Cutoffs, batch: u32) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn the_floor_sorts_between_the_ids_of_its_millisecond_and_the_one_before() {
        let t = at("2026-03-04T05:06:07.891Z");
        let floor = uuid_v7_floor(t);
        let ms = t.0.timestamp_millis() as u64;
        let id_at = |ms: u64| {
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                ms / 1000,
                (ms % 1000) as u32 * 1_000_000,
            ))
        };
        for _ in 0..100 {
            assert!(id_at(ms) >= floor);
            assert!(id_at(ms - 1) < floor);
            // SQLite compares the text.
            assert!(id_at(ms).to_string() >= floor.to_string());
            assert!(id_at(ms - 1).to_string() < floor.to_string());
        }
    }

    #[test]
    fn cutoffs_are_now_less_each_period_and_ids_are_bounded_by_the_latest() {
        let now = at("2026-03-31T00:00:00.000Z");
        let periods = RetentionPeriods {
            completed: Some(Duration::from_secs(86_400)),
            failed: Some(Duration::from_secs(10 * 86_400)),
            cancelled: None,
        };
        let c = Cutoffs::at(now, &periods).unwrap();
        assert_eq!(c.completed, Some(at("2026-03-30T00:00:00.000Z")));
        assert_eq!(c.failed, Some(at("2026-03-21T00:00:00.000Z")));
        assert_eq!(c.cancelled, None);
        assert_eq!(c.below_id, uuid_v7_floor(at("2026-03-30T01:00:00.000Z")));
        assert_eq!(Cutoffs::at(now, &RetentionPeriods::FOREVER), None);
    }
}
