//! Request extractors that answer bad input with our JSON errors (axum's own
//! answer 422 in plain text), naming the field at fault.

use super::contract::Operation;
use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest body of `POST /v1/jobs/batch`, in bytes.
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A JSON body, checked against the operation's request schema in the
/// OpenAPI document ([`super::contract`]) and then read as `T`. Unknown
/// fields, values the schema refuses and malformed JSON are 400s with the
/// field path; a body over `LIMIT` bytes is 413. (The route's
/// `DefaultBodyLimit` enforces the limit; `LIMIT` names it in the error.)
pub struct JsonBody<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S>
    for JsonBody<T, LIMIT>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (operation, bytes) = read_body::<S, LIMIT>(req, state).await?;
        decode(operation.as_deref(), &bytes).map(JsonBody)
    }
}

/// A JSON body a route may go without: an empty body (or `null`) is
/// `None`; anything else is read as [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (operation, bytes) = read_body::<S, MAX_BODY_BYTES>(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        decode(operation.as_deref(), &bytes).map(OptionalJsonBody)
    }
}

/// A body said to be JSON (or not said to be anything), read whole, with
/// the operation whose schema holds it.
async fn read_body<S: Send + Sync, const LIMIT: usize>(
    req: Request,
    state: &S,
) -> Result<(Option<Arc<Operation>>, Bytes), ApiError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(essence.to_string()));
        }
    }
    let operation = req.extensions().get::<Arc<Operation>>().cloned();
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: LIMIT }
        } else {
            ApiError::InvalidJson(format!("could not read the request body: {rejection}"))
        }
    })?;
    Ok((operation, bytes))
}

/// `bytes` held to the operation's schema (if the request reached one),
/// then read as `T`.
fn decode<T: DeserializeOwned>(operation: Option<&Operation>, bytes: &[u8]) -> Result<T, ApiError> {
    match operation {
        Some(op) => {
            let mut value: serde_json::Value = parse_json(bytes)?;
            op.check_body(&mut value)?;
            from_value(value)
        }
        None => parse_json(bytes),
    }
}

/// Deserializes `bytes`, turning serde's error into ours.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = field_path(err.path());
        let inner = err.into_inner();
        let message = strip_position(&inner.to_string());
        match inner.classify() {
            serde_json::error::Category::Data => data_error(path, message),
            _ => ApiError::InvalidJson(format!("the request body is not valid JSON: {message}")),
        }
    })
}

/// Reads one JSON value already parsed (an item of a batch) as `T`, with
/// the same errors as [`JsonBody`].
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = field_path(err.path());
        data_error(path, err.into_inner().to_string())
    })
}

/// Query parameters, with the same rules as [`JsonBody`]: unknown parameters
/// and bad values are 400s naming the parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|err| {
                let path = field_path(err.path());
                data_error(path, err.into_inner().to_string())
            })
    }
}

fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    let p = path.to_string();
    (p != "." && !p.is_empty()).then_some(p)
}

/// serde says "unknown field `x`, expected one of ..." for unknown fields; the
/// path then names the object that holds it, so add the field to it.
fn data_error(path: Option<String>, message: String) -> ApiError {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = match path {
            Some(p) => format!("{p}.{name}"),
            None => name.to_string(),
        };
        return ApiError::Validation {
            message: format!("{field} is required"),
            field: Some(field),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default().to_string();
        // The path names the field itself for plain structs, and the object
        // holding it for internally tagged enums.
        let field = match path {
            Some(p) if p == name || p.ends_with(&format!(".{name}")) => p,
            Some(p) => format!("{p}.{name}"),
            None => name,
        };
        return ApiError::UnknownField { message, field };
    }
    ApiError::Validation {
        message: match &path {
            Some(p) => format!("{p}: {message}"),
            None => message,
        },
        field: path,
    }
}

/// serde_json appends " at line 1 column 17"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
