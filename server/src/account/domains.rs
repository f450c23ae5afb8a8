//! Domains an organization proves it owns, so its push jobs may call them
//! on plans that ask for it: what a domain is ([`normalize`]), which
//! verified domain covers which host ([`covers`]), what an unverified host
//! is counted under ([`limit_key`]), and the challenge the owner publishes
//! ([`Challenge`]). Pure functions; the network check is push delivery's
//! verifier.
//!
//! Registrable domains (eTLD+1) come from the public suffix list compiled
//! into the `psl` crate, private suffixes included: `alice.github.io` is
//! registrable, `github.io` is not a domain anyone can prove they own.

use std::net::IpAddr;
use url::{Host, Url};

/// Why a domain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("domain is required")]
    Required,
    #[error("Invalid domain")]
    Invalid,
}

/// The longest name DNS carries, without the trailing dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// The domain `input` names, as stored and compared: lowercase ASCII
/// (IDNs as punycode), no trailing dot, no port or path. Takes a bare host
/// (`API.Example.com.`) or an http(s) URL (`https://api.example.com:8443/x`).
pub fn normalize(input: &str) -> Result<String, DomainError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(DomainError::Required);
    }
    // A bare host is read as a URL's host, so both take the same IDNA
    // mapping and lowercasing, and a port or path typed after it drops off.
    let url = if input.contains("://") {
        Url::parse(input)
    } else {
        Url::parse(&format!("https://{input}"))
    }
    .map_err(|_| DomainError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(DomainError::Invalid);
    }
    let name = match url.host() {
        Some(Host::Domain(name)) => name,
        // IP literals (the url crate reads `0x7f.1` and the like as IPv4).
        _ => return Err(DomainError::Invalid),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > MAX_NAME || !name.split('.').all(valid_label) {
        return Err(DomainError::Invalid);
    }
    // One label (`localhost`) or a public suffix (`com`, `co.uk`) is no
    // one's to prove: only names with a registrable domain are.
    if registrable(name).is_none() {
        return Err(DomainError::Invalid);
    }
    Ok(name.to_string())
}

