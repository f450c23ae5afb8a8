//! Fan-outs and the outcomes of deliveries: as `postgres/fan_outs.rs`. One
//! connection writes at a time, so a pass needs no row locks: its
//! transaction alone takes the ended deliveries and counts their fan-outs.

use super::jobs::{Inserting, insert_job};
use super::queues::queue_from_row;
use super::target_groups::member_from_row;
use super::{NOW, Statements, opt_ts, opt_uuid, ts, u32_col, uuid};
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
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    get: String,
    take: String,
    take_attempts: String,
    attempts_published: String,
    ended: String,
    count_down: String,
    deliveries: String,
    published: String,
    members: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            insert: clock.sqlite(format!(
                "INSERT INTO fan_outs (id, organization_id, group_id, queue, total,
                                       callback_queue_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, {NOW})"
            )),
            get: format!(
                "SELECT {FAN_OUT_COLUMNS} FROM fan_outs WHERE organization_id = ?1 AND id = ?2"
            ),
            take: format!(
                "SELECT {DELIVERED_COLUMNS} FROM jobs j WHERE {unpublished}
                 ORDER BY j.id LIMIT ?1",
                unpublished = unpublished_test(),
            ),
            take_attempts: unpublished_attempts("?1"),
            attempts_published: "UPDATE jobs SET attempts_published = ?2
                 WHERE id = ?1 AND attempts_published < ?2"
                .into(),
            ended: "INSERT INTO fan_out_ended (fan_out_id, job_id) VALUES (?1, ?2)
                    ON CONFLICT DO NOTHING"
                .into(),
            count_down: clock.sqlite(format!(
                "UPDATE fan_outs SET succeeded = succeeded + ?2, failed = failed + ?3,
                                     finished_at = CASE WHEN succeeded + failed + 1 = total
                                                        THEN {NOW} ELSE finished_at END
                 WHERE id = ?1
                 RETURNING total - succeeded - failed AS remaining, callback_queue_id"
            )),
            deliveries: format!(
                "SELECT {DELIVERED_COLUMNS} FROM jobs j
                 WHERE j.organization_id = ?1 AND j.fan_out_id = ?2 ORDER BY j.id"
            ),
            published: "UPDATE jobs SET outcome_published = 1, attempts_published = attempt
                        WHERE id = ?1"
                .into(),
            members: format!(
                "SELECT {MEMBER_COLUMNS} FROM target_group_members
                 WHERE group_id = ?1 ORDER BY created_at, id"
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
    let delivery: String = row.get("delivery")?;
    let delivery: Delivery = serde_json::from_str(&delivery)
        .map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?;
    let (target_url, method) = target_of(&delivery);
    let status: String = row.get("status")?;
    let id = |col: &str| -> Result<Option<Uuid>> {
        row.get::<_, Option<String>>(col)?.map(uuid).transpose()
    };
    Ok(Ended {
        org: OrgId(uuid(row.get("organization_id")?)?),
        fan_out_id: id("fan_out_id")?,
        callback_queue_id: id("callback_queue_id")?,
        delivered: Delivered {
            job_id: uuid(row.get("id")?)?,
            target_url,
            method,
            status: status.parse().map_err(StoreError::Corrupt)?,
            attempts: u32_col(row, "attempt")?,
            http_status: row.get::<_, Option<i64>>("http_status")?.map(|s| s as u16),
            response_body: row.get("response_body")?,
            response_body_encoding: body_encoding(
                row.get::<_, Option<String>>("response_body_encoding")?
                    .as_deref(),
            ),
            response_truncated: row
                .get::<_, Option<bool>>("response_truncated")?
                .unwrap_or(false),
            error: row.get("last_error")?,
            created_at: ts(row.get("created_at")?)?,
            finished_at: opt_ts(row.get("finished_at")?)?,
        },
    })
}

