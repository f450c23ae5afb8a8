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
    FIFO, HOLDING_THE_HEAD, LIFO, RUNNING, order_of, queued_controlled_pull, queued_in, started,
};
use crate::store::jobs::JOB_COLUMNS;
use crate::store::{Clock, Result};
use chronos_proto::JobStatus;
use std::collections::HashSet;
use std::sync::Mutex;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    lock_pull: String,
    lease_pull: String,
}

/// Whether queued jobs of controlled queues wait for the handlers `$2` of
/// the organization `$1` (one probe per handler of `jobs_flow_pull`).
pub(super) fn any_controlled() -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM jobs
                        WHERE organization_id = $1 AND handler = ANY($2) AND {controlled})",
        controlled = queued_controlled_pull(),
    )
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let queued = crate::store::status_test(&[JobStatus::Queued]);
        // A queue's best queued jobs of `flow`, at most `limit`, only of the
        // worker's handlers when `served`.
        // `rank`: the place in its queue's order, so that queues take turns
        // (within a priority) and each keeps its order.
        let best = |flow: i16, limit: &str, served: bool| {
            format!(
                "(SELECT *, row_number() OVER () AS rank FROM (
                      SELECT id, handler, priority, run_at FROM jobs
                      WHERE organization_id = $1 AND queue = r.name AND {queued} {served}
                      ORDER BY {order} LIMIT {limit}) b)",
                queued = queued_in(flow),
                served = if served { "AND handler = ANY($2)" } else { "" },
                order = order_of(flow),
            )
        };
        Sql {
            lock_pull: format!(
                "SELECT id FROM queues q
                 WHERE organization_id = $1 AND flow <> 0 AND status = 'active' AND NOT blocked
                   AND EXISTS (SELECT 1 FROM jobs
                               WHERE organization_id = $1 AND handler = ANY($2)
                                 AND queue = q.name AND {controlled})
                 ORDER BY id
                 FOR NO KEY UPDATE",
                controlled = queued_controlled_pull(),
            ),
            // `room`: how many more of each queue's jobs may start. A queue
            // that runs one job at a time (`strict`) starts its head, a
            // started job queued again for its retry first, whatever its
            // handler: if no worker here serves it, nothing starts.
            lease_pull: clock.pg(format!(
                "WITH q AS (
                     SELECT name, coalesce(concurrency = 1, false) AS strict, concurrency
                     FROM queues
                     WHERE id = ANY($3) AND flow <> 0 AND status = 'active' AND NOT blocked
                 ), room AS (
                     SELECT name, strict, CASE
                         WHEN concurrency IS NULL THEN $4::int8
                         WHEN strict THEN CASE WHEN EXISTS (
                                  SELECT 1 FROM jobs WHERE organization_id = $1
                                    AND queue = q.name AND {holding_head}) THEN 0 ELSE 1 END
                         ELSE greatest(concurrency - (
                                  SELECT count(*) FROM jobs WHERE organization_id = $1
                                    AND queue = q.name AND {running}), 0)
                         END AS room
                     FROM q
                 ), heads AS (
                     SELECT h.* FROM room r CROSS JOIN LATERAL (
                         (SELECT id, handler, priority, run_at, 1::int8 AS rank FROM jobs
                          WHERE organization_id = $1 AND queue = r.name AND {retrying}
                          ORDER BY priority DESC, run_at, id LIMIT 1)
                         UNION ALL {fifo_head} UNION ALL {lifo_head}
                         LIMIT 1
                     ) h
                     WHERE r.strict AND r.room > 0
                 ), firsts AS (
                     SELECT f.* FROM room r CROSS JOIN LATERAL (
                         {fifo_room} UNION ALL {lifo_room}
                     ) f
                     WHERE NOT r.strict AND r.room > 0
                 ), chosen AS (
                     SELECT id, priority, rank, run_at FROM heads WHERE handler = ANY($2)
                     UNION ALL
                     SELECT id, priority, rank, run_at FROM firsts
                     ORDER BY priority DESC, rank, run_at, id
                     LIMIT $4
                 ), locked AS (
                     SELECT j.id, c.priority, c.rank, c.run_at
                     FROM chosen c CROSS JOIN LATERAL (
                         SELECT id FROM jobs
                         WHERE id = c.id AND status {queued}
                         FOR UPDATE SKIP LOCKED
                     ) j
                 ), picked AS (
                     SELECT id, slot, ($5::text[])[slot] AS worker,
                            ($6::uuid[])[slot] AS execution_id, ($7::uuid[])[slot] AS token
                     FROM (SELECT id, row_number() OVER (ORDER BY priority DESC, rank, run_at, id)
                                      AS slot
                           FROM locked) l
                 ), {tail}
                 SELECT {JOB_COLUMNS}, lease_token, lease_expires_at, slot
                 FROM leased ORDER BY slot",
                holding_head = started(HOLDING_THE_HEAD),
                running = started(RUNNING),
                retrying = started(&[JobStatus::Queued]),
                fifo_head = best(FIFO, "1", false),
                lifo_head = best(LIFO, "1", false),
                fifo_room = best(FIFO, "r.room", true),
                lifo_room = best(LIFO, "r.room", true),
                tail = lease_tail("picked", "0"),
            )),
        }
    }
}

