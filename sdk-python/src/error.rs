//! Errors crossing into Python. A Chronos error becomes the package's own
//! `chronos.errors.ChronosError` (a plain Python class, so it pickles,
//! subclasses and reads like any other), with the server's `code`, the HTTP
//! `status` and the request `field` at fault. Arguments Python passed that
//! the call cannot take ([`chronos::Error::InvalidArgument`]) are
//! `ValueError`s, as Python code expects.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The Rust SDK's error as a `ChronosError` (or a `ValueError`); its code
/// is [`chronos::Error::code_or_kind`].
pub fn to_py(py: Python<'_>, e: &chronos::Error) -> PyErr {
    if let chronos::Error::InvalidArgument { .. } = e {
        return PyValueError::new_err(e.to_string());
    }
    let made = py
        .import("chronos.errors")
        .and_then(|m| m.getattr("ChronosError"))
        .and_then(|class| class.call1((e.to_string(), e.code_or_kind(), e.status(), e.field())));
    match made {
        Ok(error) => PyErr::from_value(error),
        // The package is broken (chronos.errors missing): still say what failed.
        Err(import) => import,
    }
}

/// A value from Python that the call cannot take.
pub fn invalid(what: &str, e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(chronos::Error::invalid_argument(what, e).to_string())
}
