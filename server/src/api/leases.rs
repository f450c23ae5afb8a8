//! The worker endpoints over HTTP: long-poll for jobs, then ack, fail or
//! extend each lease by its token. Tokens travel in bodies, never in URLs,
//! so they stay out of access logs.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use super::redact;
use crate::job::rules;
use crate::lease::Wanted;
use crate::store::{LeaseOutcome, Moved};
use axum::Json;
use axum::extract::State;
use chronos_proto::{
    AckRequest, ErrorBody, ExtendRequest, FailRequest, Job, Lease, LeasedJob, List, PollRequest,
    Scope,
};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(poll))
        .routes(routes!(ack))
        .routes(routes!(fail))
        .routes(routes!(extend))
}

/// Lease due jobs of the given handlers, waiting for one if none is due.
///
/// Answers at once when jobs are due; otherwise within moments of one
/// becoming due, or with an empty list when `wait_seconds` runs out.
#[utoipa::path(
    post, path = "/v1/workers/poll", tag = "workers",
    request_body = PollRequest,
    responses(
        (status = 200, description = "Leased jobs, best first; empty if none came in time", body = List<LeasedJob>),
        (status = 400, description = "The body breaks the schema; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `worker`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["worker"]))
)]
async fn poll(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<PollRequest>,
) -> Result<Json<List<LeasedJob>>, ApiError> {
    auth.require(Scope::Worker)?;
    // `handlers`, `max_jobs`, `wait_seconds` and `worker_id` were held to
    // the document's limits before this runs.
    let max = req.max_jobs.unwrap_or(1);
    let wait = req.wait_seconds.unwrap_or(0);
    state
        .polled
        .record(&state.store, auth.org, &req.handlers)
        .await;
    let wants = Wanted {
        handlers: req.handlers,
        queues: auth.queues,
    };
    let leased = state
        .engine
        .poll(
            auth.org,
            &wants,
            max,
            Duration::from_secs(wait.into()),
            req.worker_id.as_deref(),
            std::future::pending(),
        )
        .await?;
    // Workers lease only pull jobs, which have no headers: redacted all the
    // same, as in every answer showing a job.
    Ok(Json(List {
        data: leased
            .into_iter()
            .map(|leased| LeasedJob {
                job: redact::job(leased.job),
                ..leased
            })
            .collect(),
        next_cursor: None,
    }))
}

fn lease_outcome<T>(outcome: LeaseOutcome<T>) -> Result<T, ApiError> {
    match outcome {
        LeaseOutcome::Done(v) => Ok(v),
        LeaseOutcome::Lost => Err(ApiError::LeaseLost),
        LeaseOutcome::Unknown => Err(ApiError::NotFound(
            "no lease with this token in this organization".into(),
        )),
    }
}

/// Complete the attempt a lease holds.
#[utoipa::path(
    post, path = "/v1/leases/ack", tag = "workers",
    request_body = AckRequest,
    responses(
        (status = 200, description = "The completed job", body = Job),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No lease ever had this token", body = ErrorBody),
        (status = 409, description = "`lease_lost`: the lease expired, was replaced, or its job was cancelled; nothing changed", body = ErrorBody),
    ),
    security(("api_key" = ["worker"]))
)]
async fn ack(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<AckRequest>,
) -> Result<Json<Job>, ApiError> {
    auth.require(Scope::Worker)?;
    let outcome = state
        .engine
        .ack(auth.org, req.token, req.result, true)
        .await?;
    whole_job(lease_outcome(outcome)?)
}

/// Fail the attempt a lease holds: retried after a backoff while retries
/// remain and the failure is retryable, else the job fails.
#[utoipa::path(
    post, path = "/v1/leases/fail", tag = "workers",
    request_body = FailRequest,
    responses(
        (status = 200, description = "The job: `scheduled` for a retry, `queued` if it is due at once, or `failed`", body = Job),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
    security(("api_key" = ["worker"]))
)]
async fn fail(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<FailRequest>,
) -> Result<Json<Job>, ApiError> {
    auth.require(Scope::Worker)?;
    let failure = rules::failure(req.error, req.retryable, req.retry_in)?;
    let outcome = state
        .engine
        .fail(auth.org, req.token, failure, true)
        .await?;
    whole_job(lease_outcome(outcome)?)
}

/// The whole job an ack or fail over HTTP answers, which it asked the
/// statement for (worker sessions and push delivery need only what
/// [`Moved`] says).
fn whole_job(moved: Moved) -> Result<Json<Job>, ApiError> {
    match moved.job {
        Some(job) => Ok(Json(redact::job(*job))),
        None => Err(ApiError::Internal(anyhow::anyhow!(
            "the end of job {}'s attempt came back without the job it asked for",
            moved.id
        ))),
    }
}

/// Move a lease's deadline to `seconds` from now, for work known to be long.
#[utoipa::path(
    post, path = "/v1/leases/extend", tag = "workers",
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "The lease with its new deadline", body = Lease),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
    security(("api_key" = ["worker"]))
)]
async fn extend(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<ExtendRequest>,
) -> Result<Json<Lease>, ApiError> {
    auth.require(Scope::Worker)?;
    let by = rules::extension(req.seconds)?;
    let outcome = state.engine.extend(auth.org, req.token, by).await?;
    lease_outcome(outcome).map(Json)
}
