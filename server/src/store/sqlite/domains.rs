//! Domains, their checks, and the daily counts of jobs sent to unverified
//! ones.

use super::{NOW, SqliteStore, now_minus, opt_ts, ts, uuid};
use crate::account::OrgId;
use crate::store::domains::{
    CheckResult, DOMAIN_COLUMNS, DomainRecord, LAPSE_AFTER, RECHECK_EVERY,
};
use crate::store::{Clock, DomainStore, Page, PageRequest, Result, StoreError, enum_parse};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
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
    due: String,
    claim: String,
    now: String,
    usage: String,
    add_usage: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let c = |s: String| clock.sqlite(s);
        let lapse_before = now_minus(LAPSE_AFTER);
        let recheck_before = now_minus(RECHECK_EVERY);
        Sql {
            add: c(format!(
                "INSERT INTO domains (id, organization_id, domain, token, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', {NOW})
                 ON CONFLICT (organization_id, domain) DO NOTHING"
            )),
            get: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains WHERE organization_id = ?1 AND id = ?2"
            ),
            named: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains WHERE organization_id = ?1 AND domain = ?2"
            ),
            list: format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains
                 WHERE organization_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3"
            ),
            delete: "DELETE FROM domains WHERE organization_id = ?1 AND id = ?2".into(),
            verified: "SELECT domain FROM domains
                       WHERE organization_id = ?1 AND status = 'verified'"
                .into(),
            passed: c(format!(
                "UPDATE domains SET status = 'verified', method = ?3,
                     verified_at = CASE WHEN status = 'verified' THEN verified_at ELSE {NOW} END,
                     checked_at = {NOW}, failing_since = NULL, last_error = NULL
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {DOMAIN_COLUMNS}"
            )),
            failed: c(format!(
                "UPDATE domains SET checked_at = {NOW}, last_error = ?3,
                     failing_since = coalesce(failing_since, {NOW}),
                     status = CASE
                         WHEN status = 'verified'
                              AND coalesce(failing_since, {NOW}) <= {lapse_before}
                         THEN 'lapsed' ELSE status END
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {DOMAIN_COLUMNS}"
            )),
            due: c(format!(
                "SELECT {DOMAIN_COLUMNS}, organization_id FROM domains
                 WHERE status <> 'pending'
                   AND (checked_at IS NULL OR checked_at <= {recheck_before})
                 ORDER BY checked_at NULLS FIRST
                 LIMIT ?1"
            )),
            claim: c(format!(
                "UPDATE domains SET checked_at = {NOW} WHERE id = ?1"
            )),
            now: c(format!("SELECT {NOW}")),
            usage: "SELECT coalesce((SELECT used FROM domain_usage
                                     WHERE organization_id = ?1 AND domain = ?2
                                       AND starts_on = ?3), 0)"
                .into(),
            add_usage: "INSERT INTO domain_usage (organization_id, domain, starts_on, used)
                        VALUES (?1, ?2, ?3, ?4)
                        ON CONFLICT (organization_id, domain, starts_on)
                            DO UPDATE SET used = used + excluded.used"
                .into(),
        }
    }
}

fn domain_from_row(row: &Row) -> Result<DomainRecord> {
    Ok(DomainRecord {
        id: uuid(row.get("id")?)?,
        domain: row.get("domain")?,
        token: row.get("token")?,
        status: enum_parse("status", row.get("status")?)?,
        method: row.get("method")?,
        verified_at: opt_ts(row.get("verified_at")?)?,
        checked_at: opt_ts(row.get("checked_at")?)?,
        failing_since: opt_ts(row.get("failing_since")?)?,
        last_error: row.get("last_error")?,
        created_at: ts(row.get("created_at")?)?,
    })
}

fn one(conn: &Connection, sql: &str, org: OrgId, key: &str) -> Result<Option<DomainRecord>> {
    conn.prepare_cached(sql)?
        .query_row(params![org.0.to_string(), key], |row| {
            Ok(domain_from_row(row))
        })
        .optional()?
        .transpose()
}

