//! Plans, the organization each is assigned to, and the counts they limit
//! ([`crate::account::plans`]). The counts are raised where jobs are
//! inserted (`LeaseStore`), in the same transaction.

use super::Result;
use crate::account::OrgId;
use crate::account::plans::{Plan, Usage};
use async_trait::async_trait;

/// The columns both stores select for a plan.
pub(crate) const PLAN_COLUMNS: &str = "name, messages_per_day, messages_per_month, \
     min_interval_seconds, max_retries, verify_domains";

/// What became of a plan asked to be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanDeleted {
    Deleted,
    NotFound,
    /// Organizations are on it (how many); or it is `unlimited`.
    InUse(u64),
}

/// What becomes of jobs past their organization's quota, where a store
/// inserts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PastQuota {
    /// Refused, each with the window that ran out (API requests).
    Refuse,
    /// Inserted and counted all the same: what an accepted job gives rise
    /// to (a callback) is never lost to a quota.
    Count,
}

#[async_trait]
pub trait PlanStore: Send + Sync + 'static {
    /// Every plan, by name.
    async fn list_plans(&self) -> Result<Vec<Plan>>;

    async fn plan(&self, name: &str) -> Result<Option<Plan>>;

    /// Creates the plan or replaces its limits. `unlimited` is not the
    /// caller's to change: the caller refuses it.
    async fn put_plan(&self, plan: &Plan) -> Result<()>;

    /// Deletes a plan no organization is on.
    async fn delete_plan(&self, name: &str) -> Result<PlanDeleted>;

    /// The plan the organization is on.
    async fn organization_plan(&self, org: OrgId) -> Result<Plan>;

    /// Puts the organization on the plan `name`; false if there is no such
    /// plan (nothing changes).
    async fn set_organization_plan(&self, org: OrgId, name: &str) -> Result<bool>;

    /// What the organization has created in the day and month that hold
    /// the store's now.
    async fn usage(&self, org: OrgId) -> Result<Usage>;
}
