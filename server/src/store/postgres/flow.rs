//! The controlled lease: pull jobs of queues that can hold them back
//! (`crate::store::flow`). One transaction of two statements: the first
//! locks the rows of the queues that have jobs for the worker's handlers
//! (in id order; `NO KEY UPDATE`: leases of a queue take turns, and wait
//! for a change of its settings, but not for inserts, which only
//! key-share-lock it); the second, in a snapshot
//! taken after the locks, counts each queue's slots and leases the room
//! left. Counting in the locking statement's own snapshot would miss a
//! lease committed while it waited for the lock, and admit one too many.

use super::leases::lease_tail;
use super::{NOTIFY_KEYS, PgStore, WAKE_KEY_SQL};
use crate::account::OrgId;
use crate::store::flow::{
    FIFO, HOLDING_THE_HEAD, LIFO, RUNNING, next_in_line, order_of, queued_controlled,
    queued_controlled_any, queued_in, started,
};
use crate::store::jobs::JOB_COLUMNS;
use crate::store::{Clock, RateReleases, Result, seconds_from_now};
use chronos_proto::{JobStatus, Timestamp};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    lock_pull: String,
    /// `lock_pull` for a key limited to the queues `$3`.
    lock_pull_in_queues: String,
    lease_pull: String,
    lock_push: String,
    candidates_push: String,
    lease_push: String,
    rate_releases: String,
}

/// Whether queued jobs of controlled queues wait for the handlers `$2` of
/// the organization `$1` (one probe per handler of `jobs_flow_pull`).
pub(super) fn any_controlled() -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM jobs
                        WHERE organization_id = $1 AND handler = ANY($2) AND {controlled})",
        controlled = queued_controlled("pull"),
    )
}

/// The CTEs of a controlled lease, up to the jobs it may start
/// (`candidates`: `id`, `organization_id`, `delivery_type`, `handler`,
/// `host`, `priority`, `run_at`, `key`, `rank`, best first):
///
/// - `q`, the locked queues (ids in `$ids`) still active and controlled;
/// - `room`, how many more of each queue's jobs may start, counted now: its
///   concurrency less what runs (at 1, none while the head is unfinished),
///   and its rate limit less the starts of the window behind now;
/// - `heads`, the next job of each queue that runs one job at a time (a
///   started job queued again for its retry first), whatever it is — `serves`
///   then says whether this lease may take it — unless its key's rate is
///   spent;
/// - `firsts`, the best jobs `serves` of each other queue without per-key
///   limits, at most its room;
/// - `key_room`, `per_key`, `keyless` and `keyed`: for a queue with per-key
///   limits, each key with due jobs (found by skipping through
///   `jobs_flow_keys`, one probe per key) and its room (its concurrency less
///   what runs, at 1 none while its head is unfinished; its rate less its
///   recent starts), its best jobs within that room, and the jobs without
///   a key; the keys take turns (`rank` is a job's place within its key),
///   at most the queue's room.
///
/// `rank` is a job's place in its queue's (or key's) order, so that queues
/// and keys take turns within a priority and each keeps its order. `max`
/// bounds an unlimited room.
fn candidates(ids: &str, cursors: &str, max: &str, serves: Serves) -> String {
    candidates_of("true", ids, cursors, max, serves)
}

/// Which jobs a lease starts: those of one delivery (`pull`, `push`) that
/// also pass `also` (` AND …`: a pull worker's handlers), as SQL.
#[derive(Clone, Copy)]
struct Serves<'a> {
    delivery: &'a str,
    also: &'a str,
}

impl Serves<'_> {
    /// The test of a job, by its columns.
    fn test(self) -> String {
        format!("delivery_type = '{}'{}", self.delivery, self.also)
    }

    /// The same test, written so that it proves no partial index of a
    /// delivery (`jobs_flow_pull`, `jobs_flow_push`) usable. A keyed
    /// queue's jobs without a key are read under the null key of
    /// `jobs_flow_keys`; with the delivery indexes usable, the planner,
    /// estimating one row every way, read them through `jobs_flow_pull`,
    /// passing every queued job of the queue to find none: half of a keyed
    /// lease's time (auto_explain, docs/benchmarks.md).
    fn test_by_keys(self) -> String {
        format!("delivery_type || '' = '{}'{}", self.delivery, self.also)
    }
}

