//! Fan-outs and the outcomes of deliveries: a fan-out inserted with its
//! deliveries, a fan-out read back, and the outcome publisher's pass, which
//! publishes ended deliveries' callbacks and counts their fan-outs down.
//! For the lease engine, through `leases.rs` (and `target_groups.rs`, for
//! the read).

use super::jobs::insert_on;
use super::queues::queue_from_row;
use super::target_groups::member_from_row;
use super::{PgStore, opt_ts, ts, u32_col};
use crate::account::OrgId;
use crate::job::NewJob;
use crate::store::jobs::body_encoding;
use crate::store::plans::PastQuota;
use crate::store::target_groups::{
    DELIVERED_COLUMNS, FAN_OUT_COLUMNS, MEMBER_COLUMNS, target_of, unpublished_attempts,
    unpublished_test,
};
use crate::store::{Clock, FanOutCreated, Inserted, Published, Result, StoreError};
use crate::target_group::{Delivered, FanOutRecord, NewFanOut, callback};
use chronos_proto::{Delivery, JobStatus};
use deadpool_postgres::GenericClient;
use std::collections::BTreeMap;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    take_attempts: String,
    attempts_published: String,
    get: String,
    take: String,
    ended: String,
    count_down: String,
    deliveries: String,
    published: String,
    members: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            insert: clock.pg(
                "INSERT INTO fan_outs (id, organization_id, group_id, queue, total,
                                       callback_queue_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())"
                    .into(),
            ),
            get: format!(
                "SELECT {FAN_OUT_COLUMNS} FROM fan_outs WHERE organization_id = $1 AND id = $2"
            ),
            take_attempts: format!("{} FOR UPDATE OF j SKIP LOCKED", unpublished_attempts("$1")),
            attempts_published: "UPDATE jobs SET attempts_published = p.attempt
                 FROM unnest($1::uuid[], $2::int4[]) AS p (id, attempt)
                 WHERE jobs.id = p.id AND jobs.attempts_published < p.attempt"
                .into(),
            take: format!(
                "SELECT {DELIVERED_COLUMNS} FROM jobs j WHERE {unpublished}
                 ORDER BY j.id LIMIT $1
                 FOR UPDATE OF j SKIP LOCKED",
                unpublished = unpublished_test(),
            ),
            ended: "INSERT INTO fan_out_ended (fan_out_id, job_id) VALUES ($1, $2)
                    ON CONFLICT DO NOTHING"
                .into(),
            // The counts on the right are the row's before this update.
            count_down: clock.pg(
                "UPDATE fan_outs SET succeeded = succeeded + $2, failed = failed + $3,
                                     finished_at = CASE WHEN succeeded + failed + 1 = total
                                                        THEN now() ELSE finished_at END
                 WHERE id = $1
                 RETURNING total - succeeded - failed AS remaining, callback_queue_id"
                    .into(),
            ),
            deliveries: format!(
                "SELECT {DELIVERED_COLUMNS} FROM jobs j
                 WHERE j.organization_id = $1 AND j.fan_out_id = $2 ORDER BY j.id"
            ),
            published: "UPDATE jobs SET outcome_published = true, attempts_published = attempt
                        WHERE id = ANY($1)"
                .into(),
            members: format!(
                "SELECT {MEMBER_COLUMNS} FROM target_group_members
                 WHERE group_id = $1 ORDER BY created_at, id"
            ),
        }
    }
}

/// An ended delivery, read by [`DELIVERED_COLUMNS`].
struct Ended {
    org: OrgId,
    fan_out_id: Option<Uuid>,
    callback_queue_id: Option<Uuid>,
    delivered: Delivered,
}

