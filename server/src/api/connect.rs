//! `GET /v1/workers/connect`: the WebSocket upgrade into a worker session.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::worker::session;
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::response::Response;
use chronos_proto::{ErrorBody, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connect))
}

/// Open a worker session over WebSocket (protocol 1; see docs/workers.md).
#[utoipa::path(
    get, path = "/v1/workers/connect", tag = "workers",
    responses(
        (status = 101, description = "Switching to the worker protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `worker`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn connect(
    State(state): State<AppState>,
    auth: Auth,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    auth.require(Scope::Worker)?;
    let upgrade = upgrade.map_err(|e| ApiError::Validation {
        field: None,
        message: format!("this endpoint takes a WebSocket upgrade: {e}"),
    })?;
    let (engine, orphans, org) = (state.engine, state.orphans, auth.org);
    Ok(upgrade.on_upgrade(move |socket| session::run(socket, engine, orphans, org)))
}
