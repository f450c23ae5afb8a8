//! Target groups (CronPilot's, seed 004): named sets of HTTPS endpoints. A
//! message naming a group (or published onto a queue whose default it is)
//! fans out: one delivery per member, each retried on its own.

use crate::{HttpMethod, Timestamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most characters of a group's name.
pub const MAX_GROUP_NAME_CHARS: usize = 200;

/// `POST /v1/target-groups` and `PATCH /v1/target-groups/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTargetGroup {
    /// Unique in the organization: 1 to 200 characters, not only white
    /// space, no NUL (PostgreSQL's text can't hold one).
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\x00]*[^\x00\s][^\x00]*$",
            example = "regional-webhooks",
            extensions(("x-messages" = json!({
                "minLength": "name is required (max 200 chars)",
                "maxLength": "name is required (max 200 chars)",
                "pattern": "name is required (max 200 chars)"
            })))
        )
    )]
    pub name: Option<String>,
}

/// A target group, as every target-group route answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetGroup {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /v1/target-groups/{id}/members`.
///
/// Beyond the schema: `target_url` must be `https` (400 `Only HTTPS
/// target_urls are allowed`; plain `http` only where the server allows
/// private targets) and a public address (422 `ssrf_blocked`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMember {
    /// The endpoint: an `https` URL of at most 2,048 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            format = "uri",
            min_length = 1,
            max_length = 2048,
            example = "https://eu.example.com/hook",
            extensions(("x-messages" = json!({
                "format": "Invalid target_url",
                "minLength": "target_url is required",
                "maxLength": "Invalid target_url"
            })))
        )
    )]
    pub target_url: Option<String>,
    /// Default `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// Sent with every delivery to this member. Sensitive ones
    /// (`Authorization`, `Cookie`, `X-Api-Key`, names holding `token` or
    /// `secret`…) are shown as `***redacted***` in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::headers_or_null)
    )]
    pub headers: Option<BTreeMap<String, String>>,
}

/// One endpoint of a group. Sensitive headers read `***redacted***`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub id: Uuid,
    pub target_url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

/// How a delivery ended, as its callback says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    /// The target answered 2xx.
    Succeeded,
    /// Dead: retries spent, or an answer that is not retried (4xx but 408
    /// and 429, a redirect, `Chronos-Retry: stop`).
    Failed,
}

/// The body of a callback message: one delivery's outcome, published once
/// it ended for good (or after each attempt, when asked). Signed like any
/// delivery when the callback queue has a signing secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackEvent {
    /// The delivery (its job id).
    pub message_id: Uuid,
    /// The fan-out it was one delivery of.
    pub fan_out_id: Option<Uuid>,
    pub status: CallbackStatus,
    /// The target's answer to the last attempt; `null` if it got none.
    pub http_status: Option<u16>,
    /// That answer's body, at most 64 KiB.
    pub response_body: Option<String>,
    /// `utf-8`: the body as text; `base64`: base64 of the bytes of an
    /// answer that was not UTF-8.
    pub response_body_encoding: String,
    /// The body was cut to 64 KiB.
    pub response_truncated: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed; `null` when it succeeded.
    pub error: Option<String>,
    pub url: String,
    pub method: HttpMethod,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `true`: the delivery's outcome (the one callback it always has);
    /// `false`: one failed attempt with retries to follow, published only
    /// for `callback_on: "every_attempt"`. Absent from older servers'
    /// callbacks, which were all outcomes.
    #[serde(rename = "final", default = "outcome")]
    pub is_final: bool,
}

fn outcome() -> bool {
    true
}

/// Which ends of a delivery publish a callback: its outcome alone (the
/// default), or every attempt — each failed attempt with retries to
/// follow (`final: false`), then the outcome (`final: true`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallbackOn {
    #[default]
    Outcome,
    EveryAttempt,
}

words!(CallbackOn {
    Outcome = "outcome",
    EveryAttempt = "every_attempt",
});

/// A fan-out's overall outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FanOutStatus {
    /// Deliveries still to end.
    Running,
    AllSucceeded,
    Partial,
    AllFailed,
}

/// One delivery in a group callback or a fan-out's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FanOutResult {
    pub message_id: Uuid,
    pub target_url: String,
    /// The delivery's job status: `succeeded`, `failed` or `cancelled` once
    /// it ended; `scheduled`, `queued` or `running` before.
    pub status: String,
    pub http_status: Option<u16>,
}

/// The body of a group callback: published once, when the last delivery
/// of a fan-out ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCallbackEvent {
    pub fan_out_id: Uuid,
    pub status: FanOutStatus,
    pub results: Vec<FanOutResult>,
}

/// What a callback queue delivers: one delivery's outcome, or a fan-out's
/// group callback. Read as every answer is, ignoring fields this version
/// does not know; written back as the body it was read from, without them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Callback {
    Delivery(CallbackEvent),
    Group(GroupCallbackEvent),
}

