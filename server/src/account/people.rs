//! People: users, their memberships of organizations, their sessions, and
//! the invites that bring them in. Session and invite tokens are 32 random
//! bytes handed out once; the store keeps only their SHA-256, so a copy of
//! the database opens no session and accepts no invite.

use super::{OrgId, Organization};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chronos_proto::{InviteStatus, Role, Timestamp};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// How long a session lives unused, and at most.
pub const SESSION_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an invite may be accepted.
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub created_at: Timestamp,
}

impl UserRecord {
    pub fn to_wire(&self) -> chronos_proto::User {
        chronos_proto::User {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
}

/// A member of an organization, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub joined_at: Timestamp,
}

impl MemberRecord {
    pub fn to_wire(&self) -> chronos_proto::Membership {
        chronos_proto::Membership {
            user_id: self.user_id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            joined_at: self.joined_at,
        }
    }
}

/// What changing or removing a member did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done(Option<MemberRecord>),
    NotFound,
    /// It would leave the organization without an owner.
    LastOwner,
}

/// An organization a person belongs to, with their role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Belonging {
    pub organization: Organization,
    pub role: Role,
}

impl Belonging {
    /// The organization as the API shows it to this person.
    pub fn to_wire(&self) -> chronos_proto::Organization {
        self.organization.to_wire(Some(self.role))
    }
}

/// A live session, as a request finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_sha256: Vec<u8>,
    pub user: UserRecord,
    pub csrf_token: String,
    pub expires_at: Timestamp,
    /// Its last use is older than [`super::USE_RECORDED_EVERY`]: write it.
    pub stale: bool,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_sha256: Vec<u8>,
    pub user_id: Uuid,
    pub csrf_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    pub id: Uuid,
    pub organization_id: OrgId,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<Uuid>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl InviteRecord {
    pub fn status(&self, now: Timestamp) -> InviteStatus {
        if self.accepted_at.is_some() {
            InviteStatus::Accepted
        } else if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.expires_at <= now {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        }
    }

    pub fn to_wire(&self, now: Timestamp) -> chronos_proto::Invite {
        chronos_proto::Invite {
            id: self.id,
            email: self.email.clone(),
            role: self.role,
            status: self.status(now),
            created_at: self.created_at,
            expires_at: self.expires_at,
            accepted_at: self.accepted_at,
            revoked_at: self.revoked_at,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewInvite {
    pub id: Uuid,
    pub organization_id: OrgId,
    pub email: String,
    pub role: Role,
    pub token_sha256: Vec<u8>,
    pub invited_by: Option<Uuid>,
}

/// Who accepts an invite: a person new to this server, or one it knows.
#[derive(Clone, Debug)]
pub enum Acceptor {
    New(NewUser),
    Existing(Uuid),
}

/// What accepting an invite did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    Joined {
        user: UserRecord,
        organization: Box<Organization>,
        role: Role,
    },
    /// No pending invite has this token (unknown, used, revoked, expired).
    Invalid,
    /// A new account was asked for an e-mail that has one.
    EmailTaken,
}

/// How an e-mail address is compared: trimmed and lowercased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible e-mail address: one `@`, something on each side, a dot in
/// the domain, no white space or control characters. Deliverability is the
/// mail server's to tell.
pub fn valid_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A secret token: 32 random bytes, URL-safe base64, and its SHA-256.
pub struct Token {
    pub text: String,
    pub sha256: Vec<u8>,
}

impl Token {
    pub fn generate() -> Self {
        let text = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        Token {
            sha256: Self::hash(&text),
            text,
        }
    }

    /// The SHA-256 a presented token is looked up by.
    pub fn hash(text: &str) -> Vec<u8> {
        Sha256::digest(text.as_bytes()).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(valid_email("dev@example.com"));
        assert!(valid_email(" Dev@Example.com "));
        assert_eq!(email_key(" Dev@Example.COM "), "dev@example.com");
        for bad in [
            "dev",
            "dev@",
            "@example.com",
            "dev@example",
            "a b@example.com",
            "dev@.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_hash_to_what_is_stored() {
        let t = Token::generate();
        assert_eq!(t.text.len(), 43);
        assert_eq!(Token::hash(&t.text), t.sha256);
    }
}
