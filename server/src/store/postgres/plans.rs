//! Plans, the organizations on them, and the usage counts jobs raise.

use super::PgStore;
use crate::account::OrgId;
use crate::account::plans::{Plan, QuotaExceeded, Tally, UNLIMITED, Usage};
use crate::store::plans::PLAN_COLUMNS;
use crate::store::{Clock, PlanDeleted, PlanStore, Result, StoreError};
use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

pub(super) struct Sql {
    list: String,
    get: String,
    put: String,
    delete: String,
    of_org: String,
    set_org: String,
    usage: String,
    lock_usage: String,
    add_usage: String,
    limited: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        // The day and month windows of the store's now, as dates.
        let windows = "(now() AT TIME ZONE 'UTC')::date AS day,
                       date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month";
        Sql {
            list: format!("SELECT {PLAN_COLUMNS} FROM plans ORDER BY name"),
            get: format!("SELECT {PLAN_COLUMNS} FROM plans WHERE name = $1"),
            put: clock.pg(
                "INSERT INTO plans (name, messages_per_day, messages_per_month,
                     min_interval_seconds, max_retries, verify_domains)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name) DO UPDATE SET
                     messages_per_day = EXCLUDED.messages_per_day,
                     messages_per_month = EXCLUDED.messages_per_month,
                     min_interval_seconds = EXCLUDED.min_interval_seconds,
                     max_retries = EXCLUDED.max_retries,
                     verify_domains = EXCLUDED.verify_domains,
                     updated_at = now()"
                    .into(),
            ),
            // Locks out a concurrent assignment: a plan is never deleted
            // from under an organization put on it.
            delete: "WITH users AS (
                         SELECT count(*) AS n FROM organizations WHERE plan = $1
                     ), gone AS (
                         DELETE FROM plans WHERE name = $1 AND name <> 'unlimited'
                           AND (SELECT n FROM users) = 0
                         RETURNING name
                     )
                     SELECT (SELECT n FROM users) AS users,
                            EXISTS (SELECT 1 FROM gone) AS deleted,
                            EXISTS (SELECT 1 FROM plans WHERE name = $1) AS existed"
                .into(),
            of_org: format!(
                "SELECT {PLAN_COLUMNS} FROM plans
                 WHERE name = (SELECT plan FROM organizations WHERE id = $1)"
            ),
            set_org: "UPDATE organizations SET plan = $2
                      WHERE id = $1 AND EXISTS (SELECT 1 FROM plans WHERE name = $2)"
                .into(),
            usage: clock.pg(format!(
                "WITH w AS (SELECT {windows}, now() AS at)
                 SELECT w.at,
                        coalesce((SELECT used FROM usage_counts
                                  WHERE organization_id = $1 AND period = 'day'
                                    AND starts_on = w.day), 0) AS day_used,
                        coalesce((SELECT used FROM usage_counts
                                  WHERE organization_id = $1 AND period = 'month'
                                    AND starts_on = w.month), 0) AS month_used
                 FROM w"
            )),
            // Both windows' rows, made if new and locked till commit: a
            // second server counting for the organization waits here.
            lock_usage: clock.pg(format!(
                "WITH w AS (SELECT {windows}, now() AS at), made AS (
                     INSERT INTO usage_counts (organization_id, period, starts_on, used)
                     SELECT $1::uuid, 'day', day, 0 FROM w
                     UNION ALL SELECT $1::uuid, 'month', month, 0 FROM w
                     ON CONFLICT (organization_id, period, starts_on)
                         DO UPDATE SET used = usage_counts.used
                     RETURNING period, used
                 )
                 SELECT w.at, w.day, w.month,
                        (SELECT used FROM made WHERE period = 'day') AS day_used,
                        (SELECT used FROM made WHERE period = 'month') AS month_used
                 FROM w"
            )),
            add_usage: "UPDATE usage_counts SET used = used + $4
                        WHERE organization_id = $1
                          AND ((period = 'day' AND starts_on = $2)
                               OR (period = 'month' AND starts_on = $3))"
                .into(),
            limited: format!(
                "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1 AND plan <> '{UNLIMITED}')"
            ),
        }
    }
}