/// [`candidates`] of the queues that also pass `queue_test`.
fn candidates_of(queue_test: &str, ids: &str, cursors: &str, max: &str, serves: Serves) -> String {
    let keyless_serves = serves.test_by_keys();
    let serves = serves.test();
    let columns = "id, organization_id, delivery_type, handler, target_host AS host, priority, \
                   run_at, concurrency_key AS key";
    let best = |flow: i16, limit: &str, served: bool| {
        format!(
            "(SELECT *, row_number() OVER () AS rank FROM (
                  SELECT {columns} FROM jobs
                  WHERE r.qflow = {flow} AND organization_id = r.org AND queue = r.name
                    AND {queued} {served}
                  ORDER BY {order} LIMIT {limit}) b)",
            queued = queued_in(flow),
            served = if served {
                format!("AND {serves}")
            } else {
                String::new()
            },
            order = order_of(flow),
        )
    };
    // A keyed queue's jobs of the key `key` (`= k.key`, or `IS NULL`), in
    // the queue's order, as `jobs_flow_keys` holds them. `flow + 0`: not
    // `jobs_flow_fifo`, whose order the planner would take for free and
    // then read past every other key's jobs for each key (a third of a
    // millisecond per key with 1,000 keys, most of the lease). Here and in
    // `best`, `r.qflow = {flow}` reads only the queue's own order (a queue's
    // unfinished jobs have its flow): the other is never planned to run.
    let of_key = |key: &str, limit: &str, served: &str| {
        [FIFO, LIFO]
            .map(|flow| {
                format!(
                    "(SELECT {columns} FROM jobs
                      WHERE r.qflow = {flow} AND organization_id = r.org AND queue = r.name
                        AND concurrency_key {key} AND {queued} AND flow + 0 = {flow} {served}
                      ORDER BY {order} LIMIT {limit})",
                    queued = queued_controlled_any(),
                    order = order_of(flow),
                )
            })
            .join(" UNION ALL ")
    };
    let window = |period: &str| format!("now() - make_interval(secs => {period})");
    let queued = queued_controlled_any();
    format!(
        "q AS (
             SELECT id AS qid, organization_id AS org, name, flow AS qflow,
                    coalesce(concurrency = 1, false) AS strict, concurrency, rate_limit,
                    rate_period_seconds, key_concurrency, key_rate_limit,
                    key_rate_period_seconds,
                    key_concurrency IS NOT NULL OR key_rate_limit IS NOT NULL AS keyed,
                    coalesce(({cursors}::text[])[array_position({ids}::uuid[], id)], '')
                        AS cursor
             FROM queues
             WHERE {queue_test} AND id = ANY({ids}) AND flow <> 0 AND status = 'active'
               AND NOT blocked
         ), room AS (
             SELECT q.*, least(CASE
                 WHEN concurrency IS NULL THEN {max}::int8
                 WHEN strict THEN CASE WHEN EXISTS (
                          SELECT 1 FROM jobs WHERE organization_id = q.org
                            AND queue = q.name AND {holding_head}) THEN 0 ELSE 1 END
                 ELSE greatest(concurrency - (
                          SELECT count(*) FROM jobs WHERE organization_id = q.org
                            AND queue = q.name AND {running}), 0)
                 END, CASE
                 WHEN rate_limit IS NULL THEN {max}::int8
                 ELSE greatest(rate_limit - (
                          SELECT count(*) FROM queue_starts s WHERE s.queue_id = q.qid
                            AND s.started_at > {queue_window}), 0)
                 END) AS room
             FROM q
         ), heads AS (
             SELECT h.* FROM room r CROSS JOIN LATERAL (
                 (SELECT {columns}, 1::int8 AS rank FROM jobs
                  WHERE organization_id = r.org AND queue = r.name AND {retrying}
                  ORDER BY priority DESC, run_at, id LIMIT 1)
                 UNION ALL {fifo_head} UNION ALL {lifo_head}
                 LIMIT 1
             ) h
             WHERE r.strict AND r.room > 0
               AND (r.key_rate_limit IS NULL OR h.key IS NULL
                    OR (SELECT count(*) FROM queue_starts s
                        WHERE s.queue_id = r.qid AND s.concurrency_key = h.key
                          AND s.started_at > {key_window}) < r.key_rate_limit)
         ), firsts AS (
             SELECT f.* FROM room r CROSS JOIN LATERAL (
                 {fifo_room} UNION ALL {lifo_room}
             ) f
             WHERE NOT r.strict AND NOT r.keyed AND r.room > 0
         ), key_room AS (
             SELECT r.qid, k.key, k.room FROM room r CROSS JOIN LATERAL (
                 WITH RECURSIVE after (key) AS (
                     SELECT r.cursor
                     UNION ALL
                     SELECT (SELECT concurrency_key FROM jobs
                             WHERE organization_id = r.org AND queue = r.name AND {queued}
                               AND concurrency_key > after.key
                             ORDER BY concurrency_key LIMIT 1)
                     FROM after WHERE after.key IS NOT NULL
                 ), wrapped (key) AS (
                     SELECT ''::text
                     UNION ALL
                     SELECT (SELECT concurrency_key FROM jobs
                             WHERE organization_id = r.org AND queue = r.name AND {queued}
                               AND concurrency_key > wrapped.key
                               AND concurrency_key <= r.cursor
                             ORDER BY concurrency_key LIMIT 1)
                     FROM wrapped WHERE wrapped.key IS NOT NULL
                 ), keys (key) AS (
                     SELECT key FROM after WHERE key > r.cursor
                     UNION ALL
                     SELECT key FROM wrapped WHERE key > ''
                 )
                 -- Each key's room by probes of its own (jobs_flow_key_started,
                 -- queue_starts_key), not joins: a join would read every key
                 -- before the limit applies. The first keys after the cursor
                 -- that may start a job now: the keys take turns, one lease
                 -- after the other.
                 SELECT * FROM (SELECT keys.key, least(CASE
                     WHEN r.key_concurrency IS NULL THEN {max}::int8
                     WHEN r.key_concurrency = 1 THEN CASE WHEN EXISTS (
                              SELECT 1 FROM jobs WHERE organization_id = r.org
                                AND queue = r.name AND concurrency_key = keys.key
                                AND {holding_head}) THEN 0 ELSE 1 END
                     ELSE greatest(r.key_concurrency - (
                              SELECT count(*) FROM jobs WHERE organization_id = r.org
                                AND queue = r.name AND concurrency_key = keys.key
                                AND {running}), 0)
                     END, CASE
                     WHEN r.key_rate_limit IS NULL THEN {max}::int8
                     ELSE greatest(r.key_rate_limit - (
                              SELECT count(*) FROM queue_starts s
                              WHERE s.queue_id = r.qid AND s.concurrency_key = keys.key
                                AND s.started_at > {key_window}), 0)
                     END) AS room
                 FROM keys) x
                 WHERE room > 0 LIMIT r.room
             ) k
             WHERE r.keyed AND NOT r.strict AND r.room > 0 AND k.room > 0
         ), per_key AS (
             -- At key_concurrency 1 a key's head, whatever it is (a started
             -- job queued for its retry first), or nothing of that key.
             SELECT k.qid, j.* FROM key_room k JOIN room r ON r.qid = k.qid
             CROSS JOIN LATERAL (
                 SELECT *, row_number() OVER () AS rank FROM (
                     (SELECT {columns} FROM jobs
                      WHERE r.key_concurrency = 1 AND organization_id = r.org
                        AND queue = r.name AND concurrency_key = k.key AND {retrying}
                      ORDER BY priority DESC, run_at, id LIMIT 1)
                     UNION ALL {key_jobs}
                     LIMIT k.room
                 ) u
             ) j
         ), keyless AS (
             SELECT r.qid, j.* FROM room r CROSS JOIN LATERAL (
                 SELECT *, row_number() OVER () AS rank FROM ({keyless_jobs}) u
             ) j
             WHERE r.keyed AND NOT r.strict AND r.room > 0
         ), keyed AS (
             SELECT c.* FROM room r CROSS JOIN LATERAL (
                 SELECT id, organization_id, delivery_type, handler, host, priority, run_at, key,
                        rank
                 FROM (SELECT * FROM per_key WHERE qid = r.qid AND {serves}
                       UNION ALL SELECT * FROM keyless WHERE qid = r.qid) x
                 ORDER BY priority DESC, rank, run_at, id
                 LIMIT r.room
             ) c
             WHERE r.keyed AND NOT r.strict AND r.room > 0
         ), candidates AS (
             SELECT * FROM heads WHERE {serves}
             UNION ALL
             SELECT * FROM firsts
             UNION ALL
             SELECT * FROM keyed
             ORDER BY priority DESC, rank, run_at, id
             LIMIT {max}
         )",
        holding_head = started(HOLDING_THE_HEAD),
        running = started(RUNNING),
        retrying = started(&[JobStatus::Queued]),
        queue_window = window("q.rate_period_seconds"),
        key_window = window("r.key_rate_period_seconds"),
        fifo_head = best(FIFO, "1", false),
        lifo_head = best(LIFO, "1", false),
        fifo_room = best(FIFO, "r.room", true),
        lifo_room = best(LIFO, "r.room", true),
        key_jobs = of_key(
            "= k.key",
            "k.room",
            &format!("AND (r.key_concurrency = 1 OR {serves})")
        ),
        keyless_jobs = of_key("IS NULL", "r.room", &format!("AND {keyless_serves}")),
    )
}

