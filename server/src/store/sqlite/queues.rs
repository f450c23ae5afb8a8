//! Queues.

use super::{NOW, SqliteStore, opt_uuid, ts, uuid};
use crate::account::OrgId;
use crate::queue::{DEFAULT_QUEUE, FailureMode, QueueRecord, QueueSettings, QueueState};
use crate::store::flow::{head_of_queue, unfinished_of_queue};
use crate::store::queues::{
    QUEUE_COLUMNS, QueueColumns, QueueJobsSql, SETTINGS_COLUMNS, SettingValue,
    settings_placeholders, settings_values,
};
use crate::store::{Clock, QueueStore, Result};
use crate::store::{DeleteQueue, QueueCounts, StoreError};
use async_trait::async_trait;
use chronos_proto::{JobStatus, QueueKey, ScheduleStatus};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

pub(super) struct Sql {
    jobs: QueueJobsSql,
    insert: String,
    insert_default: String,
    get: String,
    /// Also the outcome publisher's, for a callback queue.
    pub(super) get_by_id: String,
    list: String,
    update: String,
    set_status: String,
    unblock: String,
    reflow: String,
    exists: String,
    named_by: String,
    delete: String,
    head: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let unlimited = QueueSettings::unlimited();
        Sql {
            jobs: QueueJobsSql::new("+organization_id = ?1", "?2", "?3"),
            insert: clock.sqlite(format!(
                "INSERT INTO queues (id, organization_id, name, {SETTINGS_COLUMNS}, status,
                                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, {settings}, '{active}', {NOW}, {NOW})
                 ON CONFLICT (organization_id, name) DO NOTHING
                 RETURNING {QUEUE_COLUMNS}",
                settings = settings_placeholders('?', 4),
                active = QueueState::Active.as_str(),
            )),
            insert_default: clock.sqlite(format!(
                "INSERT INTO queues (id, organization_id, name, retries, ordering, failure_mode,
                                     status, created_at, updated_at)
                 VALUES (?1, ?2, '{DEFAULT_QUEUE}', {retries}, '{ordering}', '{failure}',
                         '{active}', {NOW}, {NOW})",
                retries = unlimited.retries,
                ordering = unlimited.ordering.as_str(),
                failure = unlimited.failure_mode.as_str(),
                active = QueueState::Active.as_str(),
            )),
            get: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = ?1 AND name = ?2"
            ),
            get_by_id: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = ?1 AND id = ?2"
            ),
            list: format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE organization_id = ?1 ORDER BY name"
            ),
            update: clock.sqlite(format!(
                "UPDATE queues SET ({SETTINGS_COLUMNS}, updated_at) = ({settings}, {NOW})
                 WHERE organization_id = ?1 AND name = ?2
                 RETURNING {QUEUE_COLUMNS}, flow",
                settings = settings_placeholders('?', 3),
            )),
            set_status: clock.sqlite(format!(
                "UPDATE queues SET status = ?3, updated_at = {NOW}
                 WHERE organization_id = ?1 AND name = ?2
                 RETURNING {QUEUE_COLUMNS}, flow"
            )),
            unblock: clock.sqlite(format!(
                "UPDATE queues SET blocked = 0, updated_at = {NOW}
                 WHERE organization_id = ?1 AND name = ?2
                 RETURNING {QUEUE_COLUMNS}, flow"
            )),
            reflow: reflow_sql(),
            exists: "SELECT EXISTS (SELECT 1 FROM queues WHERE organization_id = ?1 AND name = ?2)"
                .into(),
            named_by: format!(
                "SELECT id FROM schedules
                 WHERE organization_id = ?1 AND json_extract(template, '$.queue') = ?2
                   AND status <> '{archived}'
                 LIMIT 1",
                archived = ScheduleStatus::Archived.as_str(),
            ),
            delete: "DELETE FROM queues WHERE organization_id = ?1 AND name = ?2".into(),
            head: format!(
                "{} LIMIT 1",
                head_of_queue("?1", "?2", super::flow::started)
            ),
        }
    }
}

/// Gives the unfinished jobs of a queue (`?1`, `?2`) its flow `?3`. `+`:
/// not through `jobs_by_org`, which holds the whole history.
pub(super) fn reflow_sql() -> String {
    format!(
        "UPDATE jobs SET flow = ?3 WHERE id IN ({unfinished}) AND flow <> ?3",
        unfinished = unfinished_of_queue("+organization_id = ?1", "?2"),
    )
}

