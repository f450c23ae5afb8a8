//! Signing secrets.

use super::{NOW, SqliteStore, modifier, opt_ts, ts, uuid};
use crate::account::OrgId;
use crate::account::signing_secrets::SigningSecretRecord;
use crate::store::signing_secrets::SIGNING_SECRET_COLUMNS;
use crate::store::{Clock, Result, SigningSecretStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use std::time::Duration;
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
            insert: clock.sqlite(format!(
                "INSERT INTO signing_secrets (id, organization_id, name, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, {NOW}) RETURNING {SIGNING_SECRET_COLUMNS}"
            )),
            get: format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = ?1 AND id = ?2"
            ),
            list: format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = ?1 ORDER BY id DESC"
            ),
            rotate: clock.sqlite(format!(
                "UPDATE signing_secrets
                 SET previous_secret = secret,
                     previous_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4),
                     secret = ?3, rotated_at = {NOW}
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {SIGNING_SECRET_COLUMNS}"
            )),
        }
    }
}

fn signing_secret_from_row(row: &Row) -> Result<SigningSecretRecord> {
    Ok(SigningSecretRecord {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        secret: row.get("secret")?,
        previous_secret: row.get("previous_secret")?,
        previous_expires_at: opt_ts(row.get("previous_expires_at")?)?,
        created_at: ts(row.get("created_at")?)?,
        rotated_at: opt_ts(row.get("rotated_at")?)?,
    })
}

#[async_trait]
impl SigningSecretStore for SqliteStore {
    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord> {
        let (name, secret) = (name.to_string(), secret.to_string());
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.signing_secrets.insert)?
                .query_row(
                    params![id.to_string(), org.0.to_string(), name, secret],
                    |row| Ok(signing_secret_from_row(row)),
                )?
        })
        .await
    }

    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>> {
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.signing_secrets.get)?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(signing_secret_from_row(row))
                })
                .optional()?
                .transpose()
        })
        .await
    }

    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.signing_secrets.list)?;
            let rows = stmt.query_map(params![org.0.to_string()], |row| {
                Ok(signing_secret_from_row(row))
            })?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>> {
        let secret = secret.to_string();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.signing_secrets.rotate)?
                .query_row(
                    params![org.0.to_string(), id.to_string(), secret, modifier(window)],
                    |row| Ok(signing_secret_from_row(row)),
                )
                .optional()?
                .transpose()
        })
        .await
    }
}
