//! Cursor pagination, the same for every list: `?limit=` and `?cursor=`, and
//! `next_cursor` in the answer.

use super::error::ApiError;
use crate::store::PageRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

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

pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
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
