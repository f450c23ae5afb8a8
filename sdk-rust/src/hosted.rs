//! [`HostedWorker`]: the [`Worker`] for a foreign runtime — the one
//! plumbing under the Node and Python SDKs, whose handlers are JavaScript or
//! Python functions that settle on their own event loop.
//!
//! A binding maps its runtime's callbacks onto this type and keeps nothing
//! of its own: the settings until start, a stop asked for before start, the
//! jobs in hand (for `extend` by id), the watch on each job's cancellation,
//! and the reading of a handler's [`Outcome`] all live here.
//!
//! ```no_run
//! use chronos::hosted::{Host, HostedJob, HostedWorker};
//! use chronos::{Outcome, Worker};
//! use std::future::Future;
//! use std::pin::Pin;
//!
//! /// What a binding writes: how a job reaches its runtime, and how a
//! /// cancellation does.
//! struct Runtime;
//!
//! impl Host for Runtime {
//!     fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
//!         // Hand the job to the runtime's handler (here: answer at once).
//!         let name = job.job().name.clone();
//!         Box::pin(async move { Outcome::Ok(serde_json::json!({ "ran": name })) })
//!     }
//!     fn cancel(&self, job: &HostedJob) {
//!         // Tell the runtime's handler (an AbortSignal, an Event).
//!         println!("job {} cancelled", job.id());
//!     }
//! }
//!
//! # async fn example() -> Result<(), chronos::Error> {
//! let worker = HostedWorker::new(Worker::builder("http://127.0.0.1:7070", "chrns_…"));
//! worker.handle("hello")?;
//! let running = worker.start(Runtime)?;
//! tokio::spawn(running);
//! assert!(worker.connected().await);
//! worker.stop();
//! # Ok(())
//! # }
//! ```
//!
//! The order a host can rely on, for each job: [`Host::run`] is called (its
//! synchronous part runs) before [`Host::cancel`] can be, and the job is in
//! [`HostedWorker::job`] from just before `run` until its outcome is read.
//! A cancellation can still reach the host before the host's own handler
//! has started (a JavaScript callback queued behind it): a host that cannot
//! order the two checks [`HostedJob::is_cancelled`] once its handler has
//! registered.

use crate::worker::{Outcome, ShutdownHandle, WorkerBuilder, WorkerSettings};
use crate::{Error, JobContext, JobError};
use chronos_proto::{Job, Lease};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use uuid::Uuid;

/// A foreign runtime's side of a [`HostedWorker`]: how a job reaches its
/// handlers, and how a cancellation does. Called from the worker's tokio
/// threads.
pub trait Host: Send + Sync + 'static {
    /// Runs `job`'s handler (`job.handler()` names it) in the runtime;
    /// resolves to its outcome. Whatever must happen before a cancellation
    /// can be told (registering the job) belongs in the synchronous part of
    /// this call.
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

    /// `job` was cancelled, or the worker is stopping and its grace ran out,
    /// while its handler runs: tell the handler. Called at most once per job,
    /// never before [`Host::run`].
    fn cancel(&self, job: &HostedJob);
}

/// One job in hand: what a [`Host`] gets for each, and what
/// [`HostedWorker::job`] finds by id. Cheap to clone.
#[derive(Clone)]
pub struct HostedJob {
    ctx: Arc<JobContext>,
}

impl HostedJob {
    /// The job as leased (status `running`).
    pub fn job(&self) -> &Job {
        &self.ctx.job
    }

    /// The job's id.
    pub fn id(&self) -> Uuid {
        self.ctx.job.id
    }

    /// The name of the handler to run (empty for a job without one, which
    /// a worker is never sent).
    pub fn handler(&self) -> &str {
        self.ctx.job.handler.as_deref().unwrap_or_default()
    }

    /// This attempt's lease.
    pub fn lease(&self) -> &Lease {
        &self.ctx.lease
    }

    /// Moves this attempt's deadline to `seconds` from now; errs if the
    /// lease is lost.
    pub async fn extend(&self, seconds: u32) -> Result<(), Error> {
        self.ctx.extend(seconds).await
    }

