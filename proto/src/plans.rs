//! Plans and usage: what an organization may use, and what it has used
//! (`GET /v1/usage`).

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// A plan's limits; `null` limits nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// `unlimited` unless the operator gave the organization another.
    pub name: String,
    /// Jobs that may be created a UTC day: one-off jobs, batch items,
    /// messages, schedule fires, fan-out deliveries, callbacks. Retries
    /// don't count.
    pub messages_per_day: Option<u64>,
    /// Jobs that may be created a calendar month (UTC).
    pub messages_per_month: Option<u64>,
    /// The shortest interval a schedule may fire at, in seconds.
    pub min_interval_seconds: Option<u32>,
    /// The most retries a job may have: more are capped to it.
    pub max_retries: Option<u32>,
    /// Whether push targets' domains must be verified.
    pub verify_domains: bool,
}

/// One window's count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageWindow {
    /// Jobs created in the window so far.
    pub used: u64,
    /// The plan's limit for the window; `null`: none.
    pub limit: Option<u64>,
    /// When the window ends and the count starts again from 0.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub resets_at: Timestamp,
}

/// `GET /v1/usage`: the organization's plan and what it has used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub plan: Plan,
    /// The UTC day.
    pub day: UsageWindow,
    /// The calendar month, in UTC.
    pub month: UsageWindow,
}
