//! Endpoint health: each scheme, host and port an organization's push
//! deliveries go to, whether it has been failing, and whether its
//! deliveries are held.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How an endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    /// Its last attempt got an answer (or it has had none yet).
    Healthy,
    /// Its last attempts failed, not yet for long enough to disable it.
    Failing,
    /// It failed for longer than the server's threshold with no success:
    /// its deliveries are held (`held_reason: "endpoint_disabled"`) until
    /// it is enabled.
    Disabled,
}

words!(EndpointStatus {
    Healthy = "healthy",
    Failing = "failing",
    Disabled = "disabled",
});

/// `GET /v1/endpoints`: one endpoint of the organization's push
/// deliveries and its health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub id: Uuid,
    /// `scheme://host:port`.
    pub url: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub status: EndpointStatus,
    /// Since when it has been in this status.
    pub since: Timestamp,
    /// Timeouts, connection errors and 5xx, 408 and 429 answers in a row.
    pub consecutive_failures: u64,
    pub last_failure_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Why it was disabled, when it is.
    pub disabled_reason: Option<String>,
    /// Deliveries held until it is enabled.
    pub held_deliveries: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /v1/endpoints/{id}/enable`: the endpoint, and how many held
/// deliveries were released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointEnabled {
    pub endpoint: Endpoint,
    pub released: u64,
}
