//! Errors crossing into JavaScript. napi errors carry only a message, so a
//! Chronos error travels as a marker and its fields in JSON, which `lib/`
//! turns back into a `ChronosError` with `code`, `status` and `message`.

use serde_json::json;

/// What `lib/errors.js` looks for at the start of an error's message.
const MARKER: &str = "CHRONOS_ERROR:";

/// The Rust SDK's error as a napi error; its code is
/// [`chronos::Error::code_or_kind`].
pub fn from_sdk(e: chronos::Error) -> napi::Error {
    let fields = json!({
        "code": e.code_or_kind(),
        "status": e.status(),
        "message": e.to_string(),
        "field": e.field(),
    });
    napi::Error::from_reason(format!("{MARKER}{fields}"))
}

/// A value from JavaScript that is not what the call takes: a
/// `ChronosError` with code `invalid_argument`.
pub fn invalid(what: &str, e: impl std::fmt::Display) -> napi::Error {
    from_sdk(chronos::Error::invalid_argument(what, e))
}
