//! `NativeWorker`: the Rust SDK's worker (one WebSocket, leases,
//! heartbeats, reconnects, draining), its handlers Python functions.
//!
//! python/chronos/worker.py owns the Python side: it runs each job on its
//! asyncio loop (an `async def` there, a plain function in its thread pool)
//! and calls the job's `settle` with the outcome as JSON — `{"ok": result}`
//! or `{"error": {"message", "permanent", "retry_in"}}` — so no Python
//! exception has to cross into Rust.

use crate::error::{invalid, to_py};
use crate::runtime;
use chronos::{JobContext, JobError, ShutdownHandle, Worker as SdkWorker, WorkerBuilder};
use pyo3::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Jobs whose handlers are running, by id, for `extend`.
type Running = Arc<Mutex<HashMap<String, Arc<JobContext>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[pyclass(name = "NativeWorker", module = "chronos._native", frozen)]
pub struct Worker {
    state: Mutex<State>,
    running: Running,
}

struct State {
    /// Until `start`.
    builder: Option<WorkerBuilder>,
    names: Vec<String>,
    /// From `start` on.
    shutdown: Option<ShutdownHandle>,
    /// `stop` came before `start`: the worker stops as soon as it starts.
    stop_requested: bool,
}

/// The Python callables a started worker calls, from the runtime's threads.
struct Callbacks {
    /// `dispatch(name, job_json, settle)`: starts a job's handler.
    dispatch: Py<PyAny>,
    /// `on_cancel(job_id)`: the job was cancelled, or the grace ran out.
    on_cancel: Py<PyAny>,
}

#[pymethods]
impl Worker {
    #[new]
    #[pyo3(signature = (url, api_key, concurrency = 8, worker_id = None, shutdown_grace_seconds = 30.0))]
    fn new(
        url: String,
        api_key: String,
        concurrency: u32,
        worker_id: Option<String>,
        shutdown_grace_seconds: f64,
    ) -> Self {
        let mut builder = SdkWorker::builder(url, api_key)
            .concurrency(concurrency)
            .shutdown_grace(Duration::from_secs_f64(shutdown_grace_seconds.max(0.0)))
            // The Python side owns signals: its loop drains on SIGINT and
            // SIGTERM, and the interpreter keeps its own handlers after.
            .handle_signals(false);
        if let Some(id) = worker_id {
            builder = builder.worker_id(id);
        }
        Worker {
            state: Mutex::new(State {
                builder: Some(builder),
                names: Vec::new(),
                shutdown: None,
                stop_requested: false,
            }),
            running: Running::default(),
        }
    }

    /// Takes jobs of handler `name` (the Python side keeps the function).
    fn handle(&self, name: String) -> PyResult<()> {
        let mut state = lock(&self.state);
        if state.builder.is_none() {
            return Err(invalid(
                "handle",
                "the worker has started; register handlers first",
            ));
        }
        state.names.push(name);
        Ok(())
    }

    /// Connects and runs in the background until stopped. `on_connected()`
    /// is called each time the server welcomes the worker; `on_exit(error)`
    /// once, when it has stopped (`error` is `None`, or the `ChronosError`
    /// that ended it: a refused key).
    fn start(
        &self,
        py: Python<'_>,
        dispatch: Py<PyAny>,
        on_cancel: Py<PyAny>,
        on_connected: Py<PyAny>,
        on_exit: Py<PyAny>,
    ) -> PyResult<()> {
        let worker = {
            let mut state = lock(&self.state);
            let mut builder = state
                .builder
                .take()
                .ok_or_else(|| invalid("start", "the worker has already started"))?;
            let callbacks = Arc::new(Callbacks {
                dispatch,
                on_cancel,
            });
            for name in &state.names {
                let (callbacks, running, name_) =
                    (callbacks.clone(), self.running.clone(), name.clone());
                builder = builder.handle(name.clone(), move |ctx: JobContext| {
                    let (callbacks, running, name) =
                        (callbacks.clone(), running.clone(), name_.clone());
                    async move { run_job(ctx, name, callbacks, running).await }
                });
            }
            let worker = builder.build().map_err(|e| to_py(py, &e))?;
            let shutdown = worker.shutdown_handle();
            if state.stop_requested {
                shutdown.shutdown();
            }
            state.shutdown = Some(shutdown);
            worker
        };
        let running = self.running.clone();
        let runtime = runtime::get();
        let mut connection = worker.connection();
        let watcher = runtime.spawn(async move {
            while connection.changed().await.is_ok() {
                if *connection.borrow_and_update() {
                    call(|py| on_connected.call0(py));
                }
            }
        });
        runtime.spawn(async move {
            let result = worker.run().await;
            watcher.abort();
            lock(&running).clear();
            call(|py| match &result {
                Ok(()) => on_exit.call1(py, (py.None(),)),
                Err(e) => on_exit.call1(py, (to_py(py, e).into_value(py),)),
            });
        });
        Ok(())
    }

