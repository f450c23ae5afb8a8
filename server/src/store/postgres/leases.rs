//! Every statement that changes a job's status, and the lease engine's
//! other writes (inserting jobs, firing schedules), which live with their
//! concepts in `jobs.rs` and `schedules.rs`.
//!
//! Each status `UPDATE` is guarded by `status IN (transition.from())`
//! (`crate::job::state`); statuses come from their enums. An attempt starts
//! in one way only: [`lease_tail`], shared by the worker lease and the push
//! lease (the hand-off, which inserts a job already running, opens its
//! execution with the same [`open_execution`]).

use super::flow::Slots;
use super::jobs::{job_from_row, key_holders};
use super::{
    CANCEL_CHANNEL, MOVED_COLUMNS, NOTIFY_CHANNEL, NOTIFY_KEYS, PgStore, WAKE_KEY_SQL,
    ended_from_row, lease_miss, moved_from_row, seconds_from_now, ts, u32_col, whole_job_columns,
};
use crate::account::OrgId;
use crate::account::plans::UNLIMITED;
use crate::endpoint::{Enabled, EndpointKey, HealthPolicy, Tally};
use crate::job::NewJob;
use crate::job::slots::{MAX_LEASE_BATCH, Taker, lease_slots};
use crate::job::state::{
    CANCELLED_ERROR, CANCELLED_EXECUTION, Cause, Ending, GIVEN_UP, LEASED, RunningAttempt,
    Transition, waiting_status,
};
use crate::schedule::PlanFn;
use crate::store::jobs::JOB_COLUMNS;
use crate::store::{
    AttemptEnd, CancelOutcome, Clock, Expired, FREE_FLOW, Fired, Handoff, HttpResponse, Inserted,
    LeaseOutcome, LeaseStore, Moved, Outcome, Promoted, PushSlots, RateReleases, Result,
    RetryOutcome, StoreError, queued_push_test, status_literals, status_test,
};
use crate::store::{FanOutCreated, HealthRecorded, NOT_HELD, Published};
use crate::target_group::NewFanOut;
use async_trait::async_trait;
use chronos_proto::{ExecutionStatus, JobStatus, Lease, LeasedJob, Timestamp};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// How many attempts one sweeper pass ends at most.
const EXPIRE_BATCH: i64 = 100;
/// How many scheduled jobs one promotion pass moves at most.
const PROMOTE_BATCH: i64 = 1000;

/// The one way a job starts an attempt. `picked` is a CTE of the jobs to
/// lease, with columns `id`, `slot` (their order in the answer), `worker`
/// (who runs it, or NULL), `execution_id` and `token` (both made by
/// [`attempt_ids`]); it must come from rows the
/// same statement selected `WHERE status IN (Transition::Lease.from())
/// FOR UPDATE SKIP LOCKED`: that pick is this UPDATE's guard. (Repeating
/// the status test here changes nothing the lock has not fixed, and cost
/// half the push delivery rate: on a young table, a prepared statement's
/// generic plan turned it into a second sequential scan of `jobs`.)
/// `margin` is added to each job's timeout for its deadline. Makes each
/// `running` with a new attempt, token and deadline (`leased`, returning the
/// job's columns with `slot`), and opens its execution (`opened`).
pub(super) fn lease_tail(picked: &str, margin: &str) -> String {
    format!(
        "leased AS (
             UPDATE jobs SET status = '{to}', attempt = attempt + 1,
                             lease_token = {picked}.token,
                             lease_expires_at = now() + make_interval(secs => timeout_seconds + {margin}),
                             worker_id = {picked}.worker, updated_at = now()
             FROM {picked}
             WHERE jobs.id = {picked}.id
             RETURNING jobs.*, {picked}.slot, {picked}.execution_id
         ), opened AS (
             {open}
         )",
        to = Transition::Lease.to().as_str(),
        open = open_execution("FROM leased"),
    )
}

/// What a statement that ends an attempt returns of the job's queue, for
/// [`super::flow::freed`].
const SLOT_COLUMNS: &str = "organization_id AS f_org, queue AS f_queue, flow AS f_flow";

/// A push job's host as its queued index orders it (migration 0009).
const PUSH_HOST: &str = "(coalesce(target_host, '') COLLATE \"C\")";

/// Opens the execution of each job a lease just started; `from` names the
/// rows (with `id`, `attempt`, `lease_token`, `worker_id`, `execution_id`).
fn open_execution(from: &str) -> String {
    format!(
        "INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id, started_at)
         SELECT execution_id, id, attempt, '{running}', lease_token, worker_id, now() {from}",
        running = ExecutionStatus::Running.as_str(),
    )
}

/// A running job is found by its lease token through its execution (whose
/// index on `lease_token` the execution needs anyway), then by id: an index
/// of `jobs` on `lease_token` would take one more entry on every lease. The
/// statements still test `jobs.lease_token`, which is what fences. `input`
/// names rows with `in_token`; each gains `in_job` and `in_execution_id`.
fn find_attempts(input: &str) -> String {
    format!(
        "SELECT {input}.*, e.job_id AS in_job, e.id AS in_execution_id
         FROM {input} JOIN executions e ON e.lease_token = {input}.in_token"
    )
}

/// The status test of a statement that reaches its jobs by id: the test
/// [`status_test`] writes, with the statuses behind a sub-select, which the
/// planner cannot read as constants. With constants, a partial index on the
/// status (`jobs_running_deadline`) fits the statement too, and the planner
/// weighs it by statistics of a moment: after an ANALYZE that saw no job
/// running, it expects one row there, and walked every running job for each
/// job of the batch. An ack of 1,000 took a second with 2,000 in flight
/// (docs/benchmarks.md, "History").
fn by_id_test(statuses: &[JobStatus]) -> String {
    format!(
        "= ANY ((SELECT ARRAY[{}])::text[])",
        status_literals(statuses)
    )
}

