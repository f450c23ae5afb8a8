//! The controlled lease: jobs of queues that can hold them back
//! (`crate::store::flow`), for pull workers and for push delivery. SQLite
//! runs one writer at a time, so counting a queue's slots and leasing the
//! room left, in the caller's transaction, can't race another lease.

use super::leases::{Sql as LeaseSql, lease_one};
use super::{NOW, wake_key};
use crate::account::OrgId;
use crate::store::flow::{
    FIFO, FREE, HOLDING_THE_HEAD, LIFO, RUNNING, STARTED, order_of, queued_controlled,
    queued_controlled_any, queued_in,
};
use crate::store::status_test;
use crate::store::{Moved, RateReleases, Result, WakeKey, seconds_from_now};
use chronos_proto::{JobStatus, LeasedJob, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashMap;
use std::time::Duration;

pub(super) struct Sql {
    pull_queues: String,
    push_queues: String,
    holding_head: String,
    running: String,
    retrying_head: String,
    head: [String; 2],
    best_pull: [String; 2],
    best_push: [String; 2],
    starts: String,
    key_starts: String,
    key_starts_all: String,
    key_loads: String,
    next_key: String,
    key_retrying_head: String,
    key_head: [String; 2],
    key_pull: [String; 2],
    key_push: [String; 2],
    log_start: String,
    prune_starts: String,
    now: String,
    rate_limited: String,
    queue_release: String,
    key_releases: String,
    seconds_until: String,
    /// Where each queue with per-key limits goes on serving its keys (by
    /// queue id): the last key it served. Keys are served from the one
    /// after, in order, wrapping round, so every key takes its turn
    /// whatever its name, and a lease reads only as many keys as it may
    /// start jobs of.
    cursors: std::sync::Mutex<HashMap<String, String>>,
}

/// Whose jobs a controlled lease takes.
enum Serves<'a> {
    /// A pull worker's: these handlers (and as JSON, for the statements).
    Pull(&'a [String], &'a str),
    Push,
}

impl Serves<'_> {
    fn takes(&self, c: &Candidate) -> bool {
        match self {
            Serves::Pull(handlers, _) => {
                c.delivery_type == "pull"
                    && c.handler.as_ref().is_some_and(|h| handlers.contains(h))
            }
            Serves::Push => c.delivery_type == "push",
        }
    }
}

/// A controlled queue as a lease reads it: what can hold its jobs back.
struct Limits {
    id: String,
    org: String,
    name: String,
    concurrency: Option<i64>,
    /// (limit, period in seconds)
    rate: Option<(i64, i64)>,
    key_concurrency: Option<i64>,
    key_rate: Option<(i64, i64)>,
}

impl Limits {
    const COLUMNS: &'static str = "id, organization_id, name, concurrency, rate_limit, \
        rate_period_seconds, key_concurrency, key_rate_limit, key_rate_period_seconds";

    fn read(row: &Row) -> rusqlite::Result<Self> {
        let pair = |limit: &str, period: &str| -> rusqlite::Result<Option<(i64, i64)>> {
            Ok(row
                .get::<_, Option<i64>>(limit)?
                .zip(row.get::<_, Option<i64>>(period)?))
        };
        Ok(Limits {
            id: row.get("id")?,
            org: row.get("organization_id")?,
            name: row.get("name")?,
            concurrency: row.get("concurrency")?,
            rate: pair("rate_limit", "rate_period_seconds")?,
            key_concurrency: row.get("key_concurrency")?,
            key_rate: pair("key_rate_limit", "key_rate_period_seconds")?,
        })
    }

    fn keyed(&self) -> bool {
        self.key_concurrency.is_some() || self.key_rate.is_some()
    }

    /// The longest window its starts are counted over; `None` when it has
    /// no rate limit and logs no starts.
    fn logged_period(&self) -> Option<i64> {
        match (self.rate, self.key_rate) {
            (None, None) => None,
            (a, b) => Some(a.map_or(0, |r| r.1).max(b.map_or(0, |r| r.1))),
        }
    }
}

