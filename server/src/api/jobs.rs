//! `/v1/jobs`: create, read, list and cancel jobs, and list their executions.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, MAX_BATCH_BODY_BYTES, QueryParams};
use super::pagination::{Cursor, PageQuery, page_request};
use super::redact;
use crate::account::OrgId;
use crate::job::{NewJob, RunAt};
use crate::push::guard;
use crate::store::{
    CancelOutcome, ExecutionsOf, Inserted, JobFilter, RetryOutcome, ScheduleFilter,
};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use chronos_proto::{
    BatchCreated, BatchItem, CreateJob, CreateJobs, Delay, Delivery, ErrorBody, Execution,
    HttpTarget, Job, JobStatus, List, Scope, Timestamp,
};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const DEFAULT_TIMEOUT_SECONDS: u32 = 30;
/// Stated in the document (`maximum = 86400`), which enforces it; only the
/// tests holding the two equal read this.
#[cfg_attr(not(test), allow(dead_code))]
pub const MAX_TIMEOUT_SECONDS: u32 = 24 * 3600;
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Stated in the document (`maximum = 100`), as [`MAX_TIMEOUT_SECONDS`].
#[cfg_attr(not(test), allow(dead_code))]
pub const MAX_RETRIES_LIMIT: u32 = 100;
/// How far ahead a job may be scheduled.
pub const MAX_SCHEDULE_AHEAD_SECONDS: u64 = 10 * 366 * 86_400;
/// The queue a job names when it names none: every organization has it.
pub use crate::queue::DEFAULT_QUEUE;

pub fn router() -> OpenApiRouter<AppState> {
    let batch = OpenApiRouter::new()
        .routes(routes!(create_jobs))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES));
    OpenApiRouter::new()
        .merge(batch)
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
        .routes(routes!(retry_job))
        .routes(routes!(list_executions))
}

