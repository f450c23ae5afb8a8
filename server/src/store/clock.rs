//! Which clock a store's statements read.
//!
//! Every "is it due yet" decision is made in SQL, by the database's clock.
//! Tests of time-dependent rules (backoff, lease expiry, schedule catch-up
//! and overlap) need to move that clock instead of waiting: a store opened
//! with [`Clock::Test`] reads the database's clock plus an offset kept in a
//! one-row table (`chronos_test_clock`), which
//! [`Database::advance_clock`](super::Database::advance_clock) moves and
//! every server process on the store hears of. Production stores are opened
//! with [`Clock::Database`]: their statements are the plain `now()` ones and
//! pay nothing for the test clock.

/// Which clock a store reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The database's own clock (`now()`): always, outside tests.
    #[default]
    Database,
    /// The database's clock plus an offset tests move (`chronos serve
    /// --test-clock`).
    Test,
}
