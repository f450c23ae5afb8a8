//! Target groups (seed 004): named sets of push endpoints. A publish naming
//! a group fans out to every member, one delivery each, each retried on its
//! own.

use chronos_proto::{HttpMethod, Timestamp};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A target group as stored. Its name is unique in its organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupRecord {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One endpoint of a target group, as stored (its headers as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    pub id: Uuid,
    pub group_id: Uuid,
    pub target_url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

/// An endpoint to add to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMember {
    pub id: Uuid,
    pub target_url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
}