fn deliveries(conn: &Connection, sql: &Sql, org: OrgId, fan_out: Uuid) -> Result<Vec<Delivered>> {
    let mut stmt = conn.prepare_cached(&sql.deliveries)?;
    let rows = stmt.query_map(params![org.0.to_string(), fan_out.to_string()], |row| {
        Ok(ended_from_row(row).map(|e| e.delivered))
    })?;
    rows.map(|r| r?).collect()
}

pub(super) fn create(
    conn: &mut Connection,
    sql: &Statements,
    org: OrgId,
    fan_out: &NewFanOut,
    jobs: &[NewJob],
) -> Result<FanOutCreated> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(&sql.fan_outs.insert)?.execute(params![
        fan_out.id.to_string(),
        org.0.to_string(),
        fan_out.group_id.to_string(),
        fan_out.queue,
        jobs.len() as i64,
        fan_out.callback_queue_id.map(|q| q.to_string()),
    ])?;
    let mut inserting = Inserting::new(PastQuota::Refuse);
    let mut created = Vec::with_capacity(jobs.len());
    for job in jobs {
        match insert_job(&tx, sql, &mut inserting, org, job)? {
            Inserted::Created(job) => created.push(*job),
            // All or nothing: the transaction is dropped, rolled back.
            Inserted::Conflict { existing } => return Ok(FanOutCreated::Conflict { existing }),
            Inserted::OverQuota(refusal) => return Ok(FanOutCreated::OverQuota(refusal)),
        }
    }
    inserting.finish(&tx, sql, org)?;
    tx.commit()?;
    Ok(FanOutCreated::Created(created))
}

pub(super) fn get(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    id: Uuid,
) -> Result<Option<FanOutRecord>> {
    let row = conn
        .prepare_cached(&sql.get)?
        .query_row(params![org.0.to_string(), id.to_string()], |row| {
            Ok((|| {
                Ok::<_, StoreError>(FanOutRecord {
                    id: uuid(row.get("id")?)?,
                    group_id: uuid(row.get("group_id")?)?,
                    queue: row.get("queue")?,
                    total: u32_col(row, "total")?,
                    succeeded: u32_col(row, "succeeded")?,
                    failed: u32_col(row, "failed")?,
                    callback_queue_id: opt_uuid(row.get("callback_queue_id")?)?,
                    created_at: ts(row.get("created_at")?)?,
                    finished_at: opt_ts(row.get("finished_at")?)?,
                    deliveries: Vec::new(),
                })
            })())
        })
        .optional()?
        .transpose()?;
    let Some(mut record) = row else {
        return Ok(None);
    };
    record.deliveries = deliveries(conn, sql, org, id)?;
    Ok(Some(record))
}

