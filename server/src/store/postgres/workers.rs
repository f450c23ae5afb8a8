//! Connected workers.

use super::{PgStore, ts, u32_col};
use crate::account::OrgId;
use crate::job::state::LEASED;
use crate::store::{Clock, HeldLease, Result, WorkerRegistration, WorkerStore, status_test};
use async_trait::async_trait;
use chronos_proto::JobStatus;
use chronos_proto::worker::ConnectedWorker;
use std::time::Duration;
use uuid::Uuid;

pub(super) struct Sql {
    register: String,
    held: String,
    heartbeat: String,
    disconnect: String,
    list: String,
    record_polls: String,
    served: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            register: clock.pg(
                "INSERT INTO workers (organization_id, worker_id, session_id, handlers,
                                      max_in_flight, sdk, connected_at, last_heartbeat_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now(), now())
                 ON CONFLICT (organization_id, worker_id) DO UPDATE
                 SET session_id = EXCLUDED.session_id, handlers = EXCLUDED.handlers,
                     max_in_flight = EXCLUDED.max_in_flight, sdk = EXCLUDED.sdk,
                     connected_at = now(), last_heartbeat_at = now(), disconnected_at = NULL"
                    .into(),
            ),
            held: clock.pg(format!(
                "SELECT lease_token, id FROM jobs
                 WHERE organization_id = $1 AND worker_id = $2 AND status {leased}
                   AND lease_expires_at > now()",
                leased = status_test(LEASED),
            )),
            heartbeat: clock.pg("UPDATE workers SET last_heartbeat_at = now()
                 WHERE organization_id = $1 AND worker_id = $2 AND session_id = $3"
                .into()),
            disconnect: clock.pg("UPDATE workers SET disconnected_at = now()
                 WHERE organization_id = $1 AND worker_id = $2 AND session_id = $3"
                .into()),
            list: clock.pg(format!(
                // The jobs in flight counted in one read of the running
                // jobs, not one per worker.
                "WITH running AS (
                     SELECT worker_id, count(*) AS in_flight FROM jobs
                     WHERE organization_id = $1 AND status = '{running}'
                       AND worker_id IS NOT NULL
                     GROUP BY worker_id
                 )
                 SELECT w.worker_id, w.session_id, w.handlers, w.max_in_flight, w.sdk,
                        w.connected_at, w.last_heartbeat_at, coalesce(r.in_flight, 0) AS in_flight
                 FROM workers w LEFT JOIN running r ON r.worker_id = w.worker_id
                 WHERE w.organization_id = $1 AND w.disconnected_at IS NULL
                   AND w.last_heartbeat_at > now() - make_interval(secs => $2)
                 ORDER BY w.connected_at, w.worker_id",
                running = JobStatus::Running.as_str(),
            )),
            // Sorted and distinct (by the caller): two servers upserting
            // the same handlers lock their rows in one order.
            record_polls: clock.pg(
                "INSERT INTO polled_handlers (organization_id, handler, polled_at)
                 SELECT $1, h, now() FROM unnest($2::text[]) AS h
                 ON CONFLICT (organization_id, handler) DO UPDATE
                 SET polled_at = EXCLUDED.polled_at"
                    .into(),
            ),
            served: clock.pg("SELECT EXISTS (SELECT 1 FROM workers
                                WHERE organization_id = $1 AND $2 = ANY(handlers)
                                  AND disconnected_at IS NULL
                                  AND last_heartbeat_at > now() - make_interval(secs => $3))
                     OR EXISTS (SELECT 1 FROM polled_handlers
                                WHERE organization_id = $1 AND handler = $2
                                  AND polled_at > now() - make_interval(secs => $4))"
                .into()),
        }
    }
}

#[async_trait]
impl WorkerStore for PgStore {
    async fn register_worker(
        &self,
        org: OrgId,
        worker: &WorkerRegistration,
    ) -> Result<Vec<HeldLease>> {
        let client = self.pool.get().await?;
        client
            .execute(
                &self.sql.workers.register,
                &[
                    &org.0,
                    &worker.worker_id,
                    &worker.session_id,
                    &worker.handlers,
                    &(worker.max_in_flight as i32),
                    &worker.sdk,
                ],
            )
            .await?;
        let rows = client
            .query(&self.sql.workers.held, &[&org.0, &worker.worker_id])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldLease {
                    token: r.try_get(0)?,
                    job_id: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn worker_heartbeat(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.workers.heartbeat).await?;
        client
            .execute(&stmt, &[&org.0, &worker_id, &session_id])
            .await?;
        Ok(())
    }

    async fn disconnect_worker(&self, org: OrgId, worker_id: &str, session_id: Uuid) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                &self.sql.workers.disconnect,
                &[&org.0, &worker_id, &session_id],
            )
            .await?;
        Ok(())
    }

    async fn list_workers(&self, org: OrgId, alive: Duration) -> Result<Vec<ConnectedWorker>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(&self.sql.workers.list, &[&org.0, &alive.as_secs_f64()])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ConnectedWorker {
                    worker_id: r.try_get("worker_id")?,
                    session_id: r.try_get("session_id")?,
                    handlers: r.try_get("handlers")?,
                    max_in_flight: u32_col(r, "max_in_flight")?,
                    in_flight: r.try_get::<_, i64>("in_flight")? as u32,
                    sdk: r.try_get("sdk")?,
                    connected_at: ts(r.try_get("connected_at")?),
                    last_heartbeat_at: ts(r.try_get("last_heartbeat_at")?),
                })
            })
            .collect()
    }

    async fn record_polls(&self, org: OrgId, handlers: &[String]) -> Result<()> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&self.sql.workers.record_polls)
            .await?;
        client.execute(&stmt, &[&org.0, &handlers]).await?;
        Ok(())
    }

    async fn handler_served(
        &self,
        org: OrgId,
        handler: &str,
        alive: Duration,
        polled: Duration,
    ) -> Result<bool> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.workers.served,
                &[
                    &org.0,
                    &handler,
                    &alive.as_secs_f64(),
                    &polled.as_secs_f64(),
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }
}