/// A queued job that may be leased: its order's keys, and what it needs.
struct Candidate {
    priority: i64,
    /// The place in its queue's (or key's) order, so that queues and keys
    /// take turns (within a priority) and each keeps its order.
    rank: usize,
    run_at: String,
    id: String,
    org: String,
    handler: Option<String>,
    delivery_type: String,
    host: String,
    key: Option<String>,
    /// The queue's id and longest window, when the queue logs its starts.
    logs: Option<(String, i64)>,
    /// The queue's id, when it has per-key limits (whose cursor the
    /// job's key moves).
    keyed_queue: Option<String>,
}

impl Candidate {
    fn read(row: &Row) -> rusqlite::Result<Self> {
        Ok(Candidate {
            id: row.get("id")?,
            org: row.get("organization_id")?,
            handler: row.get("handler")?,
            delivery_type: row.get("delivery_type")?,
            host: row
                .get::<_, Option<String>>("target_host")?
                .unwrap_or_default(),
            priority: row.get("priority")?,
            rank: 0,
            run_at: row.get("run_at")?,
            key: row.get("concurrency_key")?,
            logs: None,
            keyed_queue: None,
        })
    }
}

/// A started job of one of `statuses` ([`crate::store::flow::started`]),
/// written so that SQLite reads it through `jobs_flow_started` or
/// `jobs_flow_key_started`. SQLite takes a partial index only when it finds
/// each term of the index's predicate in the query as written: the index's
/// own list of statuses comes first, then a narrower one with `+` (not an
/// index term, or SQLite prefers `jobs_flow_keys` for `status = 'queued'`).
/// Written as the statuses alone, a queue's running jobs were counted by
/// reading every job of the organization (`jobs_by_org`), and a retrying
/// head found by reading every queued job of the queue or key.
pub(super) fn started(statuses: &[JobStatus]) -> String {
    let all = crate::store::flow::started(STARTED);
    if statuses == STARTED {
        all
    } else {
        format!("{all} AND +status {}", status_test(statuses))
    }
}

/// SQLite's time `?{n}` seconds before now.
fn seconds_ago(n: u8) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?{n} || ' seconds')")
}

