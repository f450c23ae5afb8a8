//! Signing secrets: the keys push requests are signed with (HMAC-SHA256).

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A signing secret as listed: never its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningSecret {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    /// When the value was last replaced; `null` if never.
    pub rotated_at: Option<Timestamp>,
    /// Until when requests are also signed with the value before the last
    /// rotation; `null` when only the current value signs.
    pub previous_expires_at: Option<Timestamp>,
}

/// A signing secret with its value: the answer to creating or rotating it,
/// the only times the value is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealedSigningSecret {
    #[serde(flatten)]
    pub signing_secret: SigningSecret,
    /// `whsec_…`: the HMAC key, used as these bytes.
    pub secret: String,
}

/// `POST /v1/signing-secrets`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSigningSecret {
    /// A label for people: 1 to 255 characters, not blank, no control
    /// characters. Default `signing secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::label_or_null)
    )]
    pub name: Option<String>,
}

/// `POST /v1/signing-secrets/{id}/rotate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateSigningSecret {
    /// How long the old value keeps signing too, in seconds: 0 to 604800
    /// (7 days). Default 86400 (24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 604800, default = 86400)
    )]
    pub window_seconds: Option<u32>,
}
