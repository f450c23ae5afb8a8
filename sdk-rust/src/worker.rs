//! The worker: runs handlers for jobs the server pushes over one WebSocket
//! (`/v1/workers/connect`, protocol 1; see `docs/workers.md`).
//!
//! ```no_run
//! use chronos::{JobError, Worker};
//! use serde_json::json;
//!
//! # async fn example() -> Result<(), chronos::Error> {
//! Worker::builder("http://127.0.0.1:7070", "chrns_…")
//!     .concurrency(8)
//!     .handle("hello", |job| async move {
//!         let name = job.payload["name"].as_str().unwrap_or("world").to_string();
//!         println!("hello, {name} (attempt {})", job.attempt);
//!         Ok::<_, JobError>(json!({"greeted": name}))
//!     })
//!     .run()
//!     .await
//! # }
//! ```
//!
//! The worker keeps one connection, reconnecting with backoff and jitter;
//! sends heartbeats; runs at most `concurrency` handlers at once; reports a
//! handler's result, error or panic; passes cancellations to the handler
//! through [`JobContext::cancelled`]; and on SIGINT/SIGTERM or
//! [`ShutdownHandle::shutdown`] drains: takes no new jobs, lets jobs in hand
//! finish within the grace period, then hands back what is left.
//!
//! Delivery is at least once: a job whose worker dies after doing the work
//! but before its ack reaches the server runs again. Make handlers
//! idempotent.

use crate::Error;
use chronos_proto::worker::{
    LeaseAction, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerMessage, WorkerMessage,
};
use chronos_proto::{Job, Lease};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How a handler's attempt failed.
///
/// Any error type converts into a retryable failure with its message, so `?`
/// works in handlers; [`JobError::permanent`] fails without retrying, and
/// [`JobError::retry_in`] asks for a given delay before the next attempt.
pub struct JobError {
    message: String,
    retryable: bool,
    retry_in: Option<u32>,
}

impl JobError {
    /// A failure worth retrying after the server's backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: true,
            retry_in: None,
        }
    }

    /// A failure no retry will fix: the job fails at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: false,
            retry_in: None,
        }
    }

    /// A failure to retry after `seconds`, instead of the backoff.
    pub fn retry_in(seconds: u32, message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: true,
            retry_in: Some(seconds),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e.to_string())
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .field("retry_in", &self.retry_in)
            .finish()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a handler gets: the job, and ways to talk about its attempt.
pub struct JobContext {
    /// The job as leased (status `running`).
    pub job: Job,
    /// The lease of this attempt.
    pub lease: Lease,
    cancelled: CancellationToken,
    extend: mpsc::UnboundedSender<Outgoing>,
}

impl std::ops::Deref for JobContext {
    type Target = Job;
    fn deref(&self) -> &Job {
        &self.job
    }
}

impl JobContext {
    /// Completes when the job is cancelled, or when the worker stops and the
    /// grace period ran out: the handler should stop soon after.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await
    }

    /// Whether [`JobContext::cancelled`] has happened.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Moves this attempt's deadline to `seconds` from now, for work known to
    /// take longer than the job's `timeout`. Errs if the lease is lost.
    pub async fn extend(&self, seconds: u32) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let frame = WorkerMessage::Extend {
            token: self.lease.token,
            seconds,
        };
        self.extend
            .send(Outgoing {
                frame,
                answer: Some(tx),
            })
            .map_err(|_| Error::Worker("the worker has stopped".into()))?;
        match rx.await {
            Ok(ServerMessage::Accepted { .. }) => Ok(()),
            Ok(ServerMessage::LeaseLost { .. }) => Err(Error::Worker(
                "the lease is lost: the job was cancelled, or its deadline passed".into(),
            )),
            Ok(ServerMessage::Error { code, message, .. }) => {
                Err(Error::Rejected { code, message })
            }
            Ok(other) => Err(Error::Worker(format!("extend refused: {other:?}"))),
            Err(_) => Err(Error::Worker(
                "the connection closed before the answer".into(),
            )),
        }
    }
}

