//! The PostgreSQL store: tokio-postgres over a deadpool pool.
//!
//! Statements go through `prepare_cached`, so each connection parses each
//! statement once. `now()` is PostgreSQL's clock; every "is it due yet"
//! decision is made here, in SQL.

use super::{
    API_KEY_COLUMNS, EXECUTION_COLUMNS, JOB_COLUMNS, SCHEDULE_COLUMNS, SIGNING_SECRET_COLUMNS,
};
use super::{
    ApiKeyRecord, CancelOutcome, Expired, JobFilter, LeaseOutcome, NewApiKey, NewJob, OrgId,
    Organization, Page, PageRequest, Promoted, Result, RetryOutcome, RunAt, ScheduleFilter, Store,
    StoreError, WakeKey, status_list,
};
use super::{
    AttemptEnd, Handoff, HeldLease, HttpResponse, Inserted, MAX_LEASE_BATCH, Outcome, PushSlots,
    SigningSecretRecord, Taker, WorkerRegistration, lease_slots, target_host,
};
use super::{
    ExecutionsOf, Fired, PlanFn, ScheduleRecord, enum_parse, enum_text, json_parse, json_value,
};
use crate::lease::state::{
    AfterFailure, Failure, GIVEN_UP, Transition, after_failure, waiting_status,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos_proto::{Delivery, Execution, Job, Lease, LeasedJob, Scope, Timestamp};
use chronos_proto::{JobStatus, ScheduleStatus};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// Versioned migrations, applied in order. A migration is never edited once
/// released; a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("postgres/migrations/0001_initial.sql"),
    ),
    (
        2,
        "queue indexes",
        include_str!("postgres/migrations/0002_queue_indexes.sql"),
    ),
    (
        3,
        "signing secrets",
        include_str!("postgres/migrations/0003_signing_secrets.sql"),
    ),
    (
        4,
        "push targets",
        include_str!("postgres/migrations/0004_push_targets.sql"),
    ),
    (
        5,
        "schedules",
        include_str!("postgres/migrations/0005_schedules.sql"),
    ),
];

/// The most schedules one scheduler pass fires.
const FIRE_BATCH: usize = 100;

/// Advisory lock key held while migrating or bootstrapping, so that replicas
/// starting together take turns. ("chronos" in ASCII, truncated to 63 bits.)
const SCHEMA_LOCK: i64 = 0x0063_6872_6f6e_6f73;

/// The channel on which a transaction that queues jobs tells every server
/// process whose polls to wake: a comma-separated list of
/// `<organization id>/<handler>` and `push`, or `*` for everyone.
pub const NOTIFY_CHANNEL: &str = "chronos_jobs";

/// The channel on which a cancel tells every server process the job's id,
/// so the worker session holding it can tell its worker.
pub const CANCEL_CHANNEL: &str = "chronos_cancel";

/// A job row's wake key, as [`NOTIFY_CHANNEL`] carries it.
const WAKE_KEY_SQL: &str = "CASE WHEN delivery_type = 'push' THEN 'push' \
     ELSE organization_id::text || '/' || handler END";

/// Sends the `key` column of a set of rows as one notification (`*` when the
/// list would pass PostgreSQL's 8000-byte limit); nothing for no rows.
const NOTIFY_KEYS: &str = "CASE WHEN count(*) = 0 THEN NULL \
     WHEN sum(length(key) + 1) > 7900 THEN pg_notify('chronos_jobs', '*') \
     ELSE pg_notify('chronos_jobs', string_agg(key, ',')) END";

mod listen;

pub struct PgStore {
    pool: Pool,
    /// For the LISTEN connection, which lives outside the pool.
    config: tokio_postgres::Config,
}

impl PgStore {
    /// Builds a pool for `url` (`postgres://user@host:port/db`). Connections
    /// are opened lazily; call [`Store::ping`] to check the server answers.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            // A request waits at most this long for a connection, then fails
            // cleanly instead of hanging while the database is away.
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Other(format!("database pool: {e}")))?;
        Ok(PgStore { pool, config })
    }
}

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp(t)
}

fn u32_col(row: &Row, col: &str) -> Result<u32> {
    let v: i32 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn job_from_row(row: &Row) -> Result<Job> {
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
        fire_at: row.try_get::<_, Option<DateTime<Utc>>>("fire_at")?.map(ts),
        idempotency_key: row.try_get("idempotency_key")?,
        result: row.try_get("result")?,
        last_error: row.try_get("last_error")?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
        finished_at: row
            .try_get::<_, Option<DateTime<Utc>>>("finished_at")?
            .map(ts),
    })
}

fn execution_from_row(row: &Row) -> Result<Execution> {
    let status: String = row.try_get("status")?;
    let started: DateTime<Utc> = row.try_get("started_at")?;
    let finished: Option<DateTime<Utc>> = row.try_get("finished_at")?;
    Ok(Execution {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        attempt: u32_col(row, "attempt")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        worker_id: row.try_get("worker_id")?,
        http_status: row
            .try_get::<_, Option<i32>>("http_status")?
            .map(|s| s as u16),
        response_body: row.try_get("response_body")?,
        response_truncated: row.try_get("response_truncated")?,
        error: row.try_get("error")?,
        duration_ms: finished.map(|f| (f - started).num_milliseconds().max(0) as u64),
        started_at: ts(started),
        finished_at: finished.map(ts),
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
    })
}

fn org_from_row(row: &Row) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(row.try_get("id")?),
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: ts(row.try_get("created_at")?),
    })
}

fn scope_strings(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_string()).collect()
}

