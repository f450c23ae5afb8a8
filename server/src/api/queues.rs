//! `/v1/queues`: named queues and their flow control (seed 004), and
//! publishing messages onto one. Managing queues needs `admin`, reading
//! them `jobs:read`, publishing `jobs:write`. A pull job names its queue
//! with `queue` on `POST /v1/jobs`; `queue/` says what the settings mean,
//! `store::flow` how they are enforced.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::jobs::{check_signing_secret, check_url, validate_target};
use super::messages::{Publication, fan_out_accepted};
use crate::queue::{DEFAULT_QUEUE, QueueRecord, QueueSettings, RateLimit};
use crate::store::DeleteQueue;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::{
    CallbackOn, CreateMessage, CreateQueue, ErrorBody, HttpTarget, List, PublishMessage, Queue,
    QueueKey, QueueMessageAccepted, QueuePublished, QueueState, QueueStats, Scope, UpdateQueue,
};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// How many unfinished jobs a forced delete cancels per pass.
const CANCEL_BATCH: u32 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_queue, list_queues))
        .routes(routes!(get_queue, update_queue, delete_queue))
        .routes(routes!(pause_queue))
        .routes(routes!(resume_queue))
        .routes(routes!(unblock_queue))
        .routes(routes!(queue_keys))
        .routes(routes!(publish_message))
}

fn not_found(name: &str) -> ApiError {
    ApiError::QueueNotFound {
        name: name.to_string(),
    }
}

/// Create a queue.
///
/// Seed 004's defaults: one job at a time (`concurrency` 1, strictly in
/// order), 3 retries, `fifo`, `continue`.
#[utoipa::path(
    post, path = "/v1/queues", tag = "queues",
    request_body = CreateQueue,
    responses(
        (status = 201, description = "The queue, active and not blocked", body = Queue),
        (status = 400, description = "`validation_failed` or `unknown_field`: the body breaks the schema (`name is required`, `concurrency must be between 1 and 100`, `ordering must be one of: fifo, lifo`, `failure_mode must be one of: continue, block, pause`, `rate_limit and rate_period_seconds must be set together`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`not_found`: `default_target_group_id not found`", body = ErrorBody),
        (status = 409, description = "`queue_exists`: the organization has a queue of this name", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a rule beyond the schema (a `name` of `.` or `..`, which no URL can name; a `default_target_url` that is not an http(s) URL, a `signing_secret_id` of another organization), or `ssrf_blocked`: the SSRF guard refused `default_target_url`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_queue(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateQueue>,
) -> Result<(StatusCode, Json<Queue>), ApiError> {
    auth.require(Scope::Admin)?;
    let name = req.name.clone().unwrap_or_default();
    if name == "." || name == ".." {
        // A URL reads the segment as a step in the path: no route could
        // reach the queue.
        return Err(ApiError::rule(
            "name",
            "name can't be `.` or `..`: a URL can't name such a queue",
        ));
    }
    let defaults = QueueSettings::new_queue();
    let patch = UpdateQueue {
        concurrency: req.concurrency,
        retries: req.retries,
        ordering: req.ordering,
        failure_mode: req.failure_mode,
        rate_limit: req.rate_limit.map(Some),
        rate_period_seconds: req.rate_period_seconds.map(Some),
        key_concurrency: req.key_concurrency.map(Some),
        key_rate_limit: req.key_rate_limit.map(Some),
        key_rate_period_seconds: req.key_rate_period_seconds.map(Some),
        signing_secret_id: req.signing_secret_id.map(Some),
        default_target_url: req.default_target_url.map(Some),
        default_target_group_id: req.default_target_group_id.map(Some),
        callback_queue_id: req.callback_queue_id.map(Some),
        callback_on: req.callback_on,
    };
    let settings = settings(&state, &auth, defaults, patch).await?;
    let record = state
        .store
        .create_queue(auth.org, Uuid::now_v7(), &name, &settings)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "queue_exists",
            message: format!("A queue with this name already exists: {name}"),
        })?;
    let mut wire = to_wire(&state, &auth, &record, false).await?;
    // Where its messages go without a `url`: the default target, or each
    // member of the default group.
    let mut urls: Vec<String> = settings.default_target_url.iter().cloned().collect();
    if let Some(group) = settings.default_target_group_id {
        let members = state.store.members(auth.org, group).await?;
        urls.extend(members.into_iter().flatten().map(|m| m.target_url));
    }
    let hosts: Vec<String> = urls
        .iter()
        .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_string))
        .collect();
    wire.warning = super::domains::unverified_warning(&state, &auth, &hosts).await?;
    Ok((StatusCode::CREATED, Json(wire)))
}

