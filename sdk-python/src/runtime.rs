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
use std::sync::{Arc, LazyLock, Mutex};
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
