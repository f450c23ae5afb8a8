//! Jobs: reading them and their executions, and inserting new ones (for
//! the lease engine, through [`super::leases`]).

use super::plans::Budget;
use super::{NOTIFY_KEYS, PgStore, WAKE_KEY_SQL, opt_ts, ts, u32_col};
use crate::account::OrgId;
use crate::account::plans::UNLIMITED;
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
use chrono::{DateTime, Utc};
use chronos_proto::{Delivery, Execution, Job};
use std::borrow::Borrow;
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

pub(super) struct Sql {
    get: String,
    list: String,
    job_exists: String,
    schedule_exists: String,
    executions_of_job: String,
    executions_of_schedule: String,
    /// Inserts for an organization on the `unlimited` plan only (one probe
    /// of its row); for another, inserts nothing.
    insert: String,
    /// Inserts whatever the plan, retries capped at `$21`: the caller
    /// counts (`insert_counted`).
    insert_counted: String,
    key_holders: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let executions = |jobs: &str| {
            format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions
                 WHERE {jobs} AND ($3::uuid IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            )
        };
        Sql {
            get: format!("SELECT {JOB_COLUMNS} FROM jobs WHERE organization_id = $1 AND id = $2"),
            list: format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE organization_id = $1
                   AND ($2::text[] IS NULL OR status = ANY($2))
                   AND ($3::text IS NULL OR handler = $3)
                   AND ($4::text IS NULL OR queue = $4)
                   AND (NOT $5::bool OR schedule_id IS NULL)
                   AND ($6::uuid IS NULL OR schedule_id = $6)
                   AND ($7::uuid IS NULL OR id < $7)
                 ORDER BY id DESC
                 LIMIT $8"
            ),
            job_exists: "SELECT EXISTS (SELECT 1 FROM jobs WHERE organization_id = $1 AND id = $2)"
                .into(),
            schedule_exists:
                "SELECT EXISTS (SELECT 1 FROM schedules WHERE organization_id = $1 AND id = $2)"
                    .into(),
            // The organization ($1) was checked with the job; `$1::uuid IS
            // NOT NULL` only types it, so both listings take the same
            // parameters.
            executions_of_job: executions("$1::uuid IS NOT NULL AND job_id = $2"),
            executions_of_schedule: executions(
                "job_id IN (SELECT id FROM jobs WHERE organization_id = $1 AND schedule_id = $2)",
            ),
            insert: clock.pg(insert_statement(true)),
            insert_counted: clock.pg(insert_statement(false)),
            key_holders: "SELECT idempotency_key, id FROM jobs
                 WHERE organization_id = $1 AND idempotency_key = ANY($2)"
                .into(),
        }
    }
}

/// `queues_used`, a CTE of the queues (`name`, `flow`) of the organization
/// `$1` named by `names` (a query), share-locked so that a change to a
/// queue's limits (which locks its row for update, then rewrites its jobs'
/// flow) sees the jobs this statement inserts, or this statement sees the
/// change. In id order, the order the lease locks them in.
pub(super) fn queues_used(names: &str) -> String {
    format!(
        "queues_used AS (
             SELECT name, flow, retries FROM queues
             WHERE organization_id = $1 AND name IN ({names})
             ORDER BY id
             FOR KEY SHARE
         )"
    )
}