    /// Completes when the job is cancelled, or when the stopping worker's
    /// grace ran out.
    pub async fn cancelled(&self) {
        self.ctx.cancelled().await
    }

    /// Whether [`HostedJob::cancelled`] has happened.
    pub fn is_cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }

    /// The job as a foreign handler reads it, as a JSON object with the
    /// wire's names: `id`, `name`, `handler`, `payload`, `attempt`,
    /// `max_retries`, `timeout`, `schedule_id`, and nothing else (each
    /// field costs parsing in the host language, per job). A job that cannot
    /// be written is an attempt to retry, the outcome given as the error.
    pub fn handler_json(&self) -> Result<String, Outcome> {
        #[derive(serde::Serialize)]
        struct HandlerJob<'a> {
            id: Uuid,
            name: &'a str,
            handler: &'a str,
            payload: &'a Value,
            attempt: u32,
            max_retries: u32,
            timeout: u32,
            schedule_id: Option<Uuid>,
        }
        let job = self.job();
        serde_json::to_string(&HandlerJob {
            id: job.id,
            name: &job.name,
            handler: self.handler(),
            payload: &job.payload,
            attempt: job.attempt,
            max_retries: job.max_retries,
            timeout: job.timeout,
            schedule_id: job.schedule_id,
        })
        .map_err(|e| Outcome::retry(format!("the job could not be read: {e}")))
    }
}

/// A [`Worker`](crate::Worker) whose handlers live in a foreign runtime.
///
/// Every method takes `&self` (bindings share it between their runtime's
/// thread and the worker's), and it goes through three stages: registering
/// handler names and settings, until [`HostedWorker::start`]; running, until
/// the future `start` gave ends; stopped. [`HostedWorker::stop`] may come
/// at any stage: before `start`, the worker stops as soon as it has
/// connected.
///
/// Signals are the host's: a hosted worker never listens for SIGINT or
/// SIGTERM itself (Node and Python own their process's signals; they call
/// [`HostedWorker::stop`]).
pub struct HostedWorker {
    state: Mutex<Stage>,
    /// The jobs whose handlers run now, by job id: `extend` and
    /// `is_cancelled` come from the host with an id.
    jobs: Jobs,
    /// The settings, read once (they no longer change after `new`).
    settings: WorkerSettings,
}

type Jobs = Arc<Mutex<HashMap<Uuid, HostedJob>>>;

/// The host while the worker runs; `None` once it has stopped, so that the
/// runtime's callbacks are let go (a JavaScript function held here would
/// keep Node's event loop alive).
type HostSlot = Arc<Mutex<Option<Arc<dyn Host>>>>;

struct Stage {
    /// Until `start`.
    builder: Option<WorkerBuilder>,
    /// Handler names registered so far.
    names: Vec<String>,
    /// `stop` came before `start`.
    stop_requested: bool,
    /// From `start` on.
    shutdown: Option<ShutdownHandle>,
    connection: Option<watch::Receiver<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these locks left plain data
    // behind: go on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostedWorker {
    /// A hosted worker of `builder`'s settings. Its handlers are registered
    /// by name with [`HostedWorker::handle`]; any the builder already has
    /// are kept. Signal handling is turned off (see the type's docs).
    pub fn new(builder: WorkerBuilder) -> HostedWorker {
        let builder = builder.handle_signals(false);
        HostedWorker {
            settings: builder.settings(),
            state: Mutex::new(Stage {
                builder: Some(builder),
                names: Vec::new(),
                stop_requested: false,
                shutdown: None,
                connection: None,
            }),
            jobs: Jobs::default(),
        }
    }

    /// The settings the worker runs with, defaults included.
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// Takes jobs of handler `name`: the host runs them. Refused once
    /// started.
    pub fn handle(&self, name: impl Into<String>) -> Result<(), Error> {
        let mut stage = lock(&self.state);
        if stage.builder.is_none() {
            return Err(Error::invalid_argument(
                "handle",
                "the worker has started; register handlers first",
            ));
        }
        stage.names.push(name.into());
        Ok(())
    }