async fn insert_key(
    client: &impl deadpool_postgres::GenericClient,
    key: &NewApiKey,
) -> Result<Row> {
    let sql = format!(
        "INSERT INTO api_keys (id, organization_id, name, secret_sha256, scopes) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {API_KEY_COLUMNS}"
    );
    Ok(client
        .query_one(
            &sql,
            &[
                &key.id,
                &key.organization_id.0,
                &key.name,
                &key.secret_sha256,
                &scope_strings(&key.scopes),
            ],
        )
        .await?)
}

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Held until commit: a second replica waits here, then finds nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS chronos_migrations (
                 version    bigint PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let done: Vec<i64> = tx
            .query("SELECT version FROM chronos_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        let mut applied = Vec::new();
        for &(version, name, sql) in MIGRATIONS {
            if done.contains(&version) {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO chronos_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await?;
            applied.push(version);
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM organizations)", &[])
            .await?
            .get(0);
        if any {
            return Ok(None);
        }
        let org = tx
            .query_one(
                "INSERT INTO organizations (id, slug, name) VALUES ($1, 'default', 'Default') \
                 RETURNING id, slug, name, created_at",
                &[&admin_key.organization_id.0],
            )
            .await?;
        insert_key(&tx, &admin_key).await?;
        tx.commit().await?;
        Ok(Some(org_from_row(&org)?))
    }

    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $3) \
                 RETURNING id, slug, name, created_at",
                &[&Uuid::now_v7(), &slug, &name],
            )
            .await?;
        org_from_row(&row)
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                "SELECT id, slug, name, created_at FROM organizations WHERE slug = $1",
                &[&slug],
            )
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord> {
        let client = self.pool.get().await?;
        api_key_from_row(&insert_key(&client, &key).await?)
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
            ))
            .await?;
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
            .query(
                &format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE organization_id = $1 \
                     ORDER BY created_at, id"
                ),
                &[&org.0],
            )
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) \
                     WHERE organization_id = $1 AND id = $2 RETURNING {API_KEY_COLUMNS}"
                ),
                &[&org.0, &id],
            )
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO signing_secrets (id, organization_id, name, secret)
                     VALUES ($1, $2, $3, $4) RETURNING {SIGNING_SECRET_COLUMNS}"
                ),
                &[&id, &org.0, &name, &secret],
            )
            .await?;
        signing_secret_from_row(&row)
    }

    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                     WHERE organization_id = $1 AND id = $2"
                ),
                &[&org.0, &id],
            )
            .await?
            .map(|r| signing_secret_from_row(&r))
            .transpose()
    }

    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        client
            .query(
                &format!(
                    "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                     WHERE organization_id = $1 ORDER BY id DESC"
                ),
                &[&org.0],
            )
            .await?
            .iter()
            .map(signing_secret_from_row)
            .collect()
    }

    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "UPDATE signing_secrets
                     SET previous_secret = secret,
                         previous_expires_at = now() + make_interval(secs => $4),
                         secret = $3, rotated_at = now()
                     WHERE organization_id = $1 AND id = $2
                     RETURNING {SIGNING_SECRET_COLUMNS}"
                ),
                &[&org.0, &id, &secret, &window.as_secs_f64()],
            )
            .await?
            .map(|r| signing_secret_from_row(&r))
            .transpose()
    }

    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        let client = self.pool.get().await?;
        // One statement for the whole batch: columns as arrays, one NOTIFY
        // naming whose polls to wake.
        let insert = client
            .prepare_cached(&format!(
                "WITH input AS (
                     SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                                          $6::text[], $7::int4[], $8::text[], $9::jsonb[],
                                          $10::timestamptz[], $11::float8[], $12::int4[],
                                          $13::int4[], $14::uuid[], $15::text[], $16::text[])
                         WITH ORDINALITY AS i (in_id, in_name, in_handler, in_payload, in_queue,
                             in_priority, in_delivery_type, in_delivery, in_at, in_delay,
                             in_max_retries, in_timeout, in_schedule_id, in_key, in_host, in_n)
                 ), created AS (
                     INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                         priority, status, delivery_type, delivery, run_at, max_retries,
                         timeout_seconds, schedule_id, idempotency_key, target_host)
                     SELECT in_id, $1, in_name, in_handler, in_payload, in_queue, in_priority,
                            CASE WHEN t.run_at <= now() THEN '{queued}' ELSE '{scheduled}' END,
                            in_delivery_type, in_delivery, t.run_at, in_max_retries, in_timeout,
                            in_schedule_id, in_key, in_host
                     FROM input CROSS JOIN LATERAL
                          (SELECT COALESCE(in_at, now() + make_interval(secs => in_delay))
                               AS run_at) t
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
            ))
            .await?;
        let mut outcomes: Vec<Option<Inserted>> = vec![None; jobs.len()];
        let mut pending: Vec<usize> = (0..jobs.len()).collect();
        // A key held by another job: report that job. Looped because the
        // holder may disappear between the insert and the look-up.
        for _ in 0..3 {
            if pending.is_empty() {
                break;
            }
            let batch: Vec<&NewJob> = pending.iter().map(|&i| &jobs[i]).collect();
            let columns = JobColumns::of(&batch)?;
            let rows = client
                .query(
                    &insert,
                    &[
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
                    ],
                )
                .await?;
            let mut created = HashMap::with_capacity(rows.len());
            for row in &rows {
                let job = job_from_row(row)?;
                created.insert(job.id, job);
            }
            let refused: Vec<&str> = pending
                .iter()
                .filter(|&&i| !created.contains_key(&jobs[i].id))
                .filter_map(|&i| jobs[i].idempotency_key.as_deref())
                .collect();
            let holders = key_holders(&client, org, &refused).await?;
            pending.retain(|&i| {
                let job = &jobs[i];
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
        Ok(outcomes.into_iter().flatten().collect())
    }

    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff> {
        let client = self.pool.get().await?;
        let lease = Transition::Lease;
        // `ahead`: is a job of this handler already queued? Then this one
        // queues behind it instead of being leased.
        let stmt = client
            .prepare_cached(&format!(
                "WITH ahead AS (
                     SELECT EXISTS (SELECT 1 FROM jobs
                                    WHERE organization_id = $2 AND status IN {from}
                                      AND delivery_type = 'pull' AND handler = $4) AS busy
                 ), created AS (
                     INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                         priority, status, delivery_type, delivery, run_at, max_retries,
                         timeout_seconds, idempotency_key,
                         attempt, lease_token, lease_expires_at, worker_id)
                     SELECT $1, $2, $3, $4, $5, $6, $7,
                            CASE WHEN busy THEN '{queued}' ELSE '{running}' END,
                            'pull', $8, now(), $9, $10::int4, $11,
                            CASE WHEN busy THEN 0 ELSE 1 END,
                            CASE WHEN busy THEN NULL ELSE gen_random_uuid() END,
                            CASE WHEN busy THEN NULL
                                 ELSE now() + make_interval(secs => $10::int4) END,
                            CASE WHEN busy THEN NULL ELSE $12 END
                     FROM ahead
                     ON CONFLICT (organization_id, idempotency_key)
                         WHERE idempotency_key IS NOT NULL DO NOTHING
                     RETURNING {JOB_COLUMNS}, lease_token, lease_expires_at,
                               organization_id, delivery_type
                 ), opened AS (
                     INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id)
                     SELECT $13, id, attempt, 'running', lease_token, $12
                     FROM created WHERE status = '{running}'
                 )
                 SELECT *, CASE WHEN status = '{queued}'
                                THEN pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) END AS notified
                 FROM created",
                from = status_list(lease.from()),
                queued = waiting_status(true).as_str(),
                running = lease.to().as_str(),
            ))
            .await?;
        let delivery = serde_json::to_value(&job.delivery)
            .map_err(|e| StoreError::Other(format!("delivery: {e}")))?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &job.id,
                    &org.0,
                    &job.name,
                    &job.handler,
                    &job.payload,
                    &job.queue,
                    &job.priority,
                    &delivery,
                    &(job.max_retries as i32),
                    &(job.timeout_seconds as i32),
                    &job.idempotency_key,
                    &worker_id,
                    &Uuid::now_v7(),
                ],
            )
            .await?;
        let Some(row) = row else {
            // Only an idempotency key held by another job inserts nothing.
            let keys: Vec<&str> = job.idempotency_key.as_deref().into_iter().collect();
            return match key_holders(&client, org, &keys).await?.into_values().next() {
                Some(existing) => Ok(Handoff::Conflict { existing }),
                None => Err(StoreError::Other(
                    "idempotency key kept changing hands; try again".into(),
                )),
            };
        };
        let created = job_from_row(&row)?;
        Ok(match row.try_get::<_, Option<Uuid>>("lease_token")? {
            Some(token) => Handoff::Leased(Box::new(LeasedJob {
                job: created,
                lease: Lease {
                    token,
                    expires_at: ts(row.try_get("lease_expires_at")?),
                },
            })),
            None => Handoff::Queued(Box::new(created)),
        })
    }

    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE organization_id = $1 AND id = $2"
            ))
            .await?;
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
        let stmt = client
            .prepare_cached(&format!(
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
            ))
            .await?;
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

    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        let client = self.pool.get().await?;
        let t = Transition::Cancel;
        // One statement: the job and its open attempt change together.
        let stmt = client
            .prepare_cached(&format!(
                "WITH job AS (
                     UPDATE jobs SET status = '{to}', finished_at = now(), updated_at = now(),
                                     lease_expires_at = NULL
                     WHERE organization_id = $1 AND id = $2 AND status IN {from}
                     RETURNING {JOB_COLUMNS}
                 ), attempt AS (
                     UPDATE executions SET status = 'failed', error = 'job cancelled',
                                           finished_at = now()
                     WHERE job_id IN (SELECT id FROM job) AND status = 'running'
                 )
                 SELECT *, pg_notify('{CANCEL_CHANNEL}', id::text) AS notified FROM job",
                to = t.to().as_str(),
                from = status_list(t.from()),
            ))
            .await?;
        let row = client.query_opt(&stmt, &[&org.0, &id]).await?;
        if let Some(row) = row {
            return Ok(CancelOutcome::Cancelled(job_from_row(&row)?));
        }
        drop(client);
        // Not cancellable: every status outside `from` is a finished one.
        Ok(match self.job(org, id).await? {
            Some(job) => CancelOutcome::AlreadyFinished(job),
            None => CancelOutcome::NotFound,
        })
    }

    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>> {
        let client = self.pool.get().await?;
        let exists: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE organization_id = $1 AND id = $2)",
                    of.owner_table()
                ),
                &[&org.0, &of.id()],
            )
            .await?
            .get(0);
        if !exists {
            return Ok(None);
        }
        // Typed: a job's listing leaves the organization ($1) unused.
        let stmt = client
            .prepare_typed_cached(
                &format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions
                     WHERE {} AND ($3::uuid IS NULL OR id < $3)
                     ORDER BY id DESC LIMIT $4",
                    of.jobs_sql("$2", "$1"),
                ),
                &[Type::UUID, Type::UUID, Type::UUID, Type::INT8],
            )
            .await?;
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

    async fn promote_due_jobs(&self) -> Result<Promoted> {
        let client = self.pool.get().await?;
        let t = Transition::Promote;
        let stmt = client
            .prepare_cached(&format!(
                "WITH due AS (
                     SELECT id FROM jobs
                     WHERE status IN {from} AND run_at <= now()
                     ORDER BY run_at
                     LIMIT 1000
                     FOR UPDATE SKIP LOCKED
                 ), moved AS (
                     UPDATE jobs SET status = '{to}', updated_at = now()
                     FROM due WHERE jobs.id = due.id
                     RETURNING organization_id, handler, delivery_type
                 ), keys AS (
                     SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM moved
                 )
                 SELECT (SELECT count(*) FROM moved),
                        (SELECT string_agg(key, ',') FROM keys),
                        (SELECT {NOTIFY_KEYS} FROM keys),
                        (SELECT EXTRACT(EPOCH FROM min(run_at) - now())::float8
                         FROM jobs WHERE status IN {from} AND run_at > now())",
                from = status_list(t.from()),
                to = t.to().as_str(),
            ))
            .await?;
        let row = client.query_one(&stmt, &[]).await?;
        let count: i64 = row.get(0);
        let keys: Option<String> = row.get(1);
        let next: Option<f64> = row.get(3);
        Ok(Promoted {
            count: count as u64,
            woken: keys
                .and_then(|k| parse_wake_payload(&k))
                .unwrap_or_default(),
            next_due_in: next.map(|s| Duration::from_secs_f64(s.max(0.0))),
        })
    }

    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>> {
        let slots = lease_slots(takers, MAX_LEASE_BATCH);
        let mut leased: Vec<Vec<LeasedJob>> = vec![Vec::new(); takers.len()];
        if slots.is_empty() {
            return Ok(leased);
        }
        let client = self.pool.get().await?;
        let t = Transition::Lease;
        // One statement: pick the best queued jobs, skipping rows another
        // lease holds; number them best first; give the n-th to the n-th
        // slot's worker, marking it running with a new token and deadline;
        // open its execution (ids made here, UUIDv7, so they sort by time).
        // Jobs are picked per handler, so each pick reads the head of its
        // own range of the queued index in order: `handler = ANY($2)` would
        // sort every queued job of the handlers on each lease.
        let stmt = client
            .prepare_cached(&format!(
                "WITH next AS (
                     SELECT j.id, j.priority, j.run_at
                     FROM unnest($2::text[]) AS h (name) CROSS JOIN LATERAL (
                         SELECT id, priority, run_at FROM jobs
                         WHERE organization_id = $1 AND status IN {from}
                           AND delivery_type = 'pull' AND handler = h.name
                         ORDER BY priority DESC, run_at, id
                         LIMIT $3
                         FOR UPDATE SKIP LOCKED
                     ) j
                     ORDER BY j.priority DESC, j.run_at, j.id
                     LIMIT $3
                 ), numbered AS (
                     SELECT id, row_number() OVER (ORDER BY priority DESC, run_at, id) AS n
                     FROM next
                 ), slots AS (
                     SELECT * FROM unnest($4::text[], $5::uuid[])
                         WITH ORDINALITY AS s (slot_worker, slot_execution, slot)
                 ), leased AS (
                     UPDATE jobs SET status = '{to}', attempt = attempt + 1,
                                     lease_token = gen_random_uuid(),
                                     lease_expires_at = now() + make_interval(secs => timeout_seconds),
                                     worker_id = slots.slot_worker, updated_at = now()
                     FROM numbered JOIN slots ON slots.slot = numbered.n
                     WHERE jobs.id = numbered.id
                     RETURNING jobs.*, slots.slot, slots.slot_execution
                 ), opened AS (
                     INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id)
                     SELECT slot_execution, id, attempt, 'running', lease_token, worker_id
                     FROM leased
                 )
                 SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, slot FROM leased ORDER BY slot",
                from = status_list(t.from()),
                to = t.to().as_str(),
            ))
            .await?;
        let workers: Vec<Option<&str>> = slots
            .iter()
            .map(|&i| takers[i].worker_id.as_deref())
            .collect();
        let execution_ids: Vec<Uuid> = slots.iter().map(|_| Uuid::now_v7()).collect();
        let rows = client
            .query(
                &stmt,
                &[
                    &org.0,
                    &handlers,
                    &(slots.len() as i64),
                    &workers,
                    &execution_ids,
                ],
            )
            .await?;
        for row in rows {
            let slot: i64 = row.try_get("slot")?;
            let taker = slots[(slot - 1) as usize];
            leased[taker].push(LeasedJob {
                job: job_from_row(&row)?,
                lease: Lease {
                    token: row.try_get("lease_token")?,
                    expires_at: ts(row.try_get("lease_expires_at")?),
                },
            });
        }
        Ok(leased)
    }

    async fn insert_schedule(&self, org: OrgId, s: &ScheduleRecord) -> Result<ScheduleRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "WITH s AS (
                         INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                             template, catch_up, overlap, failure_notify, anchor_at, next_run_at,
                             created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $11)
                         RETURNING *
                     )
                     SELECT {SCHEDULE_COLUMNS} FROM s LEFT JOIN jobs lj ON lj.id = s.last_job_id"
                ),
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
                ],
            )
            .await?;
        schedule_from_row(&row)
    }

    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                     LEFT JOIN jobs lj ON lj.id = s.last_job_id
                     WHERE s.organization_id = $1 AND s.id = $2"
                ),
                &[&org.0, &id],
            )
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
                &format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                     LEFT JOIN jobs lj ON lj.id = s.last_job_id
                     WHERE s.organization_id = $1 AND ($2::text IS NULL OR s.status = $2)
                       AND ($3::uuid IS NULL OR s.id < $3)
                     ORDER BY s.id DESC LIMIT $4"
                ),
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
                &format!(
                    "WITH s AS (
                         UPDATE schedules SET name = $3, status = $4, timing = $5, timezone = $6,
                             template = $7, catch_up = $8, overlap = $9, failure_notify = $10,
                             anchor_at = $11, next_run_at = $12, waiting_fire_at = $13,
                             updated_at = now()
                         WHERE organization_id = $1 AND id = $2
                         RETURNING *
                     )
                     SELECT {SCHEDULE_COLUMNS} FROM s LEFT JOIN jobs lj ON lj.id = s.last_job_id"
                ),
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
                ],
            )
            .await?
            .map(|r| schedule_from_row(&r))
            .transpose()
    }

    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM schedules WHERE organization_id = $1 AND id = $2",
                &[&org.0, &id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE schedules SET last_run_at = now(), last_job_id = $3
                 WHERE organization_id = $1 AND id = $2",
                &[&org.0, &id, &job_id],
            )
            .await?;
        Ok(())
    }

    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Due, or holding a fire for a last job that has ended; another
        // process firing one holds its row, and this pass skips it.
        let due = tx
            .prepare_cached(&format!(
                "SELECT {SCHEDULE_COLUMNS}, s.organization_id, now() AS db_now
                 FROM schedules s LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.status = 'active'
                   AND (s.next_run_at <= now()
                        OR (s.waiting_fire_at IS NOT NULL
                            AND (lj.status IS NULL OR lj.status IN {finished})))
                 ORDER BY s.next_run_at
                 LIMIT {FIRE_BATCH}
                 FOR UPDATE OF s SKIP LOCKED",
                finished = status_list(&[
                    JobStatus::Completed,
                    JobStatus::Failed,
                    JobStatus::Cancelled
                ]),
            ))
            .await?;
        let insert = tx
            .prepare_cached(&format!(
                "WITH input AS (
                     SELECT * FROM unnest($2::uuid[], $3::timestamptz[]) AS i (in_id, in_fire_at)
                 ), created AS (
                     INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                         priority, status, delivery_type, delivery, run_at, max_retries,
                         timeout_seconds, schedule_id, target_host, fire_at)
                     SELECT in_id, $1, $4, $5, $6, $7, $8, '{queued}', $9, $10, now(), $11, $12,
                            $13, $14, in_fire_at
                     FROM input
                     ON CONFLICT DO NOTHING
                     RETURNING {JOB_COLUMNS}, organization_id, delivery_type
                 ), keys AS (
                     SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM created
                 )
                 SELECT created.*, (SELECT {NOTIFY_KEYS} FROM keys) AS notified FROM created",
                queued = waiting_status(true).as_str(),
            ))
            .await?;
        let advance = tx
            .prepare_cached(
                "UPDATE schedules SET next_run_at = $2, waiting_fire_at = $3,
                     last_run_at = CASE WHEN $4::uuid IS NULL THEN last_run_at ELSE now() END,
                     last_job_id = coalesce($4, last_job_id)
                 WHERE id = $1",
            )
            .await?;
        let rows = tx.query(&due, &[]).await?;
        let mut fired = Fired {
            schedules: rows.len(),
            ..Fired::default()
        };
        for row in &rows {
            let schedule = schedule_from_row(row)?;
            let org = OrgId(row.try_get("organization_id")?);
            let now = ts(row.try_get("db_now")?);
            let outcome = plan(&schedule, now);
            let mut last_job = None;
            if let Some(first) = outcome.fires.first() {
                // Every fire of a pass is the same template.
                let job = &first.job;
                let ids: Vec<Uuid> = outcome.fires.iter().map(|f| f.job.id).collect();
                let at: Vec<DateTime<Utc>> = outcome.fires.iter().map(|f| f.fire_at.0).collect();
                let delivery_type = job.delivery.kind();
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
                            &delivery_type,
                            &json_value("delivery", &job.delivery)?,
                            &(job.max_retries as i32),
                            &(job.timeout_seconds as i32),
                            &schedule.id,
                            &target_host(&job.delivery),
                        ],
                    )
                    .await?;
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
        let next: Option<f64> = tx
            .query_one(
                "SELECT extract(epoch FROM min(next_run_at) - now())::float8
                 FROM schedules WHERE status = 'active'",
                &[],
            )
            .await?
            .get(0);
        tx.commit().await?;
        fired.next_due_in = next.map(|s| Duration::from_secs_f64(s.max(0.0)));
        Ok(fired)
    }

    async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        if slots.max == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let t = Transition::Lease;
        // Read the best queued push jobs of hosts with room (no locks yet),
        // keep as many of each host as it has room for, then lock those,
        // skipping rows another server is leasing, and lease them. Hosts
        // already full are left out of the read, so their backlog never
        // fills it and jobs for other hosts are always seen.
        let stmt = client
            .prepare_cached(&format!(
                "WITH busy AS (
                     SELECT * FROM unnest($2::text[], $3::int4[]) AS b (b_host, b_calls)
                 ), candidates AS (
                     SELECT id, coalesce(target_host, '') AS host, priority, run_at FROM jobs
                     WHERE status IN {from} AND delivery_type = 'push'
                       AND coalesce(target_host, '') <> ALL($4::text[])
                     ORDER BY priority DESC, run_at, id
                     LIMIT $5
                 ), numbered AS (
                     SELECT c.id, c.priority, c.run_at,
                            row_number() OVER (PARTITION BY c.host
                                               ORDER BY c.priority DESC, c.run_at, c.id) AS n,
                            $6::int4 - coalesce(b.b_calls, 0) AS room
                     FROM candidates c LEFT JOIN busy b ON b.b_host = c.host
                 ), chosen AS (
                     SELECT id FROM numbered WHERE n <= room
                     ORDER BY priority DESC, run_at, id
                     LIMIT $1
                 ), locked AS (
                     SELECT id FROM jobs
                     WHERE id IN (SELECT id FROM chosen) AND status IN {from}
                     FOR UPDATE SKIP LOCKED
                 ), leased AS (
                     UPDATE jobs SET status = '{to}', attempt = attempt + 1,
                                     lease_token = gen_random_uuid(),
                                     lease_expires_at = now() + make_interval(
                                         secs => timeout_seconds + $7::float8),
                                     worker_id = NULL, updated_at = now()
                     FROM locked WHERE jobs.id = locked.id
                     RETURNING jobs.*
                 ), numbered_leases AS (
                     SELECT *, row_number() OVER (ORDER BY priority DESC, run_at, id) AS slot
                     FROM leased
                 ), opened AS (
                     INSERT INTO executions (id, job_id, attempt, status, lease_token)
                     SELECT ($8::uuid[])[slot], id, attempt, 'running', lease_token
                     FROM numbered_leases
                 )
                 SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, organization_id
                 FROM numbered_leases ORDER BY slot",
                from = status_list(t.from()),
                to = t.to().as_str(),
            ))
            .await?;
        let (hosts, calls): (Vec<&str>, Vec<i32>) = slots
            .busy
            .iter()
            .map(|(h, n)| (h.as_str(), *n as i32))
            .unzip();
        let full: Vec<&str> = slots
            .busy
            .iter()
            .filter(|(_, n)| *n >= slots.per_host)
            .map(|(h, _)| h.as_str())
            .collect();
        let max = slots.max.min(MAX_LEASE_BATCH as u32);
        let scan = i64::from(max) * 4 + 256;
        let execution_ids: Vec<Uuid> = (0..max).map(|_| Uuid::now_v7()).collect();
        let rows = client
            .query(
                &stmt,
                &[
                    &i64::from(max),
                    &hosts,
                    &calls,
                    &full,
                    &scan,
                    &(slots.per_host as i32),
                    &slots.lease_margin.as_secs_f64(),
                    &execution_ids,
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    OrgId(row.try_get("organization_id")?),
                    LeasedJob {
                        job: job_from_row(row)?,
                        lease: Lease {
                            token: row.try_get("lease_token")?,
                            expires_at: ts(row.try_get("lease_expires_at")?),
                        },
                    },
                ))
            })
            .collect()
    }

    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Job>>> {
        let mut client = self.pool.get().await?;
        // Each token is applied once; a repeat finds its lease gone, as it
        // would one after the other.
        let mut seen = HashSet::with_capacity(ends.len());
        let first: Vec<bool> = ends.iter().map(|e| seen.insert(e.token)).collect();
        let firsts = || ends.iter().zip(&first).filter(|(_, f)| **f).map(|(e, _)| e);
        let mut done: HashMap<Uuid, Job> = HashMap::new();

        let acks: Vec<(&AttemptEnd, Option<&serde_json::Value>)> = firsts()
            .filter_map(|e| match &e.outcome {
                Outcome::Ack(result) => Some((e, result.as_ref())),
                Outcome::Fail(_) => None,
            })
            .collect();
        if !acks.is_empty() {
            // One statement, committed on its own: no transaction around it,
            // which would cost two more round trips on the hottest path.
            let t = Transition::Ack;
            let stmt = client
                .prepare_cached(&format!(
                    "WITH input AS (
                         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[],
                                              $4::int4[], $5::text[], $6::bool[])
                             AS i (in_org, in_token, in_result,
                                   in_http_status, in_body, in_truncated)
                     ), done AS (
                         UPDATE jobs SET status = '{to}', result = in_result, finished_at = now(),
                                         updated_at = now(), lease_expires_at = NULL
                         FROM input
                         WHERE lease_token = in_token AND organization_id = in_org
                           AND status IN {from} AND lease_expires_at > now()
                         RETURNING {JOB_COLUMNS}, lease_token,
                                   in_http_status, in_body, in_truncated
                     ), closed AS (
                         -- A push target's answer rides along with the ack's
                         -- own row: no second pass over the input.
                         UPDATE executions SET status = 'completed', finished_at = now(),
                                               http_status = in_http_status, response_body = in_body,
                                               response_truncated = coalesce(in_truncated, false)
                         FROM done WHERE executions.lease_token = done.lease_token
                     )
                     SELECT * FROM done",
                    from = status_list(t.from()),
                    to = t.to().as_str(),
                ))
                .await?;
            let orgs: Vec<Uuid> = acks.iter().map(|(e, _)| e.org.0).collect();
            let tokens: Vec<Uuid> = acks.iter().map(|(e, _)| e.token).collect();
            let results: Vec<Option<&serde_json::Value>> = acks.iter().map(|(_, r)| *r).collect();
            let answers = Answers::of(acks.iter().map(|(e, _)| e.response.as_ref()));
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
                &orgs,
                &tokens,
                &results,
                &answers.status,
                &answers.body,
                &answers.truncated,
            ];
            for row in client.query(&stmt, &params).await? {
                done.insert(row.try_get("lease_token")?, job_from_row(&row)?);
            }
        }

        let fails: HashMap<Uuid, (&Failure, Option<&HttpResponse>)> = firsts()
            .filter_map(|e| match &e.outcome {
                Outcome::Fail(failure) => Some((e.token, (failure, e.response.as_ref()))),
                Outcome::Ack(_) => None,
            })
            .collect();
        if !fails.is_empty() {
            // Read, decide (the state machine), write: one transaction.
            let tx = client.transaction().await?;
            let stmt = tx
                .prepare_cached(&format!(
                    "SELECT id, attempt, attempt_base, max_retries, lease_token
                     FROM jobs JOIN unnest($1::uuid[], $2::uuid[]) AS i (in_org, in_token)
                          ON lease_token = in_token AND organization_id = in_org
                     WHERE status IN {from} AND lease_expires_at > now()
                     FOR UPDATE OF jobs",
                    from = status_list(Transition::Fail.from()),
                ))
                .await?;
            let (orgs, tokens): (Vec<Uuid>, Vec<Uuid>) = firsts()
                .filter(|e| fails.contains_key(&e.token))
                .map(|e| (e.org.0, e.token))
                .unzip();
            let mut ending = Vec::new();
            for row in tx.query(&stmt, &[&orgs, &tokens]).await? {
                let attempt = AttemptRow::read(&row)?;
                let (failure, response) = fails[&attempt.token];
                ending.push(Ending {
                    attempt,
                    failure: failure.clone(),
                    status: "failed",
                    response: response.cloned(),
                });
            }
            done.extend(end_attempts_badly(&tx, ending).await?);
            tx.commit().await?;
        }

        // The rest matched no current lease: lost, or never this organization's?
        let (orgs, tokens): (Vec<Uuid>, Vec<Uuid>) = firsts()
            .filter(|e| !done.contains_key(&e.token))
            .map(|e| (e.org.0, e.token))
            .unzip();
        let known: HashSet<Uuid> = if tokens.is_empty() {
            HashSet::new()
        } else {
            let stmt = client
                .prepare_cached(
                    "SELECT e.lease_token FROM executions e
                     JOIN unnest($1::uuid[], $2::uuid[]) AS i (in_org, in_token)
                          ON e.lease_token = in_token
                     JOIN jobs j ON j.id = e.job_id AND j.organization_id = in_org",
                )
                .await?;
            client
                .query(&stmt, &[&orgs, &tokens])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        Ok(ends
            .iter()
            .zip(first)
            .map(|(e, first)| match done.get(&e.token) {
                Some(job) if first => LeaseOutcome::Done(job.clone()),
                Some(_) => LeaseOutcome::Lost,
                None if known.contains(&e.token) => LeaseOutcome::Lost,
                None => LeaseOutcome::Unknown,
            })
            .collect())
    }

    async fn extend_lease(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3),
                                 updated_at = now()
                 WHERE organization_id = $1 AND lease_token = $2 AND status IN {from}
                   AND lease_expires_at > now()
                 RETURNING lease_token, lease_expires_at",
                from = status_list(Transition::Ack.from()),
            ))
            .await?;
        match client
            .query_opt(&stmt, &[&org.0, &token, &by.as_secs_f64()])
            .await?
        {
            Some(row) => Ok(LeaseOutcome::Done(Lease {
                token: row.try_get("lease_token")?,
                expires_at: ts(row.try_get("lease_expires_at")?),
            })),
            None => lease_miss(&client, org, token).await,
        }
    }

    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Job>> {
        let client = self.pool.get().await?;
        let t = Transition::Release;
        let stmt = client
            .prepare_cached(&format!(
                "WITH back AS (
                     UPDATE jobs SET status = '{to}', attempt_base = attempt_base + 1,
                                     lease_expires_at = NULL, updated_at = now()
                     WHERE organization_id = $1 AND lease_token = $2 AND status IN {from}
                       AND lease_expires_at > now()
                     RETURNING {JOB_COLUMNS}, organization_id, delivery_type
                 ), closed AS (
                     UPDATE executions SET status = 'released', finished_at = now()
                     WHERE lease_token = $2 AND job_id IN (SELECT id FROM back)
                 )
                 SELECT *, pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) AS notified FROM back",
                from = status_list(t.from()),
                to = t.to().as_str(),
            ))
            .await?;
        match client.query_opt(&stmt, &[&org.0, &token]).await? {
            Some(row) => Ok(LeaseOutcome::Done(job_from_row(&row)?)),
            None => lease_miss(&client, org, token).await,
        }
    }

    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        let client = self.pool.get().await?;
        let t = Transition::Retry;
        let stmt = client
            .prepare_cached(&format!(
                "WITH again AS (
                     UPDATE jobs SET status = '{to}', run_at = now(), attempt_base = attempt,
                                     result = NULL, finished_at = NULL, lease_expires_at = NULL,
                                     updated_at = now()
                     WHERE organization_id = $1 AND id = $2 AND status IN {from}
                     RETURNING {JOB_COLUMNS}, organization_id, delivery_type
                 )
                 SELECT *, pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) AS notified FROM again",
                from = status_list(t.from()),
                to = t.to().as_str(),
            ))
            .await?;
        if let Some(row) = client.query_opt(&stmt, &[&org.0, &id]).await? {
            return Ok(RetryOutcome::Retried(job_from_row(&row)?));
        }
        drop(client);
        Ok(match self.job(org, id).await? {
            Some(job) => RetryOutcome::NotRetryable(job),
            None => RetryOutcome::NotFound,
        })
    }

    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT j.id, j.attempt, j.attempt_base, j.max_retries, j.timeout_seconds,
                        j.lease_token, j.lease_expires_at <= now() AS deadline_passed
                 FROM jobs j
                 LEFT JOIN workers w
                        ON w.organization_id = j.organization_id AND w.worker_id = j.worker_id
                 WHERE j.status IN {from}
                   AND (j.lease_expires_at <= now()
                        -- Gone: since a recorded disconnect, or silent (its server died).
                        OR w.disconnected_at <= now() - make_interval(secs => $1)
                        OR (w.disconnected_at IS NULL
                            AND w.last_heartbeat_at <= now() - make_interval(secs => $1)))
                 ORDER BY j.lease_expires_at
                 LIMIT 100
                 FOR UPDATE OF j SKIP LOCKED",
                from = status_list(Transition::Fail.from()),
            ))
            .await?;
        let mut ending = Vec::new();
        for row in tx.query(&stmt, &[&worker_grace.as_secs_f64()]).await? {
            let (failure, status) = if row.try_get("deadline_passed")? {
                let timeout: i32 = row.try_get("timeout_seconds")?;
                (Failure::timed_out(timeout.into()), "timed_out")
            } else {
                (Failure::worker_lost(), "failed")
            };
            ending.push(Ending {
                attempt: AttemptRow::read(&row)?,
                failure,
                status,
                response: None,
            });
        }
        let jobs = end_attempts_badly(&tx, ending)
            .await?
            .into_values()
            .collect();
        // Rows of workers long gone, holding nothing, are forgotten.
        tx.execute(
            "DELETE FROM workers WHERE disconnected_at < now() - interval '1 day'
               AND NOT EXISTS (SELECT 1 FROM jobs
                               WHERE jobs.organization_id = workers.organization_id
                                 AND jobs.worker_id = workers.worker_id
                                 AND jobs.status = 'running')",
            &[],
        )
        .await?;
        let next: Option<f64> = tx
            .query_one(
                &format!(
                    "SELECT EXTRACT(EPOCH FROM min(lease_expires_at) - now())::float8
                     FROM jobs WHERE status IN {from}",
                    from = status_list(Transition::Fail.from()),
                ),
                &[],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(Expired {
            jobs,
            next_expiry_in: next.map(|s| Duration::from_secs_f64(s.max(0.0))),
        })
    }

    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO workers (organization_id, worker_id, session_id, handlers,
                                      max_in_flight, sdk)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (organization_id, worker_id) DO UPDATE
                 SET session_id = EXCLUDED.session_id, handlers = EXCLUDED.handlers,
                     max_in_flight = EXCLUDED.max_in_flight, sdk = EXCLUDED.sdk,
                     connected_at = now(), last_heartbeat_at = now(), disconnected_at = NULL",
                &[
                    &org.0,
                    &worker.worker_id,
                    &worker.session_id,
                    &worker.handlers,
                    &(worker.max_in_flight as i32),
                    &worker.sdk,
                ],
            )
            .await?;
        let rows = client
            .query(
                &format!(
                    "SELECT lease_token, id FROM jobs
                     WHERE organization_id = $1 AND worker_id = $2 AND status IN {from}
                       AND lease_expires_at > now()",
                    from = status_list(Transition::Ack.from()),
                ),
                &[&org.0, &worker.worker_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldLease {
                    token: r.try_get(0)?,
                    job_id: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE workers SET last_heartbeat_at = now()
                 WHERE organization_id = $1 AND worker_id = $2 AND session_id = $3",
            )
            .await?;
        client
            .execute(&stmt, &[&org.0, &worker_id, &session_id])
            .await?;
        Ok(())
    }

    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE workers SET disconnected_at = now()
                 WHERE organization_id = $1 AND worker_id = $2 AND session_id = $3",
                &[&org.0, &worker_id, &session_id],
            )
            .await?;
        Ok(())
    }

    async fn list_workers(
        &self,
        org: OrgId,
        alive: Duration,
    ) -> Result<Vec<chronos_proto::worker::ConnectedWorker>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT w.worker_id, w.session_id, w.handlers, w.max_in_flight, w.sdk,
                        w.connected_at, w.last_heartbeat_at,
                        (SELECT count(*) FROM jobs j
                         WHERE j.organization_id = w.organization_id
                           AND j.worker_id = w.worker_id AND j.status = 'running') AS in_flight
                 FROM workers w
                 WHERE w.organization_id = $1 AND w.disconnected_at IS NULL
                   AND w.last_heartbeat_at > now() - make_interval(secs => $2)
                 ORDER BY w.connected_at, w.worker_id",
                &[&org.0, &alive.as_secs_f64()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(chronos_proto::worker::ConnectedWorker {
                    worker_id: r.try_get("worker_id")?,
                    session_id: r.try_get("session_id")?,
                    handlers: r.try_get("handlers")?,
                    max_in_flight: u32_col(r, "max_in_flight")?,
                    in_flight: r.try_get::<_, i64>("in_flight")? as u32,
                    sdk: r.try_get("sdk")?,
                    connected_at: ts(r.try_get("connected_at")?),
                    last_heartbeat_at: ts(r.try_get("last_heartbeat_at")?),
                })
            })
            .collect()
    }

    fn watch_changes(
        &self,
        on_change: super::ChangeFn,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        Some(tokio::spawn(listen::run(
            self.config.clone(),
            on_change,
            shutdown,
        )))
    }
}