/// The batch insert: one statement for the whole batch, columns as arrays,
/// one NOTIFY naming whose polls to wake. `unlimited_only`: for an
/// organization on the `unlimited` plan, and nothing for another (whose
/// jobs are counted: `insert_counted`, retries capped at `$21`).
fn insert_statement(unlimited_only: bool) -> String {
    format!(
        "WITH input AS (
             SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                                  $6::text[], $7::int4[], $8::text[], $9::jsonb[],
                                  $10::timestamptz[], $11::float8[], $12::int4[],
                                  $13::int4[], $14::uuid[], $15::text[], $16::text[],
                                  $17::text[], $18::uuid[], $19::uuid[], $20::bool[])
                 WITH ORDINALITY AS i (in_id, in_name, in_handler, in_payload, in_queue,
                     in_priority, in_delivery_type, in_delivery, in_at, in_delay,
                     in_max_retries, in_timeout, in_schedule_id, in_key, in_host,
                     in_concurrency_key, in_fan_out, in_callback_queue, in_every_attempt,
                     in_n)
         ), {queues}, created AS (
             INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                 priority, status, delivery_type, delivery, run_at, max_retries,
                 timeout_seconds, schedule_id, idempotency_key, target_host, flow,
                 concurrency_key, created_at, updated_at, fan_out_id, callback_queue_id,
                 callback_every_attempt)
             SELECT in_id, $1, in_name, in_handler, in_payload, in_queue, in_priority,
                    CASE WHEN t.run_at <= now() THEN '{queued}' ELSE '{scheduled}' END,
                    in_delivery_type, in_delivery, t.run_at,
                    {retries}, in_timeout,
                    in_schedule_id, in_key, in_host,
                    coalesce(q.flow, chronos_queue_not_found(in_queue)),
                    in_concurrency_key, now(), now(), in_fan_out, in_callback_queue,
                    in_every_attempt
             FROM input LEFT JOIN queues_used q ON q.name = in_queue CROSS JOIN LATERAL
                  (SELECT COALESCE(in_at, now() + make_interval(secs => in_delay))
                       AS run_at) t
             {guard}
             -- Request order, so a key used twice in a batch stays with the first.
             ORDER BY in_n
             ON CONFLICT (organization_id, idempotency_key)
                 WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING {JOB_COLUMNS}, organization_id, delivery_type
         ), keys AS (
             SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM created WHERE status = '{queued}'
         )
         SELECT created.*, (SELECT {NOTIFY_KEYS} FROM keys) AS notified FROM created",
        queued = waiting_status(true).as_str(),
        scheduled = waiting_status(false).as_str(),
        queues = queues_used("SELECT in_queue FROM input"),
        guard = if unlimited_only {
            format!(
                "WHERE NOT EXISTS (SELECT 1 FROM organizations
                                       WHERE id = $1 AND plan <> '{UNLIMITED}')"
            )
        } else {
            String::new()
        },
        retries = if unlimited_only {
            "coalesce(in_max_retries, q.retries)"
        } else {
            "least(coalesce(in_max_retries, q.retries), $21::int4)"
        },
    )
}

pub(super) fn job_from_row(row: &Row) -> Result<Job> {
    let status: String = row.try_get("status")?;
    let delivery: serde_json::Value = row.try_get("delivery")?;
    Ok(Job {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        handler: row.try_get("handler")?,
        payload: row.try_get("payload")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        queue: row.try_get("queue")?,
        priority: row.try_get("priority")?,
        delivery: serde_json::from_value::<Delivery>(delivery)
            .map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?,
        run_at: ts(row.try_get("run_at")?),
        attempt: u32_col(row, "attempt")?,
        max_retries: u32_col(row, "max_retries")?,
        timeout: u32_col(row, "timeout_seconds")?,
        schedule_id: row.try_get("schedule_id")?,
        fire_at: opt_ts(row, "fire_at")?,
        idempotency_key: row.try_get("idempotency_key")?,
        held_reason: row.try_get("held_reason")?,
        fan_out_id: row.try_get("fan_out_id")?,
        callback_queue_id: row.try_get("callback_queue_id")?,
        concurrency_key: row.try_get("concurrency_key")?,
        result: row.try_get("result")?,
        last_error: row.try_get("last_error")?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
        finished_at: opt_ts(row, "finished_at")?,
    })
}

fn execution_from_row(row: &Row) -> Result<Execution> {
    let status: String = row.try_get("status")?;
    let started: DateTime<Utc> = row.try_get("started_at")?;
    let finished: Option<DateTime<Utc>> = row.try_get("finished_at")?;
    let response_body: Option<String> = row.try_get("response_body")?;
    let encoding: Option<&str> = row.try_get("response_body_encoding")?;
    Ok(Execution {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        attempt: u32_col(row, "attempt")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        worker_id: row.try_get("worker_id")?,
        http_status: row
            .try_get::<_, Option<i32>>("http_status")?
            .map(|s| s as u16),
        response_body_encoding: response_body.is_some().then(|| body_encoding(encoding)),
        response_body,
        response_truncated: row.try_get("response_truncated")?,
        error: row.try_get("error")?,
        duration_ms: finished.map(|f| (f - started).num_milliseconds().max(0) as u64),
        started_at: ts(started),
        finished_at: finished.map(ts),
    })
}

