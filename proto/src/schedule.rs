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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// A label for people. Required.
    pub name: Option<String>,
    /// The handler each fire's job runs (pull, or push with the Chronos body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Handed to each fire's job as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Option<Value>,
    /// Every `{value, unit}` (unit `second` … `week`), at least a second.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::delay"
    )]
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
    pub delivery: Option<Delivery>,
    /// A push target, called with `body`: instead of a handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Default `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as given on each fire (with `url`). At most 102,400 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Signs every request (with `url`; a handler's push delivery names
    /// its own in `delivery.signing_secret_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_id: Option<Uuid>,
    /// Seconds one attempt may run. Default 30. Not in Krafter's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Krafter: milliseconds, rounded up to whole seconds. Default 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt. Default 3 (Chronos, Krafter), 0 for
    /// CronPilot's shape (a `url` with `cron` or `interval`). Not with
    /// `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// CronPilot's name for `max_retries`; only in CronPilot's shape (not
    /// with `handler`, Krafter's names or `max_retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Handed to each fire's job (a `url` schedule's: its `body`, or null).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
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
    pub headers: Option<BTreeMap<String, String>>,
    /// The body sent on each fire (`url` schedules).
    pub body: Option<String>,
    pub signing_secret_id: Option<Uuid>,
    /// Seconds one attempt may run.
    pub timeout: u32,
    /// Retries after a failed attempt.
    pub max_retries: u32,
    pub queue: String,
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
}

/// `GET /v1/schedules/{id}/next-runs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NextRuns {
    pub data: Vec<Timestamp>,
}
