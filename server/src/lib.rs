//! The Chronos server.
//!
//! - [`cli`]: the `chronos` command and its subcommands.
//! - [`server`]: runs the API and the background services until shutdown.
//!
//! Modules depend on one another in one direction only, top to bottom
//! (`docs/architecture.md` draws it):
//!
//! - [`api`]: the HTTP API, one module per resource; [`worker`]: long-lived
//!   workers' WebSocket sessions.
//! - [`lease`]: the lease engine — the only caller of the statements that
//!   create jobs and change their status — and its services: the sweeper
//!   (promotes due jobs, ends expired attempts), the scheduler (fires
//!   schedules), wake-ups, hand-off, batching. [`push`]: push delivery, a
//!   lease consumer like any worker, and its SSRF guard. [`retention`]: the
//!   service that deletes finished jobs past their retention period.
//! - [`store`]: storage, one trait per concept, each with a PostgreSQL and
//!   a SQLite implementation.
//! - The domain, with no I/O: [`job`] (the job model, the state machine,
//!   the rules), [`schedule`] (schedules, cron and interval timing, what a
//!   scheduler pass fires), [`queue`] (queues' settings and their rules),
//!   [`account`] (organizations, API keys, signing secrets),
//!   [`target_group`] (named sets of push endpoints), [`endpoint`] (push
//!   endpoints' health: when deliveries to one are held).
//! - [`config`]: which store to open.

pub mod account;
pub mod api;
pub mod cli;
pub mod config;
pub mod endpoint;
pub mod job;
pub mod lease;
pub mod push;
pub mod queue;
pub mod retention;
pub mod schedule;
pub mod server;
pub mod store;
pub mod target_group;
pub mod worker;
