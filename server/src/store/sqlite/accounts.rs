//! Organizations and API keys.

use super::queues::insert_default_queue;
use super::{NOW, SqliteStore, corrupt, now_minus, opt_ts, to_json, ts, uuid};
use crate::account::keys::{ApiKeyRecord, NewApiKey};
use crate::account::{OrgId, Organization, USE_RECORDED_EVERY};
use crate::store::accounts::{API_KEY_COLUMNS, NewOrganization, OrgUpdate};
use crate::store::{AccountStore, Clock, Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Scope;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

pub(super) struct Sql {
    pub(super) insert_organization: String,
    organization_by_slug: String,
    pub(super) organization: String,
    update_organization: String,
    delete_organization: String,
    add_owner: String,
    touch_key: String,
    insert_key: String,
    key: String,
    list_keys: String,
    revoke_key: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            // No row when the slug is taken.
            insert_organization: clock.sqlite(format!(
                "INSERT INTO organizations (id, slug, name, created_at) \
                 VALUES (?1, ?2, ?3, {NOW}) ON CONFLICT (slug) DO NOTHING \
                 RETURNING id, slug, name, created_at, plan"
            )),
            organization_by_slug:
                "SELECT id, slug, name, created_at, plan FROM organizations WHERE slug = ?1".into(),
            organization: "SELECT id, slug, name, created_at, plan FROM organizations WHERE id = ?1"
                .into(),
            update_organization: "UPDATE organizations \
                 SET name = COALESCE(?2, name), slug = COALESCE(?3, slug) \
                 WHERE id = ?1 RETURNING id, slug, name, created_at, plan"
                .into(),
            delete_organization: "DELETE FROM organizations WHERE id = ?1".into(),
            add_owner: clock.sqlite(format!(
                "INSERT INTO memberships (organization_id, user_id, role, created_at) \
                 VALUES (?1, ?2, 'owner', {NOW})"
            )),
            // At most once a minute per key: a busy worker's requests must
            // not each write a row.
            touch_key: clock.sqlite(format!(
                "UPDATE api_keys SET last_used_at = {NOW} WHERE id = ?1 \
                 AND (last_used_at IS NULL \
                      OR last_used_at < {recent})",
                recent = now_minus(USE_RECORDED_EVERY),
            )),
            insert_key: clock.sqlite(format!(
                "INSERT INTO api_keys \
                 (id, organization_id, name, secret_sha256, scopes, created_at, expires_at, queues) \
                 VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, ?6, ?7) RETURNING {API_KEY_COLUMNS}"
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
        plan: row.get("plan")?,
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
        expires_at: opt_ts(row.get("expires_at")?)?,
        last_used_at: opt_ts(row.get("last_used_at")?)?,
        queues: row
            .get::<_, Option<String>>("queues")?
            .map(|q| serde_json::from_str(&q).map_err(|e| corrupt("queues", e)))
            .transpose()?,
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
            to_json(&scopes),
            key.expires_at.map(|t| t.to_string()),
            key.queues.as_ref().map(to_json),
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
            let org = tx
                .query_row(
                    &sql.accounts.insert_organization,
                    params![Uuid::now_v7().to_string(), slug, name],
                    |row| Ok(org_from_row(row)),
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::Other(format!("organization `{slug}` already exists"))
                })??;
            insert_default_queue(&tx, &sql.queues, org.id.0)?;
            tx.commit()?;
            Ok(org)
        })
        .await
    }

    async fn create_organization_with(
        &self,
        org: NewOrganization,
    ) -> Result<Option<(Organization, ApiKeyRecord)>> {
        self.call(move |conn, sql| {
            let tx = conn.transaction()?;
            let Some(created) = tx
                .query_row(
                    &sql.accounts.insert_organization,
                    params![org.id.0.to_string(), org.slug, org.name],
                    |row| Ok(org_from_row(row)),
                )
                .optional()?
                .transpose()?
            else {
                return Ok(None);
            };
            insert_default_queue(&tx, &sql.queues, created.id.0)?;
            let key = insert_key(&tx, &sql.accounts, &org.admin_key)?;
            if let Some(owner) = org.owner {
                tx.execute(
                    &sql.accounts.add_owner,
                    params![created.id.0.to_string(), owner.to_string()],
                )?;
            }
            tx.commit()?;
            Ok(Some((created, key)))
        })
        .await
    }

    async fn organization(&self, id: OrgId) -> Result<Option<Organization>> {
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.accounts.organization,
                params![id.0.to_string()],
                |row| Ok(org_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn update_organization(
        &self,
        id: OrgId,
        name: Option<&str>,
        slug: Option<&str>,
    ) -> Result<OrgUpdate> {
        let (name, slug) = (name.map(str::to_string), slug.map(str::to_string));
        self.call(move |conn, sql| {
            match conn
                .query_row(
                    &sql.accounts.update_organization,
                    params![id.0.to_string(), name, slug],
                    |row| Ok(org_from_row(row)),
                )
                .optional()
            {
                Ok(Some(org)) => Ok(OrgUpdate::Updated(org?)),
                Ok(None) => Ok(OrgUpdate::NotFound),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Ok(OrgUpdate::SlugTaken)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn delete_organization(&self, id: OrgId) -> Result<bool> {
        self.call(move |conn, sql| {
            Ok(conn.execute(&sql.accounts.delete_organization, params![id.0.to_string()])? > 0)
        })
        .await
    }

    async fn touch_api_key(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.accounts.touch_key)?
                .execute(params![id])?;
            Ok(())
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
