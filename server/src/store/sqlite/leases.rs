//! Every statement that changes a job's status, and the lease engine's
//! other writes (inserting jobs, firing schedules), which live with their
//! concepts in `jobs.rs` and `schedules.rs`.
//!
//! Each status `UPDATE` is guarded by `status IN (transition.from())`
//! (`crate::job::state`); statuses come from their enums. An attempt starts
//! in one way only, [`lease_one`], whoever leases (a worker, a hand-off,
//! push delivery).

use super::flow::{Slot, fill_freed, freed, held_slot};
use super::jobs::{Inserting, insert_job, job_by_id, job_from_row};
use super::{
    ENDED_COLUMNS, MOVED_COLUMNS, NOW, SqliteStore, ended_from_row, lease_miss, modifier,
    moved_from_row, seconds_from_now, to_json, ts, u32_col, uuid, wake_key,
};
use crate::account::OrgId;
use crate::endpoint::{Enabled, EndpointKey, HealthPolicy, Tally};
use crate::job::NewJob;
use crate::job::slots::{MAX_LEASE_BATCH, Taker, lease_slots};
use crate::job::state::{
    CANCELLED_ERROR, CANCELLED_EXECUTION, Cause, Ending, GIVEN_UP, LEASED, RunningAttempt,
    Transition,
};
use crate::schedule::PlanFn;
use crate::store::jobs::JOB_COLUMNS;
use crate::store::plans::PastQuota;
use crate::store::{
    AttemptEnd, CancelOutcome, Clock, Expired, FREE_FLOW, Fired, Handoff, HttpResponse, Inserted,
    LeaseOutcome, LeaseStore, Moved, Outcome, Promoted, PushSlots, RateReleases, Result,
    RetryOutcome, queued_push_test, status_test,
};
use crate::store::{FanOutCreated, HealthRecorded, NOT_HELD, Published};
use crate::target_group::NewFanOut;
use async_trait::async_trait;
use chronos_proto::{ExecutionStatus, Lease, LeasedJob, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The job of the lease token `?2`, found through its execution: `jobs` has
/// no index on `lease_token` (see postgres/migrations/0007). The statements
/// still compare `jobs.lease_token`, which is what fences.
const JOB_OF_TOKEN: &str = "SELECT job_id FROM executions WHERE lease_token = ?2";

/// How many attempts one sweeper pass ends at most.
const EXPIRE_BATCH: i64 = 100;

/// A push job's host as its queued index orders it (migration 0007).
const PUSH_HOST: &str = "coalesce(target_host, '')";
/// How many scheduled jobs one promotion pass moves at most.
const PROMOTE_BATCH: i64 = 1000;

pub(super) struct Sql {
    pub(super) next_in_line: String,
    failed: String,
    reflow: String,
    queued_ahead: String,
    promote: String,
    next_due: String,
    pick: String,
    /// `pick` for a key limited to the queues `?4` (a JSON array).
    pick_in_queues: String,
    push_first_host: String,
    push_next_host: String,
    push_head: String,
    lease: String,
    open_execution: String,
    ack: String,
    find_running: String,
    close_execution: String,
    end_badly: String,
    extend: String,
    release: String,
    retry: String,
    cancel: String,
    cancel_execution: String,
    find_expired: String,
    pub(super) forget_workers: String,
    next_expiry: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let lease = Transition::Lease;
        let fail = Transition::Fail;
        let c = |s: String| clock.sqlite(s);
        Sql {
            next_in_line: crate::store::flow::next_in_line("?1", "?2"),
            failed: super::queues::failed_sql(clock),
            reflow: super::queues::reflow_sql(),
            // A job of a controlled queue is never handed off: only the
            // controlled lease may start it.
            queued_ahead: format!(
                "SELECT EXISTS (SELECT 1 FROM jobs
                                WHERE organization_id = ?1 AND status {from}
                                  AND delivery_type = 'pull' AND handler = ?2 AND id != ?3
                                  AND {FREE_FLOW})
                        OR (SELECT flow FROM jobs WHERE id = ?3) <> 0",
                from = status_test(lease.from()),
            ),
            promote: {
                let t = Transition::Promote;
                c(format!(
                    "UPDATE jobs SET status = '{to}', updated_at = {NOW}
                     WHERE id IN (SELECT id FROM jobs
                                  WHERE status {from} AND {NOT_HELD} AND run_at <= {NOW}
                                  ORDER BY run_at LIMIT {PROMOTE_BATCH})
                       AND status {from}
                     RETURNING organization_id, handler, delivery_type",
                    to = t.to().as_str(),
                    from = status_test(t.from()),
                ))
            },
            next_due: c(format!(
                "SELECT (julianday(min(run_at)) - julianday('now')) * 86400.0 FROM jobs
                 WHERE status {from} AND {NOT_HELD} AND run_at > {NOW}",
                from = status_test(Transition::Promote.from()),
            )),
            // Each handler's best jobs from the head of its own index range,
            // then the best of those (in Rust): `handler IN (…)` would sort
            // them all.
            pick: pick(""),
            pick_in_queues: pick(" AND queue IN (SELECT value FROM json_each(?4))"),
            // The first host with queued push jobs, and the next after ?1,
            // through the index that leads with the host: one probe each,
            // never a host's backlog.
            push_first_host: format!(
                "SELECT {host} FROM jobs
                 WHERE {queued_push}
                 ORDER BY {host} LIMIT 1",
                host = PUSH_HOST,
                queued_push = queued_push_test(),
            ),
            push_next_host: format!(
                "SELECT {host} FROM jobs
                 WHERE {queued_push} AND {host} > ?1
                 ORDER BY {host} LIMIT 1",
                host = PUSH_HOST,
                queued_push = queued_push_test(),
            ),
            // A host's best queued push jobs.
            push_head: format!(
                "SELECT id, organization_id, priority, run_at FROM jobs
                 WHERE {queued_push} AND {host} = ?1
                 ORDER BY priority DESC, run_at, id
                 LIMIT ?2",
                host = PUSH_HOST,
                queued_push = queued_push_test(),
            ),
            lease: c(format!(
                "UPDATE jobs SET status = '{to}', attempt = attempt + 1, lease_token = ?2,
                     lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                                                 '+' || (timeout_seconds + ?4) || ' seconds'),
                     worker_id = ?3, updated_at = {NOW}
                 WHERE id = ?1 AND status {from}
                 RETURNING {JOB_COLUMNS}, lease_expires_at",
                to = lease.to().as_str(),
                from = status_test(lease.from()),
            )),
            open_execution: c(format!(
                "INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id,
                                         started_at)
                 VALUES (?1, ?2, ?3, '{running}', ?4, ?5, {NOW})",
                running = ExecutionStatus::Running.as_str(),
            )),
            ack: {
                let t = Transition::Ack;
                c(format!(
                    "UPDATE jobs SET status = '{to}', result = ?3, finished_at = {NOW},
                                     updated_at = {NOW}, lease_expires_at = NULL
                     WHERE id = ({JOB_OF_TOKEN}) AND organization_id = ?1
                       AND lease_token = ?2 AND status {from}
                       AND lease_expires_at > {NOW}
                     RETURNING {ENDED_COLUMNS}",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                ))
            },
            find_running: c(format!(
                "SELECT id, attempt, attempt_base, max_retries, timeout_seconds FROM jobs
                 WHERE id = ({JOB_OF_TOKEN}) AND organization_id = ?1
                       AND lease_token = ?2 AND status {from}
                   AND lease_expires_at > {NOW}",
                from = status_test(fail.from()),
            )),
            close_execution: c(format!(
                "UPDATE executions SET status = ?2, error = ?3, finished_at = {NOW},
                                       http_status = ?4, response_body = ?5, response_truncated = ?6,
                                       response_body_encoding = ?7
                 WHERE lease_token = ?1"
            )),
            // The state machine decided the ending (?2 the job's next
            // status, ?3 when it is due again, NULL when it has failed).
            end_badly: c(format!(
                "UPDATE jobs SET status = ?2,
                     run_at = coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), run_at),
                     finished_at = CASE WHEN ?3 IS NULL THEN {NOW} END,
                     last_error = ?4, lease_expires_at = NULL, updated_at = {NOW}
                 WHERE id = ?1 AND status {from}
                 RETURNING {ENDED_COLUMNS}",
                from = status_test(fail.from()),
            )),
            extend: c(format!(
                "UPDATE jobs SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3),
                                 updated_at = {NOW}
                 WHERE id = ({JOB_OF_TOKEN}) AND organization_id = ?1
                       AND lease_token = ?2 AND status {leased}
                   AND lease_expires_at > {NOW}
                 RETURNING lease_expires_at",
                leased = status_test(LEASED),
            )),
            release: {
                let t = Transition::Release;
                c(format!(
                    "UPDATE jobs SET status = '{to}', attempt_base = attempt_base + 1,
                                     lease_expires_at = NULL, updated_at = {NOW}
                     WHERE id = ({JOB_OF_TOKEN}) AND organization_id = ?1
                       AND lease_token = ?2 AND status {from}
                       AND lease_expires_at > {NOW}
                     RETURNING {MOVED_COLUMNS}",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                ))
            },
            retry: {
                let t = Transition::Retry;
                c(format!(
                    "UPDATE jobs SET status = '{to}', run_at = {NOW}, attempt_base = attempt,
                                     result = NULL, finished_at = NULL, lease_expires_at = NULL,
                                     outcome_published = 0, updated_at = {NOW}
                     WHERE organization_id = ?1 AND id = ?2 AND status {from}
                     RETURNING {JOB_COLUMNS}",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                ))
            },
            cancel: {
                let t = Transition::Cancel;
                c(format!(
                    "UPDATE jobs SET status = '{to}', finished_at = {NOW}, updated_at = {NOW},
                                     lease_expires_at = NULL, held_reason = NULL
                     WHERE organization_id = ?1 AND id = ?2 AND status {from}
                     RETURNING {JOB_COLUMNS}",
                    to = t.to().as_str(),
                    from = status_test(t.from()),
                ))
            },
            cancel_execution: c(format!(
                "UPDATE executions SET status = '{closed}', error = '{CANCELLED_ERROR}',
                                       finished_at = {NOW}
                 WHERE job_id = ?1 AND status = '{running}'",
                closed = CANCELLED_EXECUTION.as_str(),
                running = ExecutionStatus::Running.as_str(),
            )),
            find_expired: c(format!(
                "SELECT j.id, j.attempt, j.attempt_base, j.max_retries, j.timeout_seconds,
                        j.lease_token, j.lease_expires_at <= {NOW} AS deadline_passed
                 FROM jobs j
                 LEFT JOIN workers w
                        ON w.organization_id = j.organization_id AND w.worker_id = j.worker_id
                 WHERE j.status {from}
                   AND (j.lease_expires_at <= {NOW}
                        OR w.disconnected_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)
                        OR (w.disconnected_at IS NULL
                            AND w.last_heartbeat_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)))
                 ORDER BY j.lease_expires_at
                 LIMIT {EXPIRE_BATCH}",
                from = status_test(fail.from()),
            )),
            // Rows of workers long gone, holding nothing, are forgotten.
            // `+jobs.organization_id`: through the running jobs' index, not
            // every job of the organization (see `workers::Sql::held`).
            forget_workers: c(format!(
                "DELETE FROM workers
                 WHERE disconnected_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
                   AND NOT EXISTS (SELECT 1 FROM jobs
                                   WHERE +jobs.organization_id = workers.organization_id
                                     AND jobs.worker_id = workers.worker_id
                                     AND jobs.status {leased})",
                leased = status_test(LEASED),
            )),
            next_expiry: c(format!(
                "SELECT (julianday(min(lease_expires_at)) - julianday('now')) * 86400.0
                 FROM jobs WHERE status {leased}",
                leased = status_test(LEASED),
            )),
        }
    }
}

