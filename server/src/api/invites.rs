//! Invites: an admin invites someone by e-mail with a role; the answer
//! holds a single-use link (`{public-url}/invite#<token>`) to hand over, and
//! with `--smtp-url` set it is e-mailed too. The token travels in the
//! link's fragment and in request bodies, never in a URL a server logs;
//! the store keeps only its SHA-256. An invite lasts 7 days.

use super::auth::{Caller, ClientAddr, MaybeCaller, Principal, RequestHost};
use super::error::ApiError;
use super::extract::JsonBody;
use super::orgs::OrgAccess;
use super::rate_limit::Limit;
use super::sessions::start_session;
use super::{AppState, alias};
use crate::account::mail::InviteMail;
use crate::account::passwords;
use crate::account::people::{
    Accepted, Acceptor, InviteRecord, NewInvite, NewUser, Token, email_key, valid_email,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use chronos_proto::{
    AcceptInvite, CreateInvite, CreatedInvite, ErrorBody, Invite, InviteAccepted, List, Scope,
    Timestamp,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invite, list_invites))
        .routes(routes!(revoke_invite))
        .routes(routes!(resend_invite))
        .routes(routes!(accept_invite))
}

/// Seed 003's `POST /api/orgs/{slug}/invite`.
pub fn aliases() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(alias("/api/orgs/{slug}/invite", routes!(create_invite)))
}

/// The link, and the mail if a mail server is set; a mail that fails
/// leaves the link to be handed over by hand.
async fn hand_out(
    state: &AppState,
    host: Option<&str>,
    org_name: &str,
    invited_by: Option<String>,
    invite: InviteRecord,
    token: String,
) -> CreatedInvite {
    let url = state.accounts.link(host, &format!("/invite#{token}"));
    let mut mailed = false;
    if let Some(mailer) = &state.accounts.mailer {
        let mail = InviteMail {
            to: invite.email.clone(),
            organization: org_name.to_string(),
            role: invite.role.as_str().to_string(),
            invited_by,
            url: url.clone(),
            expires_at: invite.expires_at.0,
        };
        match mailer.send_invite(&mail).await {
            Ok(()) => mailed = true,
            Err(e) => {
                tracing::warn!(error = %e, invite = %invite.id, "could not e-mail an invite; its link is in the answer")
            }
        }
    }
    CreatedInvite {
        invite: invite.to_wire(Timestamp::now()),
        url,
        token,
        mailed,
    }
}

/// Signed in as someone the invite is not for.
fn wrong_account(email: &str) -> ApiError {
    ApiError::Denied {
        code: "wrong_account",
        message: format!("this invite is for {email}; sign out first"),
    }
}

fn inviter(principal: &Principal) -> Option<String> {
    match principal {
        Principal::Person(s) => Some(s.user.name.clone().unwrap_or_else(|| s.user.email.clone())),
        Principal::Key(_) => None,
    }
}

/// Invite someone by e-mail with a role (`admin`; only an owner invites
/// owners, except into an organization that has none yet). The answer's
/// `url` is the single-use link to hand over; `mailed` says whether it was
/// also e-mailed (`--smtp-url`).
#[utoipa::path(
    post, path = "/v1/orgs/{slug}/invites", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    request_body = CreateInvite,
    responses(
        (status = 201, body = CreatedInvite),
        (status = 403, description = "`forbidden` or `owner_only`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`email` is not an e-mail address", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn create_invite(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RequestHost(host): RequestHost,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<CreateInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    access.may_assign(&state, req.role).await?;
    if !valid_email(&req.email) {
        return Err(ApiError::rule(
            "email",
            format!("{:?} is not an e-mail address", req.email),
        ));
    }
    let token = Token::generate();
    let invite = state
        .store
        .create_invite(NewInvite {
            id: Uuid::now_v7(),
            organization_id: access.org.id,
            email: req.email.trim().to_string(),
            role: req.role,
            token_sha256: token.sha256,
            invited_by: access.principal.user_id(),
        })
        .await?;
    let by = inviter(&access.principal);
    let created = hand_out(
        &state,
        host.as_deref(),
        &access.org.name,
        by,
        invite,
        token.text,
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The organization's invites, newest first (`admin`): pending, accepted,
/// revoked and expired.
#[utoipa::path(
    get, path = "/v1/orgs/{slug}/invites", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, body = List<Invite>),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn list_invites(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<List<Invite>>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let now = Timestamp::now();
    let invites = state.store.invites(access.org.id).await?;
    Ok(Json(List {
        data: invites.iter().map(|i| i.to_wire(now)).collect(),
        next_cursor: None,
    }))
}

fn invite_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("invite {id} not found")))
}

