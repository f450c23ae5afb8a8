//! `/api/v1/cron/jobs`: Krafter's routes and envelope (seed 002) over the
//! same schedules and the same operations as `/v1/schedules`
//! ([`super::schedules`]); this module only reads Krafter's request and
//! shows the answer as Krafter does.
//!
//! - Answers are wrapped in `{"data": …}` and have exactly Krafter's
//!   fields; lists add `next_cursor` (Chronos' pagination: `?limit=`,
//!   `?cursor=`).
//! - Bodies take Krafter's fields only, read as the Krafter dialect
//!   (`max_retries` 3, `timeout_ms` 30000 by default). `PUT` changes the
//!   fields it gives, as the native `PATCH` does.
//! - `last_status` and an execution's `status` are Krafter's words:
//!   `success` or `failure`. Attempts still running, and attempts a worker
//!   handed back unstarted (`released`), are not executions in Krafter's
//!   sense and are not listed; `last_status` is null while the last run is
//!   unfinished.
//! - Errors keep Chronos' `{"error": {"code", "message"}}`.
//! - Scopes are Chronos': `jobs:write` to change, `jobs:read` to read
//!   (Krafter's `cron:write` is `jobs:write`).

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::pagination::{Cursor, PageQuery, page_request};
use super::schedules::{self, Dialect, partial::partial, push_target, says};
use crate::schedule::ScheduleRecord;
use crate::schedule::TimingSpec;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::headers::redacted;
use chronos_proto::{
    CreateSchedule, ErrorBody, Execution, ExecutionStatus, HttpMethod, JobStatus, List,
    ScheduleStatus, ScheduleType, Scope, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_cron_job, list_cron_jobs))
        .routes(routes!(get_cron_job, put_cron_job, delete_cron_job))
        .routes(routes!(cron_job_executions))
        .routes(routes!(trigger_cron_job))
        .routes(routes!(pause_cron_job))
        .routes(routes!(resume_cron_job))
}

/// Krafter's one-object envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `{"ok": true}`: the answer to an action without an object to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

const DONE: Done = Done { ok: true };

/// How a run ended, in Krafter's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

/// A cron job as Krafter shows it: a schedule, in seed 002's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronJob {
    pub id: Uuid,
    pub name: String,
    pub schedule_type: ScheduleType,
    /// The preset (`every_5m` …) or the cron expression; null for an
    /// interval created natively that is no preset.
    pub schedule: Option<String>,
    pub timezone: String,
    /// The push target; null for a schedule delivered to workers (pull).
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    /// Sent on every run, a sensitive one's value (`Authorization`,
    /// `Cookie`, `Proxy-Authorization`, `X-Api-Key`, or a name containing
    /// `token` or `secret`) shown as `***redacted***`.
    pub headers: Option<BTreeMap<String, String>>,
    /// Whole seconds, shown in milliseconds.
    pub timeout_ms: u64,
    pub max_retries: u32,
    /// Whether it fires: false when paused (or archived).
    pub enabled: bool,
    pub failure_notify: bool,
    /// How the last run ended; null before the first, and while the last is
    /// unfinished (waiting, running, or waiting for a retry).
    pub last_status: Option<Outcome>,
    pub last_run_at: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What pause and resume answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronJobState {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
}

/// One ended attempt of a job a cron job created.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronExecution {
    pub id: Uuid,
    /// `success` (completed) or `failure` (failed or timed out).
    pub status: Outcome,
    pub http_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// 1 for the first attempt, 2 for the first retry …
    pub attempt: u32,
    pub duration_ms: Option<u64>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// `POST /api/v1/cron/jobs` (`name`, `schedule_type`, `schedule` and `url`
