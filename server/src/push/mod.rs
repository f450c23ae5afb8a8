//! Push delivery: the server calls a job's HTTP endpoint instead of a
//! worker leasing it. [`guard`] keeps those calls off private networks;
//! `chronos_proto::signature` is how they are signed.
//!
//! Push jobs are created through `/v1/jobs` (with a handler) and
//! `/v1/messages` (with a raw body). Not yet here: the dispatcher that
//! leases them and calls their targets — they stay `queued` today.

pub mod guard;
