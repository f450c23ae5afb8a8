//! Schedules, and the scheduler's pass that fires them (for the lease
//! engine, through [`super::leases`]).

use super::jobs::job_from_row;
use super::plans::Budget;
use super::{NOTIFY_KEYS, PgStore, WAKE_KEY_SQL, opt_ts, seconds_from_now, ts};
use crate::account::OrgId;
use crate::account::plans::UNLIMITED;
use crate::job::state::{FINISHED, waiting_status};
use crate::job::target_host;
use crate::schedule::{JobTemplate, PlanFn, ScheduleRecord};
use crate::store::jobs::JOB_COLUMNS;
use crate::store::schedules::{SCHEDULE_COLUMNS, SKIPPED_RUNS_KEPT};
use crate::store::{
    Clock, Fired, Page, PageRequest, Result, ScheduleStore, StoreError, enum_parse, enum_text,
    json_parse, json_value, status_test,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos_proto::{ScheduleStatus, SkippedRun};
use tokio_postgres::Row;
use uuid::Uuid;

/// The most schedules one scheduler pass fires.
const FIRE_BATCH: usize = 100;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    update: String,
    delete: String,
    record_run: String,
    due: String,
    insert_fires: String,
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
        let c = |s: String| clock.pg(s);
        Sql {
            insert: format!(
                "WITH s AS (
                     INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                         template, catch_up, overlap, failure_notify, anchor_at, next_run_at,
                         concurrency_key, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $11, $11)
                     RETURNING *
                 )
                 SELECT {SCHEDULE_COLUMNS} FROM s LEFT JOIN jobs lj ON lj.id = s.last_job_id"
            ),
            get: format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                 LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.organization_id = $1 AND s.id = $2"
            ),
            list: format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                 LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.organization_id = $1 AND ($2::text IS NULL OR s.status = $2)
                   AND ($3::uuid IS NULL OR s.id < $3)
                 ORDER BY s.id DESC LIMIT $4"
            ),
            update: c(format!(
                "WITH s AS (
                     UPDATE schedules SET name = $3, status = $4, timing = $5, timezone = $6,
                         template = $7, catch_up = $8, overlap = $9, failure_notify = $10,
                         anchor_at = $11, next_run_at = $12, waiting_fire_at = $13,
                         concurrency_key = $14, updated_at = now()
                     WHERE organization_id = $1 AND id = $2
                     RETURNING *
                 )
                 SELECT {SCHEDULE_COLUMNS} FROM s LEFT JOIN jobs lj ON lj.id = s.last_job_id"
            )),
            delete: "DELETE FROM schedules WHERE organization_id = $1 AND id = $2".into(),
            record_run: c("UPDATE schedules SET last_run_at = now(), last_job_id = $3
                 WHERE organization_id = $1 AND id = $2"
                .into()),
            // Due, or holding a fire for a last job that has ended; another
            // process firing one holds its row, and this pass skips it.
            due: c(format!(
                "SELECT {SCHEDULE_COLUMNS}, s.organization_id, now() AS db_now,
                        (SELECT o.plan <> '{UNLIMITED}' FROM organizations o
                         WHERE o.id = s.organization_id) AS limited
                 FROM schedules s LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.status = '{active}'
                   AND (s.next_run_at <= now()
                        OR (s.waiting_fire_at IS NOT NULL
                            AND (lj.status IS NULL OR lj.status {finished})))
                 ORDER BY s.next_run_at
                 LIMIT {FIRE_BATCH}
                 FOR UPDATE OF s SKIP LOCKED",
                finished = status_test(FINISHED),
            )),
            insert_fires: c(format!(
                "WITH input AS (
                     SELECT * FROM unnest($2::uuid[], $3::timestamptz[]) AS i (in_id, in_fire_at)
                 ), {queues}, created AS (
                     INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                         priority, status, delivery_type, delivery, run_at, max_retries,
                         timeout_seconds, schedule_id, target_host, fire_at, flow,
                         concurrency_key, created_at, updated_at)
                     SELECT in_id, $1, $4, $5, $6, $7, $8, '{queued}', $9, $10, now(), $11, $12,
                            $13, $14, in_fire_at,
                            -- A schedule's queue can't be deleted while it names it;
                            -- a fire is never lost for want of one.
                            coalesce((SELECT flow FROM queues_used), 0), $15, now(), now()
                     FROM input
                     ON CONFLICT DO NOTHING
                     RETURNING {JOB_COLUMNS}, organization_id, delivery_type
                 ), keys AS (
                     SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM created
                 )
                 SELECT created.*, (SELECT {NOTIFY_KEYS} FROM keys) AS notified FROM created",
                queued = waiting_status(true).as_str(),
                queues = super::jobs::queues_used("$7"),
            )),
            skip: c(
                "INSERT INTO skipped_runs (id, organization_id, schedule_id, fire_at, error,
                          created_at)
                      SELECT id, $1, $2, fire_at, $5, now()
                      FROM unnest($3::uuid[], $4::timestamptz[]) AS i (id, fire_at)"
                    .into(),
            ),
            trim_skipped: format!(
                "DELETE FROM skipped_runs WHERE schedule_id = $1 AND id < (
                     SELECT id FROM skipped_runs WHERE schedule_id = $1
                     ORDER BY id DESC OFFSET {} LIMIT 1)",
                SKIPPED_RUNS_KEPT - 1
            ),
            skipped: "SELECT id, schedule_id, fire_at, error, created_at FROM skipped_runs
                      WHERE organization_id = $1 AND schedule_id = $2
                        AND ($3::uuid IS NULL OR id < $3)
                      ORDER BY id DESC LIMIT $4"
                .into(),
            exists:
                "SELECT EXISTS (SELECT 1 FROM schedules WHERE organization_id = $1 AND id = $2)"
                    .into(),
            advance: c(
                "UPDATE schedules SET next_run_at = $2, waiting_fire_at = $3,
                     last_run_at = CASE WHEN $4::uuid IS NULL THEN last_run_at ELSE now() END,
                     last_job_id = coalesce($4, last_job_id)
                 WHERE id = $1"
                    .into(),
            ),
            next_due: c(format!(
                "SELECT extract(epoch FROM min(next_run_at) - now())::float8
                 FROM schedules WHERE status = '{active}'"
            )),
        }
    }
}

