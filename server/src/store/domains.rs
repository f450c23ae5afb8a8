//! Domains an organization proves it owns ([`crate::account::domains`]),
//! their checks, and the daily counts of jobs sent to domains it has not
//! verified (raised where jobs are inserted, in the same transaction).

use super::{Page, PageRequest, Result};
use crate::account::OrgId;
use async_trait::async_trait;
use chronos_proto::{DomainStatus, Timestamp};
use std::time::Duration;
use uuid::Uuid;

/// The columns both stores select for a domain.
pub(crate) const DOMAIN_COLUMNS: &str = "id, domain, token, status, method, verified_at, \
     checked_at, failing_since, last_error, created_at";

/// How often a verified (or lapsed) domain is checked again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(86_400);

/// How long a verified domain may fail its checks before it lapses.
pub const LAPSE_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// A domain as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainRecord {
    pub id: Uuid,
    /// A normalized host name.
    pub domain: String,
    /// What the challenges must hold.
    pub token: String,
    pub status: DomainStatus,
    /// The challenge the last passing check found: `well_known`, `dns_txt`.
    pub method: Option<String>,
    pub verified_at: Option<Timestamp>,
    pub checked_at: Option<Timestamp>,
    /// The first of the failed checks since the last that passed.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// What a check of a domain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// A challenge held the token: `well_known` or `dns_txt`.
    Passed(&'static str),
    /// Neither did; why, for the owner to read.
    Failed(String),
}

#[async_trait]
pub trait DomainStore: Send + Sync + 'static {
    /// The organization's domain `domain`, made pending with `token` if it
    /// has none; true if it was made now.
    async fn add_domain(
        &self,
        org: OrgId,
        domain: &str,
        token: &str,
    ) -> Result<(DomainRecord, bool)>;

    async fn domain(&self, org: OrgId, id: Uuid) -> Result<Option<DomainRecord>>;

    async fn domain_named(&self, org: OrgId, domain: &str) -> Result<Option<DomainRecord>>;

    /// Newest first.
    async fn list_domains(&self, org: OrgId, page: PageRequest) -> Result<Page<DomainRecord>>;

    /// False if there was none.
    async fn delete_domain(&self, org: OrgId, id: Uuid) -> Result<bool>;

    /// The organization's verified domains' names.
    async fn verified_domains(&self, org: OrgId) -> Result<Vec<String>>;

    /// Writes a check's result, by the store's clock: passed, the domain is
    /// verified; failed, a verified domain failing for [`LAPSE_AFTER`]
    /// lapses. `None` if the domain is gone.
    async fn record_check(
        &self,
        org: OrgId,
        id: Uuid,
        result: &CheckResult,
    ) -> Result<Option<DomainRecord>>;

    /// Takes up to `n` verified or lapsed domains last checked
    /// [`RECHECK_EVERY`] ago or more, marking them checked now so another
    /// server does not take them too.
    async fn claim_rechecks(&self, n: u32) -> Result<Vec<(OrgId, DomainRecord)>>;

    /// Jobs sent today (UTC, by the store's clock) to the unverified
    /// domain `key` (a registrable name).
    async fn unverified_usage(&self, org: OrgId, key: &str) -> Result<u64>;
}
