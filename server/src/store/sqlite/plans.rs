//! Plans, the organizations on them, and the usage counts jobs raise.

use super::{NOW, SqliteStore, Statements, ts};
use crate::account::OrgId;
use crate::account::plans::{Plan, QuotaExceeded, Tally, UNLIMITED, Usage, Window};
use crate::store::plans::{PLAN_COLUMNS, PastQuota};
use crate::store::{Clock, PlanDeleted, PlanStore, Result, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) struct Sql {
    list: String,
    get: String,
    put: String,
    users: String,
    delete: String,
    of_org: String,
    set_org: String,
    now: String,
    usage: String,
    add_usage: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            list: format!("SELECT {PLAN_COLUMNS} FROM plans ORDER BY name"),
            get: format!("SELECT {PLAN_COLUMNS} FROM plans WHERE name = ?1"),
            put: clock.sqlite(format!(
                "INSERT INTO plans (name, messages_per_day, messages_per_month,
                     min_interval_seconds, max_retries, verify_domains)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name) DO UPDATE SET
                     messages_per_day = excluded.messages_per_day,
                     messages_per_month = excluded.messages_per_month,
                     min_interval_seconds = excluded.min_interval_seconds,
                     max_retries = excluded.max_retries,
                     verify_domains = excluded.verify_domains,
                     updated_at = {NOW}"
            )),
            users: "SELECT count(*) FROM organizations WHERE plan = ?1".into(),
            delete: format!("DELETE FROM plans WHERE name = ?1 AND name <> '{UNLIMITED}'"),
            of_org: format!(
                "SELECT {PLAN_COLUMNS} FROM plans
                 WHERE name = (SELECT plan FROM organizations WHERE id = ?1)"
            ),
            set_org: "UPDATE organizations SET plan = ?2
                      WHERE id = ?1 AND EXISTS (SELECT 1 FROM plans WHERE name = ?2)"
                .into(),
            now: clock.sqlite(format!("SELECT {NOW}")),
            usage: "SELECT period, used FROM usage_counts
                    WHERE organization_id = ?1
                      AND ((period = 'day' AND starts_on = ?2)
                           OR (period = 'month' AND starts_on = ?3))"
                .into(),
            add_usage: "INSERT INTO usage_counts (organization_id, period, starts_on, used)
                        VALUES (?1, 'day', ?2, ?4), (?1, 'month', ?3, ?4)
                        ON CONFLICT (organization_id, period, starts_on)
                            DO UPDATE SET used = used + excluded.used"
                .into(),
        }
    }
}

fn plan_from_row(row: &Row) -> rusqlite::Result<Plan> {
    let count = |name: &str| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(name)?.map(|n| n.max(0) as u64))
    };
    let small = |name: &str| -> rusqlite::Result<Option<u32>> {
        Ok(row
            .get::<_, Option<i64>>(name)?
            .map(|n| n.clamp(0, u32::MAX as i64) as u32))
    };
    Ok(Plan {
        name: row.get("name")?,
        messages_per_day: count("messages_per_day")?,
        messages_per_month: count("messages_per_month")?,
        min_interval_seconds: small("min_interval_seconds")?,
        max_retries: small("max_retries")?,
        verify_domains: row.get("verify_domains")?,
    })
}

/// The organization's plan.
fn plan_of(conn: &Connection, sql: &Sql, org: OrgId) -> Result<Plan> {
    conn.prepare_cached(&sql.of_org)?
        .query_row(params![org.0.to_string()], plan_from_row)
        .optional()?
        .ok_or_else(|| StoreError::Other(format!("organization {} has no plan", org.0)))
}

/// The organization's counts in the windows of the store's now.
fn usage_of(conn: &Connection, sql: &Sql, org: OrgId) -> Result<Usage> {
    let at = ts(conn.prepare_cached(&sql.now)?.query_row([], |r| r.get(0))?)?;
    let (day, month) = windows(at);
    let mut usage = Usage {
        day: 0,
        month: 0,
        at,
    };
    let mut stmt = conn.prepare_cached(&sql.usage)?;
    let rows = stmt.query_map(params![org.0.to_string(), day, month], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (period, used) = row?;
        let used = used.max(0) as u64;
        match period.as_str() {
            "day" => usage.day = used,
            _ => usage.month = used,
        }
    }
    Ok(usage)
}

/// The keys of the day's and the month's counters for `at`.
fn windows(at: chronos_proto::Timestamp) -> (String, String) {
    (
        Window::Day.starts_on(at).to_string(),
        Window::Month.starts_on(at).to_string(),
    )
}

/// One transaction's spending of one organization's plan: a [`Tally`] read
/// at its first job, taken job by job, written by [`Spending::finish`]
/// before the transaction commits. SQLite runs one writing transaction at
/// a time, so nothing else counts meanwhile.
pub(super) struct Spending {
    past: PastQuota,
    /// `None` until read.
    tally: Option<Tally>,
}

