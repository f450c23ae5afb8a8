//! Jobs: what a job is asked to be ([`NewJob`], [`RunAt`]), the one state
//! machine every status change follows ([`state`]), the rules a job's fields
//! and a worker's reports must meet ([`rules`]), and how a batched lease
//! deals jobs out over the takers' free slots ([`slots`]).
//!
//! This module holds no I/O: the store reads and writes what it describes,
//! and only the lease engine (`lease/`) asks the store to change a
//! job's status.

pub mod rules;
pub mod slots;
pub mod state;

use chronos_proto::{Delivery, Timestamp};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// When a new job becomes due. Relative times are added to the database's
/// clock, not this process's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunAt {
    Now,
    After(Duration),
    At(Timestamp),
}

/// A validated job to insert.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: Uuid,
    pub name: String,
    pub handler: Option<String>,
    pub payload: Value,
    pub queue: String,
    /// The key of the queue's per-key limits.
    pub concurrency_key: Option<String>,
    pub priority: i32,
    pub delivery: Delivery,
    pub run_at: RunAt,
    /// Retries after the first attempt; `None`: the queue's `retries`.
    pub max_retries: Option<u32>,
    pub timeout_seconds: u32,
    pub schedule_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    /// What follows its end, for a push delivery.
    pub follow: Follow,
}

/// What follows a push delivery's end: the fan-out it is one delivery of
/// (counted down when it ends), and the queue its outcome is published to.
/// Neither, for most jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Follow {
    pub fan_out_id: Option<Uuid>,
    pub callback_queue_id: Option<Uuid>,
    /// Each failed attempt with retries to follow publishes a callback
    /// too (`callback_on: "every_attempt"`), not the outcome alone.
    pub every_attempt: bool,
}

/// The host a push job calls, as its delivery slots are counted:
/// `host:port`, the port explicit. `None` for pull jobs (and unparsable
/// URLs, which the API refuses).
pub fn target_host(delivery: &Delivery) -> Option<String> {
    let Delivery::Push { http, .. } = delivery else {
        return None;
    };
    host_port(&url::Url::parse(&http.url).ok()?)
}

/// `host:port` of a URL, the host lowercased and the port explicit: how
/// push delivery keys a target host (and an endpoint, with its scheme).
pub fn host_port(url: &url::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}
