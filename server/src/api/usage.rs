//! `/v1/usage`: the organization's plan and what it has used of it.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::account::plans::Window;
use axum::Json;
use axum::extract::State;
use chronos_proto::{ErrorBody, Scope, Usage, UsageWindow};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

/// The organization's plan, and the jobs it has created this UTC day and
/// this calendar month against the plan's limits.
#[utoipa::path(
    get, path = "/v1/usage", tag = "organizations",
    responses(
        (status = 200, body = Usage),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn usage(State(state): State<AppState>, auth: Auth) -> Result<Json<Usage>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let plan = state.store.organization_plan(auth.org).await?;
    let counts = state.store.usage(auth.org).await?;
    let window = |window: Window, used: u64, limit: Option<u64>| UsageWindow {
        used,
        limit,
        resets_at: window.resets_at(counts.at),
    };
    Ok(Json(Usage {
        day: window(Window::Day, counts.day, plan.messages_per_day),
        month: window(Window::Month, counts.month, plan.messages_per_month),
        plan: plan.to_wire(),
    }))
}
