//! Jobs: reading them and their executions, and inserting new ones (for
//! the lease engine, through [`super::leases`]).

use super::plans::Spending;
use super::{
    NOW, SqliteStore, Statements, corrupt, json, modifier, opt_ts, opt_uuid, to_json, ts, u32_col,
    uuid,
};
use crate::account::OrgId;
use crate::job::state::waiting_status;
use crate::job::{NewJob, RunAt, target_host};
use crate::store::jobs::body_encoding;
use crate::store::jobs::{EXECUTION_COLUMNS, JOB_COLUMNS};
use crate::store::plans::PastQuota;
use crate::store::{
    Clock, ExecutionsOf, Inserted, JobFilter, JobStore, Page, PageRequest, Result, ScheduleFilter,
    StoreError,
};
use async_trait::async_trait;
use chronos_proto::{Delivery, Execution, Job};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

pub(super) struct Sql {
    pub(super) get: String,
    list: String,
    job_exists: String,
    schedule_exists: String,
    executions_of_job: String,
    executions_of_schedule: String,
    key_holder: String,
    queue_used: String,
    insert: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let executions = |jobs: &str| {
            format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions
                 WHERE {jobs} AND (?3 IS NULL OR id < ?3)
                 ORDER BY id DESC LIMIT ?4"
            )
        };
        Sql {
            get: format!("SELECT {JOB_COLUMNS} FROM jobs WHERE organization_id = ?1 AND id = ?2"),
            list: format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE organization_id = ?1
                   AND (?2 IS NULL OR status IN (SELECT value FROM json_each(?2)))
                   AND (?3 IS NULL OR handler = ?3)
                   AND (?4 IS NULL OR queue = ?4)
                   AND (NOT ?5 OR schedule_id IS NULL)
                   AND (?6 IS NULL OR schedule_id = ?6)
                   AND (?7 IS NULL OR id < ?7)
                 ORDER BY id DESC
                 LIMIT ?8"
            ),
            job_exists: "SELECT EXISTS (SELECT 1 FROM jobs WHERE organization_id = ?1 AND id = ?2)"
                .into(),
            schedule_exists:
                "SELECT EXISTS (SELECT 1 FROM schedules WHERE organization_id = ?1 AND id = ?2)"
                    .into(),
            // The organization (?1) was checked with the job.
            executions_of_job: executions("?1 IS NOT NULL AND job_id = ?2"),
            executions_of_schedule: executions(
                "job_id IN (SELECT id FROM jobs WHERE organization_id = ?1 AND schedule_id = ?2)",
            ),
            key_holder: "SELECT id FROM jobs WHERE organization_id = ?1 AND idempotency_key = ?2"
                .into(),
            queue_used: "SELECT flow, retries FROM queues WHERE organization_id = ?1 AND name = ?2"
                .into(),
            // run_at from SQLite's clock: a modifier such as '+7200.000 seconds'.
            insert: clock.sqlite(format!(
                "INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority,
                     status, delivery_type, delivery, run_at, max_retries, timeout_seconds,
                     schedule_id, idempotency_key, target_host, flow, concurrency_key, created_at,
                     updated_at, fan_out_id, callback_queue_id, callback_every_attempt)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7,
                        CASE WHEN t.run_at <= {NOW} THEN '{queued}' ELSE '{scheduled}' END,
                        ?8, ?9, t.run_at, coalesce(?10, ?18), ?11, ?12, ?13, ?16, ?17,
                        ?19, {NOW}, {NOW}, ?20, ?21, ?22
                 FROM (SELECT COALESCE(?14, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?15))
                           AS run_at) t
                 RETURNING {JOB_COLUMNS}",
                queued = waiting_status(true).as_str(),
                scheduled = waiting_status(false).as_str(),
            )),
        }
    }
}

