//! `/v1/fan-outs/{id}`: one publish across a target group, and how each of
//! its deliveries stands. Reading one needs `jobs:read`.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::target_group::FanOutRecord;
use crate::target_group::callback::result;
use axum::Json;
use axum::extract::{Path, State};
use chronos_proto::{ErrorBody, FanOut, FanOutStatus, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_fan_out))
}

/// Get a fan-out: its overall status (`running` until its last delivery
/// ends, then `all_succeeded`, `partial` or `all_failed`), and each
/// delivery's, in the members' order.
#[utoipa::path(
    get, path = "/v1/fan-outs/{id}", tag = "target-groups",
    params(("id" = String, Path, description = "The fan-out's id (`fan_out_id` of the publish)")),
    responses(
        (status = 200, body = FanOut),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "No such fan-out in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_fan_out(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<FanOut>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let not_found = || ApiError::NotFound(format!("fan-out {id} not found"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let record = state
        .store
        .fan_out(auth.org, uuid)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(to_wire(record)))
}

fn to_wire(f: FanOutRecord) -> FanOut {
    let status = match f.remaining() {
        0 => FanOutStatus::of(f.succeeded, f.total),
        _ => FanOutStatus::Running,
    };
    FanOut {
        id: f.id,
        target_group_id: f.group_id,
        queue: f.queue,
        status,
        count: f.total,
        succeeded: f.succeeded,
        failed: f.failed,
        callback_queue_id: f.callback_queue_id,
        created_at: f.created_at,
        finished_at: f.finished_at,
        results: f.deliveries.iter().map(result).collect(),
    }
}
