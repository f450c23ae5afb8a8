//! Schedules: recurring jobs, by cron expression or interval, in an IANA
//! timezone. Each fire creates an ordinary job with `schedule_id` set.
//!
//! `POST /v1/schedules` takes three shapes, one per product document:
//!
//! - Chronos (seed 000): `name`, `handler`, `payload`, `interval {value,
//!   unit}` (or `cron`), `delivery` (pull or push).
//! - Krafter (seed 002): `schedule_type` `interval` with a preset
//!   `schedule` (`every_5m` …) or `cron` with the expression in `schedule`,
//!   and a push target as `url`, `method`, `headers`, `timeout_ms`,
//!   `max_retries`.
//! - CronPilot (seed 004): `cron`, `url`, `method`, `headers`, `body` (sent
//!   as given), `timezone`, `retries` (default 0).
//!
//! The server decides which shape a body is once, by the names it uses
//! (docs/schedules.md, "Request shapes"), and gives each shape its own
//! defaults; a body naming one thing in two shapes' words is refused.
//!
//! A schedule has either a `handler` (pull, or push with the Chronos body)
//! or a top-level `url` (push with its own body). The answer is one shape,
//! [`Schedule`], whichever request created it; Krafter's own routes
//! (`/api/v1/cron/jobs`) answer in Krafter's shape.

use crate::{Delay, Delivery, HttpMethod, JobStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most times `GET /v1/schedules/{id}/next-runs` shows.
pub const MAX_NEXT_RUNS: usize = 100;
/// The most missed fires `catch_up: "all"` makes after downtime.
pub const MAX_CATCH_UP: usize = 100;

/// Cron expression or interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    Cron,
    Interval,
}

/// `active` fires; `paused` does not until resumed; `archived` never
/// fires again but stays readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Active,
    Paused,
    Archived,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Active => "active",
            ScheduleStatus::Paused => "paused",
            ScheduleStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ScheduleStatus::Active),
            "paused" => Some(ScheduleStatus::Paused),
            "archived" => Some(ScheduleStatus::Archived),
            _ => None,
        }
    }
}

/// What a schedule does about due times missed while no server ran:
/// `skip` (fire only at the next future time), `one` (fire once now for all
/// of them), `all` (fire each, at most [`MAX_CATCH_UP`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    #[default]
    Skip,
    One,
    All,
}

/// What a fire does while the schedule's last job is still unfinished:
/// `allow` (fire anyway), `skip` (skip this fire), `wait` (fire once, as
/// soon as the last job ends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    #[default]
    Allow,
    Skip,
    Wait,
}

