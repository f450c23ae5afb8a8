//! The binding's one tokio runtime, and how Python threads wait on it.
//!
//! `fork()` copies a process's memory but not its threads: in a child, the
//! parent's runtime looks alive and runs nothing. So the runtime belongs to
//! the process that made it, and a forked child makes its own on first use
//! (gunicorn, multiprocessing and Celery's prefork all fork after import).
//! The new runtime shares no lock with the dead one: tokio is built without
//! its `parking_lot` feature (see the workspace's Cargo.toml), whose global
//! table of waiters a fork can leave locked or torn.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::future::Future;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use tokio::runtime::{Builder, Runtime};

static RUNTIME: LazyLock<PerProcess<Runtime, std::io::Error>> = LazyLock::new(|| {
    PerProcess::new(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chronos-runtime")
            .enable_all()
            .build()
    })
});

/// This process's runtime.
pub fn get() -> Arc<Runtime> {
    RUNTIME.get().expect("the tokio runtime starts")
}

/// A value made once per process, on first use: remade in a forked child,
/// since what the parent's holds (threads, pooled connections) is not there.
pub struct PerProcess<T, E> {
    make: Box<dyn Fn() -> Result<T, E> + Send + Sync>,
    made: Mutex<Option<(u32, Arc<T>)>>,
}

impl<T, E> PerProcess<T, E> {
    pub fn new(make: impl Fn() -> Result<T, E> + Send + Sync + 'static) -> Self {
        PerProcess {
            make: Box::new(make),
            made: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<Arc<T>, E> {
        let pid = std::process::id();
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, value)) = made.as_ref()
            && *owner == pid
        {
            return Ok(value.clone());
        }
        // A parent's: dropping it would wait on threads, or close
        // connections, that belong to the parent. It is left alone.
        if let Some(inherited) = made.take() {
            std::mem::forget(inherited);
        }
        let value = Arc::new((self.make)()?);
        *made = Some((pid, value.clone()));
        Ok(value)
    }
}

/// Runs `future` to its end on the runtime, the calling thread waiting
/// without the GIL so that other Python threads (and the handlers of a
/// worker) run meanwhile.
pub fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PyRuntimeError::new_err(
            "a blocking Chronos call from inside the SDK's own runtime; use AsyncClient",
        ));
    }
    let runtime = get();
    Ok(py.detach(|| runtime.block_on(future)))
}

/// The runtime's threads inside Python now, and whether the interpreter is
/// exiting (then none may enter).
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    left: Condvar,
}

#[derive(Default)]
struct GateState {
    /// The process these counts are of: a forked child starts afresh (the
    /// parent's threads that were inside are not in the child).
    pid: u32,
    inside: usize,
    closed: bool,
}

static GATE: LazyLock<Gate> = LazyLock::new(Gate::default);

fn lock_gate() -> std::sync::MutexGuard<'static, GateState> {
    let mut gate = GATE.state.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if gate.pid != pid {
        *gate = GateState {
            pid,
            ..GateState::default()
        };
    }
    gate
}

/// Calls into Python from one of the runtime's threads — a worker's
/// handler, a cancellation, an `AsyncClient`'s answer — unless the
/// interpreter is exiting, when the call is dropped. An exception the
/// callable raises is reported as unraisable (there is no Python caller to
/// get it). Returns whether it called.
///
/// A runtime thread still inside Python when the interpreter finalizes
/// aborts the process ("PyGILState_Release: thread state must be current"):
/// a callback that wakes Python's main thread (`call_soon_threadsafe`)
/// releases the GIL inside the call, and the main thread may then return
/// and exit before this thread is out. [`quiesce`], run at exit, waits for
/// calls in progress and lets no new one in.
pub fn call_python<R>(f: impl FnOnce(Python<'_>) -> PyResult<R>) -> bool {
    if !enter() {
        return false;
    }
    Python::attach(|py| {
        if let Err(e) = f(py) {
            e.write_unraisable(py, None);
        }
    });
    leave();
    true
}

/// Runs `f`, which makes many [`call_python`]s from this (non-Python)
/// thread, with a Python thread state kept for the thread throughout:
/// entering Python from a thread without one makes a thread state and
/// frees it again each time (allocations, an mmap, page faults). `f` runs
/// without the GIL; if the interpreter is exiting, without a thread state.
pub fn keep_thread_state<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if !enter() {
        return f();
    }
    let result = Python::attach(|py| {
        leave();
        py.detach(|| {
            let result = f();
            // Leaving `detach` takes the GIL back: through the gate, or
            // never (the interpreter is finalizing; the process is ending).
            if !enter() {
                loop {
                    std::thread::park();
                }
            }
            result
        })
    });
    leave();
    result
}

/// Counts this thread as inside Python, unless the interpreter is exiting.
fn enter() -> bool {
    let mut gate = lock_gate();
    if gate.closed {
        return false;
    }
    gate.inside += 1;
    true
}

fn leave() {
    let mut gate = lock_gate();
    gate.inside -= 1;
    if gate.inside == 0 {
        GATE.left.notify_all();
    }
}

/// Closes the gate into Python and waits, without the GIL, until the
/// runtime's threads are out of it. `chronos/__init__.py` registers it with
/// `atexit`, which runs before the interpreter finalizes.
#[pyfunction]
pub fn _quiesce(py: Python<'_>) {
    py.detach(|| {
        let mut gate = lock_gate();
        gate.closed = true;
        while gate.inside > 0 {
            gate = GATE.left.wait(gate).unwrap_or_else(|p| p.into_inner());
        }
    });
}