impl<'de> Deserialize<'de> for Callback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Told apart by `results`, which only a group callback has: an
        // untagged read would answer a broken body with "did not match any
        // variant" instead of naming the field at fault.
        let body = serde_json::Value::deserialize(d)?;
        if body.get("results").is_some() {
            GroupCallbackEvent::deserialize(body).map(Callback::Group)
        } else {
            CallbackEvent::deserialize(body).map(Callback::Delivery)
        }
        .map_err(D::Error::custom)
    }
}

/// The answer to a publish that fanned out (202).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FanOutAccepted {
    /// Always `true`.
    pub fan_out: bool,
    pub fan_out_id: Uuid,
    /// One message per member, in the members' order.
    pub message_ids: Vec<Uuid>,
    pub count: u32,
    pub queue: String,
    pub scheduled_at: Timestamp,
}

/// `GET /v1/fan-outs/{id}`: a fan-out and each of its deliveries now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FanOut {
    pub id: Uuid,
    pub target_group_id: Uuid,
    pub queue: String,
    pub status: FanOutStatus,
    pub count: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub callback_queue_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub results: Vec<FanOutResult>,
}

impl FanOutStatus {
    /// The overall status of a fan-out whose deliveries are all ended, from
    /// how many succeeded of how many.
    pub fn of(succeeded: u32, total: u32) -> Self {
        match succeeded {
            0 => FanOutStatus::AllFailed,
            n if n == total => FanOutStatus::AllSucceeded,
            _ => FanOutStatus::Partial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::known;
    use crate::{MessagePublished, QueuePublished, signature};
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../vectors/callbacks.json")).unwrap()
    }

    fn verifies(case: &Value, secret: &str, window: i64) -> bool {
        let (Some(sig), Some(ts)) = (case["signature"].as_str(), case["timestamp"].as_str()) else {
            return false;
        };
        let body = case["body"].as_str().unwrap().as_bytes();
        signature::verify_within(sig, ts, body, secret, case["now"].as_i64().unwrap(), window)
    }

    /// Each signed callback verifies and reads as its kind, without the
    /// fields this version does not know.
    #[test]
    fn callback_vectors_read_as_their_kind() {
        let v = vectors();
        let (secret, window) = (
            v["secret"].as_str().unwrap(),
            v["window_seconds"].as_i64().unwrap(),
        );
        assert_eq!(window, signature::REPLAY_WINDOW_SECONDS);
        let cases = v["callbacks"].as_array().unwrap();
        assert!(cases.iter().any(|c| c["kind"] == "group"));
        for case in cases {
            let about = case["about"].as_str().unwrap();
            assert!(verifies(case, secret, window), "{about}");
            let body = case["body"].as_str().unwrap();
            let callback: Callback =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{about}: {e}"));
            let kind = match &callback {
                Callback::Delivery(_) => "delivery",
                Callback::Group(_) => "group",
            };
            assert_eq!(kind, case["kind"], "{about}");
            assert_eq!(
                serde_json::to_value(&callback).unwrap(),
                case["event"],
                "{about}"
            );
            // A delivery's body from a server before `final` reads as final.
            let mut raw = known(&serde_json::from_str(body).unwrap());
            if kind == "delivery" {
                raw.as_object_mut()
                    .unwrap()
                    .entry("final")
                    .or_insert(true.into());
            }
            assert_eq!(raw, case["event"], "{about}");
        }
    }

    /// Each refused case fails the check its error names: the signature,
    /// or (signed well) the reading.
    #[test]
    fn refused_vectors_fail_where_they_say() {
        let v = vectors();
        let (secret, window) = (
            v["secret"].as_str().unwrap(),
            v["window_seconds"].as_i64().unwrap(),
        );
        for case in v["refused"].as_array().unwrap() {
            let about = case["about"].as_str().unwrap();
            let read = serde_json::from_str::<Callback>(case["body"].as_str().unwrap());
            match case["error"].as_str().unwrap() {
                "invalid_signature" => assert!(!verifies(case, secret, window), "{about}"),
                "invalid_callback" => {
                    assert!(verifies(case, secret, window), "{about}");
                    assert!(read.is_err(), "{about}");
                }
                other => panic!("{about}: no such error {other}"),
            }
        }
    }

    /// A publish's answer reads as a fan-out or one message, as it says.
    #[test]
    fn published_vectors_read_as_their_shape() {
        for case in vectors()["published"].as_array().unwrap() {
            let about = case["about"].as_str().unwrap();
            let answer = &case["answer"];
            let (fan_out, written) = match case["route"].as_str().unwrap() {
                "message" => {
                    let read: MessagePublished = serde_json::from_value(answer.clone()).unwrap();
                    let fan_out = matches!(read, MessagePublished::FanOut(_));
                    (fan_out, serde_json::to_value(&read).unwrap())
                }
                "queue" => {
                    let read: QueuePublished = serde_json::from_value(answer.clone()).unwrap();
                    let fan_out = matches!(read, QueuePublished::FanOut(_));
                    (fan_out, serde_json::to_value(&read).unwrap())
                }
                other => panic!("{about}: no such route {other}"),
            };
            assert_eq!(fan_out, case["fan_out"], "{about}");
            assert_eq!(written, known(answer), "{about}");
        }
    }
}
