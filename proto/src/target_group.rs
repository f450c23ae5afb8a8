//! Target groups (CronPilot's, seed 004): named sets of HTTPS endpoints. A
//! message naming a group (or published onto a queue whose default it is)
//! fans out: one delivery per member, each retried on its own.

use crate::{HttpMethod, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most characters of a group's name.
pub const MAX_GROUP_NAME_CHARS: usize = 200;

/// `POST /v1/target-groups` and `PATCH /v1/target-groups/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTargetGroup {
    /// Unique in the organization: 1 to 200 characters, not only white
    /// space.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            min_length = 1,
            max_length = 200,
            pattern = r"\S",
            example = "regional-webhooks",
            extensions(("x-messages" = json!({
                "minLength": "name is required (max 200 chars)",
                "maxLength": "name is required (max 200 chars)",
                "pattern": "name is required (max 200 chars)"
            })))
        )
    )]
    pub name: Option<String>,
}

/// A target group, as every target-group route answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetGroup {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /v1/target-groups/{id}/members`.
///
/// Beyond the schema: `target_url` must be `https` (400 `Only HTTPS
/// target_urls are allowed`; plain `http` only where the server allows
/// private targets) and a public address (422 `ssrf_blocked`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMember {
    /// The endpoint: an `https` URL of at most 2,048 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            required = true,
            format = "uri",
            min_length = 1,
            max_length = 2048,
            example = "https://eu.example.com/hook",
            extensions(("x-messages" = json!({
                "format": "Invalid target_url",
                "minLength": "target_url is required",
                "maxLength": "Invalid target_url"
            })))
        )
    )]
    pub target_url: Option<String>,
    /// Default `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// Sent with every delivery to this member. Sensitive ones
    /// (`Authorization`, `Cookie`, `X-Api-Key`, names holding `token` or
    /// `secret`…) are shown as `***redacted***` in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = crate::openapi::headers_or_null)
    )]
    pub headers: Option<BTreeMap<String, String>>,
}

/// One endpoint of a group. Sensitive headers read `***redacted***`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub id: Uuid,
    pub target_url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    pub created_at: Timestamp,
}
