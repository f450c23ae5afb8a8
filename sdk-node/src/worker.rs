//! `NativeWorker`: the Rust SDK's hosted worker ([`chronos::hosted`]), its
//! jobs run by JavaScript. This file only maps napi's thread-safe functions
//! onto [`Host`]; the plumbing (settings until start, stop before start,
//! the jobs in hand, cancel watching, reading the outcome) is the Rust
//! SDK's, shared with the Python binding.
//!
//! `lib/worker.js` wraps it: it keeps the handler functions by name, gives
//! each job an AbortSignal and `extend()`, and turns a handler's return or
//! throw into the settled object this side reads (`{ok}` or `{error}`, a
//! [`chronos::Outcome`]), so no JavaScript exception has to cross napi.

use crate::error::{from_sdk, invalid};
use chronos::Outcome;
use chronos::Worker as SdkWorker;
use chronos::hosted::{Host, HostedJob, HostedWorker};
use napi::Status;
use napi::bindgen_prelude::{Promise, Result};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the worker runs. Options left out take the Rust SDK's defaults.
#[napi(object)]
pub struct WorkerOptions {
    pub url: String,
    pub api_key: String,
    pub concurrency: Option<u32>,
    pub worker_id: Option<String>,
    pub shutdown_grace_seconds: Option<f64>,
}

/// The settings a worker runs with, defaults included (for the tests that
/// hold the SDK to sdk-rust/manifest.json).
#[napi(object)]
pub struct WorkerSettings {
    pub concurrency: u32,
    pub worker_id: Option<String>,
    pub shutdown_grace_seconds: f64,
}

/// A job as its handler gets it.
#[napi(object)]
pub struct JobArg {
    pub id: String,
    pub name: String,
    pub handler: String,
    pub payload: Value,
    pub attempt: u32,
    pub max_retries: u32,
    pub timeout: u32,
    pub schedule_id: Option<String>,
}

/// Runs a job: called with it, resolves to `{ok: result}` or
/// `{error: {message, permanent, retry_in}}` (lib/worker.js makes sure).
/// Weak: it does not hold Node's event loop open by itself.
type DispatchFn = ThreadsafeFunction<JobArg, Promise<Value>, JobArg, Status, false, true>;
/// Told the id of a job cancelled while its handler runs.
type CancelFn = ThreadsafeFunction<String, (), String, Status, false, true>;

/// What the worker is while it runs, from `build` until `run` takes it.
type Running = Pin<Box<dyn Future<Output = std::result::Result<(), chronos::Error>> + Send>>;

#[napi(js_name = "NativeWorker")]
pub struct Worker {
    hosted: HostedWorker,
    /// Until `build` hands them to the hosted worker.
    host: Mutex<Option<NodeHost>>,
    running: Mutex<Option<Running>>,
}

/// JavaScript's side of the worker.
struct NodeHost {
    dispatch: Arc<DispatchFn>,
    on_cancel: CancelFn,
}

impl Host for NodeHost {
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let dispatch = self.dispatch.clone();
        let j = job.job();
        let arg = JobArg {
            id: j.id.to_string(),
            name: j.name.clone(),
            handler: job.handler().to_string(),
            payload: j.payload.clone(),
            attempt: j.attempt,
            max_retries: j.max_retries,
            timeout: j.timeout,
            schedule_id: j.schedule_id.map(|s| s.to_string()),
        };
        Box::pin(async move {
            let promise = match dispatch.call_async_catch(arg).await {
                Ok(promise) => promise,
                Err(e) => return Outcome::retry(format!("the handler could not be called: {e}")),
            };
            match promise.await {
                Ok(settled) => Outcome::parse(settled),
                Err(e) => Outcome::retry(format!("the handler failed: {e}")),
            }
        })
    }

    fn cancel(&self, job: &HostedJob) {
        self.on_cancel.call(
            job.id().to_string(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[napi]
impl Worker {
    /// The callbacks do not hold Node's event loop open (they are weak):
    /// while the worker runs, its pending `run()` does; before `start()`
    /// and after `stop()`, nothing does.
    #[napi(constructor)]
    pub fn new(options: WorkerOptions, dispatch: DispatchFn, on_cancel: CancelFn) -> Self {
        let mut builder = SdkWorker::builder(options.url, options.api_key);
        if let Some(n) = options.concurrency {
            builder = builder.concurrency(n);
        }
        if let Some(id) = options.worker_id {
            builder = builder.worker_id(id);
        }
        if let Some(grace) = options.shutdown_grace_seconds {
            builder = builder.shutdown_grace(Duration::from_secs_f64(grace.max(0.0)));
        }
        Worker {
            hosted: HostedWorker::new(builder),
            host: Mutex::new(Some(NodeHost {
                dispatch: Arc::new(dispatch),
                on_cancel,
            })),
            running: Mutex::new(None),
        }
    }

    /// The settings the worker runs with, defaults included.
    #[napi]
    pub fn settings(&self) -> WorkerSettings {
        let s = self.hosted.settings();
        WorkerSettings {
            concurrency: s.concurrency,
            worker_id: s.worker_id.clone(),
            shutdown_grace_seconds: s.shutdown_grace.as_secs_f64(),
        }
    }

    /// Takes jobs of handler `name` (lib/worker.js keeps the function).
    #[napi]
    pub fn handle(&self, name: String) -> Result<()> {
        self.hosted.handle(name).map_err(from_sdk)
    }

    /// Builds the worker (checking its settings); `run` then runs it.
    #[napi]
    pub fn build(&self) -> Result<()> {
        let host = lock(&self.host)
            .take()
            .ok_or_else(|| invalid("start", "the worker has already started"))?;
        let running = self.hosted.start(host).map_err(from_sdk)?;
        *lock(&self.running) = Some(Box::pin(running));
        Ok(())
    }

    /// Runs until stopped; rejects on a fatal error (a refused key). The
    /// JavaScript callbacks are let go when it ends.
    #[napi]
    pub async fn run(&self) -> Result<()> {
        let running = lock(&self.running)
            .take()
            .ok_or_else(|| invalid("run", "build the worker first"))?;
        running.await.map_err(from_sdk)
    }

    /// Resolves once the worker is connected (or `false` if it stopped first).
    #[napi]
    pub async fn connected(&self) -> Result<bool> {
        Ok(self.hosted.connected().await)
    }

    /// Starts a graceful stop: no new jobs; jobs in hand get the grace.
    /// Before `build`, the worker stops as soon as it has connected.
    #[napi]
    pub fn stop(&self) {
        self.hosted.stop();
    }

    /// Whether running job `id` was cancelled (lib/worker.js asks once its
    /// AbortController is in place, for a cancellation that came first).
    #[napi]
    pub fn is_cancelled(&self, id: String) -> bool {
        self.hosted.job(&id).is_ok_and(|job| job.is_cancelled())
    }

    /// Moves the deadline of running job `id` to `seconds` from now.
    #[napi]
    pub async fn extend(&self, id: String, seconds: u32) -> Result<()> {
        self.hosted.extend(&id, seconds).await.map_err(from_sdk)
    }
}
