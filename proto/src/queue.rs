//! Queues (CronPilot's, seed 004): named sets of jobs that share flow
//! control — how many run at once, in which order, how fast they start,
//! and what a job that dies does to the rest.

use crate::{HttpMethod, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The order a queue serves its due jobs in (priority first in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueueOrdering {
    /// Oldest first: by due time, then creation.
    #[default]
    Fifo,
    /// Newest first: by creation, newest first.
    Lifo,
}

/// What a job that dies (fails for good) does to its queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Nothing: the queue goes on.
    #[default]
    Continue,
    /// The queue starts nothing more (`blocked`) until `POST …/unblock`.
    Block,
    /// The queue is paused (`status: paused`) until `POST …/resume`.
    Pause,
}

/// Whether a queue starts jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueueState {
    Active,
    Paused,
}

words!(QueueOrdering { Fifo = "fifo", Lifo = "lifo" });
words!(FailureMode { Continue = "continue", Block = "block", Pause = "pause" });
words!(QueueState { Active = "active", Paused = "paused" });

/// `POST /v1/queues`.
///
/// `rate_limit` and `rate_period_seconds` are set together, as are
/// `key_rate_limit` and `key_rate_period_seconds` (the schema says so).
/// Beyond the schema: `signing_secret_id` names one of the organization's
/// (422); `default_target_url` is an `https` URL the SSRF guard allows
/// (422 `ssrf_blocked`); `default_target_group_id` names one of the
/// organization's target groups (404 `default_target_group_id not found`);
/// `callback_queue_id` names one of its queues (404) that has somewhere to
/// deliver: a `default_target_url` or `default_target_group_id` (400).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateQueue {
    /// Used in the publish URL: 1 to 128 letters, digits, `-`, `_`, `.` or
    /// `:` (the rule of a job's `queue`), unique in the organization. It
    /// can't be changed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9._:-]+$",
            example = "email-sends",
            extensions(("x-rule" = json!("must be letters, digits, '-', '_', '.' or ':'")))
        )
    )]
    pub name: Option<String>,
    /// Jobs of the queue running at once, at most: 1 to 100, or `null` for
    /// no limit. Default 1, which runs the jobs strictly in order.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = Option<u32>,
            minimum = 1,
            maximum = 100,
            default = 1,
            extensions(("x-messages" = json!({
                "minimum": "concurrency must be between 1 and 100",
                "maximum": "concurrency must be between 1 and 100"
            })))
        )
    )]
    pub concurrency: Option<Option<u32>>,
    /// Retries of a job that doesn't set its own `max_retries`: 0 to 100.
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100, default = 3))]
    pub retries: Option<u32>,
    /// Default `fifo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<QueueOrdering>,
    /// Default `continue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
    /// Starts in any window of `rate_period_seconds`, at most: 1 to
    /// 1,000,000. With `rate_period_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1000000, nullable = false)
    )]
    pub rate_limit: Option<u32>,
    /// The window of `rate_limit`: 1 to 86,400 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 86400, nullable = false)
    )]
    pub rate_period_seconds: Option<u32>,
    /// Jobs of one `concurrency_key` running at once, at most: 1 to 100.
    /// At 1, a key's jobs run in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub key_concurrency: Option<u32>,
    /// Starts of one key in any window of `key_rate_period_seconds`, at
    /// most: 1 to 1,000,000. With `key_rate_period_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1000000, nullable = false)
    )]
    pub key_rate_limit: Option<u32>,
    /// The window of `key_rate_limit`: 1 to 86,400 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 86400, nullable = false)
    )]
    pub key_rate_period_seconds: Option<u32>,
    /// Signs every push request of the queue's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_id: Option<Uuid>,
    /// Where a message published without a `url` goes: an `https` URL of at
    /// most 2,048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(format = "uri", min_length = 1, max_length = 2048)
    )]
    pub default_target_url: Option<String>,
    /// The target group (its id) a message published without a `url`
    /// fans out across: one delivery per member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub default_target_group_id: Option<String>,
    /// The queue (its id or name) each delivery's outcome is published to,
    /// for the queue's messages that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub callback_queue_id: Option<String>,
    /// Which ends of the queue's deliveries publish a callback, for
    /// messages that don't say: `outcome` (the default) or `every_attempt`
    /// (which needs a `callback_queue_id`, 400 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_on: Option<crate::CallbackOn>,
}

