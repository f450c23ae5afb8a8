//! Schedules' definitions. A scheduler pass's fires create jobs, so they
//! are the lease engine's ([`super::LeaseStore::fire_schedules`]).

use super::{Page, PageRequest, Result};
use crate::account::OrgId;
use crate::schedule::ScheduleRecord;
use async_trait::async_trait;
use chronos_proto::{ScheduleStatus, SkippedRun};
use uuid::Uuid;

/// The columns both stores select for a schedule (`s`), with its last
/// job's status (`lj`).
pub(crate) const SCHEDULE_COLUMNS: &str = "s.id, s.name, s.status, s.timing, s.timezone, \
     s.template, s.concurrency_key, s.catch_up, s.overlap, s.failure_notify, s.anchor_at, \
     s.next_run_at, s.waiting_fire_at, s.last_run_at, s.last_job_id, s.created_at, \
     s.updated_at, lj.status AS last_status";

#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    async fn insert_schedule(
        &self,
        org: OrgId,
        schedule: &ScheduleRecord,
    ) -> Result<ScheduleRecord>;
    async fn schedule(&self, org: OrgId, id: Uuid) -> Result<Option<ScheduleRecord>>;
    /// Newest first, optionally only those of one status.
    async fn list_schedules(
        &self,
        org: OrgId,
        status: Option<ScheduleStatus>,
        page: PageRequest,
    ) -> Result<Page<ScheduleRecord>>;
    /// Writes a schedule's definition, status and next run (not its last
    /// run, which only fires change); `None` if there is no such schedule.
    async fn update_schedule(
        &self,
        org: OrgId,
        schedule: &ScheduleRecord,
    ) -> Result<Option<ScheduleRecord>>;
    /// Deletes a schedule; the jobs it created stay. False if there was none.
    async fn delete_schedule(&self, org: OrgId, id: Uuid) -> Result<bool>;
    /// Records a job made for the schedule outside its timing (`trigger`)
    /// as its last run.
    async fn record_schedule_run(&self, org: OrgId, id: Uuid, job_id: Uuid) -> Result<()>;
    /// The fires of schedule `id` that made no job (its organization's
    /// quota was spent), newest first; `None` if there is no such schedule.
    async fn skipped_runs(
        &self,
        org: OrgId,
        id: Uuid,
        page: PageRequest,
    ) -> Result<Option<Page<SkippedRun>>>;
}

/// The skipped runs kept per schedule: the newest.
pub const SKIPPED_RUNS_KEPT: u32 = 100;