/// The best queued pull jobs of the handler `?2`, at most `?3`,
/// `in_queues` added (a key limited to some queues).
fn pick(in_queues: &str) -> String {
    format!(
        "SELECT priority, run_at, id FROM jobs
         WHERE organization_id = ?1 AND status {from} AND delivery_type = 'pull'
           AND handler = ?2 AND {FREE_FLOW}{in_queues}
         ORDER BY priority DESC, run_at, id
         LIMIT ?3",
        from = status_test(Transition::Lease.from()),
    )
}

/// Leases the queued job `id` (in the caller's transaction): running, a
/// new attempt and token, a deadline `timeout + margin` from now, an open
/// execution. `None` if the job is not queued.
pub(super) fn lease_one(
    conn: &Connection,
    sql: &Sql,
    id: &str,
    worker_id: Option<&str>,
    margin: Duration,
) -> Result<Option<LeasedJob>> {
    // UUIDv7: each new token lands at the end of its index (see
    // `postgres::leases::attempt_ids`).
    let token = Uuid::now_v7();
    let leased = conn
        .prepare_cached(&sql.lease)?
        .query_row(
            params![id, token.to_string(), worker_id, margin.as_secs_f64()],
            |row| Ok((job_from_row(row), row.get::<_, String>("lease_expires_at"))),
        )
        .optional()?;
    let Some((job, expires_at)) = leased else {
        return Ok(None);
    };
    let job = job?;
    conn.prepare_cached(&sql.open_execution)?.execute(params![
        Uuid::now_v7().to_string(),
        id,
        job.attempt,
        token.to_string(),
        worker_id
    ])?;
    Ok(Some(LeasedJob {
        job,
        lease: Lease {
            token,
            expires_at: ts(expires_at?)?,
        },
    }))
}

