//! The controlled lease: pull jobs of queues that can hold them back
//! (`crate::store::flow`). SQLite runs one writer at a time, so counting a
//! queue's slots and leasing the room left, in the caller's transaction,
//! can't race another lease.

use super::leases::{Sql as LeaseSql, lease_one};
use super::wake_key;
use crate::account::OrgId;
use crate::store::flow::{
    FIFO, FREE, HOLDING_THE_HEAD, LIFO, RUNNING, order_of, queued_controlled_pull, queued_in,
    started,
};
use crate::store::{Result, WakeKey};
use chronos_proto::{JobStatus, LeasedJob};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::time::Duration;

pub(super) struct Sql {
    queues: String,
    holding_head: String,
    running: String,
    retrying_head: String,
    head: [String; 2],
    best: [String; 2],
}

/// A queued job that may be leased: its order's keys and its handler.
struct Candidate {
    priority: i64,
    /// The place in its queue's order, so that queues take turns (within a
    /// priority) and each keeps its order.
    rank: usize,
    run_at: String,
    id: String,
    handler: Option<String>,
}

impl Candidate {
    fn read(row: &Row) -> rusqlite::Result<Self> {
        Ok(Candidate {
            id: row.get("id")?,
            handler: row.get("handler")?,
            priority: row.get("priority")?,
            rank: 0,
            run_at: row.get("run_at")?,
        })
    }
}

impl Sql {
    pub(super) fn new() -> Self {
        let columns = "id, handler, priority, run_at";
        let best = |flow: i16, served: bool| {
            format!(
                "SELECT {columns} FROM jobs
                 WHERE organization_id = ?1 AND queue = ?2 AND {queued} {served}
                 ORDER BY {order} LIMIT ?3",
                queued = queued_in(flow),
                served = if served {
                    "AND handler IN (SELECT value FROM json_each(?4))"
                } else {
                    ""
                },
                order = order_of(flow),
            )
        };
        let in_queue = "organization_id = ?1 AND queue = ?2";
        Sql {
            queues: format!(
                "SELECT name, concurrency FROM queues q
                 WHERE organization_id = ?1 AND flow <> 0 AND status = 'active' AND NOT blocked
                   AND EXISTS (SELECT 1 FROM jobs
                               WHERE organization_id = ?1 AND queue = q.name
                                 AND handler IN (SELECT value FROM json_each(?2))
                                 AND {controlled})
                 ORDER BY id",
                controlled = queued_controlled_pull(),
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
            head: [best(FIFO, false), best(LIFO, false)],
            best: [best(FIFO, true), best(LIFO, true)],
        }
    }
}

/// Leases queued jobs of controlled queues, at most `workers.len()`, in
/// the caller's transaction: the n-th job leased goes to `workers[n]`.
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
    let org_id = org.0.to_string();
    let served = serde_json::to_string(handlers).expect("strings serialize");
    let queues: Vec<(String, Option<i64>)> = conn
        .prepare_cached(&sql.queues)?
        .query_map(params![org_id, served], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let max = workers.len() as i64;
    let mut candidates: Vec<Candidate> = Vec::new();
    for (queue, concurrency) in queues {
        let strict = concurrency == Some(1);
        let room = match concurrency {
            None => max,
            Some(1) => {
                let held: bool = conn
                    .prepare_cached(&sql.holding_head)?
                    .query_row(params![org_id, queue], |r| r.get(0))?;
                i64::from(!held)
            }
            Some(n) => {
                let running: i64 = conn
                    .prepare_cached(&sql.running)?
                    .query_row(params![org_id, queue], |r| r.get(0))?;
                (n - running).max(0)
            }
        };
        if room == 0 {
            continue;
        }
        if strict {
            // The head, whatever its handler: a started job queued again
            // for its retry first. Nothing else may start before it.
            let mut head = conn
                .prepare_cached(&sql.retrying_head)?
                .query_row(params![org_id, queue], Candidate::read)
                .optional()?;
            for text in &sql.head {
                if head.is_none() {
                    head = conn
                        .prepare_cached(text)?
                        .query_row(params![org_id, queue, 1], Candidate::read)
                        .optional()?;
                }
            }
            candidates
                .extend(head.filter(|h| h.handler.as_ref().is_some_and(|h| handlers.contains(h))));
        } else {
            for text in &sql.best {
                let mut stmt = conn.prepare_cached(text)?;
                let rows = stmt.query_map(params![org_id, queue, room, served], Candidate::read)?;
                for (rank, row) in rows.enumerate() {
                    candidates.push(Candidate { rank, ..row? });
                }
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| (a.rank, &a.run_at, &a.id).cmp(&(b.rank, &b.run_at, &b.id)))
    });
    let mut leased = Vec::new();
    for c in candidates {
        let Some(&worker) = workers.get(leased.len()) else {
            break;
        };
        if let Some(job) = lease_one(conn, leases, &c.id, worker, Duration::ZERO)? {
            leased.push((leased.len(), job));
        }
    }
    Ok(leased)
}

/// How many of a controlled queue's next jobs a freed slot wakes the polls
/// of (as `postgres::flow`).
const NEXT_IN_LINE: u32 = 16;

/// The wake keys' columns of a controlled queue's (`?1`, `?2`) next jobs.
pub(super) fn next_in_line() -> String {
    let next = |flow: i16| {
        format!(
            "SELECT * FROM (SELECT organization_id, delivery_type, handler FROM jobs
                            WHERE organization_id = ?1 AND queue = ?2 AND {queued}
                            ORDER BY {order} LIMIT {NEXT_IN_LINE})",
            queued = queued_in(flow),
            order = order_of(flow),
        )
    };
    format!("{} UNION ALL {}", next(FIFO), next(LIFO))
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
