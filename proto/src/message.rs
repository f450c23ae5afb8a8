//! Messages (CronPilot's one-shot HTTP requests): a push job with a raw
//! body instead of a handler.

use crate::{HttpMethod, JobStatus, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The largest message body, in bytes.
pub const MAX_MESSAGE_BODY_BYTES: usize = 102_400;

/// `POST /v1/messages`.
///
/// `delay` and `scheduled_at` exclude each other (the schema says so with
/// `not`). Beyond its schema (422 `validation_failed`): `scheduled_at` is at
/// most ten years ahead; `url` is an `https` URL the SSRF guard allows
/// (`ssrf_blocked` otherwise); no sensitive header's value is
/// `***redacted***` (what answers show in its place); `body` is at most
/// 102,400 bytes (the schema counts characters); `signing_secret_id` names
/// one of the organization's. It names exactly one of `url` and
/// `default_target_group_id` (the schema says so).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    /// HTTPS endpoint to call, at most 2,048 characters. Required, unless
    /// `default_target_group_id` is given instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = "uri",
            min_length = 1,
            max_length = 2048,
            example = "https://your-app.com/hooks/chronos"
        )
    )]
    pub url: Option<String>,
    /// Default `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::headers_or_null)
    )]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as given. At most 102,400 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 102400,
            extensions(("x-messages" = json!({"maxLength": "Body exceeds 102400 byte limit"})))
        )
    )]
    pub body: Option<String>,
    /// Seconds from now, at most ten years (316,224,000). Not with
    /// `scheduled_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 316224000))]
    pub delay: Option<u64>,
    /// When to deliver. Not with `delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    /// 1 to 255 characters. A reuse is refused with 409 `duplicate_message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub deduplication_id: Option<String>,
    /// Retries after a failed delivery: 0 to 100. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100, default = 0))]
    pub retries: Option<u32>,
    /// The signing secret every request is signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_id: Option<Uuid>,
    /// Groups the message with others of its queue (`default`) for the
    /// queue's per-key limits (`key_concurrency`, `key_rate_limit`), e.g. a
    /// customer's id: 1 to 255 characters. A message without one is not
    /// held by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub concurrency_key: Option<String>,
    /// The queue (its id or name) this delivery's outcome is published to
    /// once it ends for good — one callback per outcome, not per retry —
    /// as a [`CallbackEvent`](crate::CallbackEvent) body. It must have a
    /// `default_target_url` or `default_target_group_id` (400 otherwise;
    /// 404 for a queue the organization doesn't have). A fan-out also
    /// publishes its [`GroupCallbackEvent`](crate::GroupCallbackEvent)
    /// there when its last delivery ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub callback_queue_id: Option<String>,
    /// Which ends publish a callback to the callback queue: `outcome` (the
    /// default: once, when the delivery ends for good) or `every_attempt`
    /// (each failed attempt with retries to follow too, `final: false`).
    /// `every_attempt` needs a callback queue, here or as the queue's
    /// default (400 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_on: Option<crate::CallbackOn>,
    /// A target group (its id) to fan out across instead of `url`: one
    /// delivery per member, each retried on its own and sharing a
    /// `fan_out_id` (404 for a group the organization doesn't have, 422 for
    /// an empty one). Members added later don't receive this publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub default_target_group_id: Option<String>,
}

/// The answer to `POST /v1/messages` (202).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageAccepted {
    pub message_id: Uuid,
    pub scheduled_at: Timestamp,
}

/// A message as `GET /v1/messages/{id}` shows it. It is also a job:
/// `GET /v1/jobs/{id}` and its executions show it too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub message_id: Uuid,
    pub url: String,
    pub method: HttpMethod,
    /// Sent as given, a sensitive one's value (`Authorization`, `Cookie`,
    /// `Proxy-Authorization`, `X-Api-Key`, or a name containing `token` or
    /// `secret`) shown as `***redacted***`.
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub status: JobStatus,
    pub scheduled_at: Timestamp,
    pub retries: u32,
    /// Delivery attempts made so far.
    pub attempt: u32,
    pub deduplication_id: Option<String>,
    pub signing_secret_id: Option<Uuid>,
    /// The key of its queue's per-key limits, if it has one.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// `endpoint_disabled` while it is held: `scheduled`, waiting for its
    /// endpoint to be enabled (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_reason: Option<String>,
    /// The fan-out it is one delivery of (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out_id: Option<Uuid>,
    /// The queue its outcome is published to (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_queue_id: Option<Uuid>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// The answer to a publish (202): one message, or a fan-out across a
/// target group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum MessagePublished {
    FanOut(crate::FanOutAccepted),
    Message(MessageAccepted),
}
