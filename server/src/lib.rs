//! The Chronos server.
//!
//! - [`cli`]: the `chronos` command and its subcommands.
//! - [`server`]: runs the API and the background services until shutdown.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`store`]: the storage trait and its PostgreSQL and SQLite implementations.
//! - [`job_state`]: the job state machine; every status change is one of its transitions.
//! - [`promoter`]: moves scheduled jobs to queued when they fall due.
//! - [`keys`]: API key format, generation and checking.
//! - [`config`]: which store to open.

pub mod api;
pub mod cli;
pub mod config;
pub mod job_state;
pub mod keys;
pub mod promoter;
pub mod server;
pub mod store;
