//! Queues: their settings and state (`queue/` says what they mean).

use super::flow::unfinished_of_queue;
use super::{Result, StoreError};
use crate::account::OrgId;
use crate::queue::{FailureMode, QueueOrdering, QueueRecord, QueueSettings, QueueState, RateLimit};
use async_trait::async_trait;
use chronos_proto::{CallbackOn, QueueKey, Timestamp};
use uuid::Uuid;

/// The columns both stores select for a queue.
pub(crate) const QUEUE_COLUMNS: &str = "id, name, concurrency, retries, ordering, failure_mode, \
     status, blocked, rate_limit, rate_period_seconds, key_concurrency, key_rate_limit, \
     key_rate_period_seconds, signing_secret_id, default_target_url, default_target_group_id, \
     callback_queue_id, callback_on, created_at, updated_at";

/// The settings' columns, in the order of [`settings_values`].
pub(crate) const SETTINGS_COLUMNS: &str = "concurrency, retries, ordering, failure_mode, \
     rate_limit, rate_period_seconds, key_concurrency, key_rate_limit, key_rate_period_seconds, \
     signing_secret_id, default_target_url, default_target_group_id, callback_queue_id, \
     callback_on";

/// One settings column's value, for either store to bind as its own type.
pub(crate) enum SettingValue {
    Count(Option<u32>),
    Text(Option<String>),
    Id(Option<Uuid>),
}

/// The settings as the values of [`SETTINGS_COLUMNS`], in order.
pub(crate) fn settings_values(s: &QueueSettings) -> Vec<SettingValue> {
    use SettingValue::{Count, Id, Text};
    vec![
        Count(s.concurrency),
        Count(Some(s.retries)),
        Text(Some(s.ordering.as_str().into())),
        Text(Some(s.failure_mode.as_str().into())),
        Count(s.rate.map(|r| r.limit)),
        Count(s.rate.map(|r| r.period_seconds)),
        Count(s.key_concurrency),
        Count(s.key_rate.map(|r| r.limit)),
        Count(s.key_rate.map(|r| r.period_seconds)),
        Id(s.signing_secret_id),
        Text(s.default_target_url.clone()),
        Id(s.default_target_group_id),
        Id(s.callback_queue_id),
        Text(Some(s.callback_on.as_str().into())),
    ]
}

