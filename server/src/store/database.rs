//! The database itself: readiness, migrations, the first organization,
//! what other server processes did, and the clock.

use super::Result;
use super::leases::WakeKey;
use crate::account::Organization;
use crate::account::keys::NewApiKey;
use async_trait::async_trait;
use chronos_proto::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What other server processes did that this one should act on.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Jobs became queued for these keys; `None` means some may have been
    /// missed, so every waiting poll should look again.
    Queued(Option<Vec<WakeKey>>),
    /// A job was cancelled: a worker session holding it tells its worker.
    Cancelled(Uuid),
    /// The test clock moved: timers computed from it are stale.
    ClockMoved,
}

/// Called with each [`Change`] other server processes make.
pub type ChangeFn = Arc<dyn Fn(Change) + Send + Sync>;

#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// `postgres` or `sqlite`, for logs.
    fn kind(&self) -> &'static str;

    /// Is the store reachable? (`/readyz`)
    async fn ping(&self) -> Result<()>;

    /// The store's clock now (the database's, or the test clock).
    async fn now(&self) -> Result<Timestamp>;

    /// Applies pending migrations under a lock, so concurrent starts apply
    /// each migration once. Returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;

    /// On an empty store, creates the default organization and `admin_key`
    /// for it, under the same kind of lock; returns the organization if it was
    /// created now, `None` if any organization already existed.
    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>>;

    /// Starts following what other server processes do (on PostgreSQL,
    /// LISTEN/NOTIFY), calling `on_change` for each, until `shutdown`.
    /// `None` where no task is needed.
    fn watch_changes(
        &self,
        on_change: ChangeFn,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>>;

    /// Moves the test clock forward by `by`, and tells every server process
    /// on the store ([`Change::ClockMoved`]). Refused
    /// ([`StoreError::NoTestClock`](super::StoreError::NoTestClock)) unless
    /// the store was opened with [`Clock::Test`](super::Clock::Test).
    async fn advance_clock(&self, by: Duration) -> Result<()>;
}
