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
//!
//! Jobs cross in batches: entering Python (the GIL, a thread state) and
//! waking its event loop cost more than a no-op handler, so the jobs that
//! arrive while one batch is being handed over wait for the next, and each
//! batch pays them once.

use crate::error::to_py;
use crate::runtime;
use chronos::Outcome;
use chronos::Worker as SdkWorker;
use chronos::hosted::{Host, HostedJob, HostedWorker};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

#[pyclass(name = "NativeWorker", module = "chronos._native", frozen)]
pub struct Worker {
    hosted: HostedWorker,
}

/// What a job's handler ended with: the outcome's JSON, or why it could
/// not be started (a retry).
type Settled = Result<String, String>;

/// Python's side of the worker, called from the runtime's threads.
struct PyHost {
    batches: Arc<Batches>,
}

/// The jobs waiting to be handed to Python, and the thread that hands
/// them over ([`Batches::serve`]).
struct Batches {
    /// `dispatch(jobs_json, settles)`: starts the handlers of a JSON array
    /// of jobs (`settles[i]` is job `i`'s), and registers them before
    /// returning.
    dispatch: Py<PyAny>,
    /// `on_cancel(job_id)`: the job was cancelled, or the grace ran out.
    on_cancel: Py<PyAny>,
    queue: Mutex<Queue>,
    /// Wakes the thread when jobs come.
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// The thread waits for jobs (and must be woken for them).
    idle: bool,
    /// The worker has stopped: the thread ends.
    closed: bool,
}

struct Waiting {
    job: HostedJob,
    json: String,
    settled: oneshot::Sender<Settled>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Batches {
    fn push(&self, waiting: Waiting) {
        let mut queue = lock(&self.queue);
        queue.waiting.push(waiting);
        if std::mem::take(&mut queue.idle) {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        lock(&self.queue).closed = true;
        self.ready.notify_one();
    }

    /// The thread's life: each time jobs wait, enters Python once and
    /// hands over all that wait by then, until the worker stops. Off the
    /// runtime's threads, since waiting for the GIL would hold up the
    /// socket.
    fn serve(&self) {
        loop {
            {
                let mut queue = lock(&self.queue);
                while queue.waiting.is_empty() && !queue.closed {
                    queue.idle = true;
                    queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                if queue.waiting.is_empty() {
                    return;
                }
            }
            let called = runtime::call_python(|py| {
                // Taken with the GIL held: jobs that came while this thread
                // waited for it go in this batch.
                let batch = std::mem::take(&mut lock(&self.queue).waiting);
                self.hand_over(py, batch)
            });
            if !called {
                for w in std::mem::take(&mut lock(&self.queue).waiting) {
                    let _ = w.settled.send(Err("the interpreter is exiting".into()));
                }
            }
        }
    }

    /// One call of `dispatch` with `batch`. If it raises, every job of the
    /// batch is a retry (a job that Python did start is settled once all the
    /// same: `Settle` sends at most once).
    fn hand_over(&self, py: Python<'_>, batch: Vec<Waiting>) -> PyResult<()> {
        let mut json =
            String::with_capacity(2 + batch.iter().map(|w| w.json.len() + 1).sum::<usize>());
        let mut jobs = Vec::with_capacity(batch.len());
        let mut settles = Vec::with_capacity(batch.len());
        json.push('[');
        for w in batch {
            if !jobs.is_empty() {
                json.push(',');
            }
            json.push_str(&w.json);
            jobs.push(w.job);
            settles.push(Py::new(py, Settle(Mutex::new(Some(w.settled))))?);
        }
        json.push(']');
        let list = PyList::new(py, &settles)?;
        if let Err(e) = self.dispatch.call1(py, (json, list)) {
            let message = format!("the handler could not be started: {e}");
            for settle in &settles {
                settle.get().send(Err(message.clone()));
            }
            return Err(e);
        }
        // Registered now. A cancellation that came before is told here; one
        // that comes after finds the job (a job's flag is set before its
        // host is told).
        for job in &jobs {
            if job.is_cancelled()
                && let Err(e) = self.on_cancel.call1(py, (job.id().to_string(),))
            {
                e.write_unraisable(py, None);
            }
        }
        Ok(())
    }
}

impl Drop for PyHost {
    fn drop(&mut self) {
        self.batches.close();
    }
}

impl Host for PyHost {
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let json = match job.handler_json() {
            Ok(json) => json,
            Err(outcome) => return Box::pin(async move { outcome }),
        };
        let (settled, rx) = oneshot::channel();
        self.batches.push(Waiting { job, json, settled });
        Box::pin(async move {
            match rx.await {
                Ok(Ok(text)) => Outcome::from_json(&text),
                Ok(Err(message)) => Outcome::retry(message),
                // A settle dropped uncalled (the loop closed under it).
                Err(_) => {
                    Outcome::retry("the handler ended without an outcome (its event loop closed)")
                }
            }
        })
    }

    fn cancel(&self, job: &HostedJob) {
        let id = job.id().to_string();
        runtime::call_python(|py| self.batches.on_cancel.call1(py, (id,)));
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
        let batches = Arc::new(Batches {
            dispatch,
            on_cancel,
            queue: Mutex::default(),
            ready: Condvar::new(),
        });
        let serving = batches.clone();
        std::thread::Builder::new()
            .name("chronos-dispatch".into())
            .spawn(move || runtime::keep_thread_state(|| serving.serve()))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread: {e}")))?;
        // Dropped, the host ends that thread: if `start` fails, at once.
        let host = PyHost { batches };
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
pub struct Settle(Mutex<Option<oneshot::Sender<Settled>>>);

impl Settle {
    fn send(&self, settled: Settled) {
        if let Some(tx) = lock(&self.0).take() {
            // The worker may have stopped waiting (it stopped): nothing to do.
            let _ = tx.send(settled);
        }
    }
}

#[pymethods]
impl Settle {
    fn __call__(&self, outcome: String) {
        self.send(Ok(outcome));
    }
}
