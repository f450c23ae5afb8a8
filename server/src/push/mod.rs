//! Push delivery: the server calls a job's HTTP endpoint instead of a
//! worker leasing it. [`guard`] keeps those calls off private networks;
//! [`sign`] signs them.
//!
//! Not yet here: the dispatcher that leases push jobs and calls their
//! targets, and the messages API (push jobs stay `queued` today).

pub mod guard;
pub mod sign;
