//! Organizations and API keys.

use super::queues::insert_default_queue;
use super::{PgStore, interval, ts};
use crate::account::keys::{ApiKeyRecord, NewApiKey};
use crate::account::{OrgId, Organization, USE_RECORDED_EVERY};
use crate::store::accounts::{API_KEY_COLUMNS, NewOrganization, OrgUpdate};
use crate::store::{AccountStore, Clock, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos_proto::Scope;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

pub(super) struct Sql {
    pub(super) insert_organization: String,
    organization_by_slug: String,
    organization: String,
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
            // With its `default` queue (id `$4`), in the same statement;
            // no row when the slug is taken.
            insert_organization: clock.pg(format!(
                "WITH org AS (
                     INSERT INTO organizations (id, slug, name, created_at)
                     VALUES ($1, $2, $3, now()) ON CONFLICT (slug) DO NOTHING
                     RETURNING id, slug, name, created_at, plan
                 ), queue AS (
                     {queue}
                 )
                 SELECT * FROM org",
                queue = insert_default_queue("org", "$4"),
            )),
            organization_by_slug:
                "SELECT id, slug, name, created_at, plan FROM organizations WHERE slug = $1".into(),
            organization: "SELECT id, slug, name, created_at, plan FROM organizations WHERE id = $1"
                .into(),
            update_organization: "UPDATE organizations \
                 SET name = COALESCE($2, name), slug = COALESCE($3, slug) \
                 WHERE id = $1 RETURNING id, slug, name, created_at, plan"
                .into(),
            delete_organization: "DELETE FROM organizations WHERE id = $1".into(),
            add_owner: clock.pg(
                "INSERT INTO memberships (organization_id, user_id, role, created_at) \
                 VALUES ($1, $2, 'owner', now())"
                    .into(),
            ),
            // At most once a minute per key: a busy worker's requests must
            // not each write a row.
            touch_key: clock.pg(format!(
                "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
                 AND (last_used_at IS NULL \
                      OR last_used_at < now() - {every})",
                every = interval(USE_RECORDED_EVERY),
            )),
            insert_key: clock.pg(format!(
                "INSERT INTO api_keys \
                 (id, organization_id, name, secret_sha256, scopes, created_at, expires_at, queues) \
                 VALUES ($1, $2, $3, $4, $5, now(), $6, $7) RETURNING {API_KEY_COLUMNS}"
            )),
            key: format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"),
            list_keys: format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE organization_id = $1 \
                 ORDER BY created_at, id"
            ),
            revoke_key: clock.pg(format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) \
                 WHERE organization_id = $1 AND id = $2 RETURNING {API_KEY_COLUMNS}"
            )),
        }
    }
}

impl Sql {
    pub(super) fn organization_sql(&self) -> &str {
        &self.organization
    }
}

pub(super) fn org_from_row(row: &Row) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(row.try_get("id")?),
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: ts(row.try_get("created_at")?),
        plan: row.try_get("plan")?,
    })
}

fn api_key_from_row(row: &Row) -> Result<ApiKeyRecord> {
    let scopes: Vec<String> = row.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        organization_id: OrgId(row.try_get("organization_id")?),
        name: row.try_get("name")?,
        secret_sha256: row.try_get("secret_sha256")?,
        scopes: scopes
            .iter()
            .map(|s| s.parse::<Scope>().map_err(StoreError::Corrupt))
            .collect::<Result<_>>()?,
        created_at: ts(row.try_get("created_at")?),
        revoked_at: row
            .try_get::<_, Option<DateTime<Utc>>>("revoked_at")?
            .map(ts),
        expires_at: row
            .try_get::<_, Option<DateTime<Utc>>>("expires_at")?
            .map(ts),
        last_used_at: row
            .try_get::<_, Option<DateTime<Utc>>>("last_used_at")?
            .map(ts),
        queues: row.try_get("queues")?,
    })
}

pub(super) async fn insert_key(
    client: &impl deadpool_postgres::GenericClient,
    sql: &Sql,
    key: &NewApiKey,
) -> Result<Row> {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    Ok(client
        .query_one(
            &sql.insert_key,
            &[
                &key.id,
                &key.organization_id.0,
                &key.name,
                &key.secret_sha256,
                &scopes,
                &key.expires_at.map(|t| t.0),
                &key.queues,
            ],
        )
        .await?)
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &self.sql.accounts.insert_organization,
                &[&Uuid::now_v7(), &slug, &name, &Uuid::now_v7()],
            )
            .await?
            .ok_or_else(|| StoreError::Other(format!("organization `{slug}` already exists")))?;
        org_from_row(&row)
    }

    async fn create_organization_with(
        &self,
        org: NewOrganization,
    ) -> Result<Option<(Organization, ApiKeyRecord)>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &self.sql.accounts.insert_organization,
                &[&org.id.0, &org.slug, &org.name, &Uuid::now_v7()],
            )
            .await?
        else {
            return Ok(None);
        };
        let created = org_from_row(&row)?;
        let key = api_key_from_row(&insert_key(&tx, &self.sql.accounts, &org.admin_key).await?)?;
        if let Some(owner) = org.owner {
            tx.execute(&self.sql.accounts.add_owner, &[&org.id.0, &owner])
                .await?;
        }
        tx.commit().await?;
        Ok(Some((created, key)))
    }

    async fn organization(&self, id: OrgId) -> Result<Option<Organization>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.accounts.organization, &[&id.0])
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn update_organization(
        &self,
        id: OrgId,
        name: Option<&str>,
        slug: Option<&str>,
    ) -> Result<OrgUpdate> {
        let client = self.pool.get().await?;
        match client
            .query_opt(
                &self.sql.accounts.update_organization,
                &[&id.0, &name, &slug],
            )
            .await
        {
            Ok(Some(row)) => Ok(OrgUpdate::Updated(org_from_row(&row)?)),
            Ok(None) => Ok(OrgUpdate::NotFound),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(OrgUpdate::SlugTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_organization(&self, id: OrgId) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(&self.sql.accounts.delete_organization, &[&id.0])
            .await?
            > 0)
    }

    async fn touch_api_key(&self, id: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute(&self.sql.accounts.touch_key, &[&id]).await?;
        Ok(())
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.accounts.organization_by_slug, &[&slug])
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord> {
        let client = self.pool.get().await?;
        api_key_from_row(&insert_key(&client, &self.sql.accounts, &key).await?)
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.accounts.key).await?;
        client
            .query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.accounts.list_keys, &[&org.0])
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.accounts.revoke_key, &[&org.0, &id])
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }
}
