//! Leasing: how jobs move. Every change of a job's status goes through the
//! [`engine`], which holds the store's lease statements and keeps them to
//! itself; the REST API, the worker sessions, push delivery and the engine's
//! own services call it. Those services, one file each: the [`sweeper`]
//! promotes due jobs and ends expired attempts, the [`scheduler`] fires due
//! schedules, the [`publisher`] publishes what an ended push delivery calls
//! for (callbacks, a fan-out's count). [`wake`] wakes the polls waiting for work; [`batch`] gathers
//! concurrent leases and acks into one statement each; [`handoff`] hands a
//! job created here straight to a poll waiting for it; [`liveness`] says how
//! long a worker may be silent. The rules the engine follows are in
//! `crate::job::state`.

pub mod batch;
pub mod engine;
pub mod handoff;
pub mod liveness;
pub mod publisher;
pub mod scheduler;
pub mod sweeper;
pub mod wake;

pub use engine::Engine;

/// What a poll may lease: jobs of its handlers, from the queues its API key
/// is limited to (`None`: every queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub handlers: Vec<String>,
    pub queues: Option<Vec<String>>,
}