/// Logs the starts of `leased` (jobs a lease just started) of queues with
/// a rate limit, their own or per key, and deletes those queues' starts
/// older than their longest window (CTEs `started`, `logged`, `pruned`).
pub(super) fn log_starts(leased: &str) -> String {
    format!(
        "started AS (
             SELECT q.id AS qid, l.concurrency_key,
                    greatest(coalesce(q.rate_period_seconds, 0),
                             coalesce(q.key_rate_period_seconds, 0)) AS period
             FROM {leased} l JOIN queues q
                  ON q.organization_id = l.organization_id AND q.name = l.queue
             WHERE q.rate_limit IS NOT NULL OR q.key_rate_limit IS NOT NULL
         ), logged AS (
             INSERT INTO queue_starts (queue_id, concurrency_key, started_at)
             SELECT qid, concurrency_key, now() FROM started
         ), pruned AS (
             DELETE FROM queue_starts s
             USING (SELECT DISTINCT qid, period FROM started) p
             WHERE s.queue_id = p.qid AND s.started_at <= now() - make_interval(secs => p.period)
         )"
    )
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let queued = crate::store::status_test(&[JobStatus::Queued]);
        // Locks `candidates` by id, skipping rows another transaction holds,
        // and numbers them (`slot`) best first.
        let lock_and_number = |slot_columns: &str| {
            format!(
                "locked AS (
                     SELECT j.id, c.priority, c.rank, c.run_at
                     FROM candidates c CROSS JOIN LATERAL (
                         SELECT id FROM jobs
                         WHERE id = c.id AND status {queued}
                         FOR UPDATE SKIP LOCKED
                     ) j
                 ), picked AS (
                     SELECT id, slot, {slot_columns}
                     FROM (SELECT id, row_number() OVER (ORDER BY priority DESC, rank, run_at, id)
                                      AS slot
                           FROM locked) l
                 )"
            )
        };
        Sql {
            rate_releases: clock.pg(rate_releases_sql()),
            lock_pull: lock_pull(""),
            lock_pull_in_queues: lock_pull(" AND q.name = ANY($3)"),
            // A strict queue's head that needs a handler no worker of this
            // lease serves: nothing of that queue starts.
            lease_pull: clock.pg(format!(
                "WITH {candidates}, {locked}, {tail}, {starts}
                 SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, slot
                 FROM leased ORDER BY slot",
                candidates = candidates_of(
                    "organization_id = $1",
                    "$3",
                    "$8",
                    "$4",
                    Serves {
                        delivery: "pull",
                        also: " AND handler = ANY($2)",
                    }
                ),
                locked = lock_and_number(
                    "($5::text[])[slot] AS worker, ($6::uuid[])[slot] AS execution_id,
                     ($7::uuid[])[slot] AS token"
                ),
                tail = lease_tail("picked", "0"),
                starts = log_starts("leased"),
            )),
            lock_push: format!(
                "SELECT id, organization_id, name FROM queues q
                 WHERE flow <> 0 AND status = 'active' AND NOT blocked
                   AND (SELECT true FROM jobs
                        WHERE organization_id = q.organization_id AND queue = q.name
                          AND {controlled} LIMIT 1)
                 ORDER BY id
                 FOR NO KEY UPDATE",
                controlled = queued_controlled("push"),
            ),
            candidates_push: format!(
                "WITH {candidates}
                 SELECT id, coalesce(host, '') AS host FROM candidates",
                candidates = candidates(
                    "$1",
                    "$3",
                    "$2",
                    Serves {
                        delivery: "push",
                        also: "",
                    }
                ),
            ),
            // The jobs the dispatcher chose, in its order.
            lease_push: clock.pg(format!(
                "WITH candidates AS (
                     SELECT id, 0 AS priority, n AS rank, NULL::timestamptz AS run_at
                     FROM unnest($1::uuid[]) WITH ORDINALITY AS c (id, n)
                 ), {locked}, {tail}, {starts}
                 SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, organization_id
                 FROM leased ORDER BY slot",
                locked = lock_and_number(
                    "NULL::text AS worker, ($2::uuid[])[slot] AS execution_id,
                     ($3::uuid[])[slot] AS token"
                ),
                tail = lease_tail("picked", "$4::float8"),
                starts = log_starts("leased"),
            )),
        }
    }
}

