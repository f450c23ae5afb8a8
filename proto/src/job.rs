//! Jobs: what a client sends to create one, and what the server shows.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Where a job is in its life. See `docs/job-states.md` for the diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Due later, or waiting out a retry backoff.
    Scheduled,
    /// Due, waiting for a worker.
    Queued,
    /// Leased to a worker (or to push delivery).
    Running,
    Completed,
    /// Retries exhausted, or a permanent failure.
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Scheduled,
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Completed, failed and cancelled jobs are finished: nothing runs them again
    /// unless someone retries them by hand.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}`; expected one of scheduled, queued, running, completed, failed, cancelled"
                )
            })
    }
}

/// The outcome of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    Completed,
    Failed,
    TimedOut,
    /// Handed back unstarted by its worker; the job was queued again
    /// without using up a retry.
    Released,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::TimedOut => "timed_out",
            ExecutionStatus::Released => "released",
        }
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            ExecutionStatus::Running,
            ExecutionStatus::Completed,
            ExecutionStatus::Failed,
            ExecutionStatus::TimedOut,
            ExecutionStatus::Released,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| format!("unknown execution status `{s}`"))
    }
}

/// Units of a [`Delay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl TimeUnit {
    pub fn seconds(self) -> u64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3_600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 604_800,
        }
    }
}

/// Run after this long from now: `{"value": 2, "unit": "hour"}`.
///
/// Shown in answers (a schedule's `interval`) as well as sent in requests:
/// read on its own it ignores unknown fields; the requests that hold one
/// refuse them (see [`crate::strict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delay {
    /// At most ten years in all; 316,224,000 is ten years in seconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 316224000))]
    pub value: u64,
    pub unit: TimeUnit,
}

impl Delay {
    /// The delay in seconds, or `None` if it overflows.
    pub fn as_seconds(&self) -> Option<u64> {
        self.value.checked_mul(self.unit.seconds())
    }
}

/// HTTP methods a push target may be called with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

words!(HttpMethod {
    Get = "GET",
    Post = "POST",
    Put = "PUT",
    Patch = "PATCH",
    Delete = "DELETE",
});

/// The endpoint push delivery calls. Read on its own, it ignores unknown
/// fields (it is in answers); requests refuse them (see [`crate::strict`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HttpTarget {
    /// An absolute http(s) URL with a host, at most 2,048 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "https://your-app.com/hooks/chronos",
            format = "uri",
            min_length = 1,
            max_length = 2048
        )
    )]
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra request headers, sent as given: at most 50, each an HTTP token
    /// for a name and a value without control characters (tab allowed).
    /// Answers show a sensitive one's value as `***redacted***`
    /// ([`crate::headers`]); no request may give it that value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::headers))]
    pub headers: BTreeMap<String, String>,
}

/// How a job reaches the code that runs it: `pull` (a worker leases it; the
/// default) or `push` (the server calls an HTTP endpoint). Read on its own,
/// it ignores unknown fields (it is in every job answer); requests refuse
/// them (see [`crate::strict`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", try_from = "DeliveryFields")]
pub enum Delivery {
    #[default]
    Pull,
    Push {
        http: HttpTarget,
        /// The signing secret every request is signed with; unsigned if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_secret_id: Option<uuid::Uuid>,
    },
}

impl Delivery {
    /// `pull` or `push`: the delivery's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Pull => "pull",
            Delivery::Push { .. } => "push",
        }
    }
}