fn plan_from_row(row: &Row) -> Result<Plan> {
    let count = |name: &str| -> Result<Option<u64>> {
        Ok(row
            .try_get::<_, Option<i64>>(name)?
            .map(|n| n.max(0) as u64))
    };
    let small = |name: &str| -> Result<Option<u32>> {
        Ok(row
            .try_get::<_, Option<i32>>(name)?
            .map(|n| n.max(0) as u32))
    };
    Ok(Plan {
        name: row.try_get("name")?,
        messages_per_day: count("messages_per_day")?,
        messages_per_month: count("messages_per_month")?,
        min_interval_seconds: small("min_interval_seconds")?,
        max_retries: small("max_retries")?,
        verify_domains: row.try_get("verify_domains")?,
    })
}

/// `day_used`, `month_used` and `at` (the store's now).
fn usage_from_row(row: &Row) -> Result<Usage> {
    Ok(Usage {
        day: row.try_get::<_, i64>("day_used")?.max(0) as u64,
        month: row.try_get::<_, i64>("month_used")?.max(0) as u64,
        at: super::ts(row.try_get("at")?),
    })
}

/// An organization's counts, locked in the caller's transaction until it
/// commits, with the windows they belong to.
struct Locked {
    usage: Usage,
    day: NaiveDate,
    month: NaiveDate,
}

/// The organization's plan, read in the caller's transaction.
pub(super) async fn plan_on(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
) -> Result<Plan> {
    let stmt = client.prepare_cached(&store.sql.plans.of_org).await?;
    match client.query_opt(&stmt, &[&org.0]).await? {
        Some(row) => plan_from_row(&row),
        None => Err(StoreError::Other(format!(
            "organization {} has no plan (or is gone)",
            org.0
        ))),
    }
}

/// Whether the organization is on a plan other than `unlimited`.
pub(super) async fn limited(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
) -> Result<bool> {
    let stmt = client.prepare_cached(&store.sql.plans.limited).await?;
    Ok(client.query_one(&stmt, &[&org.0]).await?.get(0))
}

/// Locks the organization's counts for the windows of now (in the caller's
/// transaction).
async fn lock_usage(store: &PgStore, client: &impl GenericClient, org: OrgId) -> Result<Locked> {
    let stmt = client.prepare_cached(&store.sql.plans.lock_usage).await?;
    let row = client.query_one(&stmt, &[&org.0]).await?;
    Ok(Locked {
        usage: usage_from_row(&row)?,
        day: row.try_get("day")?,
        month: row.try_get("month")?,
    })
}

/// Adds `n` jobs to the counts of `day` and `month`, locked by
/// [`lock_usage`].
async fn add_usage(
    store: &PgStore,
    client: &impl GenericClient,
    org: OrgId,
    day: NaiveDate,
    month: NaiveDate,
    n: u64,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let stmt = client.prepare_cached(&store.sql.plans.add_usage).await?;
    client
        .execute(&stmt, &[&org.0, &day, &month, &(n as i64)])
        .await?;
    Ok(())
}

/// One transaction's spending of one organization's plan: a [`Tally`] of
/// counts locked until the transaction ends (when the plan counts), taken
/// by [`Budget::room`] and written by [`Budget::close`]. The organization's
/// row of counts is the lock every count of it is taken under, its
/// domains' included.
pub(super) struct Budget {
    org: OrgId,
    pub tally: Tally,
    /// The windows the locked counts are of.
    locked: Option<(NaiveDate, NaiveDate)>,
}

