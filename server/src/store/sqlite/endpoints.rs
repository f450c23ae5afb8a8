//! Push endpoints and their health: as `postgres/endpoints.rs`. One writer
//! at a time (an immediate transaction), so no row locks to order.

use super::{NOW, SqliteStore, Statements, opt_ts, ts, uuid};
use crate::account::OrgId;
use crate::endpoint::{
    Change, Enabled, EndpointKey, EndpointRecord, HELD_ENDPOINT_DISABLED, Health, HealthPolicy,
    Tally,
};
use crate::job::state::Transition;
use crate::store::endpoints::{endpoint_columns, scheme_test};
use crate::store::{
    Clock, EndpointStore, FREE_FLOW, HealthRecorded, LeaseOutcome, Page, PageRequest, Result,
    queued_push_test, status_test,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use uuid::Uuid;

/// A job `j`'s target URL.
const URL: &str = "json_extract(j.delivery, '$.http.url')";

pub(super) struct Sql {
    list: String,
    get: String,
    disabled: String,
    seen: String,
    read: String,
    update: String,
    release: String,
    hold: String,
    hold_leased: String,
    undo_execution: String,
    enable: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let columns = endpoint_columns(URL);
        let hold = Transition::Hold;
        let scheme = scheme_test(URL, "e.scheme");
        Sql {
            list: format!(
                "SELECT {columns} FROM endpoints e
                 WHERE e.organization_id = ?1 AND (?2 IS NULL OR e.id < ?2)
                 ORDER BY e.id DESC LIMIT ?3"
            ),
            get: format!(
                "SELECT {columns} FROM endpoints e WHERE e.organization_id = ?1 AND e.id = ?2"
            ),
            disabled: "SELECT organization_id, scheme, target_host FROM endpoints
                       WHERE disabled_at IS NOT NULL"
                .into(),
            seen: clock.sqlite(format!(
                "INSERT INTO endpoints (id, organization_id, scheme, target_host, healthy_since,
                                        created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, {NOW}, {NOW}, {NOW})
                 ON CONFLICT (organization_id, scheme, target_host) DO NOTHING"
            )),
            read: clock.sqlite(format!(
                "SELECT id, consecutive_failures, failing_since, last_failure_at, last_error,
                        disabled_at, disabled_reason, healthy_since, {NOW} AS now
                 FROM endpoints
                 WHERE organization_id = ?1 AND scheme = ?2 AND target_host = ?3"
            )),
            update: clock.sqlite(format!(
                "UPDATE endpoints SET consecutive_failures = ?2, failing_since = ?3,
                        last_failure_at = ?4, last_error = ?5, disabled_at = ?6,
                        disabled_reason = ?7, healthy_since = ?8, updated_at = {NOW}
                 WHERE id = ?1"
            )),
            release: clock.sqlite(format!(
                "UPDATE jobs SET held_reason = NULL, updated_at = {NOW}
                 WHERE id IN (
                     SELECT j.id FROM endpoints e JOIN jobs j
                       ON j.organization_id = e.organization_id AND j.held_reason IS NOT NULL
                      AND j.target_host = e.target_host
                     WHERE e.id = ?1 AND {scheme})"
            )),
            // Queued push jobs of disabled endpoints, free queues' (by
            // host) and controlled queues' (by organization).
            hold: clock.sqlite(format!(
                "UPDATE jobs SET status = '{to}', held_reason = '{HELD_ENDPOINT_DISABLED}',
                                 updated_at = {NOW}
                 WHERE id IN (
                     SELECT j.id FROM endpoints e JOIN jobs j
                       ON {queued_push} AND coalesce(j.target_host, '') = e.target_host
                      AND j.organization_id = e.organization_id
                     WHERE e.disabled_at IS NOT NULL AND {scheme}
                     UNION ALL
                     SELECT j.id FROM endpoints e JOIN jobs j
                       ON j.status {from} AND j.delivery_type = 'push' AND NOT {FREE_FLOW}
                      AND j.organization_id = e.organization_id
                      AND j.target_host = e.target_host
                     WHERE e.disabled_at IS NOT NULL AND {scheme}
                     LIMIT ?1)
                   AND status {from}",
                queued_push = queued_push_test()
                    .replace("status ", "j.status ")
                    .replace("delivery_type", "j.delivery_type")
                    .replace("flow", "j.flow"),
                from = status_test(hold.from()),
                to = hold.to().as_str(),
            )),
            hold_leased: {
                let t = Transition::HoldLeased;
                clock.sqlite(format!(
                    "UPDATE jobs SET status = '{to}', held_reason = '{HELD_ENDPOINT_DISABLED}',
                                     attempt = attempt - 1, lease_expires_at = NULL,
                                     updated_at = {NOW}
                     WHERE id = (SELECT job_id FROM executions WHERE lease_token = ?2)
                       AND organization_id = ?1 AND lease_token = ?2 AND status {from}
                     RETURNING id",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                ))
            },
            undo_execution: "DELETE FROM executions WHERE lease_token = ?1 AND job_id = ?2".into(),
            enable: clock.sqlite(format!(
                "UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL,
                        disabled_at = NULL, disabled_reason = NULL,
                        healthy_since = CASE WHEN consecutive_failures > 0
                                               OR disabled_at IS NOT NULL
                                             THEN {NOW} ELSE healthy_since END,
                        updated_at = {NOW}
                 WHERE organization_id = ?1 AND id = ?2"
            )),
        }
    }
}

fn record_from_row(row: &Row) -> Result<EndpointRecord> {
    let held: i64 = row.get("held")?;
    Ok(EndpointRecord {
        id: uuid(row.get("id")?)?,
        endpoint: EndpointKey {
            scheme: row.get("scheme")?,
            target_host: row.get("target_host")?,
        },
        health: health_from_row(row)?,
        held: held.max(0) as u64,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
    })
}

fn health_from_row(row: &Row) -> Result<Health> {
    let failures: i64 = row.get("consecutive_failures")?;
    Ok(Health {
        failures: failures.max(0) as u64,
        failing_since: opt_ts(row.get("failing_since")?)?,
        last_failure_at: opt_ts(row.get("last_failure_at")?)?,
        last_error: row.get("last_error")?,
        disabled_at: opt_ts(row.get("disabled_at")?)?,
        disabled_reason: row.get("disabled_reason")?,
        healthy_since: opt_ts(row.get("healthy_since")?)?,
    })
}

fn get(conn: &Connection, sql: &Sql, org: OrgId, id: Uuid) -> Result<Option<EndpointRecord>> {
    conn.prepare_cached(&sql.get)?
        .query_row(params![org.0.to_string(), id.to_string()], |row| {
            Ok(record_from_row(row))
        })
        .optional()?
        .transpose()
}

#[async_trait]
impl EndpointStore for SqliteStore {
    async fn endpoints(&self, org: OrgId, page: PageRequest) -> Result<Page<EndpointRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.endpoints.list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    page.before.map(|id| id.to_string()),
                    i64::from(page.limit) + 1
                ],
                |row| Ok(record_from_row(row)),
            )?;
            let rows = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
            Ok(Page::from_rows(rows, page.limit, |e| e.id))
        })
        .await
    }

    async fn endpoint(&self, org: OrgId, id: Uuid) -> Result<Option<EndpointRecord>> {
        self.call(move |conn, sql| get(conn, &sql.endpoints, org, id))
            .await
    }

    async fn disabled_endpoints(&self) -> Result<Vec<(OrgId, EndpointKey)>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.endpoints.disabled)?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    EndpointKey {
                        scheme: row.get(1)?,
                        target_host: row.get(2)?,
                    },
                ))
            })?;
            rows.map(|r| {
                let (org, key) = r?;
                Ok((OrgId(uuid(org)?), key))
            })
            .collect()
        })
        .await
    }
}

