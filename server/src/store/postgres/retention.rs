//! Retention: the periods, and deleting finished jobs past them.

use super::{PgStore, opt_ts};
use crate::job::state::FINISHED;
use crate::store::retention::{Cutoffs, KEPT_PER_SCHEDULE, OUTCOME_PUBLISHED};
use crate::store::{
    Clock, Result, RetentionPeriods, RetentionSettings, RetentionStore, status_test,
};
use async_trait::async_trait;
use chronos_proto::JobStatus;
use tokio_postgres::Row;

const PERIOD_COLUMNS: &str = "completed_seconds, failed_seconds, cancelled_seconds";

/// For the deletion's transaction. The planner prices the look at each
/// schedule's newest jobs high enough (it cannot know the walk stops after
/// a batch) that PostgreSQL would JIT-compile the statement: hundreds of
/// milliseconds of CPU for a batch that takes a few.
const NO_JIT: &str = "SET LOCAL jit = off";

pub(super) struct Sql {
    read: String,
    write: String,
    delete: String,
    delete_fan_outs: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        Sql {
            read: format!("SELECT {PERIOD_COLUMNS}, set_at FROM retention"),
            write: clock.pg(format!(
                "UPDATE retention
                 SET completed_seconds = $1, failed_seconds = $2, cancelled_seconds = $3,
                     set_at = now()
                 RETURNING {PERIOD_COLUMNS}, set_at"
            )),
            // Candidates are found by walking the primary key from the
            // oldest id up to $1 and filtering: no index on `jobs` serves
            // retention, as every index costs each status change of the
            // lease path. A schedule's job is kept unless it is older than
            // the schedule's KEPT_PER_SCHEDULE-th newest (none: fewer, all
            // kept), found on `jobs_by_schedule`. SKIP LOCKED: a row the
            // lease path holds is left for a later batch, neither side waits.
            // Executions go with their job (ON DELETE CASCADE).
            delete: format!(
                "WITH doomed AS (
                     SELECT j.id FROM jobs j
                     WHERE j.id < $1
                       AND j.status {finished}
                       AND j.finished_at < CASE j.status
                               WHEN '{completed}' THEN $2::timestamptz
                               WHEN '{failed}' THEN $3::timestamptz
                               WHEN '{cancelled}' THEN $4::timestamptz END
                       AND {outcome_published}
                       AND (j.schedule_id IS NULL OR j.id < (
                               SELECT k.id FROM jobs k
                               WHERE k.organization_id = j.organization_id
                                 AND k.schedule_id = j.schedule_id
                               ORDER BY k.id DESC OFFSET {newest_kept} LIMIT 1))
                     ORDER BY j.id
                     LIMIT $5
                     FOR UPDATE SKIP LOCKED
                 )
                 DELETE FROM jobs WHERE id IN (SELECT id FROM doomed)",
                finished = status_test(FINISHED),
                completed = JobStatus::Completed.as_str(),
                failed = JobStatus::Failed.as_str(),
                cancelled = JobStatus::Cancelled.as_str(),
                newest_kept = KEPT_PER_SCHEDULE - 1,
                outcome_published = OUTCOME_PUBLISHED,
            ),
            delete_fan_outs: "DELETE FROM fan_outs WHERE id IN (
                                  SELECT id FROM fan_outs WHERE finished_at < $1
                                  ORDER BY finished_at LIMIT $2)"
                .into(),
        }
    }
}

/// Gives a store created from nothing the default periods, in the migration
/// runner's transaction (`set_at` stays NULL: no operator chose them).
pub(super) async fn start_with_defaults(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let [completed, failed, cancelled] = RetentionPeriods::DEFAULT.as_seconds()?;
    tx.execute(
        "UPDATE retention SET completed_seconds = $1, failed_seconds = $2, cancelled_seconds = $3",
        &[&completed, &failed, &cancelled],
    )
    .await?;
    Ok(())
}

fn periods_from_row(row: &Row) -> Result<RetentionPeriods> {
    let col = |c: &str| -> Result<Option<i64>> { Ok(row.try_get(c)?) };
    RetentionPeriods::from_seconds([
        col("completed_seconds")?,
        col("failed_seconds")?,
        col("cancelled_seconds")?,
    ])
}

fn settings_from_row(row: &Row) -> Result<RetentionSettings> {
    Ok(RetentionSettings {
        periods: periods_from_row(row)?,
        set_at: opt_ts(row, "set_at")?,
    })
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn retention(&self) -> Result<RetentionSettings> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.retention.read).await?;
        settings_from_row(&client.query_one(&stmt, &[]).await?)
    }

    async fn set_retention(&self, periods: RetentionPeriods) -> Result<RetentionSettings> {
        let [completed, failed, cancelled] = periods.as_seconds()?;
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.retention.write,
                &[&completed, &failed, &cancelled],
            )
            .await?;
        settings_from_row(&row)
    }

    async fn delete_expired(&self, cutoffs: &Cutoffs, batch: u32) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.retention.delete).await?;
        let tx = client.transaction().await?;
        tx.batch_execute(NO_JIT).await?;
        let deleted = tx
            .execute(
                &stmt,
                &[
                    &cutoffs.below_id,
                    &cutoffs.completed.map(|t| t.0),
                    &cutoffs.failed.map(|t| t.0),
                    &cutoffs.cancelled.map(|t| t.0),
                    &i64::from(batch),
                ],
            )
            .await?;
        let fan_outs = match cutoffs.fan_outs() {
            Some(before) => {
                tx.execute(
                    &self.sql.retention.delete_fan_outs,
                    &[&before.0, &i64::from(batch)],
                )
                .await?
            }
            None => 0,
        };
        tx.commit().await?;
        Ok(deleted + fan_outs)
    }
}
