//! The signature on push requests, shared by the server (which signs) and
//! the SDKs (which verify). A job that names a signing secret has every
//! request signed, so its receiver can tell the request came from Chronos
//! and was not replayed:
//!
//! - `Chronos-Timestamp`: unix seconds when the request was sent;
//! - `Chronos-Message-Id`: the same on every attempt of a job, to deduplicate;
//! - `Chronos-Signature`: `v1=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`,
//!   keyed with the secret's value as bytes. During a rotation's window the
//!   old value signs too: two `v1=` values, comma-separated.
//!
//! A receiver accepts a request whose timestamp is within five minutes of
//! its clock and one of whose `v1=` values matches, compared in constant
//! time ([`verify`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "Chronos-Signature";
pub const TIMESTAMP_HEADER: &str = "Chronos-Timestamp";
pub const MESSAGE_ID_HEADER: &str = "Chronos-Message-Id";
/// How far a timestamp may be from the receiver's clock.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

/// `v1=<hex>` for each secret value, comma-separated.
pub fn signature(values: &[&str], timestamp: i64, body: &[u8]) -> String {
    values
        .iter()
        .map(|value| format!("v1={}", hex::encode(mac(value, timestamp, body))))
        .collect::<Vec<_>>()
        .join(",")
}

fn mac(value: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(value.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Whether a request with these headers and this raw body was signed with
/// `value` within the replay window of `now` (unix seconds).
pub fn verify(signature: &str, timestamp: &str, body: &[u8], value: &str, now: i64) -> bool {
    verify_within(
        signature,
        timestamp,
        body,
        value,
        now,
        REPLAY_WINDOW_SECONDS,
    )
}

/// [`verify`] with another window: the timestamp may be at most
/// `tolerance` seconds from `now`.
pub fn verify_within(
    signature: &str,
    timestamp: &str,
    body: &[u8],
    value: &str,
    now: i64,
    tolerance: i64,
) -> bool {
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - sent).abs() > tolerance {
        return false;
    }
    signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h).ok())
        .any(|given| {
            // `verify_slice` compares in constant time.
            let mut check = Hmac::<Sha256>::new_from_slice(value.as_bytes())
                .expect("HMAC takes a key of any length");
            check.update(sent.to_string().as_bytes());
            check.update(b".");
            check.update(body);
            check.verify_slice(&given).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared vectors (`proto/vectors/signature.json`, computed with
    /// another HMAC implementation) verify as they say.
    #[test]
    fn vectors_verify() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../vectors/signature.json")).unwrap();
        assert_eq!(vectors["window_seconds"], REPLAY_WINDOW_SECONDS);
        for case in vectors["cases"].as_array().unwrap() {
            let text = |k: &str| case[k].as_str().unwrap();
            let valid = verify(
                text("signature"),
                text("timestamp"),
                text("body").as_bytes(),
                text("secret"),
                case["now"].as_i64().unwrap(),
            );
            assert_eq!(valid, case["valid"].as_bool().unwrap(), "{}", text("about"));
        }
    }

    #[test]
    fn signatures_verify_within_the_window_only() {
        let body = br#"{"handler":"h","payload":null}"#;
        let header = signature(&["whsec_a"], 1_700_000_000, body);
        assert!(header.starts_with("v1=") && header.len() == 3 + 64);
        assert!(verify(
            &header,
            "1700000000",
            body,
            "whsec_a",
            1_700_000_100
        ));
        assert!(!verify(
            &header,
            "1700000000",
            body,
            "whsec_b",
            1_700_000_100
        ));
        assert!(!verify(
            &header,
            "1700000000",
            b"{}",
            "whsec_a",
            1_700_000_100
        ));
        assert!(!verify(
            &header,
            "1700000000",
            body,
            "whsec_a",
            1_700_000_301
        ));
        assert!(!verify(
            &header,
            "1700000001",
            body,
            "whsec_a",
            1_700_000_100
        ));
    }

    #[test]
    fn a_rotation_signs_with_both_values() {
        let header = signature(&["new", "old"], 5, b"x");
        assert_eq!(header.matches("v1=").count(), 2);
        assert!(verify(&header, "5", b"x", "new", 5));
        assert!(verify(&header, "5", b"x", "old", 5));
    }
}