/// What a delivery object may hold, read as a plain struct so that errors
/// inside `http` keep their full path (serde's internally tagged enums lose
/// it). [`crate::strict`] has the request side's twin, which refuses
/// unknown fields.
#[derive(Deserialize)]
pub(crate) struct DeliveryFields {
    #[serde(rename = "type")]
    pub(crate) kind: DeliveryKind,
    pub(crate) http: Option<HttpTarget>,
    pub(crate) signing_secret_id: Option<uuid::Uuid>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryKind {
    Pull,
    Push,
}

impl TryFrom<DeliveryFields> for Delivery {
    type Error = &'static str;
    fn try_from(f: DeliveryFields) -> Result<Self, Self::Error> {
        match (f.kind, f.http) {
            (DeliveryKind::Pull, None) if f.signing_secret_id.is_none() => Ok(Delivery::Pull),
            (DeliveryKind::Pull, _) => Err(
                "`http` and `signing_secret_id` are only for push delivery; leave them out, or use \"type\": \"push\"",
            ),
            (DeliveryKind::Push, Some(http)) => Ok(Delivery::Push {
                http,
                signing_secret_id: f.signing_secret_id,
            }),
            (DeliveryKind::Push, None) => Err("push delivery needs `http` with at least a `url`"),
        }
    }
}

/// `POST /v1/jobs`.
///
/// `delay` and `scheduled_for` exclude each other (the schema says so with
/// `not`). Beyond its schema (422 `validation_failed`): `scheduled_for` is
/// in the future and neither is more than ten years ahead; a push target is
/// an http(s) URL the SSRF guard allows, no sensitive header of it has the
/// value `***redacted***` (what answers show in its place), and its
/// `signing_secret_id` names one of the organization's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// A label for people: 1 to 255 characters, not blank, no control
    /// characters.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::label, required = true, example = "Send follow-up")
    )]
    pub name: Option<String>,
    /// The handler a worker registered, e.g. `send-email`: 1 to 255
    /// characters without commas, white space or control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::handler, required = true)
    )]
    pub handler: Option<String>,
    /// Any JSON; handed to the handler as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Json))]
    pub payload: Option<Value>,
    /// Run after this long. Not with `scheduled_for`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::delay"
    )]
    pub delay: Option<Delay>,
    /// Run at this moment, which must be in the future. Not with `delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
    /// 1 to 255 characters, unique per organization while the job exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub idempotency_key: Option<String>,
    /// Seconds one attempt may run: 1 to 86,400. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 86400, default = 30)
    )]
    pub timeout: Option<u32>,
    /// Retries after the first attempt: 0 to 100. Default 3; 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100, default = 3))]
    pub max_retries: Option<u32>,
    /// 1 to 128 letters, digits, `-`, `_`, `.` or `:`. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9._:-]+$",
            default = "default",
            extensions(("x-rule" = json!("must be letters, digits, '-', '_', '.' or ':'")))
        )
    )]
    pub queue: Option<String>,
    /// Groups the job with others of its queue for the queue's per-key
    /// limits (`key_concurrency`, `key_rate_limit`), e.g. a customer's id:
    /// 1 to 255 characters. A job without one is not held by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub concurrency_key: Option<String>,
    /// Higher runs first. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = -2147483648, maximum = 2147483647, default = 0)
    )]
    pub priority: Option<i32>,
    /// Default `{"type": "pull"}`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::delivery"
    )]
    pub delivery: Option<Delivery>,
}

/// A job as the server shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: Uuid,
    pub name: String,
    pub handler: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Json))]
    pub payload: Value,
    pub status: JobStatus,
    pub queue: String,
    /// The key of the queue's per-key limits, if the job has one.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    pub priority: i32,
    pub delivery: Delivery,
    /// When the job is (or was) due.
    pub run_at: Timestamp,
    /// Attempts started so far.
    pub attempt: u32,
    pub max_retries: u32,
    /// Seconds one attempt may run.
    pub timeout: u32,
    pub schedule_id: Option<Uuid>,
    /// For a schedule's fire: the due time it was made for (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// Why a `scheduled` job is held rather than due: `endpoint_disabled`
    /// while its push endpoint is disabled (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_reason: Option<String>,
    /// The fan-out a delivery is part of (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out_id: Option<Uuid>,
    /// The queue a delivery's outcome is published to (shown only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_queue_id: Option<Uuid>,
    /// What the handler returned, once completed.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Json))]
    pub result: Option<Value>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// How a push target's answer is written in an execution or a callback:
/// as the text it was, or, when it was not UTF-8, base64 (standard, with
/// padding) of its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BodyEncoding {
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "base64")]
    Base64,
}