/// `POST /v1/schedules` and `PUT /v1/schedules/{id}`: any one of the three
/// shapes (see the module docs). `PATCH` takes the same fields, each
/// optional, and changes only those given.
///
/// The `schema(...)` attributes are the rules the server holds a request
/// to (the OpenAPI document is checked before a handler runs); `name` is
/// `Option` only so that a `PATCH` may leave it out, and the document
/// requires it at creation. Rules between fields (one timing, one target,
/// one shape) are the handler's, answered 422.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// A label for people: 1 to 255 characters, not only white space, no
    /// control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::label, required = true)
    )]
    pub name: Option<String>,
    /// The handler each fire's job runs (pull, or push with the Chronos
    /// body): 1 to 255 characters without commas, white space or control
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::handler_or_null)
    )]
    pub handler: Option<String>,
    /// Any JSON, handed to each fire's job as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Json))]
    pub payload: Option<Value>,
    /// Every `{value, unit}` (unit `second` … `week`): at least a second,
    /// at most 10 years.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::delay"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<IntervalRequest>))]
    pub interval: Option<Delay>,
    /// A cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Krafter: `interval` (with a preset in `schedule`) or `cron` (with the
    /// expression in `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_type: Option<ScheduleType>,
    /// Krafter: `every_1m`, `every_5m`, `every_15m`, `every_30m`, `every_1h`,
    /// `every_6h`, `every_12h`, `every_1d`, or a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA name. Default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// How a handler's jobs are delivered. Default pull.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::delivery"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = request_delivery))]
    pub delivery: Option<Delivery>,
    /// A push target, called with `body`: instead of a handler. An http(s)
    /// URL with a host (https and a public address unless the server allows
    /// private targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = "uri"))]
    pub url: Option<String>,
    /// Default `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// Sent with each request (with `url`): at most 50, each a valid HTTP
    /// header name and value. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = request_headers))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as given on each fire (with `url`). At most 102,400 bytes
    /// (UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 102400))]
    pub body: Option<String>,
    /// Signs every request (with `url`; a handler's push delivery names
    /// its own in `delivery.signing_secret_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_id: Option<Uuid>,
    /// Seconds one attempt may run, 1 to 86,400. Default 30. Not in
    /// Krafter's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub timeout: Option<u32>,
    /// Krafter: milliseconds, 1 to 86,400,000, rounded up to whole
    /// seconds. Default 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400000))]
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt, 0 to 100. Default 3 (Chronos,
    /// Krafter), 0 for CronPilot's shape (a `url` with `cron` or
    /// `interval`). Not with `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub max_retries: Option<u32>,
    /// CronPilot's name for `max_retries` (0 to 100); only in CronPilot's
    /// shape (not with `handler`, Krafter's names or `max_retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub retries: Option<u32>,
    /// 1 to 128 letters, digits, `-`, `_`, `.` or `:`. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = "^[A-Za-z0-9_.:-]*$",
            extensions(("x-rule" = json!("may hold only letters, digits, '-', '_', '.' and ':'")))
        )
    )]
    pub queue: Option<String>,
    /// The key each of its jobs (fired or triggered) carries for its
    /// queue's per-key limits (`key_concurrency`, `key_rate_limit`), e.g. a
    /// customer's id: 1 to 255 characters. Default none: the jobs are not
    /// held by them. A `PATCH` reads null as absent: a `PUT` without it
    /// removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub concurrency_key: Option<String>,
    /// Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = -2147483648, maximum = 2147483647)
    )]
    pub priority: Option<i32>,
    /// Default `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    /// Default `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// Default true; false creates the schedule paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Krafter: kept and shown; notifications are not sent yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_notify: Option<bool>,
}

/// A schedule's `interval` as a request gives it (the schema only; the
/// server reads it as a `Delay`): every `value` `unit`s. `value` is at least 1 and
/// at most 316,224,000 (10 years in seconds); with a larger unit the whole
/// interval may be at most 10 years too, which the server checks (422).
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalRequest {
    #[schema(minimum = 1, maximum = 316224000)]
    pub value: u64,
    pub unit: crate::TimeUnit,
}

/// The schema of a push target's `headers` in a request (null: none): at
/// most 50, each name an HTTP token and each value free of control
/// characters but tab, as the server can send them (`http::HeaderName`,
/// `HeaderValue`). A sensitive one's value sent back redacted keeps the
/// stored one ([`crate::headers::restored`]).
#[cfg(feature = "openapi")]
pub fn request_headers() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let mut headers = headers_schema();
    headers["type"] = serde_json::json!(["object", "null"]);
    serde_json::from_value(headers).expect("a valid schema")
}

#[cfg(feature = "openapi")]
fn headers_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "description": format!(
            "Sent with each request: at most 50 headers, each name an HTTP token (letters, digits and !#$%&'*+-.^_`|~), each value without control characters but tab. Default none. Answers show the value of a sensitive header as `{REDACTED}`: {}. A `PUT` or `PATCH` sending `{REDACTED}` back as a sensitive header's value keeps the value stored under that name; with none stored (and on `POST`), it is refused (422).",
            crate::openapi::SENSITIVE_HEADERS,
            REDACTED = crate::headers::REDACTED,
        ),
        "maxProperties": 50,
        "propertyNames": {
            "type": "string",
            "maxLength": 65535,
            "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
        },
        "additionalProperties": {
            "type": "string",
            "pattern": "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$",
        },
    })
}