/// The organization's verified domains.
pub(super) fn verified_on(conn: &Connection, sql: &Sql, org: OrgId) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(&sql.verified)?;
    let rows = stmt.query_map(params![org.0.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// The count for the unverified domain `key` on `day` (`YYYY-MM-DD`).
pub(super) fn usage_on(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    key: &str,
    day: &str,
) -> Result<u64> {
    let used: i64 = conn
        .prepare_cached(&sql.usage)?
        .query_row(params![org.0.to_string(), key, day], |r| r.get(0))?;
    Ok(used.max(0) as u64)
}

/// Adds `n` to the count for `key` on `day`.
pub(super) fn add_usage(
    conn: &Connection,
    sql: &Sql,
    org: OrgId,
    key: &str,
    day: &str,
    n: u64,
) -> Result<()> {
    conn.prepare_cached(&sql.add_usage)?
        .execute(params![org.0.to_string(), key, day, n as i64])?;
    Ok(())
}

#[async_trait]
impl DomainStore for SqliteStore {
    async fn add_domain(
        &self,
        org: OrgId,
        domain: &str,
        token: &str,
    ) -> Result<(DomainRecord, bool)> {
        let (domain, token) = (domain.to_string(), token.to_string());
        self.call(move |conn, sql| {
            let sql = &sql.domains;
            let made = conn.prepare_cached(&sql.add)?.execute(params![
                Uuid::now_v7().to_string(),
                org.0.to_string(),
                domain,
                token
            ])? > 0;
            let record = one(conn, &sql.named, org, &domain)?.ok_or_else(|| {
                StoreError::Other(format!("domain {domain} not found after insert"))
            })?;
            Ok((record, made))
        })
        .await
    }

    async fn domain(&self, org: OrgId, id: Uuid) -> Result<Option<DomainRecord>> {
        self.call(move |conn, sql| one(conn, &sql.domains.get, org, &id.to_string()))
            .await
    }

    async fn domain_named(&self, org: OrgId, domain: &str) -> Result<Option<DomainRecord>> {
        let domain = domain.to_string();
        self.call(move |conn, sql| one(conn, &sql.domains.named, org, &domain))
            .await
    }

    async fn list_domains(&self, org: OrgId, page: PageRequest) -> Result<Page<DomainRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.domains.list)?;
            let rows = stmt.query_map(
                params![
                    org.0.to_string(),
                    page.before.map(|b| b.to_string()),
                    i64::from(page.limit) + 1
                ],
                |row| Ok(domain_from_row(row)),
            )?;
            let items = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
            Ok(Page::from_rows(items, page.limit, |d| d.id))
        })
        .await
    }

    async fn delete_domain(&self, org: OrgId, id: Uuid) -> Result<bool> {
        self.call(move |conn, sql| {
            Ok(conn
                .prepare_cached(&sql.domains.delete)?
                .execute(params![org.0.to_string(), id.to_string()])?
                > 0)
        })
        .await
    }

    async fn verified_domains(&self, org: OrgId) -> Result<Vec<String>> {
        self.call(move |conn, sql| verified_on(conn, &sql.domains, org))
            .await
    }

    async fn record_check(
        &self,
        org: OrgId,
        id: Uuid,
        result: &CheckResult,
    ) -> Result<Option<DomainRecord>> {
        let result = result.clone();
        self.call(move |conn, sql| {
            let sql = &sql.domains;
            let (stmt, value) = match &result {
                CheckResult::Passed(method) => (&sql.passed, method.to_string()),
                CheckResult::Failed(why) => (&sql.failed, why.clone()),
            };
            conn.prepare_cached(stmt)?
                .query_row(params![org.0.to_string(), id.to_string(), value], |row| {
                    Ok(domain_from_row(row))
                })
                .optional()?
                .transpose()
        })
        .await
    }

    async fn claim_rechecks(&self, n: u32) -> Result<Vec<(OrgId, DomainRecord)>> {
        self.call(move |conn, sql| {
            let sql = &sql.domains;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let due = {
                let mut stmt = tx.prepare_cached(&sql.due)?;
                let rows = stmt.query_map(params![i64::from(n)], |row| {
                    Ok((
                        row.get::<_, String>("organization_id")?,
                        domain_from_row(row),
                    ))
                })?;
                let mut due = Vec::new();
                for row in rows {
                    let (org, record) = row?;
                    due.push((OrgId(uuid(org)?), record?));
                }
                due
            };
            for (_, record) in &due {
                tx.prepare_cached(&sql.claim)?
                    .execute(params![record.id.to_string()])?;
            }
            tx.commit()?;
            Ok(due)
        })
        .await
    }

    async fn unverified_usage(&self, org: OrgId, key: &str) -> Result<u64> {
        let key = key.to_string();
        self.call(move |conn, sql| {
            let now = ts(conn
                .prepare_cached(&sql.domains.now)?
                .query_row([], |r| r.get(0))?)?;
            let day = crate::account::plans::Window::Day
                .starts_on(now)
                .to_string();
            usage_on(conn, &sql.domains, org, &key, &day)
        })
        .await
    }
}