/// [`LeaseStore::record_endpoint_health`](crate::store::LeaseStore::record_endpoint_health).
pub(super) fn record(
    conn: &mut Connection,
    all: &Statements,
    tallies: Vec<((OrgId, EndpointKey), Tally)>,
    policy: HealthPolicy,
) -> Result<HealthRecorded> {
    let sql = &all.endpoints;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut recorded = HealthRecorded::default();
    for ((org, key), tally) in &tallies {
        let (org_s, scheme, host) = (org.0.to_string(), &key.scheme, &key.target_host);
        tx.prepare_cached(&sql.seen)?.execute(params![
            Uuid::now_v7().to_string(),
            org_s,
            scheme,
            host
        ])?;
        let (id, health, now) =
            tx.prepare_cached(&sql.read)?
                .query_row(params![org_s, scheme, host], |row| {
                    Ok((
                        row.get::<_, String>("id")?,
                        health_from_row(row),
                        row.get("now")?,
                    ))
                })?;
        let (next, change) = health?.after(tally, ts(now)?, policy);
        match change {
            Change::None => continue,
            Change::Counted => {}
            Change::Disabled => recorded.disabled.push((*org, key.clone())),
            Change::Recovered => {}
        }
        let t = |t: Option<chronos_proto::Timestamp>| t.map(|t| t.to_string());
        tx.prepare_cached(&sql.update)?.execute(params![
            id,
            i64::try_from(next.failures).unwrap_or(i64::MAX),
            t(next.failing_since),
            t(next.last_failure_at),
            next.last_error,
            t(next.disabled_at),
            next.disabled_reason,
            t(next.healthy_since),
        ])?;
        if change == Change::Recovered {
            recorded.released += tx.prepare_cached(&sql.release)?.execute(params![id])? as u64;
        }
    }
    tx.commit()?;
    Ok(recorded)
}