/// The job of the token `$2`, by its execution (see [`find_attempts`]).
const JOB_OF_TOKEN: &str = "SELECT job_id FROM executions WHERE lease_token = $2";

/// A new attempt's execution id and lease token. Both are UUIDv7, so each
/// lands at the right-hand end of its index: random tokens would write to
/// any page of an index as large as the history.
pub(super) fn attempt_ids() -> (Uuid, Uuid) {
    (Uuid::now_v7(), Uuid::now_v7())
}

pub(super) struct Sql {
    create_leased: String,
    promote: String,
    lease_batch: String,
    /// `lease_batch` for a key limited to the queues `$7`: a statement of
    /// its own, so the unlimited one stays as it was.
    lease_batch_in_queues: String,
    lease_push: String,
    ack: String,
    lock_failing: String,
    end_badly: String,
    known_tokens: String,
    extend: String,
    release: String,
    retry: String,
    cancel: String,
    lock_expired: String,
    forget_workers: String,
    next_expiry: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let lease = Transition::Lease;
        let fail = Transition::Fail;
        let queued = waiting_status(true).as_str();
        let running = ExecutionStatus::Running.as_str();
        let sql = Sql {
            // `ahead`: is a job of this handler already queued? Then this one
            // queues behind it instead of being leased.
            // A job of a controlled queue (flow ≠ 0) is never handed off: only
            // the controlled lease may start it.
            create_leased: format!(
                "WITH queue AS (
                     SELECT flow, retries FROM queues WHERE organization_id = $2 AND name = $6
                     FOR KEY SHARE
                 ), ahead AS (
                     SELECT coalesce((SELECT flow FROM queue), chronos_queue_not_found($6)) AS flow,
                            EXISTS (SELECT 1 FROM jobs
                                    WHERE organization_id = $2 AND status {from}
                                      AND delivery_type = 'pull' AND handler = $4
                                      AND {free}) AS queued
                 ), decided AS (
                     SELECT flow, queued OR flow <> 0 AS busy FROM ahead
                 ), created AS (
                     INSERT INTO jobs (id, organization_id, name, handler, payload, queue,
                         priority, status, delivery_type, delivery, run_at, max_retries,
                         timeout_seconds, idempotency_key, flow, concurrency_key,
                         attempt, lease_token, lease_expires_at, worker_id, created_at, updated_at)
                     SELECT $1, $2, $3, $4, $5, $6, $7,
                            CASE WHEN busy THEN '{queued}' ELSE '{to}' END,
                            'pull', $8, now(), coalesce($9, (SELECT retries FROM queue)),
                            $10::int4, $11, flow, $15,
                            CASE WHEN busy THEN 0 ELSE 1 END,
                            CASE WHEN busy THEN NULL ELSE $14::uuid END,
                            CASE WHEN busy THEN NULL
                                 ELSE now() + make_interval(secs => $10::int4) END,
                            CASE WHEN busy THEN NULL ELSE $12 END, now(), now()
                     FROM decided
                     -- Another plan's jobs are counted: create_leased_job
                     -- inserts them as create_jobs does.
                     WHERE NOT EXISTS (SELECT 1 FROM organizations
                                       WHERE id = $2 AND plan <> '{UNLIMITED}')
                     ON CONFLICT (organization_id, idempotency_key)
                         WHERE idempotency_key IS NOT NULL DO NOTHING
                     RETURNING {JOB_COLUMNS}, lease_token, lease_expires_at, worker_id,
                               organization_id, delivery_type, $13::uuid AS execution_id
                 ), opened AS (
                     {open}
                 )
                 SELECT *, CASE WHEN status = '{queued}'
                                THEN pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) END AS notified
                 FROM created",
                from = status_test(lease.from()),
                to = lease.to().as_str(),
                free = FREE_FLOW,
                open = open_execution(&format!(
                    "FROM created WHERE status = '{}'",
                    lease.to().as_str()
                )),
            ),
            promote: {
                let t = Transition::Promote;
                format!(
                    "WITH due AS (
                         SELECT id FROM jobs
                         WHERE status {from} AND {NOT_HELD} AND run_at <= now()
                         ORDER BY run_at
                         LIMIT {PROMOTE_BATCH}
                         FOR UPDATE SKIP LOCKED
                     ), moved AS (
                         UPDATE jobs SET status = '{to}', updated_at = now()
                         FROM due WHERE jobs.id = due.id AND jobs.status {by_id}
                         RETURNING organization_id, handler, delivery_type
                     ), keys AS (
                         SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM moved
                     )
                     SELECT (SELECT count(*) FROM moved),
                            (SELECT string_agg(key, ',') FROM keys),
                            (SELECT {NOTIFY_KEYS} FROM keys),
                            (SELECT EXTRACT(EPOCH FROM min(run_at) - now())::float8
                             FROM jobs WHERE status {from} AND {NOT_HELD} AND run_at > now())",
                    from = status_test(t.from()),
                    by_id = by_id_test(t.from()),
                    to = t.to().as_str(),
                )
            },
            lease_batch: lease_batch(""),
            lease_batch_in_queues: lease_batch(" AND queue = ANY($7)"),
            // Walk the hosts that have queued push jobs through the index that
            // leads with the host (one probe per host, never a host's
            // backlog), starting after `$4` (the last host served: hosts take
            // turns when there are more than `$5`) and wrapping round; read
            // the head of each host with room, at most its room; keep the best
            // `$1` of those; lock them by id, skipping rows another server is
            // leasing; lease them. A full host costs one probe, however long
            // its backlog.
            lease_push: format!(
                "WITH RECURSIVE busy AS (
                     SELECT * FROM unnest($2::text[], $3::int4[]) AS b (b_host, b_calls)
                 ), hosts_after (host, n) AS (
                     SELECT CASE WHEN $4::text IS NULL
                                 THEN (SELECT {host} FROM jobs WHERE {queued_push}
                                       ORDER BY {host} LIMIT 1)
                                 ELSE (SELECT {host} FROM jobs
                                       WHERE {queued_push} AND {host} > $4
                                       ORDER BY {host} LIMIT 1) END, 1
                     UNION ALL
                     SELECT (SELECT {host} FROM jobs
                             WHERE {queued_push} AND {host} > a.host
                             ORDER BY {host} LIMIT 1), a.n + 1
                     FROM hosts_after a WHERE a.host IS NOT NULL AND a.n < $5
                 ), hosts_before (host, n) AS (
                     SELECT (SELECT {host} FROM jobs
                             WHERE {queued_push} AND {host} <= $4
                             ORDER BY {host} LIMIT 1),
                            (SELECT count(host) FROM hosts_after) + 1
                     UNION ALL
                     SELECT (SELECT {host} FROM jobs
                             WHERE {queued_push} AND {host} > b.host
                               AND {host} <= $4
                             ORDER BY {host} LIMIT 1), b.n + 1
                     FROM hosts_before b WHERE b.host IS NOT NULL AND b.n < $5
                 ), hosts AS (
                     SELECT host FROM hosts_after WHERE host IS NOT NULL
                     UNION ALL
                     SELECT host FROM hosts_before WHERE host IS NOT NULL AND n <= $5
                 ), chosen AS (
                     SELECT j.id, j.priority, j.run_at
                     FROM hosts h LEFT JOIN busy b ON b.b_host = h.host
                     CROSS JOIN LATERAL (
                         SELECT id, priority, run_at FROM jobs
                         WHERE {queued_push} AND {host} = h.host
                         ORDER BY priority DESC, run_at, id
                         LIMIT least(greatest($6::int4 - coalesce(b.b_calls, 0), 0), $1)
                     ) j
                     ORDER BY j.priority DESC, j.run_at, j.id
                     LIMIT $1
                 ), locked AS (
                     SELECT j.id, j.priority, j.run_at
                     FROM chosen c CROSS JOIN LATERAL (
                         SELECT id, priority, run_at FROM jobs
                         WHERE id = c.id AND status {from}
                         FOR UPDATE SKIP LOCKED
                     ) j
                 ), picked AS (
                     SELECT id, slot, NULL::text AS worker, ($8::uuid[])[slot] AS execution_id,
                            ($9::uuid[])[slot] AS token
                     FROM (SELECT id, row_number() OVER (ORDER BY priority DESC, run_at, id) AS slot
                           FROM locked) l
                 ), {tail}
                 -- One row even when nothing was leased, to say whether
                 -- push jobs of controlled queues wait.
                 SELECT l.*, EXISTS (SELECT 1 FROM jobs WHERE {controlled}) AS controlled
                 FROM (SELECT 1) one LEFT JOIN (
                     SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, organization_id, slot
                     FROM leased
                 ) l ON true
                 ORDER BY slot",
                controlled = crate::store::flow::queued_controlled("push"),
                host = PUSH_HOST,
                queued_push = queued_push_test(),
                from = status_test(lease.from()),
                tail = lease_tail("picked", "$7::float8"),
            ),
            // One statement, committed on its own: no transaction around it,
            // which would cost two more round trips on the hottest path. A
            // push target's answer rides along with the ack's own row.
            ack: {
                let t = Transition::Ack;
                format!(
                    "WITH input AS (
                         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[],
                                              $4::int4[], $5::text[], $6::bool[], $7::bool[],
                                              $8::text[])
                             AS i (in_org, in_token, in_result,
                                   in_http_status, in_body, in_truncated, in_whole,
                                   in_encoding)
                     ), found AS (
                         {find}
                     ), done AS (
                         UPDATE jobs SET status = '{to}', result = in_result, finished_at = now(),
                                         updated_at = now(), lease_expires_at = NULL
                         FROM found
                         WHERE id = in_job AND lease_token = in_token AND organization_id = in_org
                           AND status {by_id} AND lease_expires_at > now()
                         RETURNING {MOVED_COLUMNS}, {whole}, lease_token, in_execution_id,
                                   in_http_status, in_body, in_truncated, in_encoding, {slot}
                     ), {freed}, closed AS (
                         UPDATE executions SET status = '{completed}', finished_at = now(),
                                               http_status = in_http_status, response_body = in_body,
                                               response_truncated = coalesce(in_truncated, false),
                                               response_body_encoding = in_encoding
                         FROM done
                         WHERE executions.job_id = done.id AND executions.id = done.in_execution_id
                     )
                     SELECT done.*, f_keys AS freed, {notify_freed} AS notified_freed
                     FROM done {freed_of}",
                    by_id = by_id_test(t.from()),
                    slot = SLOT_COLUMNS,
                    freed = super::flow::freed("done"),
                    freed_of = super::flow::freed_of("done"),
                    notify_freed = super::flow::notify_freed(),
                    to = t.to().as_str(),
                    completed = ExecutionStatus::Completed.as_str(),
                    whole = whole_job_columns("in_whole"),
                    find = find_attempts("input"),
                )
            },
            lock_failing: format!(
                "WITH input AS (
                     SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS i (in_org, in_token)
                 ), found AS (
                     {find}
                 )
                 SELECT id, attempt, attempt_base, max_retries, timeout_seconds, lease_token
                 FROM jobs JOIN found
                      ON id = in_job AND lease_token = in_token AND organization_id = in_org
                 WHERE status {by_id} AND lease_expires_at > now()
                 FOR UPDATE OF jobs",
                by_id = by_id_test(fail.from()),
                find = find_attempts("input"),
            ),
            // The state machine decided each ending (`in_status`, the job's
            // next status, `in_retry_in`); this writes them, and tells the
            // polls of the jobs queued again.
            end_badly: format!(
                "WITH input AS (
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                                          $5::text[], $6::float8[], $7::int4[], $8::text[],
                                          $9::bool[], $10::bool[], $11::text[])
                         AS i (in_id, in_token, in_execution, in_status, in_error, in_retry_in,
                               in_http_status, in_body, in_truncated, in_whole, in_encoding)
                 ), closed AS (
                     UPDATE executions SET status = in_execution, error = in_error,
                                           finished_at = now(),
                                           http_status = in_http_status, response_body = in_body,
                                           response_truncated = coalesce(in_truncated, false),
                                           response_body_encoding = in_encoding
                     FROM input WHERE lease_token = in_token
                 ), ended AS (
                     -- in_retry_in NULL: given up; otherwise due again that many seconds from now.
                     UPDATE jobs SET
                         status = in_status,
                         run_at = CASE WHEN in_retry_in IS NULL THEN run_at
                                       ELSE now() + make_interval(secs => in_retry_in) END,
                         finished_at = CASE WHEN in_retry_in IS NULL THEN now() END,
                         last_error = in_error, lease_expires_at = NULL, updated_at = now()
                     FROM input WHERE id = in_id AND status {by_id}
                     RETURNING {MOVED_COLUMNS}, {whole}, lease_token, {slot}
                 ), keys AS (
                     SELECT DISTINCT {WAKE_KEY_SQL} AS key FROM ended WHERE status = '{queued}'
                 ), {freed}
                 SELECT ended.*, (SELECT {NOTIFY_KEYS} FROM keys) AS notified,
                        f_keys AS freed, {notify_freed} AS notified_freed
                 FROM ended {freed_of}",
                by_id = by_id_test(fail.from()),
                slot = SLOT_COLUMNS,
                freed = super::flow::freed("ended"),
                freed_of = super::flow::freed_of("ended"),
                notify_freed = super::flow::notify_freed(),
                whole = whole_job_columns("in_whole"),
            ),
            known_tokens: "SELECT e.lease_token FROM executions e
                 JOIN unnest($1::uuid[], $2::uuid[]) AS i (in_org, in_token)
                      ON e.lease_token = in_token
                 JOIN jobs j ON j.id = e.job_id AND j.organization_id = in_org"
                .into(),
            extend: format!(
                "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3),
                                 updated_at = now()
                 WHERE id = ({job_of_token}) AND organization_id = $1 AND lease_token = $2
                   AND status {by_id}
                   AND lease_expires_at > now()
                 RETURNING lease_token, lease_expires_at",
                by_id = by_id_test(LEASED),
                job_of_token = JOB_OF_TOKEN,
            ),
            release: {
                let t = Transition::Release;
                format!(
                    "WITH back AS (
                         UPDATE jobs SET status = '{to}', attempt_base = attempt_base + 1,
                                         lease_expires_at = NULL, updated_at = now()
                         WHERE id = ({JOB_OF_TOKEN}) AND organization_id = $1
                           AND lease_token = $2 AND status {by_id}
                           AND lease_expires_at > now()
                         RETURNING {MOVED_COLUMNS}
                     ), closed AS (
                         UPDATE executions SET status = '{released}', finished_at = now()
                         WHERE lease_token = $2 AND job_id IN (SELECT id FROM back)
                     )
                     SELECT *, pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) AS notified FROM back",
                    by_id = by_id_test(t.from()),
                    to = t.to().as_str(),
                    released = ExecutionStatus::Released.as_str(),
                )
            },
            retry: {
                let t = Transition::Retry;
                format!(
                    "WITH again AS (
                         UPDATE jobs SET status = '{to}', run_at = now(), attempt_base = attempt,
                                         result = NULL, finished_at = NULL, lease_expires_at = NULL,
                                         outcome_published = false, updated_at = now()
                         WHERE organization_id = $1 AND id = $2 AND status {from}
                         RETURNING {JOB_COLUMNS}, organization_id, delivery_type
                     )
                     SELECT *, pg_notify('{NOTIFY_CHANNEL}', {WAKE_KEY_SQL}) AS notified FROM again",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                    )
            },
            // One statement: the job and its open attempt change together.
            cancel: {
                let t = Transition::Cancel;
                format!(
                    "WITH job AS (
                         UPDATE jobs SET status = '{to}', finished_at = now(), updated_at = now(),
                                         lease_expires_at = NULL, held_reason = NULL
                         WHERE organization_id = $1 AND id = $2 AND status {from}
                         RETURNING {JOB_COLUMNS}, {slot}
                     ), attempt AS (
                         UPDATE executions SET status = '{closed}', error = '{CANCELLED_ERROR}',
                                               finished_at = now()
                         WHERE job_id IN (SELECT id FROM job) AND status = '{running}'
                     ), {freed}
                     SELECT job.*, pg_notify('{CANCEL_CHANNEL}', id::text) AS notified,
                            f_keys AS freed, {notify_freed} AS notified_freed
                     FROM job {freed_of}",
                    to = t.to().as_str(),
                    from = status_test(t.from()),
                    closed = CANCELLED_EXECUTION.as_str(),
                    slot = SLOT_COLUMNS,
                    freed = super::flow::freed("job"),
                    freed_of = super::flow::freed_of("job"),
                    notify_freed = super::flow::notify_freed(),
                )
            },
            lock_expired: format!(
                "SELECT j.id, j.attempt, j.attempt_base, j.max_retries, j.timeout_seconds,
                        j.lease_token, j.lease_expires_at <= now() AS deadline_passed
                 FROM jobs j
                 LEFT JOIN workers w
                        ON w.organization_id = j.organization_id AND w.worker_id = j.worker_id
                 WHERE j.status {from}
                   AND (j.lease_expires_at <= now()
                        -- Gone: since a recorded disconnect, or silent (its server died).
                        OR w.disconnected_at <= now() - make_interval(secs => $1)
                        OR (w.disconnected_at IS NULL
                            AND w.last_heartbeat_at <= now() - make_interval(secs => $1)))
                 ORDER BY j.lease_expires_at
                 LIMIT {EXPIRE_BATCH}
                 FOR UPDATE OF j SKIP LOCKED",
                from = status_test(fail.from()),
            ),
            // Rows of workers long gone, holding nothing, are forgotten.
            forget_workers: format!(
                "DELETE FROM workers WHERE disconnected_at < now() - interval '1 day'
                   AND NOT EXISTS (SELECT 1 FROM jobs
                                   WHERE jobs.organization_id = workers.organization_id
                                     AND jobs.worker_id = workers.worker_id
                                     AND jobs.status {leased})",
                leased = status_test(LEASED),
            ),
            next_expiry: format!(
                "SELECT EXTRACT(EPOCH FROM min(lease_expires_at) - now())::float8
                 FROM jobs WHERE status {leased}",
                leased = status_test(LEASED),
            ),
        };
        sql.clocked(clock)
    }

    /// Every statement as `clock` reads it.
    fn clocked(self, clock: &Clock) -> Self {
        let c = |s: String| clock.pg(s);
        Sql {
            create_leased: c(self.create_leased),
            promote: c(self.promote),
            lease_batch: c(self.lease_batch),
            lease_batch_in_queues: c(self.lease_batch_in_queues),
            lease_push: c(self.lease_push),
            ack: c(self.ack),
            lock_failing: c(self.lock_failing),
            end_badly: c(self.end_badly),
            known_tokens: c(self.known_tokens),
            extend: c(self.extend),
            release: c(self.release),
            retry: c(self.retry),
            cancel: c(self.cancel),
            lock_expired: c(self.lock_expired),
            forget_workers: c(self.forget_workers),
            next_expiry: c(self.next_expiry),
        }
    }
}

