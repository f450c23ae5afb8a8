//! The one error type of the SDK, and how an HTTP answer becomes one.

use chronos_proto::ErrorBody;
use uuid::Uuid;

/// Everything a [`Client`](crate::Client) call, or reading a callback
/// ([`callback`](crate::callback)), can fail with.
///
/// A refusal by the server is [`Error::Api`], carrying the server's stable
/// `code` (see `docs/api.md`); the helpers below answer the common questions
/// without matching on strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with its `{"error": {...}}` envelope.
    #[error("{code} ({status}): {message}")]
    #[non_exhaustive]
    Api {
        /// The HTTP status, e.g. 404.
        status: u16,
        /// The server's stable machine code in snake_case, e.g. `not_found`.
        code: String,
        /// A sentence a person can act on.
        message: String,
        /// The request field at fault (`delay.unit`), when one is.
        field: Option<String>,
        /// For `idempotency_key_conflict`: the job that already holds the key.
        job_id: Option<Uuid>,
        /// For `internal_error`: the id under which the server logged the cause.
        error_id: Option<String>,
    },
    /// The request got no answer: connection refused, timeout, TLS failure.
    #[error("no answer from the Chronos server: {0}")]
    Http(#[source] reqwest::Error),
    /// An answer whose body is not what the API documents (e.g. a proxy's
    /// HTML error page, or a server of another version).
    #[error("unexpected answer from the Chronos server (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with the body.
        message: String,
    },
    /// The base URL given to the client is not an http(s) URL with a host.
    #[error("invalid Chronos base URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A value that must travel in an HTTP header (the API key, the user
    /// agent) holds characters headers cannot carry. The value is not shown,
    /// as it may be a secret.
    #[error("the {header} contains characters that cannot be sent in an HTTP header")]
    InvalidHeader {
        /// Which value: `API key` or `user agent`.
        header: &'static str,
    },
    /// The worker's WebSocket failed (a refusal at the upgrade is an
    /// [`Error::Api`], with the server's code and status, as for REST).
    #[error("worker connection: {0}")]
    WebSocket(String),
    /// The server refused the worker's `hello` (e.g. `unsupported_protocol`).
    #[error("the server refused this worker: {code}: {message}")]
    Rejected {
        /// The server's error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The worker was misconfigured or hit something it cannot go on from.
    #[error("worker: {0}")]
    Worker(String),
    /// A value the call cannot take, refused before anything was sent: an
    /// id that is not a UUID, a body with a misspelt field, a job that is
    /// not running here. The bindings raise it as their language's own
    /// (`ValueError` in Python, `ChronosError` with code `invalid_argument`
    /// in Node).
    #[error("{argument}: {reason}")]
    InvalidArgument {
        /// The argument (or call) at fault, e.g. `id` or `extend`.
        argument: String,
        /// Why it was refused.
        reason: String,
    },
    /// A request said to come from Chronos whose signature does not verify
    /// with the secrets given: a header missing, another secret, a body
    /// changed on the way, or a timestamp outside the window (a replay).
    /// A receiver answers it 401 and acts on nothing.
    #[error("the request's Chronos signature does not verify: {0}")]
    InvalidSignature(String),
    /// A body that is not a Chronos callback (neither a delivery's outcome
    /// nor a fan-out's group callback).
    #[error("not a Chronos callback: {0}")]
    InvalidCallback(String),
}

