//! Authentication: who calls, and for which organization.
//!
//! A caller is an API key (`Authorization: Bearer chrns_…`) or a person
//! signed in with a session cookie ([`SESSION_COOKIE`]). Every `/v1`
//! handler that touches an organization's data takes an [`Auth`], which
//! exists only for a valid caller, names the organization (a key's own; a
//! person's by the [`ORGANIZATION_HEADER`] when they belong to several),
//! and holds the scopes the key has or the person's role grants. The scope
//! a route needs is the one its OpenAPI `security` requirement names
//! ([`super::contract`]): it is checked here, before the body is read, so
//! one declaration is both what clients read and what the server enforces.
//!
//! Writes made with a cookie must come from the server's own pages: the
//! `Origin` (or `Sec-Fetch-Site`) must be the server's own, and
//! `X-CSRF-Token` must carry the session's token.

use super::AppState;
use super::client::{Client, TrustedProxies};
use super::contract::Operation;
use super::error::ApiError;
use super::rate_limit::RateLimits;
use crate::account::keys::{ApiKeyRecord, PresentedKey, may_use_queue};
use crate::account::mail::Mailer;
use crate::account::people::{SESSION_IDLE, SessionRecord, Token};
use crate::account::roles;
use crate::account::{OrgId, USE_RECORDED_EVERY};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use chronos_proto::{Role, Scope, Timestamp};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use url::Url;
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "chronos_session";
/// The header a person in several organizations names one with.
pub const ORGANIZATION_HEADER: &str = "chronos-organization";
/// The header a cookie-authenticated write carries the session's token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may create organizations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Signup {
    /// Only the instance administrator (a key with `instance:admin`) or
    /// the CLI.
    #[default]
    Closed,
    /// Anyone, rate-limited per client address (seed 003's flow).
    Open,
}

/// The server's settings for people and organizations, and the state
/// they need (rate limits, the mailer).
pub struct Accounts {
    /// Where users reach the server: invite links, and whether cookies
    /// are `Secure`, derive from it.
    pub public_url: Option<Url>,
    pub trusted_proxies: TrustedProxies,
    pub signup: Signup,
    pub mailer: Option<Mailer>,
    pub limits: RateLimits,
}

impl Accounts {
    /// Whether cookies must be `Secure`: the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// The server's own origin, as a browser writes it in `Origin`: the
    /// public URL's, else the `Host` the request was sent to.
    fn own_origin(&self, parts: &Parts, client: &Client) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.origin().ascii_serialization());
        }
        let host = parts.headers.get(HOST)?.to_str().ok()?;
        let scheme = if client.https == Some(true) {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{host}"))
    }

    /// The address a link to `path` is given at (`/invite#…`).
    pub fn link(&self, parts_host: Option<&str>, path: &str) -> String {
        match &self.public_url {
            Some(url) => format!("{}{path}", url.as_str().trim_end_matches('/')),
            None => format!("http://{}{path}", parts_host.unwrap_or("localhost")),
        }
    }
}

/// The client behind the request: the socket's peer, or the address a
/// trusted proxy reports.
pub fn client(parts: &Parts, state: &AppState) -> Client {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    state.accounts.trusted_proxies.client(peer, &parts.headers)
}

/// Who made a request.
#[derive(Clone, Debug)]
pub enum Principal {
    Key(ApiKeyRecord),
    Person(SessionRecord),
}

impl Principal {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Principal::Person(s) => Some(s.user.id),
            Principal::Key(_) => None,
        }
    }

    /// Whether this is a key with `instance:admin`.
    pub fn is_instance_admin(&self) -> bool {
        matches!(self, Principal::Key(k) if k.scopes.contains(&Scope::InstanceAdmin))
    }
}

/// An authenticated caller, whatever organization it acts for: the routes
/// about organizations and one's own session take this.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

/// A caller if credentials came, `None` if none did (bad credentials are
/// still a 401).
pub struct MaybeCaller(pub Option<Principal>);

/// The caller, the organization it acts for, and what it may do there.
#[derive(Clone, Debug)]
pub struct Auth {
    pub org: OrgId,
    pub scopes: Vec<Scope>,
    /// The key's id, when a key calls.
    pub key_id: Option<String>,
    /// The person and their role, when a person calls.
    pub user_id: Option<Uuid>,
    pub role: Option<Role>,
    /// The only queues a key may use; all when `None`.
    pub queues: Option<Vec<String>>,
}

