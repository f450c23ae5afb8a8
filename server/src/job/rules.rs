//! The rules a handler name and a worker's reports (`fail`, `extend`) must
//! meet, checked alike over HTTP and WebSocket. A broken rule is an
//! [`Invalid`], which the API answers as 400 `validation_failed` and a
//! worker session as an `error` frame.

use super::state::Failure;
use std::time::Duration;

/// The longest a lease can be extended by at once.
pub const MAX_EXTEND_SECONDS: u32 = 24 * 3600;
/// The longest a worker can put off its job's next attempt.
pub const MAX_RETRY_IN_SECONDS: u32 = 30 * 86_400;
/// Longer error messages are cut to this many characters.
pub const MAX_ERROR_CHARS: usize = 10_000;

/// A value that breaks a rule: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A handler name: 1 to 255 characters, no commas (they separate handlers
/// in wake-up notifications), no white space or control characters.
pub fn validate_handler(field: &str, handler: &str) -> Result<(), Invalid> {
    if handler.is_empty()
        || handler.chars().count() > 255
        || handler
            .chars()
            .any(|c| c == ',' || c.is_whitespace() || c.is_control())
    {
        return Err(Invalid::new(
            field,
            format!("{field} must be 1 to 255 characters without commas or white space"),
        ));
    }
    Ok(())
}

/// What a worker's `ack` stores as the job's `result`: any JSON but one
/// holding U+0000 in a string or key, which PostgreSQL cannot store (both
/// stores refuse it alike; over HTTP the document states it).
pub fn result(result: &Option<serde_json::Value>) -> Result<(), Invalid> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    match result {
        Some(v) if has_nul(v) => Err(Invalid::new(
            "result",
            "result may not hold the character U+0000",
        )),
        _ => Ok(()),
    }
}

/// A worker's `fail`.
pub fn failure(
    error: Option<String>,
    retryable: Option<bool>,
    retry_in: Option<u32>,
) -> Result<Failure, Invalid> {
    if let Some(secs) = retry_in
        && secs > MAX_RETRY_IN_SECONDS
    {
        return Err(Invalid::new(
            "retry_in",
            format!("retry_in may be at most {MAX_RETRY_IN_SECONDS} seconds"),
        ));
    }
    // U+0000, which PostgreSQL cannot store, is shown as U+FFFD: a
    // failure is recorded whatever its message holds.
    let error = error
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.replace('\0', "\u{FFFD}"))
        .unwrap_or_else(|| "the worker reported a failure without a message".into());
    Ok(Failure {
        error: error.chars().take(MAX_ERROR_CHARS).collect(),
        retryable: retryable.unwrap_or(true),
        retry_in: retry_in.map(|s| Duration::from_secs(s.into())),
    })
}

/// A worker's `extend`.
pub fn extension(seconds: u32) -> Result<Duration, Invalid> {
    if !(1..=MAX_EXTEND_SECONDS).contains(&seconds) {
        return Err(Invalid::new(
            "seconds",
            format!("seconds must be between 1 and {MAX_EXTEND_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs(seconds.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_postgresql_cannot_store_is_refused_or_shown_replaced() {
        assert!(result(&Some(json!({"a": ["ok", 1, null]}))).is_ok());
        assert!(result(&None).is_ok());
        for bad in [
            json!("a\u{0}"),
            json!({"k\u{0}": 1}),
            json!([{"x": "\u{0}"}]),
        ] {
            assert_eq!(result(&Some(bad)).unwrap_err().field, "result");
        }
        let f = failure(Some("boom\u{0}".into()), None, None).unwrap();
        assert_eq!(f.error, "boom\u{FFFD}");
    }
}