/// Records how the attempt `token` ended on its execution.
fn close_execution(
    conn: &Connection,
    sql: &Sql,
    token: Uuid,
    status: ExecutionStatus,
    error: Option<&str>,
    response: Option<&HttpResponse>,
) -> Result<()> {
    conn.prepare_cached(&sql.close_execution)?.execute(params![
        token.to_string(),
        status.as_str(),
        error,
        response.map(|r| r.status),
        response.map(|r| r.body.as_str()),
        response.is_some_and(|r| r.truncated),
        response.and_then(HttpResponse::encoding_column),
    ])?;
    Ok(())
}

/// Completes the attempt `token` holds, if it is still current; with the
/// controlled queue whose slot it held, for [`fill_freed`].
fn ack(
    conn: &Connection,
    sql: &Sql,
    end: &AttemptEnd,
    result: Option<&serde_json::Value>,
) -> Result<LeaseOutcome<(Moved, Slot)>> {
    let (org, token) = (end.org, end.token);
    let done = conn
        .prepare_cached(&sql.ack)?
        .query_row(
            params![org.0.to_string(), token.to_string(), result.map(to_json)],
            |row| Ok((ended_from_row(row, end.whole_job), held_slot(row)?)),
        )
        .optional()?;
    match done {
        Some((moved, slot)) => {
            let completed = ExecutionStatus::Completed;
            close_execution(conn, sql, token, completed, None, end.response.as_ref())?;
            Ok(LeaseOutcome::Done((moved?, slot)))
        }
        None => lease_miss(conn, org, token),
    }
}

