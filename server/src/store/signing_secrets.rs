//! The secrets push requests are signed with.

use super::Result;
use crate::account::OrgId;
use async_trait::async_trait;
use std::time::Duration;
use uuid::Uuid;

use crate::account::signing_secrets::SigningSecretRecord;

/// The columns both stores select for a signing secret.
pub(crate) const SIGNING_SECRET_COLUMNS: &str =
    "id, name, secret, previous_secret, previous_expires_at, created_at, rotated_at";

#[async_trait]
pub trait SigningSecretStore: Send + Sync + 'static {
    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord>;
    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>>;
    /// Newest first.
    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>>;
    /// Replaces the value with `secret`; the old one keeps signing for
    /// `window` (by the store's clock). `None` if there is no such secret.
    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>>;
}
