//! Organizations, the people in them and their roles, invites, and
//! sessions (seed 003's organizations, keys and invites; the dashboard's
//! sign-in).

use crate::{CreatedApiKey, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a person may do in an organization. Each role is a set of scopes,
/// so one check serves keys and people: `viewer` reads (`jobs:read`, never
/// a secret); `member` also writes jobs and monitors; `admin` holds
/// `admin` (keys, secrets, queues, groups, members below owner); `owner`
/// may do everything, deleting the organization and making owners included.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    #[default]
    Member,
    Admin,
    Owner,
}

words!(Role { Viewer = "viewer", Member = "member", Admin = "admin", Owner = "owner" });

/// The pattern of an organization's slug.
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9-]{1,62}$";

/// `POST /v1/orgs` (and seed 003's `POST /api/orgs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::label))]
    pub name: String,
    /// 2 to 63 characters: lowercase letters, digits and hyphens, not
    /// starting with a hyphen. Names the organization in URLs.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[a-z0-9][a-z0-9-]{1,62}$", example = "mon-org")
    )]
    pub slug: String,
}

/// `PATCH /v1/orgs/{slug}`: what is given changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::label_or_null))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9-]{1,62}$", nullable = false))]
    pub slug: Option<String>,
    /// The plan to put it on: the instance administrator's alone to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9-]{1,62}$", nullable = false))]
    pub plan: Option<String>,
}

/// An organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Its plan: what it may use (`unlimited` until the operator gives it
    /// another).
    #[serde(default)]
    pub plan: String,
    /// The caller's role in it, when the caller is a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// The answer to creating an organization: it, and its first admin API
/// key, shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedOrganization {
    #[serde(flatten)]
    pub organization: Organization,
    pub api_key: CreatedApiKey,
}

/// A person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
}

/// `POST /v1/auth/login`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 254))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// A signed-in person's session: who they are, their organizations, and
/// the token their writes carry in `X-CSRF-Token`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub user: User,
    pub organizations: Vec<Organization>,
    pub csrf_token: String,
    /// When the session ends at the latest, used or not.
    pub expires_at: Timestamp,
}

/// `POST /v1/auth/password`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// At least 10 characters, not a common password.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub new_password: String,
}

/// `POST /v1/orgs/{slug}/invites` (and seed 003's `POST /api/orgs/{slug}/invite`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 254, example = "dev@example.com")
    )]
    pub email: String,
    /// `member` unless given; only an owner invites owners.
    #[serde(default)]
    pub role: Role,
}

/// Where an invite stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invite to an organization. Its token is never shown again after the
/// answer that created (or resent) it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub status: InviteStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The answer to creating or resending an invite: the single-use link to
/// hand over (`{public-url}/invite#<token>`), and whether it was e-mailed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    pub url: String,
    /// The token the link carries, for `POST /v1/invites/accept`.
    pub token: String,
    pub mailed: bool,
}

/// `POST /v1/invites/accept`: a new person gives a password (and a name);
/// a person who has an account gives theirs, or is signed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::label_or_null))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 1024, nullable = false))]
    pub password: Option<String>,
}

/// The answer to accepting an invite; a session cookie comes with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteAccepted {
    pub user: User,
    pub organization: Organization,
    pub csrf_token: String,
}

/// A person's membership of an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// `PATCH /v1/orgs/{slug}/members/{user_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMembership {
    pub role: Role,
}