    /// Checks the settings and builds the worker, its jobs going to `host`;
    /// returns the future that runs it, until it is stopped or hits a fatal
    /// error (a refused key). Spawn it, or await it, on a tokio runtime.
    /// Errs at once on a bad setting ([`Error::Worker`]), or if the worker
    /// was started before ([`Error::InvalidArgument`]).
    pub fn start(
        &self,
        host: impl Host,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        let mut stage = lock(&self.state);
        let mut builder = stage
            .builder
            .take()
            .ok_or_else(|| Error::invalid_argument("start", "the worker has already started"))?;
        let host: HostSlot = Arc::new(Mutex::new(Some(Arc::new(host) as Arc<dyn Host>)));
        for name in &stage.names {
            let (host, jobs) = (host.clone(), self.jobs.clone());
            builder = builder.handle(name.clone(), move |ctx| {
                run_job(ctx, host.clone(), jobs.clone())
            });
        }
        let worker = builder.build()?;
        let shutdown = worker.shutdown_handle();
        if stage.stop_requested {
            shutdown.shutdown();
        }
        stage.shutdown = Some(shutdown);
        stage.connection = Some(worker.connection());
        let jobs = self.jobs.clone();
        Ok(async move {
            let result = worker.run().await;
            lock(&host).take();
            lock(&jobs).clear();
            result
        })
    }

    /// Starts a graceful stop, from any thread: no new jobs; jobs in hand
    /// get the grace to finish, then are cancelled and handed back. Before
    /// [`HostedWorker::start`], the worker stops as soon as it has
    /// connected.
    pub fn stop(&self) {
        let mut stage = lock(&self.state);
        match &stage.shutdown {
            Some(handle) => handle.shutdown(),
            None => stage.stop_requested = true,
        }
    }

    /// Whether the worker is connected now, and its changes (as
    /// [`Worker::connection`](crate::Worker::connection)); `None` before
    /// [`HostedWorker::start`].
    pub fn connection(&self) -> Option<watch::Receiver<bool>> {
        lock(&self.state).connection.clone()
    }

    /// Completes once the worker is connected: true; or false if it stopped
    /// first, or was never started.
    pub async fn connected(&self) -> bool {
        let Some(mut connection) = self.connection() else {
            return false;
        };
        connection.wait_for(|c| *c).await.is_ok()
    }

    /// The job with id `job_id` whose handler runs now, or
    /// [`Error::InvalidArgument`] if there is none here.
    pub fn job(&self, job_id: &str) -> Result<HostedJob, Error> {
        let not_here =
            || Error::invalid_argument("job", format!("job {job_id} is not running here"));
        let id = Uuid::parse_str(job_id).map_err(|_| not_here())?;
        lock(&self.jobs).get(&id).cloned().ok_or_else(not_here)
    }

    /// [`HostedJob::extend`] of the job with id `job_id`.
    pub async fn extend(&self, job_id: &str, seconds: u32) -> Result<(), Error> {
        let job = self.job(job_id)?;
        job.extend(seconds).await
    }
}

/// Runs one job through the host: registers it, starts its handler, tells
/// the host of a cancellation while it runs, and reads its outcome.
async fn run_job(ctx: JobContext, host: HostSlot, jobs: Jobs) -> Result<Value, JobError> {
    let Some(host) = lock(&host).clone() else {
        return Err(JobError::retry("the worker has stopped"));
    };
    let job = HostedJob { ctx: Arc::new(ctx) };
    let (id, token) = (job.id(), job.lease().token);
    lock(&jobs).insert(id, job.clone());
    // Called before the watch starts: the host has the job before it can
    // hear of its cancellation.
    let settled = host.run(job.clone());
    let watcher = {
        let job = job.clone();
        let host = host.clone();
        tokio::spawn(async move {
            job.cancelled().await;
            host.cancel(&job);
        })
    };
    let outcome = settled.await;
    watcher.abort();
    let mut jobs = lock(&jobs);
    // The same job may be in hand again under a newer lease.
    if jobs.get(&id).is_some_and(|j| j.lease().token == token) {
        jobs.remove(&id);
    }
    drop(jobs);
    outcome.into_result()
}
