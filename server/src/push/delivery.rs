//! One push attempt: build the request a leased push job describes, sign
//! it, send it, and say how the attempt ended — as an [`AttemptEnd`] the
//! lease engine applies like any worker's ack or fail.
//!
//! The rules: 2xx completes (the body, capped, becomes the result); 4xx
//! fails for good, except 408 and 429; 5xx, 408, 429, connection errors
//! and timeouts are retried with the engine's backoff, or after the
//! target's `Retry-After` on 429 and 503. Redirects are never followed: a
//! 3xx fails for good, naming where it pointed. A target that answers with
//! `Chronos-Retry: stop` fails the delivery for good, whatever the status
//! (but a 2xx, which completes it).

use super::guard::{self, GuardedResolver, TargetError, TargetPolicy};
use crate::account::OrgId;
use crate::endpoint::{EndpointKey, Report, Verdict};
use crate::job::state::Failure;
use crate::store::{AttemptEnd, DynStore, HttpResponse, Outcome};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chronos_proto::signature::{MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use chronos_proto::{BodyEncoding, Delivery, HttpTarget, LeasedJob, Timestamp};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use url::Url;
use uuid::Uuid;

/// The most of a response body kept, as the job's result and on its execution.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Connecting gives up after this (or the job's timeout, if shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `Chronos-Attempt`: which attempt this request is (1 for the first).
pub const ATTEMPT_HEADER: &str = "Chronos-Attempt";
/// `Chronos-Retry: stop` in an answer: no more attempts at this delivery.
pub const RETRY_HEADER: &str = "Chronos-Retry";

/// Sends push requests: one HTTP client (its connections pooled per host),
/// whose DNS resolver is the SSRF guard.
pub struct Deliverer {
    client: reqwest::Client,
    store: DynStore,
    policy: TargetPolicy,
}

impl Deliverer {
    pub fn new(store: DynStore, policy: TargetPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(GuardedResolver::new(policy)))
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("Chronos/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            client,
            store,
            policy,
        })
    }

    /// Makes one attempt at `leased`, and says how it ended, and what that
    /// says of its endpoint's health (nothing, if no request was sent).
    pub async fn deliver(&self, org: OrgId, leased: &LeasedJob) -> (AttemptEnd, Option<Report>) {
        // Parsed once: for the request, and for the endpoint it reports on.
        let url = match &leased.job.delivery {
            Delivery::Push { http, .. } => {
                Url::parse(&http.url).map_err(|e| format!("invalid URL: {e}"))
            }
            Delivery::Pull => Err("not a push job".to_string()),
        };
        let tried = match &url {
            Ok(url) => self.attempt(org, leased, url).await,
            Err(e) => Err(Unanswered::NotSent(permanent(e.clone()))),
        };
        let (outcome, response, verdict) = match tried {
            Ok(answer) => {
                let status = answer.status;
                let verdict =
                    Verdict::of_status(status, || format!("the target answered {status}"));
                let (outcome, response) = judge(answer);
                (outcome, response, Some(verdict))
            }
            Err(Unanswered::NotSent(failure)) => (Outcome::Fail(failure), None, None),
            Err(Unanswered::NoAnswer(failure)) => {
                let verdict = Verdict::Failed(failure.error.clone());
                (Outcome::Fail(failure), None, Some(verdict))
            }
        };
        let report = match (verdict, url.as_ref().ok().and_then(EndpointKey::of_url)) {
            (Some(verdict), Some(endpoint)) => Some(Report {
                org,
                endpoint,
                verdict,
            }),
            _ => None,
        };
        let end = AttemptEnd {
            org,
            token: leased.lease.token,
            outcome,
            response,
            // Delivery logs the status; it never shows the job.
            whole_job: false,
        };
        (end, report)
    }

    /// One request to `url`, the push job's parsed target.
    async fn attempt(
        &self,
        org: OrgId,
        leased: &LeasedJob,
        url: &Url,
    ) -> Result<Answer, Unanswered> {
        let job = &leased.job;
        let not_sent = Unanswered::NotSent;
        let Delivery::Push {
            http,
            signing_secret_id,
        } = &job.delivery
        else {
            return Err(not_sent(permanent("not a push job".into())));
        };
        // The resolver checks host names; the scheme and IP literals here.
        guard::check_without_dns(url, self.policy)
            .map_err(|e| not_sent(permanent(format!("ssrf_blocked: {e}"))))?;
        let (body, content_type) = request_body(leased);
        let request = self.request(http, url, job.id, job.attempt, content_type);
        let request = match signing_secret_id {
            Some(id) => {
                let values = self.secret_values(org, *id).await.map_err(not_sent)?;
                sign(request, &values, &body)
            }
            None => request.header(TIMESTAMP_HEADER, Timestamp::now().0.timestamp()),
        };
        let timeout = Duration::from_secs(job.timeout.into());
        let started = Instant::now();
        let sent = async {
            let response = request.body(body).send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let stop = response
                .headers()
                .get(RETRY_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("stop"));
            let (bytes, truncated) = read_capped(response).await?;
            let (body, encoding) = written(bytes, truncated);
            Ok::<_, reqwest::Error>(Answer {
                status,
                body,
                encoding,
                truncated,
                retry_after,
                location,
                stop,
            })
        };
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(transport_failure(&e)),
            Err(_) => Err(Unanswered::NoAnswer(retryable(format!(
                "timed out: no complete answer within the job's timeout ({} s)",
                started.elapsed().as_secs()
            )))),
        }
    }

    fn request(
        &self,
        http: &HttpTarget,
        url: &Url,
        job_id: Uuid,
        attempt: u32,
        content_type: Option<&'static str>,
    ) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(http.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut request = self.client.request(method, url.clone());
        // The user's headers first: ours below replace any of the same name.
        for (name, value) in &http.headers {
            request = request.header(name, value);
        }
        if let Some(content_type) = content_type
            && !http
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        request
            .header(MESSAGE_ID_HEADER, job_id.to_string())
            .header(ATTEMPT_HEADER, attempt)
    }

    /// The values a job's signing secret signs with now.
    async fn secret_values(&self, org: OrgId, id: Uuid) -> Result<Vec<String>, Failure> {
        match self.store.signing_secret(org, id).await {
            Ok(Some(secret)) => Ok(secret
                .signing_values(Timestamp::now())
                .into_iter()
                .map(str::to_string)
                .collect()),
            Ok(None) => Err(permanent(format!("signing secret {id} no longer exists"))),
            Err(e) => Err(retryable(format!("reading the signing secret: {e}"))),
        }
    }
}

