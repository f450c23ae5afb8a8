//! The job state machine, written once. `docs/job-states.md` draws it.
//!
//! Stores never decide on their own which status a job may move from: every
//! status change names a [`Transition`], and the store's `UPDATE` is guarded
//! by `status IN (transition.from())`, written as literals so the
//! planners can match the partial indexes on status. A transition whose guard matches no
//! row changed nothing, and the caller learns why from the row it reads back.
//!
//! ```text
//! create ──► scheduled ──promote──► queued ──lease──► running ──ack──► completed
//!    └─────────────────────────────────┘                 │
//!                          (due at once)                  └─fail──► scheduled (retry) | failed
//! cancel: scheduled | queued | running ──► cancelled
//! ```

use chronos_proto::JobStatus;

/// A change of a job's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A scheduled job's `run_at` has passed (by the database's clock).
    Promote,
    /// A user cancelled the job. A running job is cancelled at once; its
    /// worker's later ack is refused.
    Cancel,
}

impl Transition {
    /// The statuses this transition may start from.
    pub const fn from(self) -> &'static [JobStatus] {
        match self {
            Transition::Promote => &[JobStatus::Scheduled],
            Transition::Cancel => &[JobStatus::Scheduled, JobStatus::Queued, JobStatus::Running],
        }
    }

    /// The status this transition leads to.
    pub const fn to(self) -> JobStatus {
        match self {
            Transition::Promote => JobStatus::Queued,
            Transition::Cancel => JobStatus::Cancelled,
        }
    }
}

/// The status a new job starts in.
pub fn initial_status(due_now: bool) -> JobStatus {
    if due_now {
        JobStatus::Queued
    } else {
        JobStatus::Scheduled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_have_no_way_out_but_by_hand() {
        for t in [Transition::Promote, Transition::Cancel] {
            assert!(t.from().iter().all(|s| !s.is_finished()), "{t:?}");
        }
    }
}
