//! People: users, memberships, sessions and invites ([`crate::account::people`]).

use super::Result;
use crate::account::OrgId;
use crate::account::people::{
    Accepted, Acceptor, Belonging, InviteRecord, MemberChange, MemberRecord, NewInvite, NewSession,
    NewUser, SessionRecord, UserRecord,
};
use async_trait::async_trait;
use chronos_proto::Role;
use std::time::Duration;
use uuid::Uuid;

/// The columns both stores select for a user (prefixed `u.`).
pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.name, u.password_hash, u.created_at";

/// The columns both stores select for an invite.
pub(crate) const INVITE_COLUMNS: &str = "id, organization_id, email, role, invited_by, \
     created_at, expires_at, accepted_at, revoked_at";

#[async_trait]
pub trait PeopleStore: Send + Sync + 'static {
    /// `None` if the e-mail has an account already.
    async fn create_user(&self, user: NewUser) -> Result<Option<UserRecord>>;
    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>>;
    /// By [`crate::account::people::email_key`].
    async fn user_by_email(&self, email_key: &str) -> Result<Option<UserRecord>>;
    /// Sets a new password and ends every other session of the person.
    async fn set_password(&self, user: Uuid, hash: &str, keep_session: &[u8]) -> Result<()>;

    /// Adds a member, or raises their role to `role` if it is higher (never
    /// lowers it).
    async fn add_membership(&self, org: OrgId, user: Uuid, role: Role) -> Result<()>;
    async fn membership(&self, org: OrgId, user: Uuid) -> Result<Option<Role>>;
    /// The organizations a person belongs to, by slug.
    async fn belongings(&self, user: Uuid) -> Result<Vec<Belonging>>;
    /// Oldest first.
    async fn memberships(&self, org: OrgId) -> Result<Vec<MemberRecord>>;
    async fn has_owner(&self, org: OrgId) -> Result<bool>;
    /// Changes a member's role; refused if it would leave no owner.
    async fn set_membership_role(&self, org: OrgId, user: Uuid, role: Role)
    -> Result<MemberChange>;
    /// Removes a member; refused if it would leave no owner.
    async fn remove_membership(&self, org: OrgId, user: Uuid) -> Result<MemberChange>;

    /// Starts a session that ends after [`crate::account::people::SESSION_ABSOLUTE`];
    /// ends the person's expired ones.
    async fn create_session(&self, session: NewSession) -> Result<SessionRecord>;
    /// A session that has neither expired nor been idle for `idle`.
    async fn session(&self, token_sha256: &[u8], idle: Duration) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, token_sha256: &[u8]) -> Result<()>;
    async fn delete_session(&self, token_sha256: &[u8]) -> Result<()>;

    async fn create_invite(&self, invite: NewInvite) -> Result<InviteRecord>;
    /// Newest first.
    async fn invites(&self, org: OrgId) -> Result<Vec<InviteRecord>>;
    async fn invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>>;
    /// Revokes a pending invite (idempotently); `None` if there is no such invite.
    async fn revoke_invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>>;
    /// A new token and a new expiry for an invite not accepted nor revoked;
    /// `None` otherwise.
    async fn renew_invite(
        &self,
        org: OrgId,
        id: Uuid,
        token_sha256: &[u8],
    ) -> Result<Option<InviteRecord>>;
    /// The pending invite with this token, if any.
    async fn pending_invite(&self, token_sha256: &[u8]) -> Result<Option<InviteRecord>>;
    /// In one transaction: the invite marked accepted (if still pending),
    /// the person created if new, and made a member.
    async fn accept_invite(&self, token_sha256: &[u8], who: Acceptor) -> Result<Accepted>;
}
