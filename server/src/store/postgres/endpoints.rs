//! Push endpoints and their health: read for the API, written from the
//! dispatcher's tallies, and the deliveries a disabled endpoint holds. The
//! writes are the lease engine's, through `leases.rs`.

use super::{PgStore, opt_ts, ts};
use crate::account::OrgId;
use crate::endpoint::{
    Change, Enabled, EndpointKey, EndpointRecord, HELD_ENDPOINT_DISABLED, Health, HealthPolicy,
    Tally,
};
use crate::job::state::Transition;
use crate::store::endpoints::{endpoint_columns, scheme_test};
use crate::store::{
    Clock, EndpointStore, FREE_FLOW, HealthRecorded, LeaseOutcome, Page, PageRequest, Result,
    StoreError, queued_push_test, status_test,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos_proto::Timestamp;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A job `j`'s target URL.
const URL: &str = "(j.delivery -> 'http' ->> 'url')";

pub(super) struct Sql {
    list: String,
    get: String,
    disabled: String,
    seen: String,
    lock: String,
    update: String,
    release: String,
    hold: String,
    hold_leased: String,
    enable: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let columns = endpoint_columns(URL);
        let hold = Transition::Hold;
        let held_of = |org: &str, host: &str| {
            format!(
                "j.organization_id = {org} AND j.held_reason IS NOT NULL
                 AND j.target_host = {host} AND {scheme}",
                scheme = scheme_test(URL, "e.scheme")
            )
        };
        Sql {
            list: format!(
                "SELECT {columns} FROM endpoints e
                 WHERE e.organization_id = $1 AND ($2::uuid IS NULL OR e.id < $2)
                 ORDER BY e.id DESC LIMIT $3"
            ),
            get: format!(
                "SELECT {columns} FROM endpoints e WHERE e.organization_id = $1 AND e.id = $2"
            ),
            disabled: "SELECT organization_id, scheme, target_host FROM endpoints
                       WHERE disabled_at IS NOT NULL"
                .into(),
            // First seen: a healthy row to count on. Rows of other servers'
            // inserts in flight are waited for, in the tallies' order.
            seen: clock.pg(
                "INSERT INTO endpoints (id, organization_id, scheme, target_host, healthy_since,
                                        created_at, updated_at)
                 SELECT id, org, scheme, host, now(), now(), now()
                 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                     AS t (id, org, scheme, host)
                 ON CONFLICT (organization_id, scheme, target_host) DO NOTHING"
                    .into(),
            ),
            lock: clock.pg(
                "SELECT e.id, e.organization_id, e.scheme, e.target_host, e.consecutive_failures,
                        e.failing_since, e.last_failure_at, e.last_error, e.disabled_at,
                        e.disabled_reason, e.healthy_since, now() AS now
                 FROM endpoints e
                 JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS t (org, scheme, host)
                   ON e.organization_id = t.org AND e.scheme = t.scheme
                  AND e.target_host = t.host
                 ORDER BY e.organization_id, e.scheme, e.target_host
                 FOR UPDATE OF e"
                    .into(),
            ),
            update: clock.pg("UPDATE endpoints e SET consecutive_failures = u.failures,
                        failing_since = u.failing_since, last_failure_at = u.last_failure_at,
                        last_error = u.last_error, disabled_at = u.disabled_at,
                        disabled_reason = u.disabled_reason, healthy_since = u.healthy_since,
                        updated_at = now()
                 FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[], $4::timestamptz[],
                             $5::text[], $6::timestamptz[], $7::text[], $8::timestamptz[])
                     AS u (id, failures, failing_since, last_failure_at, last_error,
                           disabled_at, disabled_reason, healthy_since)
                 WHERE e.id = u.id"
                .into()),
            // A recovered endpoint's held jobs: no longer held; promotion
            // makes them due.
            release: clock.pg(format!(
                "UPDATE jobs j SET held_reason = NULL, updated_at = now()
                 FROM endpoints e
                 WHERE e.id = $1 AND {held}",
                held = held_of("e.organization_id", "e.target_host"),
            )),
            // Queued push jobs of disabled endpoints, free queues' (by
            // host) and controlled queues' (by organization).
            hold: clock.pg(format!(
                "WITH held AS (
                     (SELECT j.id FROM endpoints e CROSS JOIN LATERAL (
                          SELECT j.id FROM jobs j
                          WHERE {queued_push} AND (coalesce(j.target_host, '') COLLATE \"C\")
                                = (e.target_host COLLATE \"C\")
                            AND j.organization_id = e.organization_id AND {scheme}
                          LIMIT $1 FOR UPDATE OF j SKIP LOCKED) j
                      WHERE e.disabled_at IS NOT NULL)
                     UNION ALL
                     (SELECT j.id FROM endpoints e CROSS JOIN LATERAL (
                          SELECT j.id FROM jobs j
                          WHERE j.status {from} AND j.delivery_type = 'push' AND NOT {FREE_FLOW}
                            AND j.organization_id = e.organization_id
                            AND j.target_host = e.target_host AND {scheme}
                          LIMIT $1 FOR UPDATE OF j SKIP LOCKED) j
                      WHERE e.disabled_at IS NOT NULL)
                     LIMIT $1
                 )
                 UPDATE jobs SET status = '{to}', held_reason = '{HELD_ENDPOINT_DISABLED}',
                                 updated_at = now()
                 FROM held WHERE jobs.id = held.id AND jobs.status {from}",
                queued_push = queued_push_test().replace("status ", "j.status "),
                scheme = scheme_test(URL, "e.scheme"),
                from = status_test(hold.from()),
                to = hold.to().as_str(),
            )),
            hold_leased: {
                let t = Transition::HoldLeased;
                clock.pg(format!(
                    "WITH held AS (
                         UPDATE jobs SET status = '{to}', held_reason = '{HELD_ENDPOINT_DISABLED}',
                                         attempt = attempt - 1, lease_expires_at = NULL,
                                         updated_at = now()
                         WHERE id = (SELECT job_id FROM executions WHERE lease_token = $2)
                           AND organization_id = $1 AND lease_token = $2 AND status {from}
                         RETURNING id
                     ), undone AS (
                         DELETE FROM executions
                         WHERE lease_token = $2 AND job_id IN (SELECT id FROM held)
                     )
                     SELECT id FROM held",
                    from = status_test(t.from()),
                    to = t.to().as_str(),
                ))
            },
            enable: clock.pg(
                "UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL,
                        disabled_at = NULL, disabled_reason = NULL,
                        healthy_since = CASE WHEN consecutive_failures > 0
                                               OR disabled_at IS NOT NULL
                                             THEN now() ELSE healthy_since END,
                        updated_at = now()
                 WHERE organization_id = $1 AND id = $2
                 RETURNING id"
                    .into(),
            ),
        }
    }
}

