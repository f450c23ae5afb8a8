//! Queues.

use super::{NOTIFY_CHANNEL, PgStore, ts};
use crate::account::OrgId;
use crate::queue::{DEFAULT_QUEUE, FailureMode, QueueRecord, QueueSettings, QueueState};
use crate::store::flow::{head_of_queue, started, unfinished_of_queue};
use crate::store::queues::{
    QUEUE_COLUMNS, QueueColumns, QueueJobsSql, SETTINGS_COLUMNS, SettingValue,
    settings_placeholders, settings_values,
};
use crate::store::{Clock, QueueStore, Result, StoreError};
use crate::store::{DeleteQueue, QueueCounts};
use async_trait::async_trait;
use chronos_proto::{JobStatus, QueueKey, ScheduleStatus};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

pub(super) struct Sql {
    jobs: QueueJobsSql,
    insert: String,
    get: String,
    /// Also the outcome publisher's, for a callback queue.
    pub(super) get_by_id: String,
    list: String,
    update: String,
    set_status: String,
    unblock: String,
    lock: String,
    reflow: String,
    wake_everyone: String,
    named_by: String,
    delete: String,
    head: String,
    failed: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            jobs: QueueJobsSql::new("organization_id = $1", "$2", "$3"),
            insert: clock.pg(format!(
                "INSERT INTO queues (id, organization_id, name, {SETTINGS_COLUMNS}, status,
                                     created_at, updated_at)
                 VALUES ($1, $2, $3, {settings}, '{active}', now(), now())
                 ON CONFLICT ON CONSTRAINT queues_name DO NOTHING
                 RETURNING {QUEUE_COLUMNS}",
                settings = settings_placeholders('$', 4),
                active = QueueState::Active.as_str(),
            )),
            get: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = $1 AND name = $2"
            ),
            get_by_id: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = $1 AND id = $2"
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
            wake_everyone: format!("SELECT pg_notify('{NOTIFY_CHANNEL}', '*')"),
            reflow: format!(
                "UPDATE jobs SET flow = $3 WHERE id IN ({unfinished}) AND flow <> $3",
                unfinished = unfinished_of_queue("organization_id = $1", "$2"),
            ),
            named_by: format!(
                "SELECT id FROM schedules
                 WHERE organization_id = $1 AND template->>'queue' = $2 AND status <> '{archived}'
                 LIMIT 1",
                archived = ScheduleStatus::Archived.as_str(),
            ),
            delete: "DELETE FROM queues WHERE organization_id = $1 AND name = $2".into(),
            head: format!("{} LIMIT 1", head_of_queue("$1", "$2", started)),
            failed: clock.pg(format!(
                "UPDATE queues q
                 SET blocked = blocked OR failure_mode = '{block}',
                     status = CASE WHEN failure_mode = '{pause}' THEN '{paused}' ELSE status END,
                     updated_at = now()
                 FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[]) AS d (d_org, d_queue)) d
                 WHERE q.organization_id = d.d_org AND q.name = d.d_queue
                   AND q.failure_mode <> '{continue_}'
                 RETURNING q.organization_id, q.name, q.flow",
                block = FailureMode::Block.as_str(),
                pause = FailureMode::Pause.as_str(),
                paused = QueueState::Paused.as_str(),
                continue_ = FailureMode::Continue.as_str(),
            )),
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
        active = QueueState::Active.as_str(),
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