/// Revoke an invite: its link stops working (`admin`). An accepted invite
/// can't be revoked (remove the member instead).
#[utoipa::path(
    post, path = "/v1/orgs/{slug}/invites/{id}/revoke", tag = "organizations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invite's id"),
    ),
    responses(
        (status = 200, body = Invite),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn revoke_invite(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Invite>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let id = invite_id(&id)?;
    state
        .store
        .revoke_invite(access.org.id, id)
        .await?
        .map(|i| Json(i.to_wire(Timestamp::now())))
        .ok_or_else(|| ApiError::NotFound(format!("no pending invite {id}")))
}

/// Resend an invite: a new link (the old one stops working) valid 7 days
/// more, e-mailed again if a mail server is set (`admin`).
#[utoipa::path(
    post, path = "/v1/orgs/{slug}/invites/{id}/resend", tag = "organizations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invite's id"),
    ),
    responses(
        (status = 200, body = CreatedInvite),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such invite, or it was accepted or revoked", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
async fn resend_invite(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RequestHost(host): RequestHost,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<CreatedInvite>, ApiError> {
    let access = OrgAccess::of(&state, caller, &slug).await?;
    access.require(Scope::Admin)?;
    let id = invite_id(&id)?;
    let existing = state
        .store
        .invite(access.org.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no pending invite {id}")))?;
    access.may_assign(&state, existing.role).await?;
    let token = Token::generate();
    let invite = state
        .store
        .renew_invite(access.org.id, id, &token.sha256)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no pending invite {id}")))?;
    let by = inviter(&access.principal);
    Ok(Json(
        hand_out(
            &state,
            host.as_deref(),
            &access.org.name,
            by,
            invite,
            token.text,
        )
        .await,
    ))
}

/// Accept an invite. Someone new gives a password (at least 10
/// characters) and may give a name; someone with an account on this server
/// is signed in, or gives their password. The answer signs them in (a
/// session cookie).
#[utoipa::path(
    post, path = "/v1/invites/accept", tag = "auth",
    request_body = AcceptInvite,
    responses(
        (status = 200, body = InviteAccepted, headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "An account exists for the invite's e-mail: sign in, or give its password", body = ErrorBody),
        (status = 403, description = "Signed in as someone else than the invite's e-mail", body = ErrorBody),
        (status = 404, description = "Unknown, used, revoked or expired invite", body = ErrorBody),
        (status = 422, description = "The password breaks the policy, or is missing for a new account", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ),
    security((), ("api_key" = []))
)]
async fn accept_invite(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<AcceptInvite>,
) -> Result<Response, ApiError> {
    state.accounts.limits.enforce(
        Limit::LoginPerAddress,
        &client.ip.to_string(),
        "attempts from this address",
    )?;
    let hash = Token::hash(req.token.trim());
    let gone = || {
        ApiError::NotFound(
            "this invite is unknown, used, revoked or expired; ask for a new one".into(),
        )
    };
    let invite = state.store.pending_invite(&hash).await?.ok_or_else(gone)?;
    let existing = state.store.user_by_email(&email_key(&invite.email)).await?;
    let signed_in = match &caller {
        Some(Principal::Person(s)) => Some(s.user.id),
        _ => None,
    };
    let who = match existing {
        Some(user) => {
            if signed_in.is_some_and(|me| me != user.id) {
                return Err(wrong_account(&invite.email));
            }
            if signed_in.is_none() {
                state.accounts.limits.enforce(
                    Limit::LoginPerAccount,
                    &email_key(&user.email),
                    "sign-in attempts for this account",
                )?;
                let Some(password) = req.password else {
                    return Err(ApiError::Unauthorized(format!(
                        "{} has an account here: sign in first, or give its password",
                        invite.email
                    )));
                };
                if !passwords::verify_async(password, Some(user.password_hash.clone())).await {
                    return Err(ApiError::Unauthorized("wrong password".into()));
                }
            }
            Acceptor::Existing(user.id)
        }
        None => {
            if signed_in.is_some() {
                return Err(wrong_account(&invite.email));
            }
            let password = req.password.ok_or_else(|| {
                ApiError::rule(
                    "password",
                    "a password (at least 10 characters) is required to create your account",
                )
            })?;
            passwords::check_policy(&password, &invite.email)
                .map_err(|e| ApiError::rule("password", e.to_string()))?;
            let password_hash = passwords::hash_async(password)
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))?;
            Acceptor::New(NewUser {
                id: Uuid::now_v7(),
                email: invite.email.clone(),
                name: req.name.map(|n| n.trim().to_string()),
                password_hash,
            })
        }
    };
    match state.store.accept_invite(&hash, who).await? {
        Accepted::Joined {
            user,
            organization,
            role,
        } => {
            let (session, cookie) = start_session(&state, &headers, user.id).await?;
            let body = InviteAccepted {
                user: user.to_wire(),
                organization: organization.to_wire(Some(role)),
                csrf_token: session.csrf_token,
            };
            Ok((AppendHeaders([(SET_COOKIE, cookie)]), Json(body)).into_response())
        }
        Accepted::Invalid => Err(gone()),
        Accepted::EmailTaken => Err(ApiError::Conflict {
            code: "email_taken",
            message: format!("{} has an account already: give its password", invite.email),
        }),
    }
}
