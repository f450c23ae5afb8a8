//! Workers connected over WebSocket, as every server process sees them, and
//! the handlers long-poll workers ask for.

use super::Result;
use crate::account::OrgId;
use async_trait::async_trait;
use chronos_proto::worker::ConnectedWorker;
use std::time::Duration;
use uuid::Uuid;

/// A worker saying hello over WebSocket.
#[derive(Clone, Debug)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub session_id: Uuid,
    pub handlers: Vec<String>,
    pub max_in_flight: u32,
    pub sdk: String,
}

/// A lease a worker holds: its token and job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub token: Uuid,
    pub job_id: Uuid,
}

#[async_trait]
pub trait WorkerStore: Send + Sync + 'static {
    /// Records a worker's session (a reconnect replaces the last one) and
    /// returns the leases it still holds.
    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>>;

    /// The session is alive.
    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()>;

    /// The session ended; unless it reconnects, its leases end after the grace.
    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()>;

    /// Workers connected to any server process, heard from within `alive`.
    async fn list_workers(&self, org: OrgId, alive: Duration) -> Result<Vec<ConnectedWorker>>;

    /// Long-poll workers asked for `handlers` just now.
    async fn record_polls(&self, org: OrgId, handlers: &[String]) -> Result<()>;

    /// Whether any worker serves `handler`: a WebSocket worker heard from
    /// within `alive`, or a long-poll worker that asked for it within
    /// `polled`.
    async fn handler_served(
        &self,
        org: OrgId,
        handler: &str,
        alive: Duration,
        polled: Duration,
    ) -> Result<bool>;
}