/// required) and, as [`CronJobUpdate`], `PUT /api/v1/cron/jobs/{id}` (the
/// fields given change). The fields are `Option` for `PUT`; the document
/// requires the four at creation. The limits are `CreateSchedule`'s, for
/// the same fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CronJobRequest {
    /// 1 to 255 characters, not only white space, no control characters.
    #[schema(schema_with = chronos_proto::openapi::label, required = true)]
    pub name: Option<String>,
    /// `interval` (a preset in `schedule`) or `cron` (the expression).
    #[schema(value_type = ScheduleType, required = true)]
    pub schedule_type: Option<ScheduleType>,
    /// With `interval`: `every_1m`, `every_5m`, `every_15m`, `every_30m`,
    /// `every_1h`, `every_6h`, `every_12h`, `every_1d`. With `cron`: a cron
    /// expression.
    #[schema(value_type = String, required = true)]
    pub schedule: Option<String>,
    /// IANA name. Default `UTC`.
    pub timezone: Option<String>,
    /// The http(s) URL called on each run (https and a public address
    /// unless the server allows private targets).
    #[schema(value_type = String, required = true, format = "uri")]
    pub url: Option<String>,
    /// Default `POST`.
    pub method: Option<HttpMethod>,
    /// Default `{}`.
    #[schema(schema_with = chronos_proto::schedule::request_headers)]
    pub headers: Option<BTreeMap<String, String>>,
    /// 1 to 86,400,000. Default 30000; rounded up to whole seconds.
    #[schema(minimum = 1, maximum = 86400000)]
    pub timeout_ms: Option<u64>,
    /// 0 to 100. Default 3.
    #[schema(minimum = 0, maximum = 100)]
    pub max_retries: Option<u32>,
    /// Default true; false creates it paused.
    pub enabled: Option<bool>,
    /// Default false. Kept and shown; notifications are not sent yet.
    pub failure_notify: Option<bool>,
}

/// `PUT /api/v1/cron/jobs/{id}`'s body: [`CronJobRequest`]'s fields and
/// rules, none required.
pub struct CronJobUpdate;

impl PartialSchema for CronJobUpdate {
    fn schema() -> RefOr<Schema> {
        partial::<CronJobRequest>(
            "`PUT /api/v1/cron/jobs/{id}`: the fields of `CronJobRequest`, with the same rules, each optional; only the fields given change (null is the same as absent).",
        )
    }
}

impl ToSchema for CronJobUpdate {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        CronJobRequest::schemas(schemas);
    }
}

/// The rules of a Krafter request that no schema states.
const RULES: &str = "A rule between fields or beyond the schema, `field` naming it. `validation_failed`: with `schedule_type` `interval`, `schedule` is a preset (`every_1m` … `every_1d`); with `cron`, a cron expression that parses and fires within ten years (a `PUT` that gives `schedule_type` gives `schedule` too); a known IANA `timezone`; a `url` that is an https URL with a host (plain http only where the server allows private targets); no sensitive header's value `***redacted***` but one a `PUT` sends back for a header the cron job has (it keeps the stored value). `ssrf_blocked`: the `url`'s host is not a public address";

impl CronJobRequest {
    /// The same request in the native type, where only Krafter's names are set.
    fn native(self) -> CreateSchedule {
        CreateSchedule {
            name: self.name,
            schedule_type: self.schedule_type,
            schedule: self.schedule,
            timezone: self.timezone,
            url: self.url,
            method: self.method,
            headers: self.headers,
            timeout_ms: self.timeout_ms,
            max_retries: self.max_retries,
            enabled: self.enabled,
            failure_notify: self.failure_notify,
            ..CreateSchedule::default()
        }
    }
}

/// Create a cron job.
#[utoipa::path(
    post, path = "/api/v1/cron/jobs", tag = "krafter",
    request_body = CronJobRequest,
    responses(
        (status = 201, description = "`{\"data\": cron job}`, with its first `next_run_at`", body = Data<CronJob>),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 422, description = RULES, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn create_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CronJobRequest>,
) -> Result<(StatusCode, Json<Data<CronJob>>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let created = schedules::create(&state, &auth, req.native(), Dialect::Krafter).await?;
    Ok((StatusCode::CREATED, data(to_cron_job(&created))))
}

