//! Authentication: every `/v1` handler that touches data takes an [`Auth`],
//! which only exists for a valid, unrevoked key; [`Auth::require`] checks the
//! scope the handler needs. Once the key is known, the query is held to the
//! operation's contract ([`super::contract`]), so a caller without a key
//! learns nothing but 401.

use super::AppState;
use super::contract::Operation;
use super::error::ApiError;
use crate::account::OrgId;
use crate::account::keys::PresentedKey;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chronos_proto::Scope;
use std::sync::Arc;

/// The caller: a valid key and the organization it belongs to.
#[derive(Clone, Debug)]
pub struct Auth {
    pub org: OrgId,
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

impl Auth {
    /// 403 unless one of the key's scopes grants `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s.grants(needed)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(needed))
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing Authorization header; send `Authorization: Bearer chrns_…` with an API key"
                    .into(),
            )
        })?;
        let header = header.to_str().unwrap_or("");
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <API key>`".into())
            })?;
        let presented =
            PresentedKey::parse(token).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        let unknown =
            || ApiError::Unauthorized(format!("unknown API key chrns_{}_…", presented.id));
        let record = state
            .store
            .api_key(&presented.id)
            .await?
            .ok_or_else(unknown)?;
        if !presented.matches(&record.secret_sha256) {
            return Err(unknown());
        }
        if let Some(at) = record.revoked_at {
            return Err(ApiError::Unauthorized(format!(
                "API key chrns_{}_… was revoked at {at}",
                record.id
            )));
        }
        // Only now, for a caller we know, is the query held to the contract.
        if let Some(op) = parts.extensions.get::<Arc<Operation>>() {
            op.check_query(parts.uri.query().unwrap_or(""))?;
        }
        Ok(Auth {
            org: record.organization_id,
            key_id: record.id,
            scopes: record.scopes,
        })
    }
}