fn running_attempt(row: &Row) -> Result<RunningAttempt> {
    Ok(RunningAttempt {
        attempt: u32_col(row, "attempt")?,
        attempt_base: u32_col(row, "attempt_base")?,
        max_retries: u32_col(row, "max_retries")?,
        timeout_seconds: u32_col(row, "timeout_seconds")?,
    })
}

/// Fails the attempt `token` holds, if it is still current; with the
/// controlled queue whose slot it held, for [`fill_freed`].
fn fail(
    conn: &Connection,
    sql: &Sql,
    end: &AttemptEnd,
    failure: &crate::job::state::Failure,
) -> Result<LeaseOutcome<(Moved, Slot)>> {
    let (org, token) = (end.org, end.token);
    let running = conn
        .prepare_cached(&sql.find_running)?
        .query_row(params![org.0.to_string(), token.to_string()], |row| {
            Ok((row.get::<_, String>("id")?, running_attempt(row)))
        })
        .optional()?;
    match running {
        Some((id, attempt)) => {
            let ending = attempt?.end(Cause::Reported(failure.clone()));
            Ok(LeaseOutcome::Done(end_badly(
                conn,
                sql,
                &id,
                token,
                &ending,
                end.response.as_ref(),
                end.whole_job,
            )?))
        }
        None => lease_miss(conn, org, token),
    }
}