fn schedule_from_row(row: &Row) -> Result<ScheduleRecord> {
    let status: String = row.try_get("status")?;
    let last_status: Option<String> = row.try_get("last_status")?;
    Ok(ScheduleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: ScheduleStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("schedule status {status}")))?,
        timing: json_parse("timing", row.try_get("timing")?)?,
        timezone: row.try_get("timezone")?,
        template: JobTemplate {
            concurrency_key: row.try_get("concurrency_key")?,
            ..json_parse("template", row.try_get("template")?)?
        },
        catch_up: enum_parse("catch_up", row.try_get("catch_up")?)?,
        overlap: enum_parse("overlap", row.try_get("overlap")?)?,
        failure_notify: row.try_get("failure_notify")?,
        anchor_at: ts(row.try_get("anchor_at")?),
        next_run_at: opt_ts(row, "next_run_at")?,
        waiting_fire_at: opt_ts(row, "waiting_fire_at")?,
        last_run_at: opt_ts(row, "last_run_at")?,
        last_job_id: row.try_get("last_job_id")?,
        last_status: last_status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
    })
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn insert_schedule(&self, org: OrgId, s: &ScheduleRecord) -> Result<ScheduleRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.schedules.insert,
                &[
                    &s.id,
                    &org.0,
                    &s.name,
                    &s.status.as_str(),
                    &json_value("timing", &s.timing)?,
                    &s.timezone,
                    &json_value("template", &s.template)?,
                    &enum_text(&s.catch_up),
                    &enum_text(&s.overlap),
                    &s.failure_notify,
                    &s.anchor_at.0,
                    &s.next_run_at.map(|t| t.0),
                    &s.template.concurrency_key,
                ],
            )
            .await?;
        schedule_from_row(&row)
    }

    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.schedules.get, &[&org.0, &id])
            .await?
            .map(|r| schedule_from_row(&r))
            .transpose()
    }

    async fn list_schedules(
        &self,
        org: OrgId,
        status: Option<ScheduleStatus>,
        page: PageRequest,
    ) -> Result<Page<ScheduleRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &self.sql.schedules.list,
                &[
                    &org.0,
                    &status.map(ScheduleStatus::as_str),
                    &page.before,
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await?;
        let items = rows
            .iter()
            .map(schedule_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |s| s.id))
    }

    async fn update_schedule(
        &self,
        org: OrgId,
        s: &ScheduleRecord,
    ) -> Result<Option<ScheduleRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &self.sql.schedules.update,
                &[
                    &org.0,
                    &s.id,
                    &s.name,
                    &s.status.as_str(),
                    &json_value("timing", &s.timing)?,
                    &s.timezone,
                    &json_value("template", &s.template)?,
                    &enum_text(&s.catch_up),
                    &enum_text(&s.overlap),
                    &s.failure_notify,
                    &s.anchor_at.0,
                    &s.next_run_at.map(|t| t.0),
                    &s.waiting_fire_at.map(|t| t.0),
                    &s.template.concurrency_key,
                ],
            )
            .await?
            .map(|r| schedule_from_row(&r))
            .transpose()
    }

    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute(&self.sql.schedules.delete, &[&org.0, &id])
            .await?;
        Ok(n > 0)
    }

    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(&self.sql.schedules.record_run, &[&org.0, &id, &job_id])
            .await?;
        Ok(())
    }

    async fn skipped_runs(
        &self,
        org: OrgId,
        id: Uuid,
        page: PageRequest,
    ) -> Result<Option<Page<SkippedRun>>> {
        let sql = &self.sql.schedules;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &sql.skipped,
                &[&org.0, &id, &page.before, &(i64::from(page.limit) + 1)],
            )
            .await?;
        if rows.is_empty()
            && !client
                .query_one(&sql.exists, &[&org.0, &id])
                .await?
                .get::<_, bool>(0)
        {
            return Ok(None);
        }
        let items = rows
            .iter()
            .map(|row| {
                Ok(SkippedRun {
                    id: row.try_get("id")?,
                    schedule_id: row.try_get("schedule_id")?,
                    fire_at: ts(row.try_get("fire_at")?),
                    error: json_parse("error", row.try_get("error")?)?,
                    created_at: ts(row.try_get("created_at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Page::from_rows(items, page.limit, |r| r.id)))
    }
}

/// One scheduler pass ([`crate::store::LeaseStore::fire_schedules`]).
pub(super) async fn fire(store: &PgStore, plan: PlanFn) -> Result<Fired> {
    let sql = &store.sql.schedules;
    let mut client = store.pool.get().await?;
    let tx = client.transaction().await?;
    let due = tx.prepare_cached(&sql.due).await?;
    let insert = tx.prepare_cached(&sql.insert_fires).await?;
    let advance = tx.prepare_cached(&sql.advance).await?;
    let mut rows = tx.query(&due, &[]).await?;
    // Organizations' counts are locked in one order, so two servers'
    // passes can't each hold one the other waits for.
    rows.sort_by_cached_key(|row| row.get::<_, Uuid>("organization_id"));
    let mut fired = Fired {
        schedules: rows.len(),
        ..Fired::default()
    };
    let mut budgets: Vec<Budget> = Vec::new();
    for row in &rows {
        let schedule = schedule_from_row(row)?;
        let org = OrgId(row.try_get("organization_id")?);
        let now = ts(row.try_get("db_now")?);
        let limited: Option<bool> = row.try_get("limited")?;
        let outcome = plan(&schedule, now);
        let mut last_job = None;
        let mut fires = &outcome.fires[..];
        let mut cap = None;
        if limited == Some(true) && !fires.is_empty() {
            if budgets.last().is_none_or(|b| b.org() != org) {
                budgets.push(Budget::open(store, &tx, org).await?);
            }
            let budget = budgets.last_mut().expect("pushed above");
            cap = budget.tally.plan.max_retries;
            let host = target_host(&fires[0].job.delivery);
            let (room, refusal) = budget
                .room(store, &tx, host.as_deref(), fires.len() as u64)
                .await?;
            if let Some(refusal) = refusal {
                let (kept, skipped) = fires.split_at(room as usize);
                skip(store, &tx, org, schedule.id, skipped, &refusal.to_detail()).await?;
                fired.skipped += skipped.len();
                fires = kept;
            }
        }
        if let Some(first) = fires.first() {
            // Every fire of a pass is the same template.
            let job = &first.job;
            let retries = job.max_retries.unwrap_or(crate::queue::DEFAULT_RETRIES);
            let retries = cap.map_or(retries, |cap| retries.min(cap));
            let ids: Vec<Uuid> = fires.iter().map(|f| f.job.id).collect();
            let at: Vec<DateTime<Utc>> = fires.iter().map(|f| f.fire_at.0).collect();
            let created = tx
                .query(
                    &insert,
                    &[
                        &org.0,
                        &ids,
                        &at,
                        &job.name,
                        &job.handler,
                        &job.payload,
                        &job.queue,
                        &job.priority,
                        &job.delivery.kind(),
                        &json_value("delivery", &job.delivery)?,
                        &(retries.min(i32::MAX as u32) as i32),
                        &(job.timeout_seconds as i32),
                        &schedule.id,
                        &target_host(&job.delivery),
                        &job.concurrency_key,
                    ],
                )
                .await?;
            if let Some(budget) = budgets.last_mut().filter(|b| b.org() == org) {
                let host = target_host(&job.delivery);
                budget.spend(host.as_deref(), created.len() as i64);
            }
            for row in &created {
                let job = job_from_row(row)?;
                last_job = Some(job.id);
                fired.jobs.push((org, job));
            }
        }
        tx.execute(
            &advance,
            &[
                &schedule.id,
                &outcome.next_run_at.map(|t| t.0),
                &outcome.waiting_fire_at.map(|t| t.0),
                &last_job,
            ],
        )
        .await?;
    }
    for budget in budgets {
        budget.close(store, &tx).await?;
    }
    let next: Option<f64> = tx.query_one(&sql.next_due, &[]).await?.get(0);
    tx.commit().await?;
    fired.next_due_in = seconds_from_now(next);
    Ok(fired)
}

/// Records fires that made no job, and why; keeps the schedule's newest.
async fn skip(
    store: &PgStore,
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    schedule: Uuid,
    fires: &[crate::schedule::Fire],
    why: &chronos_proto::ErrorDetail,
) -> Result<()> {
    let sql = &store.sql.schedules;
    let ids: Vec<Uuid> = fires.iter().map(|_| Uuid::now_v7()).collect();
    let at: Vec<DateTime<Utc>> = fires.iter().map(|f| f.fire_at.0).collect();
    let stmt = tx.prepare_cached(&sql.skip).await?;
    tx.execute(
        &stmt,
        &[&org.0, &schedule, &ids, &at, &json_value("error", why)?],
    )
    .await?;
    let stmt = tx.prepare_cached(&sql.trim_skipped).await?;
    tx.execute(&stmt, &[&schedule]).await?;
    Ok(())
}
