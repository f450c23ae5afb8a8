//! `/v1/orgs`: organizations, their members and their keys (seed 003's
//! `/api/orgs…` paths are aliases of these handlers: [`aliases`]).
//!
//! A caller reaches an organization by slug when it is one of its keys, a
//! person who belongs to it, or the instance administrator; to anyone else
//! it does not exist (404), so slugs can't be probed.

use super::auth::{Caller, ClientAddr, MaybeCaller, Principal, Signup};
use super::error::ApiError;
use super::extract::JsonBody;
use super::rate_limit::Limit;
use super::{AppState, alias};
use crate::account::keys::{ApiKeyRecord, new_api_key};
use crate::account::people::MemberChange;
use crate::account::roles::{self, RoleError, may_assign};
use crate::account::{OrgId, Organization};
use crate::store::{NewOrganization, OrgUpdate};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chronos_proto::{
    ApiKey, CreateApiKey, CreateOrganization, CreatedApiKey, CreatedOrganization, ErrorBody, List,
    Membership, Role, Scope, UpdateMembership, UpdateOrganization,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(get_org, update_org, delete_org))
        .routes(routes!(list_org_members))
        .routes(routes!(update_org_member, remove_org_member))
        .routes(routes!(create_org_key, list_org_keys))
}

/// Seed 003's `/api/orgs…` paths: the same handlers and operations.
pub fn aliases() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(alias("/api/orgs", routes!(create_org, list_orgs)))
        .routes(alias(
            "/api/orgs/{slug}",
            routes!(get_org, update_org, delete_org),
        ))
        .routes(alias(
            "/api/orgs/{slug}/api-keys",
            routes!(create_org_key, list_org_keys),
        ))
        .routes(alias("/api/orgs/{slug}/members", routes!(list_org_members)))
}

/// What a caller may do in the organization it named by slug.
pub(super) struct OrgAccess {
    pub org: Organization,
    /// The person's role; `None` for a key.
    pub role: Option<Role>,
    pub scopes: Vec<Scope>,
    pub principal: Principal,
}

impl OrgAccess {
    /// The organization `slug` names, as `caller` may reach it.
    pub async fn of(state: &AppState, caller: Principal, slug: &str) -> Result<Self, ApiError> {
        let not_found = || ApiError::NotFound(format!("organization {slug:?} not found"));
        let org = state
            .store
            .organization_by_slug(slug)
            .await?
            .ok_or_else(not_found)?;
        let (role, scopes) = match &caller {
            Principal::Key(k) if k.organization_id == org.id => (None, k.scopes.clone()),
            // The operator manages every organization (not its data).
            Principal::Key(k) if k.scopes.contains(&Scope::InstanceAdmin) => {
                (None, vec![Scope::Admin])
            }
            Principal::Key(_) => return Err(not_found()),
            Principal::Person(s) => {
                let role = state
                    .store
                    .membership(org.id, s.user.id)
                    .await?
                    .ok_or_else(not_found)?;
                (Some(role), roles::scopes(role))
            }
        };
        Ok(OrgAccess {
            org,
            role,
            scopes,
            principal: caller,
        })
    }

    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        super::auth::require(&self.scopes, self.role, needed)
    }

    /// May this caller give (or take away) `role`?
    pub async fn may_assign(&self, state: &AppState, role: Role) -> Result<(), ApiError> {
        // Whether the organization has an owner decides only a key's
        // invite of an owner: ask the store then alone.
        let has_owner = if role == Role::Owner && self.role.is_none() {
            state.store.has_owner(self.org.id).await?
        } else {
            true
        };
        may_assign(self.role, role, has_owner).map_err(role_denied)
    }
}

pub(super) fn role_denied(e: RoleError) -> ApiError {
    ApiError::Denied {
        code: match e {
            RoleError::OwnerOnly => "owner_only",
            RoleError::AdminOnly => "forbidden",
        },
        message: e.to_string(),
    }
}

