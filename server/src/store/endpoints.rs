//! Push endpoints and their health (`crate::endpoint`): reading them. What
//! changes them — the dispatcher's reports, enabling one — changes whether
//! jobs are held, and so is the lease engine's
//! ([`LeaseStore`](super::LeaseStore)).

use super::{Page, PageRequest, Result};
use crate::account::OrgId;
use crate::endpoint::{EndpointKey, EndpointRecord};
use async_trait::async_trait;
use uuid::Uuid;

/// The columns of an endpoint `e`, both stores, with `held`: how many of
/// its deliveries are held (the partial index `jobs_held`). `url` is the
/// store's expression for a job `j`'s target URL.
pub(crate) fn endpoint_columns(url: &str) -> String {
    format!(
        "e.id, e.scheme, e.target_host, e.consecutive_failures, e.failing_since, \
         e.last_failure_at, e.last_error, e.disabled_at, e.disabled_reason, e.healthy_since, \
         e.created_at, e.updated_at, \
         (SELECT count(*) FROM jobs j WHERE j.organization_id = e.organization_id \
            AND j.held_reason IS NOT NULL AND j.target_host = e.target_host \
            AND {}) AS held",
        scheme_test(url, "e.scheme")
    )
}

/// Whether a job's target URL (`url`, an SQL expression) has the scheme
/// `scheme` (an SQL expression), both stores. An endpoint is a scheme and
/// a `host:port`; jobs record only the `host:port` apart.
pub(crate) fn scheme_test(url: &str, scheme: &str) -> String {
    format!("lower(substr({url}, 1, length({scheme}) + 3)) = {scheme} || '://'")
}

#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// The organization's endpoints, newest first, one page.
    async fn endpoints(&self, org: OrgId, page: PageRequest) -> Result<Page<EndpointRecord>>;

    /// One endpoint of the organization.
    async fn endpoint(&self, org: OrgId, id: Uuid) -> Result<Option<EndpointRecord>>;

    /// Every organization's disabled endpoints: the dispatcher holds the
    /// queued deliveries to them, and hands back any it leased.
    async fn disabled_endpoints(&self) -> Result<Vec<(OrgId, EndpointKey)>>;
}