/// The fast worker lease, `in_queues` added to each pick (a key limited to
/// some queues). One statement: pick the best queued jobs, skipping rows
/// another lease holds; number them best first; give the n-th to the n-th
/// slot's worker (execution ids made here, UUIDv7, so they sort by time).
/// Jobs are picked per handler, so each pick reads the head of its own
/// range of the queued index in order: `handler = ANY($2)` would sort every
/// queued job of the handlers on each lease.
fn lease_batch(in_queues: &str) -> String {
    format!(
        "WITH next AS (
             SELECT j.id, j.priority, j.run_at
             FROM unnest($2::text[]) AS h (name) CROSS JOIN LATERAL (
                 SELECT id, priority, run_at FROM jobs
                 WHERE organization_id = $1 AND status {from}
                   AND delivery_type = 'pull' AND handler = h.name AND {free}{in_queues}
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
             SELECT * FROM unnest($4::text[], $5::uuid[], $6::uuid[])
                 WITH ORDINALITY AS s (worker, execution_id, token, slot)
         ), picked AS (
             SELECT numbered.id, slots.slot, slots.worker, slots.execution_id, slots.token
             FROM numbered JOIN slots ON slots.slot = numbered.n
         ), {tail}
         -- One row even when nothing was leased, to say whether
         -- jobs of controlled queues wait for these handlers.
         SELECT l.*, ({any_controlled}) AS controlled
         FROM (SELECT 1) one LEFT JOIN (
             SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, slot FROM leased
         ) l ON true
         ORDER BY slot",
        from = status_test(Transition::Lease.from()),
        free = FREE_FLOW,
        tail = lease_tail("picked", "0"),
        any_controlled = super::flow::any_controlled(),
    )
}