words!(BodyEncoding {
    Utf8 = "utf-8",
    Base64 = "base64",
});

/// One attempt at running a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    pub id: Uuid,
    pub job_id: Uuid,
    pub attempt: u32,
    pub status: ExecutionStatus,
    /// The worker that held the lease (pull delivery).
    pub worker_id: Option<String>,
    /// The endpoint's answer (push delivery).
    pub http_status: Option<u16>,
    pub response_body: Option<String>,
    /// True when `response_body` was cut to the size limit.
    pub response_truncated: bool,
    /// How `response_body` is written, when there is one: `utf-8`, or
    /// `base64` for an answer that is not UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body_encoding: Option<BodyEncoding>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// The most jobs one `POST /v1/jobs/batch` may create.
pub const MAX_BATCH_JOBS: usize = 1000;

/// `POST /v1/jobs/batch`: up to [`MAX_BATCH_JOBS`] jobs, each as `POST
/// /v1/jobs` takes it, created in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateJobs {
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub jobs: Vec<CreateJob>,
}

/// What became of one job of a batch: `{"job": {…}}` if it was created,
/// `{"error": {…}}` (as `POST /v1/jobs` would have answered) if not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchItem {
    Job(Box<Job>),
    Error(crate::ErrorDetail),
}

/// The answer to `POST /v1/jobs/batch`: one item per requested job, in
/// request order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchCreated {
    pub data: Vec<BatchItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_defaults_and_push_shape() {
        let d: Delivery =
            serde_json::from_str(r#"{"type":"push","http":{"url":"https://x.test/h"}}"#).unwrap();
        assert_eq!(
            d,
            Delivery::Push {
                http: HttpTarget {
                    url: "https://x.test/h".into(),
                    method: HttpMethod::Post,
                    headers: BTreeMap::new()
                },
                signing_secret_id: None,
            }
        );
        assert_eq!(
            serde_json::to_value(Delivery::Pull).unwrap(),
            serde_json::json!({"type": "pull"})
        );
    }

    #[test]
    fn create_job_rejects_unknown_fields_at_every_depth() {
        let refused = |body: &str, field: &str| {
            let err = serde_json::from_str::<CreateJob>(body).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("unknown field `{field}`")),
                "{body}: {err}"
            );
        };
        refused(r#"{"name":"a","hander":"x"}"#, "hander");
        refused(
            r#"{"name":"a","delivery":{"type":"pull","when":1}}"#,
            "when",
        );
        refused(
            r#"{"name":"a","delivery":{"type":"push","http":{"url":"https://x.test","verb":"GET"}}}"#,
            "verb",
        );
        refused(
            r#"{"name":"a","delay":{"value":1,"unit":"hour","jitter":1}}"#,
            "jitter",
        );
        let err = serde_json::from_str::<CreateJob>(
            r#"{"name":"a","delivery":{"type":"pull","http":{"url":"x"}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("only for push"), "{err}");
        let job: CreateJob = serde_json::from_str(
            r#"{"name":"a","delay":null,"delivery":{"type":"push","http":{"url":"https://x.test"}}}"#,
        )
        .unwrap();
        assert_eq!(job.delay, None);
        assert_eq!(job.delivery.unwrap().kind(), "push");
    }

    #[test]
    fn shown_objects_ignore_unknown_fields() {
        let d: Delivery = serde_json::from_str(
            r#"{"type":"push","http":{"url":"https://x.test/h","added_later":1},"added_later":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(d.kind(), "push");
        let d: Delivery = serde_json::from_str(r#"{"type":"pull","when":1}"#).unwrap();
        assert_eq!(d, Delivery::Pull);
        let err =
            serde_json::from_str::<Delivery>(r#"{"type":"pull","http":{"url":"x"}}"#).unwrap_err();
        assert!(err.to_string().contains("only for push"), "{err}");
        let delay: Delay =
            serde_json::from_str(r#"{"value":2,"unit":"hour","added_later":[1]}"#).unwrap();
        assert_eq!(delay.as_seconds(), Some(7200));
    }

    #[test]
    fn status_round_trips_through_strings() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
