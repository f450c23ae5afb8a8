//! The envelope of every list response.

use serde::{Deserialize, Serialize};

/// One page of a list. `next_cursor` is opaque: pass it back as `?cursor=`
/// to get the next page; `null` means this is the last page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}
