//! Wire types shared by the Chronos server and its SDKs.
//!
//! Everything here is what travels over HTTP: request bodies (which reject
//! unknown fields, so a typo is an error rather than a silently ignored
//! option), response bodies (which ignore unknown fields, so a newer server
//! may add some: see [`strict`]), and the error envelope. The server adds
//! validation on top; the SDKs build and parse these types directly.
//!
//! - [`job`]: jobs, their statuses and executions.
//! - [`keys`]: API keys and scopes.
//! - [`lease`]: what workers send and receive to run jobs.
//! - [`accounts`]: organizations, people, roles, invites and sessions.
//! - [`endpoint`]: push endpoints' health.
//! - [`error`]: the `{"error": {...}}` envelope every rejection uses.
//! - [`headers`]: which request headers answers hide, and how.
//! - [`queue`]: named queues and their flow control.
//! - [`schedule`]: recurring jobs, by cron or interval, in three shapes.
//! - [`list`]: the `{"data": [...], "next_cursor": ...}` envelope of every list.
//! - [`strict`]: which types refuse unknown fields (what clients send) and
//!   which ignore them (what the server sends).
//! - [`target_group`]: named sets of endpoints a publish fans out to.
//! - [`time`]: timestamps, always RFC 3339 UTC with milliseconds.
//! - [`worker`]: the WebSocket worker protocol's frames.

/// The words the API and the stores write an enum with:
/// `words!(Enum { Variant = "word", … })` gives it `as_str` and `parse`.
/// Defined before the modules, so that each may use it.
macro_rules! words {
    ($ty:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $word),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($word => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

pub mod accounts;
pub mod domains;
pub mod endpoint;
pub mod error;
pub mod headers;
pub mod job;
pub mod keys;
pub mod lease;
pub mod list;
pub mod message;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod plans;
pub mod queue;
pub mod schedule;
pub mod signature;
pub mod signing;
pub mod strict;
pub mod target_group;
pub mod time;
pub mod worker;

pub use accounts::{
    AcceptInvite, ChangePassword, CreateInvite, CreateOrganization, CreatedInvite,
    CreatedOrganization, Invite, InviteAccepted, InviteStatus, Login, Membership, Organization,
    Role, Session, UpdateMembership, UpdateOrganization, User,
};
pub use domains::{
    DnsTxtChallenge, Domain, DomainRequest, DomainStatus, DomainVerification, WellKnownChallenge,
};
pub use endpoint::{Endpoint, EndpointEnabled, EndpointStatus};
pub use error::{ErrorBody, ErrorDetail};
pub use job::{
    BatchCreated, BatchItem, BodyEncoding, CreateJob, CreateJobs, Delay, Delivery, Execution,
    ExecutionStatus, HttpMethod, HttpTarget, Job, JobStatus, TimeUnit,
};
pub use keys::{ApiKey, CreateApiKey, CreatedApiKey, Scope};
pub use lease::{AckRequest, ExtendRequest, FailRequest, Lease, LeasedJob, PollRequest};
pub use list::List;
pub use message::{CreateMessage, Message, MessageAccepted, MessagePublished};
pub use plans::{Plan, Usage, UsageWindow};
pub use queue::{
    CreateQueue, FailureMode, PublishMessage, Queue, QueueKey, QueueMessageAccepted, QueueOrdering,
    QueuePublished, QueueState, QueueStats, UpdateQueue,
};
pub use schedule::{
    CatchUp, CreateSchedule, NextRuns, Overlap, Schedule, ScheduleStatus, ScheduleType, SkippedRun,
};
pub use signing::{CreateSigningSecret, RevealedSigningSecret, RotateSigningSecret, SigningSecret};
pub use target_group::{
    Callback, CallbackEvent, CallbackOn, CallbackStatus, CreateMember, CreateTargetGroup, FanOut,
    FanOutAccepted, FanOutResult, FanOutStatus, GroupCallbackEvent, Member, TargetGroup,
};
pub use time::Timestamp;

/// What the vector tests share, in this crate and in the SDKs' (not part
/// of the wire types).
#[doc(hidden)]
pub mod vectors {
    use serde_json::Value;

    /// A vector's value without its `added_later` fields, at every depth:
    /// what a type that ignores unknown fields writes back.
    pub fn known(value: &Value) -> Value {
        match value {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| *k != "added_later")
                .map(|(k, v)| (k.clone(), known(v)))
                .collect(),
            Value::Array(items) => items.iter().map(known).collect(),
            other => other.clone(),
        }
    }
}
