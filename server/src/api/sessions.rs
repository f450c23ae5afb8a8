//! `/v1/auth`: people sign in and out, see their session, change their
//! password.
//!
//! Sign-in answers the same way, after the same work, for an unknown
//! e-mail and a wrong password (a dummy hash is checked), and is
//! rate-limited per account and per client address. A session lives in an
//! `HttpOnly`, `SameSite=Lax` cookie (`Secure` when `--public-url` is
//! https), is replaced at each sign-in, and ends after 7 days unused or 30
//! days in all.

use super::AppState;
use super::auth::{
    Caller, ClientAddr, Principal, SameOrigin, cleared_cookie_header, session_cookie,
    session_cookie_header,
};
use super::error::ApiError;
use super::extract::JsonBody;
use super::rate_limit::Limit;
use crate::account::passwords;
use crate::account::people::{NewSession, SessionRecord, Token, email_key};
use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use chronos_proto::{ChangePassword, ErrorBody, Login, Session};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(current_session))
        .routes(routes!(change_password))
}

/// Starts a session for `user` (ending the one the request came with, if
/// any): its record, and the `Set-Cookie` header that carries it.
pub(super) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: Uuid,
) -> Result<(SessionRecord, String), ApiError> {
    if let Some(old) = session_cookie(headers) {
        state.store.delete_session(&Token::hash(&old)).await?;
    }
    let token = Token::generate();
    let session = state
        .store
        .create_session(NewSession {
            token_sha256: token.sha256,
            user_id: user,
            csrf_token: Token::generate().text,
        })
        .await?;
    Ok((session, session_cookie_header(&state.accounts, &token.text)))
}

/// The session as the API shows it.
pub(super) async fn session_wire(
    state: &AppState,
    session: &SessionRecord,
) -> Result<Session, ApiError> {
    let organizations = state
        .store
        .belongings(session.user.id)
        .await?
        .into_iter()
        .map(|b| b.to_wire())
        .collect();
    Ok(Session {
        user: session.user.to_wire(),
        organizations,
        csrf_token: session.csrf_token.clone(),
        expires_at: session.expires_at,
    })
}

/// Sign in with e-mail and password: a session cookie, and the session
/// (with the token writes carry in `X-CSRF-Token`).
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, body = Session, headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "Wrong e-mail or password (the answer does not say which)", body = ErrorBody),
        (status = 403, description = "`csrf_failed`: sent from another site", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    _: SameOrigin,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<Login>,
) -> Result<Response, ApiError> {
    let account = email_key(&req.email);
    state.accounts.limits.enforce(
        Limit::LoginPerAddress,
        &client.ip.to_string(),
        "sign-in attempts from this address",
    )?;
    state.accounts.limits.enforce(
        Limit::LoginPerAccount,
        &account,
        "sign-in attempts for this account",
    )?;
    let user = state.store.user_by_email(&account).await?;
    let ok =
        passwords::verify_async(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::Unauthorized("wrong e-mail or password".into()));
    };
    let (session, cookie) = start_session(&state, &headers, user.id).await?;
    let body = session_wire(&state, &session).await?;
    Ok((AppendHeaders([(SET_COOKIE, cookie)]), Json(body)).into_response())
}

fn person(caller: Principal) -> Result<SessionRecord, ApiError> {
    match caller {
        Principal::Person(s) => Ok(s),
        Principal::Key(_) => Err(ApiError::Denied {
            code: "session_required",
            message: "this route is for a signed-in person; it came with an API key".into(),
        }),
    }
}

/// Sign out: the session ends, and its cookie is cleared.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 403, description = "`csrf_failed` or `session_required`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let session = person(caller)?;
    state.store.delete_session(&session.token_sha256).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, cleared_cookie_header(&state.accounts))]),
    )
        .into_response())
}

/// The signed-in person, their organizations and roles, and the token
/// their writes carry in `X-CSRF-Token`.
#[utoipa::path(
    get, path = "/v1/auth/session", tag = "auth",
    responses(
        (status = 200, body = Session),
        (status = 403, description = "`session_required`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn current_session(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Session>, ApiError> {
    let session = person(caller)?;
    Ok(Json(session_wire(&state, &session).await?))
}

/// Change one's password (at least 10 characters, not a common one). Every
/// other session of the person ends.
#[utoipa::path(
    post, path = "/v1/auth/password", tag = "auth",
    request_body = ChangePassword,
    responses(
        (status = 204),
        (status = 401, description = "The current password is wrong", body = ErrorBody),
        (status = 403, description = "`csrf_failed` or `session_required`", body = ErrorBody),
        (status = 422, description = "The new password breaks the policy", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn change_password(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(req): JsonBody<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let session = person(caller)?;
    let user = session.user;
    state.accounts.limits.enforce(
        Limit::LoginPerAccount,
        &email_key(&user.email),
        "password attempts for this account",
    )?;
    if !passwords::verify_async(req.current_password, Some(user.password_hash.clone())).await {
        return Err(ApiError::Unauthorized(
            "the current password is wrong".into(),
        ));
    }
    passwords::check_policy(&req.new_password, &user.email)
        .map_err(|e| ApiError::rule("new_password", e.to_string()))?;
    let hash = passwords::hash_async(req.new_password)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))?;
    state
        .store
        .set_password(user.id, &hash, &session.token_sha256)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