impl Auth {
    /// 403 unless one of the caller's scopes grants `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        require(&self.scopes, self.role, needed)
    }

    /// 403 unless the key may use `queue`.
    pub fn require_queue(&self, queue: &str) -> Result<(), ApiError> {
        match &self.queues {
            Some(allowed) if !may_use_queue(Some(allowed), queue) => Err(ApiError::Denied {
                code: "queue_not_allowed",
                message: format!(
                    "this API key may only use the queues {}; not {queue:?}",
                    allowed.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }

    fn of_key(key: ApiKeyRecord) -> Self {
        Auth {
            org: key.organization_id,
            scopes: key.scopes,
            key_id: Some(key.id),
            user_id: None,
            role: None,
            queues: key.queues,
        }
    }
}

/// The client's address (behind trusted proxies, the one they report).
pub struct ClientAddr(pub Client);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientAddr(client(parts, state)))
    }
}

/// The `Host` the request was sent to, for links when no `--public-url`
/// is set.
pub struct RequestHost(pub Option<String>);

impl FromRequestParts<AppState> for RequestHost {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(RequestHost(
            parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
        ))
    }
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie_header(accounts: &Accounts, token: &str) -> String {
    cookie_header(
        accounts,
        token,
        crate::account::people::SESSION_ABSOLUTE.as_secs(),
    )
}

/// The `Set-Cookie` value that ends one.
pub fn cleared_cookie_header(accounts: &Accounts) -> String {
    cookie_header(accounts, "", 0)
}

fn cookie_header(accounts: &Accounts, value: &str, max_age: u64) -> String {
    let secure = if accounts.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// A request from the server's own origin ([`check_origin`]); sign-in
/// takes this.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Scripts and SDKs send no Origin and no Sec-Fetch-Site: they are
        // no browser another site could drive.
        if parts.headers.get(ORIGIN).is_none() && parts.headers.get("sec-fetch-site").is_none() {
            return Ok(SameOrigin);
        }
        check_origin(parts, state).map(|()| SameOrigin)
    }
}

fn missing_credentials() -> ApiError {
    ApiError::Unauthorized(
        "missing Authorization header; send `Authorization: Bearer chrns_…` with an API key".into(),
    )
}

/// Holds the query to the contract, once the caller is known.
fn check_query(parts: &Parts) -> Result<(), ApiError> {
    if let Some(op) = parts.extensions.get::<Arc<Operation>>() {
        op.check_query(parts.uri.query().unwrap_or(""))?;
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state)
            .await?
            .ok_or_else(missing_credentials)?;
        check_query(parts)?;
        Ok(Caller(principal))
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        check_query(parts)?;
        Ok(MaybeCaller(principal))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state)
            .await?
            .ok_or_else(missing_credentials)?;
        let auth = match principal {
            Principal::Key(key) => Auth::of_key(key),
            Principal::Person(session) => person_auth(parts, state, &session).await?,
        };
        // Only now, for a caller we know, is the request held to the contract.
        if let Some(needed) = parts
            .extensions
            .get::<Arc<Operation>>()
            .and_then(|op| op.scope)
        {
            auth.require(needed)?;
        }
        check_query(parts)?;
        Ok(auth)
    }
}

/// 403 unless one of `scopes` grants `needed`; the answer names the
/// person's role, or the key's missing scope.
pub fn require(scopes: &[Scope], role: Option<Role>, needed: Scope) -> Result<(), ApiError> {
    if scopes.iter().any(|s| s.grants(needed)) {
        return Ok(());
    }
    Err(match role {
        Some(role) => ApiError::Denied {
            code: "forbidden",
            message: format!(
                "your role in this organization ({}) lacks the `{needed}` scope this request needs",
                role.as_str()
            ),
        },
        None => ApiError::Forbidden(needed),
    })
}

/// A person's organization: the one the header names, or their only one.
async fn person_auth(
    parts: &Parts,
    state: &AppState,
    session: &SessionRecord,
) -> Result<Auth, ApiError> {
    let belongings = state.store.belongings(session.user.id).await?;
    let named = parts
        .headers
        .get(ORGANIZATION_HEADER)
        .map(|v| v.to_str().unwrap_or("").trim().to_string());
    let chosen = match named {
        Some(slug) => belongings
            .into_iter()
            .find(|b| b.organization.slug == slug)
            .ok_or_else(|| ApiError::NotFound(format!("organization {slug:?} not found")))?,
        None => {
            let mut all = belongings.into_iter();
            match (all.next(), all.next()) {
                (Some(only), None) => only,
                (None, _) => {
                    return Err(ApiError::Denied {
                        code: "no_organization",
                        message: "you belong to no organization yet; accept an invite, or create one with POST /v1/orgs".into(),
                    });
                }
                (Some(_), Some(_)) => {
                    return Err(ApiError::OrganizationRequired(
                        "you belong to several organizations: name one with the `Chronos-Organization: <slug>` header".into(),
                    ));
                }
            }
        }
    };
    Ok(Auth {
        org: chosen.organization.id,
        scopes: roles::scopes(chosen.role),
        key_id: None,
        user_id: Some(session.user.id),
        role: Some(chosen.role),
        queues: None,
    })
}

