//! Reading jobs and their executions. Creating jobs and changing their
//! status is the lease engine's ([`super::LeaseStore`]).

use super::{Page, PageRequest, Result};
use crate::account::OrgId;
use async_trait::async_trait;
use chronos_proto::{Execution, Job, JobStatus};
use uuid::Uuid;

/// The columns both stores select for a job and an execution (the row
/// readers look them up by name).
pub(crate) const JOB_COLUMNS: &str = "id, name, handler, payload, status, queue, concurrency_key, priority, \
     delivery, run_at, attempt, max_retries, timeout_seconds, schedule_id, fire_at, \
     idempotency_key, result, last_error, created_at, updated_at, finished_at, held_reason, \
     fan_out_id, callback_queue_id";
pub(crate) const EXECUTION_COLUMNS: &str = "id, job_id, attempt, status, worker_id, \
     http_status, response_body, response_truncated, response_body_encoding, error, started_at, \
     finished_at";

/// A stored `response_body_encoding`, both stores: NULL is UTF-8.
pub(crate) fn body_encoding(column: Option<&str>) -> chronos_proto::BodyEncoding {
    column
        .and_then(chronos_proto::BodyEncoding::parse)
        .unwrap_or_default()
}

/// Which jobs a schedule filter selects.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ScheduleFilter {
    #[default]
    Any,
    /// Only one-off jobs (`?schedule_id=null`).
    None,
    Id(Uuid),
}

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Any of these statuses; empty means all.
    pub statuses: Vec<JobStatus>,
    pub handler: Option<String>,
    pub queue: Option<String>,
    pub schedule: ScheduleFilter,
}

/// Whose executions [`JobStore::executions`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionsOf {
    Job(Uuid),
    /// Every job the schedule created.
    Schedule(Uuid),
}

impl ExecutionsOf {
    pub fn id(self) -> Uuid {
        match self {
            ExecutionsOf::Job(id) | ExecutionsOf::Schedule(id) => id,
        }
    }
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    async fn job(&self, org: OrgId, id: Uuid) -> Result<Option<Job>>;
    /// Newest first.
    async fn list_jobs(
        &self,
        org: OrgId,
        filter: &JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>>;
    /// The attempts of a job, or of the jobs a schedule created, newest
    /// first; `None` if the organization has no such job or schedule.
    async fn executions(
        &self,
        org: OrgId,
        of: ExecutionsOf,
        page: PageRequest,
    ) -> Result<Option<Page<Execution>>>;
}
