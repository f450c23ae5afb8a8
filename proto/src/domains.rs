//! Domains an organization proves it owns (seed 004): where its plan
//! requires it, push targets on other domains take ten jobs a day each.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v1/domains` and `POST /v1/domains/verify`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    /// A host name (`api.example.com`), or a URL, normalized to its host.
    /// Not an IP address or a single label; a public suffix (`co.uk`) is
    /// refused after (422).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            min_length = 1,
            max_length = 2048,
            pattern = r"^\s*([A-Za-z][A-Za-z0-9+.-]*://)?([^\s/:?#@\[\]]+\.)+[^\s/:?#@\[\].]*[A-Za-z][^\s/:?#@\[\].]*\.?(:[0-9]{1,5})?([/?#]\S*)?\s*$",
            example = "api.example.com",
            extensions(("x-messages" = json!({
                "minLength": "domain is required",
                "maxLength": "Invalid domain",
                "pattern": "Invalid domain"
            })))
        )
    )]
    pub domain: Option<String>,
}

/// Where a domain's proof stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    /// Asked for, never proven.
    Pending,
    /// Proven; checked again daily.
    Verified,
    /// Was verified, then failed its daily checks for a week: verify it
    /// again.
    Lapsed,
}

/// A file to serve over HTTPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WellKnownChallenge {
    /// `https://{domain}/.well-known/chronos-verification.txt`
    pub url: String,
    /// The file's whole content (surrounding whitespace is ignored).
    pub content: String,
}

/// A DNS record to publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DnsTxtChallenge {
    /// `_chronos-verification.{domain}`
    pub name: String,
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub record_type: String,
    pub value: String,
}

/// The two ways to prove a domain: either will do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainVerification {
    pub well_known: WellKnownChallenge,
    pub dns_txt: DnsTxtChallenge,
}

/// A domain of the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Domain {
    pub id: Uuid,
    /// The host name. Verifying a registrable domain (`example.com`)
    /// covers its subdomains.
    pub domain: String,
    pub status: DomainStatus,
    pub verification: DomainVerification,
    /// The challenge the last passing check found: `well_known` or
    /// `dns_txt`.
    pub method: Option<String>,
    pub verified_at: Option<Timestamp>,
    /// The last check, by `POST /v1/domains/verify` or the daily one.
    pub checked_at: Option<Timestamp>,
    /// Why the last check failed, if it did.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}
