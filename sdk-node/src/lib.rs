//! The Chronos SDK for Node: a napi-rs binding over the Rust SDK
//! (`chronos-sdk`), so Node speaks to the server through the same client
//! and worker code as Rust does. This crate builds `native.js` and
//! `native.d.ts`; `lib/` is the JavaScript the package exports, which turns
//! the binding's errors into `ChronosError` and reads well from TypeScript.
//!
//! - [`client`]: the REST client, every method a Promise.
//! - [`callback`]: verifying and reading a callback a callback queue
//!   delivered.
//! - [`signature`]: checking a push request's signature.
//! - [`worker`]: the worker, its handlers JavaScript functions.
//! - [`error`]: how the Rust SDK's errors cross into JavaScript.

pub mod callback;
pub mod client;
pub mod error;
pub mod signature;
pub mod worker;
