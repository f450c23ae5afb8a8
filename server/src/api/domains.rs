//! `/v1/domains`: proving the organization owns the domains its push jobs
//! call (seed 004). Where its plan requires it, a push target on a domain
//! it has not verified takes ten jobs a day; verifying a registrable
//! domain covers its subdomains. Managing domains needs `admin`; reading
//! them `jobs:read`.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::pagination::{Cursor, PageQuery, page_request};
use crate::account::domains::{self, Challenge, DomainError};
use crate::store::domains::{CheckResult, DomainRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::{
    DnsTxtChallenge, Domain, DomainRequest, DomainStatus, DomainVerification, ErrorBody, List,
    Scope, WellKnownChallenge,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_domain, list_domains))
        .routes(routes!(verify_domain))
        .routes(routes!(get_domain, delete_domain))
}

/// The wire form of a domain, with its challenges.
pub fn to_wire(record: &DomainRecord) -> Domain {
    let challenge = Challenge::new(record.domain.clone(), record.token.clone());
    Domain {
        id: record.id,
        domain: record.domain.clone(),
        status: record.status,
        verification: DomainVerification {
            well_known: WellKnownChallenge {
                url: challenge.well_known_url(),
                content: challenge.content(),
            },
            dns_txt: DnsTxtChallenge {
                name: challenge.dns_name(),
                record_type: "TXT".into(),
                value: challenge.dns_value(),
            },
        },
        method: record.method.clone(),
        verified_at: record.verified_at,
        checked_at: record.checked_at,
        last_error: record.last_error.clone(),
        created_at: record.created_at,
    }
}

/// The request's domain, normalized: seed 004's messages.
fn requested(req: DomainRequest) -> Result<String, ApiError> {
    let input = req.domain.unwrap_or_default();
    domains::normalize(&input).map_err(|e| match e {
        DomainError::Required => ApiError::Validation {
            message: "domain is required".into(),
            field: Some("domain".into()),
        },
        // The document's pattern took it: what it can't say is a 422.
        other => ApiError::rule(
            "domain",
            format!(
                "{other}: `{}` is not a host name Chronos can verify (a name such as api.example.com, not an address, a single label or a public suffix)",
                input.trim()
            ),
        ),
    })
}

fn domain_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no domain {id}"))
}

/// Begin verifying a domain: both challenges are in the answer; satisfy
/// either and call `POST /v1/domains/verify`. A domain already verified
/// answers 200; one pending answers its challenges again (201).
#[utoipa::path(
    post, path = "/v1/domains", tag = "domains",
    request_body = DomainRequest,
    responses(
        (status = 201, description = "Pending: the challenges to satisfy", body = Domain),
        (status = 200, description = "Already verified", body = Domain),
        (status = 400, description = "`domain is required`, or not a host name or URL", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 422, description = "A host name that can't be verified: an IP address, one label, a public suffix", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn add_domain(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<DomainRequest>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    auth.require(Scope::Admin)?;
    let domain = requested(req)?;
    let (record, _) = state
        .store
        .add_domain(auth.org, &domain, &domains::new_token())
        .await?;
    let status = match record.status {
        DomainStatus::Verified => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    Ok((status, Json(to_wire(&record))))
}

/// Check a domain's challenges now: the HTTPS file, then the DNS TXT
/// record; either verifies it. A failed check is a 422 saying what each
/// challenge found.
#[utoipa::path(
    post, path = "/v1/domains/verify", tag = "domains",
    request_body = DomainRequest,
    responses(
        (status = 200, description = "Verified", body = Domain),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such domain: `POST /v1/domains` first", body = ErrorBody),
        (status = 422, description = "`verification_failed`: neither challenge holds the token (the message says what each found)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn verify_domain(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<DomainRequest>,
) -> Result<Json<Domain>, ApiError> {
    auth.require(Scope::Admin)?;
    let domain = requested(req)?;
    let record = state
        .store
        .domain_named(auth.org, &domain)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no domain {domain}: begin with POST /v1/domains {{\"domain\": \"{domain}\"}}"
            ))
        })?;
    let result = match state.verifier.check(&record.domain, &record.token).await {
        Ok(method) => CheckResult::Passed(method.as_str()),
        Err(failed) => CheckResult::Failed(failed.to_string()),
    };
    let record = state
        .store
        .record_check(auth.org, record.id, &result)
        .await?
        .ok_or_else(|| not_found(&domain))?;
    match result {
        CheckResult::Passed(_) => Ok(Json(to_wire(&record))),
        CheckResult::Failed(why) => Err(ApiError::VerificationFailed(format!(
            "{domain} is not verified: {why}"
        ))),
    }
}

/// The organization's domains, newest first.
#[utoipa::path(
    get, path = "/v1/domains", tag = "domains",
    params(PageQuery),
    responses(
        (status = 200, body = List<Domain>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_domains(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<Domain>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = state
        .store
        .list_domains(auth.org, page_request(q.limit, q.cursor.as_deref())?)
        .await?;
    Ok(Json(List {
        data: page.items.iter().map(to_wire).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// One domain.
#[utoipa::path(
    get, path = "/v1/domains/{id}", tag = "domains",
    params(("id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, body = Domain),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Domain>, ApiError> {
    auth.require(Scope::JobsRead)?;
    state
        .store
        .domain(auth.org, domain_id(&id)?)
        .await?
        .map(|d| Json(to_wire(&d)))
        .ok_or_else(|| not_found(&id))
}

/// `DELETE /v1/domains/{id}`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct DomainDeleted {
    id: Uuid,
    deleted: bool,
}

/// Forget a domain: its push targets are unverified again (where the plan
/// requires verification).
#[utoipa::path(
    delete, path = "/v1/domains/{id}", tag = "domains",
    params(("id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "`{\"id\": …, \"deleted\": true}`", body = DomainDeleted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn delete_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<DomainDeleted>, ApiError> {
    auth.require(Scope::Admin)?;
    let uuid = domain_id(&id)?;
    match state.store.delete_domain(auth.org, uuid).await? {
        true => Ok(Json(DomainDeleted {
            id: uuid,
            deleted: true,
        })),
        false => Err(not_found(&id)),
    }
}

/// What a schedule or queue answers when it pushes to `hosts` and some
/// are on domains the organization has not verified while its plan
/// requires it to: seed 004's `warning`. It is created all the same.
pub(super) async fn unverified_warning(
    state: &AppState,
    auth: &Auth,
    hosts: &[String],
) -> Result<Option<String>, ApiError> {
    if hosts.is_empty()
        || !state
            .store
            .organization_plan(auth.org)
            .await?
            .verify_domains
    {
        return Ok(None);
    }
    let verified = state.store.verified_domains(auth.org).await?;
    let mut unverified: Vec<String> = hosts
        .iter()
        .filter_map(|h| domains::unverified_key(&verified, h))
        .collect();
    unverified.sort();
    unverified.dedup();
    let Some(first) = unverified.first() else {
        return Ok(None);
    };
    let (names, verb) = match unverified.len() {
        1 => (format!("the domain {first} is"), "its push targets take"),
        _ => (
            format!("the domains {} are", unverified.join(", ")),
            "their push targets take",
        ),
    };
    Ok(Some(format!(
        "{names} not verified: {verb} at most {} jobs a day until verified (POST /v1/domains)",
        domains::UNVERIFIED_PER_DAY
    )))
}