impl Error {
    /// The server's error code (`not_found`, `lease_lost`, …), for [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Always a code: the server's (see [`Error::code`]), or one naming the
    /// kind of failure on this side: `unreachable` (no answer came),
    /// `invalid_argument` (see [`Error::InvalidArgument`]),
    /// `invalid_signature` and `invalid_callback` (a callback refused, see
    /// [`callback`](crate::callback)) or `client_error` (anything else). The
    /// Node and Python SDKs put it on their errors.
    pub fn code_or_kind(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::Http(_) => "unreachable",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::InvalidSignature(_) => "invalid_signature",
            Error::InvalidCallback(_) => "invalid_callback",
            _ => "client_error",
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid_argument(argument: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::InvalidArgument {
            argument: argument.into(),
            reason: reason.to_string(),
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The request field the server named as the culprit, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Api { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// True for `lease_lost`: the lease expired, was replaced, or its job was
    /// cancelled; the ack, fail or extend changed nothing.
    pub fn is_lease_lost(&self) -> bool {
        self.code() == Some("lease_lost")
    }

    /// True for `not_found`: no such job (or lease token) in this organization.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("not_found")
    }

    /// For `idempotency_key_conflict`, the id of the job that already holds
    /// the key; `None` for any other error.
    pub fn is_idempotency_conflict(&self) -> Option<Uuid> {
        match self {
            Error::Api { code, job_id, .. } if code == "idempotency_key_conflict" => *job_id,
            _ => None,
        }
    }

    /// Turns a non-2xx answer into [`Error::Api`], or [`Error::Decode`] when
    /// its body is not the error envelope.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Error::Api {
                status,
                code: error.code,
                message: error.message,
                field: error.field,
                job_id: error.job_id,
                error_id: error.error_id,
            },
            Err(e) => Error::Decode {
                status,
                message: format!(
                    "an error answer without the {{\"error\": {{...}}}} envelope ({e}): {}",
                    snippet(body)
                ),
            },
        }
    }
}

/// The start of a body, for messages: enough to recognize it, never a flood.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

impl Error {
    /// A WebSocket error; a refused upgrade reads like a refused request.
    pub(crate) fn from_ws(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as Ws;
        match e {
            Ws::Http(response) => Error::from_answer(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
            ),
            other => Error::WebSocket(other.to_string()),
        }
    }

    /// Errors a worker does not retry when connecting: a refused key or
    /// scope, a refused hello, a misconfiguration.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => {
                matches!(status, 400 | 401 | 403 | 404)
            }
            Error::Rejected { .. }
            | Error::InvalidUrl { .. }
            | Error::InvalidHeader { .. }
            | Error::InvalidArgument { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_becomes_an_api_error() {
        let id = Uuid::now_v7();
        let body = format!(
            r#"{{"error":{{"code":"idempotency_key_conflict","message":"taken","job_id":"{id}"}}}}"#
        );
        let err = Error::from_answer(409, body.as_bytes());
        assert_eq!(err.status(), Some(409));
        assert_eq!(err.code(), Some("idempotency_key_conflict"));
        assert_eq!(err.is_idempotency_conflict(), Some(id));
        assert!(!err.is_not_found());
        assert_eq!(err.to_string(), "idempotency_key_conflict (409): taken");
    }

    #[test]
    fn other_bodies_are_decode_errors() {
        let err = Error::from_answer(502, b"<html>Bad Gateway</html>");
        assert!(matches!(err, Error::Decode { status: 502, .. }), "{err}");
        assert_eq!(err.code(), None);
        assert_eq!(err.status(), Some(502));
        assert!(err.to_string().contains("Bad Gateway"), "{err}");
        let err = Error::from_answer(500, b"");
        assert!(err.to_string().contains("(empty body)"), "{err}");
    }

    #[test]
    fn every_error_has_a_code() {
        let api = Error::from_answer(404, br#"{"error":{"code":"not_found","message":"no"}}"#);
        assert_eq!(api.code_or_kind(), "not_found");
        let invalid = Error::invalid_argument("id", "not a UUID");
        assert_eq!(invalid.code_or_kind(), "invalid_argument");
        assert_eq!(invalid.to_string(), "id: not a UUID");
        assert_eq!(Error::Worker("x".into()).code_or_kind(), "client_error");
        let refused = Error::InvalidSignature("no Chronos-Signature header".into());
        assert_eq!(refused.code_or_kind(), "invalid_signature");
        assert_eq!(
            Error::InvalidCallback("x".into()).code_or_kind(),
            "invalid_callback"
        );
        assert_eq!(Error::from_answer(502, b"").code_or_kind(), "client_error");
    }

    #[test]
    fn snippets_are_cut() {
        let long = "é".repeat(1000);
        let s = snippet(long.as_bytes());
        assert!(s.ends_with('…'));
        assert!(s.chars().count() < 210);
    }
}