/// Why an attempt got no answer.
enum Unanswered {
    /// No request went out (the target was refused, its secret is gone):
    /// nothing is said of the endpoint.
    NotSent(Failure),
    /// The request went out and no answer came back (a timeout, a
    /// connection error): the endpoint failed.
    NoAnswer(Failure),
}

/// What a target answered.
struct Answer {
    status: u16,
    /// The body as text, or base64 of its bytes (`encoding`).
    body: String,
    encoding: BodyEncoding,
    truncated: bool,
    retry_after: Option<Duration>,
    location: Option<String>,
    /// The target said `Chronos-Retry: stop`.
    stop: bool,
}

/// How an answer ends the attempt.
fn judge(answer: Answer) -> (Outcome, Option<HttpResponse>) {
    let status = answer.status;
    let outcome = match status {
        200..=299 => Outcome::Ack(result_of(&answer)),
        300..=399 => Outcome::Fail(permanent(format!(
            "the target answered {status} (redirect to {}); redirects are not followed",
            answer.location.as_deref().unwrap_or("nowhere")
        ))),
        408 | 429 | 500..=599 => Outcome::Fail(Failure {
            error: format!("the target answered {status}"),
            retryable: true,
            retry_in: answer.retry_after.filter(|_| matches!(status, 429 | 503)),
        }),
        _ => Outcome::Fail(permanent(format!("the target answered {status}"))),
    };
    let outcome = match outcome {
        Outcome::Fail(failure) if answer.stop && failure.retryable => Outcome::Fail(permanent(
            format!("{} with Chronos-Retry: stop", failure.error),
        )),
        outcome => outcome,
    };
    let response = HttpResponse {
        status,
        body: answer.body,
        encoding: answer.encoding,
        truncated: answer.truncated,
    };
    (outcome, Some(response))
}

/// A 2xx body as the job's result: its JSON if it is JSON, else the text
/// (base64 for a body that is not UTF-8, as on the execution); nothing for
/// an empty body.
fn result_of(answer: &Answer) -> Option<Value> {
    if answer.body.is_empty() {
        return None;
    }
    if !answer.truncated
        && answer.encoding == BodyEncoding::Utf8
        && let Ok(value) = serde_json::from_str(&answer.body)
    {
        return Some(value);
    }
    Some(Value::String(answer.body.clone()))
}

/// The request body and its content type. A job with a handler is sent as
/// `{handler, payload, job_id, attempt}`; a message's body is sent as given.
fn request_body(leased: &LeasedJob) -> (Vec<u8>, Option<&'static str>) {
    let job = &leased.job;
    match (&job.handler, &job.payload) {
        (Some(handler), payload) => {
            let body = json!({
                "handler": handler,
                "payload": payload,
                "job_id": job.id,
                "attempt": job.attempt,
            });
            (body.to_string().into_bytes(), Some("application/json"))
        }
        (None, Value::String(body)) => {
            let kind = if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (body.clone().into_bytes(), Some(kind))
        }
        (None, _) => (Vec::new(), None),
    }
}