/// Create a job.
///
/// Answers 201 once the job is committed: an acknowledged job is never lost.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = CreateJob,
    responses(
        (status = 201, description = "The job, committed", body = Job),
        (status = 400, description = "`validation_failed`, `unknown_field` or `invalid_json`: the body breaks the schema; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:write`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`: `queue` names a queue the organization doesn't have", body = ErrorBody),
        (status = 409, description = "`idempotency_key_conflict`; `job_id` is the existing job", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a rule beyond the schema (see CreateJob), or `ssrf_blocked`: a push target the SSRF guard refuses", body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the organization's plan allows no more jobs this day or month (`window`, `limit`, `used`, `resets_at`; `Retry-After`, `RateLimit-Policy`, `RateLimit`)", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn create_job(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateJob>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let new = validate(req)?;
    auth.require_queue(&new.queue)?;
    check_target(&state, auth.org, &new, &JOB_TARGET).await?;
    let job = state.engine.create_job(auth.org, new).await?;
    Ok((StatusCode::CREATED, Json(redact::job(job))))
}

/// Create up to 1,000 jobs in one request.
///
/// The whole body is held to the schema first: a job that breaks it (a bad
/// or unknown field) refuses the batch with 400, naming it (`jobs[3].name`).
/// Then each job is checked against the rules beyond the schema as `POST
/// /v1/jobs` checks them; those that pass are inserted together in one
/// transaction, and the answer comes after it commits. `data` holds one
/// item per requested job, in request order: `{"job": …}` for a created
/// job, `{"error": …}` for a refused one (what `POST /v1/jobs` would have
/// answered with 422, or `idempotency_key_conflict` with the `job_id`
/// holding the key — including an earlier job of the same batch).
#[utoipa::path(
    post, path = "/v1/jobs/batch", tag = "jobs",
    request_body = CreateJobs,
    responses(
        (status = 200, description = "One item per job, in request order: the job, or the error `POST /v1/jobs` would have answered for it (`queue_not_found` among them)", body = BatchCreated),
        (status = 400, description = "The body breaks the schema: `jobs` missing, empty or over 1,000, or a job with a bad or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:write`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`: a queue one of the jobs names was deleted while the batch was inserted; nothing was created", body = ErrorBody),
        (status = 413, description = "Body over 16 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn create_jobs(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(batch): JsonBody<CreateJobs, MAX_BATCH_BODY_BYTES>,
) -> Result<Json<BatchCreated>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let mut items: Vec<Option<BatchItem>> = Vec::with_capacity(batch.jobs.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    // A job naming a queue the organization doesn't have is refused on its
    // own; the rest go on. (A queue deleted after this look finds the
    // insert refusing the whole batch: `404 queue_not_found`.)
    let queues: HashSet<String> = if batch.jobs.iter().any(|j| j.queue.is_some()) {
        let queues = state.store.list_queues(auth.org).await?;
        queues.into_iter().map(|q| q.name).collect()
    } else {
        HashSet::from([DEFAULT_QUEUE.to_string()])
    };
    for (i, req) in batch.jobs.into_iter().enumerate() {
        let job = match validate(req) {
            Ok(job) if !queues.contains(&job.queue) => {
                Err(ApiError::QueueNotFound { name: job.queue })
            }
            Ok(job) => match auth.require_queue(&job.queue) {
                Ok(()) => check_target(&state, auth.org, &job, &JOB_TARGET)
                    .await
                    .map(|()| job),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match job {
            Ok(job) => {
                valid.push(job);
                positions.push(i);
                items.push(None);
            }
            Err(e) => items.push(Some(BatchItem::Error(e.detail().1))),
        }
    }
    if !valid.is_empty() {
        let inserted = state.engine.create_jobs(auth.org, valid).await?;
        for (i, outcome) in positions.into_iter().zip(inserted) {
            items[i] = Some(match outcome {
                Inserted::Created(job) => BatchItem::Job(Box::new(redact::job(*job))),
                Inserted::Conflict { existing } => {
                    BatchItem::Error(ApiError::IdempotencyConflict { existing }.detail().1)
                }
                Inserted::OverQuota(refusal) => {
                    BatchItem::Error(ApiError::QuotaExceeded(refusal).detail().1)
                }
            });
        }
    }
    Ok(Json(BatchCreated {
        data: items.into_iter().flatten().collect(),
    }))
}

/// Turns a request into a job to insert, or says which rule beyond the
/// schema it breaks (422). Its fields' limits, patterns and required
/// fields were held to the document before this runs ([`super::contract`]).
fn validate(req: CreateJob) -> Result<NewJob, ApiError> {
    let run_at = run_at(req.delay, req.scheduled_for)?;
    let delivery = req.delivery.unwrap_or_default();
    if let Delivery::Push { http, .. } = &delivery {
        validate_target("delivery.http.", http)?;
    }
    Ok(NewJob {
        id: Uuid::now_v7(),
        name: req.name.unwrap_or_default(),
        handler: req.handler,
        payload: req.payload.unwrap_or(serde_json::Value::Null),
        queue: req.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_string()),
        concurrency_key: req.concurrency_key,
        priority: req.priority.unwrap_or(0),
        delivery,
        run_at,
        // None: the queue's `retries`.
        max_retries: req.max_retries,
        timeout_seconds: req.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        schedule_id: None,
        idempotency_key: req.idempotency_key,
        follow: Default::default(),
    })
}

/// When a job asked to run: now, after `delay`, or at `scheduled_for` —
/// one of them, at most ten years ahead, and `scheduled_for` still to come.
fn run_at(delay: Option<Delay>, scheduled_for: Option<Timestamp>) -> Result<RunAt, ApiError> {
    match (delay, scheduled_for) {
        // The schema refuses both (400); a caller outside the API would get this.
        (Some(_), Some(_)) => Err(ApiError::rule(
            "delay",
            "give either delay or scheduled_for, not both",
        )),
        (Some(delay), None) => {
            let secs = delay
                .as_seconds()
                .filter(|&s| s <= MAX_SCHEDULE_AHEAD_SECONDS)
                .ok_or_else(|| ApiError::rule("delay.value", "delay may be at most 10 years"))?;
            Ok(if secs == 0 {
                RunAt::Now
            } else {
                RunAt::After(Duration::from_secs(secs))
            })
        }
        (None, Some(at)) => {
            let ahead = at.0 - Timestamp::now().0;
            if ahead <= chrono::TimeDelta::zero() {
                return Err(ApiError::rule(
                    "scheduled_for",
                    format!("scheduled_for must be in the future (got {at})"),
                ));
            }
            if ahead.num_seconds() as u64 > MAX_SCHEDULE_AHEAD_SECONDS {
                return Err(ApiError::rule(
                    "scheduled_for",
                    "scheduled_for may be at most 10 years ahead",
                ));
            }
            Ok(RunAt::At(at))
        }
        (None, None) => Ok(RunAt::Now),
    }
}

/// Where a push target's fields are in a request, for errors.
pub(crate) struct TargetFields {
    pub url: &'static str,
    pub signing_secret_id: &'static str,
}

pub(crate) const JOB_TARGET: TargetFields = TargetFields {
    url: "delivery.http.url",
    signing_secret_id: "delivery.signing_secret_id",
};

/// A push job's target must pass the SSRF guard, and its signing secret
/// must be the organization's.
pub(crate) async fn check_target(
    state: &AppState,
    org: OrgId,
    job: &NewJob,
    fields: &TargetFields,
) -> Result<(), ApiError> {
    if let Delivery::Push {
        http,
        signing_secret_id,
    } = &job.delivery
    {
        if let Some(id) = signing_secret_id {
            check_signing_secret(state, org, *id, fields.signing_secret_id).await?;
        }
        check_url(state, &http.url, fields.url).await?;
    }
    Ok(())
}

/// A signing secret named by the request's `field` must be the
/// organization's.
pub(crate) async fn check_signing_secret(
    state: &AppState,
    org: OrgId,
    id: Uuid,
    field: &str,
) -> Result<(), ApiError> {
    match state.store.signing_secret(org, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::rule(
            field,
            format!("no signing secret {id} in this organization"),
        )),
    }
}

/// A push target's URL (the request's `field`, parsed already by
/// [`validate_target`]) must pass the SSRF guard.
pub(crate) async fn check_url(state: &AppState, url: &str, field: &str) -> Result<(), ApiError> {
    let url = url::Url::parse(url).map_err(|e| ApiError::rule(field, e.to_string()))?;
    guard::check(&url, state.targets)
        .await
        .map_err(|e| ApiError::target(field, e))
}

/// A push target's URL must be an http(s) URL with a host: a rule beyond
/// the schema, which states only that it is an absolute URL (its headers
/// the schema states in full, but for a sensitive one's value
/// `***redacted***`, refused here). `prefix` is where it sits in the
/// request (`delivery.http.` for a job, nothing for a message).
pub(crate) fn validate_target(prefix: &str, http: &HttpTarget) -> Result<(), ApiError> {
    redact::refuse_redacted(prefix, &http.headers)?;
    let url_field = format!("{prefix}url");
    let url = url::Url::parse(&http.url)
        .map_err(|e| ApiError::rule(&url_field, format!("{url_field} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::rule(
            &url_field,
            format!("{url_field} must be an http(s) URL with a host"),
        ));
    }
    Ok(())
}

/// Get a job.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, body = Job),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such job in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let id = job_id(&id)?;
    let job = state.store.job(auth.org, id).await?;
    job.map(|job| Json(redact::job(job)))
        .ok_or_else(|| job_not_found(id))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListJobsQuery {
    /// One status, or several comma-separated (`queued,running`).
    #[param(
        pattern = r"^(\s*(scheduled|queued|running|completed|failed|cancelled)\s*(,\s*(scheduled|queued|running|completed|failed|cancelled)\s*)*)?$"
    )]
    status: Option<String>,
    /// Jobs of this handler; empty filters nothing.
    #[param(max_length = 255)]
    handler: Option<String>,
    /// Jobs of this queue; empty filters nothing.
    #[param(max_length = 128)]
    queue: Option<String>,
    /// A schedule's id, or the literal `null` for one-off jobs only.
    #[param(
        pattern = r"^(null|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"
    )]
    schedule_id: Option<String>,
    /// Page size, 1 to 100. Default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page; empty or absent for the first.
    #[param(pattern = "^([A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListJobsQuery),
    responses(
        (status = 200, body = List<Job>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_jobs(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(q): QueryParams<ListJobsQuery>,
) -> Result<Json<List<Job>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let statuses = match q.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|part| part.trim().parse::<JobStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::validation("status", e))?,
    };
    let schedule = match q.schedule_id.as_deref() {
        None => ScheduleFilter::Any,
        Some("null") => ScheduleFilter::None,
        Some(s) => ScheduleFilter::Id(Uuid::parse_str(s).map_err(|_| {
            ApiError::validation(
                "schedule_id",
                "schedule_id must be a schedule's id or `null`",
            )
        })?),
    };
    // An empty filter (`?handler=`) filters nothing, as `?status=` does.
    let filter = JobFilter {
        statuses,
        handler: q.handler.filter(|h| !h.is_empty()),
        queue: q.queue.filter(|q| !q.is_empty()),
        schedule,
    };
    let page = state
        .store
        .list_jobs(
            auth.org,
            &filter,
            page_request(q.limit, q.cursor.as_deref())?,
        )
        .await?;
    Ok(Json(List {
        data: page.items.into_iter().map(redact::job).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// Cancel a job.
///
/// A scheduled or queued job never runs; a running job is cancelled at once
/// and its worker's later ack is refused.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The cancelled job", body = Job),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`job_finished`: already completed, failed or cancelled", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn cancel_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let id = job_id(&id)?;
    match state.engine.cancel(auth.org, id).await? {
        CancelOutcome::Cancelled(job, _) => Ok(Json(redact::job(job))),
        CancelOutcome::AlreadyFinished(job) => Err(ApiError::JobFinished {
            id,
            status: job.status,
        }),
        CancelOutcome::NotFound => Err(job_not_found(id)),
    }
}

/// Run a failed or cancelled job again.
///
/// The job is queued at once with a fresh retry budget: `max_retries` more
/// retries after this attempt. Its executions so far are kept.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The queued job", body = Job),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`job_not_retryable`: neither failed nor cancelled", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn retry_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    auth.require(Scope::JobsWrite)?;
    let id = job_id(&id)?;
    match state.engine.retry(auth.org, id).await? {
        RetryOutcome::Retried(job) => Ok(Json(redact::job(job))),
        RetryOutcome::NotRetryable(job) => Err(ApiError::JobNotRetryable {
            id,
            status: job.status,
        }),
        RetryOutcome::NotFound => Err(job_not_found(id)),
    }
}

/// List a job's executions (one per attempt), newest first.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/executions", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"), PageQuery),
    responses(
        (status = 200, body = List<Execution>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_executions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<Execution>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let id = job_id(&id)?;
    let page = state
        .store
        .executions(
            auth.org,
            ExecutionsOf::Job(id),
            page_request(q.limit, q.cursor.as_deref())?,
        )
        .await?
        .ok_or_else(|| job_not_found(id))?;
    Ok(Json(List {
        data: page.items,
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// A path id that is not a UUID names no job: 404, like any unknown id.
fn job_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("job {raw} not found")))
}

fn job_not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("job {id} not found"))
}