/// A handler's outcome as the Node and Python SDKs report it, in JSON:
/// `{"ok": result}` or `{"error": {"message", "permanent", "retry_in"}}`.
/// Their handlers settle in JavaScript or Python; this reads what they say
/// (see [`crate::hosted`]). It is strict: the binding's own code writes it,
/// in the same package, never a server.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    Ok(Value),
    Error {
        message: String,
        #[serde(default)]
        permanent: bool,
        /// Seconds to wait before the next attempt, instead of the backoff.
        #[serde(default)]
        retry_in: Option<f64>,
    },
}

impl Outcome {
    /// A retryable failure with `message`.
    pub fn retry(message: impl Into<String>) -> Outcome {
        Outcome::Error {
            message: message.into(),
            permanent: false,
            retry_in: None,
        }
    }

    /// Reads an outcome; one that cannot be read is a retryable failure.
    pub fn parse(value: Value) -> Outcome {
        serde_json::from_value(value)
            .unwrap_or_else(|e| Outcome::retry(format!("an unreadable outcome: {e}")))
    }

    /// [`Outcome::parse`] of JSON text.
    pub fn from_json(text: &str) -> Outcome {
        serde_json::from_str(text)
            .unwrap_or_else(|e| Outcome::retry(format!("an unreadable outcome: {e}")))
    }

    /// Reads an outcome; one that cannot be read is a retryable failure.
    pub fn read(value: Value) -> Result<Value, JobError> {
        Outcome::parse(value).into_result()
    }

    /// The handler's result, or how its attempt failed.
    pub fn into_result(self) -> Result<Value, JobError> {
        match self {
            Outcome::Ok(value) => Ok(value),
            Outcome::Error {
                message,
                permanent: true,
                ..
            } => Err(JobError::permanent(message)),
            Outcome::Error {
                message,
                retry_in: Some(secs),
                ..
            } => Err(JobError::retry_in(secs.max(0.0).round() as u32, message)),
            Outcome::Error { message, .. } => Err(JobError::retry(message)),
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;
type Handler = Arc<dyn Fn(JobContext) -> BoxFuture + Send + Sync>;

/// Jobs a worker runs at once unless told otherwise: the default of every
/// SDK (see `sdk-rust/manifest.json`).
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// The most jobs a worker may run at once.
pub const MAX_CONCURRENCY: u32 = 1000;

/// How long jobs in hand may run on after a shutdown starts, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The first wait before reconnecting; it doubles after each failed try.
pub const RECONNECT_FIRST_WAIT: Duration = Duration::from_millis(100);

/// The longest wait between reconnect tries (each wait is jittered down to
/// half of it).
pub const RECONNECT_MAX_WAIT: Duration = Duration::from_secs(10);

/// Heartbeats go at the interval the server's `welcome` says, but never
/// more often than this.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// A [`WorkerBuilder`]'s settings as they stand, defaults included. (Every
/// SDK has these options: a new field here is a new option for all three,
/// and `sdk-rust/manifest.json` must list it.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Jobs run at once.
    pub concurrency: u32,
    /// The id given, or `None` for one generated at build.
    pub worker_id: Option<String>,
    /// How long jobs in hand may run on after shutdown starts.
    pub shutdown_grace: Duration,
    /// Whether SIGINT and SIGTERM start a graceful shutdown.
    pub handle_signals: bool,
}

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    url: String,
    api_key: String,
    worker_id: Option<String>,
    concurrency: u32,
    grace: Duration,
    signals: bool,
    handlers: HashMap<String, Handler>,
}

impl WorkerBuilder {
    /// How many jobs run at once (default [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// A stable id for this worker process (default: generated once per
    /// worker). A worker that reconnects under the same id keeps its leases.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// How long jobs in hand may run on after shutdown starts (default
    /// [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether SIGINT and SIGTERM start a graceful shutdown (default true).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.signals = yes;
        self
    }

