//! API keys and their scopes.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a key (or a person's role) may do in its organization. `admin` may
/// do everything there; `jobs:write` includes `jobs:read`; `worker`
/// reaches only the worker endpoints; `monitors:write` signals and manages
/// monitors. `instance:admin` is apart: it reaches no organization's data,
/// but may create organizations on a server whose signup is closed, and
/// manage any organization itself.
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
    #[serde(rename = "monitors:write")]
    MonitorsWrite,
    #[serde(rename = "instance:admin")]
    InstanceAdmin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Admin,
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::Worker,
        Scope::MonitorsWrite,
        Scope::InstanceAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::Worker => "worker",
            Scope::MonitorsWrite => "monitors:write",
            Scope::InstanceAdmin => "instance:admin",
        }
    }

    /// Whether a key holding `self` may do what `needed` allows.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed
            || (self == Scope::Admin && needed != Scope::InstanceAdmin)
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
                format!("unknown scope `{s}`; expected one of admin, jobs:read, jobs:write, worker, monitors:write, instance:admin")
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
    /// At least one; `["admin"]` unless given. `instance:admin` only from
    /// a key that holds it.
    #[serde(default = "admin_only")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, default = json!(["admin"])))]
    pub scopes: Vec<Scope>,
    /// When the key stops working; never unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, nullable = false))]
    pub expires_at: Option<Timestamp>,
    /// The only queues the key may use (jobs, messages, schedules and
    /// queue routes naming another are refused, and a worker leases only
    /// their jobs); every queue unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 100, nullable = false))]
    pub queues: Option<Vec<String>>,
}

fn admin_only() -> Vec<Scope> {
    vec![Scope::Admin]
}

impl CreateApiKey {
    /// A key named `name` as the server makes one from `{"name": …}`:
    /// `admin`, never expiring, every queue. Change the rest with struct
    /// update syntax:
    ///
    /// ```
    /// use chronos_proto::{CreateApiKey, Scope};
    ///
    /// let worker = CreateApiKey {
    ///     scopes: vec![Scope::Worker],
    ///     queues: Some(vec!["emails".into()]),
    ///     ..CreateApiKey::new("emails worker")
    /// };
    /// # let _ = worker;
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        CreateApiKey {
            name: name.into(),
            scopes: admin_only(),
            expires_at: None,
            queues: None,
        }
    }
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
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// When a request last used it (updated at most once a minute).
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    /// The only queues it may use; every queue when `null`.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `new` is what the server reads from a body holding only the name.
    #[test]
    fn a_new_key_has_the_servers_defaults() {
        let read: CreateApiKey = serde_json::from_str(r#"{"name":"ci"}"#).unwrap();
        assert_eq!(CreateApiKey::new("ci"), read);
        assert_eq!(
            serde_json::to_value(CreateApiKey::new("ci")).unwrap(),
            serde_json::json!({"name": "ci", "scopes": ["admin"]})
        );
    }
}