pub(super) fn job_from_row(row: &Row) -> Result<Job> {
    let status: String = row.get("status")?;
    let delivery: String = row.get("delivery")?;
    Ok(Job {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        handler: row.get("handler")?,
        payload: json(row.get("payload")?)?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        queue: row.get("queue")?,
        priority: row.get("priority")?,
        delivery: serde_json::from_str::<Delivery>(&delivery)
            .map_err(|e| corrupt("delivery", e))?,
        run_at: ts(row.get("run_at")?)?,
        attempt: u32_col(row, "attempt")?,
        max_retries: u32_col(row, "max_retries")?,
        timeout: u32_col(row, "timeout_seconds")?,
        schedule_id: opt_uuid(row.get("schedule_id")?)?,
        fire_at: opt_ts(row.get("fire_at")?)?,
        idempotency_key: row.get("idempotency_key")?,
        held_reason: row.get("held_reason")?,
        fan_out_id: opt_uuid(row.get("fan_out_id")?)?,
        callback_queue_id: opt_uuid(row.get("callback_queue_id")?)?,
        concurrency_key: row.get("concurrency_key")?,
        result: row
            .get::<_, Option<String>>("result")?
            .map(json)
            .transpose()?,
        last_error: row.get("last_error")?,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
        finished_at: opt_ts(row.get("finished_at")?)?,
    })
}

fn execution_from_row(row: &Row) -> Result<Execution> {
    let status: String = row.get("status")?;
    let started = ts(row.get("started_at")?)?;
    let finished = opt_ts(row.get("finished_at")?)?;
    let response_body: Option<String> = row.get("response_body")?;
    let encoding: Option<String> = row.get("response_body_encoding")?;
    Ok(Execution {
        id: uuid(row.get("id")?)?,
        job_id: uuid(row.get("job_id")?)?,
        attempt: u32_col(row, "attempt")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        worker_id: row.get("worker_id")?,
        http_status: row.get::<_, Option<i64>>("http_status")?.map(|s| s as u16),
        response_body_encoding: response_body
            .is_some()
            .then(|| body_encoding(encoding.as_deref())),
        response_body,
        response_truncated: row.get("response_truncated")?,
        error: row.get("error")?,
        duration_ms: finished.map(|f| (f.0 - started.0).num_milliseconds().max(0) as u64),
        started_at: started,
        finished_at: finished,
    })
}

/// One job, in the caller's connection or transaction.
pub(super) fn job_by_id(conn: &Connection, sql: &Sql, org: OrgId, id: Uuid) -> Result<Option<Job>> {
    conn.prepare_cached(&sql.get)?
        .query_row(params![org.0.to_string(), id.to_string()], |row| {
            Ok(job_from_row(row))
        })
        .optional()?
        .transpose()
}

/// What one transaction's inserts of one organization's jobs have read
/// and spent: its plan's quota, and the flow and retries of the queues they
/// name, each read once, in the transaction (SQLite's one writer keeps the
/// queue from changing under it). Read apart from the insert, whose plan
/// SQLite would otherwise make again on every row: a parameter compared
/// with a column in the insert's own `WHERE` ties its plan to the value.
pub(super) struct Inserting {
    queues: HashMap<String, (i64, i64)>,
    spending: Spending,
}

impl Inserting {
    pub fn new(past: PastQuota) -> Self {
        Inserting {
            queues: HashMap::new(),
            spending: Spending::new(past),
        }
    }