impl Budget {
    /// Reads the organization's plan and, if it counts, locks its counts.
    pub async fn open(store: &PgStore, client: &impl GenericClient, org: OrgId) -> Result<Self> {
        let plan = plan_on(store, client, org).await?;
        if !plan.counts() {
            return Ok(Budget {
                org,
                tally: Tally::uncounted(plan),
                locked: None,
            });
        }
        let locked = lock_usage(store, client, org).await?;
        let verified = match plan.verify_domains {
            true => super::domains::verified_on(store, client, org).await?,
            false => Vec::new(),
        };
        Ok(Budget {
            org,
            tally: Tally::new(plan, locked.usage, verified),
            locked: Some((locked.day, locked.month)),
        })
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    /// How many of `n` more jobs, pushing to `host` if they push, fit, and
    /// what refuses the rest if not all do; locks the day of the host's
    /// domain first if it counts and is not locked yet.
    pub async fn room(
        &mut self,
        store: &PgStore,
        client: &impl GenericClient,
        host: Option<&str>,
        n: u64,
    ) -> Result<(u64, Option<QuotaExceeded>)> {
        if let (Some(key), Some((day, _))) = (self.tally.unread_domain(host), self.locked) {
            let used = super::domains::lock_usage(store, client, self.org, &key, day).await?;
            self.tally.read_domain(key, used);
        }
        Ok(self.tally.room(host, n))
    }

    /// `n` jobs (pushing to `host`, if they push) were created; negative
    /// gives back room [`Budget::room`] gave and was not used.
    pub fn spend(&mut self, host: Option<&str>, n: i64) {
        self.tally.spend(host, n);
    }

    /// Writes what was spent to the counts.
    pub async fn close(self, store: &PgStore, client: &impl GenericClient) -> Result<()> {
        let Some((day, month)) = self.locked else {
            return Ok(());
        };
        add_usage(store, client, self.org, day, month, self.tally.spent()).await?;
        for (key, spent) in self.tally.domains_spent() {
            super::domains::add_usage(store, client, self.org, key, day, spent).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PlanStore for PgStore {
    async fn list_plans(&self) -> Result<Vec<Plan>> {
        let client = self.pool.get().await?;
        let rows = client.query(&self.sql.plans.list, &[]).await?;
        rows.iter().map(plan_from_row).collect()
    }

    async fn plan(&self, name: &str) -> Result<Option<Plan>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&self.sql.plans.get, &[&name]).await?;
        row.as_ref().map(plan_from_row).transpose()
    }

    async fn put_plan(&self, plan: &Plan) -> Result<()> {
        let client = self.pool.get().await?;
        let count = |n: Option<u64>| n.map(|n| n.min(i64::MAX as u64) as i64);
        let small = |n: Option<u32>| n.map(|n| n.min(i32::MAX as u32) as i32);
        client
            .execute(
                &self.sql.plans.put,
                &[
                    &plan.name,
                    &count(plan.messages_per_day),
                    &count(plan.messages_per_month),
                    &small(plan.min_interval_seconds),
                    &small(plan.max_retries),
                    &plan.verify_domains,
                ],
            )
            .await?;
        Ok(())
    }

    async fn delete_plan(&self, name: &str) -> Result<PlanDeleted> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Assignments wait while the plan is looked at and deleted.
        tx.execute("LOCK TABLE organizations IN SHARE ROW EXCLUSIVE MODE", &[])
            .await?;
        let row = tx.query_one(&self.sql.plans.delete, &[&name]).await?;
        tx.commit().await?;
        let users: i64 = row.try_get("users")?;
        Ok(if row.try_get("deleted")? {
            PlanDeleted::Deleted
        } else if !row.try_get::<_, bool>("existed")? {
            PlanDeleted::NotFound
        } else {
            PlanDeleted::InUse(users.max(0) as u64)
        })
    }

    async fn organization_plan(&self, org: OrgId) -> Result<Plan> {
        let client = self.pool.get().await?;
        plan_on(self, &client, org).await
    }

    async fn set_organization_plan(&self, org: OrgId, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        let changed = client
            .execute(&self.sql.plans.set_org, &[&org.0, &name])
            .await?;
        Ok(changed == 1)
    }

    async fn usage(&self, org: OrgId) -> Result<Usage> {
        let client = self.pool.get().await?;
        let row = client.query_one(&self.sql.plans.usage, &[&org.0]).await?;
        usage_from_row(&row)
    }
}
