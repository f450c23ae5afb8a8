//! `NativeWorker`: the Rust SDK's worker, its handlers JavaScript
//! functions. `lib/worker.js` wraps it: it gives each job an AbortSignal,
//! `extend()`, and turns a handler's return or throw into the settled
//! object this side reads (`{ok}` or `{error}`), so no JavaScript exception
//! has to cross napi.

use crate::error::{from_sdk, invalid};
use chronos::{JobContext, JobError, ShutdownHandle, Worker as SdkWorker, WorkerBuilder};
use napi::Status;
use napi::bindgen_prelude::{Promise, Result};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the worker runs.
#[napi(object)]
pub struct WorkerOptions {
    pub url: String,
    pub api_key: String,
    /// Jobs run at once (default 4).
    pub concurrency: Option<u32>,
    /// The id the server shows (default: generated).
    pub worker_id: Option<String>,
    /// At stop, how long jobs in hand get to finish (default 30).
    pub shutdown_grace_seconds: Option<f64>,
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

/// A handler: called with the job, resolves to `{ok: result}` or
/// `{error: {message, permanent, retry_in}}` (lib/worker.js makes sure):
/// a [`chronos::Outcome`].
/// Weak: it does not hold Node's event loop open by itself.
type HandlerFn = ThreadsafeFunction<JobArg, Promise<Value>, JobArg, Status, false, true>;
/// Told the id of a job cancelled while its handler runs.
type CancelFn = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Jobs whose handlers are running, for `extend`.
type Running = Arc<Mutex<HashMap<String, Arc<JobContext>>>>;

/// Every method takes `&self` (napi refuses a second borrow while an
/// async `&mut self` call runs), so what changes sits behind a lock.
#[napi(js_name = "NativeWorker")]
pub struct Worker {
    state: Mutex<State>,
    running: Running,
}

#[derive(Default)]
struct State {
    /// Until `build`.
    builder: Option<WorkerBuilder>,
    on_cancel: Option<Arc<CancelFn>>,
    /// From `build` on.
    shutdown: Option<ShutdownHandle>,
    connected: Option<tokio::sync::watch::Receiver<bool>>,
    /// From `build` until `run` takes it.
    worker: Option<SdkWorker>,
}

#[napi]
impl Worker {
    /// The callbacks do not hold Node's event loop open (they are weak):
    /// while the worker runs, its pending `run()` does; before `start()`
    /// and after `stop()`, nothing does.
    #[napi(constructor)]
    pub fn new(options: WorkerOptions, on_cancel: CancelFn) -> Result<Self> {
        let mut builder = SdkWorker::builder(options.url, options.api_key)
            // lib/worker.js listens for SIGINT and SIGTERM: Node's process
            // owns its signals.
            .handle_signals(false);
        if let Some(n) = options.concurrency {
            builder = builder.concurrency(n);
        }
        if let Some(id) = options.worker_id {
            builder = builder.worker_id(id);
        }
        if let Some(grace) = options.shutdown_grace_seconds {
            builder = builder.shutdown_grace(Duration::from_secs_f64(grace.max(0.0)));
        }
        let state = State {
            builder: Some(builder),
            on_cancel: Some(Arc::new(on_cancel)),
            ..State::default()
        };
        Ok(Worker {
            state: Mutex::new(state),
            running: Running::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `handler` for jobs of `name`.
    #[napi]
    pub fn handle(&self, name: String, handler: HandlerFn) -> Result<()> {
        let mut state = self.state();
        let builder = state
            .builder
            .take()
            .ok_or_else(|| invalid("handle", "the worker has started; register handlers first"))?;
        let handler = Arc::new(handler);
        let running = self.running.clone();
        let on_cancel = state.on_cancel.clone();
        state.builder = Some(builder.handle(name, move |ctx: JobContext| {
            let (handler, running, on_cancel) =
                (handler.clone(), running.clone(), on_cancel.clone());
            async move { run_job(ctx, handler, running, on_cancel).await }
        }));
        Ok(())
    }

    /// Builds the worker (checking its settings); `run` then runs it.
    #[napi]
    pub fn build(&self) -> Result<()> {
        let mut state = self.state();
        let builder = state
            .builder
            .take()
            .ok_or_else(|| invalid("start", "the worker has already started"))?;
        let worker = builder.build().map_err(from_sdk)?;
        state.shutdown = Some(worker.shutdown_handle());
        state.connected = Some(worker.connection());
        state.worker = Some(worker);
        Ok(())
    }

    /// Runs until stopped; rejects on a fatal error (a refused key).
    #[napi]
    pub async fn run(&self) -> Result<()> {
        let worker = self
            .state()
            .worker
            .take()
            .ok_or_else(|| invalid("run", "build the worker first"))?;
        let result = worker.run().await.map_err(from_sdk);
        // Release the JavaScript callbacks: nothing keeps Node's event loop
        // alive once the worker has stopped.
        self.state().on_cancel = None;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        result
    }

    /// Resolves once the worker is connected (or `false` if it stopped first).
    #[napi]
    pub async fn connected(&self) -> Result<bool> {
        let connected = self.state().connected.clone();
        let Some(mut rx) = connected else {
            return Ok(false);
        };
        Ok(rx.wait_for(|c| *c).await.is_ok())
    }

    /// Starts a graceful stop: no new jobs; jobs in hand get the grace.
    #[napi]
    pub fn stop(&self) {
        if let Some(handle) = &self.state().shutdown {
            handle.shutdown();
        }
    }

    /// Moves the deadline of running job `id` to `seconds` from now.
    #[napi]
    pub async fn extend(&self, id: String, seconds: u32) -> Result<()> {
        let ctx = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| invalid("extend", format!("job {id} is not running here")))?;
        ctx.extend(seconds).await.map_err(from_sdk)
    }
}

/// Runs one job's JavaScript handler: tells it of a cancellation while it
/// runs, and reads its settled outcome.
async fn run_job(
    ctx: JobContext,
    handler: Arc<HandlerFn>,
    running: Running,
    on_cancel: Option<Arc<CancelFn>>,
) -> std::result::Result<Value, JobError> {
    let id = ctx.job.id.to_string();
    let arg = JobArg {
        id: id.clone(),
        name: ctx.job.name.clone(),
        handler: ctx.job.handler.clone().unwrap_or_default(),
        payload: ctx.job.payload.clone(),
        attempt: ctx.job.attempt,
        max_retries: ctx.job.max_retries,
        timeout: ctx.job.timeout,
        schedule_id: ctx.job.schedule_id.map(|s| s.to_string()),
    };
    let ctx = Arc::new(ctx);
    running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), ctx.clone());
    let watcher = on_cancel.map(|on_cancel| {
        let (ctx, id) = (ctx.clone(), id.clone());
        tokio::spawn(async move {
            ctx.cancelled().await;
            on_cancel.call(id, ThreadsafeFunctionCallMode::NonBlocking);
        })
    });
    let settled = async {
        let promise = handler
            .call_async_catch(arg)
            .await
            .map_err(|e| JobError::retry(format!("the handler could not be called: {e}")))?;
        promise
            .await
            .map_err(|e| JobError::retry(format!("the handler failed: {e}")))
    }
    .await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    chronos::Outcome::read(settled?)
}
