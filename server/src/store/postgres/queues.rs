//! Queues.

use super::{PgStore, ts};
use crate::account::OrgId;
use crate::queue::{DEFAULT_QUEUE, QueueRecord, QueueSettings, QueueStatus};
use crate::store::flow::unfinished_of_queue;
use crate::store::queues::{
    QUEUE_COLUMNS, QueueColumns, SETTINGS_COLUMNS, SettingValue, settings_placeholders,
    settings_values,
};
use crate::store::{Clock, QueueStore, Result, StoreError};
use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    update: String,
    set_status: String,
    unblock: String,
    lock: String,
    reflow: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            insert: clock.pg(format!(
                "INSERT INTO queues (id, organization_id, name, {SETTINGS_COLUMNS}, status,
                                     created_at, updated_at)
                 VALUES ($1, $2, $3, {settings}, '{active}', now(), now())
                 ON CONFLICT ON CONSTRAINT queues_name DO NOTHING
                 RETURNING {QUEUE_COLUMNS}",
                settings = settings_placeholders('$', 4),
                active = QueueStatus::Active.as_str(),
            )),
            get: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = $1 AND name = $2"
            ),
            list: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = $1
                 ORDER BY name COLLATE \"C\""
            ),
            update: clock.pg(format!(
                "UPDATE queues SET ({SETTINGS_COLUMNS}, updated_at) = ({settings}, now())
                 WHERE organization_id = $1 AND name = $2
                 RETURNING {QUEUE_COLUMNS}, flow",
                settings = settings_placeholders('$', 3),
            )),
            set_status: clock.pg(format!(
                "UPDATE queues SET status = $3, updated_at = now()
                 WHERE organization_id = $1 AND name = $2
                 RETURNING {QUEUE_COLUMNS}, flow"
            )),
            unblock: clock.pg(format!(
                "UPDATE queues SET blocked = false, updated_at = now()
                 WHERE organization_id = $1 AND name = $2
                 RETURNING {QUEUE_COLUMNS}, flow"
            )),
            // Waits for the inserts into the queue that share-lock it, and
            // for its leases; they then see the change.
            lock: "SELECT 1 FROM queues WHERE organization_id = $1 AND name = $2 FOR UPDATE".into(),
            reflow: format!(
                "UPDATE jobs SET flow = $3 WHERE id IN ({unfinished}) AND flow <> $3",
                unfinished = unfinished_of_queue("organization_id = $1", "$2"),
            ),
        }
    }
}

/// The `default` queue of the organization `$1` just inserted as `org`, for
/// the statement that inserts it: an organization never exists without it.
pub(super) fn insert_default_queue(org: &str, id_param: &str) -> String {
    let s = QueueSettings::unlimited();
    format!(
        "INSERT INTO queues (id, organization_id, name, retries, ordering, failure_mode, status,
                             created_at, updated_at)
         SELECT {id_param}, id, '{DEFAULT_QUEUE}', {retries}, '{ordering}', '{failure}',
                '{active}', created_at, created_at
         FROM {org}",
        retries = s.retries,
        ordering = s.ordering.as_str(),
        failure = s.failure_mode.as_str(),
        active = QueueStatus::Active.as_str(),
    )
}

/// The settings as this store binds them.
fn settings_params(s: &QueueSettings) -> Result<Vec<Box<dyn ToSql + Sync + Send>>> {
    settings_values(s)
        .into_iter()
        .map(|v| -> Result<Box<dyn ToSql + Sync + Send>> {
            Ok(match v {
                SettingValue::Count(n) => Box::new(
                    n.map(i32::try_from)
                        .transpose()
                        .map_err(|e| StoreError::Other(format!("a queue setting: {e}")))?,
                ),
                SettingValue::Text(t) => Box::new(t),
                SettingValue::Id(id) => Box::new(id),
            })
        })
        .collect()
}

fn queue_from_row(row: &Row) -> Result<QueueRecord> {
    let int = |col: &str| -> Result<Option<i64>> {
        Ok(row.try_get::<_, Option<i32>>(col)?.map(i64::from))
    };
    QueueColumns {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        concurrency: int("concurrency")?,
        retries: int("retries")?.unwrap_or_default(),
        ordering: row.try_get("ordering")?,
        failure_mode: row.try_get("failure_mode")?,
        status: row.try_get("status")?,
        blocked: row.try_get("blocked")?,
        rate_limit: int("rate_limit")?,
        rate_period_seconds: int("rate_period_seconds")?,
        key_concurrency: int("key_concurrency")?,
        key_rate_limit: int("key_rate_limit")?,
        key_rate_period_seconds: int("key_rate_period_seconds")?,
        signing_secret_id: row.try_get("signing_secret_id")?,
        default_target_url: row.try_get("default_target_url")?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
    }
    .record()
}

#[async_trait]
impl QueueStore for PgStore {
    async fn create_queue(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>> {
        let client = self.pool.get().await?;
        let settings = settings_params(settings)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &org.0, &name];
        params.extend(settings.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
        client
            .query_opt(&self.sql.queues.insert, &params)
            .await?
            .as_ref()
            .map(queue_from_row)
            .transpose()
    }

    async fn queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.queues.get).await?;
        client
            .query_opt(&stmt, &[&org.0, &name])
            .await?
            .as_ref()
            .map(queue_from_row)
            .transpose()
    }

    async fn list_queues(&self, org: OrgId) -> Result<Vec<QueueRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.queues.list).await?;
        client
            .query(&stmt, &[&org.0])
            .await?
            .iter()
            .map(queue_from_row)
            .collect()
    }

    async fn update_queue(
        &self,
        org: OrgId,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>> {
        let settings = settings_params(settings)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&org.0, &name];
        params.extend(settings.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
        self.change_queue(org, name, &self.sql.queues.update, &params)
            .await
    }

    async fn set_queue_status(
        &self,
        org: OrgId,
        name: &str,
        status: QueueStatus,
    ) -> Result<Option<QueueRecord>> {
        let params: [&(dyn ToSql + Sync); 3] = [&org.0, &name, &status.as_str()];
        self.change_queue(org, name, &self.sql.queues.set_status, &params)
            .await
    }

    async fn unblock_queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>> {
        let params: [&(dyn ToSql + Sync); 2] = [&org.0, &name];
        self.change_queue(org, name, &self.sql.queues.unblock, &params)
            .await
    }
}

impl PgStore {
    /// Changes a queue with `update` (returning its columns and its new
    /// flow) and gives its unfinished jobs the new flow, in one
    /// transaction that holds the queue's row against inserts and leases.
    async fn change_queue(
        &self,
        org: OrgId,
        name: &str,
        update: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<QueueRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(&self.sql.queues.lock, &[&org.0, &name]).await?;
        let Some(row) = tx.query_opt(update, params).await? else {
            return Ok(None);
        };
        let flow: i16 = row.try_get("flow")?;
        tx.execute(&self.sql.queues.reflow, &[&org.0, &name, &flow])
            .await?;
        tx.commit().await?;
        queue_from_row(&row).map(Some)
    }
}
