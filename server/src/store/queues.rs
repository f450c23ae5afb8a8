//! Queues: their settings and state (`queue/` says what they mean).

use super::Result;
use crate::account::OrgId;
use crate::queue::{QueueRecord, QueueSettings, QueueStatus};
use async_trait::async_trait;
use uuid::Uuid;

/// The columns both stores select for a queue.
pub(crate) const QUEUE_COLUMNS: &str = "id, name, concurrency, retries, ordering, failure_mode, \
     status, blocked, rate_limit, rate_period_seconds, key_concurrency, key_rate_limit, \
     key_rate_period_seconds, signing_secret_id, default_target_url, created_at, updated_at";

#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Makes a queue, `active` and not blocked; `None` if the organization
    /// already has one of that name.
    async fn create_queue(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>>;
    async fn queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>>;
    /// Every queue of the organization, by name.
    async fn list_queues(&self, org: OrgId) -> Result<Vec<QueueRecord>>;
    /// Replaces the settings; `None` if there is no such queue.
    async fn update_queue(
        &self,
        org: OrgId,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>>;
    /// Pauses or resumes; `None` if there is no such queue.
    async fn set_queue_status(
        &self,
        org: OrgId,
        name: &str,
        status: QueueStatus,
    ) -> Result<Option<QueueRecord>>;
    /// Clears `blocked`; `None` if there is no such queue.
    async fn unblock_queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>>;
}