/// Create an organization, with its first admin API key (shown this once).
///
/// Who may depends on the server's `--signup`: `closed` (the default) only
/// the instance administrator (a key with `instance:admin`); `open` anyone,
/// rate-limited per client address (429). A signed-in person who creates
/// one becomes its owner; one created without a session has no owner
/// until someone accepts an owner invite made with its key.
#[utoipa::path(
    post, path = "/v1/orgs", tag = "organizations",
    request_body = CreateOrganization,
    responses(
        (status = 201, body = CreatedOrganization),
        (status = 401, description = "Signup is closed and no credentials came", body = ErrorBody),
        (status = 403, description = "`signup_closed`: signup is closed and the caller is not the instance administrator", body = ErrorBody),
        (status = 409, description = "`slug_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many organizations from this address", body = ErrorBody),
    ),
    security((), ("api_key" = []))
)]
async fn create_org(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ClientAddr(client): ClientAddr,
    JsonBody(req): JsonBody<CreateOrganization>,
) -> Result<(StatusCode, Json<CreatedOrganization>), ApiError> {
    let instance_admin = caller.as_ref().is_some_and(Principal::is_instance_admin);
    if state.accounts.signup == Signup::Closed && !instance_admin {
        return Err(match caller {
            None => ApiError::Unauthorized(
                "signup is closed on this server: only the instance administrator creates organizations (send its key)".into(),
            ),
            Some(_) => ApiError::Denied {
                code: "signup_closed",
                message: "signup is closed on this server: only the instance administrator (a key with `instance:admin`) creates organizations".into(),
            },
        });
    }
    if !instance_admin {
        let ip = client.ip.to_string();
        let what = format!("organizations created from {ip}");
        state
            .accounts
            .limits
            .enforce(Limit::SignupPerAddress, &ip, &what)?;
    }
    let id = OrgId(Uuid::now_v7());
    let (admin_key, key) = new_api_key(
        id,
        "admin (created with the organization)",
        vec![Scope::Admin],
    );
    let owner = caller.as_ref().and_then(Principal::user_id);
    let (org, stored) = state
        .store
        .create_organization_with(NewOrganization {
            id,
            slug: req.slug.clone(),
            name: req.name.trim().to_string(),
            admin_key,
            owner,
        })
        .await?
        .ok_or_else(|| slug_taken(&req.slug))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOrganization {
            organization: org.to_wire(owner.map(|_| Role::Owner)),
            api_key: CreatedApiKey {
                api_key: stored.to_wire(),
                key,
            },
        }),
    ))
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::Conflict {
        code: "slug_taken",
        message: format!("the slug {slug:?} is taken; choose another"),
    }
}

/// The organizations the caller belongs to: a key's own; a person's, with
/// their role in each.
#[utoipa::path(
    get, path = "/v1/orgs", tag = "organizations",
    responses((status = 200, body = List<chronos_proto::Organization>)),
    security(("api_key" = []))
)]
async fn list_orgs(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<List<chronos_proto::Organization>>, ApiError> {
    let data = match &caller {
        Principal::Key(k) => state
            .store
            .organization(k.organization_id)
            .await?
            .map(|o| vec![o.to_wire(None)])
            .unwrap_or_default(),
        Principal::Person(s) => state
            .store
            .belongings(s.user.id)
            .await?
            .into_iter()
            .map(|b| b.to_wire())
            .collect(),
    };
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// Get an organization the caller belongs to.
#[utoipa::path(
    get, path = "/v1/orgs/{slug}", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, body = chronos_proto::Organization),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<chronos_proto::Organization>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    Ok(Json(access.org.to_wire(access.role)))
}

/// Rename an organization, or change its slug (`admin`); put it on
/// another plan (the instance administrator only).
#[utoipa::path(
    patch, path = "/v1/orgs/{slug}", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    request_body = UpdateOrganization,
    responses(
        (status = 200, body = chronos_proto::Organization),
        (status = 422, description = "`validation_failed`: no plan of that name", body = ErrorBody),
        (status = 403, description = "`instance_admin_only` for `plan`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`slug_taken`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn update_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<UpdateOrganization>,
) -> Result<Json<chronos_proto::Organization>, ApiError> {
    let instance_admin = caller.is_instance_admin();
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    if let Some(plan) = &req.plan {
        if !instance_admin {
            return Err(ApiError::Denied {
                code: "instance_admin_only",
                message: "only the instance administrator puts an organization on a plan".into(),
            });
        }
        if !state
            .store
            .set_organization_plan(access.org.id, plan)
            .await?
        {
            return Err(ApiError::rule(
                "plan",
                format!("there is no plan named {plan:?} (chronos plans list)"),
            ));
        }
    }
    let name = req.name.as_deref().map(str::trim);
    match state
        .store
        .update_organization(access.org.id, name, req.slug.as_deref())
        .await?
    {
        OrgUpdate::Updated(org) => Ok(Json(org.to_wire(access.role))),
        OrgUpdate::NotFound => Err(ApiError::NotFound(format!(
            "organization {slug:?} not found"
        ))),
        OrgUpdate::SlugTaken => Err(slug_taken(req.slug.as_deref().unwrap_or_default())),
    }
}

/// Delete an organization and everything it owns — jobs, schedules,
/// queues, keys, members, invites. Only an owner (or the instance
/// administrator) may; the organization holding the instance
/// administrator's key can't be deleted.
#[utoipa::path(
    delete, path = "/v1/orgs/{slug}", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 204),
        (status = 403, description = "`owner_only`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`instance_admin_org`", body = ErrorBody),
    ),
    security(("api_key" = ["owner"]))
)]
async fn delete_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let instance_admin = caller.is_instance_admin();
    let access = OrgAccess::of(&state, caller, &slug).await?;
    if access.role != Some(Role::Owner) && !instance_admin {
        return Err(ApiError::Denied {
            code: "owner_only",
            message: format!("only an owner of {slug} may delete it"),
        });
    }
    let keys = state.store.list_api_keys(access.org.id).await?;
    if keys
        .iter()
        .any(|k| k.revoked_at.is_none() && k.scopes.contains(&Scope::InstanceAdmin))
    {
        return Err(ApiError::Conflict {
            code: "instance_admin_org",
            message: format!(
                "{slug} holds the instance administrator's key; revoke it first (another key with instance:admin must exist: chronos keys create --instance-admin)"
            ),
        });
    }
    state.store.delete_organization(access.org.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's members and their roles.
#[utoipa::path(
    get, path = "/v1/orgs/{slug}/members", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, body = List<Membership>),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["jobs:read"]))
)]
async fn list_org_members(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<List<Membership>>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::JobsRead)?;
    let members = state.store.memberships(access.org.id).await?;
    Ok(Json(List {
        data: members.iter().map(|m| m.to_wire()).collect(),
        next_cursor: None,
    }))
}

