//! The Chronos SDK for Python: a pyo3 binding over the Rust SDK
//! (`chronos-sdk`), so Python speaks to the server through the same client
//! and worker code as Rust does. This crate builds `chronos._native`;
//! `python/chronos/` is the package Python imports, which gives the native
//! parts decorators, asyncio and type hints.
//!
//! - [`client`]: the REST client, one method per operation, each a call to
//!   wait for or to start.
//! - [`worker`]: the worker, its handlers Python functions (over the Rust
//!   SDK's `chronos::hosted`, as the Node binding is).
//! - [`convert`]: Python values to JSON and back.
//! - [`signature`]: checking a push request's signature, and reading a
//!   callback.
//! - [`runtime`]: the binding's tokio runtime, one per process.
//! - [`error`]: how the Rust SDK's errors cross into Python.

mod client;
mod convert;
mod error;
mod runtime;
mod signature;
mod worker;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<client::Call>()?;
    m.add_class::<worker::Worker>()?;
    m.add_class::<worker::Settle>()?;
    m.add_function(wrap_pyfunction!(signature::verify, m)?)?;
    m.add_function(wrap_pyfunction!(signature::parse_callback, m)?)?;
    m.add_function(wrap_pyfunction!(signature::parse_unsigned_callback, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_quiesce, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