fn leased_from_row(row: &Row) -> Result<LeasedJob> {
    Ok(LeasedJob {
        job: job_from_row(row)?,
        lease: Lease {
            token: row.try_get("lease_token")?,
            expires_at: ts(row.try_get("lease_expires_at")?),
        },
    })
}

/// A running attempt locked to be ended badly: its job, token and what the
/// state machine needs.
struct Locked {
    id: Uuid,
    token: Uuid,
    attempt: RunningAttempt,
}

impl Locked {
    fn read(row: &Row) -> Result<Self> {
        Ok(Locked {
            id: row.try_get("id")?,
            token: row.try_get("lease_token")?,
            attempt: RunningAttempt {
                attempt: u32_col(row, "attempt")?,
                attempt_base: u32_col(row, "attempt_base")?,
                max_retries: u32_col(row, "max_retries")?,
                timeout_seconds: u32_col(row, "timeout_seconds")?,
            },
        })
    }
}

/// An attempt to end badly: locked, what the state machine decided, what
/// its push target answered, and whether the caller answers with the job.
struct BadEnd<'a> {
    locked: Locked,
    ending: Ending,
    response: Option<&'a HttpResponse>,
    whole_job: bool,
}

/// Push targets' answers as columns (nulls where there was none).
#[derive(Default)]
struct Answers<'a> {
    status: Vec<Option<i32>>,
    body: Vec<Option<&'a str>>,
    truncated: Vec<Option<bool>>,
    encoding: Vec<Option<&'static str>>,
}

