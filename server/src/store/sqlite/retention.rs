//! Retention: the periods, and deleting finished jobs past them.

use super::{NOW, SqliteStore, opt_ts};
use crate::job::state::FINISHED;
use crate::store::retention::{Cutoffs, KEPT_PER_SCHEDULE, OUTCOME_PUBLISHED};
use crate::store::{
    Clock, Result, RetentionPeriods, RetentionSettings, RetentionStore, status_test,
};
use async_trait::async_trait;
use chronos_proto::JobStatus;
use rusqlite::{Row, Transaction, params};

const PERIOD_COLUMNS: &str = "completed_seconds, failed_seconds, cancelled_seconds";

pub(super) struct Sql {
    read: String,
    write: String,
    delete: String,
    delete_fan_outs: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let c = |s: String| clock.sqlite(s);
        Sql {
            read: format!("SELECT {PERIOD_COLUMNS}, set_at FROM retention"),
            write: c(format!(
                "UPDATE retention
                 SET completed_seconds = ?1, failed_seconds = ?2, cancelled_seconds = ?3,
                     set_at = {NOW}
                 RETURNING {PERIOD_COLUMNS}, set_at"
            )),
            delete: format!(
                "DELETE FROM jobs WHERE id IN (
                     SELECT j.id FROM jobs j
                     WHERE j.id < ?1
                       AND j.status {finished}
                       AND j.finished_at < CASE j.status
                               WHEN '{completed}' THEN ?2
                               WHEN '{failed}' THEN ?3
                               WHEN '{cancelled}' THEN ?4 END
                       AND {outcome_published}
                       AND (j.schedule_id IS NULL OR j.id < (
                               SELECT k.id FROM jobs k
                               WHERE k.organization_id = j.organization_id
                                 AND k.schedule_id = j.schedule_id
                               ORDER BY k.id DESC LIMIT 1 OFFSET {newest_kept}))
                     ORDER BY j.id
                     LIMIT ?5)",
                finished = status_test(FINISHED),
                completed = JobStatus::Completed.as_str(),
                failed = JobStatus::Failed.as_str(),
                cancelled = JobStatus::Cancelled.as_str(),
                newest_kept = KEPT_PER_SCHEDULE - 1,
                outcome_published = OUTCOME_PUBLISHED,
            ),
            delete_fan_outs: "DELETE FROM fan_outs WHERE id IN (
                                  SELECT id FROM fan_outs WHERE finished_at < ?1
                                  ORDER BY finished_at LIMIT ?2)"
                .into(),
        }
    }
}

/// Gives a store created from nothing the default periods, in the migration
/// runner's transaction (`set_at` stays NULL: no operator chose them).
pub(super) fn start_with_defaults(tx: &Transaction<'_>) -> Result<()> {
    let [completed, failed, cancelled] = RetentionPeriods::DEFAULT.as_seconds()?;
    tx.execute(
        "UPDATE retention SET completed_seconds = ?1, failed_seconds = ?2, cancelled_seconds = ?3",
        params![completed, failed, cancelled,],
    )?;
    Ok(())
}

fn periods_from_row(row: &Row) -> Result<RetentionPeriods> {
    let col = |c: &str| -> Result<Option<i64>> { Ok(row.get(c)?) };
    RetentionPeriods::from_seconds([
        col("completed_seconds")?,
        col("failed_seconds")?,
        col("cancelled_seconds")?,
    ])
}

fn settings_from_row(row: &Row) -> Result<RetentionSettings> {
    Ok(RetentionSettings {
        periods: periods_from_row(row)?,
        set_at: opt_ts(row.get("set_at")?)?,
    })
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn retention(&self) -> Result<RetentionSettings> {
        self.call(|conn, sql| {
            conn.prepare_cached(&sql.retention.read)?
                .query_row([], |row| Ok(settings_from_row(row)))?
        })
        .await
    }

    async fn set_retention(&self, periods: RetentionPeriods) -> Result<RetentionSettings> {
        let values = periods.as_seconds()?;
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.retention.write)?
                .query_row(params![values[0], values[1], values[2]], |row| {
                    Ok(settings_from_row(row))
                })?
        })
        .await
    }

    /// One store thread runs every statement, the lease path's too: the
    /// caller keeps `batch` small, and each batch is one statement.
    async fn delete_expired(&self, cutoffs: &Cutoffs, batch: u32) -> Result<u64> {
        let cutoffs = *cutoffs;
        self.call(move |conn, sql| {
            let text = |t: Option<chronos_proto::Timestamp>| t.map(|t| t.to_string());
            let deleted = conn
                .prepare_cached(&sql.retention.delete)?
                .execute(params![
                    cutoffs.below_id.to_string(),
                    text(cutoffs.completed),
                    text(cutoffs.failed),
                    text(cutoffs.cancelled),
                    batch,
                ])?;
            let fan_outs = match cutoffs.fan_outs() {
                Some(before) => conn
                    .prepare_cached(&sql.retention.delete_fan_outs)?
                    .execute(params![before.to_string(), batch])?,
                None => 0,
            };
            Ok((deleted + fan_outs) as u64)
        })
        .await
    }
}
