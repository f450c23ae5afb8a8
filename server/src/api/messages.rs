//! `/v1/messages`: one-shot HTTP requests (seed 004). A message is a push
//! job without a handler: its raw `body` is what will be sent, as given. It
//! is a job like any other — `GET /v1/jobs/{id}` and its executions show it.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use super::jobs::{
    DEFAULT_QUEUE, DEFAULT_TIMEOUT_SECONDS, MAX_SCHEDULE_AHEAD_SECONDS, TargetFields,
    check_signing_secret, check_target, validate_target,
};
use super::queues::callback_queue;
use crate::job::{Follow, NewJob, RunAt};
use crate::queue::QueueRecord;
use crate::store::{FanOutCreated, StoreError};
use crate::target_group::{MemberRecord, NewFanOut};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::headers::redacted;
use chronos_proto::message::MAX_MESSAGE_BODY_BYTES;
use chronos_proto::{
    CreateMessage, Delivery, ErrorBody, FanOutAccepted, HttpTarget, Job, Message, MessageAccepted,
    MessagePublished, Scope, Timestamp,
};
use serde_json::Value;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(crate) const MESSAGE_TARGET: TargetFields = TargetFields {
    url: "url",
    signing_secret_id: "signing_secret_id",
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_message))
        .routes(routes!(get_message))
}