    /// The queue `name`'s (flow, retries); `QueueNotFound` if the
    /// organization has no such queue.
    fn queue(
        &mut self,
        conn: &Connection,
        sql: &Sql,
        org: OrgId,
        name: &str,
    ) -> Result<(i64, i64)> {
        if let Some(&known) = self.queues.get(name) {
            return Ok(known);
        }
        let found = conn
            .prepare_cached(&sql.queue_used)?
            .query_row(params![org.0.to_string(), name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or_else(|| StoreError::QueueNotFound {
                name: name.to_string(),
            })?;
        self.queues.insert(name.to_string(), found);
        Ok(found)
    }

    /// Writes what was spent to the organization's counters; call before
    /// the transaction commits.
    pub fn finish(self, conn: &Connection, sql: &Statements, org: OrgId) -> Result<()> {
        self.spending.finish(conn, sql, org)
    }
}

/// Inserts one job of a batch (in the caller's transaction), or finds the
/// job holding its idempotency key, or refuses it for its organization's
/// quota; its retries capped by the plan. A queue that does not exist
/// fails the whole transaction (`QueueNotFound`).
pub(super) fn insert_job(
    conn: &Connection,
    sql_all: &Statements,
    inserting: &mut Inserting,
    org: OrgId,
    job: &NewJob,
) -> Result<Inserted> {
    let sql = &sql_all.jobs;
    let (flow, retries) = inserting.queue(conn, sql, org, &job.queue)?;
    if let Some(key) = &job.idempotency_key {
        let existing: Option<String> = conn
            .prepare_cached(&sql.key_holder)?
            .query_row(params![org.0.to_string(), key], |r| r.get(0))
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Inserted::Conflict {
                existing: uuid(existing)?,
            });
        }
    }
    let host = target_host(&job.delivery);
    let plan = match inserting
        .spending
        .take(conn, sql_all, org, host.as_deref())?
    {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Inserted::OverQuota(refusal)),
    };
    let max_retries = job.max_retries.map(|r| plan.cap_retries(r));
    let retries = plan.cap_retries(retries.clamp(0, u32::MAX as i64) as u32);
    let (at, after) = match job.run_at {
        RunAt::Now => (None, modifier(Duration::ZERO)),
        RunAt::After(d) => (None, modifier(d)),
        RunAt::At(t) => (Some(t.to_string()), modifier(Duration::ZERO)),
    };
    let created = conn.prepare_cached(&sql.insert)?.query_row(
        params![
            job.id.to_string(),
            org.0.to_string(),
            job.name,
            job.handler,
            to_json(&job.payload),
            job.queue,
            job.priority,
            job.delivery.kind(),
            to_json(&job.delivery),
            max_retries,
            job.timeout_seconds,
            job.schedule_id.map(|s| s.to_string()),
            job.idempotency_key,
            at,
            after,
            host,
            flow,
            retries,
            job.concurrency_key,
            job.follow.fan_out_id.map(|id| id.to_string()),
            job.follow.callback_queue_id.map(|id| id.to_string()),
            job.follow.every_attempt,
        ],
        |row| Ok(job_from_row(row)),
    )??;
    inserting.spending.spent(host.as_deref());
    Ok(Inserted::Created(Box::new(created)))
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>> {
        self.call(move |conn, sql| job_by_id(conn, &sql.jobs, org, id))
            .await
    }

    async fn list_jobs(
        &self,
        org: OrgId,
        filter: &JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>> {
        let filter = filter.clone();
        self.call(move |conn, sql| {
            let statuses: Option<String> = (!filter.statuses.is_empty()).then(|| {
                to_json(
                    &filter
                        .statuses
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>(),
                )
            });
            let (one_off, schedule_id) = match filter.schedule {
                ScheduleFilter::Any => (false, None),
                ScheduleFilter::None => (true, None),
                ScheduleFilter::Id(id) => (false, Some(id.to_string())),
            };
            let mut stmt = conn.prepare_cached(&sql.jobs.list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    statuses,
                    filter.handler,
                    filter.queue,
                    one_off,
                    schedule_id,
                    page.before.map(|b| b.to_string()),
                    i64::from(page.limit) + 1,
                ],
                |row| Ok(job_from_row(row)),
            )?;
            let jobs = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
            Ok(Page::from_rows(jobs, page.limit, |j| j.id))
        })
        .await
    }

    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>> {
        self.call(move |conn, sql| {
            let sql = &sql.jobs;
            let (exists, list) = match of {
                ExecutionsOf::Job(_) => (&sql.job_exists, &sql.executions_of_job),
                ExecutionsOf::Schedule(_) => (&sql.schedule_exists, &sql.executions_of_schedule),
            };
            let exists: bool = conn
                .prepare_cached(exists)?
                .query_row(params![org.0.to_string(), of.id().to_string()], |r| {
                    r.get(0)
                })?;
            if !exists {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    of.id().to_string(),
                    page.before.map(|b| b.to_string()),
                    i64::from(page.limit) + 1
                ],
                |row| Ok(execution_from_row(row)),
            )?;
            let items = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
            Ok(Some(Page::from_rows(items, page.limit, |e| e.id)))
        })
        .await
    }
}
