//! Queues: named sets of jobs that share flow control — how many run at
//! once, in which order, how fast they start, and what a job that dies does
//! to the rest (seed 004's queues). This module holds what a queue is asked
//! to be and the rules its settings meet; no I/O.
//!
//! Every organization has a `default` queue, with no limit; a queue is
//! *limited* when anything can hold its jobs back (a concurrency or rate
//! limit, a per-key limit, a pause, a block). Only limited queues cost the
//! lease path anything.

use chronos_proto::Timestamp;
use uuid::Uuid;

/// The queue every organization has, which can't be deleted.
pub const DEFAULT_QUEUE: &str = "default";

/// Retries a queue gives its jobs unless a job says otherwise.
pub const DEFAULT_RETRIES: u32 = 3;

/// A queue's `concurrency`, when set.
pub const MIN_CONCURRENCY: u32 = 1;
pub const MAX_CONCURRENCY: u32 = 100;

/// The order a queue serves its due jobs in; priority comes first in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// By due time, then creation: the oldest first.
    Fifo,
    /// By creation, newest first.
    Lifo,
}

/// What a job that dies (fails for good) does to its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Nothing: the queue goes on.
    Continue,
    /// The queue stops starting jobs (`blocked`) until unblocked.
    Block,
    /// The queue is paused, as by `POST …/pause`.
    Pause,
}

/// Whether a queue starts jobs at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueStatus {
    Active,
    Paused,
}

macro_rules! words {
    ($ty:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $word),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($word => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}
words!(Ordering { Fifo = "fifo", Lifo = "lifo" });
words!(FailureMode { Continue = "continue", Block = "block", Pause = "pause" });
words!(QueueStatus { Active = "active", Paused = "paused" });

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
    pub ordering: Ordering,
    pub failure_mode: FailureMode,
    pub rate: Option<RateLimit>,
    /// Jobs of one `concurrency_key` running at once, at most.
    pub key_concurrency: Option<u32>,
    pub key_rate: Option<RateLimit>,
    /// Signs every push request of the queue's messages.
    pub signing_secret_id: Option<Uuid>,
    /// Where a message published without a `url` goes.
    pub default_target_url: Option<String>,
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
            ordering: Ordering::Fifo,
            failure_mode: FailureMode::Continue,
            rate: None,
            key_concurrency: None,
            key_rate: None,
            signing_secret_id: None,
            default_target_url: None,
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
    pub status: QueueStatus,
    /// Set when a job died in a `block` queue; nothing starts until
    /// `POST …/unblock`.
    pub blocked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl QueueRecord {
    /// Whether anything can hold the queue's due jobs back now.
    pub fn limited(&self) -> bool {
        self.settings.limits() || self.status == QueueStatus::Paused || self.blocked
    }
}

/// Why a queue's settings were refused: the message is seed 004's where it
/// gives one. `field` names the request field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// A queue's name: the rule a job's `queue` already follows, so every name
/// jobs used before queues existed is a queue's name.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(invalid("name", "name is required"));
    }
    if name.len() > 128 {
        return Err(invalid("name", "name must be at most 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(invalid(
            "name",
            "name must be letters, digits, '-', '_', '.' or ':'",
        ));
    }
    Ok(())
}

/// `ordering` as a request writes it.
pub fn parse_ordering(s: &str) -> Result<Ordering, Invalid> {
    Ordering::parse(s).ok_or_else(|| invalid("ordering", "ordering must be one of: fifo, lifo"))
}

/// `failure_mode` as a request writes it.
pub fn parse_failure_mode(s: &str) -> Result<FailureMode, Invalid> {
    FailureMode::parse(s).ok_or_else(|| {
        invalid(
            "failure_mode",
            "failure_mode must be one of: continue, block, pause",
        )
    })
}

