//! The embedded store: SQLite, compiled into the binary (rusqlite, bundled).
//!
//! One connection, used from blocking tasks; SQLite serializes writers anyway,
//! and one connection keeps every statement's view consistent. WAL mode lets
//! short CLI commands (`chronos keys create`) write beside a running server;
//! `synchronous = FULL` makes every acknowledged commit durable.
//!
//! Only one `chronos serve` may use a file: it holds an exclusive lock on
//! `<file>.lock` for its lifetime. Timestamps are TEXT in one fixed format
//! (`2026-01-02T03:04:05.678Z`), so comparing them as strings compares times,
//! and `now` is SQLite's own clock, as `now()` is PostgreSQL's.

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
use super::{ExecutionsOf, Fired, PlanFn, ScheduleRecord, enum_parse, enum_text};
use crate::lease::state::{
    AfterFailure, Failure, GIVEN_UP, Transition, after_failure, waiting_status,
};
use async_trait::async_trait;
use chronos_proto::{Delivery, Execution, Job, Lease, LeasedJob, Scope, Timestamp};
use chronos_proto::{JobStatus, ScheduleStatus};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("sqlite/migrations/0001_initial.sql"),
    ),
    (
        2,
        "signing secrets",
        include_str!("sqlite/migrations/0002_signing_secrets.sql"),
    ),
    (
        3,
        "push targets",
        include_str!("sqlite/migrations/0003_push_targets.sql"),
    ),
    (
        4,
        "schedules",
        include_str!("sqlite/migrations/0004_schedules.sql"),
    ),
];

/// SQLite's clock, in the one timestamp format the store uses.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Held for the store's lifetime when opened by `chronos serve`.
    _serve_lock: Option<File>,
}

/// Who is opening the file: the server (exclusive), or a short CLI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    Serve,
    Command,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Other(format!(
                    "cannot create data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let serve_lock = match mode {
            OpenMode::Serve => Some(lock_for_serve(path)?),
            OpenMode::Command => None,
        };
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            _serve_lock: serve_lock,
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
    }
}

/// The version of the SQLite compiled in.
pub fn engine_version() -> &'static str {
    rusqlite::version()
}

fn lock_for_serve(db: &Path) -> Result<File> {
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Other(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {
            // The pid is for people reading the file; the lock is what counts.
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: db.display().to_string(),
            lock: lock_path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Other(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(s: String) -> Result<Timestamp> {
    Timestamp::parse(&s).map_err(|e| corrupt(&format!("timestamp {s}"), e))
}

fn opt_ts(s: Option<String>) -> Result<Option<Timestamp>> {
    s.map(ts).transpose()
}

fn uuid(s: String) -> Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| corrupt("uuid", e))
}

fn json(s: String) -> Result<serde_json::Value> {
    serde_json::from_str(&s).map_err(|e| corrupt("json", e))
}

fn u32_col(row: &Row, col: &str) -> Result<u32> {
    let v: i64 = row.get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("wire types always serialize")
}

fn job_from_row(row: &Row) -> Result<Job> {
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
        schedule_id: row
            .get::<_, Option<String>>("schedule_id")?
            .map(uuid)
            .transpose()?,
        fire_at: opt_ts(row.get("fire_at")?)?,
        idempotency_key: row.get("idempotency_key")?,
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
    Ok(Execution {
        id: uuid(row.get("id")?)?,
        job_id: uuid(row.get("job_id")?)?,
        attempt: u32_col(row, "attempt")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        worker_id: row.get("worker_id")?,
        http_status: row.get::<_, Option<i64>>("http_status")?.map(|s| s as u16),
        response_body: row.get("response_body")?,
        response_truncated: row.get("response_truncated")?,
        error: row.get("error")?,
        duration_ms: finished.map(|f| (f.0 - started.0).num_milliseconds().max(0) as u64),
        started_at: started,
        finished_at: finished,
    })
}

fn api_key_from_row(row: &Row) -> Result<ApiKeyRecord> {
    let scopes: Vec<String> =
        serde_json::from_str(&row.get::<_, String>("scopes")?).map_err(|e| corrupt("scopes", e))?;
    Ok(ApiKeyRecord {
        id: row.get("id")?,
        organization_id: OrgId(uuid(row.get("organization_id")?)?),
        name: row.get("name")?,
        secret_sha256: row.get("secret_sha256")?,
        scopes: scopes
            .iter()
            .map(|s| s.parse::<Scope>().map_err(StoreError::Corrupt))
            .collect::<Result<_>>()?,
        created_at: ts(row.get("created_at")?)?,
        revoked_at: opt_ts(row.get("revoked_at")?)?,
    })
}

fn org_from_row(row: &Row) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(uuid(row.get("id")?)?),
        slug: row.get("slug")?,
        name: row.get("name")?,
        created_at: ts(row.get("created_at")?)?,
    })
}

fn insert_key(conn: &Connection, key: &NewApiKey) -> Result<ApiKeyRecord> {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    let sql = format!(
        "INSERT INTO api_keys (id, organization_id, name, secret_sha256, scopes) \
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {API_KEY_COLUMNS}"
    );
    conn.query_row(
        &sql,
        params![
            key.id,
            key.organization_id.0.to_string(),
            key.name,
            key.secret_sha256,
            to_json(&scopes)
        ],
        |row| Ok(api_key_from_row(row)),
    )?
}

