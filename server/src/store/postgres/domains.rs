//! Domains, their checks, and the daily counts of jobs sent to unverified
//! ones.

use super::{PgStore, opt_ts, ts};
use crate::account::OrgId;
use crate::store::domains::{
    CheckResult, DOMAIN_COLUMNS, DomainRecord, LAPSE_AFTER, RECHECK_EVERY,
};
use crate::store::{Clock, DomainStore, Page, PageRequest, Result, enum_parse};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    add: String,
    get: String,
    named: String,
    list: String,
    delete: String,
    verified: String,
    passed: String,
    failed: String,
    claim: String,
    usage: String,
    lock_usage: String,
    add_usage: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let c = |s: String| clock.pg(s);
        let lapse = LAPSE_AFTER.as_secs();
        let recheck = RECHECK_EVERY.as_secs();
        let today = "(now() AT TIME ZONE 'UTC')::date";
        Sql {
            // A no-op update on conflict, so the existing row is returned.
            add: c(format!(
                "INSERT INTO domains (id, organization_id, domain, token, status, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', now())
                 ON CONFLICT (organization_id, domain) DO UPDATE SET domain = EXCLUDED.domain
                 RETURNING {DOMAIN_COLUMNS}, (xmax = 0) AS made"
            )),
            get: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains WHERE organization_id = $1 AND id = $2"
            ),
            named: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains WHERE organization_id = $1 AND domain = $2"
            ),
            list: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains
                 WHERE organization_id = $1 AND ($2::uuid IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3"
            ),
            delete: "DELETE FROM domains WHERE organization_id = $1 AND id = $2".into(),
            verified: "SELECT domain FROM domains
                       WHERE organization_id = $1 AND status = 'verified'"
                .into(),
            passed: c(format!(
                "UPDATE domains SET status = 'verified', method = $3,
                     verified_at = CASE WHEN status = 'verified' THEN verified_at ELSE now() END,
                     checked_at = now(), failing_since = NULL, last_error = NULL
                 WHERE organization_id = $1 AND id = $2
                 RETURNING {DOMAIN_COLUMNS}"
            )),
            failed: c(format!(
                "UPDATE domains SET checked_at = now(), last_error = $3,
                     failing_since = coalesce(failing_since, now()),
                     status = CASE
                         WHEN status = 'verified'
                              AND coalesce(failing_since, now())
                                  <= now() - make_interval(secs => {lapse})
                         THEN 'lapsed' ELSE status END
                 WHERE organization_id = $1 AND id = $2
                 RETURNING {DOMAIN_COLUMNS}"
            )),
            // Taken rows are marked checked, so another server's pass
            // passes them over; the check's result is written after.
            claim: c(format!(
                "UPDATE domains SET checked_at = now()
                 WHERE id IN (SELECT id FROM domains
                              WHERE status <> 'pending'
                                AND (checked_at IS NULL
                                     OR checked_at <= now() - make_interval(secs => {recheck}))
                              ORDER BY checked_at NULLS FIRST
                              LIMIT $1
                              FOR UPDATE SKIP LOCKED)
                 RETURNING {DOMAIN_COLUMNS}, organization_id"
            )),
            usage: c(format!(
                "SELECT coalesce((SELECT used FROM domain_usage
                                  WHERE organization_id = $1 AND domain = $2
                                    AND starts_on = {today}), 0)"
            )),
            // Made if new and locked till commit (the organization's counts
            // are locked first, so two transactions never wait on each
            // other's domain rows).
            lock_usage: "INSERT INTO domain_usage (organization_id, domain, starts_on, used)
                          VALUES ($1, $2, $3, 0)
                          ON CONFLICT (organization_id, domain, starts_on)
                              DO UPDATE SET used = domain_usage.used
                          RETURNING used"
                .into(),
            add_usage: "UPDATE domain_usage SET used = used + $4
                        WHERE organization_id = $1 AND domain = $2 AND starts_on = $3"
                .into(),
        }
    }
}