impl Sql {
    pub(super) fn new(clock: &super::Clock) -> Self {
        let columns = "id, organization_id, handler, delivery_type, target_host, priority, run_at, \
                       concurrency_key";
        let best = |flow: i16, served: &str| {
            format!(
                "SELECT {columns} FROM jobs
                 WHERE organization_id = ?1 AND queue = ?2 AND {queued} {served}
                 ORDER BY {order} LIMIT ?3",
                queued = queued_in(flow),
                order = order_of(flow),
            )
        };
        // A keyed queue's jobs of the key ?3 (`IS`: null for the jobs
        // without one), through `jobs_flow_keys`.
        let of_key = |flow: i16, served: &str| {
            format!(
                "SELECT {columns} FROM jobs
                 WHERE organization_id = ?1 AND queue = ?2 AND concurrency_key IS ?3
                   AND {queued} AND flow = {flow} {served}
                 ORDER BY {order} LIMIT ?4",
                queued = queued_controlled_any(),
                order = order_of(flow),
            )
        };
        let pull = "AND delivery_type = 'pull' AND handler IN (SELECT value FROM json_each(?4))";
        let key_pull =
            "AND delivery_type = 'pull' AND handler IN (SELECT value FROM json_each(?5))";
        let push = "AND delivery_type = 'push'";
        let in_queue = "organization_id = ?1 AND queue = ?2";
        let active = "flow <> 0 AND status = 'active' AND NOT blocked";
        let limits = Limits::COLUMNS;
        let after = "strftime('%Y-%m-%dT%H:%M:%fZ', ?4, '-' || ?2 || ' seconds')";
        Sql {
            pull_queues: format!(
                "SELECT {limits} FROM queues q
                 WHERE organization_id = ?1 AND {active}
                   AND EXISTS (SELECT 1 FROM jobs
                               WHERE organization_id = ?1 AND queue = q.name
                                 AND handler IN (SELECT value FROM json_each(?2))
                                 AND {controlled})
                 ORDER BY id",
                controlled = queued_controlled("pull"),
            ),
            push_queues: format!(
                "SELECT {limits} FROM queues q
                 WHERE {active}
                   AND EXISTS (SELECT 1 FROM jobs
                               WHERE organization_id = q.organization_id AND queue = q.name
                                 AND {controlled})
                 ORDER BY id",
                controlled = queued_controlled("push"),
            ),
            holding_head: format!(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE {in_queue} AND {holding})",
                holding = started(HOLDING_THE_HEAD),
            ),
            running: format!(
                "SELECT count(*) FROM jobs WHERE {in_queue} AND {running}",
                running = started(RUNNING),
            ),
            retrying_head: format!(
                "SELECT {columns} FROM jobs WHERE {in_queue} AND {retrying}
                 ORDER BY priority DESC, run_at, id LIMIT 1",
                retrying = started(&[JobStatus::Queued]),
            ),
            head: [best(FIFO, ""), best(LIFO, "")],
            best_pull: [best(FIFO, pull), best(LIFO, pull)],
            best_push: [best(FIFO, push), best(LIFO, push)],
            starts: clock.sqlite(format!(
                "SELECT count(*) FROM queue_starts WHERE queue_id = ?1 AND started_at > {}",
                seconds_ago(2)
            )),
            key_starts: clock.sqlite(format!(
                "SELECT count(*) FROM queue_starts
                 WHERE queue_id = ?1 AND concurrency_key = ?3 AND started_at > {}",
                seconds_ago(2)
            )),
            key_starts_all: clock.sqlite(format!(
                "SELECT concurrency_key, count(*) FROM queue_starts
                 WHERE queue_id = ?1 AND concurrency_key IS NOT NULL AND started_at > {}
                 GROUP BY concurrency_key",
                seconds_ago(2)
            )),
            key_loads: format!(
                "SELECT concurrency_key,
                        sum(status {running}) AS running, sum(status {holding}) AS holding
                 FROM jobs
                 WHERE {in_queue} AND {started_any} AND concurrency_key IS NOT NULL
                 GROUP BY concurrency_key",
                running = status_test(RUNNING),
                holding = status_test(HOLDING_THE_HEAD),
                started_any = started(STARTED),
            ),
            // One probe of `jobs_flow_keys` per key: the key after ?3.
            next_key: format!(
                "SELECT concurrency_key FROM jobs
                 WHERE {in_queue} AND {queued} AND concurrency_key > ?3
                 ORDER BY concurrency_key LIMIT 1",
                queued = queued_controlled_any(),
            ),
            key_retrying_head: format!(
                "SELECT {columns} FROM jobs
                 WHERE {in_queue} AND concurrency_key = ?3 AND {retrying}
                 ORDER BY priority DESC, run_at, id LIMIT 1",
                retrying = started(&[JobStatus::Queued]),
            ),
            key_head: [of_key(FIFO, ""), of_key(LIFO, "")],
            key_pull: [of_key(FIFO, key_pull), of_key(LIFO, key_pull)],
            key_push: [of_key(FIFO, push), of_key(LIFO, push)],
            log_start: clock.sqlite(format!(
                "INSERT INTO queue_starts (queue_id, concurrency_key, started_at)
                 VALUES (?1, ?2, {NOW})"
            )),
            now: clock.sqlite(format!("SELECT {NOW}")),
            rate_limited: format!(
                "SELECT {limits} FROM queues
                 WHERE (rate_limit IS NOT NULL OR key_rate_limit IS NOT NULL)
                   AND status = 'active' AND NOT blocked"
            ),
            // The moment the ?3-th newest start (counting from 0) leaves
            // the window of ?2 seconds, of the starts that leave it after
            // ?4 (a window fuller earlier let a start go before ?4).
            queue_release: format!(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '+' || ?2 || ' seconds')
                 FROM queue_starts WHERE queue_id = ?1 AND started_at > {after}
                 ORDER BY started_at DESC LIMIT 1 OFFSET ?3",
            ),
            key_releases: format!(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '+' || ?2 || ' seconds')
                 FROM (SELECT started_at, row_number() OVER (PARTITION BY concurrency_key
                                                             ORDER BY started_at DESC) AS n
                       FROM queue_starts
                       WHERE queue_id = ?1 AND concurrency_key IS NOT NULL
                         AND started_at > {after})
                 WHERE n = ?3",
            ),
            cursors: Default::default(),
            seconds_until: clock.sqlite(format!(
                "SELECT (julianday(?1) - julianday({NOW})) * 86400.0"
            )),
            prune_starts: clock.sqlite(format!(
                "DELETE FROM queue_starts WHERE queue_id = ?1 AND started_at <= {}",
                seconds_ago(2)
            )),
        }
    }
}

