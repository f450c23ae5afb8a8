//! Checking a push request's signature: the HMAC itself, in the same Rust
//! as the server's; and reading a callback, verified or not, with the Rust
//! SDK's `chronos::callback`. python/chronos/signature.py and callback.py
//! find the headers (any mapping: a dict, Flask's or Starlette's headers)
//! and call these.

use crate::convert;
use crate::error::to_py;
use chronos::signature::verify_within;
use pyo3::prelude::*;

/// Whether `signature` (the `Chronos-Signature` header: one or more
/// comma-separated `v1=<hex>`) signs `timestamp` and `body` with `secret`,
/// and the timestamp is within `tolerance_seconds` of `now` (unix seconds).
#[pyfunction]
pub fn verify(
    py: Python<'_>,
    secret: &str,
    signature: &str,
    timestamp: &str,
    body: &[u8],
    tolerance_seconds: i64,
    now: i64,
) -> bool {
    py.detach(|| verify_within(signature, timestamp, body, secret, now, tolerance_seconds))
}

/// A callback request verified with any of `secrets` (its
/// `Chronos-Signature` and `Chronos-Timestamp` headers, `None` when
/// absent; the timestamp within `tolerance_seconds` of `now`), then its
/// body read: a dict, without the fields this version does not know.
/// Raises `ChronosError` (`invalid_signature`, `invalid_callback`).
#[pyfunction]
#[pyo3(signature = (secrets, signature, timestamp, body, tolerance_seconds, now))]
pub fn parse_callback<'py>(
    py: Python<'py>,
    secrets: Vec<String>,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    tolerance_seconds: i64,
    now: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let read = py.detach(|| {
        chronos::callback::parse_signed(
            signature,
            timestamp,
            body,
            &secrets,
            now,
            tolerance_seconds,
        )
    });
    answer(py, read)
}

/// A callback's body read without a signature check.
#[pyfunction]
pub fn parse_unsigned_callback<'py>(py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    answer(py, chronos::callback::parse_unsigned(body))
}

fn answer<'py>(
    py: Python<'py>,
    read: Result<chronos::Callback, chronos::Error>,
) -> PyResult<Bound<'py, PyAny>> {
    let callback = read.map_err(|e| to_py(py, &e))?;
    // A wire type: serializing it cannot fail.
    convert::from_json(
        py,
        &serde_json::to_string(&callback).expect("a callback serializes"),
    )
}