/// The caller the request's credentials name: a key, a session, or none.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<Principal>, ApiError> {
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        return key(header.to_str().unwrap_or(""), state)
            .await
            .map(|k| Some(Principal::Key(k)));
    }
    let Some(token) = session_cookie(&parts.headers) else {
        return Ok(None);
    };
    let session = state
        .store
        .session(&Token::hash(&token), SESSION_IDLE)
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "your session has ended (signed out, expired or replaced); sign in again".into(),
            )
        })?;
    if session.stale {
        let (store, token) = (state.store.clone(), session.token_sha256.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(&token).await {
                tracing::debug!(error = %e, "could not record a session's use");
            }
        });
    }
    if !parts.method.is_safe() {
        check_csrf(parts, state, &session)?;
    }
    Ok(Some(Principal::Person(session)))
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A write made with a cookie comes from the server's own pages.
fn check_csrf(parts: &Parts, state: &AppState, session: &SessionRecord) -> Result<(), ApiError> {
    check_origin(parts, state)?;
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if given.is_empty() || !bool::from(given.ct_eq(session.csrf_token.as_bytes())) {
        return Err(ApiError::Denied {
            code: "csrf_failed",
            message: "a write made with a session cookie must carry the session's token in `X-CSRF-Token` (GET /v1/auth/session gives it)".into(),
        });
    }
    Ok(())
}

/// The request comes from the server's own origin: `Origin` says so, or,
/// without it, `Sec-Fetch-Site: same-origin`. Sign-in checks this too, so
/// no other site can sign a visitor in to an account of its choosing.
pub fn check_origin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let denied = |message: String| ApiError::Denied {
        code: "csrf_failed",
        message,
    };
    if let Some(origin) = parts.headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let client = client(parts, state);
        let own = state.accounts.own_origin(parts, &client);
        if own.as_deref() == Some(origin) {
            return Ok(());
        }
        return Err(denied(format!(
            "the request comes from {origin}, not from this server ({})",
            own.as_deref().unwrap_or("unknown: set --public-url")
        )));
    }
    match parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some("same-origin") => Ok(()),
        Some(site) => Err(denied(format!(
            "the request comes from another site (Sec-Fetch-Site: {site})"
        ))),
        None => Err(denied(
            "a write made with a session cookie must say where it comes from (`Origin` or `Sec-Fetch-Site`)".into(),
        )),
    }
}

/// The key an `Authorization` header presents, if valid.
async fn key(header: &str, state: &AppState) -> Result<ApiKeyRecord, ApiError> {
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <API key>`".into())
        })?;
    let presented =
        PresentedKey::parse(token).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let unknown = || ApiError::Unauthorized(format!("unknown API key chrns_{}_…", presented.id));
    let record = state
        .store
        .api_key(&presented.id)
        .await?
        .ok_or_else(unknown)?;
    if !presented.matches(&record.secret_sha256) {
        return Err(unknown());
    }
    if let Some(at) = record.revoked_at {
        return Err(ApiError::Unauthorized(format!(
            "API key chrns_{}_… was revoked at {at}",
            record.id
        )));
    }
    if let Some(at) = record.expires_at
        && at <= Timestamp::now()
    {
        return Err(ApiError::Unauthorized(format!(
            "API key chrns_{}_… expired at {at}",
            record.id
        )));
    }
    let stale = record.last_used_at.is_none_or(|t| {
        (Timestamp::now().0 - t.0)
            .to_std()
            .is_ok_and(|ago| ago > USE_RECORDED_EVERY)
    });
    if stale {
        // Off the request's path: a worker's poll must not wait for it.
        let (store, id) = (state.store.clone(), record.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id).await {
                tracing::debug!(error = %e, "could not record a key's use");
            }
        });
    }
    Ok(record)
}