impl Spending {
    pub fn new(past: PastQuota) -> Self {
        Spending { past, tally: None }
    }

    /// Takes room for one job of `org`, pushing to `host` if it pushes:
    /// the plan it is created under, or why it may not be.
    pub fn take(
        &mut self,
        conn: &Connection,
        sql: &Statements,
        org: OrgId,
        host: Option<&str>,
    ) -> Result<std::result::Result<&Plan, QuotaExceeded>> {
        let tally = match &mut self.tally {
            Some(tally) => tally,
            unread => unread.insert(read(conn, sql, org)?),
        };
        if let Some(key) = tally.unread_domain(host) {
            let day = Window::Day.starts_on(tally.at()).to_string();
            let used = super::domains::usage_on(conn, &sql.domains, org, &key, &day)?;
            tally.read_domain(key, used);
        }
        if let (0, Some(refusal)) = tally.room(host, 1)
            && self.past == PastQuota::Refuse
        {
            return Ok(Err(refusal));
        }
        Ok(Ok(&tally.plan))
    }

    /// One job (pushing to `host`, if it pushes) was inserted under the
    /// room [`Spending::take`] gave.
    pub fn spent(&mut self, host: Option<&str>) {
        if let Some(tally) = &mut self.tally {
            tally.spend(host, 1);
        }
    }

    /// Writes what was spent to the organization's counters.
    pub fn finish(self, conn: &Connection, sql: &Statements, org: OrgId) -> Result<()> {
        let Some(tally) = self.tally.filter(|t| t.plan.counts() && t.spent() > 0) else {
            return Ok(());
        };
        let (day, month) = windows(tally.at());
        conn.prepare_cached(&sql.plans.add_usage)?.execute(params![
            org.0.to_string(),
            day,
            month,
            tally.spent() as i64
        ])?;
        for (key, spent) in tally.domains_spent() {
            super::domains::add_usage(conn, &sql.domains, org, key, &day, spent)?;
        }
        Ok(())
    }
}

/// The organization's plan and, if it counts, its counts and verified
/// domains.
fn read(conn: &Connection, sql: &Statements, org: OrgId) -> Result<Tally> {
    let plan = plan_of(conn, &sql.plans, org)?;
    if !plan.counts() {
        return Ok(Tally::uncounted(plan));
    }
    let usage = usage_of(conn, &sql.plans, org)?;
    let verified = match plan.verify_domains {
        true => super::domains::verified_on(conn, &sql.domains, org)?,
        false => Vec::new(),
    };
    Ok(Tally::new(plan, usage, verified))
}

#[async_trait]
impl PlanStore for SqliteStore {
    async fn list_plans(&self) -> Result<Vec<Plan>> {
        self.call(|conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.plans.list)?;
            let plans = stmt.query_map([], plan_from_row)?;
            Ok(plans.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn plan(&self, name: &str) -> Result<Option<Plan>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            Ok(conn
                .prepare_cached(&sql.plans.get)?
                .query_row(params![name], plan_from_row)
                .optional()?)
        })
        .await
    }

    async fn put_plan(&self, plan: &Plan) -> Result<()> {
        let plan = plan.clone();
        self.call(move |conn, sql| {
            let count = |n: Option<u64>| n.map(|n| n.min(i64::MAX as u64) as i64);
            conn.prepare_cached(&sql.plans.put)?.execute(params![
                plan.name,
                count(plan.messages_per_day),
                count(plan.messages_per_month),
                plan.min_interval_seconds,
                plan.max_retries,
                plan.verify_domains,
            ])?;
            Ok(())
        })
        .await
    }

    async fn delete_plan(&self, name: &str) -> Result<PlanDeleted> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let users: i64 = tx
                .prepare_cached(&sql.plans.users)?
                .query_row(params![name], |r| r.get(0))?;
            let exists = tx
                .prepare_cached(&sql.plans.get)?
                .query_row(params![name], plan_from_row)
                .optional()?
                .is_some();
            let outcome = if !exists {
                PlanDeleted::NotFound
            } else if users > 0 || name == UNLIMITED {
                PlanDeleted::InUse(users.max(0) as u64)
            } else {
                tx.prepare_cached(&sql.plans.delete)?
                    .execute(params![name])?;
                PlanDeleted::Deleted
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn organization_plan(&self, org: OrgId) -> Result<Plan> {
        self.call(move |conn, sql| plan_of(conn, &sql.plans, org))
            .await
    }

    async fn set_organization_plan(&self, org: OrgId, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let changed = conn
                .prepare_cached(&sql.plans.set_org)?
                .execute(params![org.0.to_string(), name])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn usage(&self, org: OrgId) -> Result<Usage> {
        self.call(move |conn, sql| usage_of(conn, &sql.plans, org))
            .await
    }
}
