//! Schedules, and the scheduler's pass that fires them (for the lease
//! engine, through [`super::leases`]).

use super::jobs::job_from_row;
use super::plans::Spending;
use super::{NOW, Statements, corrupt, opt_ts, opt_uuid, to_json, ts, uuid};
use crate::account::OrgId;
use crate::job::state::{FINISHED, waiting_status};
use crate::job::{NewJob, target_host};
use crate::schedule::{JobTemplate, PlanFn, ScheduleRecord};
use crate::store::jobs::JOB_COLUMNS;
use crate::store::plans::PastQuota;
use crate::store::schedules::{SCHEDULE_COLUMNS, SKIPPED_RUNS_KEPT};
use crate::store::{
    Clock, Fired, Page, PageRequest, Result, ScheduleStore, StoreError, enum_parse, enum_text,
    status_test,
};
use async_trait::async_trait;
use chronos_proto::{ErrorDetail, Job, ScheduleStatus, SkippedRun, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

use super::SqliteStore;

/// The most schedules one scheduler pass fires.
const FIRE_BATCH: usize = 100;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    update: String,
    delete: String,
    record_run: String,
    now: String,
    due: String,
    insert_fire: String,
    skip: String,
    trim_skipped: String,
    skipped: String,
    exists: String,
    advance: String,
    next_due: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let active = ScheduleStatus::Active.as_str();
        let c = |s: String| clock.sqlite(s);
        Sql {
            insert: "INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                     template, catch_up, overlap, failure_notify, anchor_at, next_run_at,
                     concurrency_key, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?11, ?11)"
                .into(),
            get: format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                 LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.organization_id = ?1 AND s.id = ?2"
            ),
            list: format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                 LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.organization_id = ?1 AND (?2 IS NULL OR s.status = ?2)
                   AND (?3 IS NULL OR s.id < ?3)
                 ORDER BY s.id DESC LIMIT ?4"
            ),
            update: c(format!(
                "UPDATE schedules SET name = ?3, status = ?4, timing = ?5, timezone = ?6,
                     template = ?7, catch_up = ?8, overlap = ?9, failure_notify = ?10,
                     anchor_at = ?11, next_run_at = ?12, waiting_fire_at = ?13,
                     concurrency_key = ?14, updated_at = {NOW}
                 WHERE organization_id = ?1 AND id = ?2"
            )),
            delete: "DELETE FROM schedules WHERE organization_id = ?1 AND id = ?2".into(),
            record_run: c(format!(
                "UPDATE schedules SET last_run_at = {NOW}, last_job_id = ?3
                 WHERE organization_id = ?1 AND id = ?2"
            )),
            now: c(format!("SELECT {NOW}")),
            // Due, or holding a fire for a last job that has ended. (One
            // server per file: nobody else fires them meanwhile.)
            due: format!(
                "SELECT {SCHEDULE_COLUMNS}, s.organization_id
                 FROM schedules s LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.status = '{active}'
                   AND (s.next_run_at <= ?1
                        OR (s.waiting_fire_at IS NOT NULL
                            AND (lj.status IS NULL OR lj.status {finished})))
                 ORDER BY s.next_run_at
                 LIMIT {FIRE_BATCH}",
                finished = status_test(FINISHED),
            ),
            insert_fire: c(format!(
                "INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority,
                     status, delivery_type, delivery, run_at, max_retries, timeout_seconds,
                     schedule_id, target_host, fire_at, flow, concurrency_key, created_at,
                     updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '{queued}', ?8, ?9, {NOW}, ?10, ?11, ?12,
                         ?13, ?14,
                         -- A schedule's queue can't be deleted while it names it; a
                         -- fire is never lost for want of one.
                         coalesce((SELECT flow FROM queues
                                   WHERE organization_id = ?2 AND name = ?6), 0),
                         ?15, {NOW}, {NOW})
                 ON CONFLICT DO NOTHING
                 RETURNING {JOB_COLUMNS}",
                queued = waiting_status(true).as_str(),
            )),
            skip: c(format!(
                "INSERT INTO skipped_runs (id, organization_id, schedule_id, fire_at, error,
                     created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, {NOW})"
            )),
            trim_skipped: format!(
                "DELETE FROM skipped_runs WHERE schedule_id = ?1 AND id < (
                     SELECT id FROM skipped_runs WHERE schedule_id = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET {})",
                SKIPPED_RUNS_KEPT - 1
            ),
            skipped: "SELECT id, schedule_id, fire_at, error, created_at FROM skipped_runs
                      WHERE organization_id = ?1 AND schedule_id = ?2
                        AND (?3 IS NULL OR id < ?3)
                      ORDER BY id DESC LIMIT ?4"
                .into(),
            exists:
                "SELECT EXISTS (SELECT 1 FROM schedules WHERE organization_id = ?1 AND id = ?2)"
                    .into(),
            advance: c(format!(
                "UPDATE schedules SET next_run_at = ?2, waiting_fire_at = ?3,
                     last_run_at = CASE WHEN ?4 IS NULL THEN last_run_at ELSE {NOW} END,
                     last_job_id = coalesce(?4, last_job_id)
                 WHERE id = ?1"
            )),
            next_due: format!("SELECT min(next_run_at) FROM schedules WHERE status = '{active}'"),
        }
    }
}