/// The jobs holding these idempotency keys, by key.
async fn key_holders(
    client: &deadpool_postgres::Client,
    org: OrgId,
    keys: &[&str],
) -> Result<HashMap<String, Uuid>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client
        .prepare_cached(
            "SELECT idempotency_key, id FROM jobs
             WHERE organization_id = $1 AND idempotency_key = ANY($2)",
        )
        .await?;
    Ok(client
        .query(&stmt, &[&org.0, &keys])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// An ack, fail or extend matched no current lease: was the token ever one
/// of this organization's?
async fn lease_miss<T>(
    client: &deadpool_postgres::Client,
    org: OrgId,
    token: Uuid,
) -> Result<LeaseOutcome<T>> {
    let stmt = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job_id
                            WHERE e.lease_token = $2 AND j.organization_id = $1)",
        )
        .await?;
    let known: bool = client.query_one(&stmt, &[&org.0, &token]).await?.get(0);
    Ok(if known {
        LeaseOutcome::Lost
    } else {
        LeaseOutcome::Unknown
    })
}

fn schedule_from_row(row: &Row) -> Result<ScheduleRecord> {
    let opt_ts = |col: &str| -> Result<Option<Timestamp>> {
        Ok(row.try_get::<_, Option<DateTime<Utc>>>(col)?.map(ts))
    };
    let status: String = row.try_get("status")?;
    let last_status: Option<String> = row.try_get("last_status")?;
    Ok(ScheduleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: ScheduleStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("schedule status {status}")))?,
        timing: json_parse("timing", row.try_get("timing")?)?,
        timezone: row.try_get("timezone")?,
        template: json_parse("template", row.try_get("template")?)?,
        catch_up: enum_parse("catch_up", row.try_get("catch_up")?)?,
        overlap: enum_parse("overlap", row.try_get("overlap")?)?,
        failure_notify: row.try_get("failure_notify")?,
        anchor_at: ts(row.try_get("anchor_at")?),
        next_run_at: opt_ts("next_run_at")?,
        waiting_fire_at: opt_ts("waiting_fire_at")?,
        last_run_at: opt_ts("last_run_at")?,
        last_job_id: row.try_get("last_job_id")?,
        last_status: last_status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
    })
}

