//! Queues: named sets of jobs that share flow control — how many run at
//! once, in which order, how fast they start, and what a job that dies does
//! to the rest (seed 004's queues). This module holds what a queue is asked
//! to be; no I/O. (What a request may set is the API document's to say:
//! the contract layer holds requests to it, as for every route.)
//!
//! Every organization has a `default` queue, with no limit; a queue is
//! *limited* when anything can hold its jobs back (a concurrency or rate
//! limit, a per-key limit, a pause, a block). Only limited queues cost the
//! lease path anything.

use chronos_proto::Timestamp;
pub use chronos_proto::{FailureMode, QueueOrdering, QueueState};
use uuid::Uuid;

/// The queue every organization has, which can't be deleted.
pub const DEFAULT_QUEUE: &str = "default";

/// Retries a queue gives its jobs unless a job says otherwise.
pub const DEFAULT_RETRIES: u32 = 3;

/// A limit of `limit` starts in any window of `period_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub period_seconds: u32,
}

/// What a queue is set to do: everything `POST /v1/queues` and `PATCH`
/// may set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// Jobs of the queue running at once, at most; `None`: no limit. At 1,
    /// the queue runs its jobs strictly in order.
    pub concurrency: Option<u32>,
    /// Retries of a job that doesn't set its own.
    pub retries: u32,
    pub ordering: QueueOrdering,
    pub failure_mode: FailureMode,
    pub rate: Option<RateLimit>,
    /// Jobs of one `concurrency_key` running at once, at most.
    pub key_concurrency: Option<u32>,
    pub key_rate: Option<RateLimit>,
    /// Signs every push request of the queue's messages.
    pub signing_secret_id: Option<Uuid>,
    /// Where a message published without a `url` goes.
    pub default_target_url: Option<String>,
    /// The target group a message published without a `url` fans out to.
    pub default_target_group_id: Option<Uuid>,
    /// The queue each delivery's outcome is published to, for messages that
    /// name none.
    pub callback_queue_id: Option<Uuid>,
    /// Which ends publish a callback, for messages that don't say.
    pub callback_on: chronos_proto::CallbackOn,
}

impl QueueSettings {
    /// A queue as `POST /v1/queues` makes it when given only a name: one
    /// job at a time, in order (seed 004's defaults).
    pub fn new_queue() -> Self {
        QueueSettings {
            concurrency: Some(1),
            ..QueueSettings::unlimited()
        }
    }

    /// The `default` queue, and each queue made for a name jobs already
    /// used before queues existed: nothing held back.
    pub fn unlimited() -> Self {
        QueueSettings {
            concurrency: None,
            retries: DEFAULT_RETRIES,
            ordering: QueueOrdering::Fifo,
            failure_mode: FailureMode::Continue,
            rate: None,
            key_concurrency: None,
            key_rate: None,
            signing_secret_id: None,
            default_target_url: None,
            default_target_group_id: None,
            callback_queue_id: None,
            callback_on: chronos_proto::CallbackOn::Outcome,
        }
    }

    /// Whether these settings can hold a due job back.
    pub fn limits(&self) -> bool {
        self.concurrency.is_some()
            || self.rate.is_some()
            || self.key_concurrency.is_some()
            || self.key_rate.is_some()
    }
}

/// A queue as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    pub id: Uuid,
    pub name: String,
    pub settings: QueueSettings,
    pub status: QueueState,
    /// Set when a job died in a `block` queue; nothing starts until
    /// `POST …/unblock`.
    pub blocked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl QueueRecord {
    /// Whether anything can hold the queue's due jobs back now.
    pub fn limited(&self) -> bool {
        self.settings.limits() || self.status == QueueState::Paused || self.blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's defaults for a new queue; the `default` queue holds
    /// nothing back.
    #[test]
    fn a_new_queue_runs_one_at_a_time_the_default_queue_limits_nothing() {
        let new = QueueSettings::new_queue();
        assert_eq!(new.concurrency, Some(1));
        assert_eq!(new.retries, 3);
        assert_eq!(new.ordering, QueueOrdering::Fifo);
        assert_eq!(new.failure_mode, FailureMode::Continue);
        assert!(new.limits());
        assert!(!QueueSettings::unlimited().limits());
        let keyed = QueueSettings {
            key_concurrency: Some(1),
            ..QueueSettings::unlimited()
        };
        assert!(keyed.limits());
    }
}
