//! The controlled lease: jobs of queues that can hold them back
//! (`crate::store::flow`), for pull workers and for push delivery. SQLite
//! runs one writer at a time, so counting a queue's slots and leasing the
//! room left, in the caller's transaction, can't race another lease.

use super::leases::{Sql as LeaseSql, lease_one};
use super::wake_key;
use crate::account::OrgId;
use crate::store::flow::{
    FIFO, FREE, HOLDING_THE_HEAD, LIFO, RUNNING, order_of, queued_controlled, queued_in, started,
};
use crate::store::{Result, WakeKey};
use chronos_proto::{JobStatus, LeasedJob};
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

/// A queued job that may be leased: its order's keys, and what it needs.
struct Candidate {
    priority: i64,
    /// The place in its queue's order, so that queues take turns (within a
    /// priority) and each keeps its order.
    rank: usize,
    run_at: String,
    id: String,
    org: String,
    handler: Option<String>,
    delivery_type: String,
    host: String,
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
        })
    }
}

impl Sql {
    pub(super) fn new() -> Self {
        let columns = "id, organization_id, handler, delivery_type, target_host, priority, run_at";
        let best = |flow: i16, served: &str| {
            format!(
                "SELECT {columns} FROM jobs
                 WHERE organization_id = ?1 AND queue = ?2 AND {queued} {served}
                 ORDER BY {order} LIMIT ?3",
                queued = queued_in(flow),
                order = order_of(flow),
            )
        };
        let pull = "AND delivery_type = 'pull' AND handler IN (SELECT value FROM json_each(?4))";
        let push = "AND delivery_type = 'push'";
        let in_queue = "organization_id = ?1 AND queue = ?2";
        let active = "flow <> 0 AND status = 'active' AND NOT blocked";
        Sql {
            pull_queues: format!(
                "SELECT organization_id, name, concurrency FROM queues q
                 WHERE organization_id = ?1 AND {active}
                   AND EXISTS (SELECT 1 FROM jobs
                               WHERE organization_id = ?1 AND queue = q.name
                                 AND handler IN (SELECT value FROM json_each(?2))
                                 AND {controlled})
                 ORDER BY id",
                controlled = queued_controlled("pull"),
            ),
            push_queues: format!(
                "SELECT organization_id, name, concurrency FROM queues q
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
        }
    }
}

/// The jobs of the controlled queues `queues` (organization, name,
/// concurrency) that `serves` may start now, at most `max`, best first.
fn candidates(
    conn: &Connection,
    sql: &Sql,
    queues: Vec<(String, String, Option<i64>)>,
    max: usize,
    serves: &Serves,
) -> Result<Vec<Candidate>> {
    let max = max as i64;
    let mut candidates: Vec<Candidate> = Vec::new();
    for (org, queue, concurrency) in queues {
        let room = match concurrency {
            None => max,
            Some(1) => {
                let held: bool = conn
                    .prepare_cached(&sql.holding_head)?
                    .query_row(params![org, queue], |r| r.get(0))?;
                i64::from(!held)
            }
            Some(n) => {
                let running: i64 = conn
                    .prepare_cached(&sql.running)?
                    .query_row(params![org, queue], |r| r.get(0))?;
                (n - running).max(0)
            }
        };
        if room == 0 {
            continue;
        }
        if concurrency == Some(1) {
            // The head, whatever it is: a started job queued again for its
            // retry first. Nothing else may start before it.
            let mut head = conn
                .prepare_cached(&sql.retrying_head)?
                .query_row(params![org, queue], Candidate::read)
                .optional()?;
            for text in &sql.head {
                if head.is_none() {
                    head = conn
                        .prepare_cached(text)?
                        .query_row(params![org, queue, 1], Candidate::read)
                        .optional()?;
                }
            }
            candidates.extend(head.filter(|h| serves.takes(h)));
            continue;
        }
        let (texts, served) = match serves {
            Serves::Pull(_, json) => (&sql.best_pull, Some(*json)),
            Serves::Push => (&sql.best_push, None),
        };
        for text in texts {
            let mut stmt = conn.prepare_cached(text)?;
            let rows = match served {
                Some(json) => stmt.query_map(params![org, queue, room, json], Candidate::read)?,
                None => stmt.query_map(params![org, queue, room], Candidate::read)?,
            };
            for (rank, row) in rows.enumerate() {
                candidates.push(Candidate { rank, ..row? });
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| (a.rank, &a.run_at, &a.id).cmp(&(b.rank, &b.run_at, &b.id)))
    });
    Ok(candidates)
}

/// Leases queued pull jobs of controlled queues, at most `workers.len()`,
/// in the caller's transaction: the n-th job leased goes to `workers[n]`.
/// Returns each with the index of its worker.
pub(super) fn lease_pull(
    conn: &Connection,
    sql: &Sql,
    leases: &LeaseSql,
    org: OrgId,
    handlers: &[String],
    workers: &[Option<&str>],
) -> Result<Vec<(usize, LeasedJob)>> {
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let served = serde_json::to_string(handlers).expect("strings serialize");
    let queues: Vec<(String, String, Option<i64>)> = conn
        .prepare_cached(&sql.pull_queues)?
        .query_map(params![org.0.to_string(), served], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let serves = Serves::Pull(handlers, &served);
    let mut leased = Vec::new();
    for c in candidates(conn, sql, queues, workers.len(), &serves)? {
        let Some(&worker) = workers.get(leased.len()) else {
            break;
        };
        if let Some(job) = lease_one(conn, leases, &c.id, worker, Duration::ZERO)? {
            leased.push((leased.len(), job));
        }
    }
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
    let queues: Vec<(String, String, Option<i64>)> = conn
        .prepare_cached(&sql.push_queues)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let mut leased = Vec::new();
    for c in candidates(conn, sql, queues, max, &Serves::Push)? {
        if leased.len() == max {
            break;
        }
        let calls = busy.entry(c.host.clone()).or_default();
        if *calls >= per_host {
            continue;
        }
        if let Some(job) = lease_one(conn, leases, &c.id, None, margin)? {
            *calls += 1;
            leased.push((OrgId(super::uuid(c.org)?), job));
        }
    }
    Ok(leased)
}

/// The controlled queue (organization, name) whose slot the job of `row`
/// (an attempt's end, with `organization_id`, `queue` and `flow`) held;
/// `None` for a free queue's job.
pub(super) fn held_slot(row: &Row) -> rusqlite::Result<Option<(String, String)>> {
    let flow: i64 = row.get("flow")?;
    if flow == i64::from(FREE) {
        return Ok(None);
    }
    Ok(Some((row.get("organization_id")?, row.get("queue")?)))
}

/// Whose polls to wake now that a slot of the queue `slot` came free: the
/// handlers of its next jobs.
pub(super) fn freed(
    conn: &Connection,
    leases: &LeaseSql,
    slot: Option<(String, String)>,
) -> Result<Vec<WakeKey>> {
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