/// The moments the windows of rate-limited queues let a start go (`$1`:
/// since when, or `NULL`): a queue's when the `rate_limit`-th newest of its
/// starts leaves it, a key's likewise (a window that isn't full lets a
/// start go already). Returns the wake keys of the next jobs of queues let
/// go since `$1`, now, and the seconds until the next moment.
fn rate_releases_sql() -> String {
    format!(
        "WITH since AS (
             SELECT coalesce($1, now() - interval '1 second') AS at
         ), held AS (
             SELECT q.organization_id AS org, q.name,
                    s.started_at + make_interval(secs => q.rate_period_seconds) AS release_at
             FROM since, queues q CROSS JOIN LATERAL (
                 SELECT started_at FROM queue_starts
                 WHERE queue_id = q.id AND started_at > since.at - make_interval(secs => q.rate_period_seconds)
                 ORDER BY started_at DESC OFFSET q.rate_limit - 1 LIMIT 1
             ) s
             WHERE q.rate_limit IS NOT NULL AND q.status = 'active' AND NOT q.blocked
             UNION ALL
             SELECT q.organization_id, q.name,
                    s.started_at + make_interval(secs => q.key_rate_period_seconds)
             FROM since, queues q CROSS JOIN LATERAL (
                 SELECT started_at, row_number() OVER (PARTITION BY concurrency_key
                                                       ORDER BY started_at DESC) AS n
                 FROM queue_starts
                 WHERE queue_id = q.id AND concurrency_key IS NOT NULL
                   AND started_at > since.at - make_interval(secs => q.key_rate_period_seconds)
             ) s
             WHERE q.key_rate_limit IS NOT NULL AND s.n = q.key_rate_limit
               AND q.status = 'active' AND NOT q.blocked
         ), due AS (
             SELECT DISTINCT org, name FROM held, since
             WHERE release_at > since.at AND release_at <= now()
         )
         SELECT (SELECT string_agg(DISTINCT n.key, ',')
                 FROM due CROSS JOIN LATERAL (
                     SELECT {WAKE_KEY_SQL} AS key FROM ({next}) next
                 ) n) AS keys,
                now() AS checked_at,
                (SELECT extract(epoch FROM min(release_at) - now())::float8
                 FROM held WHERE release_at > now()) AS next_in",
        next = next_in_line("due.org", "due.name"),
    )
}