/// The settings' own rules, whatever set them.
pub fn check(settings: &QueueSettings) -> Result<(), Invalid> {
    if let Some(c) = settings.concurrency
        && !(MIN_CONCURRENCY..=MAX_CONCURRENCY).contains(&c)
    {
        return Err(invalid(
            "concurrency",
            "concurrency must be between 1 and 100",
        ));
    }
    if settings.key_concurrency == Some(0) {
        return Err(invalid(
            "key_concurrency",
            "key_concurrency must be at least 1",
        ));
    }
    for (rate, field) in [
        (settings.rate, "rate_limit"),
        (settings.key_rate, "key_rate_limit"),
    ] {
        if let Some(r) = rate
            && (r.limit == 0 || r.period_seconds == 0)
        {
            return Err(invalid(
                field,
                format!("{field} and its period must be at least 1"),
            ));
        }
    }
    Ok(())
}

/// A rate limit from its two request fields, which go together.
pub fn rate(
    limit: Option<u32>,
    period_seconds: Option<u32>,
    names: (&'static str, &'static str),
) -> Result<Option<RateLimit>, Invalid> {
    match (limit, period_seconds) {
        (None, None) => Ok(None),
        (Some(limit), Some(period_seconds)) => Ok(Some(RateLimit {
            limit,
            period_seconds,
        })),
        _ => Err(invalid(
            names.0,
            format!("{} and {} must be set together", names.0, names.1),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: std::fmt::Debug>(r: Result<T, Invalid>) -> (&'static str, String) {
        let e = r.expect_err("refused");
        (e.field, e.message)
    }

    /// Seed 004's messages, word for word where it gives them.
    #[test]
    fn settings_are_refused_with_the_seeds_messages() {
        assert_eq!(message(check_name("")), ("name", "name is required".into()));
        assert_eq!(message(check_name(&"q".repeat(129))).0, "name");
        assert_eq!(message(check_name("has space")).0, "name");
        check_name(&"q".repeat(128)).unwrap();
        check_name("a.b:c-d_e").unwrap();
        for concurrency in [0, 101] {
            let s = QueueSettings {
                concurrency: Some(concurrency),
                ..QueueSettings::new_queue()
            };
            assert_eq!(
                message(check(&s)),
                (
                    "concurrency",
                    "concurrency must be between 1 and 100".into()
                )
            );
        }
        for concurrency in [None, Some(1), Some(100)] {
            check(&QueueSettings {
                concurrency,
                ..QueueSettings::new_queue()
            })
            .unwrap();
        }
        let names = ("rate_limit", "rate_period_seconds");
        assert_eq!(
            message(rate(Some(10), None, names)),
            (
                "rate_limit",
                "rate_limit and rate_period_seconds must be set together".into()
            )
        );
        assert_eq!(message(rate(None, Some(60), names)).0, "rate_limit");
        assert_eq!(rate(None, None, names).unwrap(), None);
        let ten_a_minute = rate(Some(10), Some(60), names).unwrap().unwrap();
        assert_eq!((ten_a_minute.limit, ten_a_minute.period_seconds), (10, 60));
        let zero = QueueSettings {
            rate: Some(RateLimit {
                limit: 0,
                period_seconds: 60,
            }),
            ..QueueSettings::new_queue()
        };
        assert_eq!(message(check(&zero)).0, "rate_limit");
        assert_eq!(
            message(parse_ordering("random")),
            ("ordering", "ordering must be one of: fifo, lifo".into())
        );
        assert_eq!(
            message(parse_failure_mode("retry")),
            (
                "failure_mode",
                "failure_mode must be one of: continue, block, pause".into()
            )
        );
        for o in Ordering::ALL {
            assert_eq!(parse_ordering(o.as_str()).unwrap(), *o);
        }
        for f in FailureMode::ALL {
            assert_eq!(parse_failure_mode(f.as_str()).unwrap(), *f);
        }
        for s in QueueStatus::ALL {
            assert_eq!(QueueStatus::parse(s.as_str()), Some(*s));
        }
    }

    /// Seed 004's defaults for a new queue; the `default` queue holds
    /// nothing back.
    #[test]
    fn a_new_queue_runs_one_at_a_time_the_default_queue_limits_nothing() {
        let new = QueueSettings::new_queue();
        assert_eq!(new.concurrency, Some(1));
        assert_eq!(new.retries, 3);
        assert_eq!(new.ordering, Ordering::Fifo);
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