/// How many more starts a rate of `limit` per `period` seconds allows now,
/// counted by `statement` (`starts`, `key_starts`) for the queue `queue_id`
/// (and the key `key`).
fn rate_room(
    conn: &Connection,
    statement: &str,
    queue_id: &str,
    (limit, period): (i64, i64),
    key: Option<&str>,
) -> Result<i64> {
    let mut stmt = conn.prepare_cached(statement)?;
    let starts: i64 = match key {
        None => stmt.query_row(params![queue_id, period], |r| r.get(0))?,
        Some(key) => stmt.query_row(params![queue_id, period, key], |r| r.get(0))?,
    };
    Ok((limit - starts).max(0))
}

/// The jobs of the controlled queues `queues` that `serves` may start now,
/// at most `max`, best first.
fn candidates(
    conn: &Connection,
    sql: &Sql,
    queues: Vec<Limits>,
    max: usize,
    serves: &Serves,
) -> Result<Vec<Candidate>> {
    let max = max as i64;
    let mut candidates: Vec<Candidate> = Vec::new();
    for queue in queues {
        let (org, name) = (&queue.org, &queue.name);
        let mut room = match queue.concurrency {
            None => max,
            Some(1) => {
                let held: bool = conn
                    .prepare_cached(&sql.holding_head)?
                    .query_row(params![org, name], |r| r.get(0))?;
                i64::from(!held)
            }
            Some(n) => {
                let running: i64 = conn
                    .prepare_cached(&sql.running)?
                    .query_row(params![org, name], |r| r.get(0))?;
                (n - running).max(0)
            }
        };
        if let Some(rate) = queue.rate.filter(|_| room > 0) {
            room = room.min(rate_room(conn, &sql.starts, &queue.id, rate, None)?);
        }
        if room == 0 {
            continue;
        }
        let logs = queue.logged_period().map(|p| (queue.id.clone(), p));
        let keyed_queue = queue.keyed().then(|| queue.id.clone());
        let mut found = Vec::new();
        if queue.concurrency == Some(1) {
            // The head, whatever it is: a started job queued again for its
            // retry first. Nothing else may start before it, and it waits
            // while its key's rate is spent.
            let mut head = conn
                .prepare_cached(&sql.retrying_head)?
                .query_row(params![org, name], Candidate::read)
                .optional()?;
            for text in &sql.head {
                if head.is_none() {
                    head = conn
                        .prepare_cached(text)?
                        .query_row(params![org, name, 1], Candidate::read)
                        .optional()?;
                }
            }
            if let (Some(h), Some(rate)) = (&head, queue.key_rate)
                && let Some(key) = &h.key
                && rate_room(conn, &sql.key_starts, &queue.id, rate, Some(key))? == 0
            {
                head = None;
            }
            found.extend(head.filter(|h| serves.takes(h)));
        } else if queue.keyed() {
            found = keyed(conn, sql, &queue, room, serves)?;
        } else {
            let (texts, served) = match serves {
                Serves::Pull(_, json) => (&sql.best_pull, Some(*json)),
                Serves::Push => (&sql.best_push, None),
            };
            for text in texts {
                let mut stmt = conn.prepare_cached(text)?;
                let rows = match served {
                    Some(json) => {
                        stmt.query_map(params![org, name, room, json], Candidate::read)?
                    }
                    None => stmt.query_map(params![org, name, room], Candidate::read)?,
                };
                for (rank, row) in rows.enumerate() {
                    found.push(Candidate { rank, ..row? });
                }
            }
        }
        candidates.extend(found.into_iter().map(|c| Candidate {
            logs: logs.clone(),
            keyed_queue: keyed_queue.clone(),
            ..c
        }));
    }
    sort_best_first(&mut candidates);
    Ok(candidates)
}

fn sort_best_first(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| (a.rank, &a.run_at, &a.id).cmp(&(b.rank, &b.run_at, &b.id)))
    });
}