/// See [`crate::store::LeaseStore::rate_releases`].
pub(super) async fn rate_releases(
    store: &PgStore,
    since: Option<Timestamp>,
) -> Result<RateReleases> {
    let client = store.pool.get().await?;
    let stmt = client.prepare_cached(&store.sql.flow.rate_releases).await?;
    let since = since.map(|t| t.0);
    let row = client.query_one(&stmt, &[&since]).await?;
    let keys: Option<String> = row.try_get("keys")?;
    Ok(RateReleases {
        woken: keys
            .and_then(|k| super::parse_wake_payload(&k))
            .unwrap_or_default(),
        checked_at: Timestamp(row.try_get("checked_at")?),
        next_in: seconds_from_now(row.try_get("next_in")?),
    })
}

/// A CTE `freed`: for each controlled queue of which `ended` (a CTE with
/// `f_org`, `f_queue`, `f_flow`: [`super::leases`]'s slot columns) holds
/// jobs that held a slot (`fq_org`, `fq_queue`), the wake keys (`f_keys`,
/// as [`super::NOTIFY_CHANNEL`] writes them) of the queue's next jobs,
/// which may start now. A free queue's job is left out before anything is
/// read for it. Read once per queue, not per job (`MATERIALIZED`: inlined,
/// the planner read them again for each job): a batch of acks is mostly of
/// one queue, and reading its next jobs for each ack was most of the
/// batch's time. Joined to each job by [`freed_of`].
pub(super) fn freed(ended: &str) -> String {
    format!(
        "freed AS MATERIALIZED (
             SELECT q.f_org AS fq_org, q.f_queue AS fq_queue,
                    string_agg(DISTINCT n.key, ',') AS f_keys
             FROM (SELECT DISTINCT f_org, f_queue FROM {ended} WHERE f_flow <> 0) q
             CROSS JOIN LATERAL (
                 SELECT {WAKE_KEY_SQL} AS key FROM ({next}) next
             ) n
             GROUP BY q.f_org, q.f_queue
         )",
        next = next_in_line("q.f_org", "q.f_queue"),
    )
}