/// `PATCH /v1/queues/{name}`: the settings of [`CreateQueue`], each
/// optional; only those given change. `null` removes a limit
/// (`concurrency`, the rates, `key_concurrency`) or a default (the secret,
/// the target URL). The name can't change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateQueue {
    /// 1 to 100, or `null` for no limit.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = Option<u32>,
            minimum = 1,
            maximum = 100,
            extensions(("x-messages" = json!({
                "minimum": "concurrency must be between 1 and 100",
                "maximum": "concurrency must be between 1 and 100"
            })))
        )
    )]
    pub concurrency: Option<Option<u32>>,
    /// 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<QueueOrdering>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
    /// 1 to 1,000,000, or `null` (with `rate_period_seconds`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 1, maximum = 1000000)
    )]
    pub rate_limit: Option<Option<u32>>,
    /// 1 to 86,400, or `null` (with `rate_limit`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 86400))]
    pub rate_period_seconds: Option<Option<u32>>,
    /// 1 to 100, or `null`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100))]
    pub key_concurrency: Option<Option<u32>>,
    /// 1 to 1,000,000, or `null` (with `key_rate_period_seconds`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 1, maximum = 1000000)
    )]
    pub key_rate_limit: Option<Option<u32>>,
    /// 1 to 86,400, or `null` (with `key_rate_limit`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 86400))]
    pub key_rate_period_seconds: Option<Option<u32>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub signing_secret_id: Option<Option<Uuid>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = "uri", min_length = 1, max_length = 2048)
    )]
    pub default_target_url: Option<Option<String>>,
    /// Not available yet: every id is answered 404.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, min_length = 1, max_length = 255)
    )]
    pub default_target_group_id: Option<Option<String>>,
    /// A queue's id or name, or `null` for none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, min_length = 1, max_length = 255)
    )]
    pub callback_queue_id: Option<Option<String>>,
    /// `outcome` or `every_attempt` (which needs a callback queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_on: Option<crate::CallbackOn>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A queue, as every queue route answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Queue {
    pub id: Uuid,
    pub name: String,
    /// `null`: no limit.
    pub concurrency: Option<u32>,
    /// Retries of a job that doesn't set its own (the request's `retries`).
    pub max_retries: u32,
    pub ordering: QueueOrdering,
    pub failure_mode: FailureMode,
    pub status: QueueState,
    pub rate_limit: Option<u32>,
    pub rate_period_seconds: Option<u32>,
    pub key_concurrency: Option<u32>,
    pub key_rate_limit: Option<u32>,
    pub key_rate_period_seconds: Option<u32>,
    pub signing_secret_id: Option<Uuid>,
    pub default_target_url: Option<String>,
    /// The target group a message published without a `url` fans out to.
    pub default_target_group_id: Option<Uuid>,
    /// The queue (its id) outcomes of the queue's messages are published to.
    #[serde(default)]
    pub callback_queue_id: Option<Uuid>,
    /// Which ends of its messages' deliveries publish a callback, for
    /// messages that don't say.
    #[serde(default)]
    pub callback_on: crate::CallbackOn,
    /// A job died in a `block` queue: nothing starts until `POST …/unblock`.
    pub blocked: bool,
    /// While blocked, how many jobs wait (queued or scheduled); 0 otherwise.
    pub blocked_message_count: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// `GET /v1/queues/{name}` only: what the queue holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<QueueStats>,
    /// On create, when `default_target_url`'s domain is unverified and the
    /// organization's plan requires verification: that target takes ten
    /// jobs a day until the domain is verified (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What a queue holds now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    pub running: u64,
    /// Due, waiting to start.
    pub queued: u64,
    /// Not due yet, or waiting for a retry.
    pub scheduled: u64,
    /// When the longest-waiting queued job became due; `null` if none waits.
    pub oldest_queued_at: Option<Timestamp>,
    /// A queue that runs one job at a time, idle, whose next job needs a
    /// handler no worker serves (no WebSocket worker connected to any
    /// server, no long-poll worker asking for it in the last 90 s): that
    /// handler.
    pub waiting_for_handler: Option<String>,
}

/// One concurrency key of a queue, as `GET /v1/queues/{name}/keys` shows
/// it: its unfinished jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueKey {
    pub key: String,
    pub running: u64,
    /// Queued or scheduled (due later, or waiting for a retry).
    pub waiting: u64,
}

/// `POST /v1/queues/{name}/messages`: a message onto a queue. It inherits
/// the queue's signing secret, retries and limits.
///
/// `delay` and `scheduled_at` exclude each other. Beyond the schema (422):
/// as `POST /v1/messages`; `url` is required unless the queue has a
/// `default_target_url`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    /// HTTPS endpoint to call, at most 2,048 characters; the queue's
    /// `default_target_url` when absent.
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
    /// Groups the message with the queue's others for its per-key limits
    /// (`key_concurrency`, `key_rate_limit`), e.g. a customer's id: 1 to
    /// 255 characters. A message without one is not held by them.
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
    /// A target group (its id) to fan out across instead of `url` (and of the queue's defaults): one
    /// delivery per member, each retried on its own and sharing a
    /// `fan_out_id` (404 for a group the organization doesn't have, 422 for
    /// an empty one). Members added later don't receive this publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub default_target_group_id: Option<String>,
}

/// The answer to `POST /v1/queues/{name}/messages` (202): one message, or
/// a fan-out across a target group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum QueuePublished {
    FanOut(crate::FanOutAccepted),
    Message(QueueMessageAccepted),
}

/// One message published onto a queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueMessageAccepted {
    pub message_id: Uuid,
    pub queue: String,
    pub scheduled_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each word reads back, and is what serde writes.
    #[test]
    fn words_read_back_as_serde_writes_them() {
        for o in [QueueOrdering::Fifo, QueueOrdering::Lifo] {
            assert_eq!(QueueOrdering::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for f in [
            FailureMode::Continue,
            FailureMode::Block,
            FailureMode::Pause,
        ] {
            assert_eq!(FailureMode::parse(f.as_str()), Some(f));
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
        for q in [QueueState::Active, QueueState::Paused] {
            assert_eq!(QueueState::parse(q.as_str()), Some(q));
            assert_eq!(serde_json::to_value(q).unwrap(), q.as_str());
        }
        assert_eq!(QueueOrdering::parse("random"), None);
    }
}
