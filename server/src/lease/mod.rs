//! Leasing: how jobs move. Every change of a job's status goes through the
//! [`engine`], which the REST API, the worker endpoints and the [`sweeper`]
//! call; [`state`] is the state machine they all follow; [`wake`] wakes the
//! polls waiting for work; [`batch`] gathers concurrent leases and acks into
//! one statement each; [`handoff`] hands a job created here straight to a
//! poll waiting for it.

pub mod batch;
pub mod engine;
pub mod handoff;
pub mod state;
pub mod sweeper;
pub mod wake;

pub use engine::Engine;