/// Joins [`freed`] to the job `job` (a row of its `ended`): its `f_keys`
/// are its queue's, or null.
pub(super) fn freed_of(job: &str) -> String {
    format!(
        "LEFT JOIN freed ON {job}.f_flow <> 0 AND fq_org = {job}.f_org \
         AND fq_queue = {job}.f_queue"
    )
}

/// Sends the keys of [`freed`] to every server process, as a value.
pub(super) fn notify_freed() -> String {
    format!(
        "(SELECT {NOTIFY_KEYS} FROM (SELECT DISTINCT unnest(string_to_array(f_keys, ',')) AS key
                                     FROM freed) k)"
    )
}

/// The organizations (and push delivery) whose last lease on this process
/// found jobs of controlled queues: their next lease takes those first, so that a
/// long backlog of free jobs can't starve a limited queue. Only an order
/// of work: a replica that has not seen them yet finds them after its next
/// fast lease.
#[derive(Default)]
pub(super) struct Seen(Mutex<HashSet<Uuid>>);

/// [`Seen`]'s key for push delivery, which leases for every organization.
const PUSH: Uuid = Uuid::nil();

impl Seen {
    pub(super) fn push(&self) -> bool {
        self.get(OrgId(PUSH))
    }

    pub(super) fn set_push(&self, seen: bool) {
        self.set(OrgId(PUSH), seen)
    }