/// Adds the signature headers: HMAC-SHA256 over `{timestamp}.{body}` with
/// each value the secret signs with now.
fn sign(
    request: reqwest::RequestBuilder,
    values: &[String],
    body: &[u8],
) -> reqwest::RequestBuilder {
    let timestamp = Timestamp::now().0.timestamp();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    request
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature(&values, timestamp, body))
}

/// A body as executions and callbacks keep it: its text if it is UTF-8
/// (a character cut at the size limit dropped), else base64 of its bytes.
fn written(bytes: Vec<u8>, truncated: bool) -> (String, BodyEncoding) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, BodyEncoding::Utf8),
        Err(e) => {
            let cut_mid_character = e.utf8_error().error_len().is_none();
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            if truncated && cut_mid_character {
                bytes.truncate(valid);
                let text = String::from_utf8(bytes).expect("valid up to here");
                return (text, BodyEncoding::Utf8);
            }
            (BASE64.encode(&bytes), BodyEncoding::Base64)
        }
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body; the rest is not read.
async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, truncated))
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A request that got no answer: refused by the guard (for good), or a
/// connection error or timeout (retried).
fn transport_failure(e: &reqwest::Error) -> Unanswered {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<TargetError>() {
            return Unanswered::NotSent(permanent(format!("ssrf_blocked: {blocked}")));
        }
        chain.push(err.to_string());
        source = err.source();
    }
    chain.dedup();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    Unanswered::NoAnswer(retryable(format!("{what}: {}", chain.join(": "))))
}

fn permanent(error: String) -> Failure {
    Failure {
        error,
        retryable: false,
        retry_in: None,
    }
}

fn retryable(error: String) -> Failure {
    Failure {
        error,
        retryable: true,
        retry_in: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>) -> Answer {
        Answer {
            status,
            body: String::new(),
            encoding: BodyEncoding::Utf8,
            truncated: false,
            retry_after: retry_after.map(Duration::from_secs),
            location: None,
            stop: false,
        }
    }

    fn failure(status: u16, retry_after: Option<u64>) -> Failure {
        match judge(answer(status, retry_after)).0 {
            Outcome::Fail(f) => f,
            Outcome::Ack(_) => panic!("{status} completed"),
        }
    }

    #[test]
    fn status_codes_decide_the_outcome() {
        assert!(matches!(judge(answer(204, None)).0, Outcome::Ack(None)));
        for permanent in [301, 302, 400, 401, 404, 410, 422] {
            assert!(!failure(permanent, None).retryable, "{permanent}");
        }
        for transient in [408, 429, 500, 502, 503, 504] {
            assert!(failure(transient, None).retryable, "{transient}");
        }
        assert_eq!(failure(429, Some(7)).retry_in, Some(Duration::from_secs(7)));
        assert_eq!(failure(503, Some(7)).retry_in, Some(Duration::from_secs(7)));
        // The target may stop retries whatever the status, but not undo a 2xx.
        let stopped = |status| Answer {
            stop: true,
            ..answer(status, None)
        };
        for status in [500, 503, 429, 408] {
            match judge(stopped(status)).0 {
                Outcome::Fail(f) => assert!(!f.retryable, "{status}"),
                Outcome::Ack(_) => panic!("{status} completed"),
            }
        }
        assert!(matches!(judge(stopped(200)).0, Outcome::Ack(_)));
        // Only 429 and 503 carry a Retry-After worth honouring.
        assert_eq!(failure(500, Some(7)).retry_in, None);
    }

    #[test]
    fn bodies_are_text_or_base64() {
        assert_eq!(
            written("héllo".into(), false),
            ("héllo".to_string(), BodyEncoding::Utf8)
        );
        assert_eq!(
            written(vec![0xff, 0x00, 0x80], false),
            ("/wCA".to_string(), BodyEncoding::Base64)
        );
        // "é" is two bytes; the cap cut it after the first: text, without it.
        let cut = "hé".as_bytes()[..2].to_vec();
        assert_eq!(
            written(cut.clone(), true),
            ("h".to_string(), BodyEncoding::Utf8)
        );
        // Not cut by the cap: the bytes are what they are.
        assert_eq!(written(cut, false).1, BodyEncoding::Base64);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("9999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let delay = parse_retry_after(&soon).unwrap();
        assert!(delay > Duration::from_secs(80) && delay <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn results_are_json_when_they_can_be() {
        let with = |body: &str, truncated| Answer {
            body: body.into(),
            truncated,
            ..answer(200, None)
        };
        assert_eq!(
            result_of(&with(r#"{"ok":1}"#, false)),
            Some(json!({"ok": 1}))
        );
        assert_eq!(result_of(&with("OK", false)), Some(json!("OK")));
        assert_eq!(
            result_of(&with(r#"{"ok":"#, true)),
            Some(json!(r#"{"ok":"#))
        );
        assert_eq!(result_of(&with("", false)), None);
    }
}