/// List cron jobs, newest first.
#[utoipa::path(
    get, path = "/api/v1/cron/jobs", tag = "krafter",
    params(PageQuery),
    responses(
        (status = 200, description = "`{\"data\": [cron job], \"next_cursor\": …}`", body = List<CronJob>),
        (status = 403, description = says::READ, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_cron_jobs(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<CronJob>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let page = schedules::list(&state, &auth, None, page).await?;
    Ok(Json(List {
        data: page.items.iter().map(to_cron_job).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// Get a cron job.
#[utoipa::path(
    get, path = "/api/v1/cron/jobs/{id}", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    responses(
        (status = 200, body = Data<CronJob>),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Data<CronJob>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    Ok(data(to_cron_job(
        &schedules::find(&state, &auth, &id).await?,
    )))
}

/// Change a cron job: the fields given change, the others stay.
///
/// A new `schedule_type`/`schedule` replaces the timing and counts from
/// now; `enabled` pauses or resumes it. A sensitive header sent back as
/// `***redacted***` (as answers show it) keeps its stored value.
#[utoipa::path(
    put, path = "/api/v1/cron/jobs/{id}", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    request_body = CronJobUpdate,
    responses(
        (status = 200, body = Data<CronJob>),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
        (status = 422, description = RULES, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn put_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CronJobRequest>,
) -> Result<Json<Data<CronJob>>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let updated = schedules::update(&state, &auth, &id, req.native(), Dialect::Krafter).await?;
    Ok(data(to_cron_job(&updated)))
}

/// Delete a cron job. The runs it made stay (as jobs).
#[utoipa::path(
    delete, path = "/api/v1/cron/jobs/{id}", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    responses(
        (status = 200, description = "`{\"ok\": true}`", body = Done),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn delete_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Done>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    schedules::delete(&state, &auth, &id).await?;
    Ok(Json(DONE))
}

/// A cron job's execution history, newest first: its ended attempts.
///
/// Running attempts, and attempts handed back unstarted by a worker, are not
/// listed, so a page may hold fewer than `limit` while `next_cursor` says
/// more follow.
#[utoipa::path(
    get, path = "/api/v1/cron/jobs/{id}/executions", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id"), PageQuery),
    responses(
        (status = 200, description = "`{\"data\": [execution], \"next_cursor\": …}`", body = List<CronExecution>),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn cron_job_executions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<CronExecution>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let page = schedules::executions(&state, &auth, &id, page).await?;
    Ok(Json(List {
        data: page.items.iter().filter_map(to_cron_execution).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// Run a cron job now, enabled or not; its next run does not move.
#[utoipa::path(
    post, path = "/api/v1/cron/jobs/{id}/trigger", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    responses(
        (status = 200, description = "`{\"ok\": true}`: the run is created", body = Done),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the organization's plan allows no more jobs this day or month (`window`, `limit`, `used`, `resets_at`; `Retry-After`, `RateLimit-Policy`, `RateLimit`)", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn trigger_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Done>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    schedules::trigger(&state, &auth, &id).await?;
    Ok(Json(DONE))
}

/// Pause a cron job: no run until it is resumed. A run in progress is not
/// cancelled.
#[utoipa::path(
    post, path = "/api/v1/cron/jobs/{id}/pause", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    responses(
        (status = 200, description = "`{\"data\": {\"id\", \"name\", \"enabled\": false}}`", body = Data<CronJobState>),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn pause_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Data<CronJobState>>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let paused = schedules::set_status(&state, &auth, &id, ScheduleStatus::Paused).await?;
    Ok(data(to_job_state(&paused)))
}

/// Resume a paused cron job: it runs next at its next due time from now
/// (the runs missed while paused are not made up).
#[utoipa::path(
    post, path = "/api/v1/cron/jobs/{id}/resume", tag = "krafter",
    params(("id" = Uuid, Path, description = "Cron job (schedule) id")),
    responses(
        (status = 200, description = "`{\"data\": {\"id\", \"name\", \"enabled\": true}}`", body = Data<CronJobState>),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn resume_cron_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Data<CronJobState>>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let resumed = schedules::set_status(&state, &auth, &id, ScheduleStatus::Active).await?;
    Ok(data(to_job_state(&resumed)))
}

fn data<T>(data: T) -> Json<Data<T>> {
    Json(Data { data })
}

/// A schedule as Krafter shows it, its push headers redacted.
fn to_cron_job(s: &ScheduleRecord) -> CronJob {
    let (schedule_type, schedule) = match &s.timing {
        TimingSpec::Cron { expr } => (ScheduleType::Cron, Some(expr.clone())),
        TimingSpec::Interval { preset, .. } => (ScheduleType::Interval, preset.clone()),
    };
    let target = push_target(s).map(|(http, _)| http);
    CronJob {
        id: s.id,
        name: s.name.clone(),
        schedule_type,
        schedule,
        timezone: s.timezone.clone(),
        url: target.map(|http| http.url.clone()),
        method: target.map(|http| http.method),
        headers: target.map(|http| redacted(&http.headers)),
        timeout_ms: u64::from(s.template.timeout_seconds) * 1000,
        max_retries: s.template.max_retries,
        enabled: s.status == ScheduleStatus::Active,
        failure_notify: s.failure_notify,
        last_status: s.last_status.and_then(last_outcome),
        last_run_at: s.last_run_at,
        next_run_at: s.next_run_at,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn to_job_state(s: &ScheduleRecord) -> CronJobState {
    CronJobState {
        id: s.id,
        name: s.name.clone(),
        enabled: s.status == ScheduleStatus::Active,
    }
}

/// The last run's job status in Krafter's words: completed is a success,
/// failed or cancelled a failure; a run not finished yet has no outcome.
fn last_outcome(status: JobStatus) -> Option<Outcome> {
    match status {
        JobStatus::Completed => Some(Outcome::Success),
        JobStatus::Failed | JobStatus::Cancelled => Some(Outcome::Failure),
        JobStatus::Scheduled | JobStatus::Queued | JobStatus::Running => None,
    }
}

/// An attempt as a Krafter execution; `None` for one still running or
/// handed back unstarted.
fn to_cron_execution(e: &Execution) -> Option<CronExecution> {
    let status = match e.status {
        ExecutionStatus::Completed => Outcome::Success,
        ExecutionStatus::Failed | ExecutionStatus::TimedOut => Outcome::Failure,
        ExecutionStatus::Running | ExecutionStatus::Released => return None,
    };
    Some(CronExecution {
        id: e.id,
        status,
        http_status: e.http_status,
        response_body: e.response_body.clone(),
        error: e.error.clone(),
        attempt: e.attempt,
        duration_ms: e.duration_ms,
        started_at: e.started_at,
        finished_at: e.finished_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: ExecutionStatus) -> Execution {
        Execution {
            id: Uuid::now_v7(),
            job_id: Uuid::now_v7(),
            attempt: 2,
            status,
            worker_id: None,
            http_status: Some(503),
            response_body: Some("busy".into()),
            response_truncated: false,
            response_body_encoding: None,
            error: Some("HTTP 503".into()),
            duration_ms: Some(12),
            started_at: Timestamp::now(),
            finished_at: Some(Timestamp::now()),
        }
    }

    #[test]
    fn an_ended_attempt_is_a_success_or_a_failure_and_no_other_is_listed() {
        let outcome = |status| to_cron_execution(&attempt(status)).map(|e| e.status);
        assert_eq!(outcome(ExecutionStatus::Completed), Some(Outcome::Success));
        assert_eq!(outcome(ExecutionStatus::Failed), Some(Outcome::Failure));
        assert_eq!(outcome(ExecutionStatus::TimedOut), Some(Outcome::Failure));
        assert_eq!(outcome(ExecutionStatus::Running), None);
        assert_eq!(outcome(ExecutionStatus::Released), None);
        let shown =
            serde_json::to_value(to_cron_execution(&attempt(ExecutionStatus::Failed))).unwrap();
        assert_eq!(shown["status"], "failure");
        assert_eq!(shown["attempt"], 2);
        assert_eq!(shown.as_object().unwrap().len(), 9, "{shown}");
    }

    #[test]
    fn last_status_is_krafters_word_or_null() {
        assert_eq!(last_outcome(JobStatus::Completed), Some(Outcome::Success));
        assert_eq!(last_outcome(JobStatus::Failed), Some(Outcome::Failure));
        assert_eq!(last_outcome(JobStatus::Cancelled), Some(Outcome::Failure));
        for unfinished in [JobStatus::Scheduled, JobStatus::Queued, JobStatus::Running] {
            assert_eq!(last_outcome(unfinished), None);
        }
    }
}
