//! Organizations and API keys.

use super::queues::insert_default_queue;
use super::{NOW, SqliteStore, corrupt, opt_ts, to_json, ts, uuid};
use crate::account::keys::{ApiKeyRecord, NewApiKey};
use crate::account::{OrgId, Organization};
use crate::store::accounts::API_KEY_COLUMNS;
use crate::store::{AccountStore, Clock, Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Scope;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

pub(super) struct Sql {
    pub(super) insert_organization: String,
    organization_by_slug: String,
    insert_key: String,
    key: String,
    list_keys: String,
    revoke_key: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            insert_organization: clock.sqlite(format!(
                "INSERT INTO organizations (id, slug, name, created_at) \
                 VALUES (?1, ?2, ?3, {NOW}) RETURNING id, slug, name, created_at"
            )),
            organization_by_slug:
                "SELECT id, slug, name, created_at FROM organizations WHERE slug = ?1".into(),
            insert_key: clock.sqlite(format!(
                "INSERT INTO api_keys (id, organization_id, name, secret_sha256, scopes, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, {NOW}) RETURNING {API_KEY_COLUMNS}"
            )),
            key: format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
            // Oldest first. `rowid` (insertion order) breaks ties: the
            // clock's millisecond often holds two keys, and ids are random.
            list_keys: format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE organization_id = ?1 \
                 ORDER BY created_at, rowid"
            ),
            revoke_key: clock.sqlite(format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, {NOW}) \
                 WHERE organization_id = ?1 AND id = ?2 RETURNING {API_KEY_COLUMNS}"
            )),
        }
    }
}

pub(super) fn org_from_row(row: &Row) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(uuid(row.get("id")?)?),
        slug: row.get("slug")?,
        name: row.get("name")?,
        created_at: ts(row.get("created_at")?)?,
    })
}

fn api_key_from_row(row: &Row) -> Result<ApiKeyRecord> {
    let scopes: Vec<String> =
        serde_json::from_str(&row.get::<_, String>("scopes")?).map_err(|e| corrupt("scopes", e))?;
    Ok(ApiKeyRecord {
        id: row.get("id")?,
        organization_id: OrgId(uuid(row.get("organization_id")?)?),
        name: row.get("name")?,
        secret_sha256: row.get("secret_sha256")?,
        scopes: scopes
            .iter()
            .map(|s| s.parse::<Scope>().map_err(StoreError::Corrupt))
            .collect::<Result<_>>()?,
        created_at: ts(row.get("created_at")?)?,
        revoked_at: opt_ts(row.get("revoked_at")?)?,
    })
}

pub(super) fn insert_key(conn: &Connection, sql: &Sql, key: &NewApiKey) -> Result<ApiKeyRecord> {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    conn.query_row(
        &sql.insert_key,
        params![
            key.id,
            key.organization_id.0.to_string(),
            key.name,
            key.secret_sha256,
            to_json(&scopes)
        ],
        |row| Ok(api_key_from_row(row)),
    )?
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization> {
        let (slug, name) = (slug.to_string(), name.to_string());
        self.call(move |conn, sql| {
            let tx = conn.transaction()?;
            let org = tx.query_row(
                &sql.accounts.insert_organization,
                params![Uuid::now_v7().to_string(), slug, name],
                |row| Ok(org_from_row(row)),
            )??;
            insert_default_queue(&tx, &sql.queues, org.id.0)?;
            tx.commit()?;
            Ok(org)
        })
        .await
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let slug = slug.to_string();
        self.call(move |conn, sql| {
            conn.query_row(&sql.accounts.organization_by_slug, params![slug], |row| {
                Ok(org_from_row(row))
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord> {
        self.call(move |conn, sql| insert_key(conn, &sql.accounts, &key))
            .await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.accounts.key)?
                .query_row(params![id], |row| Ok(api_key_from_row(row)))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare(&sql.accounts.list_keys)?;
            let rows =
                stmt.query_map(params![org.0.to_string()], |row| Ok(api_key_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.accounts.revoke_key,
                params![org.0.to_string(), id],
                |row| Ok(api_key_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }
}