/// A job of the queue (`?1`, `?2`) died: blocks or pauses it as its
/// failure mode says, returning its new flow; no row for `continue`.
pub(super) fn failed_sql(clock: &Clock) -> String {
    clock.sqlite(format!(
        "UPDATE queues
         SET blocked = blocked OR failure_mode = '{block}',
             status = CASE WHEN failure_mode = '{pause}' THEN '{paused}' ELSE status END,
             updated_at = {NOW}
         WHERE organization_id = ?1 AND name = ?2 AND failure_mode <> '{continue_}'
         RETURNING flow",
        block = FailureMode::Block.as_str(),
        pause = FailureMode::Pause.as_str(),
        paused = QueueState::Paused.as_str(),
        continue_ = FailureMode::Continue.as_str(),
    ))
}

/// Makes the `default` queue of a new organization, in the transaction
/// that makes the organization: one never exists without it.
pub(super) fn insert_default_queue(conn: &Connection, sql: &Sql, org: Uuid) -> Result<()> {
    conn.prepare_cached(&sql.insert_default)?
        .execute(params![Uuid::now_v7().to_string(), org.to_string()])?;
    Ok(())
}

/// The settings as this store binds them.
fn settings_params(s: &QueueSettings) -> Vec<Value> {
    settings_values(s)
        .into_iter()
        .map(|v| match v {
            SettingValue::Count(n) => n.map_or(Value::Null, |n| Value::Integer(n.into())),
            SettingValue::Text(t) => t.map_or(Value::Null, Value::Text),
            SettingValue::Id(id) => id.map_or(Value::Null, |id| Value::Text(id.to_string())),
        })
        .collect()
}

pub(super) fn queue_from_row(row: &Row) -> Result<QueueRecord> {
    QueueColumns {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        concurrency: row.get("concurrency")?,
        retries: row.get("retries")?,
        ordering: row.get("ordering")?,
        failure_mode: row.get("failure_mode")?,
        status: row.get("status")?,
        blocked: row.get("blocked")?,
        rate_limit: row.get("rate_limit")?,
        rate_period_seconds: row.get("rate_period_seconds")?,
        key_concurrency: row.get("key_concurrency")?,
        key_rate_limit: row.get("key_rate_limit")?,
        key_rate_period_seconds: row.get("key_rate_period_seconds")?,
        signing_secret_id: opt_uuid(row.get("signing_secret_id")?)?,
        default_target_url: row.get("default_target_url")?,
        default_target_group_id: opt_uuid(row.get("default_target_group_id")?)?,
        callback_queue_id: opt_uuid(row.get("callback_queue_id")?)?,
        callback_on: row.get("callback_on")?,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
    }
    .record()
}

/// Changes a queue with `update` (returning its columns and its new flow)
/// and gives its unfinished jobs the new flow, in one transaction.
fn change(
    conn: &mut Connection,
    sql: &super::Statements,
    org: OrgId,
    name: &str,
    update: &str,
    params: impl rusqlite::Params,
) -> Result<Option<QueueRecord>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let changed = tx
        .prepare_cached(update)?
        .query_row(params, |row| {
            Ok((queue_from_row(row), row.get::<_, i64>("flow")?))
        })
        .optional()?;
    let Some((queue, flow)) = changed else {
        return Ok(None);
    };
    tx.prepare_cached(&sql.queues.reflow)?
        .execute(params![org.0.to_string(), name, flow])?;
    tx.commit()?;
    queue.map(Some)
}