fn signing_secret_from_row(row: &Row) -> Result<SigningSecretRecord> {
    Ok(SigningSecretRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_expires_at: row
            .try_get::<_, Option<DateTime<Utc>>>("previous_expires_at")?
            .map(ts),
        created_at: ts(row.try_get("created_at")?),
        rotated_at: row
            .try_get::<_, Option<DateTime<Utc>>>("rotated_at")?
            .map(ts),
    })
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
    max_retries: Vec<i32>,
    timeout: Vec<i32>,
    schedule_id: Vec<Option<Uuid>>,
    idempotency_key: Vec<Option<&'a str>>,
    target_host: Vec<Option<String>>,
}

impl<'a> JobColumns<'a> {
    fn of(jobs: &[&'a NewJob]) -> Result<Self> {
        let mut c = JobColumns {
            id: Vec::with_capacity(jobs.len()),
            name: Vec::with_capacity(jobs.len()),
            handler: Vec::with_capacity(jobs.len()),
            payload: Vec::with_capacity(jobs.len()),
            queue: Vec::with_capacity(jobs.len()),
            priority: Vec::with_capacity(jobs.len()),
            delivery_type: Vec::with_capacity(jobs.len()),
            delivery: Vec::with_capacity(jobs.len()),
            at: Vec::with_capacity(jobs.len()),
            delay: Vec::with_capacity(jobs.len()),
            max_retries: Vec::with_capacity(jobs.len()),
            timeout: Vec::with_capacity(jobs.len()),
            schedule_id: Vec::with_capacity(jobs.len()),
            idempotency_key: Vec::with_capacity(jobs.len()),
            target_host: Vec::with_capacity(jobs.len()),
        };
        for job in jobs {
            let (at, delay) = match job.run_at {
                RunAt::Now => (None, 0.0),
                RunAt::After(d) => (None, d.as_secs_f64()),
                RunAt::At(t) => (Some(t.0), 0.0),
            };
            c.id.push(job.id);
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
            c.max_retries.push(job.max_retries as i32);
            c.timeout.push(job.timeout_seconds as i32);
            c.schedule_id.push(job.schedule_id);
            c.idempotency_key.push(job.idempotency_key.as_deref());
        }
        Ok(c)
    }
}

/// The columns of a running job that decide what follows its failure.
struct AttemptRow {
    id: Uuid,
    token: Uuid,
    attempts_in_budget: u32,
    max_retries: u32,
}

impl AttemptRow {
    fn read(row: &Row) -> Result<Self> {
        Ok(AttemptRow {
            id: row.try_get("id")?,
            token: row.try_get("lease_token")?,
            attempts_in_budget: u32_col(row, "attempt")? - u32_col(row, "attempt_base")?,
            max_retries: u32_col(row, "max_retries")?,
        })
    }
}

/// Ends attempts (their jobs locked by the caller) as failed or timed out,
/// each with its execution's status, and schedules each job again or fails
/// it, as the state machine decides — one statement, one NOTIFY for the
/// jobs queued again. Returns the jobs by the token that ended.
/// An attempt that ended badly: how, with what execution status, and what
/// its push target answered, if it did.
struct Ending {
    attempt: AttemptRow,
    failure: Failure,
    status: &'static str,
    response: Option<HttpResponse>,
}

/// Push targets' answers as columns (nulls where there was none).
struct Answers<'a> {
    status: Vec<Option<i32>>,
    body: Vec<Option<&'a str>>,
    truncated: Vec<Option<bool>>,
}

