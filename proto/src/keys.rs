//! API keys and their scopes.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a key may do. `admin` may do everything; `jobs:write` includes
/// `jobs:read`; `worker` reaches only the worker endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "worker")]
    Worker,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Admin,
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::Worker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::Worker => "worker",
        }
    }

    /// Whether a key holding `self` may do what `needed` allows.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed
            || self == Scope::Admin
            || (self == Scope::JobsWrite && needed == Scope::JobsRead)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| {
                format!("unknown scope `{s}`; expected one of admin, jobs:read, jobs:write, worker")
            })
    }
}

/// `POST /v1/api-keys`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label for people: 1 to 255 characters, not blank, no control
    /// characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::label))]
    pub name: String,
    /// At least one.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub scopes: Vec<Scope>,
}

/// A key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// The public part of the key: `chrns_<id>_…`.
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// The answer to creating a key: the only time `key` is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full key. Store it now: the server keeps only a hash.
    pub key: String,
}
