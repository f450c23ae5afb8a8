//! The error envelope: every 4xx and 5xx answer has this shape.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `{"error": {...}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine code in snake_case, e.g. `validation_failed`.
    #[cfg_attr(feature = "openapi", schema(example = "validation_failed"))]
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// The request field at fault, as a dotted path (`delay.unit`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `idempotency_key_conflict`: the job that already holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// For internal errors: the id under which the server logged the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// For `quota_exceeded`: the window spent, `day` (UTC) or `month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// For `quota_exceeded`: the window's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// For `quota_exceeded`: what the window has used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// For `quota_exceeded`: when the window ends and the next begins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, nullable = false))]
    pub resets_at: Option<crate::Timestamp>,
    /// For `unverified_domain_limit`: the domain whose daily limit is
    /// spent (its registrable domain, which verifying lifts the limit of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl ErrorDetail {
    /// An error with only a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDetail {
            code: code.into(),
            message: message.into(),
            ..ErrorDetail::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every envelope in the shared vectors reads and writes back as given.
    #[test]
    fn vectors_round_trip() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../vectors/errors.json")).unwrap();
        for v in vectors["errors"].as_array().unwrap() {
            let body: ErrorBody = serde_json::from_value(v["body"].clone()).unwrap();
            assert_eq!(serde_json::to_value(&body).unwrap(), v["body"]);
        }
    }
}