fn member_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("member {id} not found")))
}

fn member_change(change: MemberChange, id: Uuid) -> Result<Option<Membership>, ApiError> {
    match change {
        MemberChange::Done(m) => Ok(m.map(|m| m.to_wire())),
        MemberChange::NotFound => Err(ApiError::NotFound(format!("member {id} not found"))),
        MemberChange::LastOwner => Err(ApiError::Conflict {
            code: "last_owner",
            message: "an organization keeps at least one owner: make another owner first".into(),
        }),
    }
}

/// Change a member's role (`admin`; only an owner makes, changes or
/// removes owners; the last owner stays one).
#[utoipa::path(
    patch, path = "/v1/orgs/{slug}/members/{user_id}", tag = "organizations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("user_id" = String, Path, description = "The member's user id"),
    ),
    request_body = UpdateMembership,
    responses(
        (status = 200, body = Membership),
        (status = 403, description = "`forbidden` or `owner_only`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn update_org_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, user_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<UpdateMembership>,
) -> Result<Json<Membership>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let user = member_id(&user_id)?;
    let current = state
        .store
        .membership(access.org.id, user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("member {user} not found")))?;
    access.may_assign(&state, current).await?;
    access.may_assign(&state, req.role).await?;
    let change = state
        .store
        .set_membership_role(access.org.id, user, req.role)
        .await?;
    member_change(change, user)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("member {user} not found")))
}

/// Remove a member (`admin`, or the member themselves leaving; only an
/// owner removes an owner; the last owner stays).
#[utoipa::path(
    delete, path = "/v1/orgs/{slug}/members/{user_id}", tag = "organizations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("user_id" = String, Path, description = "The member's user id"),
    ),
    responses(
        (status = 204),
        (status = 403, description = "`forbidden` or `owner_only`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn remove_org_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    let user = member_id(&user_id)?;
    let leaving = access.principal.user_id() == Some(user);
    if !leaving {
        access.require(Scope::Admin)?;
        let current = state
            .store
            .membership(access.org.id, user)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("member {user} not found")))?;
        access.may_assign(&state, current).await?;
    }
    let change = state.store.remove_membership(access.org.id, user).await?;
    member_change(change, user)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an API key for the organization (`admin` of it). Unlike seed
/// 003's example, this always needs a key or a session: creating keys is
/// never open to anyone.
#[utoipa::path(
    post, path = "/v1/orgs/{slug}/api-keys", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`expires_at` is not in the future", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_org_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let may_instance = access.principal.is_instance_admin();
    create_key(&state, access.org.id, req, may_instance)
        .await
        .map(|k| (StatusCode::CREATED, Json(k)))
}

/// The organization's API keys (`admin`; never their secrets).
#[utoipa::path(
    get, path = "/v1/orgs/{slug}/api-keys", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, body = List<ApiKey>),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn list_org_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<List<ApiKey>>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let keys = state.store.list_api_keys(access.org.id).await?;
    Ok(Json(List {
        data: keys.iter().map(ApiKeyRecord::to_wire).collect(),
        next_cursor: None,
    }))
}

/// Creates a key in `org`. `instance:admin` only from a caller holding it.
pub(super) async fn create_key(
    state: &AppState,
    org: OrgId,
    req: CreateApiKey,
    may_instance: bool,
) -> Result<CreatedApiKey, ApiError> {
    let mut scopes = req.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.contains(&Scope::InstanceAdmin) && !may_instance {
        return Err(ApiError::Denied {
            code: "forbidden",
            message: "only a key with `instance:admin` may create another (or use `chronos keys create --instance-admin`)".into(),
        });
    }
    if let Some(at) = req.expires_at
        && at <= chronos_proto::Timestamp::now()
    {
        return Err(ApiError::rule(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    let (mut record, key) = new_api_key(org, &req.name, scopes);
    record.expires_at = req.expires_at;
    record.queues = req.queues.map(|mut q| {
        q.sort();
        q.dedup();
        q
    });
    let stored = state.store.insert_api_key(record).await?;
    Ok(CreatedApiKey {
        api_key: stored.to_wire(),
        key,
    })
}