/// How many of a controlled queue's next jobs a freed slot wakes the polls
/// of (their handlers'): the head, and enough behind it for a queue whose
/// jobs need several handlers.
const NEXT_IN_LINE: u32 = 16;

/// A CTE `freed`: for each job of `ended` (a CTE with `id`, and its queue's
/// `f_org`, `f_queue`, `f_flow`) that held a slot of a controlled queue,
/// the wake keys (`f_keys`, as [`super::NOTIFY_CHANNEL`] writes them) of
/// the queue's next jobs, which may start now. Nothing is read for a job of
/// a free queue (the test of `f_flow` is made once, before the index is).
pub(super) fn freed(ended: &str) -> String {
    let next = |flow: i16| {
        format!(
            "(SELECT delivery_type, organization_id, handler FROM jobs
              WHERE e.f_flow <> 0 AND organization_id = e.f_org AND queue = e.f_queue
                AND {queued}
              ORDER BY {order} LIMIT {NEXT_IN_LINE})",
            queued = queued_in(flow),
            order = order_of(flow),
        )
    };
    format!(
        "freed AS (
             SELECT e.id AS f_id, string_agg(DISTINCT n.key, ',') AS f_keys
             FROM {ended} e CROSS JOIN LATERAL (
                 SELECT {WAKE_KEY_SQL} AS key FROM ({fifo} UNION ALL {lifo}) next
             ) n
             GROUP BY e.id
         )",
        fifo = next(FIFO),
        lifo = next(LIFO),
    )
}

/// Sends the keys of [`freed`] to every server process, as a value.
pub(super) fn notify_freed() -> String {
    format!(
        "(SELECT {NOTIFY_KEYS} FROM (SELECT DISTINCT unnest(string_to_array(f_keys, ',')) AS key
                                     FROM freed) k)"
    )
}

/// The organizations whose workers' last lease on this process found jobs
/// of controlled queues: their next lease takes those first, so that a
/// long backlog of free jobs can't starve a limited queue. Only an order
/// of work: a replica that has not seen them yet finds them after its next
/// fast lease.
#[derive(Default)]
pub(super) struct Seen(Mutex<HashSet<Uuid>>);

impl Seen {
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

/// Leases queued jobs of controlled queues for the slots `workers` (with
/// their execution ids and lease tokens), in one transaction. Returns the
/// leased rows, each with its `slot` (1-based, into `workers`).
pub(super) async fn lease_pull(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    org: OrgId,
    handlers: &[String],
    workers: &[Option<&str>],
    execution_ids: &[Uuid],
    tokens: &[Uuid],
) -> Result<Vec<Row>> {
    let tx = client.transaction().await?;
    let lock = tx.prepare_cached(&store.sql.flow.lock_pull).await?;
    let queues: Vec<Uuid> = tx
        .query(&lock, &[&org.0, &handlers])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if queues.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let lease = tx.prepare_cached(&store.sql.flow.lease_pull).await?;
    let rows = tx
        .query(
            &lease,
            &[
                &org.0,
                &handlers,
                &queues,
                &(workers.len() as i64),
                &workers,
                &execution_ids,
                &tokens,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(rows)
}
