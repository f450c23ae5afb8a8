//! Building requests about jobs: [`NewJob`] for the body that creates one,
//! [`ListJobs`] for the filters and page of a list.

use chronos_proto::{CreateJob, Delay, Delivery, JobStatus, Timestamp};
use serde_json::Value;
use uuid::Uuid;

/// A builder for [`CreateJob`], with the two required fields up front.
///
/// ```
/// use chronos::{NewJob, Delay, TimeUnit};
/// use serde_json::json;
///
/// let job = NewJob::new("Send follow-up", "send-email")
///     .payload(json!({"to": "ada@example.com"}))
///     .delay(Delay { value: 2, unit: TimeUnit::Hour })
///     .idempotency_key("follow-up-42")
///     .build();
/// assert_eq!(job.handler.as_deref(), Some("send-email"));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct NewJob(CreateJob);

impl NewJob {
    /// A job named `name` (a label for people) run by the handler `handler`.
    pub fn new(name: impl Into<String>, handler: impl Into<String>) -> Self {
        NewJob(CreateJob {
            name: Some(name.into()),
            handler: Some(handler.into()),
            ..CreateJob::default()
        })
    }

    /// Any JSON, handed to the handler as given.
    pub fn payload(mut self, payload: Value) -> Self {
        self.0.payload = Some(payload);
        self
    }

    /// Run after this long from now (instead of at once). Not with [`Self::scheduled_for`].
    pub fn delay(mut self, delay: Delay) -> Self {
        self.0.delay = Some(delay);
        self
    }

    /// Run at this moment, which must be in the future. Not with [`Self::delay`].
    pub fn scheduled_for(mut self, at: impl Into<Timestamp>) -> Self {
        self.0.scheduled_for = Some(at.into());
        self
    }

    /// 1 to 255 characters, unique per organization while the job exists:
    /// creating a second job with it fails with `idempotency_key_conflict`.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.0.idempotency_key = Some(key.into());
        self
    }

    /// Seconds one attempt may run (server default 30).
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.0.timeout = Some(seconds);
        self
    }

    /// Retries after the first attempt (server default 3; 0 = none).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.0.max_retries = Some(retries);
        self
    }

    /// The queue (server default `default`).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.0.queue = Some(queue.into());
        self
    }

    /// Groups the job with others of its queue for the queue's per-key
    /// limits (e.g. a customer's id): 1 to 255 characters. A job without
    /// one is not held by them.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.0.concurrency_key = Some(key.into());
        self
    }

    /// Higher runs first (server default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.0.priority = Some(priority);
        self
    }

    /// Pull (a worker leases it; the default) or push (the server calls a URL).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.0.delivery = Some(delivery);
        self
    }

    /// The request body, ready for [`Client::create_job`](crate::Client::create_job).
    pub fn build(self) -> CreateJob {
        self.0
    }
}

impl From<NewJob> for CreateJob {
    fn from(job: NewJob) -> Self {
        job.0
    }
}

/// Which jobs a list shows, by the schedule that made them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScheduleFilter {
    /// Every job, whatever made it.
    #[default]
    Any,
    /// One-off jobs only (no schedule): `schedule_id=null`.
    OneOff,
    /// The jobs of this schedule.
    Id(Uuid),
}

/// The filters and page of [`Client::list_jobs`](crate::Client::list_jobs).
/// Every filter is optional; jobs come newest first.
///
/// ```
/// use chronos::{JobStatus, ListJobs};
///
/// let query = ListJobs::new()
///     .status(JobStatus::Queued)
///     .status(JobStatus::Running)
///     .handler("send-email")
///     .limit(20);
/// assert_eq!(query.status, [JobStatus::Queued, JobStatus::Running]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct ListJobs {
    /// Jobs in any of these statuses; empty means all.
    pub status: Vec<JobStatus>,
    /// Jobs of this handler only.
    pub handler: Option<String>,
    /// Jobs in this queue only.
    pub queue: Option<String>,
    /// Jobs by the schedule that made them.
    pub schedule: ScheduleFilter,
    /// Page size, 1 to 100 (server default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListJobs {
    /// No filter: all jobs, first page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a status to those shown (jobs in any of them are listed).
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status.push(status);
        self
    }

    /// Jobs of this handler only.
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// Jobs in this queue only.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Jobs by the schedule that made them.
    pub fn schedule(mut self, schedule: ScheduleFilter) -> Self {
        self.schedule = schedule;
        self
    }

    /// Page size, 1 to 100.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continue after the page whose `next_cursor` this is.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The query parameters, as the server reads them.
    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.status.is_empty() {
            let statuses: Vec<&str> = self.status.iter().map(|s| s.as_str()).collect();
            pairs.push(("status", statuses.join(",")));
        }
        if let Some(h) = &self.handler {
            pairs.push(("handler", h.clone()));
        }
        if let Some(q) = &self.queue {
            pairs.push(("queue", q.clone()));
        }
        match self.schedule {
            ScheduleFilter::Any => {}
            ScheduleFilter::OneOff => pairs.push(("schedule_id", "null".into())),
            ScheduleFilter::Id(id) => pairs.push(("schedule_id", id.to_string())),
        }
        page_pairs(&mut pairs, self.limit, self.cursor.as_deref());
        pairs
    }
}

/// Adds `limit` and `cursor`, the page parameters every list takes.
pub(crate) fn page_pairs(
    pairs: &mut Vec<(&'static str, String)>,
    limit: Option<u32>,
    cursor: Option<&str>,
) {
    if let Some(limit) = limit {
        pairs.push(("limit", limit.to_string()));
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_become_query_pairs() {
        assert!(ListJobs::new().query_pairs().is_empty());
        let id = Uuid::now_v7();
        let q = ListJobs::new()
            .status(JobStatus::Queued)
            .status(JobStatus::Running)
            .handler("h")
            .queue("q")
            .schedule(ScheduleFilter::Id(id))
            .limit(5)
            .cursor("abc");
        assert_eq!(
            q.query_pairs(),
            vec![
                ("status", "queued,running".to_string()),
                ("handler", "h".into()),
                ("queue", "q".into()),
                ("schedule_id", id.to_string()),
                ("limit", "5".into()),
                ("cursor", "abc".into()),
            ]
        );
        assert_eq!(
            ListJobs::new()
                .schedule(ScheduleFilter::OneOff)
                .query_pairs(),
            vec![("schedule_id", "null".to_string())]
        );
    }

    #[test]
    fn new_job_sets_only_what_is_given() {
        let job = NewJob::new("n", "h").build();
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            serde_json::json!({"name": "n", "handler": "h"})
        );
        let keyed = NewJob::new("n", "h")
            .queue("q")
            .concurrency_key("customer-42")
            .build();
        assert_eq!(
            serde_json::to_value(&keyed).unwrap(),
            serde_json::json!({"name": "n", "handler": "h", "queue": "q", "concurrency_key": "customer-42"})
        );
    }
}
