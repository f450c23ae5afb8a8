//! The job state machine, written once. `docs/job-states.md` draws it.
//!
//! Stores never decide on their own which status a job may move from: every
//! status change names a [`Transition`], and the store's `UPDATE` is guarded
//! by `status IN (transition.from())`, written as literals so the planners
//! can match the partial indexes on status. A transition whose guard matches
//! no row changed nothing, and the caller learns why from what it reads back.
//! Statements that need a job to hold a lease without changing its status
//! (extending a deadline, listing a worker's leases) use [`LEASED`].
//!
//! What becomes of an attempt that did not succeed — how its execution is
//! recorded, whether the job runs again and when — is decided here too, by
//! [`RunningAttempt::end`]; the stores read the attempt and write the answer.
//!
//! ```text
//!            ┌──────────── (due at once) ───────────┐
//! create ──► scheduled ──promote──► queued ──lease──► running ──ack──► completed
//!               ▲                     ▲                 │
//!               └── fail / timeout ───┼── (retries left)┤
//!                                     │                 └─ fail / timeout ──► failed
//!                      retry (by hand)┘  from failed | cancelled
//! cancel: scheduled | queued | running ──► cancelled
//! hold:   queued ──► scheduled, held (its push endpoint is disabled)
//!         running ──► scheduled, held (leased before the hold, not yet called:
//!                     the lease is undone, as if it had never been taken)
//! ```
//!
//! A held job is `scheduled` with a `held_reason`: promotion passes over it
//! (the stores' `NOT_HELD`) until its endpoint is enabled, which clears the
//! reason; no attempt is made and none is spent.

use chronos_proto::{ExecutionStatus, JobStatus};
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
    /// A queued push job's endpoint is disabled: back to `scheduled`, held
    /// (`held_reason`) until the endpoint is enabled.
    Hold,
    /// Push delivery leased a job whose endpoint is disabled (it became
    /// queued after the last hold) and made no request: held as
    /// [`Transition::Hold`], its attempt and execution undone.
    HoldLeased,
}

use JobStatus::{Cancelled, Completed, Failed, Queued, Running, Scheduled};

impl Transition {
    /// The statuses this transition may start from.
    pub const fn from(self) -> &'static [JobStatus] {
        match self {
            Transition::Promote => &[Scheduled],
            Transition::Lease | Transition::Hold => &[Queued],
            Transition::Ack | Transition::Fail | Transition::Release | Transition::HoldLeased => {
                &[Running]
            }
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
            Transition::Fail | Transition::Hold | Transition::HoldLeased => Scheduled,
            Transition::Cancel => Cancelled,
        }
    }
}

/// The statuses in which a job holds a lease. Not a transition: the guard of
/// statements that need the lease to be current without changing the status.
pub const LEASED: &[JobStatus] = &[Running];

/// The statuses of a job that will not run again unless retried by hand.
pub const FINISHED: &[JobStatus] = &[Completed, Failed, Cancelled];

/// How the open execution of a cancelled running job is closed.
pub const CANCELLED_EXECUTION: ExecutionStatus = ExecutionStatus::Failed;
/// The error recorded on it.
pub const CANCELLED_ERROR: &str = "job cancelled";

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

/// Why a running attempt is ended without an ack.
#[derive(Clone, Debug, PartialEq)]
pub enum Cause {
    /// Its worker (or push delivery) reported this failure.
    Reported(Failure),
    /// The sweeper found its deadline passed.
    DeadlinePassed,
    /// The sweeper found its WebSocket worker gone for longer than the grace.
    WorkerGone,
}

/// A running attempt as the store reads it to end it badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunningAttempt {
    /// The job's attempt counter, this attempt included.
    pub attempt: u32,
    /// Attempts made before the current retry budget began (a manual retry
    /// or a release moves it).
    pub attempt_base: u32,
    pub max_retries: u32,
    pub timeout_seconds: u32,
}

/// How a store records an attempt that did not succeed.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    /// The status its execution closes with.
    pub execution: ExecutionStatus,
    /// The error on the execution and the job's `last_error`.
    pub error: String,
    /// What the job does next.
    pub next: AfterFailure,
}

impl Ending {
    /// The job's status after this ending.
    pub fn job_status(&self) -> JobStatus {
        match self.next {
            AfterFailure::GiveUp => GIVEN_UP,
            AfterFailure::RetryIn(delay) => waiting_status(delay.is_zero()),
        }
    }

    /// Seconds until the job is due again; `None` when it has failed for good.
    pub fn retry_in_seconds(&self) -> Option<f64> {
        match self.next {
            AfterFailure::RetryIn(delay) => Some(delay.as_secs_f64()),
            AfterFailure::GiveUp => None,
        }
    }
}

impl RunningAttempt {
    /// Decides how this attempt ends for `cause`: the one place that says
    /// what follows a failure, a timeout or a lost worker.
    pub fn end(&self, cause: Cause) -> Ending {
        let (execution, failure) = match cause {
            Cause::Reported(failure) => (ExecutionStatus::Failed, failure),
            Cause::DeadlinePassed => (
                ExecutionStatus::TimedOut,
                Failure::timed_out(self.timeout_seconds.into()),
            ),
            Cause::WorkerGone => (ExecutionStatus::Failed, Failure::worker_lost()),
        };
        let attempts = self.attempt.saturating_sub(self.attempt_base);
        Ending {
            execution,
            next: after_failure(attempts, self.max_retries, &failure),
            error: failure.error,
        }
    }
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
            Transition::Hold,
            Transition::HoldLeased,
        ] {
            assert!(t.from().iter().all(|s| !s.is_finished()), "{t:?}");
        }
        assert!(Transition::Retry.from().iter().all(|s| s.is_finished()));
    }

    #[test]
    fn endings_say_how_the_execution_closes_and_what_follows() {
        let attempt = RunningAttempt {
            attempt: 3,
            attempt_base: 2,
            max_retries: 1,
            timeout_seconds: 30,
        };
        let timed_out = attempt.end(Cause::DeadlinePassed);
        assert_eq!(timed_out.execution, ExecutionStatus::TimedOut);
        assert!(timed_out.error.contains("30 s"), "{}", timed_out.error);
        assert_eq!(
            timed_out.job_status(),
            Scheduled,
            "1 attempt in budget, 1 retry"
        );
        let lost = attempt.end(Cause::WorkerGone);
        assert_eq!(lost.execution, ExecutionStatus::Failed);
        assert_eq!(lost.next, AfterFailure::RetryIn(Duration::ZERO));
        assert_eq!(lost.job_status(), Queued, "due again at once");
        let permanent = attempt.end(Cause::Reported(failure(false, None)));
        assert_eq!(permanent.job_status(), Failed);
        assert_eq!(permanent.retry_in_seconds(), None);
        let spent = RunningAttempt {
            attempt: 2,
            attempt_base: 0,
            ..attempt
        };
        assert_eq!(spent.end(Cause::DeadlinePassed).next, AfterFailure::GiveUp);
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