fn domain_from_row(row: &Row) -> Result<DomainRecord> {
    Ok(DomainRecord {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        token: row.try_get("token")?,
        status: enum_parse("status", row.try_get("status")?)?,
        method: row.try_get("method")?,
        verified_at: opt_ts(row, "verified_at")?,
        checked_at: opt_ts(row, "checked_at")?,
        failing_since: opt_ts(row, "failing_since")?,
        last_error: row.try_get("last_error")?,
        created_at: ts(row.try_get("created_at")?),
    })
}

/// The organization's verified domains, in the caller's transaction.
pub(super) async fn verified_on(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
) -> Result<Vec<String>> {
    let stmt = client.prepare_cached(&store.sql.domains.verified).await?;
    let rows = client.query(&stmt, &[&org.0]).await?;
    rows.iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<String>>>()
}

/// The count of the unverified domain `key` on `day` (the day of the
/// organization's locked counts), locked in the caller's transaction until
/// it ends.
pub(super) async fn lock_usage(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
    key: &str,
    day: chrono::NaiveDate,
) -> Result<u64> {
    let stmt = client.prepare_cached(&store.sql.domains.lock_usage).await?;
    let row = client.query_one(&stmt, &[&org.0, &key, &day]).await?;
    Ok(row.try_get::<_, i64>("used")?.max(0) as u64)
}

/// Adds `n` to the count [`lock_usage`] locked.
pub(super) async fn add_usage(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
    key: &str,
    day: chrono::NaiveDate,
    n: u64,
) -> Result<()> {
    let stmt = client.prepare_cached(&store.sql.domains.add_usage).await?;
    client
        .execute(&stmt, &[&org.0, &key, &day, &(n as i64)])
        .await?;
    Ok(())
}

#[async_trait]
impl DomainStore for PgStore {
    async fn add_domain(
        &self,
        org: OrgId,
        domain: &str,
        token: &str,
    ) -> Result<(DomainRecord, bool)> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.domains.add,
                &[&Uuid::now_v7(), &org.0, &domain, &token],
            )
            .await?;
        Ok((domain_from_row(&row)?, row.try_get("made")?))
    }

    async fn domain(&self, org: OrgId, id: Uuid) -> Result<Option<DomainRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.domains.get, &[&org.0, &id])
            .await?
            .map(|r| domain_from_row(&r))
            .transpose()
    }

    async fn domain_named(&self, org: OrgId, domain: &str) -> Result<Option<DomainRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.domains.named, &[&org.0, &domain])
            .await?
            .map(|r| domain_from_row(&r))
            .transpose()
    }

    async fn list_domains(&self, org: OrgId, page: PageRequest) -> Result<Page<DomainRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &self.sql.domains.list,
                &[&org.0, &page.before, &(i64::from(page.limit) + 1)],
            )
            .await?;
        let items = rows
            .iter()
            .map(domain_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |d| d.id))
    }

    async fn delete_domain(&self, org: OrgId, id: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(&self.sql.domains.delete, &[&org.0, &id])
            .await?
            > 0)
    }

    async fn verified_domains(&self, org: OrgId) -> Result<Vec<String>> {
        let client = self.pool.get().await?;
        verified_on(self, &client, org).await
    }

    async fn record_check(
        &self,
        org: OrgId,
        id: Uuid,
        result: &CheckResult,
    ) -> Result<Option<DomainRecord>> {
        let client = self.pool.get().await?;
        let row = match result {
            CheckResult::Passed(method) => {
                client
                    .query_opt(&self.sql.domains.passed, &[&org.0, &id, method])
                    .await?
            }
            CheckResult::Failed(why) => {
                client
                    .query_opt(&self.sql.domains.failed, &[&org.0, &id, why])
                    .await?
            }
        };
        row.map(|r| domain_from_row(&r)).transpose()
    }

    async fn claim_rechecks(&self, n: u32) -> Result<Vec<(OrgId, DomainRecord)>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(&self.sql.domains.claim, &[&i64::from(n)])
            .await?;
        rows.iter()
            .map(|r| Ok((OrgId(r.try_get("organization_id")?), domain_from_row(r)?)))
            .collect()
    }

    async fn unverified_usage(&self, org: OrgId, key: &str) -> Result<u64> {
        let client = self.pool.get().await?;
        let used: i64 = client
            .query_one(&self.sql.domains.usage, &[&org.0, &key])
            .await?
            .get(0);
        Ok(used.max(0) as u64)
    }
}
