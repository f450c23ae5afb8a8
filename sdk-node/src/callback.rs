//! `parseCallback` and `parseUnsignedCallback`: a callback request (the
//! outcome of a delivery, or of a fan-out, delivered by a callback queue)
//! verified with the Rust SDK's `chronos::callback`, and its body read into
//! a plain object, without the fields this version does not know.

use crate::error::{from_sdk, invalid};
use crate::signature::{Headers, bytes, header, now_or_clock};
use chronos::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use napi::bindgen_prelude::{Buffer, Either, Result};
use napi_derive::napi;
use serde_json::Value;

/// Verifies the request's signature with any of `secrets`, within
/// `tolerance_seconds` (default 300) of `now_seconds` (default the clock),
/// then reads its raw body. Throws `invalid_signature`, then
/// `invalid_callback`.
#[napi(js_name = "parseCallbackNative")]
pub fn parse_callback(
    secrets: Vec<String>,
    headers: Headers,
    raw_body: Either<String, Buffer>,
    tolerance_seconds: Option<i64>,
    now_seconds: Option<i64>,
) -> Result<Value> {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let callback = chronos::callback::parse_signed(
        header(&headers, SIGNATURE_HEADER).as_deref(),
        header(&headers, TIMESTAMP_HEADER).as_deref(),
        bytes(&raw_body),
        &secrets,
        now_or_clock(now_seconds),
        tolerance_seconds.unwrap_or(chronos::signature::REPLAY_WINDOW_SECONDS),
    )
    .map_err(from_sdk)?;
    serde_json::to_value(callback).map_err(|e| invalid("callback", e))
}

/// Reads a callback's raw body without a signature check (a callback queue
/// without a signing secret). Throws `invalid_callback`.
#[napi(js_name = "parseUnsignedCallbackNative")]
pub fn parse_unsigned_callback(raw_body: Either<String, Buffer>) -> Result<Value> {
    let callback = chronos::callback::parse_unsigned(bytes(&raw_body)).map_err(from_sdk)?;
    serde_json::to_value(callback).map_err(|e| invalid("callback", e))
}
