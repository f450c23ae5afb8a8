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
//!
//! Jobs and outcomes cross in batches, as JSON text: one wake-up of
//! JavaScript takes every job waiting by then (`takeJobs`), and the
//! outcomes of one turn of its event loop come back in one call (`settle`).

use crate::error::{from_sdk, invalid};
use chronos::Outcome;
use chronos::Worker as SdkWorker;
use chronos::hosted::{Host, HostedJob, HostedWorker};
use napi::Status;
use napi::bindgen_prelude::Result;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

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

/// Called, without arguments, when jobs are waiting: lib/worker.js then
/// takes them all with `takeJobs()`. Weak: it does not hold Node's event
/// loop open by itself.
type WakeFn = ThreadsafeFunction<(), (), (), Status, false, true>;
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
    inbox: Arc<Inbox>,
}

/// JavaScript's side of the worker. The callbacks live here, not in the
/// `Worker`, so that they are let go when the worker stops.
struct NodeHost {
    inbox: Arc<Inbox>,
    wake: WakeFn,
    on_cancel: CancelFn,
}

/// The jobs on their way to JavaScript and back: a call into JavaScript
/// from another thread, and napi's conversions, cost more than a no-op
/// handler, so they are paid per batch.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Default)]
struct InboxState {
    /// Jobs not yet taken by JavaScript, by key.
    waiting: Vec<(u64, HostedJob, String)>,
    /// JavaScript has been woken for what is waiting and has not taken it.
    woken: bool,
    /// Where each job's outcome goes, by key, until it is settled.
    settles: HashMap<u64, oneshot::Sender<Outcome>>,
    next: u64,
}

impl Host for NodeHost {
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let json = match job.handler_json() {
            Ok(json) => json,
            Err(outcome) => return Box::pin(async move { outcome }),
        };
        let (tx, rx) = oneshot::channel();
        let wake = {
            let mut state = lock(&self.inbox.state);
            let key = state.next;
            state.next += 1;
            state.settles.insert(key, tx);
            state.waiting.push((key, job, json));
            !std::mem::replace(&mut state.woken, true)
        };
        if wake {
            let status = self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
            if status != Status::Ok {
                self.inbox
                    .fail_waiting(&format!("the handler could not be called: {status}"));
            }
        }
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Outcome::retry("the handler ended without an outcome (the worker let it go)")
            })
        })
    }

    fn cancel(&self, job: &HostedJob) {
        self.on_cancel.call(
            job.id().to_string(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

impl Inbox {
    /// JavaScript cannot be called: what waits is a retry.
    fn fail_waiting(&self, message: &str) {
        let failed: Vec<_> = {
            let mut state = lock(&self.state);
            state.woken = false;
            let waiting = std::mem::take(&mut state.waiting);
            waiting
                .into_iter()
                .filter_map(|(key, _, _)| state.settles.remove(&key))
                .collect()
        };
        for tx in failed {
            let _ = tx.send(Outcome::retry(message));
        }
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
    pub fn new(options: WorkerOptions, wake: WakeFn, on_cancel: CancelFn) -> Self {
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
        let inbox = Arc::new(Inbox::default());
        Worker {
            hosted: HostedWorker::new(builder),
            host: Mutex::new(Some(NodeHost {
                inbox: inbox.clone(),
                wake,
                on_cancel,
            })),
            running: Mutex::new(None),
            inbox,
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

    /// The jobs waiting for JavaScript, taken: a JSON array of
    /// `[key, job, cancelled]`. `cancelled` tells of a cancellation that
    /// came before JavaScript registered the job (its own call may reach
    /// JavaScript first, and find nothing); one that comes later finds it.
    #[napi]
    pub fn take_jobs(&self) -> String {
        let waiting = {
            let mut state = lock(&self.inbox.state);
            state.woken = false;
            std::mem::take(&mut state.waiting)
        };
        let mut json =
            String::with_capacity(2 + waiting.iter().map(|(_, _, j)| j.len() + 32).sum::<usize>());
        json.push('[');
        for (i, (key, job, arg)) in waiting.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            let _ = write!(json, "[{key},{arg},{}]", job.is_cancelled());
        }
        json.push(']');
        json
    }

    /// Outcomes, a JSON array of `[key, outcome]`: each job's first one
    /// counts.
    #[napi]
    pub fn settle(&self, outcomes: String) -> Result<()> {
        let outcomes: Vec<(u64, Value)> =
            serde_json::from_str(&outcomes).map_err(|e| invalid("settle", e))?;
        let settles: Vec<_> = {
            let mut state = lock(&self.inbox.state);
            outcomes
                .into_iter()
                .filter_map(|(key, outcome)| Some((state.settles.remove(&key)?, outcome)))
                .collect()
        };
        for (tx, outcome) in settles {
            // The worker may have stopped waiting (it stopped): nothing to do.
            let _ = tx.send(Outcome::parse(outcome));
        }
        Ok(())
    }

    /// Moves the deadline of running job `id` to `seconds` from now.
    #[napi]
    pub async fn extend(&self, id: String, seconds: u32) -> Result<()> {
        self.hosted.extend(&id, seconds).await.map_err(from_sdk)
    }
}