fn ended_from_row(row: &Row) -> Result<Ended> {
    let delivery: serde_json::Value = row.try_get("delivery")?;
    let delivery: Delivery = serde_json::from_value(delivery)
        .map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?;
    let (target_url, method) = target_of(&delivery);
    let status: String = row.try_get("status")?;
    Ok(Ended {
        org: OrgId(row.try_get("organization_id")?),
        fan_out_id: row.try_get("fan_out_id")?,
        callback_queue_id: row.try_get("callback_queue_id")?,
        delivered: Delivered {
            job_id: row.try_get("id")?,
            target_url,
            method,
            status: status.parse().map_err(StoreError::Corrupt)?,
            attempts: u32_col(row, "attempt")?,
            http_status: row
                .try_get::<_, Option<i32>>("http_status")?
                .map(|s| s as u16),
            response_body: row.try_get("response_body")?,
            response_body_encoding: body_encoding(row.try_get("response_body_encoding")?),
            response_truncated: row
                .try_get::<_, Option<bool>>("response_truncated")?
                .unwrap_or(false),
            error: row.try_get("last_error")?,
            created_at: ts(row.try_get("created_at")?),
            finished_at: opt_ts(row, "finished_at")?,
        },
    })
}

pub(super) async fn create(
    store: &PgStore,
    org: OrgId,
    fan_out: NewFanOut,
    jobs: Vec<NewJob>,
) -> Result<FanOutCreated> {
    let mut client = store.pool.get().await?;
    let tx = client.transaction().await?;
    let total = jobs.len() as i32;
    tx.execute(
        &store.sql.fan_outs.insert,
        &[
            &fan_out.id,
            &org.0,
            &fan_out.group_id,
            &fan_out.queue,
            &total,
            &fan_out.callback_queue_id,
        ],
    )
    .await?;
    let mut created = Vec::with_capacity(jobs.len());
    for inserted in insert_on(store, &tx, org, &jobs, PastQuota::Refuse).await? {
        match inserted {
            Inserted::Created(job) => created.push(*job),
            // All or nothing: the transaction is dropped, rolled back.
            Inserted::Conflict { existing } => return Ok(FanOutCreated::Conflict { existing }),
            Inserted::OverQuota(refusal) => return Ok(FanOutCreated::OverQuota(refusal)),
        }
    }
    tx.commit().await?;
    Ok(FanOutCreated::Created(created))
}

pub(super) async fn get(store: &PgStore, org: OrgId, id: Uuid) -> Result<Option<FanOutRecord>> {
    let client = store.pool.get().await?;
    let sql = &store.sql.fan_outs;
    let Some(row) = client.query_opt(&sql.get, &[&org.0, &id]).await? else {
        return Ok(None);
    };
    let deliveries = client
        .query(&sql.deliveries, &[&org.0, &id])
        .await?
        .iter()
        .map(|r| ended_from_row(r).map(|e| e.delivered))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(FanOutRecord {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        queue: row.try_get("queue")?,
        total: u32_col(&row, "total")?,
        succeeded: u32_col(&row, "succeeded")?,
        failed: u32_col(&row, "failed")?,
        callback_queue_id: row.try_get("callback_queue_id")?,
        created_at: ts(row.try_get("created_at")?),
        finished_at: opt_ts(&row, "finished_at")?,
        deliveries,
    }))
}

pub(super) async fn publish(store: &PgStore, limit: u32) -> Result<Published> {
    let mut client = store.pool.get().await?;
    // Counting a fan-out down locks its row; creating callbacks
    // share-locks their queue's, which a change of the queue may meet in a
    // deadlock: PostgreSQL ends one transaction, which is tried again.
    retry_deadlocks!(publish_once(store, &mut client, limit))
}

