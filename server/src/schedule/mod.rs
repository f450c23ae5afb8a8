//! Schedules: recurring jobs. A schedule says when it is due ([`timing`]:
//! cron or interval, in an IANA timezone) and what each fire's job is
//! ([`JobTemplate`]). [`fire`] decides what one scheduler pass makes of a
//! due schedule (catch-up after downtime, overlap with a run still going);
//! the scheduler that runs those passes is a lease engine service
//! (`lease/scheduler.rs`). A fire is an ordinary job with
//! `schedule_id` set, delivered by pull or push like any other, and made
//! unique in the store by (schedule, due time): two server processes, a
//! restart or a retried pass cannot fire the same due time twice.
//!
//! Like `crate::job`, this module holds no I/O.

pub mod fire;
pub mod timing;

use crate::job::{NewJob, RunAt};
use chronos_proto::{CatchUp, Delay, Delivery, JobStatus, Overlap, ScheduleStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use timing::{Timing, TimingError};
use uuid::Uuid;

/// When a schedule is due, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimingSpec {
    /// A cron expression (5 fields, 6 with seconds first, or `@daily` …).
    Cron { expr: String },
    /// Every `interval`, counted from the schedule's anchor; `preset` is
    /// Krafter's name for it (`every_5m`) when it was given as one.
    Interval {
        interval: Delay,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preset: Option<String>,
    },
}

impl TimingSpec {
    /// The due times this spec gives in `timezone`, intervals counted from
    /// `anchor`.
    pub fn timing(&self, timezone: &str, anchor: Timestamp) -> Result<Timing, TimingError> {
        match self {
            TimingSpec::Cron { expr } => Timing::cron(expr, timezone),
            TimingSpec::Interval { interval, .. } => {
                Timing::interval(interval.value, interval.unit, timezone, anchor.0)
            }
        }
    }

    /// Krafter's presets, as intervals.
    pub fn preset(name: &str) -> Option<Delay> {
        timing::preset_interval(name).map(|(value, unit)| Delay { value, unit })
    }
}

/// What each fire's job is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// `None` for a `url` schedule: its job is a message, `payload` its body.
    pub handler: Option<String>,
    pub payload: Value,
    pub delivery: Delivery,
    pub queue: String,
    /// The key of the queue's per-key limits each job carries. Stored in
    /// its own column (`schedules.concurrency_key`), as jobs store theirs,
    /// not in the template's JSON.
    #[serde(skip)]
    pub concurrency_key: Option<String>,
    pub priority: i32,
    pub max_retries: u32,
    pub timeout_seconds: u32,
}

impl JobTemplate {
    /// A job of this template for schedule `schedule_id`, due now.
    pub fn job(&self, name: &str, schedule_id: Uuid) -> NewJob {
        NewJob {
            id: Uuid::now_v7(),
            name: name.to_string(),
            handler: self.handler.clone(),
            payload: self.payload.clone(),
            queue: self.queue.clone(),
            concurrency_key: self.concurrency_key.clone(),
            priority: self.priority,
            delivery: self.delivery.clone(),
            run_at: RunAt::Now,
            max_retries: Some(self.max_retries),
            timeout_seconds: self.timeout_seconds,
            schedule_id: Some(schedule_id),
            idempotency_key: None,
            follow: Default::default(),
        }
    }
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRecord {
    pub id: Uuid,
    pub name: String,
    pub status: ScheduleStatus,
    pub timing: TimingSpec,
    pub timezone: String,
    pub template: JobTemplate,
    pub catch_up: CatchUp,
    pub overlap: Overlap,
    pub failure_notify: bool,
    /// Intervals count from here.
    pub anchor_at: Timestamp,
    /// When it fires next; `None` unless active.
    pub next_run_at: Option<Timestamp>,
    /// A due time held back (`overlap: wait`) until the last job ends.
    pub waiting_fire_at: Option<Timestamp>,
    pub last_run_at: Option<Timestamp>,
    pub last_job_id: Option<Uuid>,
    /// The status of the last job, read with the schedule.
    pub last_status: Option<JobStatus>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One job a scheduler pass creates for a due time (`fire_at`), unique per
/// schedule and due time.
#[derive(Clone, Debug)]
pub struct Fire {
    pub fire_at: Timestamp,
    pub job: NewJob,
}

/// What a scheduler pass does with one due schedule.
#[derive(Clone, Debug, Default)]
pub struct FirePlan {
    pub fires: Vec<Fire>,
    pub next_run_at: Option<Timestamp>,
    pub waiting_fire_at: Option<Timestamp>,
}

/// Decides a due schedule's [`FirePlan`] at the database's `now`.
pub type PlanFn = fn(&ScheduleRecord, Timestamp) -> FirePlan;