    /// Registers the handler for jobs of `name`. It returns the job's result
    /// (any `Serialize`; `()` for none) or a [`JobError`].
    pub fn handle<F, Fut, R>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, JobError>> + Send + 'static,
        R: Serialize + 'static,
    {
        let handler: Handler = Arc::new(move |ctx| {
            let fut = handler(ctx);
            Box::pin(async move {
                let value = fut.await?;
                serde_json::to_value(value)
                    .map_err(|e| JobError::permanent(format!("the result is not JSON: {e}")))
            })
        });
        self.handlers.insert(name.into(), handler);
        self
    }

    /// The settings as they stand, defaults included.
    pub fn settings(&self) -> WorkerSettings {
        WorkerSettings {
            concurrency: self.concurrency,
            worker_id: self.worker_id.clone(),
            shutdown_grace: self.grace,
            handle_signals: self.signals,
        }
    }

    /// Checks the settings and builds the worker.
    pub fn build(self) -> Result<Worker, Error> {
        if self.handlers.is_empty() {
            return Err(Error::Worker(
                "register at least one handler with .handle()".into(),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::Worker(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        let base = url::Url::parse(&self.url).map_err(|e| Error::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let scheme = match base.scheme() {
            "http" => "ws",
            "https" => "wss",
            other => {
                return Err(Error::InvalidUrl {
                    url: self.url.clone(),
                    reason: format!("expected http or https, not {other}"),
                });
            }
        };
        let mut ws_url = base.clone();
        ws_url
            .set_scheme(scheme)
            .expect("ws and wss are valid schemes");
        ws_url.set_path(&format!(
            "{}/v1/workers/connect",
            base.path().trim_end_matches('/')
        ));
        let (stop, _) = watch::channel(false);
        Ok(Worker {
            ws_url: ws_url.to_string(),
            api_key: self.api_key,
            worker_id: self.worker_id.unwrap_or_else(|| {
                format!(
                    "worker-{}-{:06x}",
                    std::process::id(),
                    rand::random::<u32>() & 0xff_ffff
                )
            }),
            concurrency: self.concurrency,
            grace: self.grace,
            signals: self.signals,
            handlers: Arc::new(self.handlers),
            stop: Arc::new(stop),
            connected: Arc::new(watch::channel(false).0),
        })
    }

    /// Builds the worker and runs it until it is shut down.
    pub async fn run(self) -> Result<(), Error> {
        self.build()?.run().await
    }
}

/// Stops a running [`Worker`] gracefully, from anywhere.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Starts a graceful shutdown: no new jobs; jobs in hand get the grace
    /// period to finish; the rest are handed back.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// A long-lived worker. Build one with [`Worker::builder`].
pub struct Worker {
    ws_url: String,
    api_key: String,
    worker_id: String,
    concurrency: u32,
    grace: Duration,
    signals: bool,
    handlers: Arc<HashMap<String, Handler>>,
    stop: Arc<watch::Sender<bool>>,
    /// True while a session is open (welcomed by the server).
    connected: Arc<watch::Sender<bool>>,
}

/// A frame to send, and where its answer goes, if anyone waits for it.
struct Outgoing {
    frame: WorkerMessage,
    answer: Option<oneshot::Sender<ServerMessage>>,
}

/// A job being run: its cancellation, and whether its outcome was sent.
struct Running {
    cancelled: CancellationToken,
}

const SDK: &str = concat!("chronos-rust/", env!("CARGO_PKG_VERSION"));

impl Worker {
    /// Starts building a worker for the server at `url` (`http://…` or
    /// `https://…`) with a key that has the `worker` scope.
    pub fn builder(url: impl Into<String>, api_key: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder {
            url: url.into(),
            api_key: api_key.into(),
            worker_id: None,
            concurrency: DEFAULT_CONCURRENCY,
            grace: DEFAULT_SHUTDOWN_GRACE,
            signals: true,
            handlers: HashMap::new(),
        }
    }

    /// This worker's id, as the server knows it.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// A handle to stop this worker from another task.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Whether the worker is connected now: true once the server welcomed
    /// it, false while it reconnects and after it stops.
    pub fn connection(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Runs until shut down (or a fatal error: a refused key, an unsupported
    /// protocol). Reconnects after any other failure.
    pub async fn run(self) -> Result<(), Error> {
        if self.signals {
            let stop = self.stop.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                stop.send_replace(true);
            });
        }
        let state = Arc::new(Shared {
            running: Mutex::new(HashMap::new()),
        });
        // Outcomes of handlers, kept across reconnects until sent.
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
        let mut unsent: Vec<Outgoing> = Vec::new();
        let mut stopping = self.stop.subscribe();
        let mut retry = RECONNECT_FIRST_WAIT;
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        // When this loop first saw the shutdown while disconnected.
        let mut stop_seen: Option<tokio::time::Instant> = None;
        loop {
            let session = self
                .session(
                    &state,
                    &out_tx,
                    &mut out_rx,
                    &mut unsent,
                    &mut stopping,
                    &mut drain_deadline,
                    &mut retry,
                )
                .await;
            self.connected.send_replace(false);
            match session {
                Ok(SessionEnd::Stopped) => return Ok(()),
                Ok(SessionEnd::Lost(why)) => {
                    tracing::warn!(reason = %why, "connection to Chronos lost; reconnecting");
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "cannot connect to Chronos; retrying"),
            }
            // Full jitter: replicas restarting together don't reconnect together.
            let wait = retry.mul_f64(rand::random_range(0.5..=1.0));
            // A shutdown asked for while waiting is acted on at once.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopping.changed() => {}
            }
            while let Ok(o) = out_rx.try_recv() {
                unsent.push(o);
            }
            // Stopping with nothing running and nothing left to tell: done.
            // Outcomes still unsent are worth reconnecting for (without them
            // the jobs run again), but only within the grace.
            if *stopping.borrow() {
                let since = *stop_seen.get_or_insert_with(tokio::time::Instant::now);
                let idle = state.running.lock().unwrap().is_empty() && unsent.is_empty();
                if idle || since.elapsed() >= self.grace {
                    return Ok(());
                }
            }
            retry = (retry * 2).min(RECONNECT_MAX_WAIT);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        state: &Arc<Shared>,
        out_tx: &mpsc::UnboundedSender<Outgoing>,
        out_rx: &mut mpsc::UnboundedReceiver<Outgoing>,
        unsent: &mut Vec<Outgoing>,
        stopping: &mut watch::Receiver<bool>,
        drain_deadline: &mut Option<tokio::time::Instant>,
        retry: &mut Duration,
    ) -> Result<SessionEnd, Error> {
        let mut request = self
            .ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Worker(format!("bad worker URL: {e}")))?;
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.api_key)
                .parse()
                .map_err(|_| Error::InvalidHeader { header: "API key" })?,
        );
        // No Nagle: acks and heartbeats are small and must not wait.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(Error::from_ws)?;
        // Outcomes decided while disconnected go out first, after hello; the
        // server must know their jobs are still ours, as are those running.
        while let Ok(o) = out_rx.try_recv() {
            unsent.push(o);
        }
        let mut holding: Vec<Uuid> = state.running.lock().unwrap().keys().copied().collect();
        holding.extend(
            unsent
                .iter()
                .map(|o| key(&o.frame).0)
                .filter(|t| !t.is_nil()),
        );
        holding.sort();
        holding.dedup();
        let hello = WorkerMessage::Hello {
            worker_id: self.worker_id.clone(),
            handlers: self.handlers.keys().cloned().collect(),
            max_in_flight: self.concurrency,
            sdk: SDK.into(),
            protocol: PROTOCOL_VERSION,
            holding,
        };
        send(&mut ws, &hello).await?;
        let heartbeat = match next_frame(&mut ws).await? {
            Some(ServerMessage::Welcome {
                heartbeat_interval_ms,
                ..
            }) => Duration::from_millis(heartbeat_interval_ms).max(MIN_HEARTBEAT),
            Some(ServerMessage::Error { code, message, .. }) => {
                return Err(Error::Rejected { code, message });
            }
            other => return Err(Error::Worker(format!("expected welcome, got {other:?}"))),
        };
        *retry = RECONNECT_FIRST_WAIT;
        tracing::info!(worker_id = %self.worker_id, "connected to Chronos");
        self.connected.send_replace(true);
        // What was decided while the connection was down goes first.
        let mut waiting: HashMap<(Uuid, LeaseAction), oneshot::Sender<ServerMessage>> =
            HashMap::new();
        for o in unsent.drain(..) {
            if let Some(answer) = o.answer {
                waiting.insert(key(&o.frame), answer);
            }
            send(&mut ws, &o.frame).await?;
        }
        if *stopping.borrow() {
            drain_deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.grace);
            send(&mut ws, &WorkerMessage::Drain {}).await?;
            if state.running.lock().unwrap().is_empty() {
                let _ = ws.close(None).await;
                return Ok(SessionEnd::Stopped);
            }
        }
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.tick().await;
        loop {
            let deadline = drain_deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                _ = ticker.tick() => {
                    send(&mut ws, &WorkerMessage::Heartbeat {}).await?;
                }
                changed = stopping.changed(), if drain_deadline.is_none() => {
                    if changed.is_err() || !*stopping.borrow() {
                        continue;
                    }
                    tracing::info!("draining: no new jobs; finishing the ones in hand");
                    *drain_deadline = Some(tokio::time::Instant::now() + self.grace);
                    send(&mut ws, &WorkerMessage::Drain {}).await?;
                    if state.running.lock().unwrap().is_empty() {
                        let _ = ws.close(None).await;
                        return Ok(SessionEnd::Stopped);
                    }
                }
                _ = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => {
                    // Grace over: stop handlers and hand their jobs back.
                    let left: Vec<(Uuid, CancellationToken)> = state
                        .running
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|(t, r)| (*t, r.cancelled.clone()))
                        .collect();
                    let mut releasing = std::collections::HashSet::new();
                    for (token, cancelled) in left {
                        cancelled.cancel();
                        send(&mut ws, &WorkerMessage::Release { token }).await?;
                        releasing.insert(token);
                    }
                    // Wait (briefly) until the server has them back, so that
                    // when `run` returns the jobs are queued for others.
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while !releasing.is_empty() {
                            match next_frame(&mut ws).await {
                                Ok(Some(
                                    ServerMessage::Accepted { token, .. }
                                    | ServerMessage::LeaseLost { token, .. }
                                    | ServerMessage::Error { token: Some(token), .. },
                                )) => {
                                    releasing.remove(&token);
                                }
                                Ok(Some(_)) => {}
                                _ => return,
                            }
                        }
                    })
                    .await;
                    let _ = ws.close(None).await;
                    return Ok(SessionEnd::Stopped);
                }
                outgoing = out_rx.recv() => {
                    let Some(o) = outgoing else { return Ok(SessionEnd::Stopped) };
                    // Outcomes ready together go out in one write.
                    let mut batch = vec![o];
                    while batch.len() < 256 {
                        match out_rx.try_recv() {
                            Ok(o) => batch.push(o),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = send_all(&mut ws, &batch).await {
                        // Whether they arrived is unknown: they go again
                        // after reconnecting (a repeat is answered, not applied).
                        unsent.extend(batch);
                        return Err(e);
                    }
                    for o in batch {
                        if let Some(answer) = o.answer {
                            waiting.insert(key(&o.frame), answer);
                        }
                    }
                    if drain_deadline.is_some() && state.running.lock().unwrap().is_empty() {
                        let _ = ws.close(None).await;
                        return Ok(SessionEnd::Stopped);
                    }
                }
                frame = next_frame(&mut ws) => {
                    let Some(frame) = frame? else {
                        return Ok(SessionEnd::Lost("the server closed the connection".into()));
                    };
                    match frame {
                        ServerMessage::Job { job, lease } => {
                            if drain_deadline.is_some() {
                                send(&mut ws, &WorkerMessage::Release { token: lease.token }).await?;
                                continue;
                            }
                            self.start(state, *job, lease, out_tx.clone());
                        }
                        ServerMessage::Cancel { token, .. } => {
                            if let Some(r) = state.running.lock().unwrap().get(&token) {
                                r.cancelled.cancel();
                            }
                        }
                        ServerMessage::Accepted { token, action, .. }
                        | ServerMessage::LeaseLost { token, action } => {
                            if let Some(answer) = waiting.remove(&(token, action)) {
                                let _ = answer.send(frame);
                            }
                        }
                        ServerMessage::Error { ref code, ref message, token } => {
                            tracing::warn!(%code, %message, "the server refused a frame");
                            // An extend waiting on this token hears the refusal.
                            if let Some(token) = token
                                && let Some(answer) = waiting.remove(&(token, LeaseAction::Extend))
                            {
                                let _ = answer.send(frame);
                            }
                        }
                        ServerMessage::Welcome { .. } => {}
                    }
                }
            }
        }
    }

    /// Runs one job's handler in a task of its own, and queues its outcome.
    fn start(
        &self,
        state: &Arc<Shared>,
        job: Job,
        lease: Lease,
        out: mpsc::UnboundedSender<Outgoing>,
    ) {
        let token = lease.token;
        let cancelled = CancellationToken::new();
        state.running.lock().unwrap().insert(
            token,
            Running {
                cancelled: cancelled.clone(),
            },
        );
        let handler = job
            .handler
            .as_ref()
            .and_then(|h| self.handlers.get(h))
            .cloned();
        let state = state.clone();
        tokio::spawn(async move {
            let frame = match handler {
                None => WorkerMessage::Fail {
                    token,
                    error: Some(format!("this worker has no handler for {:?}", job.handler)),
                    retryable: Some(true),
                    retry_in: None,
                },
                Some(handler) => {
                    let ctx = JobContext {
                        job,
                        lease,
                        cancelled,
                        extend: out.clone(),
                    };
                    // A task of its own, so a panic is caught as a failure.
                    match tokio::spawn(handler(ctx)).await {
                        Ok(Ok(result)) => WorkerMessage::Ack {
                            token,
                            result: (!result.is_null()).then_some(result),
                        },
                        Ok(Err(e)) => WorkerMessage::Fail {
                            token,
                            error: Some(e.message),
                            retryable: Some(e.retryable),
                            retry_in: e.retry_in,
                        },
                        Err(joined) => WorkerMessage::Fail {
                            token,
                            error: Some(panic_message(joined)),
                            retryable: Some(true),
                            retry_in: None,
                        },
                    }
                }
            };
            state.running.lock().unwrap().remove(&token);
            let _ = out.send(Outgoing {
                frame: within_limit(frame),
                answer: None,
            });
        });
    }
}