/// [`LeaseStore::hold_for_disabled_endpoints`](crate::store::LeaseStore::hold_for_disabled_endpoints).
pub(super) fn hold(conn: &mut Connection, all: &Statements, limit: u32) -> Result<u64> {
    Ok(conn
        .prepare_cached(&all.endpoints.hold)?
        .execute(params![i64::from(limit)])? as u64)
}

/// [`LeaseStore::enable_endpoint`](crate::store::LeaseStore::enable_endpoint).
pub(super) fn enable(
    conn: &mut Connection,
    all: &Statements,
    org: OrgId,
    id: Uuid,
) -> Result<Enabled> {
    let sql = &all.endpoints;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx
        .prepare_cached(&sql.enable)?
        .execute(params![org.0.to_string(), id.to_string()])?;
    if changed == 0 {
        return Ok(Enabled::NotFound);
    }
    let released = tx
        .prepare_cached(&sql.release)?
        .execute(params![id.to_string()])? as u64;
    let record = get(&tx, sql, org, id)?.ok_or_else(|| {
        crate::store::StoreError::Other("an endpoint enabled was not read back".into())
    })?;
    tx.commit()?;
    Ok(Enabled::Done(Box::new(record), released))
}

/// [`LeaseStore::hold_leased`](crate::store::LeaseStore::hold_leased).
pub(super) fn hold_leased(
    conn: &mut Connection,
    all: &Statements,
    org: OrgId,
    token: Uuid,
) -> Result<LeaseOutcome<Uuid>> {
    let sql = &all.endpoints;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let held: Option<String> = tx
        .prepare_cached(&sql.hold_leased)?
        .query_row(params![org.0.to_string(), token.to_string()], |row| {
            row.get(0)
        })
        .optional()?;
    let outcome = match held {
        Some(id) => {
            tx.prepare_cached(&sql.undo_execution)?
                .execute(params![token.to_string(), id])?;
            LeaseOutcome::Done(uuid(id)?)
        }
        None => super::lease_miss(&tx, org, token)?,
    };
    tx.commit()?;
    Ok(outcome)
}
