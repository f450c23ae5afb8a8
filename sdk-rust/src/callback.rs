//! Receiving callbacks: the outcome of a delivery (or of a whole fan-out)
//! that Chronos publishes onto a message's `callback_queue_id`, and that
//! the callback queue delivers to your endpoint as a JSON body.
//!
//! A callback queue with a signing secret signs each callback like any push
//! request ([`signature`](crate::signature)); [`parse`] checks that
//! signature with the secret's value, then reads the body as a [`Callback`]:
//! one delivery's [`CallbackEvent`], or a fan-out's [`GroupCallbackEvent`].
//! Fields this version does not know are ignored, so a newer server may
//! add some. [`parse_unsigned`] reads the body of a queue without a secret.
//!
//! ```no_run
//! use chronos::callback::{self, Callback};
//!
//! fn on_callback(headers: &http::HeaderMap, body: &[u8], secret: &str) -> u16 {
//!     match callback::parse(headers, body, &[secret]) {
//!         Ok(Callback::Delivery(event)) => println!("{} {:?}", event.message_id, event.status),
//!         Ok(Callback::Group(group)) => println!("{} {:?}", group.fan_out_id, group.status),
//!         // Not from Chronos (or a replay): act on nothing.
//!         Err(e) if e.code_or_kind() == "invalid_signature" => return 401,
//!         Err(_) => return 400,
//!     }
//!     200
//! }
//! # mod http { pub use reqwest::header::HeaderMap; }
//! ```

use crate::error::{Error, snippet};
use chronos_proto::signature::{
    REPLAY_WINDOW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_within,
};
pub use chronos_proto::{
    Callback, CallbackEvent, CallbackStatus, FanOutResult, FanOutStatus, GroupCallbackEvent,
};
use reqwest::header::HeaderMap;

/// Verifies a callback request, then reads its body. `headers` are the
/// request's (an `http::HeaderMap`, as axum, hyper and reqwest have them);
/// `body` the raw bytes received, before any JSON parsing; `secrets` the
/// values of the callback queue's signing secret (any one may match). The
/// timestamp must be within five minutes of this machine's clock.
///
/// Fails with [`Error::InvalidSignature`] unless one of the secrets signed
/// this body recently, then with [`Error::InvalidCallback`] if the body is
/// not a callback; with [`Error::InvalidArgument`] for no secret at all.
pub fn parse(headers: &HeaderMap, body: &[u8], secrets: &[&str]) -> Result<Callback, Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    parse_signed(
        header(SIGNATURE_HEADER),
        header(TIMESTAMP_HEADER),
        body,
        secrets,
        unix_now(),
        REPLAY_WINDOW_SECONDS,
    )
}

/// [`parse`] from the header values themselves (`Chronos-Signature` and
/// `Chronos-Timestamp`; `None` for one the request lacks), for receivers
/// whose headers are not an `http::HeaderMap` and for the bindings: the
/// timestamp must be within `tolerance_seconds` of `now` (unix seconds).
pub fn parse_signed(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_seconds: i64,
) -> Result<Callback, Error> {
    verify(signature, timestamp, body, secrets, now, tolerance_seconds)?;
    parse_unsigned(body)
}

/// Reads a callback's body without checking where it came from: only for
/// a callback queue that has no signing secret.
pub fn parse_unsigned(body: &[u8]) -> Result<Callback, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::InvalidCallback(format!("{e}, in {}", snippet(body))))
}

fn verify(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), Error> {
    if secrets.is_empty() {
        return Err(Error::invalid_argument(
            "secrets",
            "no signing secret to verify with (parse_unsigned reads a callback queue without one)",
        ));
    }
    let refused = |why: String| Err(Error::InvalidSignature(why));
    let Some(signature) = signature else {
        return refused(format!("the request has no {SIGNATURE_HEADER} header"));
    };
    let Some(timestamp) = timestamp else {
        return refused(format!("the request has no {TIMESTAMP_HEADER} header"));
    };
    if secrets
        .iter()
        .any(|secret| verify_within(signature, timestamp, body, secret, now, tolerance_seconds))
    {
        return Ok(());
    }
    // Which check failed, for the receiver's logs: the signature's own
    // check only says whether all passed.
    refused(match timestamp.trim().parse::<i64>() {
        Err(_) => format!("{TIMESTAMP_HEADER} {timestamp:?} is not unix seconds"),
        Ok(sent) if (now - sent).abs() > tolerance_seconds => format!(
            "{TIMESTAMP_HEADER} is {} s from this clock, beyond {tolerance_seconds} s: a replay, or a clock that is off",
            now - sent
        ),
        Ok(_) => "no v1= signature matches the body with the secrets given".into(),
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronos_proto::signature::signature;
    use reqwest::header::HeaderValue;

    const BODY: &[u8] = br#"{"fan_out_id":"01a20b10-0000-7000-8000-000000000010","status":"all_succeeded","results":[]}"#;

    fn signed(secret: &str, at: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let sig = signature(&[secret], at, BODY);
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&sig).unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from(at));
        headers
    }

    #[test]
    fn a_signed_callback_is_read_with_any_of_the_secrets() {
        let headers = signed("whsec_b", unix_now());
        let read = parse(&headers, BODY, &["whsec_a", "whsec_b"]).unwrap();
        let Callback::Group(group) = read else {
            panic!("{read:?}")
        };
        assert_eq!(group.status, FanOutStatus::AllSucceeded);
        assert_eq!(parse_unsigned(BODY).unwrap(), Callback::Group(group));
    }

    #[test]
    fn refusals_say_why() {
        let now = unix_now();
        let reason = |headers: &HeaderMap, secrets: &[&str]| match parse(headers, BODY, secrets) {
            Err(Error::InvalidSignature(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(reason(&HeaderMap::new(), &["whsec_a"]).contains("no Chronos-Signature"));
        let mut no_timestamp = signed("whsec_a", now);
        no_timestamp.remove(TIMESTAMP_HEADER);
        assert!(reason(&no_timestamp, &["whsec_a"]).contains("no Chronos-Timestamp"));
        assert!(reason(&signed("whsec_a", now - 301), &["whsec_a"]).contains("beyond 300 s"));
        assert!(reason(&signed("whsec_a", now), &["whsec_b"]).contains("no v1= signature"));
        let err = parse(&signed("whsec_a", now), BODY, &[]).unwrap_err();
        assert_eq!(err.code_or_kind(), "invalid_argument", "{err}");
        let err = parse_unsigned(b"<html>").unwrap_err();
        assert_eq!(err.code_or_kind(), "invalid_callback", "{err}");
        assert!(err.to_string().contains("<html>"), "{err}");
    }
}