fn record_from_row(row: &Row) -> Result<EndpointRecord> {
    let failures: i64 = row.try_get("consecutive_failures")?;
    let held: i64 = row.try_get("held")?;
    Ok(EndpointRecord {
        id: row.try_get("id")?,
        endpoint: EndpointKey {
            scheme: row.try_get("scheme")?,
            target_host: row.try_get("target_host")?,
        },
        health: health_from_row(row, failures)?,
        held: held.max(0) as u64,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
    })
}

fn health_from_row(row: &Row, failures: i64) -> Result<Health> {
    Ok(Health {
        failures: failures.max(0) as u64,
        failing_since: opt_ts(row, "failing_since")?,
        last_failure_at: opt_ts(row, "last_failure_at")?,
        last_error: row.try_get("last_error")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        disabled_reason: row.try_get("disabled_reason")?,
        healthy_since: opt_ts(row, "healthy_since")?,
    })
}

#[async_trait]
impl EndpointStore for PgStore {
    async fn endpoints(&self, org: OrgId, page: PageRequest) -> Result<Page<EndpointRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.endpoints.list).await?;
        let limit = i64::from(page.limit) + 1;
        let rows = client
            .query(&stmt, &[&org.0, &page.before, &limit])
            .await?
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit, |e| e.id))
    }

    async fn endpoint(&self, org: OrgId, id: Uuid) -> Result<Option<EndpointRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.endpoints.get).await?;
        client
            .query_opt(&stmt, &[&org.0, &id])
            .await?
            .as_ref()
            .map(record_from_row)
            .transpose()
    }

    async fn disabled_endpoints(&self) -> Result<Vec<(OrgId, EndpointKey)>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.endpoints.disabled).await?;
        client
            .query(&stmt, &[])
            .await?
            .iter()
            .map(|row| {
                Ok((
                    OrgId(row.try_get("organization_id")?),
                    EndpointKey {
                        scheme: row.try_get("scheme")?,
                        target_host: row.try_get("target_host")?,
                    },
                ))
            })
            .collect()
    }
}