/// Writes the ending the state machine decided for the attempt `token`
/// of job `id`; the whole job in the answer when `whole_job`. Returns the
/// controlled queue whose slot it held too: its next jobs are read once
/// per queue after the last end of a batch ([`fill_freed`]), not per job.
fn end_badly(
    conn: &Connection,
    sql: &Sql,
    id: &str,
    token: Uuid,
    ending: &Ending,
    response: Option<&HttpResponse>,
    whole_job: bool,
) -> Result<(Moved, Slot)> {
    close_execution(
        conn,
        sql,
        token,
        ending.execution,
        Some(&ending.error),
        response,
    )?;
    let due_in = ending
        .retry_in_seconds()
        .map(|s| modifier(Duration::from_secs_f64(s)));
    let (moved, slot, queue) = conn.prepare_cached(&sql.end_badly)?.query_row(
        params![id, ending.job_status().as_str(), due_in, ending.error],
        |row| {
            let queue: (String, String) = (row.get("organization_id")?, row.get("queue")?);
            Ok((ended_from_row(row, whole_job), held_slot(row)?, queue))
        },
    )?;
    let moved = moved?;
    if moved.status == GIVEN_UP {
        // It died: its queue's failure mode applies, in this transaction,
        // so nothing starts in between.
        let (org, name) = queue;
        let flow: Option<i64> = conn
            .prepare_cached(&sql.failed)?
            .query_row(params![org, name], |r| r.get(0))
            .optional()?;
        if let Some(flow) = flow {
            conn.prepare_cached(&sql.reflow)?
                .execute(params![org, name, flow])?;
        }
    }
    Ok((moved, slot))
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        self.call(move |conn, sql| {
            // One transaction, one commit, for the whole batch.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut inserting = Inserting::new(PastQuota::Refuse);
            let inserted = jobs
                .iter()
                .map(|job| insert_job(&tx, sql, &mut inserting, org, job))
                .collect::<Result<Vec<_>>>()?;
            inserting.finish(&tx, sql, org)?;
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    async fn create_fan_out(
        &self,
        org: OrgId,
        fan_out: NewFanOut,
        jobs: Vec<NewJob>,
    ) -> Result<FanOutCreated> {
        self.call(move |conn, sql| super::fan_outs::create(conn, sql, org, &fan_out, &jobs))
            .await
    }

    async fn publish_outcomes(&self, limit: u32) -> Result<Published> {
        self.call(move |conn, sql| super::fan_outs::publish(conn, sql, limit))
            .await
    }

    async fn record_endpoint_health(
        &self,
        tallies: Vec<((OrgId, EndpointKey), Tally)>,
        policy: HealthPolicy,
    ) -> Result<HealthRecorded> {
        self.call(move |conn, sql| super::endpoints::record(conn, sql, tallies, policy))
            .await
    }

    async fn hold_for_disabled_endpoints(&self, limit: u32) -> Result<u64> {
        self.call(move |conn, sql| super::endpoints::hold(conn, sql, limit))
            .await
    }

    async fn hold_leased(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Uuid>> {
        self.call(move |conn, sql| super::endpoints::hold_leased(conn, sql, org, token))
            .await
    }

    async fn enable_endpoint(&self, org: OrgId, id: Uuid) -> Result<Enabled> {
        self.call(move |conn, sql| super::endpoints::enable(conn, sql, org, id))
            .await
    }

    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff> {
        let worker_id = worker_id.map(str::to_string);
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut inserting = Inserting::new(PastQuota::Refuse);
            let created = match insert_job(&tx, sql, &mut inserting, org, &job)? {
                Inserted::Conflict { existing } => return Ok(Handoff::Conflict { existing }),
                Inserted::OverQuota(refusal) => return Ok(Handoff::OverQuota(refusal)),
                Inserted::Created(created) => created,
            };
            inserting.finish(&tx, sql, org)?;
            // A job of this handler already queued: this one queues behind it.
            let busy: bool = tx.prepare_cached(&sql.leases.queued_ahead)?.query_row(
                params![org.0.to_string(), job.handler, job.id.to_string()],
                |r| r.get(0),
            )?;
            let leased = if busy {
                None
            } else {
                let id = job.id.to_string();
                lease_one(&tx, &sql.leases, &id, worker_id.as_deref(), Duration::ZERO)?
            };
            tx.commit()?;
            Ok(match leased {
                Some(leased) => Handoff::Leased(Box::new(leased)),
                None => Handoff::Queued(created),
            })
        })
        .await
    }

    async fn rate_releases(&self, since: Option<Timestamp>) -> Result<RateReleases> {
        self.call(move |conn, sql| super::flow::rate_releases(conn, &sql.flow, &sql.leases, since))
            .await
    }

    async fn promote_due_jobs(&self) -> Result<Promoted> {
        self.call(|conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut woken = Vec::new();
            let mut count = 0;
            {
                let mut stmt = tx.prepare_cached(&sql.leases.promote)?;
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
                .prepare_cached(&sql.leases.next_due)?
                .query_row([], |r| r.get(0))?;
            tx.commit()?;
            Ok(Promoted {
                count,
                woken,
                next_due_in: seconds_from_now(next),
            })
        })
        .await
    }

    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        queues: Option<&[String]>,
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>> {
        let handlers = handlers.to_vec();
        let takers = takers.to_vec();
        let queues = queues.map(<[String]>::to_vec);
        // A JSON array for `json_each`, as a queue limit is bound.
        let limited_to = queues
            .as_ref()
            .map(|q| serde_json::to_string(q).expect("strings serialize"));
        self.call(move |conn, sql_all| {
            let sql = &sql_all.leases;
            let slots = lease_slots(&takers, MAX_LEASE_BATCH);
            let mut leased: Vec<Vec<LeasedJob>> = vec![Vec::new(); takers.len()];
            if slots.is_empty() {
                return Ok(leased);
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Controlled queues' jobs first, so that a long backlog of free
            // jobs can't starve a limited queue; then free jobs.
            let workers: Vec<Option<&str>> = slots
                .iter()
                .map(|&i| takers[i].worker_id.as_deref())
                .collect();
            let controlled = super::flow::lease_pull(
                &tx,
                &sql_all.flow,
                sql,
                org,
                &handlers,
                queues.as_deref(),
                &workers,
            )?;
            let taken = controlled.len();
            for (n, job) in controlled {
                leased[slots[n]].push(job);
            }
            let slots = &slots[taken..];
            if slots.is_empty() {
                tx.commit()?;
                return Ok(leased);
            }
            let mut best: Vec<(i64, String, String)> = Vec::new();
            let org_id = org.0.to_string();
            let room = slots.len() as i64;
            for handler in &handlers {
                let mut pick = match &limited_to {
                    None => tx.prepare_cached(&sql.pick)?,
                    Some(_) => tx.prepare_cached(&sql.pick_in_queues)?,
                };
                let read = |r: &rusqlite::Row| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
                let rows = match &limited_to {
                    None => pick.query_map(params![org_id, handler, room], read)?,
                    Some(q) => pick.query_map(params![org_id, handler, room, q], read)?,
                };
                for row in rows {
                    best.push(row?);
                }
            }
            best.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
            let ids = best.into_iter().map(|(_, _, id)| id);
            // The n-th best job goes to the n-th slot's taker.
            for (id, &taker) in ids.zip(slots) {
                let worker = takers[taker].worker_id.as_deref();
                if let Some(job) = lease_one(&tx, sql, &id, worker, Duration::ZERO)? {
                    leased[taker].push(job);
                }
            }
            tx.commit()?;
            Ok(leased)
        })
        .await
    }

    async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        let slots = slots.clone();
        self.call(move |conn, sql_all| {
            let sql = &sql_all.leases;
            if slots.max == 0 {
                return Ok(Vec::new());
            }
            let max = slots.max.min(MAX_LEASE_BATCH as u32) as usize;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Controlled queues' jobs first, so that a long backlog of free
            // jobs can't starve a limited queue; then free jobs, in the room
            // left.
            let mut busy: HashMap<String, u32> = slots.busy.iter().cloned().collect();
            let controlled = super::flow::lease_push(
                &tx,
                &sql_all.flow,
                sql,
                max,
                slots.per_host,
                &mut busy,
                slots.lease_margin,
            )?;
            let max = max - controlled.len();
            let slots = PushSlots {
                busy: busy.into_iter().collect(),
                ..slots
            };
            // The hosts in turn (as the PostgreSQL store walks them): after
            // the last one served, then from the first up to it; no more
            // than there are slots.
            let first = |tx: &rusqlite::Transaction| -> Result<Option<String>> {
                Ok(tx
                    .prepare_cached(&sql.push_first_host)?
                    .query_row([], |r| r.get(0))
                    .optional()?)
            };
            let next = |tx: &rusqlite::Transaction, after: &str| -> Result<Option<String>> {
                Ok(tx
                    .prepare_cached(&sql.push_next_host)?
                    .query_row([after], |r| r.get(0))
                    .optional()?)
            };
            let mut hosts: Vec<String> = Vec::new();
            let mut at = match &slots.after {
                Some(after) => next(&tx, after)?,
                None => first(&tx)?,
            };
            while let Some(host) = at.take() {
                if hosts.len() >= max {
                    break;
                }
                at = next(&tx, &host)?;
                hosts.push(host);
            }
            if let Some(after) = &slots.after {
                let mut at = first(&tx)?;
                while let Some(host) = at.take() {
                    if hosts.len() >= max || host > *after {
                        break;
                    }
                    at = next(&tx, &host)?;
                    hosts.push(host);
                }
            }
            // Each host's head, at most its room; then the best of all.
            let busy: HashMap<&str, u32> =
                slots.busy.iter().map(|(h, n)| (h.as_str(), *n)).collect();
            let mut heads: Vec<(i64, String, String, String)> = Vec::new();
            for host in &hosts {
                let room = slots
                    .per_host
                    .saturating_sub(busy.get(host.as_str()).copied().unwrap_or(0))
                    .min(max as u32);
                if room == 0 {
                    continue;
                }
                let mut head = tx.prepare_cached(&sql.push_head)?;
                let rows = head.query_map(params![host, room], |r| {
                    Ok((r.get(2)?, r.get(3)?, r.get(0)?, r.get(1)?))
                })?;
                for row in rows {
                    heads.push(row?);
                }
            }
            // Best first: priority descending, then due time, then id.
            heads.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
            let mut leased = controlled;
            for (_, _, id, org) in heads.into_iter().take(max) {
                if let Some(job) = lease_one(&tx, sql, &id, None, slots.lease_margin)? {
                    leased.push((OrgId(uuid(org)?), job));
                }
            }
            tx.commit()?;
            Ok(leased)
        })
        .await
    }

    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Moved>>> {
        self.call(move |conn, sql| {
            let sql = &sql.leases;
            // One transaction, one commit, for the whole batch; applied one
            // after the other, so a repeated token finds its lease gone.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = ends
                .iter()
                .map(|e| match &e.outcome {
                    Outcome::Ack(result) => ack(&tx, sql, e, result.as_ref()),
                    Outcome::Fail(failure) => fail(&tx, sql, e, failure),
                })
                .collect::<Result<Vec<_>>>()?;
            fill_freed(
                &tx,
                sql,
                outcomes.iter_mut().filter_map(|o| match o {
                    LeaseOutcome::Done((moved, slot)) => Some((moved, slot.take())),
                    _ => None,
                }),
            )?;
            tx.commit()?;
            Ok(outcomes
                .into_iter()
                .map(|o| o.map(|(moved, _)| moved))
                .collect())
        })
        .await
    }

    async fn extend_lease(
        &self,
        org: OrgId,
        token: Uuid,
        by: Duration,
    ) -> Result<LeaseOutcome<Lease>> {
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let extended = tx
                .prepare_cached(&sql.leases.extend)?
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

    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Moved>> {
        self.call(move |conn, sql| {
            let sql = &sql.leases;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let back = tx
                .prepare_cached(&sql.release)?
                .query_row(params![org.0.to_string(), token.to_string()], |row| {
                    Ok(moved_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match back {
                Some(moved) => {
                    let released = ExecutionStatus::Released;
                    close_execution(&tx, sql, token, released, None, None)?;
                    LeaseOutcome::Done(moved)
                }
                None => lease_miss(&tx, org, token)?,
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired> {
        self.call(move |conn, sql| {
            let sql = &sql.leases;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let gone = format!("-{:.3} seconds", worker_grace.as_secs_f64());
            let expired: Vec<(String, Uuid, RunningAttempt, bool)> = tx
                .prepare_cached(&sql.find_expired)?
                .query_map(params![gone], |row| {
                    Ok((
                        row.get::<_, String>("id")?,
                        row.get::<_, String>("lease_token")?,
                        running_attempt(row),
                        row.get::<_, bool>("deadline_passed")?,
                    ))
                })?
                .map(|r| {
                    let (id, token, attempt, passed) = r?;
                    Ok((id, uuid(token)?, attempt?, passed))
                })
                .collect::<Result<_>>()?;
            let mut ended = Vec::with_capacity(expired.len());
            for (id, token, attempt, deadline_passed) in expired {
                let cause = if deadline_passed {
                    Cause::DeadlinePassed
                } else {
                    Cause::WorkerGone
                };
                let ending = attempt.end(cause);
                ended.push(end_badly(&tx, sql, &id, token, &ending, None, false)?);
            }
            fill_freed(&tx, sql, ended.iter_mut().map(|(m, s)| (m, s.take())))?;
            let ended = ended.into_iter().map(|(moved, _)| moved).collect();
            tx.execute(&sql.forget_workers, [])?;
            let next: Option<f64> = tx
                .prepare_cached(&sql.next_expiry)?
                .query_row([], |r| r.get(0))?;
            tx.commit()?;
            Ok(Expired {
                ended,
                next_expiry_in: seconds_from_now(next),
            })
        })
        .await
    }

    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let cancelled = tx
                .prepare_cached(&sql.leases.cancel)?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(job_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match cancelled {
                Some(job) => {
                    tx.prepare_cached(&sql.leases.cancel_execution)?
                        .execute(params![id.to_string()])?;
                    let slot = Some((org.0.to_string(), job.queue.clone()));
                    let freed = freed(&tx, &sql.leases, slot)?;
                    CancelOutcome::Cancelled(job, freed)
                }
                None => match job_by_id(&tx, &sql.jobs, org, id)? {
                    Some(job) => CancelOutcome::AlreadyFinished(job),
                    None => CancelOutcome::NotFound,
                },
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let again = tx
                .prepare_cached(&sql.leases.retry)?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(job_from_row(row))
                })
                .optional()?
                .transpose()?;
            let outcome = match again {
                Some(job) => RetryOutcome::Retried(job),
                None => match job_by_id(&tx, &sql.jobs, org, id)? {
                    Some(job) => RetryOutcome::NotRetryable(job),
                    None => RetryOutcome::NotFound,
                },
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        self.call(move |conn, sql| super::schedules::fire(conn, sql, plan))
            .await
    }
}
