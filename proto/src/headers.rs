//! Sensitive request headers: what every answer shows in their place.
//!
//! A push target's headers often carry credentials. The server sends them
//! as stored, but no answer shows them: `Authorization`, `Cookie`,
//! `Proxy-Authorization`, `X-Api-Key`, and any header whose name contains
//! `token` or `secret` (in any case) read [`REDACTED`]. A `PATCH` or `PUT`
//! that sends [`REDACTED`] back as a header's value keeps the stored one, so
//! a client may send back what it read.

use std::collections::BTreeMap;

/// What an answer shows instead of a sensitive header's value.
pub const REDACTED: &str = "***redacted***";

/// Whether a header's value is hidden in answers.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "cookie" | "proxy-authorization" | "x-api-key"
    ) || name.contains("token")
        || name.contains("secret")
}

/// `headers` as an answer shows them.
pub fn redacted(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_sensitive(name) {
                REDACTED.to_string()
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Headers a client sent to replace `stored`, with each sensitive one it
/// sent back as [`REDACTED`] given its stored value again (matched by name
/// in any case). A redacted value with nothing stored under its name is
/// kept as sent: the caller refuses it.
pub fn restored(
    sent: BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    sent.into_iter()
        .map(|(name, value)| {
            if value == REDACTED && is_sensitive(&name) {
                let old = stored
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.clone());
                (name, old.unwrap_or(value))
            } else {
                (name, value)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn credentials_are_hidden_and_the_rest_shown() {
        for name in [
            "Authorization",
            "cookie",
            "PROXY-AUTHORIZATION",
            "X-Api-Key",
            "X-Auth-Token",
            "x-webhook-secret",
            "Secret",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["Content-Type", "X-Request-Id", "Accept", "X-Tenant"] {
            assert!(!is_sensitive(name), "{name}");
        }
        let shown = redacted(&map(&[
            ("Authorization", "Bearer s3cr3t"),
            ("X-Tenant", "a"),
        ]));
        assert_eq!(
            shown,
            map(&[("Authorization", REDACTED), ("X-Tenant", "a")])
        );
    }

    #[test]
    fn a_redacted_value_sent_back_keeps_the_stored_one() {
        let stored = map(&[("Authorization", "Bearer s3cr3t"), ("X-Tenant", "a")]);
        let sent = map(&[("authorization", REDACTED), ("X-Tenant", "b")]);
        assert_eq!(
            restored(sent, &stored),
            map(&[("authorization", "Bearer s3cr3t"), ("X-Tenant", "b")])
        );
        // Nothing stored under the name: kept as sent, for the caller to refuse.
        let sent = map(&[("X-Api-Key", REDACTED)]);
        assert_eq!(restored(sent.clone(), &stored), sent);
    }
}
