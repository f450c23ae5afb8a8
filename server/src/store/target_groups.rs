//! Target groups and their members (`crate::target_group`).

use super::Result;
use crate::account::OrgId;
use crate::target_group::{MemberRecord, NewMember, TargetGroupRecord};
use async_trait::async_trait;
use uuid::Uuid;

/// The columns both stores select for a target group.
pub(crate) const TARGET_GROUP_COLUMNS: &str = "id, name, created_at, updated_at";

/// The columns both stores select for a member.
pub(crate) const MEMBER_COLUMNS: &str = "id, group_id, target_url, method, headers, created_at";

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
}
