//! `/v1/schedules`: recurring jobs. Create (in any of the three request
//! shapes, [`dialect`]), read, list, change, delete; pause, resume, archive,
//! trigger now; preview the next runs; list the executions of the jobs a
//! schedule created.
//!
//! The operations (create, update, set status, trigger …) are the `pub(super)`
//! functions here, answering with the stored record; the routes below show it
//! as the one native [`Schedule`], and Krafter's routes
//! ([`super::krafter`]) as Krafter's cron job. Each route checks the scope it
//! needs before calling an operation.

pub mod dialect;
pub mod partial;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::jobs::{
    DEFAULT_QUEUE, JOB_TARGET, MAX_SCHEDULE_AHEAD_SECONDS, TargetFields, check_target,
    validate_target,
};
use super::pagination::{Cursor, PageQuery, page_request};
use super::redact;
use crate::schedule::timing::{TimingError, parse_timezone};
use crate::schedule::{JobTemplate, ScheduleRecord, TimingSpec};
use crate::store::{ExecutionsOf, Page, PageRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::SubsecRound;
use chronos_proto::headers::{redacted, restored};
use chronos_proto::message::MAX_MESSAGE_BODY_BYTES;
use chronos_proto::{
    CreateSchedule, Delivery, ErrorBody, Execution, HttpTarget, Job, List, NextRuns, Schedule,
    ScheduleStatus, ScheduleType, Scope, SkippedRun, Timestamp,
};
pub use dialect::Dialect;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_schedule, list_schedules))
        .routes(routes!(
            get_schedule,
            patch_schedule,
            put_schedule,
            delete_schedule
        ))
        .routes(routes!(pause_schedule))
        .routes(routes!(resume_schedule))
        .routes(routes!(archive_schedule))
        .routes(routes!(trigger_schedule))
        .routes(routes!(next_runs))
        .routes(routes!(schedule_executions))
        .routes(routes!(skipped_runs))
}

/// What each status of these routes (and Krafter's) means, for the
/// document: the same words on every route.
pub(super) mod says {
    pub const READ: &str = "`forbidden`: the key lacks `jobs:read`";
    pub const WRITE: &str = "`forbidden`: the key lacks `jobs:write`";
    pub const NOT_FOUND: &str = "`not_found`: no such schedule in this organization";
    /// For the routes that set a schedule's `queue`.
    pub const NOT_FOUND_OR_QUEUE: &str = "`not_found`: no such schedule in this organization; `queue_not_found`: `queue` names a queue the organization doesn't have";
    pub const QUEUE_NOT_FOUND: &str =
        "`queue_not_found`: `queue` names a queue the organization doesn't have";
    pub const ARCHIVED: &str = "`schedule_archived`: the schedule is archived; it cannot be changed, paused, resumed or triggered";
    /// The rules of a schedule request that no schema states.
    pub const RULES: &str = "A rule between fields or beyond the schema, `field` naming it. `validation_failed`: exactly one timing (`interval`, `cron`, or `schedule_type` with `schedule`), `schedule` a preset (`every_5m` …) for `schedule_type` `interval`; a cron expression that parses and fires within ten years; a known IANA `timezone`; an `interval` of at most 10 years; `handler` or `url`, not both and not neither, and only that target's fields (`method`, `headers`, `body`, `signing_secret_id` go with `url`; `delivery` and `payload` with `handler`); one request shape (Krafter's `schedule_type`, `schedule`, `timeout_ms` not with `cron`, `interval`, `timeout` or `retries`; `retries` not with `max_retries` or `handler`); a `body` of at most 102,400 bytes in UTF-8; a push URL that is an https URL with a host (plain http only where the server allows private targets); a `signing_secret_id` of this organization; no sensitive header's value (in `headers` or `delivery.http.headers`) `***redacted***` but one a `PUT` or `PATCH` sends back for a header the schedule has (it keeps the stored value). `ssrf_blocked`: the push URL's host is not a public address";
}

/// `PATCH /v1/schedules/{id}`'s body: [`CreateSchedule`]'s fields and
/// rules, none required.
pub struct SchedulePatch;

impl PartialSchema for SchedulePatch {
    fn schema() -> RefOr<Schema> {
        partial::partial::<CreateSchedule>(
            "`PATCH /v1/schedules/{id}`: the fields of `CreateSchedule`, with the same rules, each optional; only the fields given change (null is the same as absent).",
        )
    }
}

impl ToSchema for SchedulePatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        CreateSchedule::schemas(schemas);
    }
}

