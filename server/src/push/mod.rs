//! Push delivery: the server calls a job's HTTP endpoint instead of a
//! worker leasing it. The [`dispatcher`] is push delivery's worker: it
//! leases push jobs through the lease engine within its per-host slots;
//! [`delivery`] makes one attempt (request, signature, answer → outcome);
//! [`guard`] keeps those calls off private networks; [`endpoint_health`]
//! tallies each endpoint's failures and holds deliveries to disabled ones;
//! `chronos_proto::signature` is how they are signed. The [`verifier`]
//! checks, through the same guard, that a domain publishes its
//! verification challenge, and the [`rechecker`] checks verified domains
//! again every day.
//!
//! Push jobs are created through `/v1/jobs` (with a handler) and
//! `/v1/messages` (with a raw body).

pub mod delivery;
pub mod dispatcher;
pub mod endpoint_health;
pub mod guard;
pub mod rechecker;
pub mod verifier;
