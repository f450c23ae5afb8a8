//! Push delivery against real HTTP endpoints on loopback, on both stores:
//! seed 000's quickstart and seed 004's messages end to end, the status
//! code rules, the retry schedule, signatures on the wire, the SSRF guard
//! at send time, redirects, and no head-of-line blocking.

mod common;

use chronos_proto::signature::{MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use chronos_server::job::{NewJob, RunAt};
use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::process::{EXIT_TIMEOUT, Serve, get, http, post_job};
use common::{Backing, Endpoint, StoreKind, TestServer, hmac_sha256};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

both_stores!(
    seed_000_push_quickstart_runs_end_to_end,
    seed_004_messages_are_sent_as_given,
    status_codes_decide_what_follows,
    retries_follow_the_backoff_and_retry_after,
    requests_are_signed_through_a_rotation,
    the_guard_refuses_private_targets_when_sending,
    a_slow_endpoint_does_not_hold_up_the_others,
    a_delivery_cut_off_by_sigkill_is_made_again,
    cancelling_a_job_stops_its_call,
);

fn local(push: PushConfig) -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push,
        ..Default::default()
    }
}

async fn start(kind: StoreKind) -> TestServer {
    TestServer::start_with(kind, local(PushConfig::default())).await
}

/// A push job with a handler, delivered to `url`.
fn push_job(url: &str, extra: Value) -> Value {
    let mut job = json!({
        "name": "push",
        "handler": "hello",
        "payload": {"to": "ada"},
        "delivery": {"type": "push", "http": {"url": url, "method": "POST"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        job[k] = v.clone();
    }
    job
}

async fn create(s: &TestServer, job: Value) -> String {
    let (status, body) = s.post(&s.admin_key, "/v1/jobs", job).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Waits until the job is completed or failed.
async fn finished(s: &TestServer, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, job) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if matches!(job["status"].as_str(), Some("completed" | "failed")) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "not finished in {within:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The job's executions, first attempt first.
async fn executions(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, page) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut list = page["data"].as_array().unwrap().clone();
    list.reverse();
    list
}

async fn seed_000_push_quickstart_runs_end_to_end(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    // Seed 000's request, with the local endpoint for the URL.
    let (status, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({
                "name": "My first job",
                "handler": "hello",
                "delivery": {
                    "type": "push",
                    "http": {"url": endpoint.url("/hooks/chronos"), "method": "POST"}
                }
            }),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    let got = endpoint
        .wait_for("/hooks/chronos", 1, Duration::from_secs(10))
        .await;
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    // What seed 000's Express handler reads: `Job {job_id} running (attempt 1)`.
    let body = request.json();
    assert_eq!(body["handler"], "hello");
    assert_eq!(body["job_id"], id);
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["payload"], Value::Null);
    assert_eq!(request.header(MESSAGE_ID_HEADER), Some(id));
    assert!(request.header(TIMESTAMP_HEADER).is_some());
    assert_eq!(
        request.header(SIGNATURE_HEADER),
        None,
        "no secret, no signature"
    );

    let job = finished(&s, id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"], json!({"ok": true}));
    let runs = executions(&s, id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["status"], "completed");
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["http_status"], 200);
    assert_eq!(run["response_body"], r#"{"ok":true}"#);
    assert_eq!(run["response_truncated"], false);
    assert_eq!(run["error"], Value::Null);
    assert!(run["duration_ms"].is_u64(), "{run}");
    assert!(run["started_at"].is_string() && run["finished_at"].is_string());
}

async fn seed_004_messages_are_sent_as_given(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let (status, accepted) = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({
                "url": endpoint.url("/send-reminder"),
                "method": "PUT",
                "headers": {"X-Run": "cleanup"},
                "body": "{ \"run\": \"cleanup\" }",
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["message_id"].as_str().unwrap();
    let got = endpoint
        .wait_for("/send-reminder", 1, Duration::from_secs(10))
        .await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(
        &got[0].body[..],
        b"{ \"run\": \"cleanup\" }",
        "sent as given"
    );
    assert_eq!(got[0].header("x-run"), Some("cleanup"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header(MESSAGE_ID_HEADER), Some(id));

    // A text body, and retries: 2 → three attempts at a failing target.
    let (_, text) = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/status/500"), "body": "hello", "retries": 2}),
        )
        .await;
    let text_id = text["message_id"].as_str().unwrap();

    let (status, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{message}");
    let message = finished(&s, id, Duration::from_secs(10)).await;
    assert_eq!(message["status"], "completed");

    let failed = finished(&s, text_id, Duration::from_secs(30)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let sent = endpoint.received_at("/status/500");
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0].header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        sent.iter()
            .all(|r| r.header(MESSAGE_ID_HEADER) == Some(text_id))
    );
    let attempts: Vec<&str> = sent
        .iter()
        .filter_map(|r| r.header("chronos-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let (_, message) = s
        .get(&s.admin_key, &format!("/v1/messages/{text_id}"))
        .await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(executions(&s, text_id).await.len(), 3);
}

async fn status_codes_decide_what_follows(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let fast = json!({"max_retries": 3});
    // 4xx: failed for good after one attempt (but 408 and 429 are retried).
    let gone = create(&s, push_job(&endpoint.url("/status/404"), fast.clone())).await;
    let teapot = create(&s, push_job(&endpoint.url("/status/418"), fast.clone())).await;
    let timeout = create(
        &s,
        push_job(&endpoint.url("/status/408"), json!({"max_retries": 1})),
    )
    .await;
    let server = create(
        &s,
        push_job(&endpoint.url("/status/502"), json!({"max_retries": 1})),
    )
    .await;
    // A 503 that says `Chronos-Retry: stop`: not retried.
    let stopped = create(&s, push_job(&endpoint.url("/stop/503"), fast.clone())).await;
    // A redirect is not followed: the target behind it is never called.
    let redirect = create(&s, push_job(&endpoint.url("/redirect"), fast.clone())).await;
    // 2xx: completed; a text body is the result as a string; a large one is cut.
    let text = create(&s, push_job(&endpoint.url("/text"), json!({}))).await;
    let big = create(&s, push_job(&endpoint.url("/big/100000"), json!({}))).await;
    // Nobody listening: a connection error, retried.
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/nobody");
        create(&s, push_job(&url, json!({"max_retries": 1}))).await
    };
    // Slower than the job's timeout: timed out, retried.
    endpoint.slow_for(Duration::from_secs(5));
    let slow = create(
        &s,
        push_job(
            &endpoint.url("/slow"),
            json!({"max_retries": 1, "timeout": 1}),
        ),
    )
    .await;

    let within = Duration::from_secs(30);
    for (id, status, attempts, http_status) in [
        (&gone, "failed", 1, Some(404)),
        (&teapot, "failed", 1, Some(418)),
        (&timeout, "failed", 2, Some(408)),
        (&server, "failed", 2, Some(502)),
        (&redirect, "failed", 1, Some(302)),
        (&stopped, "failed", 1, Some(503)),
        (&text, "completed", 1, Some(200)),
        (&big, "completed", 1, Some(200)),
        (&closed, "failed", 2, None),
        (&slow, "failed", 2, None),
    ] {
        let job = finished(&s, id, within).await;
        assert_eq!(job["status"], status, "{job}");
        let runs = executions(&s, id).await;
        assert_eq!(runs.len(), attempts, "{job} {runs:?}");
        for run in &runs {
            assert_eq!(run["http_status"].as_u64(), http_status, "{run}");
            assert!(run["finished_at"].is_string(), "{run}");
        }
        if status == "failed" {
            assert_eq!(runs.last().unwrap()["status"], "failed", "{runs:?}");
            assert!(runs.iter().all(|r| r["error"].is_string()), "{runs:?}");
        }
    }
    assert!(
        endpoint.received_at("/secret").is_empty(),
        "redirect followed"
    );
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{redirect}")).await;
    assert!(
        job["last_error"].as_str().unwrap().contains("redirect"),
        "{job}"
    );
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{text}")).await;
    assert_eq!(job["result"], "OK");
    let runs = executions(&s, &big).await;
    assert_eq!(runs[0]["response_truncated"], true);
    assert_eq!(runs[0]["response_body"].as_str().unwrap().len(), 64 * 1024);
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{slow}")).await;
    assert!(
        job["last_error"].as_str().unwrap().contains("timed out"),
        "{job}"
    );
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{closed}")).await;
    assert!(
        job["last_error"].as_str().unwrap().contains("connect"),
        "{job}"
    );
}

async fn retries_follow_the_backoff_and_retry_after(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    // Two 503s, then 200: attempts about 1 s and 2 s apart (±20 % jitter).
    let flaky = create(
        &s,
        push_job(&endpoint.url("/flaky/2"), json!({"max_retries": 3})),
    )
    .await;
    // A 429 asking for 3 s: the next attempt waits that long, not 1 s.
    let limited = create(
        &s,
        push_job(&endpoint.url("/retry-after/3"), json!({"max_retries": 3})),
    )
    .await;
    let job = finished(&s, &flaky, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let got = endpoint.received_at("/flaky/2");
    assert_eq!(got.len(), 3);
    let gap = |i: usize| got[i + 1].at - got[i].at;
    assert!(gap(0) >= Duration::from_millis(800), "{:?}", gap(0));
    assert!(gap(0) < Duration::from_millis(2000), "{:?}", gap(0));
    assert!(gap(1) >= Duration::from_millis(1600), "{:?}", gap(1));
    assert!(gap(1) < Duration::from_millis(3500), "{:?}", gap(1));
    let runs = executions(&s, &flaky).await;
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed", "completed"]);
    let codes: Vec<u64> = runs
        .iter()
        .map(|r| r["http_status"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [503, 503, 200]);

    let job = finished(&s, &limited, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let got = endpoint.received_at("/retry-after/3");
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(2900), "{gap:?}");
    assert!(gap < Duration::from_millis(5000), "{gap:?}");
}

/// The signature a receiver expects for `secret`, by an HMAC written here.
fn expected(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

async fn requests_are_signed_through_a_rotation(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let (status, created) = s.post(&s.admin_key, "/v1/signing-secrets", json!({})).await;
    assert_eq!(status, 201, "{created}");
    let old = created["secret"].as_str().unwrap().to_string();
    let secret_id = created["id"].as_str().unwrap().to_string();

    // One value: one signature, the same Message-Id on every attempt.
    let delivery = |path: &str| {
        json!({"type": "push", "signing_secret_id": secret_id,
               "http": {"url": endpoint.url(path)}})
    };
    let (_, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "signed", "handler": "hello", "payload": {"n": 1},
                   "max_retries": 2, "delivery": delivery("/flaky/1")}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let got = endpoint
        .wait_for("/flaky/1", 2, Duration::from_secs(10))
        .await;
    for request in &got {
        let ts = request.header(TIMESTAMP_HEADER).unwrap();
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
        assert!((0..60).contains(&age), "{ts}");
        assert_eq!(
            request.header(SIGNATURE_HEADER),
            Some(expected(&old, ts, &request.body).as_str())
        );
        assert_eq!(request.header(MESSAGE_ID_HEADER), Some(id));
    }

    // Rotated: during the window, both values sign, new first.
    let (status, rotated) = s
        .post(
            &s.admin_key,
            &format!("/v1/signing-secrets/{secret_id}/rotate"),
            json!({"window_seconds": 3600}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    let (status, accepted) = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/rotated"), "body": "raw text",
                   "signing_secret_id": secret_id}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let got = endpoint
        .wait_for("/rotated", 1, Duration::from_secs(10))
        .await;
    let request = &got[0];
    assert_eq!(&request.body[..], b"raw text");
    let ts = request.header(TIMESTAMP_HEADER).unwrap();
    let both = format!(
        "{},{}",
        expected(&new, ts, b"raw text"),
        expected(&old, ts, b"raw text")
    );
    assert_eq!(request.header(SIGNATURE_HEADER), Some(both.as_str()));
    // The SDK's verifier accepts it with either value.
    let now = ts.parse::<i64>().unwrap();
    for value in [&new, &old] {
        assert!(chronos_proto::signature::verify(
            &both,
            ts,
            b"raw text",
            value,
            now
        ));
    }

    // The window closed (rotated again with none): only the newest signs.
    let (_, again) = s
        .post(
            &s.admin_key,
            &format!("/v1/signing-secrets/{secret_id}/rotate"),
            json!({"window_seconds": 0}),
        )
        .await;
    let newest = again["secret"].as_str().unwrap().to_string();
    s.post(
        &s.admin_key,
        "/v1/messages",
        json!({"url": endpoint.url("/closed"), "body": "x", "signing_secret_id": secret_id}),
    )
    .await;
    let got = endpoint
        .wait_for("/closed", 1, Duration::from_secs(10))
        .await;
    let ts = got[0].header(TIMESTAMP_HEADER).unwrap();
    assert_eq!(
        got[0].header(SIGNATURE_HEADER),
        Some(expected(&newest, ts, b"x").as_str())
    );
}

/// With the guard on (the default), jobs that reach the store with a
/// private target — from before the guard, or a name that resolved
/// elsewhere when it was created — are refused when sent: failed for
/// good, and the endpoint never called.
async fn the_guard_refuses_private_targets_when_sending(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let port = endpoint.base.rsplit(':').next().unwrap().to_string();
    let s = TestServer::start(kind).await;
    let org = s
        .store
        .organization_by_slug("default")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for url in [
        // A name resolving to loopback: refused by the client's resolver.
        format!("https://localhost:{port}/resolved"),
        format!("https://127.0.0.1:{port}/literal"),
        format!("https://[::1]:{port}/v6"),
        format!("https://[::ffff:127.0.0.1]:{port}/mapped"),
        "https://10.0.0.1/private".to_string(),
        "https://169.254.169.254/latest/meta-data".to_string(),
        // Plain http, even to a public address.
        "http://93.184.216.34/plain".to_string(),
    ] {
        let delivery =
            serde_json::from_value(json!({"type": "push", "http": {"url": url}})).unwrap();
        let job = NewJob {
            id: Uuid::now_v7(),
            name: url.clone(),
            handler: Some("hello".into()),
            payload: Value::Null,
            queue: "default".into(),
            concurrency_key: None,
            priority: 0,
            delivery,
            run_at: RunAt::Now,
            max_retries: Some(3),
            timeout_seconds: 5,
            schedule_id: None,
            idempotency_key: None,
            follow: Default::default(),
        };
        ids.push((url, s.engine.create_job(org, job).await.unwrap().id));
    }
    // Something created through the API wakes the dispatcher at once.
    s.post(
        &s.admin_key,
        "/v1/messages",
        json!({"url": "https://example.invalid/x"}),
    )
    .await;
    for (url, id) in ids {
        let job = finished(&s, &id.to_string(), Duration::from_secs(20)).await;
        assert_eq!(job["status"], "failed", "{url}: {job}");
        let error = job["last_error"].as_str().unwrap();
        assert!(error.starts_with("ssrf_blocked"), "{url}: {error}");
        assert_eq!(
            executions(&s, &id.to_string()).await.len(),
            1,
            "{url}: not retried"
        );
    }
    assert!(endpoint.received().is_empty(), "{:?}", endpoint.received());
}

async fn a_slow_endpoint_does_not_hold_up_the_others(kind: StoreKind) {
    let slow = Endpoint::start().await;
    let fast = Endpoint::start().await;
    let per_host = 4;
    let s = TestServer::start_with(
        kind,
        local(PushConfig {
            max_in_flight: 16,
            per_host,
            ..PushConfig::default()
        }),
    )
    .await;
    // The slow host's jobs first, more than all the dispatcher's slots.
    let hanging: Vec<Value> = (0..40)
        .map(|_| push_job(&slow.url("/slow"), json!({"timeout": 600})))
        .collect();
    let (status, body) = s
        .post(&s.admin_key, "/v1/jobs/batch", json!({"jobs": hanging}))
        .await;
    assert_eq!(status, 200, "{body}");
    slow.wait_for("/slow", per_host as usize, Duration::from_secs(10))
        .await;
    let quick: Vec<Value> = (0..100)
        .map(|_| push_job(&fast.url("/ok"), json!({})))
        .collect();
    let (status, body) = s
        .post(&s.admin_key, "/v1/jobs/batch", json!({"jobs": quick}))
        .await;
    assert_eq!(status, 200, "{body}");
    fast.wait_for("/ok", 100, Duration::from_secs(20)).await;
    // The slow host never had more than its share of calls.
    assert_eq!(slow.received_at("/slow").len(), per_host as usize);
    // Once the fast jobs' answers are recorded, only the slow calls run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, running) = s
            .get(&s.admin_key, "/v1/jobs?status=running&limit=100")
            .await;
        let running = running["data"].as_array().unwrap().len();
        if running == per_host as usize {
            break;
        }
        assert!(Instant::now() < deadline, "{running} running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cancelled job's call in flight is stopped, and its slot freed: with
/// one slot for the host, the next job to it goes out at once.
async fn cancelling_a_job_stops_its_call(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(
        kind,
        local(PushConfig {
            max_in_flight: 8,
            per_host: 1,
            ..PushConfig::default()
        }),
    )
    .await;
    let hanging = create(
        &s,
        push_job(&endpoint.url("/slow"), json!({"timeout": 600})),
    )
    .await;
    endpoint.wait_for("/slow", 1, Duration::from_secs(10)).await;
    let next = create(&s, push_job(&endpoint.url("/ok"), json!({}))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        endpoint.received_at("/ok").is_empty(),
        "the host's one slot is taken"
    );
    let (status, job) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{hanging}/cancel"))
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "cancelled");
    endpoint.wait_for("/ok", 1, Duration::from_secs(10)).await;
    let job = finished(&s, &next, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "completed");
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{hanging}")).await;
    assert_eq!(job["status"], "cancelled", "{job}");
}

/// The real binary, killed with SIGKILL while its call hangs: after a
/// restart, the attempt's lease runs out (timeout + margin, on the test
/// clock), the attempt counts as timed out, and the job is delivered again.
async fn a_delivery_cut_off_by_sigkill_is_made_again(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let backing = Backing::new(kind).await;
    let http = http();
    let args = ["--allow-private-targets", "--test-clock"];
    let mut first = Serve::start_with(&backing, &args).await;
    let admin = first.admin_key().await;
    let job = push_job(
        &endpoint.url("/hang-once"),
        json!({"timeout": 2, "max_retries": 2}),
    );
    let (status, job) = post_job(&http, &first, &admin, &job).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    endpoint
        .wait_for("/hang-once", 1, Duration::from_secs(10))
        .await;
    first.signal(Signal::SIGKILL);
    first.wait_exit(EXIT_TIMEOUT).await;

    let second = Serve::start_with(&backing, &args).await;
    // Past the deadline (2 s + the 5 s margin), then past the backoff.
    backing.advance_clock(Duration::from_secs(8)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, job) = get(&http, &second, &admin, &format!("/v1/jobs/{id}")).await;
        if job["status"] == "scheduled" {
            break;
        }
        assert!(Instant::now() < deadline, "not timed out: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backing.advance_clock(Duration::from_secs(2)).await;
    let got = endpoint
        .wait_for("/hang-once", 2, Duration::from_secs(10))
        .await;
    assert_eq!(got[1].header(MESSAGE_ID_HEADER), Some(id.as_str()));
    assert_eq!(got[1].header("chronos-attempt"), Some("2"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let (_, job) = get(&http, &second, &admin, &format!("/v1/jobs/{id}")).await;
        if job["status"] == "completed" || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "completed", "{job}");
    let (_, runs) = get(&http, &second, &admin, &format!("/v1/jobs/{id}/executions")).await;
    let statuses: Vec<&str> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["timed_out", "completed"]);
}