/// The jobs of a queue with per-key limits that `serves` may start now, at
/// most `room`: each key with due jobs (found one probe of `jobs_flow_keys`
/// at a time) gets its room — its concurrency less what runs (at 1, none
/// while its head is unfinished, and then only its head), its rate less its
/// recent starts — and the keys take turns; jobs without a key are held by
/// the queue's limits only.
fn keyed(
    conn: &Connection,
    sql: &Sql,
    queue: &Limits,
    room: i64,
    serves: &Serves,
) -> Result<Vec<Candidate>> {
    let (org, name) = (&queue.org, &queue.name);
    let mut loads: HashMap<String, (i64, i64)> = HashMap::new();
    let mut stmt = conn.prepare_cached(&sql.key_loads)?;
    let mut rows = stmt.query(params![org, name])?;
    while let Some(row) = rows.next()? {
        loads.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
    }
    let mut recent: HashMap<String, i64> = HashMap::new();
    if let Some((_, period)) = queue.key_rate {
        let mut stmt = conn.prepare_cached(&sql.key_starts_all)?;
        let mut rows = stmt.query(params![queue.id, period])?;
        while let Some(row) = rows.next()? {
            recent.insert(row.get(0)?, row.get(1)?);
        }
    }
    // The jobs of `key` (None: without one) `serves` takes, best first.
    // `served`: only the jobs `serves` takes (a pull worker's handlers, ?5);
    // else whatever is next.
    let best = |key: Option<&str>, limit: i64, served: bool| -> Result<Vec<Candidate>> {
        let texts = match (served, serves) {
            (false, _) => &sql.key_head,
            (true, Serves::Pull(..)) => &sql.key_pull,
            (true, Serves::Push) => &sql.key_push,
        };
        let mut found = Vec::new();
        for text in texts {
            let mut stmt = conn.prepare_cached(text)?;
            let rows = match serves {
                Serves::Pull(_, json) if served => {
                    stmt.query_map(params![org, name, key, limit, json], Candidate::read)?
                }
                _ => stmt.query_map(params![org, name, key, limit], Candidate::read)?,
            };
            for (rank, row) in rows.enumerate() {
                found.push(Candidate { rank, ..row? });
            }
        }
        Ok(found)
    };
    let cursor = sql
        .cursors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&queue.id)
        .cloned()
        .unwrap_or_default();
    let mut found = Vec::new();
    // The keys after the cursor, then from the first up to the cursor; no
    // further than it takes to find as many keys with jobs to start as the
    // queue has room for (each key's first comes before any key's second).
    let mut after = cursor.clone();
    let mut wrapped = false;
    let mut keys_found = 0;
    while keys_found < room {
        let key: Option<String> = conn
            .prepare_cached(&sql.next_key)?
            .query_row(params![org, name, after], |r| r.get(0))
            .optional()?;
        let key = match key {
            Some(key) if !wrapped || key <= cursor => key,
            _ if !wrapped && !cursor.is_empty() => {
                wrapped = true;
                after = String::new();
                continue;
            }
            _ => break,
        };
        let (running, holding) = loads.get(&key).copied().unwrap_or_default();
        let mut key_room = match queue.key_concurrency {
            None => room,
            Some(1) => i64::from(holding == 0),
            Some(n) => (n - running).max(0),
        };
        if let Some((limit, _)) = queue.key_rate {
            key_room = key_room.min((limit - recent.get(&key).copied().unwrap_or(0)).max(0));
        }
        let before = found.len();
        if key_room > 0 {
            if queue.key_concurrency == Some(1) {
                let mut head = conn
                    .prepare_cached(&sql.key_retrying_head)?
                    .query_row(params![org, name, key], Candidate::read)
                    .optional()?;
                if head.is_none() {
                    head = best(Some(&key), 1, false)?.into_iter().next();
                }
                found.extend(head.filter(|h| serves.takes(h)));
            } else {
                found.extend(best(Some(&key), key_room, true)?);
            }
        }
        keys_found += i64::from(found.len() > before);
        after = key;
    }
    found.extend(best(None, room, true)?);
    sort_best_first(&mut found);
    found.truncate(room as usize);
    Ok(found)
}