/// [`LeaseStore::record_endpoint_health`](crate::store::LeaseStore::record_endpoint_health).
pub(super) async fn record(
    store: &PgStore,
    tallies: Vec<((OrgId, EndpointKey), Tally)>,
    policy: HealthPolicy,
) -> Result<HealthRecorded> {
    if tallies.is_empty() {
        return Ok(HealthRecorded::default());
    }
    let sql = &store.sql.endpoints;
    let mut client = store.pool.get().await?;
    let ids: Vec<Uuid> = tallies.iter().map(|_| Uuid::now_v7()).collect();
    let orgs: Vec<Uuid> = tallies.iter().map(|((o, _), _)| o.0).collect();
    let schemes: Vec<&str> = tallies
        .iter()
        .map(|((_, k), _)| k.scheme.as_str())
        .collect();
    let hosts: Vec<&str> = tallies
        .iter()
        .map(|((_, k), _)| k.target_host.as_str())
        .collect();
    retry_deadlocks!(async {
        let tx = client.transaction().await?;
        tx.execute(&sql.seen, &[&ids, &orgs, &schemes, &hosts])
            .await?;
        let rows = tx.query(&sql.lock, &[&orgs, &schemes, &hosts]).await?;
        let mut update = Update::default();
        let mut recorded = HealthRecorded::default();
        let mut recovered = Vec::new();
        for row in &rows {
            let key = (
                OrgId(row.try_get("organization_id")?),
                EndpointKey {
                    scheme: row.try_get("scheme")?,
                    target_host: row.try_get("target_host")?,
                },
            );
            let Ok(i) = tallies.binary_search_by(|(k, _)| (k.0.0, &k.1).cmp(&(key.0.0, &key.1)))
            else {
                continue;
            };
            let now = ts(row.try_get("now")?);
            let failures: i64 = row.try_get("consecutive_failures")?;
            let health = health_from_row(row, failures)?;
            let (next, change) = health.after(&tallies[i].1, now, policy);
            let id: Uuid = row.try_get("id")?;
            match change {
                Change::None => continue,
                Change::Counted => {}
                Change::Disabled => recorded.disabled.push(key.clone()),
                Change::Recovered => recovered.push(id),
            }
            update.push(id, &next);
        }
        if !update.ids.is_empty() {
            tx.execute(
                &sql.update,
                &[
                    &update.ids,
                    &update.failures,
                    &update.failing_since,
                    &update.last_failure_at,
                    &update.last_error,
                    &update.disabled_at,
                    &update.disabled_reason,
                    &update.healthy_since,
                ],
            )
            .await?;
        }
        for id in &recovered {
            recorded.released += tx.execute(&sql.release, &[id]).await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(recorded)
    })
}

/// The columns of the endpoints a write changes.
#[derive(Default)]
struct Update {
    ids: Vec<Uuid>,
    failures: Vec<i64>,
    failing_since: Vec<Option<DateTime<Utc>>>,
    last_failure_at: Vec<Option<DateTime<Utc>>>,
    last_error: Vec<Option<String>>,
    disabled_at: Vec<Option<DateTime<Utc>>>,
    disabled_reason: Vec<Option<String>>,
    healthy_since: Vec<Option<DateTime<Utc>>>,
}

impl Update {
    fn push(&mut self, id: Uuid, h: &Health) {
        let t = |t: Option<Timestamp>| t.map(|t| t.0);
        self.ids.push(id);
        self.failures
            .push(i64::try_from(h.failures).unwrap_or(i64::MAX));
        self.failing_since.push(t(h.failing_since));
        self.last_failure_at.push(t(h.last_failure_at));
        self.last_error.push(h.last_error.clone());
        self.disabled_at.push(t(h.disabled_at));
        self.disabled_reason.push(h.disabled_reason.clone());
        self.healthy_since.push(t(h.healthy_since));
    }
}

/// [`LeaseStore::hold_for_disabled_endpoints`](crate::store::LeaseStore::hold_for_disabled_endpoints).
pub(super) async fn hold(store: &PgStore, limit: u32) -> Result<u64> {
    let client = store.pool.get().await?;
    let stmt = client.prepare_cached(&store.sql.endpoints.hold).await?;
    Ok(client.execute(&stmt, &[&i64::from(limit)]).await?)
}

/// [`LeaseStore::enable_endpoint`](crate::store::LeaseStore::enable_endpoint).
pub(super) async fn enable(store: &PgStore, org: OrgId, id: Uuid) -> Result<Enabled> {
    let sql = &store.sql.endpoints;
    let mut client = store.pool.get().await?;
    let tx = client.transaction().await?;
    if tx.query_opt(&sql.enable, &[&org.0, &id]).await?.is_none() {
        return Ok(Enabled::NotFound);
    }
    let released = tx.execute(&sql.release, &[&id]).await?;
    let record = tx.query_one(&sql.get, &[&org.0, &id]).await?;
    let record = record_from_row(&record)?;
    tx.commit().await?;
    Ok(Enabled::Done(Box::new(record), released))
}

/// [`LeaseStore::hold_leased`](crate::store::LeaseStore::hold_leased).
pub(super) async fn hold_leased(
    store: &PgStore,
    org: OrgId,
    token: Uuid,
) -> Result<LeaseOutcome<Uuid>> {
    let client = store.pool.get().await?;
    let stmt = client
        .prepare_cached(&store.sql.endpoints.hold_leased)
        .await?;
    match client.query_opt(&stmt, &[&org.0, &token]).await? {
        Some(row) => Ok(LeaseOutcome::Done(row.try_get("id")?)),
        None => super::lease_miss(&client, org, token).await,
    }
}
