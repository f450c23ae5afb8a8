//! The Chronos server.
//!
//! - [`cli`]: the `chronos` command and its subcommands.
//! - [`server`]: runs the API and the background services until shutdown.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`store`]: the storage trait and its PostgreSQL and SQLite implementations.
//! - [`lease`]: how jobs move: the lease engine, the job state machine, the
//!   sweeper that promotes due jobs and times out expired attempts.
//! - [`worker`]: long-lived workers' WebSocket sessions.
//! - [`push`]: push delivery (the server calling HTTP endpoints) and its
//!   SSRF guard.
//! - [`schedule`]: recurring jobs: cron and interval timing, and the
//!   scheduler that fires them.
//! - [`keys`]: API key format, generation and checking.
//! - [`config`]: which store to open.

pub mod api;
pub mod cli;
pub mod config;
pub mod keys;
pub mod lease;
pub mod push;
pub mod schedule;
pub mod server;
pub mod store;
pub mod worker;