/// Moves each keyed queue's cursor past the keys `leased` served: to the
/// last of them in the order they were served in, from the old cursor round.
fn advance_cursors(sql: &Sql, leased: &[&Candidate]) {
    let mut cursors = sql.cursors.lock().unwrap_or_else(|p| p.into_inner());
    let mut last: HashMap<&str, (bool, &str)> = HashMap::new();
    for c in leased {
        let (Some(queue), Some(key)) = (&c.keyed_queue, &c.key) else {
            continue;
        };
        let cursor = cursors.get(queue).map(String::as_str).unwrap_or("");
        // Keys after the cursor were served before those at or before it.
        let place = (key.as_str() <= cursor, key.as_str());
        let entry = last.entry(queue.as_str()).or_insert(place);
        if place > *entry {
            *entry = place;
        }
    }
    let moved: Vec<(String, String)> = last
        .into_iter()
        .map(|(q, (_, k))| (q.to_string(), k.to_string()))
        .collect();
    cursors.extend(moved);
}

/// Logs the start of a job a lease just started, if its queue counts
/// starts for a rate limit.
fn log_start(conn: &Connection, sql: &Sql, c: &Candidate) -> Result<()> {
    if let Some((queue_id, _)) = &c.logs {
        conn.prepare_cached(&sql.log_start)?
            .execute(params![queue_id, c.key])?;
    }
    Ok(())
}

/// Deletes the starts too old to count of the queues `leased` logged to.
fn prune_starts(conn: &Connection, sql: &Sql, leased: &[&Candidate]) -> Result<()> {
    let mut pruned: Vec<&str> = Vec::new();
    for (queue_id, period) in leased.iter().filter_map(|c| c.logs.as_ref()) {
        if !pruned.contains(&queue_id.as_str()) {
            conn.prepare_cached(&sql.prune_starts)?
                .execute(params![queue_id, period])?;
            pruned.push(queue_id);
        }
    }
    Ok(())
}

/// Leases queued pull jobs of controlled queues (only of `limited_to` when
/// given), at most `workers.len()`, in the caller's transaction: the n-th
/// job leased goes to `workers[n]`. Returns each with the index of its
/// worker.
pub(super) fn lease_pull(
    conn: &Connection,
    sql: &Sql,
    leases: &LeaseSql,
    org: OrgId,
    handlers: &[String],
    limited_to: Option<&[String]>,
    workers: &[Option<&str>],
) -> Result<Vec<(usize, LeasedJob)>> {
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let served = serde_json::to_string(handlers).expect("strings serialize");
    let mut queues: Vec<Limits> = conn
        .prepare_cached(&sql.pull_queues)?
        .query_map(params![org.0.to_string(), served], Limits::read)?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(names) = limited_to {
        queues.retain(|q| names.contains(&q.name));
    }
    let serves = Serves::Pull(handlers, &served);
    let candidates = candidates(conn, sql, queues, workers.len(), &serves)?;
    let mut leased = Vec::new();
    let mut started = Vec::new();
    for c in &candidates {
        let Some(&worker) = workers.get(leased.len()) else {
            break;
        };
        if let Some(job) = lease_one(conn, leases, &c.id, worker, Duration::ZERO)? {
            log_start(conn, sql, c)?;
            started.push(c);
            leased.push((leased.len(), job));
        }
    }
    prune_starts(conn, sql, &started)?;
    advance_cursors(sql, &started);
    Ok(leased)
}

/// Leases queued push jobs of controlled queues for the dispatcher, in the
/// caller's transaction: at most `max`, and no host past `per_host` calls
/// (`busy` counts each host's calls, and what this lease gives). Returns
/// each with its organization.
pub(super) fn lease_push(
    conn: &Connection,
    sql: &Sql,
    leases: &LeaseSql,
    max: usize,
    per_host: u32,
    busy: &mut HashMap<String, u32>,
    margin: Duration,
) -> Result<Vec<(OrgId, LeasedJob)>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let queues: Vec<Limits> = conn
        .prepare_cached(&sql.push_queues)?
        .query_map([], Limits::read)?
        .collect::<rusqlite::Result<_>>()?;
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = candidates(conn, sql, queues, max, &Serves::Push)?;
    let mut leased = Vec::new();
    let mut started = Vec::new();
    for c in &candidates {
        if leased.len() == max {
            break;
        }
        let calls = busy.entry(c.host.clone()).or_default();
        if *calls >= per_host {
            continue;
        }
        if let Some(job) = lease_one(conn, leases, &c.id, None, margin)? {
            *calls += 1;
            log_start(conn, sql, c)?;
            started.push(c);
            leased.push((OrgId(super::uuid(c.org.clone())?), job));
        }
    }
    prune_starts(conn, sql, &started)?;
    advance_cursors(sql, &started);
    Ok(leased)
}

