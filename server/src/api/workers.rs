//! `/v1/workers`: the WebSocket upgrade into a worker session, and the list
//! of connected workers.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::worker::session;
use axum::Json;
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use chronos_proto::worker::ConnectedWorker;
use chronos_proto::{ErrorBody, List, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect))
        .routes(routes!(list_workers))
}

/// The workers connected over WebSocket to any server process.
#[utoipa::path(
    get, path = "/v1/workers", tag = "workers",
    responses(
        (status = 200, body = List<ConnectedWorker>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_workers(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<List<ConnectedWorker>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let workers = state
        .store
        .list_workers(auth.org, crate::lease::liveness::WORKER_GRACE)
        .await?;
    Ok(Json(List {
        data: workers,
        next_cursor: None,
    }))
}

/// Open a worker session over WebSocket (protocol 1; see docs/workers.md).
///
/// The four headers are a WebSocket handshake's (RFC 6455); any WebSocket
/// client sends them.
#[utoipa::path(
    get, path = "/v1/workers/connect", tag = "workers",
    params(
        ("Connection" = String, Header, description = "`Upgrade`", pattern = "^[Uu]pgrade$"),
        ("Upgrade" = String, Header, description = "`websocket`", pattern = "^websocket$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64", pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$"),
    ),
    responses(
        (status = 101, description = "Switching to the worker protocol"),
        (status = 400, description = "Not a WebSocket handshake: a header above is missing or wrong", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `worker`", body = ErrorBody),
    ),
    security(("api_key" = ["worker"]))
)]
async fn connect(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    auth.require(Scope::Worker)?;
    let upgrade = upgrade.map_err(|e| ApiError::Validation {
        field: None,
        message: format!("this endpoint takes a WebSocket upgrade: {e}"),
    })?;
    // RFC 6455 §4.2.1: the key is 16 bytes in base64; the document says so,
    // and a handshake that breaks it is refused rather than answered.
    let key = headers
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .unwrap_or_default();
    if !base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|bytes| bytes.len() == 16)
    {
        return Err(ApiError::validation(
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ));
    }
    let (engine, org, queues) = (state.engine, auth.org, auth.queues);
    Ok(upgrade
        // Worker frames are small; tungstenite's default 128 KiB read buffer,
        // allocated up front, would be most of an idle session's memory.
        .read_buffer_size(session::READ_BUFFER_BYTES)
        .write_buffer_size(session::WRITE_BUFFER_BYTES)
        .max_message_size(session::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session::run(socket, engine, org, queues)))
}
