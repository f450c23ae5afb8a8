//! Organizations and their API keys.

use super::Result;
use async_trait::async_trait;

use crate::account::keys::{ApiKeyRecord, NewApiKey};
use crate::account::{OrgId, Organization};
use uuid::Uuid;

/// The columns both stores select for a key.
pub(crate) const API_KEY_COLUMNS: &str = "id, organization_id, name, secret_sha256, scopes, \
     created_at, revoked_at, expires_at, last_used_at, queues";

/// An organization to create, with its first admin key and, if a person
/// created it, its owner — all in one transaction.
#[derive(Clone, Debug)]
pub struct NewOrganization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub admin_key: NewApiKey,
    pub owner: Option<Uuid>,
}

/// What renaming an organization did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrgUpdate {
    Updated(Organization),
    NotFound,
    SlugTaken,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization>;
    /// `None` if the slug is taken (nothing is created then).
    async fn create_organization_with(
        &self,
        org: NewOrganization,
    ) -> Result<Option<(Organization, ApiKeyRecord)>>;
    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>>;
    async fn organization(&self, id: OrgId) -> Result<Option<Organization>>;
    async fn update_organization(
        &self,
        id: OrgId,
        name: Option<&str>,
        slug: Option<&str>,
    ) -> Result<OrgUpdate>;
    /// Deletes the organization and everything it owns; `false` if it was
    /// already gone.
    async fn delete_organization(&self, id: OrgId) -> Result<bool>;

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord>;
    /// Looks a key up by its public id, across organizations (authentication).
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Oldest first.
    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>>;
    /// Marks a key revoked (idempotently); `None` if the organization has no such key.
    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Records that a request used the key now.
    async fn touch_api_key(&self, id: &str) -> Result<()>;
}