impl<'a> Answers<'a> {
    fn of(responses: impl Iterator<Item = Option<&'a HttpResponse>>) -> Self {
        let mut a = Answers {
            status: Vec::new(),
            body: Vec::new(),
            truncated: Vec::new(),
        };
        for r in responses {
            a.status.push(r.map(|r| i32::from(r.status)));
            a.body.push(r.map(|r| r.body.as_str()));
            a.truncated.push(r.map(|r| r.truncated));
        }
        a
    }
}

async fn end_attempts_badly(
    tx: &deadpool_postgres::Transaction<'_>,
    ending: Vec<Ending>,
) -> Result<HashMap<Uuid, Job>> {
    if ending.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = tx
        .prepare_cached(&format!(
            "WITH input AS (
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[],
                                      $6::int4[], $7::text[], $8::bool[])
                     AS i (in_id, in_token, in_status, in_error, in_retry_in,
                           in_http_status, in_body, in_truncated)
             ), closed AS (
                 UPDATE executions SET status = in_status, error = in_error, finished_at = now(),
                                       http_status = in_http_status, response_body = in_body,
                                       response_truncated = coalesce(in_truncated, false)
                 FROM input WHERE lease_token = in_token
             ), ended AS (
                 -- in_retry_in NULL: given up; otherwise due again that many seconds from now.
                 UPDATE jobs SET
                     status = CASE WHEN in_retry_in IS NULL THEN '{failed}'
                                   WHEN in_retry_in <= 0 THEN '{queued}' ELSE '{scheduled}' END,
                     run_at = CASE WHEN in_retry_in IS NULL THEN run_at
                                   ELSE now() + make_interval(secs => in_retry_in) END,
                     finished_at = CASE WHEN in_retry_in IS NULL THEN now() END,
                     last_error = in_error, lease_expires_at = NULL, updated_at = now()
                 FROM input WHERE id = in_id
                 RETURNING {JOB_COLUMNS}, lease_token, organization_id, delivery_type
             ), keys AS (
                 SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM ended WHERE status = '{queued}'
             )
             SELECT ended.*, (SELECT {NOTIFY_KEYS} FROM keys) AS notified FROM ended",
            failed = GIVEN_UP.as_str(),
            queued = waiting_status(true).as_str(),
            scheduled = waiting_status(false).as_str(),
        ))
        .await?;
    let mut ids = Vec::with_capacity(ending.len());
    let mut tokens = Vec::with_capacity(ending.len());
    let mut statuses = Vec::with_capacity(ending.len());
    let mut errors = Vec::with_capacity(ending.len());
    let mut retry_in: Vec<Option<f64>> = Vec::with_capacity(ending.len());
    for Ending {
        attempt,
        failure,
        status,
        ..
    } in &ending
    {
        ids.push(attempt.id);
        tokens.push(attempt.token);
        statuses.push(*status);
        errors.push(failure.error.as_str());
        retry_in.push(
            match after_failure(attempt.attempts_in_budget, attempt.max_retries, failure) {
                AfterFailure::RetryIn(delay) => Some(delay.as_secs_f64()),
                AfterFailure::GiveUp => None,
            },
        );
    }
    let answers = Answers::of(ending.iter().map(|e| e.response.as_ref()));
    let rows = tx
        .query(
            &stmt,
            &[
                &ids,
                &tokens,
                &statuses,
                &errors,
                &retry_in,
                &answers.status,
                &answers.body,
                &answers.truncated,
            ],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("lease_token")?, job_from_row(row)?)))
        .collect()
}

/// Reads a [`NOTIFY_CHANNEL`] payload; `None` means "wake everyone".
pub fn parse_wake_payload(payload: &str) -> Option<Vec<WakeKey>> {
    if payload == "*" {
        return None;
    }
    let mut keys = Vec::new();
    for part in payload.split(',').filter(|p| !p.is_empty()) {
        if part == "push" {
            keys.push(WakeKey::Push);
            continue;
        }
        let (org, handler) = part.split_once('/')?;
        keys.push(WakeKey::Pull(
            OrgId(Uuid::parse_str(org).ok()?),
            handler.to_string(),
        ));
    }
    Some(keys)
}