pub(super) fn publish(conn: &mut Connection, all: &Statements, limit: u32) -> Result<Published> {
    let sql = &all.fan_outs;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut messages: BTreeMap<Uuid, Vec<NewJob>> = BTreeMap::new();
    // Attempts first: a delivery's outcome is its last callback.
    let attempts: Vec<Ended> = {
        let mut stmt = tx.prepare_cached(&sql.take_attempts)?;
        let rows = stmt.query_map(params![i64::from(limit)], |row| Ok(ended_from_row(row)))?;
        rows.map(|r| r?).collect::<Result<_>>()?
    };
    let mut last_published: BTreeMap<Uuid, u32> = BTreeMap::new();
    for e in &attempts {
        let d = &e.delivered;
        if let (Some(queue), Some(event)) =
            (e.callback_queue_id, callback::event(d, e.fan_out_id, false))
        {
            let name = format!("callback of {} attempt {}", d.job_id, d.attempts);
            let jobs = callback_messages(&tx, all, e.org, queue, &name, &event)?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
        last_published.insert(d.job_id, d.attempts);
    }
    for (id, attempt) in &last_published {
        tx.prepare_cached(&sql.attempts_published)?
            .execute(params![id.to_string(), attempt])?;
    }
    let mut ended: Vec<Ended> = {
        let mut stmt = tx.prepare_cached(&sql.take)?;
        let rows = stmt.query_map(params![i64::from(limit)], |row| Ok(ended_from_row(row)))?;
        rows.map(|r| r?).collect::<Result<_>>()?
    };
    if ended.is_empty() && attempts.is_empty() {
        return Ok(Published::default());
    }
    ended.sort_by_key(|e| (e.fan_out_id, e.delivered.job_id));
    for e in &ended {
        let d = &e.delivered;
        if let (Some(queue), Some(event)) =
            (e.callback_queue_id, callback::event(d, e.fan_out_id, true))
        {
            let name = format!("callback of {}", d.job_id);
            let jobs = callback_messages(&tx, all, e.org, queue, &name, &event)?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
        let Some(fan_out) = e.fan_out_id else {
            continue;
        };
        // Once per delivery, even one retried by hand after it ended.
        let counted = tx
            .prepare_cached(&sql.ended)?
            .execute(params![fan_out.to_string(), d.job_id.to_string()])?;
        if counted == 0 {
            continue;
        }
        let succeeded = i64::from(d.status == JobStatus::Completed);
        let (remaining, group_queue): (i64, Option<String>) =
            tx.prepare_cached(&sql.count_down)?.query_row(
                params![fan_out.to_string(), succeeded, 1 - succeeded],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
        if let (0, Some(queue)) = (remaining, group_queue) {
            let event = callback::group_event(fan_out, &deliveries(&tx, sql, e.org, fan_out)?);
            let name = format!("group callback of fan-out {fan_out}");
            let jobs = callback_messages(&tx, all, e.org, uuid(queue)?, &name, &event)?;
            messages.entry(e.org.0).or_default().extend(jobs);
        }
    }
    let mut created = Vec::new();
    for (org, jobs) in messages {
        // Queues are cached by name: one cache per organization. A
        // callback tells of a message already accepted: counted, never
        // refused.
        let mut inserting = Inserting::new(PastQuota::Count);
        for job in &jobs {
            if let Inserted::Created(job) = insert_job(&tx, all, &mut inserting, OrgId(org), job)? {
                created.push((OrgId(org), *job));
            }
        }
        inserting.finish(&tx, all, OrgId(org))?;
    }
    {
        let mut published = tx.prepare_cached(&sql.published)?;
        for e in &ended {
            published.execute(params![e.delivered.job_id.to_string()])?;
        }
    }
    tx.commit()?;
    Ok(Published {
        taken: ended.len() + attempts.len(),
        created,
    })
}

/// As `postgres/fan_outs.rs`'s.
fn callback_messages(
    conn: &Connection,
    all: &Statements,
    org: OrgId,
    queue: Uuid,
    name: &str,
    body: &impl serde::Serialize,
) -> Result<Vec<NewJob>> {
    let found = conn
        .prepare_cached(&all.queues.get_by_id)?
        .query_row(params![org.0.to_string(), queue.to_string()], |row| {
            Ok(queue_from_row(row))
        })
        .optional()?
        .transpose()?;
    let Some(queue) = found else {
        tracing::warn!(%queue, "{name}: the callback queue no longer exists; not published");
        return Ok(Vec::new());
    };
    let members = match callback::group_of(&queue) {
        Some(group) => {
            let mut stmt = conn.prepare_cached(&all.fan_outs.members)?;
            let rows =
                stmt.query_map(params![group.to_string()], |row| Ok(member_from_row(row)))?;
            rows.map(|r| r?).collect::<Result<Vec<_>>>()?
        }
        None => Vec::new(),
    };
    let jobs = callback::messages(&queue, &members, name, body);
    if jobs.is_empty() {
        tracing::warn!(queue = %queue.name, "{name}: the callback queue has nowhere to deliver; not published");
    }
    Ok(jobs)
}