impl<'a> Answers<'a> {
    fn push(&mut self, r: Option<&'a HttpResponse>) {
        self.status.push(r.map(|r| i32::from(r.status)));
        self.body.push(r.map(|r| r.body.as_str()));
        self.truncated.push(r.map(|r| r.truncated));
        self.encoding
            .push(r.and_then(HttpResponse::encoding_column));
    }
}

/// Writes the endings the state machine decided, for attempts locked by
/// the caller's transaction: one statement, one NOTIFY for the jobs queued
/// again. Returns the jobs by the token that ended.
async fn end_badly(
    store: &PgStore,
    tx: &deadpool_postgres::Transaction<'_>,
    endings: Vec<BadEnd<'_>>,
) -> Result<HashMap<Uuid, Moved>> {
    if endings.is_empty() {
        return Ok(HashMap::new());
    }
    let n = endings.len();
    let (mut ids, mut tokens) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut executions, mut statuses) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut errors, mut retry_in) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut whole = Vec::with_capacity(n);
    let mut answers = Answers::default();
    for e in &endings {
        ids.push(e.locked.id);
        tokens.push(e.locked.token);
        executions.push(e.ending.execution.as_str());
        statuses.push(e.ending.job_status().as_str());
        errors.push(e.ending.error.as_str());
        retry_in.push(e.ending.retry_in_seconds());
        answers.push(e.response);
        whole.push(e.whole_job);
    }
    let stmt = tx.prepare_cached(&store.sql.leases.end_badly).await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &ids,
                &tokens,
                &executions,
                &statuses,
                &errors,
                &retry_in,
                &answers.status,
                &answers.body,
                &answers.truncated,
                &whole,
                &answers.encoding,
            ],
        )
        .await?;
    // Jobs that died: their queues' failure modes apply, in this transaction.
    let mut dead = Vec::new();
    for row in &rows {
        if row.try_get::<_, &str>("status")? == GIVEN_UP.as_str() {
            dead.push((row.try_get("f_org")?, row.try_get("f_queue")?));
        }
    }
    if !dead.is_empty() {
        super::queues::apply_failure_modes(store, tx, &dead).await?;
    }
    rows.iter()
        .map(|row| Ok((row.try_get("lease_token")?, ended_from_row(row)?)))
        .collect()
}