/// List the organization's queues, by name.
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues",
    responses(
        (status = 200, body = List<Queue>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_queues(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<List<Queue>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let mut data = Vec::new();
    for record in state.store.list_queues(auth.org).await? {
        data.push(to_wire(&state, &auth, &record, false).await?);
    }
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// Get a queue, with what it holds now (`stats`).
#[utoipa::path(
    get, path = "/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, body = Queue),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    auth.require(Scope::JobsRead)?;
    auth.require_queue(&name)?;
    let record = state
        .store
        .queue(auth.org, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(to_wire(&state, &auth, &record, true).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct KeysQuery {
    /// How many keys, 1 to 100. Default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// The busiest concurrency keys of a queue's unfinished jobs: most running
/// first, then most waiting. Jobs without a key are not listed.
#[utoipa::path(
    get, path = "/v1/queues/{name}/keys", tag = "queues",
    params(("name" = String, Path, description = "The queue's name"), KeysQuery),
    responses(
        (status = 200, description = "`next_cursor` is always `null`: the busiest keys only", body = List<QueueKey>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn queue_keys(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    QueryParams(q): QueryParams<KeysQuery>,
) -> Result<Json<List<QueueKey>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    auth.require_queue(&name)?;
    state
        .store
        .queue(auth.org, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let limit = q.limit.unwrap_or(super::pagination::DEFAULT_LIMIT);
    let data = state.store.queue_keys(auth.org, &name, limit).await?;
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// Change a queue's settings: only the fields given change; `null` removes
/// a limit. A new limit applies at once to the jobs already waiting (and
/// counts those running); it never stops a running job.
#[utoipa::path(
    patch, path = "/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    request_body = UpdateQueue,
    responses(
        (status = 200, body = Queue),
        (status = 400, description = "The body breaks the schema", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`, or `default_target_group_id not found`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "As for `POST /v1/queues`; and `validation_failed` when the change leaves a rate limit without its period or the other way round (`rate_limit and rate_period_seconds must be set together`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn update_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(patch): JsonBody<UpdateQueue>,
) -> Result<Json<Queue>, ApiError> {
    auth.require(Scope::Admin)?;
    auth.require_queue(&name)?;
    let current = state
        .store
        .queue(auth.org, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let settings = settings(&state, &auth, current.settings, patch).await?;
    let record = state
        .store
        .update_queue(auth.org, &name, &settings)
        .await?
        .ok_or_else(|| not_found(&name))?;
    state.engine.queue_opened();
    Ok(Json(to_wire(&state, &auth, &record, false).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct QueueDeleted {
    name: String,
    deleted: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteQueueQuery {
    /// Cancel the queue's unfinished jobs first. Default `false`: a queue
    /// that holds any is not deleted (409).
    force: Option<bool>,
}

/// Delete a queue. Refused (409) while it holds unfinished jobs — unless
/// `force=true`, which cancels them first — while a schedule names it, and
/// for the `default` queue.
#[utoipa::path(
    delete, path = "/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "The queue's name"), DeleteQueueQuery),
    responses(
        (status = 200, description = "`{\"name\": …, \"deleted\": true}`", body = QueueDeleted),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
        (status = 409, description = "`queue_not_empty` (it holds unfinished jobs; `force=true` cancels them), `queue_in_use` (a schedule names it) or `default_queue` (every organization keeps its `default` queue)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn delete_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    QueryParams(q): QueryParams<DeleteQueueQuery>,
) -> Result<Json<QueueDeleted>, ApiError> {
    auth.require(Scope::Admin)?;
    auth.require_queue(&name)?;
    if name == DEFAULT_QUEUE {
        return Err(ApiError::Conflict {
            code: "default_queue",
            message: "the default queue can't be deleted".into(),
        });
    }
    if q.force == Some(true) {
        // Through the lease engine, which alone changes a job's status (a
        // running job's worker is told).
        loop {
            let ids = state
                .store
                .unfinished_in_queue(auth.org, &name, CANCEL_BATCH)
                .await?;
            for &id in &ids {
                state.engine.cancel(auth.org, id).await?;
            }
            if (ids.len() as u32) < CANCEL_BATCH {
                break;
            }
        }
    }
    match state.store.delete_queue(auth.org, &name).await? {
        DeleteQueue::Deleted => Ok(Json(QueueDeleted {
            name,
            deleted: true,
        })),
        DeleteQueue::NotFound => Err(not_found(&name)),
        DeleteQueue::HoldsJobs(n) => Err(ApiError::Conflict {
            code: "queue_not_empty",
            message: format!(
                "queue {name:?} holds {n} unfinished jobs; wait for them, or delete with ?force=true to cancel them"
            ),
        }),
        DeleteQueue::NamedBySchedule(id) => Err(ApiError::Conflict {
            code: "queue_in_use",
            message: format!("schedule {id} names queue {name:?}; change or archive it first"),
        }),
    }
}

/// Pause a queue: it starts nothing until resumed. Running jobs finish;
/// waiting jobs keep their order.
#[utoipa::path(
    post, path = "/v1/queues/{name}/pause", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, body = Queue),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn pause_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    set_status(state, auth, name, QueueState::Paused).await
}

/// Resume a paused queue.
#[utoipa::path(
    post, path = "/v1/queues/{name}/resume", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, body = Queue),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn resume_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    set_status(state, auth, name, QueueState::Active).await
}

async fn set_status(
    state: AppState,
    auth: Auth,
    name: String,
    status: QueueState,
) -> Result<Json<Queue>, ApiError> {
    auth.require(Scope::Admin)?;
    auth.require_queue(&name)?;
    let record = state
        .store
        .set_queue_status(auth.org, &name, status)
        .await?
        .ok_or_else(|| not_found(&name))?;
    if status == QueueState::Active {
        state.engine.queue_opened();
    }
    Ok(Json(to_wire(&state, &auth, &record, false).await?))
}

/// Unblock a queue a dead job blocked (`failure_mode: block`): it starts
/// jobs again, the next in its order first.
#[utoipa::path(
    post, path = "/v1/queues/{name}/unblock", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    responses(
        (status = 200, body = Queue),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn unblock_queue(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    auth.require(Scope::Admin)?;
    auth.require_queue(&name)?;
    let record = state
        .store
        .unblock_queue(auth.org, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    state.engine.queue_opened();
    Ok(Json(to_wire(&state, &auth, &record, false).await?))
}

/// Publish a message onto a queue: a push job that inherits the queue's
/// signing secret, retries, limits and callback queue; fanned out to every
/// member of a target group when it names one, or names no target and the
/// queue's default is a group.
///
/// Answers 202 once the message is committed.
#[utoipa::path(
    post, path = "/v1/queues/{name}/messages", tag = "queues",
    params(("name" = String, Path, description = "The queue's name")),
    request_body = PublishMessage,
    responses(
        (status = 202, description = "`{message_id, queue, scheduled_at}`, or for a fan-out `{fan_out: true, fan_out_id, message_ids, count, queue, scheduled_at}`", body = QueuePublished),
        (status = 400, description = "The body breaks the schema (`Provide either url or default_target_group_id, not both`…); or `callback_queue_id` names a queue with nowhere to deliver", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:write`", body = ErrorBody),
        (status = 404, description = "`queue_not_found`: no queue of this name in the organization; `not_found`: `default_target_group_id` or `callback_queue_id` names nothing of the organization's", body = ErrorBody),
        (status = 409, description = "`duplicate_message`: the deduplication_id was used before", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a rule beyond the schema (as for `POST /v1/messages`; `url is required` for a queue without a `default_target_url`), or `ssrf_blocked`", body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the organization's plan allows no more jobs this day or month (`window`, `limit`, `used`, `resets_at`; `Retry-After`, `RateLimit-Policy`, `RateLimit`)", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn publish_message(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<PublishMessage>,
) -> Result<(StatusCode, Json<QueuePublished>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    auth.require_queue(&name)?;
    let queue = state
        .store
        .queue(auth.org, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    // The message's target, else the queue's (a URL, or a group to fan out
    // to: a queue has one or the other).
    let (url, group) = match (req.url, req.default_target_group_id) {
        (None, None) => (
            queue.settings.default_target_url.clone(),
            queue
                .settings
                .default_target_group_id
                .map(|g| g.to_string()),
        ),
        given => given,
    };
    if url.is_none() && group.is_none() {
        return Err(ApiError::rule("url", "url is required"));
    }
    let message = CreateMessage {
        url,
        method: req.method,
        headers: req.headers,
        body: req.body,
        delay: req.delay,
        scheduled_at: req.scheduled_at,
        deduplication_id: req.deduplication_id,
        retries: None,
        signing_secret_id: queue.settings.signing_secret_id,
        concurrency_key: req.concurrency_key,
        callback_queue_id: req.callback_queue_id,
        callback_on: req.callback_on,
        default_target_group_id: group,
    };
    // The queue's retries (`None`), read by the insert with the queue's row.
    let answer = match super::messages::publish(&state, &auth, message, &queue, None).await? {
        Publication::One(job) => QueuePublished::Message(QueueMessageAccepted {
            message_id: job.id,
            queue: job.queue,
            scheduled_at: job.run_at,
        }),
        Publication::FanOut(id, jobs) => QueuePublished::FanOut(fan_out_accepted(id, &jobs)),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// `patch` over `base`: the settings a create or a `PATCH` asks for, or the
/// rule they break.
fn merge(base: QueueSettings, patch: UpdateQueue) -> Result<QueueSettings, ApiError> {
    let pick = |given: Option<Option<u32>>, was: Option<u32>| given.unwrap_or(was);
    let rate = |limit: Option<u32>, period: Option<u32>, names: (&str, &str)| match (limit, period)
    {
        (Some(limit), Some(period_seconds)) => Ok(Some(RateLimit {
            limit,
            period_seconds,
        })),
        (None, None) => Ok(None),
        // A `PATCH` that leaves one without the other (with the stored
        // settings, so beyond the schema: 422; a create breaking it is the
        // schema's 400).
        _ => Err(ApiError::rule(
            if limit.is_some() { names.1 } else { names.0 },
            format!("{} and {} must be set together", names.0, names.1),
        )),
    };
    Ok(QueueSettings {
        concurrency: pick(patch.concurrency, base.concurrency),
        retries: patch.retries.unwrap_or(base.retries),
        ordering: patch.ordering.unwrap_or(base.ordering),
        failure_mode: patch.failure_mode.unwrap_or(base.failure_mode),
        rate: rate(
            pick(patch.rate_limit, base.rate.map(|r| r.limit)),
            pick(
                patch.rate_period_seconds,
                base.rate.map(|r| r.period_seconds),
            ),
            ("rate_limit", "rate_period_seconds"),
        )?,
        key_concurrency: pick(patch.key_concurrency, base.key_concurrency),
        key_rate: rate(
            pick(patch.key_rate_limit, base.key_rate.map(|r| r.limit)),
            pick(
                patch.key_rate_period_seconds,
                base.key_rate.map(|r| r.period_seconds),
            ),
            ("key_rate_limit", "key_rate_period_seconds"),
        )?,
        signing_secret_id: patch.signing_secret_id.unwrap_or(base.signing_secret_id),
        default_target_url: patch.default_target_url.unwrap_or(base.default_target_url),
        // Checked and set by `settings`, which reads the store.
        default_target_group_id: base.default_target_group_id,
        callback_queue_id: base.callback_queue_id,
        callback_on: patch.callback_on.unwrap_or(base.callback_on),
    })
}

/// `patch` over `base`, checked: the settings a create or a `PATCH` asks
/// for, with the target group and callback queue it names found in the
/// organization.
async fn settings(
    state: &AppState,
    auth: &Auth,
    base: QueueSettings,
    patch: UpdateQueue,
) -> Result<QueueSettings, ApiError> {
    let group = patch.default_target_group_id.clone();
    let callback = patch.callback_queue_id.clone();
    let mut settings = merge(base, patch)?;
    if let Some(group) = group {
        settings.default_target_group_id = match group {
            Some(id) => Some(target_group_id(state, auth, &id).await?),
            None => None,
        };
    }
    if let Some(callback) = callback {
        settings.callback_queue_id = match callback {
            Some(queue) => Some(callback_queue(state, auth, &queue).await?.id),
            None => None,
        };
    }
    if settings.callback_on == CallbackOn::EveryAttempt && settings.callback_queue_id.is_none() {
        return Err(ApiError::validation(
            "callback_on",
            "callback_on every_attempt needs a callback_queue_id",
        ));
    }
    check_settings(state, auth, &settings).await?;
    Ok(settings)
}

/// The id of the organization's target group `id` names (seed 004's 404
/// otherwise).
pub(crate) async fn target_group_id(
    state: &AppState,
    auth: &Auth,
    id: &str,
) -> Result<Uuid, ApiError> {
    let not_found = || ApiError::NotFound(format!("default_target_group_id not found: {id}"));
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    match state.store.target_group(auth.org, uuid).await? {
        Some(group) => Ok(group.id),
        None => Err(not_found()),
    }
}

/// The queue a `callback_queue_id` names, by id or name: one of the
/// organization's (404) with somewhere to deliver (400).
pub(crate) async fn callback_queue(
    state: &AppState,
    auth: &Auth,
    queue: &str,
) -> Result<QueueRecord, ApiError> {
    let found = match Uuid::parse_str(queue) {
        Ok(id) => state.store.queue_by_id(auth.org, id).await?,
        Err(_) => state.store.queue(auth.org, queue).await?,
    };
    let record = found.ok_or_else(|| {
        ApiError::NotFound(format!(
            "callback_queue_id not found: no queue {queue:?} in this organization"
        ))
    })?;
    let s = &record.settings;
    if s.default_target_url.is_none() && s.default_target_group_id.is_none() {
        return Err(ApiError::validation(
            "callback_queue_id",
            format!(
                "queue {:?} has nowhere to deliver a callback: give it a default_target_url or default_target_group_id",
                record.name
            ),
        ));
    }
    Ok(record)
}

/// The rules of a queue's settings beyond the schema (422).
async fn check_settings(
    state: &AppState,
    auth: &Auth,
    settings: &QueueSettings,
) -> Result<(), ApiError> {
    if let Some(id) = settings.signing_secret_id {
        check_signing_secret(state, auth.org, id, "signing_secret_id").await?;
    }
    if settings.default_target_url.is_some() && settings.default_target_group_id.is_some() {
        return Err(ApiError::rule(
            "default_target_group_id",
            "a queue delivers to a default_target_url or fans out to a default_target_group_id, not both",
        ));
    }
    if let Some(url) = &settings.default_target_url {
        let http = HttpTarget {
            url: url.clone(),
            method: Default::default(),
            headers: Default::default(),
        };
        validate_target("default_target_", &http)?;
        check_url(state, url, "default_target_url").await?;
    }
    Ok(())
}

/// A queue as the API answers it; with what it holds now when `stats`.
async fn to_wire(
    state: &AppState,
    auth: &Auth,
    record: &QueueRecord,
    stats: bool,
) -> Result<Queue, ApiError> {
    let counts = if stats || record.blocked {
        Some(state.store.queue_counts(auth.org, &record.name).await?)
    } else {
        None
    };
    let s = &record.settings;
    let blocked_message_count = match (&counts, record.blocked) {
        (Some(c), true) => c.queued + c.scheduled,
        _ => 0,
    };
    let stats = match counts.filter(|_| stats) {
        Some(c) => {
            // A queue of one slot, idle, whose next job no worker serves
            // (none connected over WebSocket, none long-polling for it
            // lately): it waits for one.
            let waiting_for_handler = match (&c.head_handler, s.concurrency, c.running) {
                (Some(handler), Some(1), 0) => {
                    let served = state
                        .store
                        .handler_served(
                            auth.org,
                            handler,
                            crate::lease::liveness::WORKER_GRACE,
                            crate::worker::polls::POLLED_ALIVE,
                        )
                        .await?;
                    (!served).then(|| handler.clone())
                }
                _ => None,
            };
            Some(QueueStats {
                running: c.running,
                queued: c.queued,
                scheduled: c.scheduled,
                oldest_queued_at: c.oldest_queued_at,
                waiting_for_handler,
            })
        }
        None => None,
    };
    Ok(Queue {
        id: record.id,
        name: record.name.clone(),
        concurrency: s.concurrency,
        max_retries: s.retries,
        ordering: s.ordering,
        failure_mode: s.failure_mode,
        status: record.status,
        rate_limit: s.rate.map(|r| r.limit),
        rate_period_seconds: s.rate.map(|r| r.period_seconds),
        key_concurrency: s.key_concurrency,
        key_rate_limit: s.key_rate.map(|r| r.limit),
        key_rate_period_seconds: s.key_rate.map(|r| r.period_seconds),
        signing_secret_id: s.signing_secret_id,
        default_target_url: s.default_target_url.clone(),
        default_target_group_id: s.default_target_group_id,
        callback_queue_id: s.callback_queue_id,
        callback_on: s.callback_on,
        blocked: record.blocked,
        blocked_message_count,
        created_at: record.created_at,
        updated_at: record.updated_at,
        stats,
        warning: None,
    })
}
