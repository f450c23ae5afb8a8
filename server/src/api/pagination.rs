//! Cursor pagination, the same for every list: `?limit=` and `?cursor=`, and
//! `next_cursor` in the answer.

use super::error::ApiError;
use crate::store::PageRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
/// The document states it on every `limit` (`maximum = 100`);
/// `server/tests/contract.rs` holds the two equal.
pub const MAX_LIMIT: u32 = 100;

/// What an opaque cursor looks like: 16 bytes, URL-safe base64 without
/// padding (22 characters, the last one holding 2 bits), or empty for the
/// first page. Stated in the document on every `cursor`.
pub const CURSOR_PATTERN: &str = "^([A-Za-z0-9_-]{21}[AQgw])?$";

/// `?limit=&cursor=`, as every list takes them.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100. Default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; empty or absent for the first.
    #[param(pattern = "^([A-Za-z0-9_-]{21}[AQgw])?$")]
    pub cursor: Option<String>,
}

/// An opaque cursor: the last id of the previous page. Opaque so that its
/// content can change without breaking clients.
pub struct Cursor(pub Uuid);

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    pub fn decode(s: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        Uuid::from_slice(&bytes).ok().map(Cursor)
    }
}

/// The page a list asked for. `limit` and `cursor` have been held to the
/// document (1 to [`MAX_LIMIT`], [`CURSOR_PATTERN`]) before this runs.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    let before = match cursor {
        None | Some("") => None,
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| {
                    ApiError::validation("cursor", "cursor is not one this server gave out")
                })?
                .0,
        ),
    };
    Ok(PageRequest { limit, before })
}
