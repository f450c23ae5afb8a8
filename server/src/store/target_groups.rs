//! Target groups and their members (`crate::target_group`).

use super::Result;
use crate::account::OrgId;
use crate::target_group::{FanOutRecord, MemberRecord, NewMember, TargetGroupRecord};
use async_trait::async_trait;
use uuid::Uuid;

/// The columns both stores select for a target group.
pub(crate) const TARGET_GROUP_COLUMNS: &str = "id, name, created_at, updated_at";

/// The columns both stores select for a member.
pub(crate) const MEMBER_COLUMNS: &str = "id, group_id, target_url, method, headers, created_at";

/// The columns of a fan-out, both stores.
pub(crate) const FAN_OUT_COLUMNS: &str = "id, group_id, queue, total, succeeded, failed, \
     callback_queue_id, created_at, finished_at";

/// A delivery's outcome, both stores: its job `j`, and its last attempt's
/// answer.
pub(crate) const DELIVERED_COLUMNS: &str = "j.id, j.organization_id, j.delivery, j.status, \
     j.attempt, j.last_error, j.created_at, j.finished_at, j.fan_out_id, j.callback_queue_id, \
     (SELECT x.http_status FROM executions x WHERE x.job_id = j.id ORDER BY x.id DESC LIMIT 1) \
         AS http_status, \
     (SELECT x.response_body FROM executions x WHERE x.job_id = j.id ORDER BY x.id DESC LIMIT 1) \
         AS response_body, \
     (SELECT x.response_truncated FROM executions x WHERE x.job_id = j.id \
         ORDER BY x.id DESC LIMIT 1) AS response_truncated, \
     (SELECT x.response_body_encoding FROM executions x WHERE x.job_id = j.id \
         ORDER BY x.id DESC LIMIT 1) AS response_body_encoding";

/// The ended deliveries whose outcome is still to publish (the partial
/// index `jobs_outcome_unpublished`), both stores. One that publishes every
/// attempt waits until its earlier attempts are published: its outcome is
/// its last callback.
pub(crate) fn unpublished_test() -> String {
    use chronos_proto::JobStatus::{Cancelled, Completed, Failed};
    format!(
        "j.status IN ('{}', '{}', '{}') AND NOT j.outcome_published
         AND (j.fan_out_id IS NOT NULL OR j.callback_queue_id IS NOT NULL)
         AND (NOT j.callback_every_attempt OR NOT EXISTS (
             SELECT 1 FROM executions x WHERE x.job_id = j.id AND {attempt}
               AND x.attempt < j.attempt))",
        Completed.as_str(),
        Failed.as_str(),
        Cancelled.as_str(),
        attempt = unpublished_attempt_test(),
    )
}

/// An execution `x` of job `j` whose per-attempt callback is still to
/// publish: ended, not handed back, after the last published.
fn unpublished_attempt_test() -> String {
    format!(
        "x.attempt > j.attempts_published AND x.finished_at IS NOT NULL AND x.status <> '{}'",
        chronos_proto::ExecutionStatus::Released.as_str()
    )
}

/// The failed attempts with retries to follow of deliveries that publish
/// every attempt (`callback_on: "every_attempt"`; the partial index
/// `jobs_attempts_unpublished`), each as [`DELIVERED_COLUMNS`] reads a
/// delivery: the attempt's answer and error, `failed`. A finished
/// delivery's last attempt is its outcome, published apart. Both stores;
/// `limit` is the store's parameter.
pub(crate) fn unpublished_attempts(limit: &str) -> String {
    use chronos_proto::JobStatus::{Cancelled, Completed, Failed};
    format!(
        "SELECT j.id, j.organization_id, j.delivery, '{failed}' AS status, x.attempt,
                x.error AS last_error, j.created_at, x.finished_at, j.fan_out_id,
                j.callback_queue_id, x.http_status, x.response_body, x.response_truncated,
                x.response_body_encoding
         FROM jobs j JOIN executions x ON x.job_id = j.id
         WHERE j.callback_every_attempt AND j.attempts_published < j.attempt
           AND {attempt}
           AND NOT (j.status IN ('{completed}', '{failed}', '{cancelled}')
                    AND x.attempt = j.attempt)
         ORDER BY j.id, x.attempt
         LIMIT {limit}",
        failed = Failed.as_str(),
        completed = Completed.as_str(),
        cancelled = Cancelled.as_str(),
        attempt = unpublished_attempt_test(),
    )
}

/// A delivery's target, from its job's delivery.
pub(crate) fn target_of(delivery: &chronos_proto::Delivery) -> (String, chronos_proto::HttpMethod) {
    match delivery {
        chronos_proto::Delivery::Push { http, .. } => (http.url.clone(), http.method),
        chronos_proto::Delivery::Pull => (String::new(), Default::default()),
    }
}

/// What a rename did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renamed {
    Done(TargetGroupRecord),
    /// The organization has no such group.
    NotFound,
    /// Another group of the organization has the name.
    NameTaken,
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteGroup {
    /// Gone, with its members.
    Deleted,
    NotFound,
    /// Kept: this queue of the organization names it as its default.
    NamedByQueue(String),
}

#[async_trait]
pub trait TargetGroupStore: Send + Sync + 'static {
    /// Makes a group; `None` if the organization already has one of that
    /// name.
    async fn create_target_group(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
    ) -> Result<Option<TargetGroupRecord>>;
    async fn target_group(&self, org: OrgId, id: Uuid) -> Result<Option<TargetGroupRecord>>;
    /// Oldest first.
    async fn list_target_groups(&self, org: OrgId) -> Result<Vec<TargetGroupRecord>>;
    async fn rename_target_group(&self, org: OrgId, id: Uuid, name: &str) -> Result<Renamed>;
    /// Deletes the group and its members, unless a queue names it as its
    /// default.
    async fn delete_target_group(&self, org: OrgId, id: Uuid) -> Result<DeleteGroup>;
    /// Adds an endpoint to the group `group`; `None` if the organization has
    /// no such group.
    async fn add_member(
        &self,
        org: OrgId,
        group: Uuid,
        member: &NewMember,
    ) -> Result<Option<MemberRecord>>;
    /// The group's endpoints, oldest first; `None` if the organization has
    /// no such group.
    async fn members(&self, org: OrgId, group: Uuid) -> Result<Option<Vec<MemberRecord>>>;
    /// `false` if the group has no such member (or the organization no such
    /// group).
    async fn remove_member(&self, org: OrgId, group: Uuid, member: Uuid) -> Result<bool>;
    /// A fan-out of the organization, with its deliveries in the members'
    /// order.
    async fn fan_out(&self, org: OrgId, id: Uuid) -> Result<Option<FanOutRecord>>;
}