/// The schema of a handler's `delivery` in a schedule request, as the
/// server reads it (`crate::strict::delivery`): no unknown fields at any
/// depth, `http` only with push, and null for absent. ([`Delivery`]'s own
/// schema is the answers' side, which a newer server may extend.)
#[cfg(feature = "openapi")]
pub fn request_delivery() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    serde_json::from_value(serde_json::json!({
        "description": "How a handler's jobs are delivered: `{\"type\": \"pull\"}` (the default: workers lease them) or `{\"type\": \"push\", \"http\": {\"url\", \"method\", \"headers\"}, \"signing_secret_id\"}` (the server calls `http.url`, an https URL with a public host).",
        // Push first: the contract explains a refusal by the first branch
        // that fails on more than a type, and a push body's mistakes are
        // the ones worth naming.
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "http"],
                "properties": {
                    "type": {"type": "string", "enum": ["push"]},
                    "http": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": {"type": "string", "format": "uri"},
                            "method": {"$ref": "#/components/schemas/HttpMethod"},
                            "headers": headers_schema(),
                        },
                        "additionalProperties": false,
                    },
                    "signing_secret_id": {
                        "type": ["string", "null"],
                        "format": "uuid",
                        // The format says it; the pattern helps generators
                        // (schemathesis) that skip formats in nested objects.
                        "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                        "x-rule": "must be a UUID",
                    },
                },
                "additionalProperties": false,
            },
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["pull"]},
                    "http": {"type": "null"},
                    "signing_secret_id": {"type": "null"},
                },
                "additionalProperties": false,
            },
            {"type": "null"},
        ],
    }))
    .expect("a valid schema")
}

/// A schedule as `/v1/schedules` shows it: one shape, whichever request
/// shape created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub id: Uuid,
    pub name: String,
    /// `active` fires; `paused` and `archived` do not.
    pub status: ScheduleStatus,
    /// The handler each fire's job runs; `null` for a `url` schedule.
    pub handler: Option<String>,
    /// Handed to each fire's job: any JSON (a `url` schedule's: its
    /// `body`, or null).
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub payload: Value,
    /// The cron expression, for a cron schedule.
    pub cron: Option<String>,
    /// Every `{value, unit}`, for an interval schedule (a Krafter preset
    /// shows as its interval: `every_5m` is 5 minutes).
    pub interval: Option<Delay>,
    pub timezone: String,
    pub delivery: Delivery,
    /// The push target, when there is one (a `url` schedule's, or a
    /// handler's `delivery.http`).
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    /// The push target's headers, a sensitive one's value (`Authorization`,
    /// `Cookie`, `Proxy-Authorization`, `X-Api-Key`, or a name containing
    /// `token` or `secret`) shown as `***redacted***`; they are sent as
    /// stored.
    pub headers: Option<BTreeMap<String, String>>,
    /// The body sent on each fire (`url` schedules).
    pub body: Option<String>,
    pub signing_secret_id: Option<Uuid>,
    /// Seconds one attempt may run.
    pub timeout: u32,
    /// Retries after a failed attempt.
    pub max_retries: u32,
    pub queue: String,
    /// The key each of its jobs carries for its queue's per-key limits, if
    /// it has one.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    pub priority: i32,
    pub catch_up: CatchUp,
    pub overlap: Overlap,
    pub failure_notify: bool,
    /// The status of the last fire's job.
    pub last_status: Option<JobStatus>,
    pub last_run_at: Option<Timestamp>,
    /// When it fires next; null unless active.
    pub next_run_at: Option<Timestamp>,
    /// CronPilot's name for `next_run_at`: the same time.
    pub next_fire_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// On create, when its push target's domain is unverified and the
    /// organization's plan requires verification: that target takes ten
    /// jobs a day until the domain is verified (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// A fire of a schedule that made no job, and why: its organization's
/// quota was spent (`GET /v1/schedules/{id}/skipped-runs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedRun {
    pub id: Uuid,
    pub schedule_id: Uuid,
    /// The due time that was skipped.
    pub fire_at: Timestamp,
    /// What a create at that moment would have answered: `quota_exceeded`
    /// (with `window`, `limit`, `used`, `resets_at`) or
    /// `unverified_domain_limit` (with `domain` too).
    pub error: crate::ErrorDetail,
    pub created_at: Timestamp,
}

/// `GET /v1/schedules/{id}/next-runs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NextRuns {
    pub data: Vec<Timestamp>,
}