#[async_trait]
impl JobStore for PgStore {
    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.jobs.get).await?;
        client
            .query_opt(&stmt, &[&org.0, &id])
            .await?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    async fn list_jobs(
        &self,
        org: OrgId,
        filter: &JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.jobs.list).await?;
        let statuses: Option<Vec<&str>> = (!filter.statuses.is_empty())
            .then(|| filter.statuses.iter().map(|s| s.as_str()).collect());
        let (one_off, schedule_id) = match filter.schedule {
            ScheduleFilter::Any => (false, None),
            ScheduleFilter::None => (true, None),
            ScheduleFilter::Id(id) => (false, Some(id)),
        };
        let rows = client
            .query(
                &stmt,
                &[
                    &org.0,
                    &statuses,
                    &filter.handler,
                    &filter.queue,
                    &one_off,
                    &schedule_id,
                    &page.before,
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(jobs, page.limit, |j| j.id))
    }

    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>> {
        let client = self.pool.get().await?;
        let sql = &self.sql.jobs;
        let (exists, list) = match of {
            ExecutionsOf::Job(_) => (&sql.job_exists, &sql.executions_of_job),
            ExecutionsOf::Schedule(_) => (&sql.schedule_exists, &sql.executions_of_schedule),
        };
        let exists: bool = client.query_one(exists, &[&org.0, &of.id()]).await?.get(0);
        if !exists {
            return Ok(None);
        }
        let stmt = client.prepare_cached(list).await?;
        let rows = client
            .query(
                &stmt,
                &[&org.0, &of.id(), &page.before, &(i64::from(page.limit) + 1)],
            )
            .await?;
        let items = rows
            .iter()
            .map(execution_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Page::from_rows(items, page.limit, |e| e.id)))
    }
}

/// Inserts jobs in one statement ([`crate::store::LeaseStore::create_jobs`]);
/// for an organization on a limited plan, in a transaction that counts
/// them ([`insert_counted`]).
pub(super) async fn insert(
    store: &PgStore,
    org: OrgId,
    jobs: Vec<NewJob>,
) -> Result<Vec<Inserted>> {
    let mut client = store.pool.get().await?;
    if let Some(done) = insert_rows(store, &client, org, &jobs, None).await? {
        return Ok(done);
    }
    let tx = client.transaction().await?;
    let done = insert_counted(store, &tx, org, &jobs, PastQuota::Refuse).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`insert`] in a transaction the caller commits.
pub(super) async fn insert_on(
    store: &PgStore,
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    jobs: &[NewJob],
    past: PastQuota,
) -> Result<Vec<Inserted>> {
    match insert_rows(store, tx, org, jobs, None).await? {
        Some(done) => Ok(done),
        None => insert_counted(store, tx, org, jobs, past).await,
    }
}

