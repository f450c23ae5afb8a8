//! `/v1/target-groups`: named sets of push endpoints (seed 004). A message
//! naming a group, or published onto a queue whose default it is, fans out
//! to every member. Managing groups and members needs `admin`; reading them
//! `jobs:read`. A member's sensitive headers are never shown.

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::push::guard::{self, TargetError};
use crate::store::{DeleteGroup, Renamed};
use crate::target_group::{MemberRecord, NewMember, TargetGroupRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::headers::redacted;
use chronos_proto::{CreateMember, CreateTargetGroup, ErrorBody, List, Member, Scope, TargetGroup};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_group, list_groups))
        .routes(routes!(get_group, rename_group, delete_group))
        .routes(routes!(add_member, list_members))
        .routes(routes!(remove_member))
}

/// Seed 004's words for a name it can't take.
const NAME_RULE: &str = "name is required (max 200 chars)";

fn group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("target group {id} not found"))
}

/// The group `id` names, if it is one of the organization's: another
/// organization's is not found either.
pub(crate) async fn find_group(
    state: &AppState,
    auth: &Auth,
    id: &str,
) -> Result<TargetGroupRecord, ApiError> {
    let uuid = Uuid::parse_str(id).map_err(|_| group_not_found(id))?;
    state
        .store
        .target_group(auth.org, uuid)
        .await?
        .ok_or_else(|| group_not_found(id))
}

fn name_of(req: CreateTargetGroup) -> Result<String, ApiError> {
    // The schema refuses these (400 with the same words); a caller outside
    // the API would get here.
    let name = req.name.unwrap_or_default();
    if name.trim().is_empty()
        || name.chars().count() > chronos_proto::target_group::MAX_GROUP_NAME_CHARS
    {
        return Err(ApiError::validation("name", NAME_RULE));
    }
    Ok(name)
}

fn name_taken() -> ApiError {
    ApiError::Conflict {
        code: "target_group_exists",
        message: "A target group with this name already exists".into(),
    }
}

