//! Accounts: organizations and what they own to act and to sign — API keys
//! ([`keys`]) and push signing secrets ([`signing_secrets`]) — and the
//! people in them ([`people`]) with their [`roles`]. Every query the store
//! answers about an organization's rows takes its [`OrgId`].

pub mod domains;
pub mod keys;
pub mod mail;
pub mod passwords;
pub mod people;
pub mod plans;
pub mod roles;
pub mod signing_secrets;

use chronos_proto::Timestamp;
use std::time::Duration;
use uuid::Uuid;

/// A key's or a session's last use is written at most this often: a busy
/// worker's requests must not each write a row.
pub const USE_RECORDED_EVERY: Duration = Duration::from_secs(60);

/// An organization's id. Every query about jobs, keys and the rest takes one,
/// so a key can only ever reach its own organization's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrgId(pub Uuid);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
    /// The name of its plan ([`plans`]).
    pub plan: String,
}

impl Organization {
    /// As the API shows it; `role` is the caller's, when a person.
    pub fn to_wire(&self, role: Option<chronos_proto::Role>) -> chronos_proto::Organization {
        chronos_proto::Organization {
            id: self.id.0,
            slug: self.slug.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            plan: self.plan.clone(),
            role,
        }
    }
}