/// A DNS label as host names may have it (letters, digits, inner hyphens).
fn valid_label(label: &str) -> bool {
    (1..=MAX_LABEL).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The registrable domain (eTLD+1) of `host`: `example.co.uk` for
/// `a.b.example.co.uk`. `None` for an IP address or a public suffix itself.
pub fn registrable(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || is_ip(&host) {
        return None;
    }
    psl::domain_str(&host).map(str::to_string)
}

fn is_ip(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

/// The jobs a day a push target on an unverified domain takes, where the
/// organization's plan requires verification (seed 004).
pub const UNVERIFIED_PER_DAY: u64 = 10;

/// What a push target's `host` (or `host:port`) is counted under for the
/// daily limit, if none of the organization's `verified` domains covers it.
pub fn unverified_key(verified: &[String], host: &str) -> Option<String> {
    let host = without_port(host);
    match verified.iter().any(|v| covers(v, host)) {
        true => None,
        false => Some(limit_key(host)),
    }
}

/// The host of a push target's `host:port` (as jobs keep it, for the
/// per-host slots); a bare host as it is.
pub fn without_port(target: &str) -> &str {
    match target.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => target,
    }
}

/// What an unverified host is counted under for the daily limit: its
/// registrable domain, so a customer cannot reach past the limit by
/// inventing subdomains; an IP address counts as itself.
pub fn limit_key(host: &str) -> String {
    registrable(host).unwrap_or_else(|| host.to_ascii_lowercase())
}

/// Whether verifying `verified` lets jobs call `host` (both normalized).
/// A registrable domain covers every name under it; a subdomain only
/// itself, since owning `api.example.com` says nothing of its siblings.
pub fn covers(verified: &str, host: &str) -> bool {
    if host == verified {
        return true;
    }
    registrable(verified).as_deref() == Some(verified)
        && host
            .strip_suffix(verified)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The file name served under `/.well-known/`.
const WELL_KNOWN_FILE: &str = "chronos-verification.txt";
/// The label the TXT record is published under.
const DNS_LABEL: &str = "_chronos-verification";

/// What the owner of `domain` publishes to prove it: the content at the
/// well-known URL, or the same as a TXT record at the DNS name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub domain: String,
    pub token: String,
}

impl Challenge {
    pub fn new(domain: impl Into<String>, token: impl Into<String>) -> Self {
        Challenge {
            domain: domain.into(),
            token: token.into(),
        }
    }

    pub fn well_known_url(&self) -> String {
        format!("https://{}/.well-known/{WELL_KNOWN_FILE}", self.domain)
    }

    /// The body of the well-known file, trimmed.
    pub fn content(&self) -> String {
        format!("chronos-verification={}", self.token)
    }

    pub fn dns_name(&self) -> String {
        format!("{DNS_LABEL}.{}", self.domain)
    }

    /// The TXT record's value: the same as the file's.
    pub fn dns_value(&self) -> String {
        self.content()
    }
}

/// A new challenge token: 32 random bytes, hex (DNS- and URL-safe as is).
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_port_is_not_its_host() {
        assert_eq!(without_port("api.example.com:443"), "api.example.com");
        assert_eq!(without_port("api.example.com"), "api.example.com");
        assert_eq!(without_port("[::1]:8443"), "[::1]");
        assert_eq!(without_port("::1"), "::1");
    }

    #[test]
    fn hosts_and_urls_normalize_to_the_host() {
        for (input, want) in [
            ("api.example.com", "api.example.com"),
            ("  API.Example.com.  ", "api.example.com"),
            ("https://api.example.com:8443/x?y", "api.example.com"),
            ("http://Example.com", "example.com"),
            ("example.com:8080/path", "example.com"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("https://BÜCHER.de/", "xn--bcher-kva.de"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
            ("a-b.example.co.uk", "a-b.example.co.uk"),
            ("alice.github.io", "alice.github.io"),
            ("example.test", "example.test"),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn empty_is_required() {
        for input in ["", "   ", "\t\n"] {
            assert_eq!(normalize(input), Err(DomainError::Required));
        }
        assert_eq!(DomainError::Required.to_string(), "domain is required");
        assert_eq!(DomainError::Invalid.to_string(), "Invalid domain");
    }

    #[test]
    fn non_domains_are_invalid() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        for input in [
            "127.0.0.1",
            "https://127.0.0.1/x",
            "0x7f.1",
            "[::1]",
            "::1",
            "https://[2001:db8::1]:443/",
            "localhost",
            "https://localhost:3000",
            "com",
            "co.uk",
            "github.io",
            "com.",
            "example..com",
            ".example.com",
            "example.com..",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "a b.example.com",
            "https://user@example.com",
            "https://user:pw@example.com/",
            "ftp://example.com",
            "mailto:a@example.com",
            "https://",
            &long_label,
            &long_name,
        ] {
            assert_eq!(normalize(input), Err(DomainError::Invalid), "{input}");
        }
        // The longest allowed: 63-character labels up to 253 characters.
        let label = "a".repeat(63);
        let max = format!("{label}.{label}.{label}.{}.com", "b".repeat(57));
        assert_eq!(max.len(), 253);
        assert_eq!(normalize(&max), Ok(max.clone()));
    }

    #[test]
    fn registrable_domains_follow_the_suffix_list() {
        for (host, want) in [
            ("example.com", Some("example.com")),
            ("a.b.example.com", Some("example.com")),
            ("www.example.co.uk", Some("example.co.uk")),
            ("alice.github.io", Some("alice.github.io")),
            ("x.alice.github.io", Some("alice.github.io")),
            ("Example.COM.", Some("example.com")),
            ("api.example.test", Some("example.test")),
            ("com", None),
            ("co.uk", None),
            ("github.io", None),
            ("127.0.0.1", None),
            ("::1", None),
            ("[::1]", None),
            ("", None),
        ] {
            assert_eq!(registrable(host).as_deref(), want, "{host}");
        }
    }

    #[test]
    fn limit_keys_are_registrable_domains_or_the_host() {
        assert_eq!(limit_key("a.b.example.com"), "example.com");
        assert_eq!(limit_key("example.co.uk"), "example.co.uk");
        assert_eq!(limit_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(limit_key("[2001:db8::1]"), "[2001:db8::1]");
    }

    #[test]
    fn a_registrable_domain_covers_its_subdomains_and_a_subdomain_only_itself() {
        assert!(covers("example.com", "example.com"));
        assert!(covers("example.com", "api.example.com"));
        assert!(covers("example.com", "a.b.example.com"));
        assert!(!covers("example.com", "badexample.com"));
        assert!(!covers("example.com", "example.com.evil.net"));
        assert!(covers("api.example.com", "api.example.com"));
        assert!(!covers("api.example.com", "v2.api.example.com"));
        assert!(!covers("api.example.com", "example.com"));
        assert!(!covers("api.example.com", "www.example.com"));
        assert!(covers("example.co.uk", "www.example.co.uk"));
        assert!(!covers("co.uk", "example.co.uk"));
    }

    #[test]
    fn the_challenge_names_its_url_record_and_content() {
        let c = Challenge::new("example.com", "abc123");
        assert_eq!(
            c.well_known_url(),
            "https://example.com/.well-known/chronos-verification.txt"
        );
        assert_eq!(c.content(), "chronos-verification=abc123");
        assert_eq!(c.dns_name(), "_chronos-verification.example.com");
        assert_eq!(c.dns_value(), c.content());
    }

    #[test]
    fn tokens_are_32_random_bytes_in_hex() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, new_token());
    }
}
