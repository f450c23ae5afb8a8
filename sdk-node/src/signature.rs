//! `verifySignature`: whether a push request came from Chronos, signed with
//! one of the secret's values, within the replay window.

use chronos::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_within};
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;
use std::collections::HashMap;

/// Checks the `Chronos-Signature` and `Chronos-Timestamp` headers of a
/// request against its raw body (the bytes received, not re-serialized
/// JSON) and a signing secret. Header names are matched in any case; a
/// header given as a list counts by its first value.
#[napi(js_name = "verifySignatureNative")]
pub fn verify_signature(
    secret: String,
    headers: Headers,
    raw_body: Either<String, Buffer>,
    tolerance_seconds: Option<i64>,
    now_seconds: Option<i64>,
) -> bool {
    let (Some(signature), Some(timestamp)) = (
        header(&headers, SIGNATURE_HEADER),
        header(&headers, TIMESTAMP_HEADER),
    ) else {
        return false;
    };
    verify_within(
        &signature,
        &timestamp,
        bytes(&raw_body),
        &secret,
        now_or_clock(now_seconds),
        tolerance_seconds.unwrap_or(chronos::signature::REPLAY_WINDOW_SECONDS),
    )
}

/// Request headers as lib/index.js passes them: names in any case, a value
/// or a list of values.
pub type Headers = HashMap<String, Either<String, Vec<String>>>;

/// The header `name`, matched in any case; a list counts by its first value.
pub fn header(headers: &Headers, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| match v {
            Either::A(s) => Some(s.clone()),
            Either::B(list) => list.first().cloned(),
        })
}

/// A raw body given as a string or a Buffer.
pub fn bytes(raw_body: &Either<String, Buffer>) -> &[u8] {
    match raw_body {
        Either::A(s) => s.as_bytes(),
        Either::B(b) => b.as_ref(),
    }
}

/// `now` as given (tests, vectors), else this machine's clock: unix seconds.
pub fn now_or_clock(now_seconds: Option<i64>) -> i64 {
    now_seconds.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}
