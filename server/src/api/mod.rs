//! The HTTP API (axum). One module per resource; errors become HTTP answers
//! only in [`error`]; bad input is caught by the extractors in [`extract`].
//!
//! The OpenAPI document is generated from the handlers' annotations and the
//! wire types, and served at `/v1/openapi.json`.

pub mod auth;
pub mod client;
pub mod contract;
mod document;
mod domains;
mod endpoints;
pub mod error;
pub mod extract;
mod fan_outs;
mod health;
mod invites;
pub(crate) mod jobs;
mod keys;
mod krafter;
pub(crate) mod leases;
pub(crate) mod messages;
mod orgs;
pub mod pagination;
mod queues;
pub mod rate_limit;
mod redact;
mod schedules;
mod sessions;
mod signing_secrets;
mod target_groups;
mod usage;
mod workers;

use crate::lease::Engine;
use crate::push::guard::TargetPolicy;
use crate::store::DynStore;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::ApiError;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// What every handler can reach. Reads go to the store; every change of a
/// job's status goes through the engine.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub engine: Arc<Engine>,
    /// What push targets may be (the SSRF guard).
    pub targets: TargetPolicy,
    /// The handlers long-poll workers asked for, recorded now and then.
    pub polled: Arc<crate::worker::polls::PolledHandlers>,
    /// People and organizations: settings, rate limits, mail.
    pub accounts: Arc<auth::Accounts>,
    /// Checks domains' challenges (HTTPS and DNS).
    pub verifier: Arc<crate::push::verifier::Verifier>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chronos API",
        description = "Jobs, schedules and workers. A route's `security` names the scope it needs; callers send `Authorization: Bearer chrns_…` (an API key) or a session cookie from `POST /v1/auth/login` (a person, whose role grants scopes; writes then carry `X-CSRF-Token`, and a person in several organizations names one with `Chronos-Organization`).",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "One-off jobs and their executions"),
        (name = "schedules", description = "Recurring jobs: cron or interval, in any IANA timezone"),
        (name = "krafter", description = "Krafter's cron job routes and envelope (`{\"data\": …}`) over the same schedules (docs/krafter.md)"),
        (name = "messages", description = "One-shot HTTP requests, delivered now or later (push jobs without a handler)"),
        (name = "queues", description = "Named queues and their flow control: concurrency, order, pause, failure modes; publishing messages onto one"),
        (name = "target-groups", description = "Named sets of push endpoints a publish fans out to (seed 004): managing them needs `admin`, reading them `jobs:read`"),
        (name = "endpoints", description = "Push endpoints' health: an endpoint failing longer than the server's threshold is disabled and its deliveries held until it is enabled (reading needs `jobs:read`, enabling `admin`)"),
        (name = "workers", description = "Leasing jobs to workers over HTTP: poll, ack, fail, extend (worker scope)"),
        (name = "api-keys", description = "API keys (admin scope)"),
        (name = "organizations", description = "Organizations, their members, keys and invites (seed 003's `/api/orgs…` paths are aliases); a caller reaches an organization it belongs to, by slug"),
        (name = "auth", description = "People sign in with e-mail and password (a session cookie), accept invites, change their password"),
        (name = "signing-secrets", description = "The keys push requests are signed with (admin scope)"),
        (name = "domains", description = "Domains the organization proves it owns (seed 004): where its plan requires it, a push target on an unverified domain takes ten jobs a day. Managing them needs `admin`, reading them `jobs:read`"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
        );
    }
}

/// `routes` again at `path` (seed 003's `/api/…` paths): the same handlers
/// and operations, each operation id suffixed `_alias`, so the document
/// lists the alias and the contract holds requests to it alike.
fn alias(
    path: &str,
    (schemas, paths, router): UtoipaMethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    let mut renamed = utoipa::openapi::path::Paths::new();
    for (_, mut item) in paths.paths {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_alias"));
        }
        renamed.paths.insert(path.to_string(), item);
    }
    (schemas, renamed, router)
}

/// The OpenAPI document, as `/v1/openapi.json` serves it.
pub fn document() -> serde_json::Value {
    completed(routes().1)
}

fn completed(openapi: utoipa::openapi::OpenApi) -> serde_json::Value {
    document::complete(serde_json::to_value(openapi).expect("the OpenAPI document serializes"))
}

fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router())
        .merge(keys::router())
        .merge(leases::router())
        .merge(workers::router())
        .merge(signing_secrets::router())
        .merge(domains::router())
        .merge(messages::router())
        .merge(queues::router())
        .merge(target_groups::router())
        .merge(fan_outs::router())
        .merge(endpoints::router())
        .merge(schedules::router())
        .merge(krafter::router())
        .merge(orgs::router())
        .merge(orgs::aliases())
        .merge(invites::router())
        .merge(invites::aliases())
        .merge(sessions::router())
        .merge(usage::router())
        .split_for_parts()
}

/// The whole API, with its OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes();
    let doc = completed(openapi);
    let contract =
        Arc::new(contract::Contract::new(&doc).expect("the OpenAPI document's schemas compile"));
    let doc = Arc::new(doc);
    api.route_layer(axum::middleware::from_fn_with_state(
        contract,
        contract::attach,
    ))
    .route(
        "/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .route("/healthz", get(health::healthz))
    .route("/readyz", get(health::readyz))
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
    .layer(CatchPanicLayer::custom(panic_response))
    .layer(TraceLayer::new_for_http())
    .with_state(state)
}

/// A panicking handler is a bug; the client still gets our JSON 500 with an
/// id, and the panic is logged under it.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
