//! The job state machine, written once. `docs/job-states.md` draws it.
//!
//! Stores never decide on their own which status a job may move from: every
//! status change names a [`Transition`], and the store's `UPDATE` is guarded
//! by `status IN (transition.from())`, written as literals so the planners
//! can match the partial indexes on status. A transition whose guard matches
//! no row changed nothing, and the caller learns why from what it reads back.
//! What happens after a failed or timed-out attempt is decided here too, by
//! [`after_failure`].
//!
//! ```text
//!            ┌──────────── (due at once) ───────────┐
//! create ──► scheduled ──promote──► queued ──lease──► running ──ack──► completed
//!               ▲                     ▲                 │
//!               └── fail / timeout ───┼── (retries left)┤
//!                                     │                 └─ fail / timeout ──► failed
//!                      retry (by hand)┘  from failed | cancelled
//! cancel: scheduled | queued | running ──► cancelled
//! ```

use chronos_proto::JobStatus;
use std::time::Duration;

/// A change of a job's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A scheduled job's `run_at` has passed (by the database's clock).
    Promote,
    /// A worker (or push delivery) takes a queued job: a new attempt starts.
    Lease,
    /// The attempt succeeded.
    Ack,
    /// The attempt failed or timed out; [`after_failure`] says whether the
    /// job is scheduled again or has failed for good.
    Fail,
    /// A user cancelled the job. A running job is cancelled at once; its
    /// worker's later ack is refused.
    Cancel,
    /// A user asked to run a failed or cancelled job again, with a fresh
    /// retry budget.
    Retry,
    /// The worker handed the job back unstarted: queued again, and the
    /// attempt does not count against the retry budget.
    Release,
}

use JobStatus::{Cancelled, Completed, Failed, Queued, Running, Scheduled};

impl Transition {
    /// The statuses this transition may start from.
    pub const fn from(self) -> &'static [JobStatus] {
        match self {
            Transition::Promote => &[Scheduled],
            Transition::Lease => &[Queued],
            Transition::Ack | Transition::Fail | Transition::Release => &[Running],
            Transition::Cancel => &[Scheduled, Queued, Running],
            Transition::Retry => &[Failed, Cancelled],
        }
    }

    /// The status this transition leads to. `Fail` leads to `scheduled` or
    /// `failed` ([`after_failure`]); this names the retry case.
    pub const fn to(self) -> JobStatus {
        match self {
            Transition::Promote | Transition::Retry | Transition::Release => Queued,
            Transition::Lease => Running,
            Transition::Ack => Completed,
            Transition::Fail => Scheduled,
            Transition::Cancel => Cancelled,
        }
    }
}

/// The status a job starts in, or returns to after a backoff: queued if it
/// is already due, else scheduled.
pub fn waiting_status(due_now: bool) -> JobStatus {
    if due_now { Queued } else { Scheduled }
}

/// The status of a job that has failed for good.
pub const GIVEN_UP: JobStatus = Failed;

/// How an attempt ended badly.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub error: String,
    /// False for a permanent failure: no retry, whatever the budget.
    pub retryable: bool,
    /// The worker's own delay before the next attempt, instead of the backoff.
    pub retry_in: Option<Duration>,
}

impl Failure {
    /// An attempt whose deadline passed without an ack.
    pub fn timed_out(timeout_seconds: i64) -> Self {
        Failure {
            error: format!(
                "timed out: no ack within the deadline ({timeout_seconds} s from the lease, or as extended)"
            ),
            retryable: true,
            retry_in: None,
        }
    }

    /// An attempt whose WebSocket worker went away and did not come back
    /// within the grace: due again at once, for another worker.
    pub fn worker_lost() -> Self {
        Failure {
            error: "worker connection lost".into(),
            retryable: true,
            retry_in: Some(Duration::ZERO),
        }
    }
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AfterFailure {
    /// Run again after this delay (`scheduled`, or `queued` if zero).
    RetryIn(Duration),
    /// No retries left, or the failure was permanent: `failed`.
    GiveUp,
}

/// The longest backoff between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Decides what follows a failed or timed-out attempt. `attempts` counts the
/// attempts made within the current retry budget, this one included;
/// `max_retries` is how many may follow the first.
pub fn after_failure(attempts: u32, max_retries: u32, failure: &Failure) -> AfterFailure {
    if !failure.retryable || attempts > max_retries {
        return AfterFailure::GiveUp;
    }
    AfterFailure::RetryIn(
        failure
            .retry_in
            .unwrap_or_else(|| backoff(attempts, rand::random_range(0.8..=1.2))),
    )
}

/// 1 s × 2^(attempt − 1) times `jitter` (0.8 to 1.2, so that jobs that
/// failed together do not all come back together), at most [`MAX_BACKOFF`].
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    Duration::from_secs(1u64 << exp)
        .mul_f64(jitter)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(retryable: bool, retry_in: Option<u64>) -> Failure {
        Failure {
            error: "boom".into(),
            retryable,
            retry_in: retry_in.map(Duration::from_secs),
        }
    }

    #[test]
    fn finished_jobs_leave_only_by_hand() {
        for t in [
            Transition::Promote,
            Transition::Lease,
            Transition::Ack,
            Transition::Fail,
            Transition::Cancel,
            Transition::Release,
        ] {
            assert!(t.from().iter().all(|s| !s.is_finished()), "{t:?}");
        }
        assert!(Transition::Retry.from().iter().all(|s| s.is_finished()));
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(13, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(1000, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(13, 1.2), MAX_BACKOFF, "the cap holds after jitter");
        assert_eq!(backoff(12, 0.8), Duration::from_millis(1_638_400));
        assert_eq!(backoff(3, 0.8), Duration::from_millis(3200));
        assert_eq!(backoff(3, 1.2), Duration::from_millis(4800));
    }

    #[test]
    fn retries_stop_at_the_budget() {
        // max_retries = 2: attempts 1 and 2 may be retried, attempt 3 may not.
        assert!(
            matches!(after_failure(1, 2, &failure(true, None)), AfterFailure::RetryIn(d) if d >= Duration::from_millis(800) && d <= Duration::from_millis(1200))
        );
        assert!(matches!(
            after_failure(2, 2, &failure(true, None)),
            AfterFailure::RetryIn(_)
        ));
        assert_eq!(
            after_failure(3, 2, &failure(true, None)),
            AfterFailure::GiveUp
        );
        assert_eq!(
            after_failure(1, 0, &failure(true, None)),
            AfterFailure::GiveUp
        );
        assert_eq!(
            after_failure(1, 5, &failure(false, None)),
            AfterFailure::GiveUp
        );
        assert_eq!(
            after_failure(1, 5, &failure(true, Some(7))),
            AfterFailure::RetryIn(Duration::from_secs(7))
        );
    }
}