/// Publish a one-shot HTTP request, now or later, to a `url` or fanned
/// out to every member of a target group (`default_target_group_id`).
///
/// Answers 202 once the message (or every delivery of the fan-out) is
/// committed: it will be delivered even if the server restarts.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = CreateMessage,
    responses(
        (status = 202, description = "`{message_id, scheduled_at}`, or for a fan-out `{fan_out: true, fan_out_id, message_ids, count, queue, scheduled_at}`", body = MessagePublished),
        (status = 400, description = "The body breaks the schema (`field` names the culprit): `url is required` (unless `default_target_group_id` is given), `Provide either url or default_target_group_id, not both`…; or `callback_queue_id` names a queue with nowhere to deliver (no `default_target_url` or `default_target_group_id`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:write`", body = ErrorBody),
        (status = 404, description = "`not_found`: `default_target_group_id` or `callback_queue_id` names nothing of the organization's", body = ErrorBody),
        (status = 409, description = "`duplicate_message`: the deduplication_id was used before", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a rule beyond the schema (see CreateMessage: a URL that is not http(s), both delay and scheduled_at, a body over 102,400 bytes, `***redacted***` as a sensitive header's value, a target group without members…), or `ssrf_blocked`: the SSRF guard refused the target", body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the organization's plan allows no more jobs this day or month (`window`, `limit`, `used`, `resets_at`; `Retry-After`, `RateLimit-Policy`, `RateLimit`)", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:write"]))
)]
async fn create_message(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateMessage>,
) -> Result<(StatusCode, Json<MessagePublished>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let queue = state
        .store
        .queue(auth.org, DEFAULT_QUEUE)
        .await?
        .ok_or_else(|| ApiError::QueueNotFound {
            name: DEFAULT_QUEUE.into(),
        })?;
    let retries = req.retries.unwrap_or(0);
    let answer = match publish(&state, &auth, req, &queue, Some(retries)).await? {
        Publication::One(job) => MessagePublished::Message(MessageAccepted {
            message_id: job.id,
            scheduled_at: job.run_at,
        }),
        Publication::FanOut(id, jobs) => MessagePublished::FanOut(fan_out_accepted(id, &jobs)),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// What a publish made.
pub(crate) enum Publication {
    One(Box<Job>),
    /// A fan-out (its id) and its deliveries, in the members' order.
    FanOut(Uuid, Vec<Job>),
}

/// The 202 answer of a publish that fanned out.
pub(crate) fn fan_out_accepted(id: Uuid, jobs: &[Job]) -> FanOutAccepted {
    FanOutAccepted {
        fan_out: true,
        fan_out_id: id,
        message_ids: jobs.iter().map(|j| j.id).collect(),
        count: jobs.len() as u32,
        queue: jobs.first().map(|j| j.queue.clone()).unwrap_or_default(),
        scheduled_at: jobs.first().map_or_else(Timestamp::now, |j| j.run_at),
    }
}

/// Publishes `req` onto `queue` with `retries` (`None`: the queue's): one
/// message to its `url`, or one per member of the target group it names,
/// sharing a fan-out. Its outcome goes to its `callback_queue_id`, else the
/// queue's. A `deduplication_id` already used is `duplicate_message`.
pub(crate) async fn publish(
    state: &AppState,
    auth: &Auth,
    req: CreateMessage,
    queue: &QueueRecord,
    retries: Option<u32>,
) -> Result<Publication, ApiError> {
    auth.require_queue(&queue.name)?;
    let callback = match req.callback_queue_id.as_deref() {
        Some(named) => Some(callback_queue(state, auth, named).await?.id),
        None => queue.settings.callback_queue_id,
    };
    // The message's own choice, else its queue's (which, without a
    // callback queue, has no callbacks to make).
    let every_attempt = match req.callback_on {
        Some(on) => on == chronos_proto::CallbackOn::EveryAttempt,
        None => queue.settings.callback_on == chronos_proto::CallbackOn::EveryAttempt,
    };
    if req.callback_on.is_some() && every_attempt && callback.is_none() {
        return Err(ApiError::validation(
            "callback_on",
            "callback_on every_attempt needs a callback_queue_id (on the message or as its queue's default)",
        ));
    }
    // Read with its members below: an id that is no group of the
    // organization's finds none.
    let group_not_found =
        |id: &str| ApiError::NotFound(format!("default_target_group_id not found: {id}"));
    let group = match req.default_target_group_id.as_deref() {
        Some(id) => Some(Uuid::parse_str(id).map_err(|_| group_not_found(id))?),
        None => None,
    };
    let mut job = validate(req)?;
    job.queue = queue.name.clone();
    job.max_retries = retries;
    job.follow.callback_queue_id = callback;
    job.follow.every_attempt = every_attempt;
    let duplicate = |e: StoreError| match e {
        StoreError::IdempotencyConflict { existing } => ApiError::DuplicateMessage { existing },
        e => e.into(),
    };
    let Some(group) = group else {
        check_target(state, auth.org, &job, &MESSAGE_TARGET).await?;
        let job = state
            .engine
            .create_job(auth.org, job)
            .await
            .map_err(duplicate)?;
        return Ok(Publication::One(Box::new(job)));
    };
    if let Delivery::Push {
        signing_secret_id: Some(id),
        ..
    } = &job.delivery
    {
        check_signing_secret(state, auth.org, *id, MESSAGE_TARGET.signing_secret_id).await?;
    }
    // Members were checked by the SSRF guard when added; every address is
    // checked again when a delivery connects.
    let members = state
        .store
        .members(auth.org, group)
        .await?
        .ok_or_else(|| group_not_found(&group.to_string()))?;
    if members.is_empty() {
        return Err(ApiError::rule(
            "default_target_group_id",
            format!("target group {group} has no members: there is nowhere to deliver"),
        ));
    }
    let fan_out = NewFanOut {
        id: Uuid::now_v7(),
        group_id: group,
        queue: job.queue.clone(),
        callback_queue_id: callback,
    };
    let id = fan_out.id;
    let jobs = members
        .iter()
        .enumerate()
        .map(|(i, member)| delivery_to(&job, member, id, i))
        .collect();
    match state
        .engine
        .create_fan_out(auth.org, fan_out, jobs)
        .await
        .map_err(duplicate)?
    {
        FanOutCreated::Created(jobs) => Ok(Publication::FanOut(id, jobs)),
        FanOutCreated::Conflict { existing } => Err(ApiError::DuplicateMessage { existing }),
        FanOutCreated::OverQuota(refusal) => Err(ApiError::QuotaExceeded(refusal)),
    }
}

/// The `i`th delivery of a fan-out `fan_out`: the message `base` to one
/// member, with the message's headers and then the member's own (which win).
fn delivery_to(base: &NewJob, member: &MemberRecord, fan_out: Uuid, i: usize) -> NewJob {
    let Delivery::Push {
        http,
        signing_secret_id,
    } = &base.delivery
    else {
        unreachable!("a message is a push job");
    };
    let mut headers = http.headers.clone();
    headers.extend(member.headers.clone());
    let http = HttpTarget {
        url: member.target_url.clone(),
        method: member.method,
        headers,
    };
    NewJob {
        id: Uuid::now_v7(),
        name: format!("{} {}", http.method.as_str(), http.url),
        delivery: Delivery::Push {
            http,
            signing_secret_id: *signing_secret_id,
        },
        // The deduplication_id holds the fan-out: the first delivery carries
        // it, the others derive theirs from it.
        idempotency_key: base.idempotency_key.as_ref().map(|key| match i {
            0 => key.clone(),
            i => format!("{key}#{i}"),
        }),
        follow: Follow {
            fan_out_id: Some(fan_out),
            ..base.follow
        },
        ..base.clone()
    }
}

/// Turns a request into a push job, or says which rule beyond the schema
/// it breaks (422). A message fanning out to a group has no `url` of its
/// own: its target is left empty, for [`publish`] to fill in per member.
pub(crate) fn validate(req: CreateMessage) -> Result<NewJob, ApiError> {
    let http = HttpTarget {
        url: req.url.unwrap_or_default(),
        method: req.method.unwrap_or_default(),
        headers: req.headers.unwrap_or_default(),
    };
    if req.default_target_group_id.is_none() {
        validate_target("", &http)?;
    } else {
        super::redact::refuse_redacted("", &http.headers)?;
    }
    validate_body(req.body.as_deref())?;
    let run_at = match (req.delay, req.scheduled_at) {
        // The schema refuses both (400); a caller outside the API would get this.
        (Some(_), Some(_)) => {
            return Err(ApiError::rule(
                "delay",
                "Provide either delay or scheduled_at, not both",
            ));
        }
        (Some(0), None) | (None, None) => RunAt::Now,
        // At most ten years: the schema's `maximum`.
        (Some(secs), None) => RunAt::After(Duration::from_secs(secs)),
        // A moment already past is delivered at once.
        (None, Some(at)) if at <= Timestamp::now() => RunAt::Now,
        (None, Some(at)) => {
            if (at.0 - Timestamp::now().0).num_seconds() as u64 > MAX_SCHEDULE_AHEAD_SECONDS {
                return Err(ApiError::rule(
                    "scheduled_at",
                    "scheduled_at may be at most 10 years ahead",
                ));
            }
            RunAt::At(at)
        }
    };
    Ok(NewJob {
        id: Uuid::now_v7(),
        name: format!("{} {}", http.method.as_str(), http.url),
        handler: None,
        payload: req.body.map_or(Value::Null, Value::String),
        queue: DEFAULT_QUEUE.to_string(),
        concurrency_key: req.concurrency_key,
        priority: 0,
        delivery: Delivery::Push {
            http,
            signing_secret_id: req.signing_secret_id,
        },
        run_at,
        max_retries: Some(req.retries.unwrap_or(0)),
        timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        schedule_id: None,
        idempotency_key: req.deduplication_id,
        follow: Default::default(),
    })
}

/// A body sent as given (a message's, a `url` schedule's): at most
/// [`MAX_MESSAGE_BODY_BYTES`].
pub(crate) fn validate_body(body: Option<&str>) -> Result<(), ApiError> {
    match body {
        Some(body) if body.len() > MAX_MESSAGE_BODY_BYTES => Err(ApiError::rule(
            "body",
            // Only a body of multi-byte characters gets here: the schema
            // counts characters (400 with the same words).
            format!(
                "Body exceeds {MAX_MESSAGE_BODY_BYTES} byte limit ({} bytes)",
                body.len()
            ),
        )),
        _ => Ok(()),
    }
}

/// Get a message.
#[utoipa::path(
    get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = Uuid, Path, description = "Message id (its job id)")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such message in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_message(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let not_found = || ApiError::NotFound(format!("message {id} not found"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let job = state
        .store
        .job(auth.org, uuid)
        .await?
        .ok_or_else(not_found)?;
    message(job).map(Json).ok_or_else(not_found)
}

/// A job as a message, if it is one (push, no handler), as answers show it.
fn message(job: Job) -> Option<Message> {
    let Delivery::Push {
        http,
        signing_secret_id,
    } = job.delivery
    else {
        return None;
    };
    if job.handler.is_some() {
        return None;
    }
    Some(Message {
        message_id: job.id,
        url: http.url,
        method: http.method,
        headers: redacted(&http.headers),
        body: match job.payload {
            Value::String(body) => Some(body),
            _ => None,
        },
        status: job.status,
        scheduled_at: job.run_at,
        retries: job.max_retries,
        attempt: job.attempt,
        deduplication_id: job.idempotency_key,
        signing_secret_id,
        concurrency_key: job.concurrency_key,
        held_reason: job.held_reason,
        fan_out_id: job.fan_out_id,
        callback_queue_id: job.callback_queue_id,
        last_error: job.last_error,
        created_at: job.created_at,
        finished_at: job.finished_at,
    })
}
