//! `/v1/signing-secrets`: the HMAC keys push requests are signed with, for
//! `admin` keys only. A value is shown when it is made (create, rotate) and
//! never again.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, OptionalJsonBody};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::{
    CreateSigningSecret, ErrorBody, List, RevealedSigningSecret, RotateSigningSecret, Scope,
    SigningSecret,
};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// How long an old value keeps signing after a rotation, by default and at most.
pub const DEFAULT_ROTATION_WINDOW: u32 = 24 * 3600;
/// Stated in the document (`maximum = 604800`), which enforces it; only the
/// test holding the two equal reads this.
#[cfg_attr(not(test), allow(dead_code))]
pub const MAX_ROTATION_WINDOW: u32 = 7 * 24 * 3600;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_secret, list_secrets))
        .routes(routes!(get_secret))
        .routes(routes!(rotate_secret))
}

/// A new value: `whsec_` and 64 hex digits (32 random bytes).
fn new_value() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn secret_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("signing secret {id} not found"))
}

/// Create a signing secret. Its value is in this answer only.
#[utoipa::path(
    post, path = "/v1/signing-secrets", tag = "signing-secrets",
    request_body = CreateSigningSecret,
    responses(
        (status = 201, body = RevealedSigningSecret),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_secret(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateSigningSecret>,
) -> Result<(StatusCode, Json<RevealedSigningSecret>), ApiError> {
    auth.require(Scope::Admin)?;
    let name = req.name.unwrap_or_else(|| "signing secret".into());
    let value = new_value();
    let record = state
        .store
        .insert_signing_secret(auth.org, Uuid::now_v7(), &name, &value)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RevealedSigningSecret {
            signing_secret: record.to_wire(),
            secret: value,
        }),
    ))
}

/// List the organization's signing secrets (never their values).
#[utoipa::path(
    get, path = "/v1/signing-secrets", tag = "signing-secrets",
    responses(
        (status = 200, body = List<SigningSecret>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn list_secrets(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<List<SigningSecret>>, ApiError> {
    auth.require(Scope::Admin)?;
    let secrets = state.store.list_signing_secrets(auth.org).await?;
    Ok(Json(List {
        data: secrets.iter().map(|s| s.to_wire()).collect(),
        next_cursor: None,
    }))
}

/// Get a signing secret (never its value).
#[utoipa::path(
    get, path = "/v1/signing-secrets/{id}", tag = "signing-secrets",
    params(("id" = Uuid, Path, description = "Signing secret id")),
    responses(
        (status = 200, body = SigningSecret),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn get_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<SigningSecret>, ApiError> {
    auth.require(Scope::Admin)?;
    let uuid = secret_id(&id)?;
    state
        .store
        .signing_secret(auth.org, uuid)
        .await?
        .map(|s| Json(s.to_wire()))
        .ok_or_else(|| not_found(&id))
}

/// Replace a signing secret's value. The old value keeps signing requests
/// too for `window_seconds` (default 24 hours), so receivers can switch
/// without missing one; the new value is in this answer only.
#[utoipa::path(
    post, path = "/v1/signing-secrets/{id}/rotate", tag = "signing-secrets",
    params(("id" = Uuid, Path, description = "Signing secret id")),
    request_body(content = Option<RotateSigningSecret>, description = "Optional: no body means the defaults"),
    responses(
        (status = 200, body = RevealedSigningSecret),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    OptionalJsonBody(req): OptionalJsonBody<RotateSigningSecret>,
) -> Result<Json<RevealedSigningSecret>, ApiError> {
    auth.require(Scope::Admin)?;
    let uuid = secret_id(&id)?;
    // No body means the defaults.
    let window = req
        .and_then(|r| r.window_seconds)
        .unwrap_or(DEFAULT_ROTATION_WINDOW);
    let value = new_value();
    let record = state
        .store
        .rotate_signing_secret(auth.org, uuid, &value, Duration::from_secs(window.into()))
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(RevealedSigningSecret {
        signing_secret: record.to_wire(),
        secret: value,
    }))
}
