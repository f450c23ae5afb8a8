//! Checking a push request's signature: the HMAC itself, in the same Rust
//! as the server's. python/chronos/signature.py finds the headers (any
//! mapping: a dict, Flask's or Starlette's headers) and calls this.

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
