//! `/v1/endpoints`: where the organization's push deliveries go, and their
//! health (`crate::endpoint`). Reading needs `jobs:read`; enabling one —
//! which releases its held deliveries — needs `admin`.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::QueryParams;
use super::pagination::{Cursor, PageQuery, page_request};
use crate::endpoint::{Enabled, EndpointRecord};
use axum::Json;
use axum::extract::{Path, State};
use chronos_proto::{Endpoint, EndpointEnabled, EndpointStatus, ErrorBody, List, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints))
        .routes(routes!(get_endpoint))
        .routes(routes!(enable_endpoint))
}

/// List the organization's push endpoints (scheme, host and port) and
/// their health, newest first. An endpoint appears once a delivery to it
/// has been attempted.
#[utoipa::path(
    get, path = "/v1/endpoints", tag = "endpoints",
    params(PageQuery),
    responses(
        (status = 200, body = List<Endpoint>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_endpoints(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<List<Endpoint>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let page = state
        .store
        .endpoints(auth.org, page_request(q.limit, q.cursor.as_deref())?)
        .await?;
    Ok(Json(List {
        data: page.items.into_iter().map(to_wire).collect(),
        next_cursor: page.next.map(|id| Cursor(id).encode()),
    }))
}

/// Get one endpoint and its health.
#[utoipa::path(
    get, path = "/v1/endpoints/{id}", tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, body = Endpoint),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found(&id))?;
    let record = state
        .store
        .endpoint(auth.org, uuid)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_wire(record)))
}

/// Enable an endpoint: its failures are forgotten and its held deliveries
/// released, due at once (their attempts were never spent). Enabling a
/// healthy endpoint changes nothing.
#[utoipa::path(
    post, path = "/v1/endpoints/{id}/enable", tag = "endpoints",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, body = EndpointEnabled),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn enable_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<EndpointEnabled>, ApiError> {
    auth.require(Scope::Admin)?;
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found(&id))?;
    match state.engine.enable_endpoint(auth.org, uuid).await? {
        Enabled::Done(record, released) => Ok(Json(EndpointEnabled {
            endpoint: to_wire(*record),
            released,
        })),
        Enabled::NotFound => Err(not_found(&id)),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("endpoint {id} not found"))
}

fn to_wire(r: EndpointRecord) -> Endpoint {
    let h = &r.health;
    let status = h.status();
    let since = match status {
        EndpointStatus::Disabled => h.disabled_at,
        EndpointStatus::Failing => h.failing_since,
        EndpointStatus::Healthy => h.healthy_since,
    }
    .unwrap_or(r.created_at);
    Endpoint {
        id: r.id,
        url: r.endpoint.url(),
        scheme: r.endpoint.scheme.clone(),
        host: r.endpoint.host().to_string(),
        port: r.endpoint.port(),
        status,
        since,
        consecutive_failures: h.failures,
        last_failure_at: h.last_failure_at,
        last_error: h.last_error.clone(),
        disabled_reason: h.disabled_reason.clone(),
        held_deliveries: r.held,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