    pub(super) fn get(&self, org: OrgId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&org.0)
    }

    pub(super) fn set(&self, org: OrgId, seen: bool) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen {
            set.insert(org.0);
        } else {
            set.remove(&org.0);
        }
    }
}

/// Where each queue with per-key limits goes on serving its keys: the last
/// key a lease of this process served it from. Keys are served from the one
/// after, in order, wrapping round, so every key takes its turn whatever
/// its name, and a lease reads only as many keys as it may start jobs of.
/// Each process keeps its own: any order is fair, and nothing is written.
#[derive(Default)]
pub(super) struct Cursors(Mutex<HashMap<(Uuid, String), String>>);

impl Cursors {
    /// The cursors of `queues` (as [`lock_queues`] returns them), in order.
    fn of(&self, queues: &[(Uuid, Uuid, String)]) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .iter()
            .map(|(_, org, name)| map.get(&(*org, name.clone())).cloned().unwrap_or_default())
            .collect()
    }

    /// Moves each queue's cursor past the keys a lease served (`rows`:
    /// leased jobs with `queue` and `concurrency_key`; `org_of` their
    /// organization): to the last of them in the order they were served
    /// in, from the old cursor round.
    fn advance(&self, rows: &[Row], org_of: impl Fn(&Row) -> Result<Uuid>) -> Result<()> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut last: HashMap<(Uuid, String), (bool, String)> = HashMap::new();
        for row in rows {
            let Some(key) = row.try_get::<_, Option<String>>("concurrency_key")? else {
                continue;
            };
            let queue = (org_of(row)?, row.try_get::<_, String>("queue")?);
            let cursor = map.get(&queue).map(String::as_str).unwrap_or("");
            // Keys after the cursor were served before those at or before it.
            let place = (key.as_str() <= cursor, key);
            let entry = last.entry(queue).or_insert_with(|| place.clone());
            if place > *entry {
                *entry = place;
            }
        }
        for (queue, (_, key)) in last {
            map.insert(queue, key);
        }
        Ok(())
    }
}

/// Locks the organization `$1`'s active controlled queues with queued jobs
/// of the handlers `$2`, `in_queues` added (a key limited to some queues).
fn lock_pull(in_queues: &str) -> String {
    format!(
        "SELECT id, organization_id, name FROM queues q
         WHERE organization_id = $1 AND flow <> 0 AND status = 'active' AND NOT blocked{in_queues}
           -- A probe of jobs_flow_pull per queue (an EXISTS may be
           -- planned as a scan of every controlled job).
           AND (SELECT true FROM jobs
                WHERE organization_id = $1 AND handler = ANY($2)
                  AND queue = q.name AND {controlled} LIMIT 1)
         ORDER BY id
         FOR NO KEY UPDATE",
        controlled = queued_controlled("pull"),
    )
}

/// Runs a locking statement (`lock_pull`, `lock_push`): the queues it
/// locked (id, organization, name), `None` if none.
async fn lock_queues(
    tx: &deadpool_postgres::Transaction<'_>,
    lock: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Vec<(Uuid, Uuid, String)>>> {
    let lock = tx.prepare_cached(lock).await?;
    let mut queues = Vec::new();
    for row in tx.query(&lock, params).await? {
        queues.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    Ok((!queues.is_empty()).then_some(queues))
}

/// A fast lease's answer (`lease_batch`, `lease_push`): whether jobs of
/// controlled queues wait (every row carries it, and there is always one),
/// and the rows of the jobs it leased (the one row of a lease that leased
/// nothing has no `slot`).
pub(super) fn fast_lease_rows(rows: Vec<Row>) -> Result<(bool, Vec<Row>)> {
    let controlled = rows
        .first()
        .map(|r| r.try_get::<_, bool>("controlled"))
        .transpose()?
        .unwrap_or(false);
    let mut leased = Vec::with_capacity(rows.len());
    for row in rows {
        if row.try_get::<_, Option<i64>>("slot")?.is_some() {
            leased.push(row);
        }
    }
    Ok((controlled, leased))
}

/// The free slots a worker lease fills, in order: each one's worker, and
/// the execution id and lease token its job gets.
pub(super) struct Slots<'a> {
    pub workers: &'a [Option<&'a str>],
    pub execution_ids: &'a [Uuid],
    pub tokens: &'a [Uuid],
}

