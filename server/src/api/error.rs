//! The one place where errors become HTTP answers.
//!
//! Client errors are answered with their code and a message a person can act
//! on, and not logged. Internal errors are logged once, with an id, and the
//! client sees only "internal error" and that id.

use crate::account::plans::QuotaExceeded;
use crate::job::rules::Invalid;
use crate::push::guard::TargetError;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chronos_proto::{ErrorBody, ErrorDetail, JobStatus, Scope};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field's value is not acceptable (400 `validation_failed`).
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// The request fits the document's schema but breaks a rule no schema
    /// can state — one field excludes another, a time must still be ahead,
    /// a cron expression must parse (422 `validation_failed`). Each route
    /// that can answer it says the rule in its description.
    #[error("{message}")]
    Rule { field: String, message: String },
    /// 422 `verification_failed`: neither of a domain's challenges holds
    /// its token (the message says what each found).
    #[error("{0}")]
    VerificationFailed(String),
    /// The body is not JSON (400 `invalid_json`).
    #[error("{0}")]
    InvalidJson(String),
    /// A field or query parameter this route does not know (400 `unknown_field`).
    #[error("{message}")]
    UnknownField { field: String, message: String },
    /// 415: a body that says it is not JSON.
    #[error("send the body as JSON with `Content-Type: application/json` (got `{0}`)")]
    UnsupportedMediaType(String),
    /// 413.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 401: no usable key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid key without the scope this route needs (a person's role
    /// without it is [`ApiError::Denied`] `forbidden`, naming the role).
    #[error("this API key lacks the `{0}` scope this request needs")]
    Forbidden(Scope),
    /// 403 for a refusal that is not a missing scope: `csrf_failed`,
    /// `owner_only`, `signup_closed`, `role_not_allowed`.
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// 400 `organization_required`: a person in several organizations did
    /// not say which one (`Chronos-Organization: <slug>`).
    #[error("{0}")]
    OrganizationRequired(String),
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: super::rate_limit::RetryAfter,
    },
    /// 429 `quota_exceeded`: the organization's plan allows no more jobs
    /// in this window (`window`, `limit`, `used`, `resets_at` in the body);
    /// or `unverified_domain_limit`: a push target's domain, unverified,
    /// took its ten of the day (with `domain`).
    #[error("{}", .0.message())]
    QuotaExceeded(QuotaExceeded),
    /// 404 for a resource; other organizations' resources are not found either.
    #[error("{0}")]
    NotFound(String),
    /// 404 `queue_not_found`: a job, message or schedule named a queue the
    /// organization doesn't have (queues are made with `POST /v1/queues`;
    /// a typo must not run a job outside its queue's limits).
    #[error("queue {name:?} not found; create it with POST /v1/queues, or use an existing queue")]
    QueueNotFound { name: String },
    /// 405.
    #[error("this route does not allow the {0} method")]
    MethodNotAllowed(String),
    /// 409: the idempotency key is held by `existing`.
    #[error("a job with this idempotency_key already exists: {existing}")]
    IdempotencyConflict { existing: Uuid },
    /// 409: a message's deduplication_id is held by `existing`.
    #[error("Duplicate message: this deduplication_id was used by message {existing}")]
    DuplicateMessage { existing: Uuid },
    /// 409: the job is already completed, failed or cancelled.
    #[error("job {id} is already {status}")]
    JobFinished { id: Uuid, status: JobStatus },
    /// 409: only failed and cancelled jobs can be retried.
    #[error("job {id} is {status}; only failed or cancelled jobs can be retried")]
    JobNotRetryable { id: Uuid, status: JobStatus },
    /// 409: an archived schedule cannot be paused, resumed or changed.
    #[error("schedule {id} is archived; it never fires again (create a new one)")]
    ScheduleArchived { id: Uuid },
    /// 409 with the resource's own code: `queue_exists`, `queue_not_empty`,
    /// `queue_in_use`, `default_queue`, `target_group_exists`,
    /// `target_group_in_use`.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 409: the token is not the job's current lease any more.
    #[error(
        "this lease is no longer the job's current one: its deadline passed, or the job was cancelled, acked, failed or leased again; nothing was changed"
    )]
    LeaseLost,
    /// 422: a push target the SSRF guard refuses.
    #[error("{message}")]
    TargetBlocked { field: String, message: String },
    /// 500: logged with an id; the client sees only the id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// A rule beyond the schema broken by `field` (422).
    pub fn rule(field: &str, message: impl Into<String>) -> Self {
        ApiError::Rule {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. }
            | ApiError::InvalidJson(_)
            | ApiError::UnknownField { .. }
            | ApiError::OrganizationRequired(_) => StatusCode::BAD_REQUEST,
            ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } | ApiError::QuotaExceeded(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::QueueNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IdempotencyConflict { .. }
            | ApiError::DuplicateMessage { .. }
            | ApiError::JobFinished { .. }
            | ApiError::JobNotRetryable { .. }
            | ApiError::ScheduleArchived { .. }
            | ApiError::Conflict { .. }
            | ApiError::LeaseLost => StatusCode::CONFLICT,
            ApiError::TargetBlocked { .. }
            | ApiError::Rule { .. }
            | ApiError::VerificationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } | ApiError::Rule { .. } => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::VerificationFailed(_) => "verification_failed",
            ApiError::UnknownField { .. } => "unknown_field",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Denied { code, .. } => code,
            ApiError::OrganizationRequired(_) => "organization_required",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::QuotaExceeded(q) => q.code(),
            ApiError::NotFound(_) => "not_found",
            ApiError::QueueNotFound { .. } => "queue_not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::IdempotencyConflict { .. } => "idempotency_key_conflict",
            ApiError::DuplicateMessage { .. } => "duplicate_message",
            ApiError::JobFinished { .. } => "job_finished",
            ApiError::JobNotRetryable { .. } => "job_not_retryable",
            ApiError::ScheduleArchived { .. } => "schedule_archived",
            ApiError::Conflict { code, .. } => code,
            ApiError::LeaseLost => "lease_lost",
            ApiError::TargetBlocked { .. } => "ssrf_blocked",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ApiError {
    /// A push target refused by the SSRF guard, for the request field `field`.
    pub fn target(field: &str, e: TargetError) -> Self {
        match e {
            TargetError::NotHttps(_) => ApiError::rule(field, e.to_string()),
            TargetError::Blocked { .. } => ApiError::TargetBlocked {
                field: field.to_string(),
                message: e.to_string(),
            },
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation {
            field: Some(e.field),
            message: e.message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyConflict { existing } => {
                ApiError::IdempotencyConflict { existing }
            }
            StoreError::QueueNotFound { name } => ApiError::QueueNotFound { name },
            StoreError::QuotaExceeded(q) => ApiError::QuotaExceeded(q),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// The status and the body's `error` object. Internal errors are logged
    /// here, once, under the id the client is given.
    pub fn detail(self) -> (StatusCode, ErrorDetail) {
        let status = self.status();
        let mut detail = ErrorDetail::new(self.code(), self.to_string());
        match self {
            ApiError::Validation { field, .. } => detail.field = field,
            ApiError::UnknownField { field, .. } => detail.field = Some(field),
            ApiError::TargetBlocked { field, .. } | ApiError::Rule { field, .. } => {
                detail.field = Some(field)
            }
            ApiError::IdempotencyConflict { existing }
            | ApiError::DuplicateMessage { existing } => detail.job_id = Some(existing),
            ApiError::QueueNotFound { .. } => detail.field = Some("queue".into()),
            ApiError::QuotaExceeded(q) => detail = q.to_detail(),
            ApiError::Internal(cause) => {
                let id = Uuid::now_v7().to_string();
                tracing::error!(error_id = %id, error = format!("{cause:#}"), "internal error");
                detail.message = format!("internal error (id {id})");
                detail.error_id = Some(id);
            }
            _ => {}
        }
        (status, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(retry_after.as_secs()),
            ApiError::QuotaExceeded(q) => Some(q.seconds_left),
            _ => None,
        };
        let quota = match &self {
            ApiError::QuotaExceeded(q) => Some(q.clone()),
            _ => None,
        };
        let (status, error) = self.detail();
        let mut response = (status, Json(ErrorBody { error })).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Some(q) = quota {
            // The IETF's RateLimit fields (draft-ietf-httpapi-ratelimit-headers):
            // the policy, and what is left of it and for how long.
            for (name, value) in q.rate_limit_headers() {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
        }
        response
    }
}