fn job_by_id(conn: &Connection, org: OrgId, id: Uuid) -> Result<Option<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE organization_id = ?1 AND id = ?2"
    ))?
    .query_row(params![org.0.to_string(), id.to_string()], |row| {
        Ok(job_from_row(row))
    })
    .optional()?
    .transpose()
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.call(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn migrate(&self) -> Result<Vec<i64>> {
        self.call(|conn| {
            // IMMEDIATE takes the write lock first: a concurrent migrator waits.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS chronos_migrations (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ) STRICT",
            )?;
            let done: Vec<i64> = tx
                .prepare("SELECT version FROM chronos_migrations")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
                return Err(StoreError::SchemaTooNew { found, known });
            }
            let mut applied = Vec::new();
            for &(version, name, sql) in MIGRATIONS {
                if done.contains(&version) {
                    continue;
                }
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO chronos_migrations (version, name) VALUES (?1, ?2)",
                    params![version, name],
                )?;
                applied.push(version);
            }
            tx.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn bootstrap(&self, admin_key: NewApiKey) -> Result<Option<Organization>> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let any: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM organizations)", [], |r| {
                    r.get(0)
                })?;
            if any {
                return Ok(None);
            }
            let org = tx.query_row(
                "INSERT INTO organizations (id, slug, name) VALUES (?1, 'default', 'Default') \
                 RETURNING id, slug, name, created_at",
                params![admin_key.organization_id.0.to_string()],
                |row| Ok(org_from_row(row)),
            )??;
            insert_key(&tx, &admin_key)?;
            tx.commit()?;
            Ok(Some(org))
        })
        .await
    }

    async fn create_organization(&self, slug: &str, name: &str) -> Result<Organization> {
        let (slug, name) = (slug.to_string(), name.to_string());
        self.call(move |conn| {
            conn.query_row(
                "INSERT INTO organizations (id, slug, name) VALUES (?1, ?2, ?3) \
                 RETURNING id, slug, name, created_at",
                params![Uuid::now_v7().to_string(), slug, name],
                |row| Ok(org_from_row(row)),
            )?
        })
        .await
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let slug = slug.to_string();
        self.call(move |conn| {
            conn.query_row(
                "SELECT id, slug, name, created_at FROM organizations WHERE slug = ?1",
                params![slug],
                |row| Ok(org_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord> {
        self.call(move |conn| insert_key(conn, &key)).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"
            ))?
            .query_row(params![id], |row| Ok(api_key_from_row(row)))
            .optional()?
            .transpose()
        })
        .await
    }

    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRecord>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE organization_id = ?1 \
                 ORDER BY created_at, id"
            ))?;
            let rows =
                stmt.query_map(params![org.0.to_string()], |row| Ok(api_key_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, org: OrgId, id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.call(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, {NOW}) \
                     WHERE organization_id = ?1 AND id = ?2 RETURNING {API_KEY_COLUMNS}"
                ),
                params![org.0.to_string(), id],
                |row| Ok(api_key_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn insert_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        secret: &str,
    ) -> Result<SigningSecretRecord> {
        let (name, secret) = (name.to_string(), secret.to_string());
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO signing_secrets (id, organization_id, name, secret)
                 VALUES (?1, ?2, ?3, ?4) RETURNING {SIGNING_SECRET_COLUMNS}"
            ))?
            .query_row(
                params![id.to_string(), org.0.to_string(), name, secret],
                |row| Ok(signing_secret_from_row(row)),
            )?
        })
        .await
    }

    async fn signing_secret(&self, org: OrgId, id: Uuid) -> Result<Option<SigningSecretRecord>> {
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = ?1 AND id = ?2"
            ))?
            .query_row(params![org.0.to_string(), id.to_string()], |row| {
                Ok(signing_secret_from_row(row))
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn list_signing_secrets(&self, org: OrgId) -> Result<Vec<SigningSecretRecord>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SIGNING_SECRET_COLUMNS} FROM signing_secrets
                 WHERE organization_id = ?1 ORDER BY id DESC"
            ))?;
            let rows = stmt.query_map(params![org.0.to_string()], |row| {
                Ok(signing_secret_from_row(row))
            })?;
            let mut secrets = Vec::new();
            for row in rows {
                secrets.push(row??);
            }
            Ok(secrets)
        })
        .await
    }

    async fn rotate_signing_secret(
        &self,
        org: OrgId,
        id: Uuid,
        secret: &str,
        window: Duration,
    ) -> Result<Option<SigningSecretRecord>> {
        let secret = secret.to_string();
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE signing_secrets
                 SET previous_secret = secret,
                     previous_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4),
                     secret = ?3, rotated_at = {NOW}
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {SIGNING_SECRET_COLUMNS}"
            ))?
            .query_row(
                params![org.0.to_string(), id.to_string(), secret, modifier(window)],
                |row| Ok(signing_secret_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        self.call(move |conn| {
            // One transaction, one commit, for the whole batch.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = jobs
                .iter()
                .map(|job| insert_job(&tx, org, job))
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff> {
        let worker_id = worker_id.map(str::to_string);
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let created = match insert_job(&tx, org, &job)? {
                Inserted::Conflict { existing } => return Ok(Handoff::Conflict { existing }),
                Inserted::Created(created) => created,
            };
            // A job of this handler already queued: this one queues behind it.
            let busy: bool = tx
                .prepare_cached(&format!(
                    "SELECT EXISTS (SELECT 1 FROM jobs
                                    WHERE organization_id = ?1 AND status IN {from}
                                      AND delivery_type = 'pull' AND handler = ?2 AND id != ?3)",
                    from = status_list(Transition::Lease.from()),
                ))?
                .query_row(
                    params![org.0.to_string(), job.handler, job.id.to_string()],
                    |r| r.get(0),
                )?;
            let handoff = if busy || created.status != waiting_status(true) {
                Handoff::Queued(created)
            } else {
                Handoff::Leased(Box::new(lease_one(
                    &tx,
                    &job.id.to_string(),
                    worker_id.as_deref(),
                    Duration::ZERO,
                )?))
            };
            tx.commit()?;
            Ok(handoff)
        })
        .await
    }

    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>> {
        self.call(move |conn| job_by_id(conn, org, id)).await
    }

    async fn list_jobs(
        &self,
        org: OrgId,
        filter: &JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>> {
        let filter = filter.clone();
        self.call(move |conn| {
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
            let mut stmt = conn.prepare_cached(&format!(
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
            ))?;
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

    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        self.call(move |conn| {
            let t = Transition::Cancel;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let cancelled = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET status = '{to}', finished_at = {NOW}, updated_at = {NOW},
                                     lease_expires_at = NULL
                     WHERE organization_id = ?1 AND id = ?2 AND status IN {from}
                     RETURNING {JOB_COLUMNS}",
                    to = t.to().as_str(),
                    from = status_list(t.from()),
                ))?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(job_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match cancelled {
                Some(job) => {
                    tx.execute(
                        &format!(
                            "UPDATE executions SET status = 'failed', error = 'job cancelled',
                                                   finished_at = {NOW}
                             WHERE job_id = ?1 AND status = 'running'"
                        ),
                        params![id.to_string()],
                    )?;
                    CancelOutcome::Cancelled(job)
                }
                None => match job_by_id(&tx, org, id)? {
                    Some(job) => CancelOutcome::AlreadyFinished(job),
                    None => CancelOutcome::NotFound,
                },
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>> {
        self.call(move |conn| {
            let exists: bool = conn.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE organization_id = ?1 AND id = ?2)",
                    of.owner_table()
                ),
                params![org.0.to_string(), of.id().to_string()],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions
                 WHERE {} AND (?3 IS NULL OR id < ?3)
                 ORDER BY id DESC LIMIT ?4",
                of.jobs_sql("?2", "?1"),
            ))?;
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

    async fn promote_due_jobs(&self) -> Result<Promoted> {
        self.call(|conn| {
            let t = Transition::Promote;
            let from = status_list(t.from());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut woken = Vec::new();
            let mut count = 0;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE jobs SET status = '{to}', updated_at = {NOW}
                     WHERE id IN (SELECT id FROM jobs
                                  WHERE status IN {from} AND run_at <= {NOW}
                                  ORDER BY run_at LIMIT 1000)
                     RETURNING organization_id, handler, delivery_type",
                    to = t.to().as_str(),
                ))?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    count += 1;
                    let key = wake_key(row)?;
                    if !woken.contains(&key) {
                        woken.push(key);
                    }
                }
            }
            let next: Option<f64> = tx
                .prepare_cached(&format!(
                    "SELECT (julianday(min(run_at)) - julianday('now')) * 86400.0 FROM jobs
                     WHERE status IN {from} AND run_at > {NOW}"
                ))?
                .query_row([], |r| r.get(0))?;
            tx.commit()?;
            Ok(Promoted {
                count,
                woken,
                next_due_in: next.map(|s| Duration::from_secs_f64(s.max(0.0))),
            })
        })
        .await
    }

    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>> {
        let handlers = handlers.to_vec();
        let takers = takers.to_vec();
        self.call(move |conn| {
            let t = Transition::Lease;
            let slots = lease_slots(&takers, MAX_LEASE_BATCH);
            let mut leased: Vec<Vec<LeasedJob>> = vec![Vec::new(); takers.len()];
            if slots.is_empty() {
                return Ok(leased);
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Each handler's best jobs from the head of its own index range,
            // then the best of those: `handler IN (…)` would sort them all.
            let mut best: Vec<(i64, String, String)> = Vec::new();
            for handler in &handlers {
                let mut pick = tx.prepare_cached(&format!(
                    "SELECT priority, run_at, id FROM jobs
                     WHERE organization_id = ?1 AND status IN {from} AND delivery_type = 'pull'
                       AND handler = ?2
                     ORDER BY priority DESC, run_at, id
                     LIMIT ?3",
                    from = status_list(t.from()),
                ))?;
                let rows = pick.query_map(
                    params![org.0.to_string(), handler, slots.len() as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                for row in rows {
                    best.push(row?);
                }
            }
            best.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
            let ids = best.into_iter().map(|(_, _, id)| id);
            // The n-th best job goes to the n-th slot's taker.
            for (id, &taker) in ids.zip(&slots) {
                let job = lease_one(&tx, &id, takers[taker].worker_id.as_deref(), Duration::ZERO)?;
                leased[taker].push(job);
            }
            tx.commit()?;
            Ok(leased)
        })
        .await
    }

    async fn insert_schedule(&self, org: OrgId, s: &ScheduleRecord) -> Result<ScheduleRecord> {
        let s = s.clone();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                     template, catch_up, overlap, failure_notify, anchor_at, next_run_at,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11, ?11)",
            )?
            .execute(params![
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
            ])?;
            let created = read_schedule(&tx, org, s.id)?
                .ok_or_else(|| StoreError::Other("an inserted schedule is gone".into()))?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>> {
        self.call(move |conn| read_schedule(conn, org, id)).await
    }

    async fn list_schedules(
        &self,
        org: OrgId,
        status: Option<ScheduleStatus>,
        page: PageRequest,
    ) -> Result<Page<ScheduleRecord>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules s
                 LEFT JOIN jobs lj ON lj.id = s.last_job_id
                 WHERE s.organization_id = ?1 AND (?2 IS NULL OR s.status = ?2)
                   AND (?3 IS NULL OR s.id < ?3)
                 ORDER BY s.id DESC LIMIT ?4"
            ))?;
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
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE schedules SET name = ?3, status = ?4, timing = ?5, timezone = ?6,
                         template = ?7, catch_up = ?8, overlap = ?9, failure_notify = ?10,
                         anchor_at = ?11, next_run_at = ?12, waiting_fire_at = ?13,
                         updated_at = {NOW}
                     WHERE organization_id = ?1 AND id = ?2"
                ))?
                .execute(params![
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
                ])?;
            let updated = if n == 0 {
                None
            } else {
                read_schedule(&tx, org, s.id)?
            };
            tx.commit()?;
            Ok(updated)
        })
        .await
    }

    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool> {
        self.call(move |conn| {
            let n = conn.execute(
                "DELETE FROM schedules WHERE organization_id = ?1 AND id = ?2",
                params![org.0.to_string(), id.to_string()],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()> {
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "UPDATE schedules SET last_run_at = {NOW}, last_job_id = ?3
                     WHERE organization_id = ?1 AND id = ?2"
                ),
                params![org.0.to_string(), id.to_string(), job_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(tx.query_row(&format!("SELECT {NOW}"), [], |r| r.get(0))?)?;
            let due: Vec<(ScheduleRecord, String)> = tx
                .prepare_cached(&format!(
                    "SELECT {SCHEDULE_COLUMNS}, s.organization_id
                     FROM schedules s LEFT JOIN jobs lj ON lj.id = s.last_job_id
                     WHERE s.status = 'active'
                       AND (s.next_run_at <= ?1
                            OR (s.waiting_fire_at IS NOT NULL
                                AND (lj.status IS NULL OR lj.status IN {finished})))
                     ORDER BY s.next_run_at
                     LIMIT {FIRE_BATCH}",
                    finished = status_list(&[
                        JobStatus::Completed,
                        JobStatus::Failed,
                        JobStatus::Cancelled
                    ]),
                ))?
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
            for (schedule, org) in due {
                let org = OrgId(uuid(org)?);
                let outcome = plan(&schedule, now);
                let mut last_job = None;
                for fire in &outcome.fires {
                    if let Some(job) = insert_fire(&tx, org, &fire.job, fire.fire_at)? {
                        last_job = Some(job.id);
                        fired.jobs.push((org, job));
                    }
                }
                tx.prepare_cached(&format!(
                    "UPDATE schedules SET next_run_at = ?2, waiting_fire_at = ?3,
                         last_run_at = CASE WHEN ?4 IS NULL THEN last_run_at ELSE {NOW} END,
                         last_job_id = coalesce(?4, last_job_id)
                     WHERE id = ?1"
                ))?
                .execute(params![
                    schedule.id.to_string(),
                    outcome.next_run_at.map(|t| t.to_string()),
                    outcome.waiting_fire_at.map(|t| t.to_string()),
                    last_job.map(|id: Uuid| id.to_string()),
                ])?;
            }
            let next: Option<String> = tx.query_row(
                "SELECT min(next_run_at) FROM schedules WHERE status = 'active'",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            fired.next_due_in =
                opt_ts(next)?.map(|at| (at.0 - now.0).to_std().unwrap_or(Duration::ZERO));
            Ok(fired)
        })
        .await
    }

    async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        let slots = slots.clone();
        self.call(move |conn| {
            if slots.max == 0 {
                return Ok(Vec::new());
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut room: HashMap<String, u32> = slots
                .busy
                .iter()
                .map(|(h, n)| (h.clone(), slots.per_host.saturating_sub(*n)))
                .collect();
            // Hosts already full are left out of the read, so their backlog
            // never fills it and jobs for other hosts are always seen.
            let full: Vec<&String> = room
                .iter()
                .filter(|(_, r)| **r == 0)
                .map(|(h, _)| h)
                .collect();
            let max = slots.max.min(MAX_LEASE_BATCH as u32);
            let candidates: Vec<(String, String, String)> = tx
                .prepare_cached(&format!(
                    "SELECT id, organization_id, coalesce(target_host, '') FROM jobs
                     WHERE status IN {from} AND delivery_type = 'push'
                       AND coalesce(target_host, '') NOT IN (SELECT value FROM json_each(?1))
                     ORDER BY priority DESC, run_at, id
                     LIMIT ?2",
                    from = status_list(Transition::Lease.from()),
                ))?
                .query_map(
                    params![to_json(&serde_json::json!(full)), i64::from(max) * 4 + 256],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let mut leased = Vec::new();
            for (id, org, host) in candidates {
                if leased.len() as u32 >= max {
                    break;
                }
                let left = room.entry(host).or_insert(slots.per_host);
                if *left == 0 {
                    continue;
                }
                *left -= 1;
                let job = lease_one(&tx, &id, None, slots.lease_margin)?;
                leased.push((OrgId(uuid(org)?), job));
            }
            tx.commit()?;
            Ok(leased)
        })
        .await
    }

    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Job>>> {
        self.call(move |conn| {
            // One transaction, one commit, for the whole batch; applied one
            // after the other, so a repeated token finds its lease gone.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcomes = ends
                .iter()
                .map(|e| match &e.outcome {
                    Outcome::Ack(result) => ack(&tx, e, result.as_ref()),
                    Outcome::Fail(failure) => fail(&tx, e, failure),
                })
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn extend_lease(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let extended = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3),
                                     updated_at = {NOW}
                     WHERE organization_id = ?1 AND lease_token = ?2 AND status IN {from}
                       AND lease_expires_at > {NOW}
                     RETURNING lease_expires_at",
                    from = status_list(Transition::Ack.from()),
                ))?
                .query_row(
                    params![org.0.to_string(), token.to_string(), modifier(by)],
                    |row| row.get::<_, String>(0),
                )
                .optional()?;
            let outcome = match extended {
                Some(at) => LeaseOutcome::Done(Lease {
                    token,
                    expires_at: ts(at)?,
                }),
                None => lease_miss(&tx, org, token)?,
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Job>> {
        self.call(move |conn| {
            let t = Transition::Release;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let back = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET status = '{to}', attempt_base = attempt_base + 1,
                                     lease_expires_at = NULL, updated_at = {NOW}
                     WHERE organization_id = ?1 AND lease_token = ?2 AND status IN {from}
                       AND lease_expires_at > {NOW}
                     RETURNING {JOB_COLUMNS}",
                    from = status_list(t.from()),
                    to = t.to().as_str(),
                ))?
                .query_row(params![org.0.to_string(), token.to_string()], |row| {
                    Ok(job_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match back {
                Some(job) => {
                    tx.prepare_cached(&format!(
                        "UPDATE executions SET status = 'released', finished_at = {NOW}
                         WHERE lease_token = ?1"
                    ))?
                    .execute(params![token.to_string()])?;
                    LeaseOutcome::Done(job)
                }
                None => lease_miss(&tx, org, token)?,
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        self.call(move |conn| {
            let t = Transition::Retry;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let again = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET status = '{to}', run_at = {NOW}, attempt_base = attempt,
                                     result = NULL, finished_at = NULL, lease_expires_at = NULL,
                                     updated_at = {NOW}
                     WHERE organization_id = ?1 AND id = ?2 AND status IN {from}
                     RETURNING {JOB_COLUMNS}",
                    from = status_list(t.from()),
                    to = t.to().as_str(),
                ))?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(job_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match again {
                Some(job) => RetryOutcome::Retried(job),
                None => match job_by_id(&tx, org, id)? {
                    Some(job) => RetryOutcome::NotRetryable(job),
                    None => RetryOutcome::NotFound,
                },
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired> {
        self.call(move |conn| {
            let from = status_list(Transition::Fail.from());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let gone = format!("-{:.3} seconds", worker_grace.as_secs_f64());
            let ending: Vec<(AttemptRow, Uuid, i64, bool)> = tx
                .prepare_cached(&format!(
                    "SELECT j.id, j.attempt, j.attempt_base, j.max_retries, j.timeout_seconds,
                            j.lease_token, j.lease_expires_at <= {NOW} AS deadline_passed
                     FROM jobs j
                     LEFT JOIN workers w
                            ON w.organization_id = j.organization_id AND w.worker_id = j.worker_id
                     WHERE j.status IN {from}
                       AND (j.lease_expires_at <= {NOW}
                            OR w.disconnected_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)
                            OR (w.disconnected_at IS NULL
                                AND w.last_heartbeat_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)))
                     ORDER BY j.lease_expires_at
                     LIMIT 100"
                ))?
                .query_map(params![gone], |row| {
                    Ok((
                        AttemptRow::read(row),
                        row.get::<_, String>("lease_token")?,
                        row.get::<_, i64>("timeout_seconds")?,
                        row.get::<_, bool>("deadline_passed")?,
                    ))
                })?
                .map(|r| {
                    let (attempt, token, timeout, passed) = r?;
                    Ok((attempt?, uuid(token)?, timeout, passed))
                })
                .collect::<Result<_>>()?;
            let mut jobs = Vec::with_capacity(ending.len());
            for (attempt, token, timeout, deadline_passed) in ending {
                let (failure, status) = if deadline_passed {
                    (Failure::timed_out(timeout), "timed_out")
                } else {
                    (Failure::worker_lost(), "failed")
                };
                jobs.push(end_attempt_badly(
                    &tx, &attempt, token, &failure, status, None,
                )?);
            }
            tx.execute(
                "DELETE FROM workers
                 WHERE disconnected_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
                   AND NOT EXISTS (SELECT 1 FROM jobs
                                   WHERE jobs.organization_id = workers.organization_id
                                     AND jobs.worker_id = workers.worker_id
                                     AND jobs.status = 'running')",
                [],
            )?;
            let next: Option<f64> = tx
                .prepare_cached(&format!(
                    "SELECT (julianday(min(lease_expires_at)) - julianday('now')) * 86400.0
                     FROM jobs WHERE status IN {from}"
                ))?
                .query_row([], |r| r.get(0))?;
            tx.commit()?;
            Ok(Expired {
                jobs,
                next_expiry_in: next.map(|s| Duration::from_secs_f64(s.max(0.0))),
            })
        })
        .await
    }

    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>> {
        let worker = worker.clone();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                &format!(
                    "INSERT INTO workers (organization_id, worker_id, session_id, handlers,
                                          max_in_flight, sdk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (organization_id, worker_id) DO UPDATE
                     SET session_id = excluded.session_id, handlers = excluded.handlers,
                         max_in_flight = excluded.max_in_flight, sdk = excluded.sdk,
                         connected_at = {NOW}, last_heartbeat_at = {NOW}, disconnected_at = NULL"
                ),
                params![
                    org.0.to_string(),
                    worker.worker_id,
                    worker.session_id.to_string(),
                    to_json(&worker.handlers),
                    worker.max_in_flight,
                    worker.sdk
                ],
            )?;
            let held = tx
                .prepare(&format!(
                    "SELECT lease_token, id FROM jobs
                     WHERE organization_id = ?1 AND worker_id = ?2 AND status IN {from}
                       AND lease_expires_at > {NOW}",
                    from = status_list(Transition::Ack.from()),
                ))?
                .query_map(params![org.0.to_string(), worker.worker_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .map(|r| {
                    let (token, id) = r?;
                    Ok(HeldLease {
                        token: uuid(token)?,
                        job_id: uuid(id)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let worker_id = worker_id.to_string();
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "UPDATE workers SET last_heartbeat_at = {NOW}
                 WHERE organization_id = ?1 AND worker_id = ?2 AND session_id = ?3"
            ))?
            .execute(params![
                org.0.to_string(),
                worker_id,
                session_id.to_string()
            ])?;
            Ok(())
        })
        .await
    }

    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let worker_id = worker_id.to_string();
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "UPDATE workers SET disconnected_at = {NOW}
                     WHERE organization_id = ?1 AND worker_id = ?2 AND session_id = ?3"
                ),
                params![org.0.to_string(), worker_id, session_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_workers(
        &self,
        org: OrgId,
        alive: Duration,
    ) -> Result<Vec<chronos_proto::worker::ConnectedWorker>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT w.worker_id, w.session_id, w.handlers, w.max_in_flight, w.sdk,
                        w.connected_at, w.last_heartbeat_at,
                        (SELECT count(*) FROM jobs j
                         WHERE j.organization_id = w.organization_id
                           AND j.worker_id = w.worker_id AND j.status = 'running') AS in_flight
                 FROM workers w
                 WHERE w.organization_id = ?1 AND w.disconnected_at IS NULL
                   AND w.last_heartbeat_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
                 ORDER BY w.connected_at, w.worker_id",
            )?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    format!("-{:.3} seconds", alive.as_secs_f64())
                ],
                |r| {
                    Ok((|| {
                        Ok(chronos_proto::worker::ConnectedWorker {
                            worker_id: r.get("worker_id")?,
                            session_id: uuid(r.get("session_id")?)?,
                            handlers: serde_json::from_str(&r.get::<_, String>("handlers")?)
                                .map_err(|e| corrupt("handlers", e))?,
                            max_in_flight: u32_col(r, "max_in_flight")?,
                            in_flight: u32_col(r, "in_flight")?,
                            sdk: r.get("sdk")?,
                            connected_at: ts(r.get("connected_at")?)?,
                            last_heartbeat_at: ts(r.get("last_heartbeat_at")?)?,
                        })
                    })())
                },
            )?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    /// One server per file: nobody else queues jobs behind our back.
    fn watch_changes(
        &self,
        _on_change: super::ChangeFn,
        _shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

/// A time modifier for SQLite's date functions: `+12.500 seconds`.
fn modifier(d: Duration) -> String {
    format!("+{:.3} seconds", d.as_secs_f64())
}

fn wake_key(row: &Row) -> Result<WakeKey> {
    let delivery_type: String = row.get("delivery_type")?;
    Ok(if delivery_type == "push" {
        WakeKey::Push
    } else {
        WakeKey::Pull(
            OrgId(uuid(row.get("organization_id")?)?),
            row.get::<_, Option<String>>("handler")?.unwrap_or_default(),
        )
    })
}

fn signing_secret_from_row(row: &Row) -> Result<SigningSecretRecord> {
    Ok(SigningSecretRecord {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        secret: row.get("secret")?,
        previous_secret: row.get("previous_secret")?,
        previous_expires_at: opt_ts(row.get("previous_expires_at")?)?,
        created_at: ts(row.get("created_at")?)?,
        rotated_at: opt_ts(row.get("rotated_at")?)?,
    })
}

/// The most schedules one scheduler pass fires.
const FIRE_BATCH: usize = 100;

fn read_schedule(conn: &Connection, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules s
         LEFT JOIN jobs lj ON lj.id = s.last_job_id
         WHERE s.organization_id = ?1 AND s.id = ?2"
    ))?
    .query_row(params![org.0.to_string(), id.to_string()], |row| {
        Ok(schedule_from_row(row))
    })
    .optional()?
    .transpose()
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
        template: serde_json::from_str(&template).map_err(|e| corrupt("template", e))?,
        catch_up: enum_parse("catch_up", row.get("catch_up")?)?,
        overlap: enum_parse("overlap", row.get("overlap")?)?,
        failure_notify: row.get("failure_notify")?,
        anchor_at: ts(row.get("anchor_at")?)?,
        next_run_at: opt_ts(row.get("next_run_at")?)?,
        waiting_fire_at: opt_ts(row.get("waiting_fire_at")?)?,
        last_run_at: opt_ts(row.get("last_run_at")?)?,
        last_job_id: row
            .get::<_, Option<String>>("last_job_id")?
            .map(uuid)
            .transpose()?,
        last_status: last_status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
    })
}

/// Inserts a schedule's job for the due time `fire_at`, due now; `None` if
/// that due time has its job already.
fn insert_fire(
    conn: &Connection,
    org: OrgId,
    job: &NewJob,
    fire_at: Timestamp,
) -> Result<Option<Job>> {
    let delivery_type = job.delivery.kind();
    conn.prepare_cached(&format!(
        "INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority,
             status, delivery_type, delivery, run_at, max_retries, timeout_seconds,
             schedule_id, target_host, fire_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '{queued}', ?8, ?9, {NOW}, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT DO NOTHING
         RETURNING {JOB_COLUMNS}",
        queued = waiting_status(true).as_str(),
    ))?
    .query_row(
        params![
            job.id.to_string(),
            org.0.to_string(),
            job.name,
            job.handler,
            to_json(&job.payload),
            job.queue,
            job.priority,
            delivery_type,
            to_json(&job.delivery),
            job.max_retries,
            job.timeout_seconds,
            job.schedule_id.map(|s| s.to_string()),
            target_host(&job.delivery),
            fire_at.to_string(),
        ],
        |row| Ok(job_from_row(row)),
    )
    .optional()?
    .transpose()
}

/// Inserts one job of a batch (in the caller's transaction), or finds the
/// job holding its idempotency key.
fn insert_job(conn: &Connection, org: OrgId, job: &NewJob) -> Result<Inserted> {
    if let Some(key) = &job.idempotency_key {
        let existing: Option<String> = conn
            .prepare_cached(
                "SELECT id FROM jobs WHERE organization_id = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![org.0.to_string(), key], |r| r.get(0))
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Inserted::Conflict {
                existing: uuid(existing)?,
            });
        }
    }
    // run_at from SQLite's clock: a modifier such as '+7200.000 seconds'.
    let (at, modifier) = match job.run_at {
        RunAt::Now => (None, modifier(Duration::ZERO)),
        RunAt::After(d) => (None, modifier(d)),
        RunAt::At(t) => (Some(t.to_string()), modifier(Duration::ZERO)),
    };
    let delivery_type = job.delivery.kind();
    let created = conn
        .prepare_cached(&format!(
            "INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority,
                 status, delivery_type, delivery, run_at, max_retries, timeout_seconds,
                 schedule_id, idempotency_key, target_host)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7,
                    CASE WHEN t.run_at <= {NOW} THEN ?8 ELSE ?9 END,
                    ?10, ?11, t.run_at, ?12, ?13, ?14, ?15, ?18
             FROM (SELECT COALESCE(?16, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?17))
                       AS run_at) t
             RETURNING {JOB_COLUMNS}"
        ))?
        .query_row(
            params![
                job.id.to_string(),
                org.0.to_string(),
                job.name,
                job.handler,
                to_json(&job.payload),
                job.queue,
                job.priority,
                waiting_status(true).as_str(),
                waiting_status(false).as_str(),
                delivery_type,
                to_json(&job.delivery),
                job.max_retries,
                job.timeout_seconds,
                job.schedule_id.map(|s| s.to_string()),
                job.idempotency_key,
                at,
                modifier,
                target_host(&job.delivery),
            ],
            |row| Ok(job_from_row(row)),
        )??;
    Ok(Inserted::Created(Box::new(created)))
}

/// Leases the queued job `id` (in the caller's transaction): running, a
/// new attempt and token, a deadline, an open execution.
/// The deadline is `timeout + margin` from now.
fn lease_one(
    conn: &Connection,
    id: &str,
    worker_id: Option<&str>,
    margin: Duration,
) -> Result<LeasedJob> {
    let token = Uuid::new_v4();
    let (job, expires_at) = conn
        .prepare_cached(&format!(
            "UPDATE jobs SET status = '{to}', attempt = attempt + 1, lease_token = ?2,
                 lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                                             '+' || (timeout_seconds + ?4) || ' seconds'),
                 worker_id = ?3, updated_at = {NOW}
             WHERE id = ?1
             RETURNING {JOB_COLUMNS}, lease_expires_at",
            to = Transition::Lease.to().as_str(),
        ))?
        .query_row(
            params![id, token.to_string(), worker_id, margin.as_secs_f64()],
            |row| Ok((job_from_row(row), row.get::<_, String>("lease_expires_at"))),
        )?;
    let job = job?;
    conn.prepare_cached(
        "INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id)
         VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
    )?
    .execute(params![
        Uuid::now_v7().to_string(),
        id,
        job.attempt,
        token.to_string(),
        worker_id
    ])?;
    Ok(LeasedJob {
        job,
        lease: Lease {
            token,
            expires_at: ts(expires_at?)?,
        },
    })
}

/// Completes the attempt `token` holds, if it is still current.
fn ack(
    conn: &Connection,
    end: &AttemptEnd,
    result: Option<&serde_json::Value>,
) -> Result<LeaseOutcome<Job>> {
    let (org, token) = (end.org, end.token);
    let t = Transition::Ack;
    let done = conn
        .prepare_cached(&format!(
            "UPDATE jobs SET status = '{to}', result = ?3, finished_at = {NOW},
                             updated_at = {NOW}, lease_expires_at = NULL
             WHERE organization_id = ?1 AND lease_token = ?2 AND status IN {from}
               AND lease_expires_at > {NOW}
             RETURNING {JOB_COLUMNS}",
            from = status_list(t.from()),
            to = t.to().as_str(),
        ))?
        .query_row(
            params![org.0.to_string(), token.to_string(), result.map(to_json)],
            |row| Ok(job_from_row(row)),
        )
        .optional()?
        .transpose()?;
    match done {
        Some(job) => {
            close_execution(conn, token, "completed", None, end.response.as_ref())?;
            Ok(LeaseOutcome::Done(job))
        }
        None => lease_miss(conn, org, token),
    }
}

/// Fails the attempt `token` holds, if it is still current.
fn fail(conn: &Connection, end: &AttemptEnd, failure: &Failure) -> Result<LeaseOutcome<Job>> {
    let (org, token) = (end.org, end.token);
    let attempt = conn
        .prepare_cached(&format!(
            "SELECT id, attempt, attempt_base, max_retries FROM jobs
             WHERE organization_id = ?1 AND lease_token = ?2 AND status IN {from}
               AND lease_expires_at > {NOW}",
            from = status_list(Transition::Fail.from()),
        ))?
        .query_row(params![org.0.to_string(), token.to_string()], |row| {
            Ok(AttemptRow::read(row))
        })
        .optional()?
        .transpose()?;
    match attempt {
        Some(attempt) => Ok(LeaseOutcome::Done(end_attempt_badly(
            conn,
            &attempt,
            token,
            failure,
            "failed",
            end.response.as_ref(),
        )?)),
        None => lease_miss(conn, org, token),
    }
}

/// The columns of a running job that decide what follows its failure.
struct AttemptRow {
    id: String,
    attempts_in_budget: u32,
    max_retries: u32,
}

impl AttemptRow {
    fn read(row: &Row) -> Result<Self> {
        Ok(AttemptRow {
            id: row.get("id")?,
            attempts_in_budget: u32_col(row, "attempt")? - u32_col(row, "attempt_base")?,
            max_retries: u32_col(row, "max_retries")?,
        })
    }
}

/// An ack, fail or extend matched no current lease: was the token ever one
/// of this organization's?
fn lease_miss<T>(conn: &Connection, org: OrgId, token: Uuid) -> Result<LeaseOutcome<T>> {
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job_id
                            WHERE e.lease_token = ?2 AND j.organization_id = ?1)",
        )?
        .query_row(params![org.0.to_string(), token.to_string()], |r| r.get(0))?;
    Ok(if known {
        LeaseOutcome::Lost
    } else {
        LeaseOutcome::Unknown
    })
}

