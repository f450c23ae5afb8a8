//! Connected workers.

use super::{NOW, SqliteStore, corrupt, to_json, ts, u32_col, uuid};
use crate::account::OrgId;
use crate::job::state::LEASED;
use crate::store::{Clock, HeldLease, Result, WorkerRegistration, WorkerStore, status_test};
use async_trait::async_trait;
use chronos_proto::JobStatus;
use chronos_proto::worker::ConnectedWorker;
use rusqlite::{TransactionBehavior, params};
use std::time::Duration;
use uuid::Uuid;

pub(super) struct Sql {
    register: String,
    pub(super) held: String,
    heartbeat: String,
    disconnect: String,
    pub(super) list: String,
    record_poll: String,
    served: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let c = |s: String| clock.sqlite(s);
        Sql {
            register: c(format!(
                "INSERT INTO workers (organization_id, worker_id, session_id, handlers,
                                      max_in_flight, sdk, connected_at, last_heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, {NOW}, {NOW})
                 ON CONFLICT (organization_id, worker_id) DO UPDATE
                 SET session_id = excluded.session_id, handlers = excluded.handlers,
                     max_in_flight = excluded.max_in_flight, sdk = excluded.sdk,
                     connected_at = {NOW}, last_heartbeat_at = {NOW}, disconnected_at = NULL"
            )),
            // `+organization_id`: not through `jobs_by_org`. Without
            // statistics SQLite prefers that index, which holds every job
            // the organization ever had: on a store with history this read
            // all of them (600 ms per connecting worker with a million).
            // The running jobs' own index is small.
            held: c(format!(
                "SELECT lease_token, id FROM jobs
                 WHERE +organization_id = ?1 AND worker_id = ?2 AND status {leased}
                   AND lease_expires_at > {NOW}",
                leased = status_test(LEASED),
            )),
            heartbeat: c(format!(
                "UPDATE workers SET last_heartbeat_at = {NOW}
                 WHERE organization_id = ?1 AND worker_id = ?2 AND session_id = ?3"
            )),
            disconnect: c(format!(
                "UPDATE workers SET disconnected_at = {NOW}
                 WHERE organization_id = ?1 AND worker_id = ?2 AND session_id = ?3"
            )),
            list: c(format!(
                // The jobs in flight counted in one read of the running
                // jobs, not one per worker (`+`: as for `held`).
                "WITH running AS (
                     SELECT worker_id, count(*) AS in_flight FROM jobs
                     WHERE +organization_id = ?1 AND status = '{running}'
                       AND worker_id IS NOT NULL
                     GROUP BY worker_id
                 )
                 SELECT w.worker_id, w.session_id, w.handlers, w.max_in_flight, w.sdk,
                        w.connected_at, w.last_heartbeat_at, coalesce(r.in_flight, 0) AS in_flight
                 FROM workers w LEFT JOIN running r ON r.worker_id = w.worker_id
                 WHERE w.organization_id = ?1 AND w.disconnected_at IS NULL
                   AND w.last_heartbeat_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
                 ORDER BY w.connected_at, w.worker_id",
                running = JobStatus::Running.as_str(),
            )),
            record_poll: c(format!(
                "INSERT INTO polled_handlers (organization_id, handler, polled_at)
                 VALUES (?1, ?2, {NOW})
                 ON CONFLICT (organization_id, handler) DO UPDATE
                 SET polled_at = excluded.polled_at"
            )),
            served: c(
                "SELECT EXISTS (SELECT 1 FROM workers w, json_each(w.handlers) h
                                WHERE w.organization_id = ?1 AND h.value = ?2
                                  AND w.disconnected_at IS NULL
                                  AND w.last_heartbeat_at
                                      > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3))
                     OR EXISTS (SELECT 1 FROM polled_handlers
                                WHERE organization_id = ?1 AND handler = ?2
                                  AND polled_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4))"
                    .into(),
            ),
        }
    }
}

#[async_trait]
impl WorkerStore for SqliteStore {
    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>> {
        let worker = worker.clone();
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                &sql.workers.register,
                params![
                    org.0.to_string(),
                    worker.worker_id,
                    worker.session_id.to_string(),
                    to_json(&worker.handlers),
                    worker.max_in_flight,
                    worker.sdk
                ],
            )?;
            let held = tx
                .prepare_cached(&sql.workers.held)?
                .query_map(params![org.0.to_string(), worker.worker_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .map(|r| {
                    let (token, id) = r?;
                    Ok(HeldLease {
                        token: uuid(token)?,
                        job_id: uuid(id)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let worker_id = worker_id.to_string();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.workers.heartbeat)?
                .execute(params![
                    org.0.to_string(),
                    worker_id,
                    session_id.to_string()
                ])?;
            Ok(())
        })
        .await
    }

    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let worker_id = worker_id.to_string();
        self.call(move |conn, sql| {
            conn.execute(
                &sql.workers.disconnect,
                params![org.0.to_string(), worker_id, session_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_workers(&self, org: OrgId, alive: Duration) -> Result<Vec<ConnectedWorker>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.workers.list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    format!("-{:.3} seconds", alive.as_secs_f64())
                ],
                |r| {
                    Ok((|| {
                        Ok(ConnectedWorker {
                            worker_id: r.get("worker_id")?,
                            session_id: uuid(r.get("session_id")?)?,
                            handlers: serde_json::from_str(&r.get::<_, String>("handlers")?)
                                .map_err(|e| corrupt("handlers", e))?,
                            max_in_flight: u32_col(r, "max_in_flight")?,
                            in_flight: u32_col(r, "in_flight")?,
                            sdk: r.get("sdk")?,
                            connected_at: ts(r.get("connected_at")?)?,
                            last_heartbeat_at: ts(r.get("last_heartbeat_at")?)?,
                        })
                    })())
                },
            )?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn record_polls(&self, org: OrgId, handlers: &[String]) -> Result<()> {
        let handlers = handlers.to_vec();
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(&sql.workers.record_poll)?;
                for handler in &handlers {
                    stmt.execute(params![org.0.to_string(), handler])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn handler_served(
        &self,
        org: OrgId,
        handler: &str,
        alive: Duration,
        polled: Duration,
    ) -> Result<bool> {
        let handler = handler.to_string();
        self.call(move |conn, sql| {
            let ago = |d: Duration| format!("-{:.3} seconds", d.as_secs_f64());
            Ok(conn.prepare_cached(&sql.workers.served)?.query_row(
                params![org.0.to_string(), handler, ago(alive), ago(polled)],
                |r| r.get(0),
            )?)
        })
        .await
    }
}