/// Inserts jobs for an organization on a plan other than `unlimited`, in
/// the caller's transaction: its retries capped by the plan, and, if the
/// plan limits jobs or the domains they push to, as many as its quota and
/// each unverified domain's day have room for (all with
/// [`PastQuota::Count`]), counted. The counts stay locked until the
/// transaction ends, so two servers can't both spend the last of them.
pub(super) async fn insert_counted(
    store: &PgStore,
    client: &impl deadpool_postgres::GenericClient,
    org: OrgId,
    jobs: &[NewJob],
    past: PastQuota,
) -> Result<Vec<Inserted>> {
    let mut budget = Budget::open(store, client, org).await?;
    let cap = Some(
        budget
            .tally
            .plan
            .max_retries
            .map(|m| m.min(i32::MAX as u32) as i32),
    );
    let hosts: Vec<Option<String>> = jobs.iter().map(|j| target_host(&j.delivery)).collect();
    let mut outcomes: Vec<Option<Inserted>> = vec![None; jobs.len()];
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    // Room is given job by job (a job's domain may have its own limit),
    // then the jobs given it are inserted together. One whose key is held
    // inserts nothing and gives its room back: the jobs refused for want
    // of it try again.
    loop {
        let (mut given, mut refused) = (Vec::new(), Vec::new());
        for &i in &pending {
            let host = hosts[i].as_deref();
            match budget.room(store, client, host, 1).await? {
                (0, Some(refusal)) if past == PastQuota::Refuse => {
                    outcomes[i] = Some(Inserted::OverQuota(refusal));
                    refused.push(i);
                }
                _ => {
                    budget.spend(host, 1);
                    given.push(i);
                }
            }
        }
        if given.is_empty() {
            break;
        }
        let batch: Vec<&NewJob> = given.iter().map(|&i| &jobs[i]).collect();
        let done = insert_rows(store, client, org, &batch, cap).await?;
        let mut returned = false;
        for (&i, done) in given.iter().zip(done.unwrap_or_default()) {
            if !matches!(done, Inserted::Created(_)) {
                budget.spend(hosts[i].as_deref(), -1);
                returned = true;
            }
            outcomes[i] = Some(done);
        }
        if !returned || refused.is_empty() {
            break;
        }
        pending = refused;
    }
    // A refused job whose key is held answers with that job.
    let keys: Vec<&str> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Some(Inserted::OverQuota(_))))
        .filter_map(|(job, _)| job.idempotency_key.as_deref())
        .collect();
    let holders = key_holders(store, client, org, &keys).await?;
    budget.close(store, client).await?;
    jobs.iter()
        .zip(outcomes)
        .map(|(job, outcome)| {
            let held = job.idempotency_key.as_ref().and_then(|k| holders.get(k));
            match (outcome, held) {
                (Some(Inserted::OverQuota(_)), Some(&existing)) => {
                    Ok(Inserted::Conflict { existing })
                }
                (Some(outcome), _) => Ok(outcome),
                (None, _) => Err(StoreError::Other(
                    "a job was neither inserted nor refused".into(),
                )),
            }
        })
        .collect()
}

/// Inserts jobs on `client`. `capped`: `None` for the statement of
/// organizations on the `unlimited` plan, which answers `None` when the
/// organization is on another (nothing was inserted); `Some(cap)` for the
/// statement that inserts whatever the plan, retries capped at `cap`.
async fn insert_rows<J: Borrow<NewJob> + Sync>(
    store: &PgStore,
    client: &impl deadpool_postgres::GenericClient,
    org: OrgId,
    jobs: &[J],
    capped: Option<Option<i32>>,
) -> Result<Option<Vec<Inserted>>> {
    let sql = match capped {
        None => &store.sql.jobs.insert,
        Some(_) => &store.sql.jobs.insert_counted,
    };
    let insert = client.prepare_cached(sql).await?;
    let mut outcomes: Vec<Option<Inserted>> = vec![None; jobs.len()];
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    // A key held by another job: report that job. Looped because the
    // holder may disappear between the insert and the look-up.
    for round in 0..3 {
        if pending.is_empty() {
            break;
        }
        let batch: Vec<&NewJob> = pending.iter().map(|&i| jobs[i].borrow()).collect();
        let columns = JobColumns::of(&batch)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &org.0,
            &columns.id,
            &columns.name,
            &columns.handler,
            &columns.payload,
            &columns.queue,
            &columns.priority,
            &columns.delivery_type,
            &columns.delivery,
            &columns.at,
            &columns.delay,
            &columns.max_retries,
            &columns.timeout,
            &columns.schedule_id,
            &columns.idempotency_key,
            &columns.target_host,
            &columns.concurrency_key,
            &columns.fan_out_id,
            &columns.callback_queue_id,
            &columns.every_attempt,
        ];
        if let Some(cap) = &capped {
            params.push(cap);
        }
        let rows = client
            .query(&insert, &params)
            .await
            .map_err(super::insert_error)?;
        // Nothing inserted by the first statement: perhaps the organization
        // is on a limited plan (asked only then, so it costs nothing when
        // jobs are inserted).
        if round == 0
            && rows.is_empty()
            && capped.is_none()
            && !jobs.is_empty()
            && super::plans::limited(store, client, org).await?
        {
            return Ok(None);
        }
        let mut created = HashMap::with_capacity(rows.len());
        for row in &rows {
            let job = job_from_row(row)?;
            created.insert(job.id, job);
        }
        let refused: Vec<&str> = pending
            .iter()
            .map(|&i| jobs[i].borrow())
            .filter(|job| !created.contains_key(&job.id))
            .filter_map(|job| job.idempotency_key.as_deref())
            .collect();
        let holders = key_holders(store, client, org, &refused).await?;
        pending.retain(|&i| {
            let job: &NewJob = jobs[i].borrow();
            if let Some(created) = created.remove(&job.id) {
                outcomes[i] = Some(Inserted::Created(Box::new(created)));
                return false;
            }
            match job.idempotency_key.as_ref().and_then(|k| holders.get(k)) {
                Some(&existing) => {
                    outcomes[i] = Some(Inserted::Conflict { existing });
                    false
                }
                None => true,
            }
        });
    }
    if !pending.is_empty() {
        return Err(StoreError::Other(
            "idempotency key kept changing hands; try again".into(),
        ));
    }
    Ok(Some(outcomes.into_iter().flatten().collect()))
}

