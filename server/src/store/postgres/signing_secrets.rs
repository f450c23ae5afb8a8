//! Signing secrets.

use super::{PgStore, opt_ts, ts};
use crate::account::OrgId;
use crate::account::signing_secrets::SigningSecretRecord;
use crate::store::signing_secrets::SIGNING_SECRET_COLUMNS;
use crate::store::{Clock, Result, SigningSecretStore};
use async_trait::async_trait;
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    rotate: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            insert: clock.pg(format!(
                "INSERT INTO signing_secrets (id, organization_id, name, secret, created_at)
                 VALUES ($1, $2, $3, $4, now()) RETURNING {SIGNING_SECRET_COLUMNS}"
            )),
            get: format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = $1 AND id = $2"
            ),
            list: format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = $1 ORDER BY id DESC"
            ),
            rotate: clock.pg(format!(
                "UPDATE signing_secrets
                 SET previous_secret = secret,
                     previous_expires_at = now() + make_interval(secs => $4),
                     secret = $3, rotated_at = now()
                 WHERE organization_id = $1 AND id = $2
                 RETURNING {SIGNING_SECRET_COLUMNS}"
            )),
        }
    }
}

fn signing_secret_from_row(row: &Row) -> Result<SigningSecretRecord> {
    Ok(SigningSecretRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_expires_at: opt_ts(row, "previous_expires_at")?,
        created_at: ts(row.try_get("created_at")?),
        rotated_at: opt_ts(row, "rotated_at")?,
    })
}

#[async_trait]
impl SigningSecretStore for PgStore {
    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.signing_secrets.insert,
                &[&id, &org.0, &name, &secret],
            )
            .await?;
        signing_secret_from_row(&row)
    }

    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.signing_secrets.get).await?;
        client
            .query_opt(&stmt, &[&org.0, &id])
            .await?
            .map(|r| signing_secret_from_row(&r))
            .transpose()
    }

    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.signing_secrets.list, &[&org.0])
            .await?
            .iter()
            .map(signing_secret_from_row)
            .collect()
    }

    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &self.sql.signing_secrets.rotate,
                &[&org.0, &id, &secret, &window.as_secs_f64()],
            )
            .await?
            .map(|r| signing_secret_from_row(&r))
            .transpose()
    }
}
