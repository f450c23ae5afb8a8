//! `NativeWorker`: the Rust SDK's hosted worker ([`chronos::hosted`]), its
//! jobs run by Python. This file only maps Python callables onto [`Host`];
//! the plumbing (settings until start, stop before start, the jobs in hand,
//! cancel watching, reading the outcome) is the Rust SDK's, shared with the
//! Node binding.
//!
//! python/chronos/worker.py owns the Python side: it runs each job on its
//! asyncio loop (an `async def` there, a plain function in its thread pool)
//! and calls the job's `settle` with the outcome as JSON — `{"ok": result}`
//! or `{"error": {"message", "permanent", "retry_in"}}`, a
//! [`chronos::Outcome`] — so no Python exception has to cross into Rust.

use crate::error::to_py;
use crate::runtime;
use chronos::Outcome;
use chronos::Worker as SdkWorker;
use chronos::hosted::{Host, HostedJob, HostedWorker};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

#[pyclass(name = "NativeWorker", module = "chronos._native", frozen)]
pub struct Worker {
    hosted: HostedWorker,
}

/// Python's side of the worker, called from the runtime's threads.
struct PyHost {
    /// `dispatch(name, job_json, settle)`: starts a job's handler, and
    /// registers the job before returning.
    dispatch: Py<PyAny>,
    /// `on_cancel(job_id)`: the job was cancelled, or the grace ran out.
    on_cancel: Py<PyAny>,
}

impl Host for PyHost {
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let (tx, rx) = oneshot::channel();
        let dispatched = match serde_json::to_string(job.job()) {
            Err(e) => Err(format!("the job could not be read: {e}")),
            Ok(text) => {
                let mut started = Err("the interpreter is exiting".to_string());
                runtime::call_python(|py| {
                    let settle = Py::new(py, Settle(Mutex::new(Some(tx))))?;
                    let called = self.dispatch.call1(py, (job.handler(), text, settle));
                    started = called
                        .as_ref()
                        .map(drop)
                        .map_err(|e| format!("the handler could not be started: {e}"));
                    called
                });
                started
            }
        };
        Box::pin(async move {
            if let Err(message) = dispatched {
                return Outcome::retry(message);
            }
            match rx.await {
                Ok(text) => Outcome::from_json(&text),
                // A settle dropped uncalled (the loop closed under it).
                Err(_) => {
                    Outcome::retry("the handler ended without an outcome (its event loop closed)")
                }
            }
        })
    }

    fn cancel(&self, job: &HostedJob) {
        let id = job.id().to_string();
        runtime::call_python(|py| self.on_cancel.call1(py, (id,)));
    }
}

#[pymethods]
impl Worker {
    /// Settings left `None` take the Rust SDK's defaults.
    #[new]
    #[pyo3(signature = (url, api_key, concurrency = None, worker_id = None, shutdown_grace_seconds = None))]
    fn new(
        url: String,
        api_key: String,
        concurrency: Option<u32>,
        worker_id: Option<String>,
        shutdown_grace_seconds: Option<f64>,
    ) -> Self {
        let mut builder = SdkWorker::builder(url, api_key);
        if let Some(n) = concurrency {
            builder = builder.concurrency(n);
        }
        if let Some(id) = worker_id {
            builder = builder.worker_id(id);
        }
        if let Some(grace) = shutdown_grace_seconds {
            builder = builder.shutdown_grace(Duration::from_secs_f64(grace.max(0.0)));
        }
        // The Python side owns signals: its loop drains on SIGINT and
        // SIGTERM (a hosted worker never listens for them).
        Worker {
            hosted: HostedWorker::new(builder),
        }
    }

    /// The settings the worker runs with, defaults included:
    /// `concurrency`, `worker_id`, `shutdown_grace_seconds`.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.hosted.settings();
        let dict = PyDict::new(py);
        dict.set_item("concurrency", s.concurrency)?;
        dict.set_item("worker_id", s.worker_id.clone())?;
        dict.set_item("shutdown_grace_seconds", s.shutdown_grace.as_secs_f64())?;
        Ok(dict)
    }

    /// Takes jobs of handler `name` (the Python side keeps the function).
    fn handle(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.hosted.handle(name).map_err(|e| to_py(py, &e))
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
        let host = PyHost {
            dispatch,
            on_cancel,
        };
        let running = self.hosted.start(host).map_err(|e| to_py(py, &e))?;
        let runtime = runtime::get();
        let watcher = self.hosted.connection().map(|mut connection| {
            runtime.spawn(async move {
                while connection.changed().await.is_ok() {
                    if *connection.borrow_and_update() {
                        runtime::call_python(|py| on_connected.call0(py));
                    }
                }
            })
        });
        runtime.spawn(async move {
            let result = running.await;
            if let Some(watcher) = watcher {
                watcher.abort();
            }
            runtime::call_python(|py| match &result {
                Ok(()) => on_exit.call1(py, (py.None(),)),
                Err(e) => on_exit.call1(py, (to_py(py, e).into_value(py),)),
            });
        });
        Ok(())
    }

    /// Starts a graceful stop, from any thread: no new jobs; jobs in hand
    /// get the grace to finish, then are cancelled and handed back. Before
    /// `start`, the worker stops as soon as it has connected.
    fn stop(&self) {
        self.hosted.stop();
    }

    /// Moves the deadline of running job `job_id` to `seconds` from now,
    /// waiting without the GIL for the server's answer.
    fn extend(&self, py: Python<'_>, job_id: &str, seconds: u32) -> PyResult<()> {
        let job = self.hosted.job(job_id).map_err(|e| to_py(py, &e))?;
        runtime::block_on(py, async move { job.extend(seconds).await })?.map_err(|e| to_py(py, &e))
    }

    /// `extend`, answering through `done(None, error)` from another thread.
    fn extend_async(
        &self,
        py: Python<'_>,
        job_id: &str,
        seconds: u32,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let job = self.hosted.job(job_id).map_err(|e| to_py(py, &e))?;
        runtime::get().spawn(async move {
            let result = job.extend(seconds).await;
            runtime::call_python(|py| match &result {
                Ok(()) => done.call1(py, (py.None(), py.None())),
                Err(e) => done.call1(py, (py.None(), to_py(py, e).into_value(py))),
            });
        });
        Ok(())
    }
}

/// Handed to Python with each job: called once with the outcome's JSON.
#[pyclass(module = "chronos._native", frozen)]
pub struct Settle(Mutex<Option<oneshot::Sender<String>>>);

#[pymethods]
impl Settle {
    fn __call__(&self, outcome: String) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // The worker may have stopped waiting (it stopped): nothing to do.
            let _ = tx.send(outcome);
        }
    }
}
