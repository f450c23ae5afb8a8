//! `/v1/messages`: one-shot HTTP requests (seed 004). A message is a push
//! job without a handler: its raw `body` is what will be sent, as given. It
//! is a job like any other — `GET /v1/jobs/{id}` and its executions show it.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use super::jobs::{
    DEFAULT_QUEUE, DEFAULT_TIMEOUT_SECONDS, MAX_SCHEDULE_AHEAD_SECONDS, TargetFields, check_target,
    validate_target,
};
use crate::job::{NewJob, RunAt};
use crate::store::StoreError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::headers::redacted;
use chronos_proto::message::MAX_MESSAGE_BODY_BYTES;
use chronos_proto::{
    CreateMessage, Delivery, ErrorBody, HttpTarget, Job, Message, MessageAccepted, Scope, Timestamp,
};
use serde_json::Value;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const MESSAGE_TARGET: TargetFields = TargetFields {
    url: "url",
    signing_secret_id: "signing_secret_id",
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_message))
        .routes(routes!(get_message))
}

/// Publish a one-shot HTTP request, now or later.
///
/// Answers 202 once the message is committed: it will be delivered even if
/// the server restarts.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = CreateMessage,
    responses(
        (status = 202, body = MessageAccepted),
        (status = 400, description = "The body breaks the schema; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:write`", body = ErrorBody),
        (status = 409, description = "`duplicate_message`: the deduplication_id was used before", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a rule beyond the schema (see CreateMessage: a URL that is not http(s), both delay and scheduled_at, a body over 102,400 bytes, `***redacted***` as a sensitive header's value…), or `ssrf_blocked`: the SSRF guard refused the target", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn create_message(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateMessage>,
) -> Result<(StatusCode, Json<MessageAccepted>), ApiError> {
    auth.require(Scope::JobsWrite)?;
    let job = validate(req)?;
    let job = accept(&state, auth.org, job, &MESSAGE_TARGET).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageAccepted {
            message_id: job.id,
            scheduled_at: job.run_at,
        }),
    ))
}

/// Checks a message's target and creates it; a `deduplication_id` already
/// used is `duplicate_message`.
pub(crate) async fn accept(
    state: &AppState,
    org: crate::account::OrgId,
    job: NewJob,
    target: &TargetFields,
) -> Result<Job, ApiError> {
    check_target(state, org, &job, target).await?;
    state
        .engine
        .create_job(org, job)
        .await
        .map_err(|e| match e {
            StoreError::IdempotencyConflict { existing } => ApiError::DuplicateMessage { existing },
            e => e.into(),
        })
}

/// Turns a request into a push job, or says which rule beyond the schema
/// it breaks (422).
pub(crate) fn validate(req: CreateMessage) -> Result<NewJob, ApiError> {
    if let Some(queue) = req.callback_queue_id {
        return Err(ApiError::rule(
            "callback_queue_id",
            format!("callbacks are not available yet (callback_queue_id {queue:?})"),
        ));
    }
    let http = HttpTarget {
        url: req.url.unwrap_or_default(),
        method: req.method.unwrap_or_default(),
        headers: req.headers.unwrap_or_default(),
    };
    validate_target("", &http)?;
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
    security(("api_key" = []))
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
        last_error: job.last_error,
        created_at: job.created_at,
        finished_at: job.finished_at,
    })
}