/// Records how the attempt `token` ended on its execution.
fn close_execution(
    conn: &Connection,
    token: Uuid,
    status: &str,
    error: Option<&str>,
    response: Option<&HttpResponse>,
) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE executions SET status = ?2, error = ?3, finished_at = {NOW},
                               http_status = ?4, response_body = ?5, response_truncated = ?6
         WHERE lease_token = ?1"
    ))?
    .execute(params![
        token.to_string(),
        status,
        error,
        response.map(|r| r.status),
        response.map(|r| r.body.as_str()),
        response.is_some_and(|r| r.truncated),
    ])?;
    Ok(())
}

/// Ends the attempt `token` as failed or timed out, and schedules the job
/// again or fails it, as the state machine decides.
fn end_attempt_badly(
    conn: &Connection,
    attempt: &AttemptRow,
    token: Uuid,
    failure: &Failure,
    execution_status: &str,
    response: Option<&HttpResponse>,
) -> Result<Job> {
    close_execution(
        conn,
        token,
        execution_status,
        Some(&failure.error),
        response,
    )?;
    let decision = after_failure(attempt.attempts_in_budget, attempt.max_retries, failure);
    let job = match decision {
        AfterFailure::RetryIn(delay) => conn
            .prepare_cached(&format!(
                "UPDATE jobs SET run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
                     status = CASE WHEN ?3 THEN '{queued}' ELSE '{scheduled}' END,
                     last_error = ?4, lease_expires_at = NULL, updated_at = {NOW}
                 WHERE id = ?1
                 RETURNING {JOB_COLUMNS}",
                queued = waiting_status(true).as_str(),
                scheduled = waiting_status(false).as_str(),
            ))?
            .query_row(
                params![attempt.id, modifier(delay), delay.is_zero(), failure.error],
                |row| Ok(job_from_row(row)),
            )??,
        AfterFailure::GiveUp => conn
            .prepare_cached(&format!(
                "UPDATE jobs SET status = '{failed}', last_error = ?2, finished_at = {NOW},
                                 lease_expires_at = NULL, updated_at = {NOW}
                 WHERE id = ?1
                 RETURNING {JOB_COLUMNS}",
                failed = GIVEN_UP.as_str(),
            ))?
            .query_row(params![attempt.id, failure.error], |row| {
                Ok(job_from_row(row))
            })??,
    };
    Ok(job)
}