/// The jobs holding these idempotency keys, by key.
pub(super) async fn key_holders(
    store: &PgStore,
    client: &impl deadpool_postgres::GenericClient,
    org: OrgId,
    keys: &[&str],
) -> Result<HashMap<String, Uuid>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client.prepare_cached(&store.sql.jobs.key_holders).await?;
    Ok(client
        .query(&stmt, &[&org.0, &keys])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A batch of new jobs as one array per column, for `unnest`.
struct JobColumns<'a> {
    id: Vec<Uuid>,
    name: Vec<&'a str>,
    handler: Vec<Option<&'a str>>,
    payload: Vec<&'a serde_json::Value>,
    queue: Vec<&'a str>,
    priority: Vec<i32>,
    delivery_type: Vec<&'static str>,
    delivery: Vec<serde_json::Value>,
    /// A fixed time, or…
    at: Vec<Option<DateTime<Utc>>>,
    /// …seconds from the database's now.
    delay: Vec<f64>,
    max_retries: Vec<Option<i32>>,
    timeout: Vec<i32>,
    schedule_id: Vec<Option<Uuid>>,
    idempotency_key: Vec<Option<&'a str>>,
    target_host: Vec<Option<String>>,
    concurrency_key: Vec<Option<&'a str>>,
    fan_out_id: Vec<Option<Uuid>>,
    callback_queue_id: Vec<Option<Uuid>>,
    every_attempt: Vec<bool>,
}

impl<'a> JobColumns<'a> {
    fn of(jobs: &[&'a NewJob]) -> Result<Self> {
        let n = jobs.len();
        let mut c = JobColumns {
            id: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            handler: Vec::with_capacity(n),
            payload: Vec::with_capacity(n),
            queue: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            delivery_type: Vec::with_capacity(n),
            delivery: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            delay: Vec::with_capacity(n),
            max_retries: Vec::with_capacity(n),
            timeout: Vec::with_capacity(n),
            schedule_id: Vec::with_capacity(n),
            idempotency_key: Vec::with_capacity(n),
            target_host: Vec::with_capacity(n),
            concurrency_key: Vec::with_capacity(n),
            fan_out_id: Vec::with_capacity(n),
            callback_queue_id: Vec::with_capacity(n),
            every_attempt: Vec::with_capacity(n),
        };
        for job in jobs {
            let (at, delay) = match job.run_at {
                RunAt::Now => (None, 0.0),
                RunAt::After(d) => (None, d.as_secs_f64()),
                RunAt::At(t) => (Some(t.0), 0.0),
            };
            c.id.push(job.id);
            c.fan_out_id.push(job.follow.fan_out_id);
            c.callback_queue_id.push(job.follow.callback_queue_id);
            c.every_attempt.push(job.follow.every_attempt);
            c.name.push(&job.name);
            c.handler.push(job.handler.as_deref());
            c.payload.push(&job.payload);
            c.queue.push(&job.queue);
            c.priority.push(job.priority);
            c.delivery_type.push(job.delivery.kind());
            c.delivery.push(
                serde_json::to_value(&job.delivery)
                    .map_err(|e| StoreError::Other(format!("delivery: {e}")))?,
            );
            c.target_host.push(target_host(&job.delivery));
            c.at.push(at);
            c.delay.push(delay);
            c.max_retries.push(job.max_retries.map(|n| n as i32));
            c.timeout.push(job.timeout_seconds as i32);
            c.schedule_id.push(job.schedule_id);
            c.idempotency_key.push(job.idempotency_key.as_deref());
            c.concurrency_key.push(job.concurrency_key.as_deref());
        }
        Ok(c)
    }
}
