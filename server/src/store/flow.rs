//! Flow control as both stores write it: which of a controlled queue's jobs
//! hold its slots, and the tests that select them as their indexes
//! (postgres/migrations/0011, sqlite/migrations/0009) say them, so that
//! each planner uses those indexes.
//!
//! A queue is *free* when nothing can hold its jobs back (`queues.flow` is
//! 0); its jobs take the fast path, which knows nothing of queues. Every
//! other queue's jobs carry its flow (1 fifo, 2 lifo) and are leased only
//! by the controlled lease, which holds the queue's row while it counts the
//! queue's slots and takes the room left.

use crate::job::state::Transition;
use chronos_proto::JobStatus;

use super::status_test;

/// The flow of a free queue's jobs.
pub(crate) const FREE: i16 = 0;
/// The flow of a controlled queue served oldest first.
pub(crate) const FIFO: i16 = 1;
/// The flow of a controlled queue served newest first.
pub(crate) const LIFO: i16 = 2;

/// A controlled queue's job that has started and not finished for good:
/// running, or waiting for its retry (queued or scheduled), with an
/// attempt since its last manual retry. In a queue that runs one job at a
/// time, such a job is the head: nothing else starts before it finishes.
pub(crate) fn started(statuses: &[JobStatus]) -> String {
    format!(
        "flow <> {FREE} AND status {} AND attempt > attempt_base",
        status_test(statuses)
    )
}

/// Every status of a started job, in the order the indexes of started
/// jobs (`jobs_flow_started`, `jobs_flow_key_started`) list them.
pub(crate) const STARTED: &[JobStatus] =
    &[JobStatus::Scheduled, JobStatus::Queued, JobStatus::Running];

/// The statuses of a started job that hold the only slot of a queue that
/// runs one job at a time (its queued retry is the head instead).
pub(crate) const HOLDING_THE_HEAD: &[JobStatus] = &[JobStatus::Scheduled, JobStatus::Running];

/// The status of a job that holds one of a queue's slots.
pub(crate) const RUNNING: &[JobStatus] = Transition::Ack.from();

/// Queued jobs of the controlled flow `flow`, as their index says it.
pub(crate) fn queued_in(flow: i16) -> String {
    format!(
        "status {} AND flow = {flow}",
        status_test(Transition::Lease.from())
    )
}

/// Queued jobs of controlled queues delivered by `delivery` (`pull` or
/// `push`), as their index (`jobs_flow_pull`, `jobs_flow_push`) says it.
pub(crate) fn queued_controlled(delivery: &str) -> String {
    format!(
        "status {} AND delivery_type = '{delivery}' AND flow <> {FREE}",
        status_test(Transition::Lease.from())
    )
}

/// Queued jobs of controlled queues, as `jobs_flow_keys` says it (a queue
/// with per-key limits reads its keys and their jobs from it).
pub(crate) fn queued_controlled_any() -> String {
    format!(
        "status {} AND flow <> {FREE}",
        status_test(Transition::Lease.from())
    )
}

/// How many of a controlled queue's next jobs a freed slot wakes the polls
/// of (their handlers'): the head, and enough behind it for a queue whose
/// jobs need several handlers.
const NEXT_IN_LINE: u32 = 16;

/// The next jobs of the controlled queue `{org}`, `{queue}` (placeholders or
/// columns), as rows of `organization_id`, `delivery_type`, `handler`:
/// whose polls a freed slot wakes.
pub(crate) fn next_in_line(org: &str, queue: &str) -> String {
    [FIFO, LIFO]
        .map(|flow| {
            format!(
                "SELECT * FROM (SELECT organization_id, delivery_type, handler FROM jobs
                                WHERE organization_id = {org} AND queue = {queue}
                                  AND {queued}
                                ORDER BY {order} LIMIT {NEXT_IN_LINE}) AS next_{flow}",
                queued = queued_in(flow),
                order = order_of(flow),
            )
        })
        .join(" UNION ALL ")
}

/// The order a flow serves its jobs in: priority first, then the oldest
/// (fifo) or the newest (lifo).
pub(crate) fn order_of(flow: i16) -> &'static str {
    if flow == LIFO {
        "priority DESC, id DESC"
    } else {
        "priority DESC, run_at, id"
    }
}

/// The ids of the unfinished jobs of the queue `{org}`, `{queue}` (store
/// placeholders), each through the index of its status (a queue's jobs
/// have no index of their own: it would cost every job an entry), for a
/// change of the queue's settings to rewrite their flow. `org_test` is how
/// the store writes the organization's test (SQLite must be told not to
/// read the organization's whole history for it).
pub(crate) fn unfinished_of_queue(org_test: &str, queue: &str) -> String {
    let lease = Transition::Lease.from();
    let of = format!("{org_test} AND queue = {queue}");
    [
        format!("status {} AND {of}", status_test(&[JobStatus::Scheduled])),
        format!("status {} AND {of}", status_test(RUNNING)),
        format!(
            "status {} AND delivery_type = 'pull' AND {} AND {of}",
            status_test(lease),
            super::FREE_FLOW
        ),
        format!("{} AND {of}", super::queued_push_test()),
        format!("{} AND {of}", queued_in(FIFO)),
        format!("{} AND {of}", queued_in(LIFO)),
    ]
    .map(|test| format!("SELECT id FROM jobs WHERE {test}"))
    .join(" UNION ALL ")
}

/// A queue's (`{org}`, `{queue}`) next job to start, as a subquery of one
/// row (`handler`, `delivery_type`): a started job waiting queued for its
/// retry first, then the best by the queue's order (whichever index holds
/// its jobs). `started` writes the test of a started job as the store's
/// planner needs it ([`started`], or SQLite's own).
pub(crate) fn head_of_queue(
    org: &str,
    queue: &str,
    started: impl Fn(&[JobStatus]) -> String,
) -> String {
    let lease = Transition::Lease.from();
    let of = format!("organization_id = {org} AND queue = {queue}");
    let free_pull = format!(
        "status {} AND delivery_type = 'pull' AND {} AND {of}",
        status_test(lease),
        super::FREE_FLOW
    );
    let free_push = format!("{} AND {of}", super::queued_push_test());
    [
        (
            format!("{} AND {of}", started(&[JobStatus::Queued])),
            "priority DESC, run_at, id",
        ),
        (format!("{} AND {of}", queued_in(FIFO)), order_of(FIFO)),
        (format!("{} AND {of}", queued_in(LIFO)), order_of(LIFO)),
        (free_pull, order_of(FIFO)),
        (free_push, order_of(FIFO)),
    ]
    .map(|(test, order)| {
        format!(
            "SELECT * FROM (SELECT handler, delivery_type FROM jobs
                            WHERE {test} ORDER BY {order} LIMIT 1) AS head"
        )
    })
    .join(" UNION ALL ")
}