    /// Starts a graceful stop, from any thread: no new jobs; jobs in hand
    /// get the grace to finish, then are cancelled and handed back.
    fn stop(&self) {
        let mut state = lock(&self.state);
        match &state.shutdown {
            Some(handle) => handle.shutdown(),
            None => state.stop_requested = true,
        }
    }

    /// Moves the deadline of running job `job_id` to `seconds` from now,
    /// waiting without the GIL for the server's answer.
    fn extend(&self, py: Python<'_>, job_id: &str, seconds: u32) -> PyResult<()> {
        let ctx = self.running_job(job_id)?;
        runtime::block_on(py, async move { ctx.extend(seconds).await })?.map_err(|e| to_py(py, &e))
    }

    /// `extend`, answering through `done(None, error)` from another thread.
    fn extend_async(&self, job_id: &str, seconds: u32, done: Py<PyAny>) -> PyResult<()> {
        let ctx = self.running_job(job_id)?;
        runtime::get().spawn(async move {
            let result = ctx.extend(seconds).await;
            call(|py| match &result {
                Ok(()) => done.call1(py, (py.None(), py.None())),
                Err(e) => done.call1(py, (py.None(), to_py(py, e).into_value(py))),
            });
        });
        Ok(())
    }
}

impl Worker {
    fn running_job(&self, job_id: &str) -> PyResult<Arc<JobContext>> {
        lock(&self.running)
            .get(job_id)
            .cloned()
            .ok_or_else(|| invalid("extend", format!("job {job_id} is not running here")))
    }
}

/// Calls into Python from a runtime thread; an exception the callable
/// raises is reported as unraisable (there is no Python caller to get it).
fn call(f: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>) {
    Python::attach(|py| {
        if let Err(e) = f(py) {
            e.write_unraisable(py, None);
        }
    });
}

/// Handed to Python with each job: called once with the outcome's JSON.
#[pyclass(module = "chronos._native", frozen)]
pub struct Settle(Mutex<Option<oneshot::Sender<String>>>);

#[pymethods]
impl Settle {
    fn __call__(&self, outcome: String) {
        if let Some(tx) = lock(&self.0).take() {
            // The worker may have stopped waiting (it stopped): nothing to do.
            let _ = tx.send(outcome);
        }
    }
}

/// Runs one job's Python handler and reads its outcome.
async fn run_job(
    ctx: JobContext,
    name: String,
    callbacks: Arc<Callbacks>,
    running: Running,
) -> Result<Value, JobError> {
    let id = ctx.job.id.to_string();
    let job = serde_json::to_string(&ctx.job)
        .map_err(|e| JobError::retry(format!("the job could not be read: {e}")))?;
    let ctx = Arc::new(ctx);
    lock(&running).insert(id.clone(), ctx.clone());
    let (tx, rx) = oneshot::channel();
    let dispatched = Python::attach(|py| {
        let settle = Py::new(py, Settle(Mutex::new(Some(tx))))?;
        callbacks.dispatch.call1(py, (name, job, settle)).map(drop)
    });
    let outcome = match dispatched {
        Err(e) => Err(JobError::retry(format!(
            "the handler could not be started: {e}"
        ))),
        Ok(()) => {
            let watcher = {
                let (ctx, id, callbacks) = (ctx.clone(), id.clone(), callbacks.clone());
                tokio::spawn(async move {
                    ctx.cancelled().await;
                    call(|py| callbacks.on_cancel.call1(py, (id,)));
                })
            };
            // A settle dropped uncalled (the loop closed under it) is a failure.
            let outcome = rx.await.map_err(|_| {
                JobError::retry("the handler ended without an outcome (its event loop closed)")
            });
            watcher.abort();
            outcome.and_then(|text| match serde_json::from_str(&text) {
                Ok(value) => chronos::Outcome::read(value),
                Err(e) => Err(JobError::retry(format!("an unreadable outcome: {e}"))),
            })
        }
    };
    lock(&running).remove(&id);
    outcome
}