/// Where a `url` schedule's target fields are, for errors.
const URL_TARGET: TargetFields = TargetFields {
    url: "url",
    signing_secret_id: "signing_secret_id",
};

/// A schedule's definition, validated: everything a request sets.
struct Definition {
    name: String,
    timing: TimingSpec,
    timezone: String,
    template: JobTemplate,
    catch_up: chronos_proto::CatchUp,
    overlap: chronos_proto::Overlap,
    failure_notify: bool,
    enabled: bool,
    /// Where the target's fields are in the request.
    fields: &'static TargetFields,
}

/// Create a schedule.
#[utoipa::path(
    post, path = "/v1/schedules", tag = "schedules",
    request_body = CreateSchedule,
    responses(
        (status = 201, description = "The schedule, with its first `next_run_at`", body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::QUEUE_NOT_FOUND, body = ErrorBody),
        (status = 422, description = says::RULES, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn create_schedule(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateSchedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let dialect = Dialect::of(&req)?;
    let created = create(&state, &auth, req, dialect).await?;
    let mut wire = to_wire(&created);
    let hosts: Vec<String> = crate::job::target_host(&created.template.delivery)
        .into_iter()
        .collect();
    wire.warning = super::domains::unverified_warning(&state, &auth, &hosts).await?;
    Ok((StatusCode::CREATED, Json(wire)))
}

/// Creates a schedule from `req`, read as `dialect`.
pub(super) async fn create(
    state: &AppState,
    auth: &Auth,
    req: CreateSchedule,
    dialect: Dialect,
) -> Result<ScheduleRecord, ApiError> {
    let mut def = resolve(req, dialect)?;
    fit_plan(state, auth, &mut def).await?;
    check(state, auth, &def).await?;
    // Intervals count from here.
    let now = store_now(state).await?;
    let status = if def.enabled {
        ScheduleStatus::Active
    } else {
        ScheduleStatus::Paused
    };
    let mut record = ScheduleRecord {
        id: Uuid::now_v7(),
        name: def.name,
        status,
        timing: def.timing,
        timezone: def.timezone,
        template: def.template,
        catch_up: def.catch_up,
        overlap: def.overlap,
        failure_notify: def.failure_notify,
        anchor_at: now,
        next_run_at: None,
        waiting_fire_at: None,
        last_run_at: None,
        last_job_id: None,
        last_status: None,
        created_at: now,
        updated_at: now,
    };
    record.next_run_at = next_run(&record, now)?;
    let created = state.store.insert_schedule(auth.org, &record).await?;
    state.engine.schedule_changed();
    Ok(created)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListSchedulesQuery {
    /// Only schedules with this status: `active`, `paused` or `archived`.
    #[param(inline)]
    status: Option<ScheduleStatus>,
    /// Page size, 1 to 100. Default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page; empty or absent for the first.
    #[param(pattern = "^([A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List schedules, newest first.
#[utoipa::path(
    get, path = "/v1/schedules", tag = "schedules",
    params(ListSchedulesQuery),
    responses(
        (status = 200, body = List<Schedule>),
        (status = 403, description = says::READ, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_schedules(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(q): QueryParams<ListSchedulesQuery>,
) -> Result<Json<List<Schedule>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = list(
        &state,
        &auth,
        q.status,
        page_request(q.limit, q.cursor.as_deref())?,
    )
    .await?;
    Ok(Json(List {
        data: page.items.iter().map(to_wire).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// A page of the organization's schedules (of one status), newest first.
pub(super) async fn list(
    state: &AppState,
    auth: &Auth,
    status: Option<ScheduleStatus>,
    page: PageRequest,
) -> Result<Page<ScheduleRecord>, ApiError> {
    Ok(state.store.list_schedules(auth.org, status, page).await?)
}

/// Get a schedule.
#[utoipa::path(
    get, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsRead)?;
    Ok(Json(to_wire(&find(&state, &auth, &id).await?)))
}

/// Change some fields of a schedule.
///
/// Only the fields given change. Giving a timing field (`interval`, `cron`,
/// `schedule_type`, `schedule`) replaces the timing; giving `handler` to a
/// `url` schedule (or `url` to a handler one) replaces the target. A new
/// timing or timezone counts from now. A sensitive header sent back as
/// `***redacted***` (as answers show it) keeps its stored value.
#[utoipa::path(
    patch, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    request_body = SchedulePatch,
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND_OR_QUEUE, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
        (status = 422, description = says::RULES, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn patch_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<CreateSchedule>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let dialect = Dialect::of(&patch)?;
    Ok(Json(to_wire(
        &update(&state, &auth, &id, patch, dialect).await?,
    )))
}

/// Changes the fields `patch` (read as `dialect`) gives; a field of a group
/// (the timing, the target) replaces the whole group.
pub(super) async fn update(
    state: &AppState,
    auth: &Auth,
    id: &str,
    patch: CreateSchedule,
    dialect: Dialect,
) -> Result<ScheduleRecord, ApiError> {
    let existing = find(state, auth, id).await?;
    let merged = merge(to_request(&existing), patch);
    replace(state, auth, existing, merged, dialect).await
}

/// Replace a schedule's definition.
///
/// A sensitive header sent back as `***redacted***` (as answers show it)
/// keeps its stored value.
#[utoipa::path(
    put, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    request_body = CreateSchedule,
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND_OR_QUEUE, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
        (status = 422, description = says::RULES, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn put_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateSchedule>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let dialect = Dialect::of(&req)?;
    let existing = find(&state, &auth, &id).await?;
    Ok(Json(to_wire(
        &replace(&state, &auth, existing, req, dialect).await?,
    )))
}

/// Writes `req` over `existing`, keeping its id, anchor and next run unless
/// the timing changes, and the value of each sensitive header `req` sends
/// back redacted.
async fn replace(
    state: &AppState,
    auth: &Auth,
    existing: ScheduleRecord,
    req: CreateSchedule,
    dialect: Dialect,
) -> Result<ScheduleRecord, ApiError> {
    if existing.status == ScheduleStatus::Archived {
        return Err(ApiError::ScheduleArchived { id: existing.id });
    }
    let mut def = resolve(kept_headers(req, &existing), dialect)?;
    fit_plan(state, auth, &mut def).await?;
    check(state, auth, &def).await?;
    let now = store_now(state).await?;
    let retimed = def.timing != existing.timing || def.timezone != existing.timezone;
    let status = if def.enabled {
        ScheduleStatus::Active
    } else {
        ScheduleStatus::Paused
    };
    let mut record = ScheduleRecord {
        name: def.name,
        status,
        timing: def.timing,
        timezone: def.timezone,
        template: def.template,
        catch_up: def.catch_up,
        overlap: def.overlap,
        failure_notify: def.failure_notify,
        anchor_at: if retimed { now } else { existing.anchor_at },
        ..existing.clone()
    };
    let resumed = status == ScheduleStatus::Active && existing.status != ScheduleStatus::Active;
    record.next_run_at = if retimed || resumed || status != ScheduleStatus::Active {
        next_run(&record, now)?
    } else {
        existing.next_run_at
    };
    save(state, auth, &record).await
}

#[derive(Serialize, utoipa::ToSchema)]
struct Deleted {
    id: Uuid,
    deleted: bool,
}

/// Delete a schedule. The jobs it created stay.
#[utoipa::path(
    delete, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "`{\"id\": …, \"deleted\": true}`", body = Deleted),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn delete_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    Ok(Json(Deleted {
        id: delete(&state, &auth, &id).await?,
        deleted: true,
    }))
}

/// Deletes a schedule (its jobs stay); its id.
pub(super) async fn delete(state: &AppState, auth: &Auth, id: &str) -> Result<Uuid, ApiError> {
    let schedule = find(state, auth, id).await?;
    if !state.store.delete_schedule(auth.org, schedule.id).await? {
        return Err(not_found(id));
    }
    state.engine.schedule_changed();
    Ok(schedule.id)
}

/// Pause a schedule: no fire until it is resumed. A job already running is
/// not cancelled.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/pause", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn pause_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let paused = set_status(&state, &auth, &id, ScheduleStatus::Paused).await?;
    Ok(Json(to_wire(&paused)))
}

/// Resume a paused schedule. The due times it missed while paused are not
/// fired: it fires next at its next due time from now.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/resume", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn resume_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let resumed = set_status(&state, &auth, &id, ScheduleStatus::Active).await?;
    Ok(Json(to_wire(&resumed)))
}

/// Archive a schedule: it never fires again, and stays readable.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/archive", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 200, body = Schedule),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn archive_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let archived = set_status(&state, &auth, &id, ScheduleStatus::Archived).await?;
    Ok(Json(to_wire(&archived)))
}

/// Pauses, resumes or archives a schedule; already so is no change. An
/// archived schedule stays archived (`schedule_archived`).
pub(super) async fn set_status(
    state: &AppState,
    auth: &Auth,
    id: &str,
    status: ScheduleStatus,
) -> Result<ScheduleRecord, ApiError> {
    let existing = find(state, auth, id).await?;
    if existing.status == status {
        return Ok(existing);
    }
    if existing.status == ScheduleStatus::Archived {
        return Err(ApiError::ScheduleArchived { id: existing.id });
    }
    let mut record = ScheduleRecord {
        status,
        waiting_fire_at: None,
        ..existing
    };
    // Only a resume runs again, from the store's clock: pausing and
    // archiving need no clock.
    record.next_run_at = match status {
        ScheduleStatus::Active => next_run(&record, store_now(state).await?)?,
        ScheduleStatus::Paused | ScheduleStatus::Archived => None,
    };
    save(state, auth, &record).await
}

/// Fire a schedule now.
///
/// Creates its job at once, whether the schedule is active or paused; its
/// next due time does not move.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/trigger", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    responses(
        (status = 202, description = "The job it created", body = Job),
        (status = 403, description = says::WRITE, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
        (status = 409, description = says::ARCHIVED, body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the organization's plan allows no more jobs this day or month (`window`, `limit`, `used`, `resets_at`; `Retry-After`, `RateLimit-Policy`, `RateLimit`)", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn trigger_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let job = trigger(&state, &auth, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(redact::job(job))))
}

/// Creates the schedule's job now, active or paused; the job.
pub(super) async fn trigger(state: &AppState, auth: &Auth, id: &str) -> Result<Job, ApiError> {
    let schedule = find(state, auth, id).await?;
    if schedule.status == ScheduleStatus::Archived {
        return Err(ApiError::ScheduleArchived { id: schedule.id });
    }
    let job = schedule.template.job(&schedule.name, schedule.id);
    let job = state.engine.create_job(auth.org, job).await?;
    state
        .store
        .record_schedule_run(auth.org, schedule.id, job.id)
        .await?;
    Ok(job)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NextRunsQuery {
    /// How many, 1 to 100 (`MAX_NEXT_RUNS`). Default 10.
    #[param(minimum = 1, maximum = 100)]
    count: Option<usize>,
}

/// The next times a schedule fires.
///
/// From its `next_run_at` if it is active, from now if it is paused (what
/// resuming now would give); none if it is archived.
#[utoipa::path(
    get, path = "/v1/schedules/{id}/next-runs", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id"), NextRunsQuery),
    responses(
        (status = 200, body = NextRuns),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn next_runs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<NextRunsQuery>,
) -> Result<Json<NextRuns>, ApiError> {
    auth.require(Scope::JobsRead)?;
    // The document holds `count` to 1 to 100.
    let count = q.count.unwrap_or(10);
    let schedule = find(&state, &auth, &id).await?;
    let timing = timing_of(&schedule)?;
    let data = match (schedule.status, schedule.next_run_at) {
        (ScheduleStatus::Archived, _) => Vec::new(),
        (ScheduleStatus::Active, Some(next)) => {
            let mut runs = vec![next.0];
            runs.extend(timing.upcoming(next.0, count.saturating_sub(1)));
            runs
        }
        _ => timing.upcoming(store_now(&state).await?.0, count),
    };
    Ok(Json(NextRuns {
        data: data.into_iter().map(Timestamp).collect(),
    }))
}

/// The executions of the jobs a schedule created, newest first.
#[utoipa::path(
    get, path = "/v1/schedules/{id}/executions", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id"), PageQuery),
    responses(
        (status = 200, body = List<Execution>),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn schedule_executions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<Execution>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = executions(
        &state,
        &auth,
        &id,
        page_request(q.limit, q.cursor.as_deref())?,
    )
    .await?;
    Ok(Json(List {
        data: page.items,
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// The fires of a schedule that made no job because the organization's
/// quota was spent, newest first (the newest 100 are kept).
#[utoipa::path(
    get, path = "/v1/schedules/{id}/skipped-runs", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id"), PageQuery),
    responses(
        (status = 200, body = List<SkippedRun>),
        (status = 403, description = says::READ, body = ErrorBody),
        (status = 404, description = says::NOT_FOUND, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn skipped_runs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<SkippedRun>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = state
        .store
        .skipped_runs(
            auth.org,
            parse_id(&id)?,
            page_request(q.limit, q.cursor.as_deref())?,
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(List {
        data: page.items,
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// A page of the attempts of the jobs schedule `id` created, newest first.
pub(super) async fn executions(
    state: &AppState,
    auth: &Auth,
    id: &str,
    page: PageRequest,
) -> Result<Page<Execution>, ApiError> {
    state
        .store
        .executions(auth.org, ExecutionsOf::Schedule(parse_id(id)?), page)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The store's clock, in whole milliseconds (as stored and shown): a
/// schedule's due times are compared with it, so they are computed from it
/// too, not from this process's clock.
async fn store_now(state: &AppState) -> Result<Timestamp, ApiError> {
    Ok(Timestamp(state.store.now().await?.0.trunc_subsecs(3)))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no schedule {id}"))
}

/// The schedule `id` of the caller's organization.
pub(super) async fn find(
    state: &AppState,
    auth: &Auth,
    id: &str,
) -> Result<ScheduleRecord, ApiError> {
    state
        .store
        .schedule(auth.org, parse_id(id)?)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn save(
    state: &AppState,
    auth: &Auth,
    record: &ScheduleRecord,
) -> Result<ScheduleRecord, ApiError> {
    let saved = state
        .store
        .update_schedule(auth.org, record)
        .await?
        .ok_or_else(|| not_found(&record.id.to_string()))?;
    state.engine.schedule_changed();
    Ok(saved)
}

fn timing_of(schedule: &ScheduleRecord) -> Result<crate::schedule::timing::Timing, ApiError> {
    schedule
        .timing
        .timing(&schedule.timezone, schedule.anchor_at)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored schedule {}: {e}", schedule.id)))
}

/// When an active schedule fires first from `now`; `None` unless active.
fn next_run(schedule: &ScheduleRecord, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    if schedule.status != ScheduleStatus::Active {
        return Ok(None);
    }
    Ok(timing_of(schedule)?.next_after(now.0).map(Timestamp))
}

/// Holds a schedule to its organization's plan: it may fire no more often
/// than the plan's shortest interval (400, seed 004's message), and its
/// jobs' retries are capped to the plan's most (the answer shows the value
/// used).
async fn fit_plan(state: &AppState, auth: &Auth, def: &mut Definition) -> Result<(), ApiError> {
    let plan = state.store.organization_plan(auth.org).await?;
    def.template.max_retries = plan.cap_retries(def.template.max_retries);
    let Some(min) = plan.min_interval_seconds else {
        return Ok(());
    };
    let timing = def
        .timing
        .timing(&def.timezone, Timestamp::now())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a resolved schedule's timing: {e}")))?;
    let gap = timing.shortest_gap(Timestamp::now().0, 500);
    if gap.is_some_and(|gap| gap.num_seconds() < i64::from(min)) {
        let field = match def.timing {
            TimingSpec::Cron { .. } => "cron",
            TimingSpec::Interval { .. } => "interval",
        };
        return Err(ApiError::validation(
            field,
            format!("minimum interval is {} on this plan", plan_interval(min)),
        ));
    }
    Ok(())
}

/// `900` → `15 minutes`, `60` → `1 minute`, `7200` → `2 hours`.
fn plan_interval(seconds: u32) -> String {
    let (n, unit) = match seconds {
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The organization must own the signing secret, and a push target must
/// pass the SSRF guard (422 either way).
async fn check(state: &AppState, auth: &Auth, def: &Definition) -> Result<(), ApiError> {
    let job = def.template.job(&def.name, Uuid::nil());
    auth.require_queue(&job.queue)?;
    // Its jobs will name the queue: it must exist (a queue a schedule
    // names can't be deleted).
    if state.store.queue(auth.org, &job.queue).await?.is_none() {
        return Err(ApiError::QueueNotFound { name: job.queue });
    }
    check_target(state, auth.org, &job, def.fields).await
}

/// Turns a request into a definition, or says which rule it breaks.
///
/// The request has met the document already (`CreateSchedule`'s limits,
/// patterns and required `name`; or a `PATCH` merged over a stored
/// schedule), so what is refused here is a rule no schema states: 422.
/// `dialect` (decided by [`Dialect::of`], or by the route) gives the
/// defaults, and the names errors use; the request uses each pair of
/// names (`timeout` / `timeout_ms`, `max_retries` / `retries`) one way at
/// most, as [`Dialect::of`] and [`merge`] see to.
fn resolve(req: CreateSchedule, dialect: Dialect) -> Result<Definition, ApiError> {
    let defaults = dialect.defaults();
    // Required by the document at creation; a `PATCH` keeps the stored one.
    let name = req
        .name
        .ok_or_else(|| ApiError::rule("name", "name is required"))?;
    let timezone = req.timezone.unwrap_or_else(|| "UTC".to_string());
    parse_timezone(&timezone).map_err(|e| ApiError::rule("timezone", e.to_string()))?;

    // The timing: `interval`, `cron`, or Krafter's `schedule_type` + `schedule`.
    let (timing, timing_field) = match (req.interval, req.cron, req.schedule_type, req.schedule) {
        (Some(interval), None, None, None) => (
            TimingSpec::Interval {
                interval,
                preset: None,
            },
            "interval",
        ),
        (None, Some(expr), None, None) => (TimingSpec::Cron { expr }, "cron"),
        (None, None, Some(ScheduleType::Cron), Some(expr)) => {
            (TimingSpec::Cron { expr }, "schedule")
        }
        (None, None, Some(ScheduleType::Interval), Some(preset)) => {
            let interval = TimingSpec::preset(&preset).ok_or_else(|| {
                ApiError::rule(
                    "schedule",
                    TimingError::UnknownPreset(preset.clone()).to_string(),
                )
            })?;
            let preset = Some(preset);
            (TimingSpec::Interval { interval, preset }, "schedule")
        }
        // `schedule` alone: a preset, or else an expression.
        (None, None, None, Some(schedule)) => match TimingSpec::preset(&schedule) {
            Some(interval) => (
                TimingSpec::Interval {
                    interval,
                    preset: Some(schedule),
                },
                "schedule",
            ),
            None => (TimingSpec::Cron { expr: schedule }, "schedule"),
        },
        (None, None, Some(ScheduleType::Interval), None) => {
            return Err(ApiError::rule(
                "schedule",
                "schedule is required: a preset such as every_5m",
            ));
        }
        (None, None, Some(ScheduleType::Cron), None) => {
            return Err(ApiError::rule(
                "schedule",
                "schedule is required: a cron expression such as */5 * * * *",
            ));
        }
        (None, None, None, None) if dialect == Dialect::Krafter => {
            return Err(ApiError::rule(
                "schedule_type",
                "schedule_type is required: interval (with a preset in schedule) or cron (with the expression in schedule)",
            ));
        }
        (None, None, None, None) => {
            return Err(ApiError::rule("cron", "cron is required (or an interval)"));
        }
        (interval, cron, _, schedule) => {
            // Two timings: name the second, in the order the fields are listed.
            let second = match (interval.is_some() && cron.is_some(), schedule.is_some()) {
                (true, _) => "cron",
                (false, true) => "schedule",
                (false, false) => "schedule_type",
            };
            return Err(ApiError::rule(
                second,
                "give one timing: interval, cron, or schedule_type with schedule",
            ));
        }
    };
    if let TimingSpec::Interval { interval, .. } = &timing
        && interval
            .as_seconds()
            .is_none_or(|s| s > MAX_SCHEDULE_AHEAD_SECONDS)
    {
        return Err(ApiError::rule(
            "interval.value",
            "an interval may be at most 10 years",
        ));
    }
    let parsed = timing
        .timing(&timezone, Timestamp::now())
        .map_err(|e| match e {
            TimingError::IntervalTooShort if timing_field == "interval" => {
                ApiError::rule("interval.value", e.to_string())
            }
            TimingError::UnknownTimezone(_) => ApiError::rule("timezone", e.to_string()),
            e => ApiError::rule(timing_field, e.to_string()),
        })?;
    if parsed.next_after(Timestamp::now().0).is_none() {
        return Err(ApiError::rule(
            timing_field,
            "this schedule never fires (no matching date within ten years)",
        ));
    }

    // The target: a handler (pull, or push with the Chronos body), or a url.
    let (handler, payload, delivery, fields) = match (req.handler, req.url) {
        (Some(_), Some(_)) => {
            return Err(ApiError::rule(
                "url",
                "give either handler or url, not both",
            ));
        }
        (Some(handler), None) => {
            for (given, field) in [
                (req.method.is_some(), "method"),
                (req.headers.is_some(), "headers"),
                (req.body.is_some(), "body"),
                (req.signing_secret_id.is_some(), "signing_secret_id"),
            ] {
                if given {
                    return Err(ApiError::rule(
                        field,
                        format!(
                            "{field} goes with url; a handler's push target is delivery.http (and delivery.signing_secret_id)"
                        ),
                    ));
                }
            }
            let delivery = req.delivery.unwrap_or_default();
            if let Delivery::Push { http, .. } = &delivery {
                validate_target("delivery.http.", http)?;
            }
            let payload = req.payload.unwrap_or(Value::Null);
            (Some(handler), payload, delivery, &JOB_TARGET)
        }
        (None, Some(url)) => {
            if req.delivery.is_some() {
                return Err(ApiError::rule(
                    "delivery",
                    "delivery goes with handler; a url schedule is always push",
                ));
            }
            if req.payload.is_some() {
                return Err(ApiError::rule(
                    "payload",
                    "payload goes with handler; a url schedule sends body as given",
                ));
            }
            // The document counts characters; the limit is in bytes.
            if let Some(body) = &req.body
                && body.len() > MAX_MESSAGE_BODY_BYTES
            {
                return Err(ApiError::rule(
                    "body",
                    format!(
                        "Body exceeds {MAX_MESSAGE_BODY_BYTES} byte limit ({} bytes in UTF-8)",
                        body.len()
                    ),
                ));
            }
            let http = HttpTarget {
                url,
                method: req.method.unwrap_or_default(),
                headers: req.headers.unwrap_or_default(),
            };
            validate_target("", &http)?;
            let delivery = Delivery::Push {
                http,
                signing_secret_id: req.signing_secret_id,
            };
            let payload = req.body.map_or(Value::Null, Value::String);
            (None, payload, delivery, &URL_TARGET)
        }
        (None, None) if dialect == Dialect::Chronos => {
            return Err(ApiError::rule("handler", "handler or url is required"));
        }
        (None, None) => return Err(ApiError::rule("url", "url is required")),
    };
    // The document holds `timeout` to 1 to 86,400 seconds and `timeout_ms`
    // to 1 to 86,400,000; `max_retries` and `retries` to 0 to 100.
    let timeout = match (req.timeout, req.timeout_ms) {
        (Some(t), _) => t,
        (None, Some(ms)) => u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX),
        (None, None) => defaults.timeout_seconds,
    };
    let max_retries = req
        .max_retries
        .or(req.retries)
        .unwrap_or(defaults.max_retries);
    Ok(Definition {
        name,
        timing,
        timezone,
        template: JobTemplate {
            handler,
            payload,
            delivery,
            queue: req.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_string()),
            concurrency_key: req.concurrency_key,
            priority: req.priority.unwrap_or(0),
            max_retries,
            timeout_seconds: timeout,
        },
        catch_up: req.catch_up.unwrap_or_default(),
        overlap: req.overlap.unwrap_or_default(),
        failure_notify: req.failure_notify.unwrap_or(false),
        enabled: req.enabled.unwrap_or(true),
        fields,
    })
}

/// The request that would create `s` as it is now (for `PATCH`).
fn to_request(s: &ScheduleRecord) -> CreateSchedule {
    let mut req = CreateSchedule {
        name: Some(s.name.clone()),
        timezone: Some(s.timezone.clone()),
        timeout: Some(s.template.timeout_seconds),
        max_retries: Some(s.template.max_retries),
        queue: Some(s.template.queue.clone()),
        concurrency_key: s.template.concurrency_key.clone(),
        priority: Some(s.template.priority),
        catch_up: Some(s.catch_up),
        overlap: Some(s.overlap),
        enabled: Some(s.status == ScheduleStatus::Active),
        failure_notify: Some(s.failure_notify),
        ..CreateSchedule::default()
    };
    match &s.timing {
        TimingSpec::Cron { expr } => req.cron = Some(expr.clone()),
        TimingSpec::Interval {
            preset: Some(preset),
            ..
        } => {
            req.schedule_type = Some(ScheduleType::Interval);
            req.schedule = Some(preset.clone());
        }
        TimingSpec::Interval { interval, .. } => req.interval = Some(*interval),
    }
    match (&s.template.handler, &s.template.delivery) {
        (Some(handler), delivery) => {
            req.handler = Some(handler.clone());
            req.payload = Some(s.template.payload.clone());
            req.delivery = Some(delivery.clone());
        }
        (
            None,
            Delivery::Push {
                http,
                signing_secret_id,
            },
        ) => {
            req.url = Some(http.url.clone());
            req.method = Some(http.method);
            req.headers = Some(http.headers.clone());
            req.body = s.template.payload.as_str().map(str::to_string);
            req.signing_secret_id = *signing_secret_id;
        }
        (None, Delivery::Pull) => {}
    }
    req
}

/// `base` with what `patch` gives; a field of a group (the timing, the
/// target) replaces the whole group.
fn merge(mut base: CreateSchedule, patch: CreateSchedule) -> CreateSchedule {
    let timing_given = patch.interval.is_some()
        || patch.cron.is_some()
        || patch.schedule_type.is_some()
        || patch.schedule.is_some();
    if timing_given {
        base.interval = None;
        base.cron = None;
        base.schedule_type = None;
        base.schedule = None;
    }
    if patch.handler.is_some() && base.url.is_some() {
        base.url = None;
        base.method = None;
        base.headers = None;
        base.body = None;
        base.signing_secret_id = None;
    }
    if patch.url.is_some() && base.handler.is_some() {
        base.handler = None;
        base.payload = None;
        base.delivery = None;
    }
    if patch.timeout_ms.is_some() {
        base.timeout = None;
    }
    if patch.retries.is_some() {
        base.max_retries = None;
    }
    macro_rules! overlay {
        ($($field:ident),*) => {
            $(if patch.$field.is_some() { base.$field = patch.$field; })*
        };
    }
    overlay!(
        name,
        handler,
        payload,
        interval,
        cron,
        schedule_type,
        schedule,
        timezone,
        delivery,
        url,
        method,
        headers,
        body,
        signing_secret_id,
        timeout,
        timeout_ms,
        max_retries,
        retries,
        queue,
        concurrency_key,
        priority,
        catch_up,
        overlap,
        enabled,
        failure_notify
    );
    base
}

/// `req` with each sensitive header it sends back as `***redacted***` (as
/// answers show it) given the value `existing` stores under that name, so
/// that a client may send back what it read. One with nothing stored stays
/// redacted, for [`validate_target`] to refuse.
fn kept_headers(mut req: CreateSchedule, existing: &ScheduleRecord) -> CreateSchedule {
    let Some((stored, _)) = push_target(existing) else {
        return req;
    };
    let stored = &stored.headers;
    req.headers = req.headers.map(|sent| restored(sent, stored));
    if let Some(Delivery::Push { http, .. }) = &mut req.delivery {
        http.headers = restored(std::mem::take(&mut http.headers), stored);
    }
    req
}

/// The push target a schedule calls, and the secret that signs its
/// requests; `None` for pull delivery.
pub(super) fn push_target(s: &ScheduleRecord) -> Option<(&HttpTarget, Option<Uuid>)> {
    match &s.template.delivery {
        Delivery::Push {
            http,
            signing_secret_id,
        } => Some((http, *signing_secret_id)),
        Delivery::Pull => None,
    }
}

/// A schedule as the native API shows it: one shape, whichever dialect
/// created it, its push headers redacted.
fn to_wire(s: &ScheduleRecord) -> Schedule {
    let (cron, interval) = match &s.timing {
        TimingSpec::Cron { expr } => (Some(expr.clone()), None),
        TimingSpec::Interval { interval, .. } => (None, Some(*interval)),
    };
    let target = push_target(s);
    let body = match (&s.template.handler, &s.template.payload) {
        (None, Value::String(body)) => Some(body.clone()),
        _ => None,
    };
    Schedule {
        id: s.id,
        name: s.name.clone(),
        status: s.status,
        handler: s.template.handler.clone(),
        payload: s.template.payload.clone(),
        cron,
        interval,
        timezone: s.timezone.clone(),
        delivery: redact::delivery(&s.template.delivery),
        url: target.map(|(http, _)| http.url.clone()),
        method: target.map(|(http, _)| http.method),
        headers: target.map(|(http, _)| redacted(&http.headers)),
        body,
        signing_secret_id: target.and_then(|(_, secret)| secret),
        timeout: s.template.timeout_seconds,
        max_retries: s.template.max_retries,
        queue: s.template.queue.clone(),
        concurrency_key: s.template.concurrency_key.clone(),
        priority: s.template.priority,
        catch_up: s.catch_up,
        overlap: s.overlap,
        failure_notify: s.failure_notify,
        last_status: s.last_status,
        last_run_at: s.last_run_at,
        next_run_at: s.next_run_at,
        next_fire_at: s.next_run_at,
        warning: None,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::{MAX_RETRIES_LIMIT, MAX_SCHEDULE_AHEAD_SECONDS, MAX_TIMEOUT_SECONDS};
    use serde_json::json;

    /// The document states jobs' limits for a schedule's jobs as literals
    /// (utoipa's attributes take no constants); they stay equal here.
    /// (`tests/contract_schedules.rs` checks the public constants.)
    #[test]
    fn the_document_states_the_limits_of_jobs() {
        let doc = serde_json::to_value(crate::api::document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let fields = &schemas["CreateSchedule"]["properties"];
        assert_eq!(fields["timeout"]["maximum"], json!(MAX_TIMEOUT_SECONDS));
        assert_eq!(
            fields["timeout_ms"]["maximum"],
            json!(u64::from(MAX_TIMEOUT_SECONDS) * 1000)
        );
        for name in ["max_retries", "retries"] {
            assert_eq!(fields[name]["maximum"], json!(MAX_RETRIES_LIMIT), "{name}");
        }
        // No interval is longer than 10 years in seconds; in larger units
        // the handler checks the whole interval.
        assert_eq!(
            schemas["IntervalRequest"]["properties"]["value"]["maximum"],
            json!(MAX_SCHEDULE_AHEAD_SECONDS)
        );
    }
}
