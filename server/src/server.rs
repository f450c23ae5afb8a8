//! Runs the server: the HTTP API and the background services, until a
//! shutdown signal, then stops them in order.

use crate::account::OrgId;
use crate::account::keys::new_api_key;
use crate::account::mail::Mailer;
use crate::api::auth::{Accounts, Signup};
use crate::api::client::TrustedProxies;
use crate::api::rate_limit::RateLimits;
use crate::api::{self, AppState};
use crate::config::StoreConfig;
use crate::lease::{Engine, publisher, scheduler, sweeper};
use crate::push::dispatcher::{self, PushConfig};
use crate::push::guard::TargetPolicy;
use crate::push::rechecker;
use crate::push::verifier::{Verifier, VerifierConfig};
use crate::retention;
use crate::store::sqlite::OpenMode;
use crate::store::{Clock, Opened};
use anyhow::Context;
use axum::serve::ListenerExt;
use chronos_proto::Scope;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Opens the store, checks it answers, applies pending migrations, and on an
/// empty store creates the default organization with an admin key, which is
/// returned (the only time it exists in clear).
pub async fn prepare_store(
    config: &StoreConfig,
    mode: OpenMode,
    clock: Clock,
) -> anyhow::Result<(Opened, Option<String>)> {
    let opened = config.open(mode, clock)?;
    let store = &opened.store;
    store
        .ping()
        .await
        .with_context(|| format!("cannot reach {}", config.describe()))?;
    let applied = store.migrate().await.context("migrating the database")?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "applied migrations");
    }
    let org_id = OrgId(uuid::Uuid::now_v7());
    // The first key is also the instance administrator's: it may create
    // organizations on a server whose signup is closed.
    let (admin, key) = new_api_key(
        org_id,
        "admin (created on first start)",
        vec![Scope::Admin, Scope::InstanceAdmin],
    );
    let created = store.bootstrap(admin).await?.is_some();
    Ok((opened, created.then_some(key)))
}

/// How a server behaves, beyond its store and address.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Whether push targets may be private addresses or plain HTTP.
    pub targets: TargetPolicy,
    /// How many push calls may be in flight, in all and per host.
    pub push: PushConfig,
    /// People and organizations: public URL, proxies, signup, mail.
    pub accounts: AccountOptions,
    /// How domains are verified.
    pub domains: DomainOptions,
}

/// How domains' challenges are checked (`--dns-server`). Tests add a root
/// certificate and a port for their own HTTPS server.
#[derive(Clone, Debug)]
pub struct DomainOptions {
    /// The DNS servers TXT records (and the well-known file's host) are
    /// looked up with; empty: the system's.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// PEM certificates trusted besides the web's roots (tests).
    pub extra_root_certs: Vec<Vec<u8>>,
    /// The port the well-known file is fetched from: 443 (tests move it).
    pub https_port: u16,
    /// Whether this server re-checks verified domains daily (tests that
    /// run the passes themselves turn it off).
    pub recheck: bool,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            dns_servers: Vec::new(),
            extra_root_certs: Vec::new(),
            https_port: 443,
            recheck: true,
        }
    }
}

/// The settings of people and organizations (`--public-url`,
/// `--trusted-proxies`, `--signup`, `--smtp-url`, `--smtp-from`).
#[derive(Clone, Debug, Default)]
pub struct AccountOptions {
    pub public_url: Option<url::Url>,
    pub trusted_proxies: TrustedProxies,
    pub signup: Signup,
    /// An SMTP URL (`smtp://`, `smtps://`) and the From address; invites
    /// are e-mailed when set.
    pub smtp: Option<(String, String)>,
}

impl AccountOptions {
    fn accounts(&self) -> anyhow::Result<Accounts> {
        let mailer = match &self.smtp {
            Some((url, from)) => Some(Mailer::new(url, from).context("--smtp-url")?),
            None => None,
        };
        Ok(Accounts {
            public_url: self.public_url.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            signup: self.signup,
            mailer,
            limits: RateLimits::new(&Default::default())
                .map_err(|e| anyhow::anyhow!("rate limits: {e}"))?,
        })
    }
}

/// Serves on `listener` until `shutdown` completes. In-flight requests finish
/// before this returns. Tests call this with a listener on port 0.
pub async fn run(
    listener: TcpListener,
    store: Opened,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(listener, store, options, shutdown, |_| {}).await
}

/// [`run`], calling `started` with the lease engine once the services run:
/// tests watch it (how many polls wait) instead of sleeping.
pub async fn run_with(
    listener: TcpListener,
    opened: Opened,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: impl FnOnce(Arc<Engine>),
) -> anyhow::Result<()> {
    if options.targets.allow_private {
        tracing::warn!(
            "--allow-private-targets is on: push targets may be private addresses and plain http; use it for local development only"
        );
    }
    let accounts = Arc::new(options.accounts.accounts()?);
    let verifier = Arc::new(
        Verifier::new(VerifierConfig {
            dns_servers: options.domains.dns_servers.clone(),
            policy: options.targets,
            extra_root_certs: options.domains.extra_root_certs.clone(),
            https_port: options.domains.https_port,
        })
        .context("the domain verifier (--dns-server)")?,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let store = opened.store.clone();
    let engine = Engine::new(opened, stop_rx.clone());
    let sweeper = tokio::spawn(sweeper::run(engine.clone()));
    let scheduler = tokio::spawn(scheduler::run(engine.clone()));
    let publisher = tokio::spawn(publisher::run(engine.clone()));
    let dispatcher = tokio::spawn(dispatcher::run(
        engine.clone(),
        options.push,
        options.targets,
    ));
    let retention = tokio::spawn(retention::run(store.clone(), stop_rx.clone()));
    let pruner = tokio::spawn(prune_rate_limits(accounts.clone(), stop_rx.clone()));
    let rechecker = options.domains.recheck.then(|| {
        tokio::spawn(rechecker::run(
            store.clone(),
            verifier.clone(),
            stop_rx.clone(),
        ))
    });
    let heard = engine.clone();
    let watcher = store.watch_changes(Arc::new(move |change| heard.heard(change)), stop_rx);
    started(engine.clone());
    let app = api::router(AppState {
        store,
        engine,
        targets: options.targets,
        polled: Default::default(),
        accounts,
        verifier,
    });
    // Small frames (a job, an answer to an ack) must leave at once: without
    // TCP_NODELAY, Nagle's algorithm held them for tens of milliseconds.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    })
    .await?;
    sweeper.await?;
    scheduler.await?;
    publisher.await?;
    dispatcher.await?;
    retention.await?;
    pruner.await?;
    if let Some(rechecker) = rechecker {
        rechecker.await?;
    }
    if let Some(watcher) = watcher {
        watcher.await?;
    }
    Ok(())
}

/// Forgets, every minute, the rate-limit counts of clients and accounts
/// that have gone quiet, so the limits' memory stays bounded.
async fn prune_rate_limits(accounts: Arc<Accounts>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => accounts.limits.prune(),
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed by this call,
/// not when the future is first polled (axum polls it from a task of its
/// own, perhaps after the first requests): a SIGTERM just after the server
/// answers is a graceful shutdown, not the signal's default exit.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