fn schedule_from_row(row: &Row) -> Result<ScheduleRecord> {
    let status: String = row.get("status")?;
    let last_status: Option<String> = row.get("last_status")?;
    let timing: String = row.get("timing")?;
    let template: String = row.get("template")?;
    Ok(ScheduleRecord {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        status: ScheduleStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("schedule status {status}")))?,
        timing: serde_json::from_str(&timing).map_err(|e| corrupt("timing", e))?,
        timezone: row.get("timezone")?,
        template: JobTemplate {
            concurrency_key: row.get("concurrency_key")?,
            ..serde_json::from_str(&template).map_err(|e| corrupt("template", e))?
        },
        catch_up: enum_parse("catch_up", row.get("catch_up")?)?,
        overlap: enum_parse("overlap", row.get("overlap")?)?,
        failure_notify: row.get("failure_notify")?,
        anchor_at: ts(row.get("anchor_at")?)?,
        next_run_at: opt_ts(row.get("next_run_at")?)?,
        waiting_fire_at: opt_ts(row.get("waiting_fire_at")?)?,
        last_run_at: opt_ts(row.get("last_run_at")?)?,
        last_job_id: opt_uuid(row.get("last_job_id")?)?,
        last_status: last_status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
    })
}

fn read_schedule(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    id: Uuid,
) -> Result<Option<ScheduleRecord>> {
    conn.prepare_cached(&sql.get)?
        .query_row(params![org.0.to_string(), id.to_string()], |row| {
            Ok(schedule_from_row(row))
        })
        .optional()?
        .transpose()
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn insert_schedule(&self, org: OrgId, s: &ScheduleRecord) -> Result<ScheduleRecord> {
        let s = s.clone();
        self.call(move |conn, sql| {
            let sql = &sql.schedules;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(&sql.insert)?.execute(params![
                s.id.to_string(),
                org.0.to_string(),
                s.name,
                s.status.as_str(),
                to_json(&s.timing),
                s.timezone,
                to_json(&s.template),
                enum_text(&s.catch_up),
                enum_text(&s.overlap),
                s.failure_notify,
                s.anchor_at.to_string(),
                s.next_run_at.map(|t| t.to_string()),
                s.template.concurrency_key,
            ])?;
            let created = read_schedule(&tx, sql, org, s.id)?
                .ok_or_else(|| StoreError::Other("an inserted schedule is gone".into()))?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>> {
        self.call(move |conn, sql| read_schedule(conn, &sql.schedules, org, id))
            .await
    }

    async fn list_schedules(
        &self,
        org: OrgId,
        status: Option<ScheduleStatus>,
        page: PageRequest,
    ) -> Result<Page<ScheduleRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.schedules.list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    status.map(ScheduleStatus::as_str),
                    page.before.map(|b| b.to_string()),
                    i64::from(page.limit) + 1
                ],
                |row| Ok(schedule_from_row(row)),
            )?;
            let items = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
            Ok(Page::from_rows(items, page.limit, |s| s.id))
        })
        .await
    }

    async fn update_schedule(
        &self,
        org: OrgId,
        s: &ScheduleRecord,
    ) -> Result<Option<ScheduleRecord>> {
        let s = s.clone();
        self.call(move |conn, sql| {
            let sql = &sql.schedules;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.prepare_cached(&sql.update)?.execute(params![
                org.0.to_string(),
                s.id.to_string(),
                s.name,
                s.status.as_str(),
                to_json(&s.timing),
                s.timezone,
                to_json(&s.template),
                enum_text(&s.catch_up),
                enum_text(&s.overlap),
                s.failure_notify,
                s.anchor_at.to_string(),
                s.next_run_at.map(|t| t.to_string()),
                s.waiting_fire_at.map(|t| t.to_string()),
                s.template.concurrency_key,
            ])?;
            let updated = if n == 0 {
                None
            } else {
                read_schedule(&tx, sql, org, s.id)?
            };
            tx.commit()?;
            Ok(updated)
        })
        .await
    }

    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool> {
        self.call(move |conn, sql| {
            let n = conn.execute(
                &sql.schedules.delete,
                params![org.0.to_string(), id.to_string()],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()> {
        self.call(move |conn, sql| {
            conn.execute(
                &sql.schedules.record_run,
                params![org.0.to_string(), id.to_string(), job_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn skipped_runs(
        &self,
        org: OrgId,
        id: Uuid,
        page: PageRequest,
    ) -> Result<Option<Page<SkippedRun>>> {
        self.call(move |conn, sql| {
            let sql = &sql.schedules;
            let (org, id) = (org.0.to_string(), id.to_string());
            let exists: bool = conn
                .prepare_cached(&sql.exists)?
                .query_row(params![org, id], |r| r.get(0))?;
            if !exists {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(&sql.skipped)?;
            let rows = stmt.query_map(
                params![
                    org,
                    id,
                    page.before.map(|b| b.to_string()),
                    i64::from(page.limit) + 1
                ],
                |row| {
                    Ok((
                        row.get::<_, String>("id")?,
                        row.get::<_, String>("schedule_id")?,
                        row.get::<_, String>("fire_at")?,
                        row.get::<_, String>("error")?,
                        row.get::<_, String>("created_at")?,
                    ))
                },
            )?;
            let mut items = Vec::new();
            for row in rows {
                let (id, schedule_id, fire_at, error, created_at) = row?;
                items.push(SkippedRun {
                    id: uuid(id)?,
                    schedule_id: uuid(schedule_id)?,
                    fire_at: ts(fire_at)?,
                    error: serde_json::from_str(&error).map_err(|e| corrupt("error", e))?,
                    created_at: ts(created_at)?,
                });
            }
            Ok(Some(Page::from_rows(items, page.limit, |r| r.id)))
        })
        .await
    }
}

/// Records a fire that made no job, and why; keeps the schedule's newest.
fn skip(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    schedule: Uuid,
    fire_at: Timestamp,
    why: &ErrorDetail,
) -> Result<()> {
    conn.prepare_cached(&sql.skip)?.execute(params![
        Uuid::now_v7().to_string(),
        org.0.to_string(),
        schedule.to_string(),
        fire_at.to_string(),
        to_json(why),
    ])?;
    conn.prepare_cached(&sql.trim_skipped)?
        .execute(params![schedule.to_string()])?;
    Ok(())
}

/// Inserts a schedule's job for the due time `fire_at`, due now; `None` if
/// that due time has its job already.
fn insert_fire(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    job: &NewJob,
    fire_at: Timestamp,
    max_retries: Option<u32>,
) -> Result<Option<Job>> {
    conn.prepare_cached(&sql.insert_fire)?
        .query_row(
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
                target_host(&job.delivery),
                fire_at.to_string(),
                job.concurrency_key,
            ],
            |row| Ok(job_from_row(row)),
        )
        .optional()?
        .transpose()
}

/// One scheduler pass ([`crate::store::LeaseStore::fire_schedules`]).
pub(super) fn fire(conn: &mut Connection, statements: &Statements, plan: PlanFn) -> Result<Fired> {
    let sql = &statements.schedules;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = ts(tx.query_row(&sql.now, [], |r| r.get(0))?)?;
    let due: Vec<(ScheduleRecord, String)> = tx
        .prepare_cached(&sql.due)?
        .query_map(params![now.to_string()], |row| {
            Ok((schedule_from_row(row), row.get("organization_id")?))
        })?
        .map(|r| {
            let (schedule, org) = r?;
            Ok((schedule?, org))
        })
        .collect::<Result<_>>()?;
    let mut fired = Fired {
        schedules: due.len(),
        ..Fired::default()
    };
    // Each organization's plan, read once and spent fire by fire.
    let mut spending: HashMap<OrgId, Spending> = HashMap::new();
    for (schedule, org) in due {
        let org = OrgId(uuid(org)?);
        let outcome = plan(&schedule, now);
        let mut last_job = None;
        for fire in &outcome.fires {
            let spend = spending
                .entry(org)
                .or_insert_with(|| Spending::new(PastQuota::Refuse));
            let host = target_host(&fire.job.delivery);
            let cap = match spend.take(&tx, statements, org, host.as_deref())? {
                Ok(plan) => plan.max_retries,
                Err(refusal) => {
                    skip(
                        &tx,
                        sql,
                        org,
                        schedule.id,
                        fire.fire_at,
                        &refusal.to_detail(),
                    )?;
                    fired.skipped += 1;
                    continue;
                }
            };
            let retries = fire
                .job
                .max_retries
                .map(|r| cap.map_or(r, |cap| r.min(cap)));
            if let Some(job) = insert_fire(&tx, sql, org, &fire.job, fire.fire_at, retries)? {
                spend.spent(host.as_deref());
                last_job = Some(job.id);
                fired.jobs.push((org, job));
            }
        }
        tx.prepare_cached(&sql.advance)?.execute(params![
            schedule.id.to_string(),
            outcome.next_run_at.map(|t| t.to_string()),
            outcome.waiting_fire_at.map(|t| t.to_string()),
            last_job.map(|id: Uuid| id.to_string()),
        ])?;
    }
    for (org, spend) in spending {
        spend.finish(&tx, statements, org)?;
    }
    let next: Option<String> = tx.query_row(&sql.next_due, [], |r| r.get(0))?;
    tx.commit()?;
    fired.next_due_in = opt_ts(next)?.map(|at| (at.0 - now.0).to_std().unwrap_or(Duration::ZERO));
    Ok(fired)
}
