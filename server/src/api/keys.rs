//! `/v1/api-keys`: the calling organization's keys, for `admin` only
//! (`/v1/orgs/{slug}/api-keys` names the organization instead).

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::{ApiKey, CreateApiKey, CreatedApiKey, ErrorBody, List, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// Create an API key. The full key is in this answer only.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`expires_at` is not in the future", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    auth.require(Scope::Admin)?;
    let may_instance = auth.scopes.contains(&Scope::InstanceAdmin);
    let created = super::orgs::create_key(&state, auth.org, req, may_instance).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the organization's API keys (never their secrets).
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys",
    responses(
        (status = 200, body = List<ApiKey>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn list_keys(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<List<ApiKey>>, ApiError> {
    auth.require(Scope::Admin)?;
    let keys = state.store.list_api_keys(auth.org).await?;
    Ok(Json(List {
        data: keys.iter().map(|k| k.to_wire()).collect(),
        next_cursor: None,
    }))
}

/// Revoke an API key. Requests with it are refused from now on.
#[utoipa::path(
    post, path = "/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id (the part after `chrns_`)")),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    auth.require(Scope::Admin)?;
    // Anything but a key id names no key (and must not reach the store:
    // PostgreSQL refuses some characters outright). Never echo a secret.
    let Some(id) = crate::account::keys::key_id(&id) else {
        let shown = id.split('_').take(2).collect::<Vec<_>>().join("_");
        return Err(ApiError::NotFound(format!("API key {shown} not found")));
    };
    state
        .store
        .revoke_api_key(auth.org, &id)
        .await?
        .map(|k| Json(k.to_wire()))
        .ok_or_else(|| ApiError::NotFound(format!("API key {id} not found")))
}
