//! The shared test support (`tests/support`), and what only the server's
//! suites need: the real `chronos` binary as a child process.
#![allow(dead_code, unused_imports)]

pub mod process;

pub use chronos_test_support::*;