impl<'a> Slots<'a> {
    /// The slots from the `n`-th on.
    pub fn from(&self, n: usize) -> Slots<'a> {
        Slots {
            workers: &self.workers[n..],
            execution_ids: &self.execution_ids[n..],
            tokens: &self.tokens[n..],
        }
    }
}

/// Leases queued jobs of controlled queues (only of `limited_to` when
/// given) for the `slots`, in one transaction. Returns the leased rows,
/// each with its `slot` (1-based, into `slots`).
pub(super) async fn lease_pull(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    org: OrgId,
    handlers: &[String],
    limited_to: Option<&[String]>,
    slots: Slots<'_>,
) -> Result<Vec<Row>> {
    let tx = client.transaction().await?;
    let locked = match limited_to {
        None => lock_queues(&tx, &store.sql.flow.lock_pull, &[&org.0, &handlers]).await?,
        Some(names) => {
            let lock = &store.sql.flow.lock_pull_in_queues;
            lock_queues(&tx, lock, &[&org.0, &handlers, &names]).await?
        }
    };
    let Some(queues) = locked else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let lease = tx.prepare_cached(&store.sql.flow.lease_pull).await?;
    let cursors = store.flow_cursors.of(&queues);
    let ids: Vec<Uuid> = queues.iter().map(|q| q.0).collect();
    let rows = tx
        .query(
            &lease,
            &[
                &org.0,
                &handlers,
                &ids,
                &(slots.workers.len() as i64),
                &slots.workers,
                &slots.execution_ids,
                &slots.tokens,
                &cursors,
            ],
        )
        .await?;
    tx.commit().await?;
    store.flow_cursors.advance(&rows, |_| Ok(org.0))?;
    Ok(rows)
}

/// Leases queued push jobs of controlled queues for the dispatcher, in one
/// transaction: at most `max`, and no host past `per_host` calls (`busy`:
/// the calls each host has now). Returns the leased rows, each with its
/// `organization_id`; their deadlines are `margin` past their timeouts.
pub(super) async fn lease_push(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    max: usize,
    margin: f64,
    per_host: u32,
    mut busy: HashMap<String, u32>,
) -> Result<Vec<Row>> {
    let mut take = |host: &str| {
        let calls = busy.entry(host.to_string()).or_default();
        let room = *calls < per_host;
        if room {
            *calls += 1;
        }
        room
    };
    let tx = client.transaction().await?;
    let Some(queues) = lock_queues(&tx, &store.sql.flow.lock_push, &[]).await? else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let candidates = tx.prepare_cached(&store.sql.flow.candidates_push).await?;
    // More than `max`: some may be for hosts that are full.
    let limit = (max * 4) as i64;
    let cursors = store.flow_cursors.of(&queues);
    let ids: Vec<Uuid> = queues.iter().map(|q| q.0).collect();
    let mut chosen = Vec::new();
    for row in tx.query(&candidates, &[&ids, &limit, &cursors]).await? {
        if chosen.len() == max {
            break;
        }
        let host: &str = row.try_get("host")?;
        if take(host) {
            chosen.push(row.try_get::<_, Uuid>("id")?);
        }
    }
    if chosen.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let (execution_ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
        chosen.iter().map(|_| super::leases::attempt_ids()).unzip();
    let lease = tx.prepare_cached(&store.sql.flow.lease_push).await?;
    let rows = tx
        .query(&lease, &[&chosen, &execution_ids, &tokens, &margin])
        .await?;
    tx.commit().await?;
    store
        .flow_cursors
        .advance(&rows, |row| Ok(row.try_get("organization_id")?))?;
    Ok(rows)
}