/// The jobs whose handlers run now, by lease token. (How many run at once
/// is the server's to bound: it never sends more than `max_in_flight`.)
struct Shared {
    running: Mutex<HashMap<Uuid, Running>>,
}

enum SessionEnd {
    /// Shut down as asked.
    Stopped,
    /// The connection dropped; reconnect.
    Lost(String),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn key(frame: &WorkerMessage) -> (Uuid, LeaseAction) {
    match frame {
        WorkerMessage::Extend { token, .. } => (*token, LeaseAction::Extend),
        WorkerMessage::Ack { token, .. } => (*token, LeaseAction::Ack),
        WorkerMessage::Fail { token, .. } => (*token, LeaseAction::Fail),
        WorkerMessage::Release { token } => (*token, LeaseAction::Release),
        _ => (Uuid::nil(), LeaseAction::Ack),
    }
}

async fn send(ws: &mut Socket, frame: &WorkerMessage) -> Result<(), Error> {
    let text = serde_json::to_string(frame).expect("worker frames serialize");
    ws.send(Message::Text(text.into()))
        .await
        .map_err(Error::from_ws)
}

/// A result too large for a frame fails the attempt for good (as a 413
/// would over HTTP), rather than being sent and closing the connection on
/// every try.
fn within_limit(frame: WorkerMessage) -> WorkerMessage {
    let size = serde_json::to_vec(&frame).map_or(0, |v| v.len());
    match frame {
        WorkerMessage::Ack { token, .. } if size > MAX_FRAME_BYTES => WorkerMessage::Fail {
            token,
            error: Some(format!(
                "the handler's result is {size} bytes as JSON; the limit is {MAX_FRAME_BYTES}"
            )),
            retryable: Some(false),
            retry_in: None,
        },
        frame => frame,
    }
}

/// Sends frames with one flush at the end.
async fn send_all(ws: &mut Socket, outgoing: &[Outgoing]) -> Result<(), Error> {
    for o in outgoing {
        let text = serde_json::to_string(&o.frame).expect("worker frames serialize");
        ws.feed(Message::Text(text.into()))
            .await
            .map_err(Error::from_ws)?;
    }
    ws.flush().await.map_err(Error::from_ws)
}

/// The next server frame; `None` when the connection closed.
async fn next_frame(ws: &mut Socket) -> Result<Option<ServerMessage>, Error> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Err(e)) => return Err(Error::from_ws(e)),
            Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                Ok(frame) => return Ok(Some(frame)),
                // A newer server's kind of frame: skipped, as its unknown
                // fields are (forward compatibility; see docs/workers.md).
                Err(_) if is_unknown_kind(&text) => {
                    tracing::debug!(frame = %text, "skipping a frame of a kind this SDK does not know");
                    continue;
                }
                Err(e) => {
                    return Err(Error::Worker(format!(
                        "unreadable frame from the server: {e}: {text}"
                    )));
                }
            },
            Some(Ok(_)) => continue,
        }
    }
}

