//! Queues.

use super::{PgStore, ts};
use crate::account::OrgId;
use crate::queue::{DEFAULT_QUEUE, QueueRecord, QueueSettings, QueueStatus};
use crate::store::queues::{QUEUE_COLUMNS, QueueColumns};
use crate::store::{Clock, QueueStore, Result, StoreError};
use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The settings' columns, in the order of [`Params::refs`].
const SETTINGS_COLUMNS: &str = "concurrency, retries, ordering, failure_mode, rate_limit, \
     rate_period_seconds, key_concurrency, key_rate_limit, key_rate_period_seconds, \
     signing_secret_id, default_target_url";

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    update: String,
    set_status: String,
    unblock: String,
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
                settings = placeholders(4),
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
                 RETURNING {QUEUE_COLUMNS}",
                settings = placeholders(3),
            )),
            set_status: clock.pg(format!(
                "UPDATE queues SET status = $3, updated_at = now()
                 WHERE organization_id = $1 AND name = $2
                 RETURNING {QUEUE_COLUMNS}"
            )),
            unblock: clock.pg(format!(
                "UPDATE queues SET blocked = false, updated_at = now()
                 WHERE organization_id = $1 AND name = $2
                 RETURNING {QUEUE_COLUMNS}"
            )),
        }
    }
}

/// `$from` and the ten after it: the settings' parameters.
fn placeholders(from: usize) -> String {
    (from..from + Params::COUNT)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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

fn int(v: Option<u32>) -> Result<Option<i32>> {
    v.map(|v| i32::try_from(v).map_err(|_| StoreError::Other(format!("{v} is out of range"))))
        .transpose()
}

/// The settings as parameters, in the order of [`SETTINGS_COLUMNS`].
struct Params {
    concurrency: Option<i32>,
    retries: i32,
    ordering: &'static str,
    failure_mode: &'static str,
    rate_limit: Option<i32>,
    rate_period: Option<i32>,
    key_concurrency: Option<i32>,
    key_rate_limit: Option<i32>,
    key_rate_period: Option<i32>,
    signing_secret_id: Option<Uuid>,
    default_target_url: Option<String>,
}

impl Params {
    fn of(s: &QueueSettings) -> Result<Self> {
        Ok(Params {
            concurrency: int(s.concurrency)?,
            retries: int(Some(s.retries))?.unwrap_or_default(),
            ordering: s.ordering.as_str(),
            failure_mode: s.failure_mode.as_str(),
            rate_limit: int(s.rate.map(|r| r.limit))?,
            rate_period: int(s.rate.map(|r| r.period_seconds))?,
            key_concurrency: int(s.key_concurrency)?,
            key_rate_limit: int(s.key_rate.map(|r| r.limit))?,
            key_rate_period: int(s.key_rate.map(|r| r.period_seconds))?,
            signing_secret_id: s.signing_secret_id,
            default_target_url: s.default_target_url.clone(),
        })
    }

    const COUNT: usize = 11;

    fn refs(&self) -> [&(dyn ToSql + Sync); Self::COUNT] {
        [
            &self.concurrency,
            &self.retries,
            &self.ordering,
            &self.failure_mode,
            &self.rate_limit,
            &self.rate_period,
            &self.key_concurrency,
            &self.key_rate_limit,
            &self.key_rate_period,
            &self.signing_secret_id,
            &self.default_target_url,
        ]
    }
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
        let p = Params::of(settings)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &org.0, &name];
        params.extend(p.refs());
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
        let client = self.pool.get().await?;
        let p = Params::of(settings)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&org.0, &name];
        params.extend(p.refs());
        client
            .query_opt(&self.sql.queues.update, &params)
            .await?
            .as_ref()
            .map(queue_from_row)
            .transpose()
    }

    async fn set_queue_status(
        &self,
        org: OrgId,
        name: &str,
        status: QueueStatus,
    ) -> Result<Option<QueueRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &self.sql.queues.set_status,
                &[&org.0, &name, &status.as_str()],
            )
            .await?
            .as_ref()
            .map(queue_from_row)
            .transpose()
    }

    async fn unblock_queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.queues.unblock, &[&org.0, &name])
            .await?
            .as_ref()
            .map(queue_from_row)
            .transpose()
    }
}
