//! API keys: `chrns_<id>_<secret>`.
//!
//! The id is public and indexes the key; the secret is 32 random bytes (hex),
//! of which the store keeps only a SHA-256. A secret that random needs no slow
//! password hash: one SHA-256 and a constant-time compare per request suffice.

use super::OrgId;
use chronos_proto::{Scope, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An API key as stored: the public id and a SHA-256 of the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub organization_id: OrgId,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// The only queues it may use; all when `None`.
    pub queues: Option<Vec<String>>,
}

impl ApiKeyRecord {
    /// The key as the API shows it: never the hash.
    pub fn to_wire(&self) -> chronos_proto::ApiKey {
        chronos_proto::ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            queues: self.queues.clone(),
        }
    }
}

/// Whether a key limited to the queues `limit` (`None`: not limited) may
/// use `queue`.
pub fn may_use_queue(limit: Option<&[String]>, queue: &str) -> bool {
    limit.is_none_or(|queues| queues.iter().any(|q| q == queue))
}

/// A key to insert.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: String,
    pub organization_id: OrgId,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    pub queues: Option<Vec<String>>,
}

pub const PREFIX: &str = "chrns_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A freshly generated key. `full` is shown once and never stored.
pub struct GeneratedKey {
    pub id: String,
    pub full: String,
    pub secret_sha256: Vec<u8>,
}

pub fn generate() -> GeneratedKey {
    let id = hex::encode(rand::random::<[u8; ID_BYTES]>());
    let secret = rand::random::<[u8; SECRET_BYTES]>();
    GeneratedKey {
        full: format!("{PREFIX}{id}_{}", hex::encode(secret)),
        secret_sha256: Sha256::digest(secret).to_vec(),
        id,
    }
}

/// A new key for `org`: the record to store, and the full key to show once.
pub fn new_api_key(org: OrgId, name: &str, scopes: Vec<Scope>) -> (NewApiKey, String) {
    let key = generate();
    let record = NewApiKey {
        id: key.id,
        organization_id: org,
        name: name.to_string(),
        secret_sha256: key.secret_sha256,
        scopes,
        expires_at: None,
        queues: None,
    };
    (record, key.full)
}

/// Why a presented key could not even be looked up.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error(
        "`{0}` is the placeholder from the documentation, not a key; use the admin key `chronos serve` printed on first start, or create one with `chronos keys create`"
    )]
    Placeholder(String),
    #[error("malformed API key: keys look like chrns_<16 hex digits>_<64 hex digits>")]
    Malformed,
}

/// A key's id as someone names it — alone (`89bce46914f16e46`), with the
/// prefix, or as the whole key — if it is one: 16 hex digits, lowercased.
pub fn key_id(given: &str) -> Option<String> {
    let rest = given.strip_prefix(PREFIX).unwrap_or(given);
    let id = rest.split('_').next().unwrap_or_default();
    (id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.to_ascii_lowercase())
}

/// A presented key, split into its id and secret.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: String,
    secret: [u8; SECRET_BYTES],
}

impl PresentedKey {
    pub fn parse(token: &str) -> Result<Self, KeyFormatError> {
        let parsed = token.strip_prefix(PREFIX).and_then(|rest| {
            let (id, secret) = rest.split_once('_')?;
            let mut buf = [0u8; SECRET_BYTES];
            hex::decode_to_slice(secret, &mut buf).ok()?;
            Some(PresentedKey {
                id: key_id(id)?,
                secret: buf,
            })
        });
        parsed.ok_or_else(|| {
            let lower = token.to_ascii_lowercase();
            if ["your", "api_key", "xxx", "...", "…", "<", "example"]
                .iter()
                .any(|p| lower.contains(p))
            {
                KeyFormatError::Placeholder(token.chars().take(40).collect())
            } else {
                KeyFormatError::Malformed
            }
        })
    }

    /// Does this key's secret hash to `stored`? Constant-time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        Sha256::digest(self.secret).as_slice().ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match() {
        let k = generate();
        let p = PresentedKey::parse(&k.full).unwrap();
        assert_eq!(p.id, k.id);
        assert!(p.matches(&k.secret_sha256));
        assert!(!p.matches(&generate().secret_sha256));
    }

    #[test]
    fn placeholders_and_garbage_are_told_apart() {
        assert!(matches!(
            PresentedKey::parse("chrns_your_api_key"),
            Err(KeyFormatError::Placeholder(_))
        ));
        assert_eq!(
            PresentedKey::parse("chrns_abc_def"),
            Err(KeyFormatError::Malformed)
        );
        assert_eq!(
            PresentedKey::parse("sk_live_1234"),
            Err(KeyFormatError::Malformed)
        );
    }
}
