//! Target groups (seed 004): named sets of push endpoints. A publish naming
//! a group fans out to every member, one delivery each, each retried on its
//! own. What a delivery's end publishes (its callback, a fan-out's group
//! callback) is [`callback`].

use chronos_proto::{HttpMethod, JobStatus, Timestamp};
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

/// A fan-out to insert with its deliveries: one publish across a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFanOut {
    pub id: Uuid,
    pub group_id: Uuid,
    pub queue: String,
    /// Where the group callback goes when the last delivery ends.
    pub callback_queue_id: Option<Uuid>,
}

/// A fan-out as stored, with its deliveries as they are now.
#[derive(Clone, Debug, PartialEq)]
pub struct FanOutRecord {
    pub id: Uuid,
    pub group_id: Uuid,
    pub queue: String,
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub callback_queue_id: Option<Uuid>,
    pub created_at: Timestamp,
    /// When the last delivery ended.
    pub finished_at: Option<Timestamp>,
    pub deliveries: Vec<Delivered>,
}

/// One delivery of a fan-out (or an ended delivery whose outcome is
/// published): its job, as far as its outcome goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    pub job_id: Uuid,
    pub target_url: String,
    pub method: HttpMethod,
    pub status: JobStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's answer, if it got one: its status and body (cut
    /// to 64 KiB, `response_truncated` then).
    pub http_status: Option<u16>,
    pub response_body: Option<String>,
    pub response_body_encoding: chronos_proto::BodyEncoding,
    pub response_truncated: bool,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl FanOutRecord {
    /// Deliveries not yet ended.
    pub fn remaining(&self) -> u32 {
        self.total.saturating_sub(self.succeeded + self.failed)
    }
}

pub mod callback;