/// Create a target group.
#[utoipa::path(
    post, path = "/v1/target-groups", tag = "target-groups",
    request_body = CreateTargetGroup,
    responses(
        (status = 201, body = TargetGroup),
        (status = 400, description = "`validation_failed`: `name is required (max 200 chars)`; or `unknown_field`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 409, description = "`target_group_exists`: `A target group with this name already exists`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_group(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(req): JsonBody<CreateTargetGroup>,
) -> Result<(StatusCode, Json<TargetGroup>), ApiError> {
    auth.require(Scope::Admin)?;
    let name = name_of(req)?;
    let group = state
        .store
        .create_target_group(auth.org, Uuid::now_v7(), &name)
        .await?
        .ok_or_else(name_taken)?;
    Ok((StatusCode::CREATED, Json(group_to_wire(group))))
}

/// List the organization's target groups, oldest first.
#[utoipa::path(
    get, path = "/v1/target-groups", tag = "target-groups",
    responses(
        (status = 200, description = "`next_cursor` is always `null`: every group", body = List<TargetGroup>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_groups(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<List<TargetGroup>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let groups = state.store.list_target_groups(auth.org).await?;
    Ok(Json(List {
        data: groups.into_iter().map(group_to_wire).collect(),
        next_cursor: None,
    }))
}

/// Get a target group.
#[utoipa::path(
    get, path = "/v1/target-groups/{id}", tag = "target-groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, body = TargetGroup),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "No such group in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn get_group(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<TargetGroup>, ApiError> {
    auth.require(Scope::JobsRead)?;
    Ok(Json(group_to_wire(find_group(&state, &auth, &id).await?)))
}

/// Rename a target group.
#[utoipa::path(
    patch, path = "/v1/target-groups/{id}", tag = "target-groups",
    params(("id" = String, Path, description = "The group's id")),
    request_body = CreateTargetGroup,
    responses(
        (status = 200, body = TargetGroup),
        (status = 400, description = "`validation_failed`: `name is required (max 200 chars)`; or `unknown_field`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such group in this organization", body = ErrorBody),
        (status = 409, description = "`target_group_exists`: another group has the name", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn rename_group(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateTargetGroup>,
) -> Result<Json<TargetGroup>, ApiError> {
    auth.require(Scope::Admin)?;
    let group = find_group(&state, &auth, &id).await?;
    let name = name_of(req)?;
    match state
        .store
        .rename_target_group(auth.org, group.id, &name)
        .await?
    {
        Renamed::Done(group) => Ok(Json(group_to_wire(group))),
        Renamed::NotFound => Err(group_not_found(&id)),
        Renamed::NameTaken => Err(name_taken()),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct GroupDeleted {
    id: Uuid,
    deleted: bool,
}

/// Delete a target group and its members. Refused (409) while a queue names
/// it as its `default_target_group_id`. Deliveries already fanned out go on.
#[utoipa::path(
    delete, path = "/v1/target-groups/{id}", tag = "target-groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "`{\"id\": …, \"deleted\": true}`", body = GroupDeleted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such group in this organization", body = ErrorBody),
        (status = 409, description = "`target_group_in_use`: a queue names it as its default", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn delete_group(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<GroupDeleted>, ApiError> {
    auth.require(Scope::Admin)?;
    let group = find_group(&state, &auth, &id).await?;
    match state.store.delete_target_group(auth.org, group.id).await? {
        DeleteGroup::Deleted => Ok(Json(GroupDeleted {
            id: group.id,
            deleted: true,
        })),
        DeleteGroup::NotFound => Err(group_not_found(&id)),
        DeleteGroup::NamedByQueue(queue) => Err(ApiError::Conflict {
            code: "target_group_in_use",
            message: format!(
                "queue {queue:?} names this target group as its default_target_group_id; change the queue first"
            ),
        }),
    }
}

/// Add an endpoint to a target group. It receives the publishes made from
/// now on, not earlier ones.
#[utoipa::path(
    post, path = "/v1/target-groups/{id}/members", tag = "target-groups",
    params(("id" = String, Path, description = "The group's id")),
    request_body = CreateMember,
    responses(
        (status = 201, description = "The member; sensitive headers read `***redacted***`", body = Member),
        (status = 400, description = "`validation_failed`: `target_url is required`, `Invalid target_url`, `Only HTTPS target_urls are allowed` (plain http only where the server allows private targets), `method must be one of: GET, POST, PUT, PATCH, DELETE`; or `unknown_field`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such group in this organization", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`ssrf_blocked`: `target_url` is or resolves to a private, loopback or metadata address; or `validation_failed`: a sensitive header's value is `***redacted***` (what answers show, not a credential)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateMember>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    auth.require(Scope::Admin)?;
    let group = find_group(&state, &auth, &id).await?;
    let member = NewMember {
        id: Uuid::now_v7(),
        target_url: check_member_url(&state, req.target_url.unwrap_or_default()).await?,
        method: req.method.unwrap_or_default(),
        headers: req.headers.unwrap_or_default(),
    };
    super::redact::refuse_redacted("", &member.headers)?;
    let member = state
        .store
        .add_member(auth.org, group.id, &member)
        .await?
        .ok_or_else(|| group_not_found(&id))?;
    Ok((StatusCode::CREATED, Json(member_to_wire(member))))
}

/// A member's URL as seed 004 checks it: present, a URL, `https` (400), and
/// a public address (422 `ssrf_blocked`).
async fn check_member_url(state: &AppState, url: String) -> Result<String, ApiError> {
    const FIELD: &str = "target_url";
    if url.is_empty() {
        return Err(ApiError::validation(FIELD, "target_url is required"));
    }
    let parsed = match url::Url::parse(&url) {
        Ok(parsed) if parsed.host().is_some() => parsed,
        _ => return Err(ApiError::validation(FIELD, "Invalid target_url")),
    };
    match guard::check(&parsed, state.targets).await {
        Ok(()) => Ok(url),
        Err(TargetError::NotHttps(_)) => Err(ApiError::validation(
            FIELD,
            "Only HTTPS target_urls are allowed",
        )),
        Err(e) => Err(ApiError::target(FIELD, e)),
    }
}

/// A group's endpoints, oldest first.
#[utoipa::path(
    get, path = "/v1/target-groups/{id}/members", tag = "target-groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "Every member (`next_cursor` is always `null`); sensitive headers read `***redacted***`", body = List<Member>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `jobs:read`", body = ErrorBody),
        (status = 404, description = "No such group in this organization", body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<List<Member>>, ApiError> {
    auth.require(Scope::JobsRead)?;
    let group = find_group(&state, &auth, &id).await?;
    let members = state
        .store
        .members(auth.org, group.id)
        .await?
        .ok_or_else(|| group_not_found(&id))?;
    Ok(Json(List {
        data: members.into_iter().map(member_to_wire).collect(),
        next_cursor: None,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct MemberRemoved {
    id: Uuid,
    deleted: bool,
}

/// Remove an endpoint from a group. Deliveries already fanned out to it go
/// on.
#[utoipa::path(
    delete, path = "/v1/target-groups/{id}/members/{member_id}", tag = "target-groups",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("member_id" = String, Path, description = "The member's id"),
    ),
    responses(
        (status = 200, description = "`{\"id\": …, \"deleted\": true}`", body = MemberRemoved),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The key lacks `admin`", body = ErrorBody),
        (status = 404, description = "No such group in this organization, or no such member in it", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Json<MemberRemoved>, ApiError> {
    auth.require(Scope::Admin)?;
    let group = find_group(&state, &auth, &id).await?;
    let not_found =
        || ApiError::NotFound(format!("member {member_id} not found in target group {id}"));
    let member = Uuid::parse_str(&member_id).map_err(|_| not_found())?;
    if !state
        .store
        .remove_member(auth.org, group.id, member)
        .await?
    {
        return Err(not_found());
    }
    Ok(Json(MemberRemoved {
        id: member,
        deleted: true,
    }))
}

fn group_to_wire(group: TargetGroupRecord) -> TargetGroup {
    TargetGroup {
        id: group.id,
        name: group.name,
        created_at: group.created_at,
        updated_at: group.updated_at,
    }
}

fn member_to_wire(member: MemberRecord) -> Member {
    Member {
        id: member.id,
        target_url: member.target_url,
        method: member.method,
        headers: redacted(&member.headers),
        created_at: member.created_at,
    }
}