/// See [`crate::store::LeaseStore::rate_releases`]: the moments the
/// windows of rate-limited queues let a start go (a queue's when the
/// `rate_limit`-th newest of its starts leaves it, a key's likewise).
pub(super) fn rate_releases(
    conn: &Connection,
    sql: &Sql,
    leases: &LeaseSql,
    since: Option<Timestamp>,
) -> Result<RateReleases> {
    let now: String = conn.prepare_cached(&sql.now)?.query_row([], |r| r.get(0))?;
    let checked_at = super::ts(now.clone())?;
    let since = since.map_or_else(
        || Timestamp(checked_at.0 - chrono::Duration::seconds(1)).to_string(),
        |t| t.to_string(),
    );
    let queues: Vec<Limits> = conn
        .prepare_cached(&sql.rate_limited)?
        .query_map([], Limits::read)?
        .collect::<rusqlite::Result<_>>()?;
    let mut woken = Vec::new();
    let mut next: Option<String> = None;
    for queue in queues {
        let mut releases: Vec<String> = Vec::new();
        if let Some((limit, period)) = queue.rate {
            releases.extend(
                conn.prepare_cached(&sql.queue_release)?
                    .query_row(params![queue.id, period, limit - 1, since], |r| r.get(0))
                    .optional()?,
            );
        }
        if let Some((limit, period)) = queue.key_rate {
            let mut stmt = conn.prepare_cached(&sql.key_releases)?;
            let rows = stmt.query_map(params![queue.id, period, limit, since], |r| r.get(0))?;
            for release in rows {
                releases.push(release?);
            }
        }
        let mut due = false;
        for release in releases {
            if release > now {
                if next.as_ref().is_none_or(|n| release < *n) {
                    next = Some(release);
                }
            } else if release > since {
                due = true;
            }
        }
        if due {
            for key in freed(conn, leases, Some((queue.org, queue.name)))? {
                if !woken.contains(&key) {
                    woken.push(key);
                }
            }
        }
    }
    let next_in = match next {
        Some(at) => seconds_from_now(Some(
            conn.prepare_cached(&sql.seconds_until)?
                .query_row(params![at], |r| r.get(0))?,
        )),
        None => None,
    };
    Ok(RateReleases {
        woken,
        checked_at,
        next_in,
    })
}

/// The controlled queue (organization, name) whose slot an ended job held;
/// `None` for a free queue's job.
pub(super) type Slot = Option<(String, String)>;

/// The [`Slot`] the job of `row` (an attempt's end, with
/// `organization_id`, `queue` and `flow`) held.
pub(super) fn held_slot(row: &Row) -> rusqlite::Result<Slot> {
    let flow: i64 = row.get("flow")?;
    if flow == i64::from(FREE) {
        return Ok(None);
    }
    Ok(Some((row.get("organization_id")?, row.get("queue")?)))
}

/// Whose polls to wake now that a slot of the queue `slot` came free: the
/// handlers of its next jobs.
pub(super) fn freed(conn: &Connection, leases: &LeaseSql, slot: Slot) -> Result<Vec<WakeKey>> {
    let Some((org, queue)) = slot else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&leases.next_in_line)?;
    let mut rows = stmt.query(params![org, queue])?;
    let mut keys = Vec::new();
    while let Some(next) = rows.next()? {
        let key = wake_key(next)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Sets each ended job's `freed` (`ended`: the jobs of a batch's ends, each
/// with the [`Slot`] it held), reading each queue's next jobs once, after
/// the batch's last end: a batch of acks is mostly of one queue, and its
/// next jobs are the same for all of them.
pub(super) fn fill_freed<'a>(
    conn: &Connection,
    leases: &LeaseSql,
    ended: impl Iterator<Item = (&'a mut Moved, Slot)>,
) -> Result<()> {
    let mut read: Vec<((String, String), Vec<WakeKey>)> = Vec::new();
    for (moved, slot) in ended {
        let Some(queue) = slot else { continue };
        moved.freed = match read.iter().find(|(q, _)| *q == queue) {
            Some((_, keys)) => keys.clone(),
            None => {
                let keys = freed(conn, leases, Some(queue.clone()))?;
                read.push((queue, keys.clone()));
                keys
            }
        };
    }
    Ok(())
}