#[async_trait]
impl LeaseStore for PgStore {
    async fn create_jobs(&self, org: OrgId, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        super::jobs::insert(self, org, jobs).await
    }

    async fn create_fan_out(
        &self,
        org: OrgId,
        fan_out: NewFanOut,
        jobs: Vec<NewJob>,
    ) -> Result<FanOutCreated> {
        super::fan_outs::create(self, org, fan_out, jobs).await
    }

    async fn publish_outcomes(&self, limit: u32) -> Result<Published> {
        super::fan_outs::publish(self, limit).await
    }

    async fn record_endpoint_health(
        &self,
        tallies: Vec<((OrgId, EndpointKey), Tally)>,
        policy: HealthPolicy,
    ) -> Result<HealthRecorded> {
        super::endpoints::record(self, tallies, policy).await
    }

    async fn hold_for_disabled_endpoints(&self, limit: u32) -> Result<u64> {
        super::endpoints::hold(self, limit).await
    }

    async fn hold_leased(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Uuid>> {
        super::endpoints::hold_leased(self, org, token).await
    }

    async fn enable_endpoint(&self, org: OrgId, id: Uuid) -> Result<Enabled> {
        super::endpoints::enable(self, org, id).await
    }

    async fn create_leased_job(
        &self,
        org: OrgId,
        job: NewJob,
        worker_id: Option<&str>,
    ) -> Result<Handoff> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&self.sql.leases.create_leased)
            .await?;
        let (execution_id, token) = attempt_ids();
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
                    &job.max_retries.map(|n| n as i32),
                    &(job.timeout_seconds as i32),
                    &job.idempotency_key,
                    &worker_id,
                    &execution_id,
                    &token,
                    &job.concurrency_key,
                ],
            )
            .await
            .map_err(super::insert_error)?;
        let Some(row) = row else {
            // An organization on another plan: inserted and counted as
            // create_jobs does, not handed off.
            if super::plans::limited(self, &client, org).await? {
                drop(client);
                return Ok(
                    match super::jobs::insert(self, org, vec![job]).await?.pop() {
                        Some(Inserted::Created(job)) => Handoff::Queued(job),
                        Some(Inserted::Conflict { existing }) => Handoff::Conflict { existing },
                        Some(Inserted::OverQuota(refusal)) => Handoff::OverQuota(refusal),
                        None => {
                            return Err(StoreError::Other(
                                "an insert of one job answered nothing".into(),
                            ));
                        }
                    },
                );
            }
            // Otherwise only an idempotency key held by another job inserts
            // nothing.
            let keys: Vec<&str> = job.idempotency_key.as_deref().into_iter().collect();
            return match key_holders(self, &client, org, &keys)
                .await?
                .into_values()
                .next()
            {
                Some(existing) => Ok(Handoff::Conflict { existing }),
                None => Err(StoreError::Other(
                    "idempotency key kept changing hands; try again".into(),
                )),
            };
        };
        Ok(match row.try_get::<_, Option<Uuid>>("lease_token")? {
            Some(_) => Handoff::Leased(Box::new(leased_from_row(&row)?)),
            None => Handoff::Queued(Box::new(job_from_row(&row)?)),
        })
    }

    async fn promote_due_jobs(&self) -> Result<Promoted> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.leases.promote).await?;
        let row = client.query_one(&stmt, &[]).await?;
        let count: i64 = row.get(0);
        let keys: Option<String> = row.get(1);
        Ok(Promoted {
            count: count as u64,
            woken: keys
                .and_then(|k| super::parse_wake_payload(&k))
                .unwrap_or_default(),
            next_due_in: seconds_from_now(row.get(3)),
        })
    }

    async fn rate_releases(&self, since: Option<Timestamp>) -> Result<RateReleases> {
        super::flow::rate_releases(self, since).await
    }

    async fn lease_batch(
        &self,
        org: OrgId,
        handlers: &[String],
        queues: Option<&[String]>,
        takers: &[Taker],
    ) -> Result<Vec<Vec<LeasedJob>>> {
        let slots = lease_slots(takers, MAX_LEASE_BATCH);
        let mut leased: Vec<Vec<LeasedJob>> = vec![Vec::new(); takers.len()];
        if slots.is_empty() {
            return Ok(leased);
        }
        let mut client = self.pool.get().await?;
        let workers: Vec<Option<&str>> = slots
            .iter()
            .map(|&i| takers[i].worker_id.as_deref())
            .collect();
        let (execution_ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
            slots.iter().map(|_| attempt_ids()).unzip();
        let free = Slots {
            workers: &workers,
            execution_ids: &execution_ids,
            tokens: &tokens,
        };
        // Slots are filled in order: `taken` so far. Rows name their slot
        // counting from the first they were offered.
        let mut taken = 0;
        let mut fill = |rows: Vec<Row>, from: usize, taken: &mut usize| -> Result<()> {
            for row in rows {
                let slot: i64 = row.try_get("slot")?;
                leased[slots[from + (slot - 1) as usize]].push(leased_from_row(&row)?);
                *taken += 1;
            }
            Ok(())
        };
        let controlled_first = self.flow_seen.get(org);
        if controlled_first {
            let rows =
                super::flow::lease_pull(self, &mut client, org, handlers, queues, free.from(0))
                    .await?;
            fill(rows, 0, &mut taken)?;
        }
        if taken < slots.len() {
            let from = taken;
            let room = (slots.len() - from) as i64;
            let rest = free.from(from);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &org.0,
                &handlers,
                &room,
                &rest.workers,
                &rest.execution_ids,
                &rest.tokens,
            ];
            let sql = match &queues {
                None => &self.sql.leases.lease_batch,
                Some(queues) => {
                    params.push(queues);
                    &self.sql.leases.lease_batch_in_queues
                }
            };
            let stmt = client.prepare_cached(sql).await?;
            let rows = client.query(&stmt, &params).await?;
            let (controlled, rows) = super::flow::fast_lease_rows(rows)?;
            fill(rows, from, &mut taken)?;
            self.flow_seen.set(org, controlled);
            if controlled && !controlled_first && taken < slots.len() {
                let from = taken;
                let rows = super::flow::lease_pull(
                    self,
                    &mut client,
                    org,
                    handlers,
                    queues,
                    free.from(from),
                )
                .await?;
                fill(rows, from, &mut taken)?;
            }
        }
        Ok(leased)
    }

    async fn lease_push(&self, slots: &PushSlots) -> Result<Vec<(OrgId, LeasedJob)>> {
        if slots.max == 0 {
            return Ok(Vec::new());
        }
        let mut client = self.pool.get().await?;
        let max = slots.max.min(MAX_LEASE_BATCH as u32) as usize;
        let margin = slots.lease_margin.as_secs_f64();
        // Calls in flight per host, counting what this lease gives.
        let mut busy: HashMap<String, u32> = slots.busy.iter().cloned().collect();
        let mut leased: Vec<(OrgId, LeasedJob)> = Vec::new();
        let read = |rows: Vec<Row>,
                    leased: &mut Vec<(OrgId, LeasedJob)>,
                    busy: &mut HashMap<String, u32>|
         -> Result<()> {
            for row in rows {
                let job = leased_from_row(&row)?;
                if let Some(host) = crate::job::target_host(&job.job.delivery) {
                    *busy.entry(host).or_default() += 1;
                }
                leased.push((OrgId(row.try_get("organization_id")?), job));
            }
            Ok(())
        };
        // Controlled queues' jobs first when some were seen last time, so
        // that a long backlog of free jobs can't starve a limited queue.
        let controlled_first = self.flow_seen.push();
        let per_host = slots.per_host;
        if controlled_first {
            let rows =
                super::flow::lease_push(self, &mut client, max, margin, per_host, busy.clone())
                    .await?;
            read(rows, &mut leased, &mut busy)?;
        }
        let left = max - leased.len();
        if left == 0 {
            return Ok(leased);
        }
        let stmt = client.prepare_cached(&self.sql.leases.lease_push).await?;
        let (busy_hosts, calls): (Vec<&str>, Vec<i32>) =
            busy.iter().map(|(h, n)| (h.as_str(), *n as i32)).unzip();
        // More hosts than slots can never all be served in one lease.
        let hosts = left as i32;
        let (execution_ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
            (0..left).map(|_| attempt_ids()).unzip();
        let rows = client
            .query(
                &stmt,
                &[
                    &hosts,
                    &busy_hosts,
                    &calls,
                    &slots.after,
                    &hosts,
                    &(slots.per_host as i32),
                    &margin,
                    &execution_ids,
                    &tokens,
                ],
            )
            .await?;
        let (controlled, rows) = super::flow::fast_lease_rows(rows)?;
        read(rows, &mut leased, &mut busy)?;
        self.flow_seen.set_push(controlled);
        let left = max - leased.len();
        if controlled && !controlled_first && left > 0 {
            let rows =
                super::flow::lease_push(self, &mut client, left, margin, per_host, busy.clone())
                    .await?;
            read(rows, &mut leased, &mut busy)?;
        }
        Ok(leased)
    }

    async fn end_attempts(&self, ends: Vec<AttemptEnd>) -> Result<Vec<LeaseOutcome<Moved>>> {
        let mut client = self.pool.get().await?;
        // Each token is applied once; a repeat finds its lease gone, as it
        // would one after the other.
        let mut seen = HashSet::with_capacity(ends.len());
        let first: Vec<bool> = ends.iter().map(|e| seen.insert(e.token)).collect();
        let firsts = || ends.iter().zip(&first).filter(|(_, f)| **f).map(|(e, _)| e);
        let mut done: HashMap<Uuid, Moved> = HashMap::new();

        let acks: Vec<(&AttemptEnd, Option<&serde_json::Value>)> = firsts()
            .filter_map(|e| match &e.outcome {
                Outcome::Ack(result) => Some((e, result.as_ref())),
                Outcome::Fail(_) => None,
            })
            .collect();
        if !acks.is_empty() {
            let stmt = client.prepare_cached(&self.sql.leases.ack).await?;
            let orgs: Vec<Uuid> = acks.iter().map(|(e, _)| e.org.0).collect();
            let tokens: Vec<Uuid> = acks.iter().map(|(e, _)| e.token).collect();
            let results: Vec<Option<&serde_json::Value>> = acks.iter().map(|(_, r)| *r).collect();
            let whole: Vec<bool> = acks.iter().map(|(e, _)| e.whole_job).collect();
            let mut answers = Answers::default();
            for (e, _) in &acks {
                answers.push(e.response.as_ref());
            }
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                &orgs,
                &tokens,
                &results,
                &answers.status,
                &answers.body,
                &answers.truncated,
                &whole,
                &answers.encoding,
            ];
            for row in client.query(&stmt, &params).await? {
                done.insert(row.try_get("lease_token")?, ended_from_row(&row)?);
            }
        }

        let fails: HashMap<Uuid, (&crate::job::state::Failure, &AttemptEnd)> = firsts()
            .filter_map(|e| match &e.outcome {
                Outcome::Fail(failure) => Some((e.token, (failure, e))),
                Outcome::Ack(_) => None,
            })
            .collect();
        if !fails.is_empty() {
            let (orgs, tokens): (Vec<Uuid>, Vec<Uuid>) = firsts()
                .filter(|e| fails.contains_key(&e.token))
                .map(|e| (e.org.0, e.token))
                .unzip();
            // A job's death may block or pause its queue, which can meet a
            // change of the queue's settings in a deadlock: PostgreSQL
            // ends one transaction, which is tried again.
            let ended: HashMap<Uuid, Moved> = retry_deadlocks!(async {
                // Read, decide (the state machine), write: one transaction.
                let tx = client.transaction().await?;
                let stmt = tx.prepare_cached(&self.sql.leases.lock_failing).await?;
                let mut endings = Vec::new();
                for row in tx.query(&stmt, &[&orgs, &tokens]).await? {
                    let locked = Locked::read(&row)?;
                    let (failure, end) = fails[&locked.token];
                    endings.push(BadEnd {
                        ending: locked.attempt.end(Cause::Reported(failure.clone())),
                        locked,
                        response: end.response.as_ref(),
                        whole_job: end.whole_job,
                    });
                }
                let ended = end_badly(self, &tx, endings).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(ended)
            })?;
            done.extend(ended);
        }

        // The rest matched no current lease: lost, or never this organization's?
        let (orgs, tokens): (Vec<Uuid>, Vec<Uuid>) = firsts()
            .filter(|e| !done.contains_key(&e.token))
            .map(|e| (e.org.0, e.token))
            .unzip();
        let known: HashSet<Uuid> = if tokens.is_empty() {
            HashSet::new()
        } else {
            let stmt = client.prepare_cached(&self.sql.leases.known_tokens).await?;
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
                Some(moved) if first => LeaseOutcome::Done(moved.clone()),
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
        let stmt = client.prepare_cached(&self.sql.leases.extend).await?;
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

    async fn release_lease(&self, org: OrgId, token: Uuid) -> Result<LeaseOutcome<Moved>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.leases.release).await?;
        match client.query_opt(&stmt, &[&org.0, &token]).await? {
            Some(row) => Ok(LeaseOutcome::Done(moved_from_row(&row)?)),
            None => lease_miss(&client, org, token).await,
        }
    }

    async fn expire_leases(&self, worker_grace: Duration) -> Result<Expired> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let stmt = tx.prepare_cached(&self.sql.leases.lock_expired).await?;
        let mut endings = Vec::new();
        for row in tx.query(&stmt, &[&worker_grace.as_secs_f64()]).await? {
            let locked = Locked::read(&row)?;
            let cause = if row.try_get("deadline_passed")? {
                Cause::DeadlinePassed
            } else {
                Cause::WorkerGone
            };
            endings.push(BadEnd {
                ending: locked.attempt.end(cause),
                locked,
                response: None,
                whole_job: false,
            });
        }
        let ended = end_badly(self, &tx, endings).await?.into_values().collect();
        tx.execute(&self.sql.leases.forget_workers, &[]).await?;
        let next: Option<f64> = tx
            .query_one(&self.sql.leases.next_expiry, &[])
            .await?
            .get(0);
        tx.commit().await?;
        Ok(Expired {
            ended,
            next_expiry_in: seconds_from_now(next),
        })
    }

    async fn cancel_job(&self, org: OrgId, id: Uuid) -> Result<CancelOutcome> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.leases.cancel).await?;
        if let Some(row) = client.query_opt(&stmt, &[&org.0, &id]).await? {
            let freed: Option<String> = row.try_get("freed")?;
            return Ok(CancelOutcome::Cancelled(
                job_from_row(&row)?,
                freed
                    .and_then(|k| super::parse_wake_payload(&k))
                    .unwrap_or_default(),
            ));
        }
        drop(client);
        // Not cancellable: every status outside `from` is a finished one.
        Ok(match crate::store::JobStore::job(self, org, id).await? {
            Some(job) => CancelOutcome::AlreadyFinished(job),
            None => CancelOutcome::NotFound,
        })
    }

    async fn retry_job(&self, org: OrgId, id: Uuid) -> Result<RetryOutcome> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.leases.retry).await?;
        if let Some(row) = client.query_opt(&stmt, &[&org.0, &id]).await? {
            return Ok(RetryOutcome::Retried(job_from_row(&row)?));
        }
        drop(client);
        Ok(match crate::store::JobStore::job(self, org, id).await? {
            Some(job) => RetryOutcome::NotRetryable(job),
            None => RetryOutcome::NotFound,
        })
    }

    async fn fire_schedules(&self, plan: PlanFn) -> Result<Fired> {
        super::schedules::fire(self, plan).await
    }
}