/// The placeholders of [`SETTINGS_COLUMNS`], numbered from `first`, with
/// the store's `sigil` (`$` or `?`).
pub(crate) fn settings_placeholders(sigil: char, first: usize) -> String {
    let count = SETTINGS_COLUMNS.split(',').count();
    (first..first + count)
        .map(|i| format!("{sigil}{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Makes a queue, `active` and not blocked; `None` if the organization
    /// already has one of that name.
    async fn create_queue(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>>;
    async fn queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>>;
    /// The queue of this id, if it is the organization's.
    async fn queue_by_id(&self, org: OrgId, id: Uuid) -> Result<Option<QueueRecord>>;
    /// Every queue of the organization, by name.
    async fn list_queues(&self, org: OrgId) -> Result<Vec<QueueRecord>>;
    /// Replaces the settings; `None` if there is no such queue.
    async fn update_queue(
        &self,
        org: OrgId,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Option<QueueRecord>>;
    /// Pauses or resumes; `None` if there is no such queue.
    async fn set_queue_status(
        &self,
        org: OrgId,
        name: &str,
        status: QueueState,
    ) -> Result<Option<QueueRecord>>;
    /// Clears `blocked`; `None` if there is no such queue.
    async fn unblock_queue(&self, org: OrgId, name: &str) -> Result<Option<QueueRecord>>;
    /// Deletes a queue that holds no unfinished job and that no schedule
    /// (not archived) names, in one transaction with those checks.
    async fn delete_queue(&self, org: OrgId, name: &str) -> Result<DeleteQueue>;
    /// What a queue holds now: its unfinished jobs by status, the oldest
    /// queued job's due time, and the handler of the next job to start.
    async fn queue_counts(&self, org: OrgId, name: &str) -> Result<QueueCounts>;
    /// The busiest `limit` concurrency keys of a queue's unfinished jobs:
    /// most running first, then most waiting, then by key.
    async fn queue_keys(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<QueueKey>>;
    /// Up to `limit` of a queue's unfinished jobs (to cancel, one by one,
    /// through the lease engine).
    async fn unfinished_in_queue(&self, org: OrgId, name: &str, limit: u32) -> Result<Vec<Uuid>>;
}

/// The statements both stores read a queue's unfinished jobs with, from
/// the test of the organization (`org_test`, as [`unfinished_of_queue`]
/// takes it), the queue's placeholder, and the placeholder of a limit.
pub(crate) struct QueueJobsSql {
    /// How many: a queue that holds any is not deleted.
    pub holds: String,
    /// By status, with the oldest queued job's due time.
    pub counts: String,
    /// Up to the limit of their ids.
    pub unfinished: String,
    /// [`QueueStore::queue_keys`].
    pub keys: String,
}

impl QueueJobsSql {
    pub(crate) fn new(org_test: &str, queue: &str, limit: &str) -> Self {
        let unfinished = unfinished_of_queue(org_test, queue);
        let running = crate::store::status_test(crate::store::flow::RUNNING);
        QueueJobsSql {
            holds: format!("SELECT count(*) FROM jobs WHERE id IN ({unfinished})"),
            counts: format!(
                "SELECT status, count(*) AS n, min(run_at) AS oldest FROM jobs
                 WHERE id IN ({unfinished}) GROUP BY status"
            ),
            unfinished: format!(
                "SELECT id FROM jobs WHERE id IN ({unfinished}) ORDER BY id LIMIT {limit}"
            ),
            keys: format!(
                "SELECT concurrency_key AS key,
                        sum(CASE WHEN status {running} THEN 1 ELSE 0 END) AS running,
                        sum(CASE WHEN status {running} THEN 0 ELSE 1 END) AS waiting
                 FROM jobs WHERE id IN ({unfinished}) AND concurrency_key IS NOT NULL
                 GROUP BY concurrency_key
                 ORDER BY running DESC, waiting DESC, key
                 LIMIT {limit}"
            ),
        }
    }
}

/// What became of a request to delete a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteQueue {
    Deleted,
    NotFound,
    /// It holds this many unfinished jobs.
    HoldsJobs(u64),
    /// This schedule names it.
    NamedBySchedule(Uuid),
}

/// What a queue holds now ([`QueueStore::queue_counts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub running: u64,
    pub queued: u64,
    pub scheduled: u64,
    pub oldest_queued_at: Option<Timestamp>,
    /// The handler of the job the queue starts next (its head: a started
    /// job waiting for its retry first), if it is a pull job.
    pub head_handler: Option<String>,
}

/// A queue's row as either store reads it, before its words and counts
/// are checked: [`QueueColumns::record`] is the one place that does.
pub(crate) struct QueueColumns {
    pub id: Uuid,
    pub name: String,
    pub concurrency: Option<i64>,
    pub retries: i64,
    pub ordering: String,
    pub failure_mode: String,
    pub status: String,
    pub blocked: bool,
    pub rate_limit: Option<i64>,
    pub rate_period_seconds: Option<i64>,
    pub key_concurrency: Option<i64>,
    pub key_rate_limit: Option<i64>,
    pub key_rate_period_seconds: Option<i64>,
    pub signing_secret_id: Option<Uuid>,
    pub default_target_url: Option<String>,
    pub default_target_group_id: Option<Uuid>,
    pub callback_queue_id: Option<Uuid>,
    pub callback_on: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn corrupt(col: &str, v: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("queues.{col} = {v}"))
}

fn word<T>(col: &str, s: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(s).ok_or_else(|| corrupt(col, s))
}

fn count(col: &str, v: Option<i64>) -> Result<Option<u32>> {
    v.map(|v| u32::try_from(v).map_err(|_| corrupt(col, v)))
        .transpose()
}

/// A limit and its period, each named by its column; the table's CHECK
/// keeps them set together.
fn rate(limit: (&str, Option<i64>), period: (&str, Option<i64>)) -> Result<Option<RateLimit>> {
    Ok(
        match (count(limit.0, limit.1)?, count(period.0, period.1)?) {
            (Some(limit), Some(period_seconds)) => Some(RateLimit {
                limit,
                period_seconds,
            }),
            _ => None,
        },
    )
}

impl QueueColumns {
    pub(crate) fn record(self) -> Result<QueueRecord> {
        Ok(QueueRecord {
            id: self.id,
            name: self.name,
            settings: QueueSettings {
                concurrency: count("concurrency", self.concurrency)?,
                retries: count("retries", Some(self.retries))?.unwrap_or_default(),
                ordering: word("ordering", &self.ordering, QueueOrdering::parse)?,
                failure_mode: word("failure_mode", &self.failure_mode, FailureMode::parse)?,
                rate: rate(
                    ("rate_limit", self.rate_limit),
                    ("rate_period_seconds", self.rate_period_seconds),
                )?,
                key_concurrency: count("key_concurrency", self.key_concurrency)?,
                key_rate: rate(
                    ("key_rate_limit", self.key_rate_limit),
                    ("key_rate_period_seconds", self.key_rate_period_seconds),
                )?,
                signing_secret_id: self.signing_secret_id,
                default_target_url: self.default_target_url,
                default_target_group_id: self.default_target_group_id,
                callback_queue_id: self.callback_queue_id,
                callback_on: word("callback_on", &self.callback_on, CallbackOn::parse)?,
            },
            status: word("status", &self.status, QueueState::parse)?,
            blocked: self.blocked,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