/// The `type`s of [`ServerMessage`] (a test holds the two together).
const SERVER_FRAME_KINDS: [&str; 6] = [
    "welcome",
    "job",
    "accepted",
    "lease_lost",
    "cancel",
    "error",
];

/// Whether `text` is a JSON object whose `type` is a string naming no frame
/// this SDK knows.
fn is_unknown_kind(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Tagged {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Tagged>(text)
        .is_ok_and(|t| !SERVER_FRAME_KINDS.contains(&t.kind.as_str()))
}

fn panic_message(joined: tokio::task::JoinError) -> String {
    match joined.try_into_panic() {
        Ok(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            format!("handler panicked: {text}")
        }
        Err(e) => format!("handler task failed: {e}"),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The kinds of frame a worker knows are those of `ServerMessage`, each
    /// with an example in proto/vectors/worker.json; the forward vectors'
    /// unknown kinds are unknown, and no known frame is taken for one.
    #[test]
    fn the_known_frame_kinds_are_the_server_messages() {
        let worker: Value =
            serde_json::from_str(include_str!("../../proto/vectors/worker.json")).unwrap();
        let forward: Value =
            serde_json::from_str(include_str!("../../proto/vectors/forward.json")).unwrap();
        let mut kinds = BTreeSet::new();
        for frame in worker["server"].as_array().unwrap() {
            let _: ServerMessage = serde_json::from_value(frame.clone()).unwrap();
            assert!(!is_unknown_kind(&frame.to_string()), "{frame}");
            kinds.insert(frame["type"].as_str().unwrap());
        }
        assert_eq!(kinds, BTreeSet::from(SERVER_FRAME_KINDS));
        for frame in forward["unknown_frames"].as_array().unwrap() {
            assert!(is_unknown_kind(&frame.to_string()), "{frame}");
        }
        assert!(!is_unknown_kind("not json"));
        assert!(!is_unknown_kind(r#"{"type": 1}"#));
    }
}
