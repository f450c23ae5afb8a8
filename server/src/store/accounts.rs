//! Organizations and their API keys.

use super::Result;
use async_trait::async_trait;

use crate::account::keys::{ApiKeyRecord, NewApiKey};
use crate::account::{OrgId, Organization};

/// The columns both stores select for a key.
pub(crate) const API_KEY_COLUMNS: &str =
    "id, organization_id, name, secret_sha256, scopes, created_at, revoked_at";

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization>;
    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>>;

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord>;
    /// Looks a key up by its public id, across organizations (authentication).
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Oldest first.
    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>>;
    /// Marks a key revoked (idempotently); `None` if the organization has no such key.
    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>>;
}