/// One queue from `stmt` with `params`, if any.
fn one(
    conn: &Connection,
    stmt: &str,
    params: impl rusqlite::Params,
) -> Result<Option<QueueRecord>> {
    conn.prepare_cached(stmt)?
        .query_row(params, |row| Ok(queue_from_row(row)))
        .optional()?
        .transpose()
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn create_queue(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>> {
        let mut params = vec![
            Value::Text(id.to_string()),
            Value::Text(org.0.to_string()),
            Value::Text(name.to_string()),
        ];
        params.extend(settings_params(settings));
        self.call(move |conn, sql| one(conn, &sql.queues.insert, params_from_iter(params)))
            .await
    }

    async fn queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>> {
        let name = name.to_string();
        self.call(move |conn, sql| one(conn, &sql.queues.get, params![org.0.to_string(), name]))
            .await
    }

    async fn queue_by_id(&self, org: OrgId, id: Uuid) -> Result<Option<QueueRecord>> {
        self.call(move |conn, sql| {
            let ids = params![org.0.to_string(), id.to_string()];
            one(conn, &sql.queues.get_by_id, ids)
        })
        .await
    }

    async fn list_queues(&self, org: OrgId) -> Result<Vec<QueueRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.queues.list)?;
            let rows = stmt.query_map(params![org.0.to_string()], |row| Ok(queue_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn update_queue(
        &self,
        org: OrgId,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>> {
        let mut params = vec![
            Value::Text(org.0.to_string()),
            Value::Text(name.to_string()),
        ];
        params.extend(settings_params(settings));
        let name = name.to_string();
        self.call(move |conn, sql| {
            change(
                conn,
                sql,
                org,
                &name,
                &sql.queues.update,
                params_from_iter(params),
            )
        })
        .await
    }

    async fn set_queue_status(
        &self,
        org: OrgId,
        name: &str,
        status: QueueState,
    ) -> Result<Option<QueueRecord>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let params = params![org.0.to_string(), name, status.as_str()];
            change(conn, sql, org, &name, &sql.queues.set_status, params)
        })
        .await
    }

    async fn unblock_queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let params = params![org.0.to_string(), name];
            change(conn, sql, org, &name, &sql.queues.unblock, params)
        })
        .await
    }

    async fn delete_queue(&self, org: OrgId, name: &str) -> Result<DeleteQueue> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let sql = &sql.queues;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let org_id = org.0.to_string();
            let exists: bool = tx
                .prepare_cached(&sql.exists)?
                .query_row(params![org_id, name], |r| r.get(0))?;
            if !exists {
                return Ok(DeleteQueue::NotFound);
            }
            let holds: i64 = tx
                .prepare_cached(&sql.jobs.holds)?
                .query_row(params![org_id, name], |r| r.get(0))?;
            if holds > 0 {
                return Ok(DeleteQueue::HoldsJobs(holds as u64));
            }
            let schedule: Option<String> = tx
                .prepare_cached(&sql.named_by)?
                .query_row(params![org_id, name], |r| r.get(0))
                .optional()?;
            if let Some(schedule) = schedule {
                return Ok(DeleteQueue::NamedBySchedule(uuid(schedule)?));
            }
            tx.prepare_cached(&sql.delete)?
                .execute(params![org_id, name])?;
            tx.commit()?;
            Ok(DeleteQueue::Deleted)
        })
        .await
    }

    async fn queue_keys(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<QueueKey>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.queues.jobs.keys)?;
            let rows = stmt.query_map(params![org.0.to_string(), name, limit], |row| {
                Ok(QueueKey {
                    key: row.get("key")?,
                    running: row.get::<_, i64>("running")? as u64,
                    waiting: row.get::<_, i64>("waiting")? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn queue_counts(&self, org: OrgId, name: &str) -> Result<QueueCounts> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let sql = &sql.queues;
            let org_id = org.0.to_string();
            let mut counts = QueueCounts::default();
            let mut stmt = conn.prepare_cached(&sql.jobs.counts)?;
            let mut rows = stmt.query(params![org_id, name])?;
            while let Some(row) = rows.next()? {
                let status: String = row.get("status")?;
                let n = row.get::<_, i64>("n")? as u64;
                match status.parse::<JobStatus>().map_err(StoreError::Corrupt)? {
                    JobStatus::Running => counts.running = n,
                    JobStatus::Queued => {
                        counts.queued = n;
                        counts.oldest_queued_at = row
                            .get::<_, Option<String>>("oldest")?
                            .map(ts)
                            .transpose()?;
                    }
                    JobStatus::Scheduled => counts.scheduled = n,
                    _ => {}
                }
            }
            counts.head_handler = conn
                .prepare_cached(&sql.head)?
                .query_row(params![org_id, name], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten();
            Ok(counts)
        })
        .await
    }

    async fn unfinished_in_queue(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<Uuid>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.queues.jobs.unfinished)?;
            let ids = stmt
                .query_map(params![org.0.to_string(), name, limit], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.into_iter().map(uuid).collect()
        })
        .await
    }
}