pub(super) fn queue_from_row(row: &Row) -> Result<QueueRecord> {
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
        default_target_group_id: row.try_get("default_target_group_id")?,
        callback_queue_id: row.try_get("callback_queue_id")?,
        callback_on: row.try_get("callback_on")?,
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

    async fn queue_by_id(&self, org: OrgId, id: Uuid) -> Result<Option<QueueRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.queues.get_by_id).await?;
        client
            .query_opt(&stmt, &[&org.0, &id])
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
        status: QueueState,
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
    async fn delete_queue(&self, org: OrgId, name: &str) -> Result<DeleteQueue> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locked first, so that the checks below (each in a snapshot taken
        // after the lock) see every job an insert committed meanwhile.
        if tx.execute(&self.sql.queues.lock, &[&org.0, &name]).await? == 0 {
            return Ok(DeleteQueue::NotFound);
        }
        let holds: i64 = tx
            .query_one(&self.sql.queues.jobs.holds, &[&org.0, &name])
            .await?
            .get(0);
        if holds > 0 {
            return Ok(DeleteQueue::HoldsJobs(holds as u64));
        }
        if let Some(row) = tx
            .query_opt(&self.sql.queues.named_by, &[&org.0, &name])
            .await?
        {
            return Ok(DeleteQueue::NamedBySchedule(row.get(0)));
        }
        tx.execute(&self.sql.queues.delete, &[&org.0, &name])
            .await?;
        tx.commit().await?;
        Ok(DeleteQueue::Deleted)
    }

    async fn queue_counts(&self, org: OrgId, name: &str) -> Result<QueueCounts> {
        let client = self.pool.get().await?;
        let mut counts = QueueCounts::default();
        for row in client
            .query(&self.sql.queues.jobs.counts, &[&org.0, &name])
            .await?
        {
            let status: String = row.try_get("status")?;
            let n = row.try_get::<_, i64>("n")? as u64;
            match status.parse::<JobStatus>().map_err(StoreError::Corrupt)? {
                JobStatus::Running => counts.running = n,
                JobStatus::Queued => {
                    counts.queued = n;
                    counts.oldest_queued_at = row.try_get::<_, Option<_>>("oldest")?.map(ts);
                }
                JobStatus::Scheduled => counts.scheduled = n,
                _ => {}
            }
        }
        counts.head_handler = client
            .query_opt(&self.sql.queues.head, &[&org.0, &name])
            .await?
            .and_then(|r| r.get::<_, Option<String>>("handler"));
        Ok(counts)
    }

    async fn queue_keys(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<QueueKey>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.queues.jobs.keys).await?;
        let mut keys = Vec::new();
        for row in client
            .query(&stmt, &[&org.0, &name, &i64::from(limit)])
            .await?
        {
            keys.push(QueueKey {
                key: row.try_get("key")?,
                running: row.try_get::<_, i64>("running")? as u64,
                waiting: row.try_get::<_, i64>("waiting")? as u64,
            });
        }
        Ok(keys)
    }

    async fn unfinished_in_queue(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<Uuid>> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &self.sql.queues.jobs.unfinished,
                &[&org.0, &name, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}

/// A job of each of these queues (organization, name) died: a queue whose
/// failure mode is `block` is blocked, `pause` paused, and its unfinished
/// jobs take its new flow — in the caller's transaction, which ended them,
/// so nothing starts in between.
pub(super) async fn apply_failure_modes(
    store: &PgStore,
    tx: &deadpool_postgres::Transaction<'_>,
    dead: &[(Uuid, String)],
) -> Result<()> {
    let (orgs, names): (Vec<Uuid>, Vec<&str>) = dead.iter().map(|(o, n)| (*o, n.as_str())).unzip();
    let hit = tx.query(&store.sql.queues.failed, &[&orgs, &names]).await?;
    for row in hit {
        let (org, name, flow): (Uuid, String, i16) = (row.get(0), row.get(1), row.get(2));
        tx.execute(&store.sql.queues.reflow, &[&org, &name, &flow])
            .await?;
    }
    Ok(())
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
        // A job dying in the queue meanwhile may meet this in a deadlock:
        // PostgreSQL ends one transaction, which is tried again.
        retry_deadlocks!(async {
            let tx = client.transaction().await?;
            tx.execute(&self.sql.queues.lock, &[&org.0, &name]).await?;
            let Some(row) = tx.query_opt(update, params).await? else {
                return Ok(None);
            };
            let flow: i16 = row.try_get("flow")?;
            tx.execute(&self.sql.queues.reflow, &[&org.0, &name, &flow])
                .await?;
            // The queue may start jobs it held (resumed, unblocked, a limit
            // raised or removed): every server's polls look again.
            tx.execute(&self.sql.queues.wake_everyone, &[]).await?;
            tx.commit().await?;
            queue_from_row(&row).map(Some)
        })
    }
}