async fn publish_once(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    limit: u32,
) -> Result<Published> {
    let sql = &store.sql.fan_outs;
    let tx = client.transaction().await?;
    let mut messages: BTreeMap<Uuid, Vec<NewJob>> = BTreeMap::new();
    // Attempts first: a delivery's outcome is its last callback.
    let attempts = tx
        .query(&sql.take_attempts, &[&i64::from(limit)])
        .await?
        .iter()
        .map(ended_from_row)
        .collect::<Result<Vec<_>>>()?;
    let mut last_published: BTreeMap<Uuid, i32> = BTreeMap::new();
    for e in &attempts {
        let d = &e.delivered;
        if let (Some(queue), Some(event)) =
            (e.callback_queue_id, callback::event(d, e.fan_out_id, false))
        {
            let name = format!("callback of {} attempt {}", d.job_id, d.attempts);
            let jobs = callback_messages(store, &tx, e.org, queue, &name, &event).await?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
        last_published.insert(d.job_id, d.attempts as i32);
    }
    if !last_published.is_empty() {
        let (ids, attempts): (Vec<Uuid>, Vec<i32>) = last_published.into_iter().unzip();
        tx.execute(&sql.attempts_published, &[&ids, &attempts])
            .await?;
    }
    let mut ended = tx
        .query(&sql.take, &[&i64::from(limit)])
        .await?
        .iter()
        .map(ended_from_row)
        .collect::<Result<Vec<_>>>()?;
    if ended.is_empty() && attempts.is_empty() {
        return Ok(Published::default());
    }
    // Fan-out rows are locked in one order by every process.
    ended.sort_by_key(|e| (e.fan_out_id, e.delivered.job_id));
    for e in &ended {
        let d = &e.delivered;
        if let (Some(queue), Some(event)) =
            (e.callback_queue_id, callback::event(d, e.fan_out_id, true))
        {
            let name = format!("callback of {}", d.job_id);
            let jobs = callback_messages(store, &tx, e.org, queue, &name, &event).await?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
        let Some(fan_out) = e.fan_out_id else {
            continue;
        };
        // Once per delivery, even one retried by hand after it ended.
        if tx.execute(&sql.ended, &[&fan_out, &d.job_id]).await? == 0 {
            continue;
        }
        let succeeded = i32::from(d.status == JobStatus::Completed);
        let row = tx
            .query_one(&sql.count_down, &[&fan_out, &succeeded, &(1 - succeeded)])
            .await?;
        let remaining: i32 = row.try_get("remaining")?;
        let group_queue: Option<Uuid> = row.try_get("callback_queue_id")?;
        if let (0, Some(queue)) = (remaining, group_queue) {
            let deliveries = tx
                .query(&sql.deliveries, &[&e.org.0, &fan_out])
                .await?
                .iter()
                .map(|r| ended_from_row(r).map(|e| e.delivered))
                .collect::<Result<Vec<_>>>()?;
            let event = callback::group_event(fan_out, &deliveries);
            let name = format!("group callback of fan-out {fan_out}");
            let jobs = callback_messages(store, &tx, e.org, queue, &name, &event).await?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
    }
    let mut created = Vec::new();
    for (org, jobs) in messages {
        // A callback tells of a message already accepted: counted, never
        // refused.
        for inserted in insert_on(store, &tx, OrgId(org), &jobs, PastQuota::Count).await? {
            if let Inserted::Created(job) = inserted {
                created.push((OrgId(org), *job));
            }
        }
    }
    let ids: Vec<Uuid> = ended.iter().map(|e| e.delivered.job_id).collect();
    tx.execute(&sql.published, &[&ids]).await?;
    tx.commit().await?;
    Ok(Published {
        taken: ended.len() + attempts.len(),
        created,
    })
}

/// The messages publishing `body` onto the callback queue `queue`; none if
/// the queue is gone or has nowhere to deliver any more (said in the log:
/// the outcome is still on the delivery and its fan-out).
async fn callback_messages(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
    queue: Uuid,
    name: &str,
    body: &impl serde::Serialize,
) -> Result<Vec<NewJob>> {
    let by_id = &store.sql.queues.get_by_id;
    let Some(row) = client.query_opt(by_id, &[&org.0, &queue]).await? else {
        tracing::warn!(%queue, "{name}: the callback queue no longer exists; not published");
        return Ok(Vec::new());
    };
    let queue = queue_from_row(&row)?;
    let members = match callback::group_of(&queue) {
        Some(group) => client
            .query(&store.sql.fan_outs.members, &[&group])
            .await?
            .iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let jobs = callback::messages(&queue, &members, name, body);
    if jobs.is_empty() {
        tracing::warn!(queue = %queue.name, "{name}: the callback queue has nowhere to deliver; not published");
    }
    Ok(jobs)
}
