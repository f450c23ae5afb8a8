//! Leases: how a worker takes a job, and acks, fails or extends it.
//! These are the bodies of the HTTP worker endpoints; the WebSocket protocol
//! carries the same fields.

use crate::{Job, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The right to run one attempt of a job until `expires_at`. The token is a
/// fencing token: new for every attempt, and the only way to ack, fail or
/// extend it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub token: Uuid,
    pub expires_at: Timestamp,
}

/// A job handed to a worker, with its lease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeasedJob {
    pub job: Job,
    pub lease: Lease,
}

/// `POST /v1/workers/poll`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    /// The handlers this worker runs: 1 to 100 names, each as a job's
    /// `handler`.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::handlers)
    )]
    pub handlers: Vec<String>,
    /// At most this many jobs in one answer, 1 to 100. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100, default = 1))]
    pub max_jobs: Option<u32>,
    /// Wait up to this long for a job when none is due, 0 to 60. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 60, default = 0))]
    pub wait_seconds: Option<u32>,
    /// A name for this worker, shown on its executions: 1 to 255
    /// characters without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]+$",
            extensions(("x-rule" = json!("must not hold control characters")))
        )
    )]
    pub worker_id: Option<String>,
}

/// `POST /v1/leases/ack`: the attempt succeeded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub token: Uuid,
    /// Any JSON; stored on the job as `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Json))]
    pub result: Option<Value>,
}

/// `POST /v1/leases/fail`: the attempt failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub token: Uuid,
    /// What went wrong, stored as the job's `last_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// False: fail for good, without retrying. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Retry after this many seconds instead of the backoff: 0 to
    /// 2,592,000 (30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2592000))]
    pub retry_in: Option<u32>,
}

/// `POST /v1/leases/extend`: the attempt may run `seconds` more from now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub token: Uuid,
    /// 1 to 86,400.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub seconds: u32,
}
