//! Krafter's routes (`/api/v1/cron/jobs`, seed 002) on both stores: the
//! seed's quickstart run verbatim against the real binary, with an
//! execution from a real loopback endpoint; the answers' exact fields, the
//! `{"data": …}` envelope, pagination, `PUT` changing the fields given,
//! Krafter's words for outcomes (running attempts not listed), scopes,
//! refused fields, errors in Chronos' envelope, and the OpenAPI document.

mod common;

use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::process::{Serve, http};
use common::{Backing, Endpoint, StoreKind, TestServer, assert_error, decode};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_stores!(
    seed_002_quickstart_runs_verbatim,
    routes_read_change_and_refuse_in_krafters_shape,
    executions_and_last_status_speak_krafters_words,
    openapi_describes_the_krafter_routes,
);

/// A cron job's fields (seed 002, step 1), and no others.
const JOB_FIELDS: [&str; 17] = [
    "id",
    "name",
    "schedule_type",
    "schedule",
    "timezone",
    "url",
    "method",
    "headers",
    "timeout_ms",
    "max_retries",
    "enabled",
    "failure_notify",
    "last_status",
    "last_run_at",
    "next_run_at",
    "created_at",
    "updated_at",
];

/// An execution's fields (seed 002, step 2), and no others.
const EXECUTION_FIELDS: [&str; 9] = [
    "id",
    "status",
    "http_status",
    "response_body",
    "error",
    "attempt",
    "duration_ms",
    "started_at",
    "finished_at",
];

/// How long a run may take to show up (a push call to loopback).
const RUN_WITHIN: Duration = Duration::from_secs(15);

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn assert_fields(v: &Value, fields: &[&str]) {
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(keys(v), want, "{v}");
}

fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .to_utc()
}

fn local() -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    }
}

/// What curl sends: the method, the bearer key, and for `-d` the body as
/// written with `Content-Type: application/json`.
async fn curl(
    http: &reqwest::Client,
    method: Method,
    url: String,
    key: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = http
        .request(method, url)
        .header("Authorization", format!("Bearer {key}"));
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    decode(request.send().await.unwrap()).await
}

/// Polls `path` every 50 ms until `done` says yes, or panics at the deadline.
async fn wait_until(
    s: &TestServer,
    path: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = s.get(&s.admin_key, path).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not get there within {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seed 002's four steps as written (only the host and key changed), against
/// the real `chronos` binary; and step 2 again for a job whose URL is a
/// real endpoint on loopback, so that it has run (its due time passes on
/// the test clock).
async fn seed_002_quickstart_runs_verbatim(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let serve = Serve::start_with(&backing, &["--allow-private-targets", "--test-clock"]).await;
    let key = serve.admin_key().await;
    let http = http();
    let endpoint = Endpoint::start().await;

    // Step 1: Create a Cron Job.
    let (status, created) = curl(
        &http,
        Method::POST,
        serve.url("/api/v1/cron/jobs"),
        &key,
        Some(
            r#"{
    "name": "Health Check",
    "schedule_type": "interval",
    "schedule": "every_5m",
    "url": "https://example.com/api/health",
    "method": "GET"
  }"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(keys(&created), ["data"]);
    let job = &created["data"];
    assert_fields(job, &JOB_FIELDS);
    for (field, value) in [
        ("name", json!("Health Check")),
        ("schedule_type", json!("interval")),
        ("schedule", json!("every_5m")),
        ("timezone", json!("UTC")),
        ("url", json!("https://example.com/api/health")),
        ("method", json!("GET")),
        ("headers", json!({})),
        ("timeout_ms", json!(30000)),
        ("max_retries", json!(3)),
        ("enabled", json!(true)),
        ("failure_notify", json!(false)),
        ("last_status", Value::Null),
        ("last_run_at", Value::Null),
    ] {
        assert_eq!(job[field], value, "{field}: {job}");
    }
    assert!(uuid::Uuid::parse_str(job["id"].as_str().unwrap()).is_ok());
    assert_eq!(job["created_at"], job["updated_at"]);
    // Created at 10:00, next_run_at 10:05.
    let first = ts(&job["next_run_at"]) - ts(&job["created_at"]);
    assert_eq!(first.num_milliseconds(), 300_000, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let job_url = |tail: &str| serve.url(&format!("/api/v1/cron/jobs/{id}{tail}"));

    // Step 2: View Execution History (nothing has run yet).
    let (status, history) = curl(&http, Method::GET, job_url("/executions"), &key, None).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["data"], json!([]));
    assert_eq!(keys(&history), ["data", "next_cursor"]);

    // Step 2 once it has run: the same request for a job calling a real
    // endpoint (example.com is not reachable from the tests), once its
    // first due time has come.
    let body = json!({"name": "Health Check", "schedule_type": "interval", "schedule": "every_5m",
                      "url": endpoint.url("/api/health"), "method": "GET"});
    let (status, local) = curl(
        &http,
        Method::POST,
        serve.url("/api/v1/cron/jobs"),
        &key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{local}");
    let local_id = local["data"]["id"].as_str().unwrap().to_string();
    let local_url = |tail: &str| serve.url(&format!("/api/v1/cron/jobs/{local_id}{tail}"));
    backing.advance_clock(Duration::from_secs(301)).await;
    let deadline = Instant::now() + RUN_WITHIN;
    let run = loop {
        let (status, history) =
            curl(&http, Method::GET, local_url("/executions"), &key, None).await;
        assert_eq!(status, 200, "{history}");
        if let Some(run) = history["data"].as_array().unwrap().last() {
            break run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no execution within {RUN_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, _) = curl(&http, Method::POST, local_url("/pause"), &key, None).await;
    assert_eq!(status, 200);
    assert_fields(&run, &EXECUTION_FIELDS);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["http_status"], 200);
    assert_eq!(run["response_body"], r#"{"ok":true}"#);
    assert_eq!(run["error"], Value::Null);
    assert_eq!(run["attempt"], 1);
    assert!(run["duration_ms"].is_u64(), "{run}");
    assert!(ts(&run["started_at"]) <= ts(&run["finished_at"]), "{run}");
    let called = endpoint.received_at("/api/health");
    assert!(!called.is_empty() && called[0].method == Method::GET);
    // The job says how its last run went, in Krafter's words.
    let deadline = Instant::now() + RUN_WITHIN;
    loop {
        let (_, read) = curl(&http, Method::GET, local_url(""), &key, None).await;
        if read["data"]["last_status"] == "success" {
            assert!(read["data"]["last_run_at"].is_string(), "{read}");
            break;
        }
        assert!(Instant::now() < deadline, "last_status: {read}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Step 3: Manually Trigger a Job.
    let (status, triggered) = curl(&http, Method::POST, job_url("/trigger"), &key, None).await;
    assert_eq!(status, 200, "{triggered}");
    assert_eq!(triggered, json!({"ok": true}));

    // Step 4: Pause and Resume.
    let (status, paused) = curl(&http, Method::POST, job_url("/pause"), &key, None).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        paused,
        json!({"data": {"id": id, "name": "Health Check", "enabled": false}})
    );
    let (status, resumed) = curl(&http, Method::POST, job_url("/resume"), &key, None).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(
        resumed,
        json!({"data": {"id": id, "name": "Health Check", "enabled": true}})
    );
    let (_, read) = curl(&http, Method::GET, job_url(""), &key, None).await;
    assert_eq!(read["data"]["enabled"], true);
    assert!(
        read["data"]["last_run_at"].is_string(),
        "the trigger ran it"
    );
    assert!(read["data"]["next_run_at"].is_string());
}

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, created) = s.post(&s.admin_key, "/api/v1/cron/jobs", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(keys(&created), ["data"]);
    assert_fields(&created["data"], &JOB_FIELDS);
    created["data"].clone()
}

async fn routes_read_change_and_refuse_in_krafters_shape(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let url = "https://example.com/api/health";
    let job = create(
        &s,
        json!({"name": "Precise", "schedule_type": "cron", "schedule": "*/5 * * * *",
               "url": url, "headers": {"X-Token": "t"}, "timeout_ms": 1500,
               "max_retries": 1, "failure_notify": true, "timezone": "Europe/Paris"}),
    )
    .await;
    assert_eq!(job["schedule_type"], "cron");
    assert_eq!(job["schedule"], "*/5 * * * *");
    assert_eq!(job["method"], "POST");
    // A credential's value is hidden (tests/redaction.rs).
    assert_eq!(job["headers"], json!({"X-Token": "***redacted***"}));
    assert_eq!(job["timeout_ms"], 2000, "whole seconds");
    assert_eq!(job["max_retries"], 1);
    assert_eq!(job["failure_notify"], true);
    assert_eq!(job["timezone"], "Europe/Paris");
    let id = job["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/cron/jobs/{id}");
    // The same schedule natively, in the native shape.
    let (status, native) = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(native["cron"], "*/5 * * * *");
    assert_eq!(native["timeout"], 2);
    assert!(native.get("timeout_ms").is_none() && native.get("enabled").is_none());

    // A native schedule shows through Krafter's routes too: a pull
    // schedule has no url; a native interval that is no preset, no schedule.
    let (status, pull) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "pull", "handler": "h", "interval": {"value": 10, "unit": "minute"}}),
        )
        .await;
    assert_eq!(status, 201, "{pull}");
    let (status, read) = s
        .get(
            &s.admin_key,
            &format!("/api/v1/cron/jobs/{}", pull["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_fields(&read["data"], &JOB_FIELDS);
    assert_eq!(read["data"]["schedule_type"], "interval");
    assert_eq!(read["data"]["schedule"], Value::Null);
    assert_eq!(read["data"]["url"], Value::Null);
    assert_eq!(read["data"]["timeout_ms"], 30000);

    // The list: newest first, `limit` and `next_cursor`.
    let (status, page) = s.get(&s.admin_key, "/api/v1/cron/jobs?limit=1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(keys(&page), ["data", "next_cursor"]);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["name"], "pull");
    assert_fields(&page["data"][0], &JOB_FIELDS);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = s
        .get(
            &s.admin_key,
            &format!("/api/v1/cron/jobs?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(next["data"][0]["id"], id.as_str());
    assert_eq!(next["next_cursor"], Value::Null);
    let answer = s.get(&s.admin_key, "/api/v1/cron/jobs?limit=0").await;
    assert_error(&answer, 400, "validation_failed", Some("limit"));
    let answer = s.get(&s.admin_key, "/api/v1/cron/jobs?status=active").await;
    assert_error(&answer, 400, "unknown_field", None);

    // PUT changes the fields given; a new timing counts from now.
    let put = |body: Value| s.send(Method::PUT, &s.admin_key, &path, Some(body));
    let (status, changed) = put(json!({"schedule_type": "interval", "schedule": "every_1h",
                                       "timeout_ms": 5000}))
    .await;
    assert_eq!(status, 200, "{changed}");
    let changed = &changed["data"];
    assert_fields(changed, &JOB_FIELDS);
    assert_eq!(changed["schedule"], "every_1h");
    assert_eq!(changed["timeout_ms"], 5000);
    assert_eq!(changed["name"], "Precise", "unchanged");
    assert_eq!(changed["max_retries"], 1, "unchanged");
    assert_eq!(
        changed["headers"],
        json!({"X-Token": "***redacted***"}),
        "unchanged"
    );
    let ahead = ts(&changed["next_run_at"]) - chrono::Utc::now();
    assert!(
        (3590..=3600).contains(&ahead.num_seconds()),
        "{ahead}: {changed}"
    );
    let (_, disabled) = put(json!({"enabled": false})).await;
    assert_eq!(disabled["data"]["enabled"], false);
    assert_eq!(disabled["data"]["next_run_at"], Value::Null);
    let (_, enabled) = put(json!({"enabled": true, "name": "Hourly"})).await;
    assert_eq!(enabled["data"]["enabled"], true);
    assert_eq!(enabled["data"]["name"], "Hourly");

    // Only Krafter's fields; Chronos' errors, naming Krafter's fields.
    let post = |body: Value| s.post(&s.admin_key, "/api/v1/cron/jobs", body);
    for field in ["cron", "retries", "handler", "interval", "timeout", "body"] {
        let mut body = json!({"name": "n", "schedule_type": "cron", "schedule": "@daily",
                              "url": url});
        body[field] = json!(1);
        let answer = post(body).await;
        assert_error(&answer, 400, "unknown_field", Some(field));
        assert_eq!(keys(&answer.1), ["error"]);
    }
    let answer = put(json!({"handler": "h"})).await;
    assert_error(&answer, 400, "unknown_field", Some("handler"));
    // What the document states (required fields, limits) is a 400 ...
    for (body, field) in [
        (
            json!({"schedule_type": "cron", "schedule": "@daily", "url": url}),
            "name",
        ),
        (
            json!({"name": "n", "schedule": "every_5m", "url": url}),
            "schedule_type",
        ),
        (
            json!({"name": "n", "schedule_type": "interval", "url": url}),
            "schedule",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily"}),
            "url",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily", "url": url,
                   "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily", "url": url,
                   "max_retries": 101}),
            "max_retries",
        ),
    ] {
        let answer = post(body.clone()).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
    }
    // ... and a rule beyond it a 422.
    for (body, field) in [
        (
            json!({"name": "n", "schedule_type": "interval", "schedule": "every_2m", "url": url}),
            "schedule",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "61 * * * *", "url": url}),
            "schedule",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily", "url": url,
                   "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily",
                   "url": "ftp://example.com/x"}),
            "url",
        ),
    ] {
        let answer = post(body.clone()).await;
        assert_error(&answer, 422, "validation_failed", Some(field));
    }
    // PUT requires nothing, and reads null as absent.
    let (status, kept) = put(json!({"name": null, "url": null})).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["data"]["name"], "Hourly");
    let answer = post(
        json!({"name": "n", "schedule_type": "cron", "schedule": "@daily",
                             "url": "https://10.0.0.1/x"}),
    )
    .await;
    assert_error(&answer, 422, "ssrf_blocked", Some("url"));
    for missing in [
        format!("/api/v1/cron/jobs/{}", uuid::Uuid::now_v7()),
        "/api/v1/cron/jobs/nope".to_string(),
    ] {
        let answer = s.get(&s.admin_key, &missing).await;
        assert_error(&answer, 404, "not_found", None);
        let answer = s
            .post_empty(&s.admin_key, &format!("{missing}/trigger"))
            .await;
        assert_error(&answer, 404, "not_found", None);
    }

    // Scopes: reading needs jobs:read, changing jobs:write.
    let reader = s.key(&["jobs:read"]).await;
    let worker = s.key(&["worker"]).await;
    for read in [
        "/api/v1/cron/jobs".to_string(),
        path.clone(),
        format!("{path}/executions"),
    ] {
        let (status, body) = s.get(&reader, &read).await;
        assert_eq!(status, 200, "{read}: {body}");
        let answer = s.get(&worker, &read).await;
        assert_error(&answer, 403, "forbidden", None);
    }
    for (method, change, body) in [
        (
            Method::POST,
            "/api/v1/cron/jobs".to_string(),
            Some(json!({"name": "n", "schedule_type": "cron", "schedule": "@daily", "url": url})),
        ),
        (Method::PUT, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/trigger"), None),
        (Method::POST, format!("{path}/pause"), None),
        (Method::POST, format!("{path}/resume"), None),
    ] {
        let answer = s.send(method.clone(), &reader, &change, body).await;
        assert_error(&answer, 403, "forbidden", None);
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("jobs:write"),
            "{method} {change}: {}",
            answer.1
        );
    }
    let answer = s
        .send(Method::PATCH, &s.admin_key, &path, Some(json!({})))
        .await;
    assert_error(&answer, 405, "method_not_allowed", None);

    // Another organization sees none of it.
    let other = s.other_org_key("other").await;
    let (_, list) = s.get(&other, "/api/v1/cron/jobs").await;
    assert_eq!(list["data"], json!([]));
    let answer = s.get(&other, &path).await;
    assert_error(&answer, 404, "not_found", None);

    // An archived schedule cannot be paused, resumed, triggered or changed.
    let (status, _) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/archive"))
        .await;
    assert_eq!(status, 200);
    for action in ["pause", "resume", "trigger"] {
        let answer = s
            .post_empty(&s.admin_key, &format!("{path}/{action}"))
            .await;
        assert_error(&answer, 409, "schedule_archived", None);
    }
    let answer = put(json!({"name": "x"})).await;
    assert_error(&answer, 409, "schedule_archived", None);
    let (_, read) = s.get(&s.admin_key, &path).await;
    assert_eq!(read["data"]["enabled"], false);

    // DELETE: `{"ok": true}`, and it is gone from both routes.
    let (status, deleted) = s.send(Method::DELETE, &s.admin_key, &path, None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"ok": true}));
    let answer = s.get(&s.admin_key, &path).await;
    assert_error(&answer, 404, "not_found", None);
    let answer = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_error(&answer, 404, "not_found", None);
}

/// A failed run is a `failure` with the endpoint's status; a timed-out one a
/// `failure` with its error; a run in progress is not listed (it is in the
/// native list, as `running`) and leaves `last_status` null.
async fn executions_and_last_status_speak_krafters_words(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let make = |name: &str, path: &str| {
        json!({"name": name, "schedule_type": "interval", "schedule": "every_1d",
               "url": endpoint.url(path), "max_retries": 0, "timeout_ms": 1000})
    };
    let executions = |id: &str| format!("/api/v1/cron/jobs/{id}/executions");
    let has_run = |page: &Value| !page["data"].as_array().unwrap().is_empty();

    let broken = create(&s, make("broken", "/status/500")).await;
    let broken = broken["id"].as_str().unwrap();
    let (status, ok) = s
        .post_empty(&s.admin_key, &format!("/api/v1/cron/jobs/{broken}/trigger"))
        .await;
    assert_eq!((status, ok), (200, json!({"ok": true})));
    let page = wait_until(&s, &executions(broken), RUN_WITHIN, has_run).await;
    let run = &page["data"][0];
    assert_fields(run, &EXECUTION_FIELDS);
    assert_eq!(run["status"], "failure", "{run}");
    assert_eq!(run["http_status"], 500);
    assert_eq!(run["attempt"], 1);
    wait_until(
        &s,
        &format!("/api/v1/cron/jobs/{broken}"),
        RUN_WITHIN,
        |job| job["data"]["last_status"] == "failure",
    )
    .await;

    // A run that hangs: running (not listed), then timed out (a failure).
    let slow = create(&s, make("slow", "/slow")).await;
    let slow = slow["id"].as_str().unwrap();
    s.post_empty(&s.admin_key, &format!("/api/v1/cron/jobs/{slow}/trigger"))
        .await;
    endpoint.wait_for("/slow", 1, RUN_WITHIN).await;
    let (_, native) = s
        .get(&s.admin_key, &format!("/v1/schedules/{slow}/executions"))
        .await;
    let (_, krafter) = s.get(&s.admin_key, &executions(slow)).await;
    let (_, job) = s
        .get(&s.admin_key, &format!("/api/v1/cron/jobs/{slow}"))
        .await;
    assert_eq!(native["data"][0]["status"], "running", "{native}");
    assert_eq!(
        krafter["data"],
        json!([]),
        "a running attempt is not listed"
    );
    assert_eq!(job["data"]["last_status"], Value::Null, "{job}");
    assert!(job["data"]["last_run_at"].is_string(), "{job}");
    let page = wait_until(&s, &executions(slow), RUN_WITHIN, has_run).await;
    let run = &page["data"][0];
    assert_eq!(run["status"], "failure", "{run}");
    assert!(run["error"].is_string(), "{run}");
    assert!(run["finished_at"].is_string(), "{run}");
}

async fn openapi_describes_the_krafter_routes(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let resp = s.http.get(s.url("/v1/openapi.json")).send().await.unwrap();
    let (status, doc) = decode(resp).await;
    assert_eq!(status, 200);
    let jobs = "/api/v1/cron/jobs";
    let job = "/api/v1/cron/jobs/{id}";
    let (executions, trigger, pause, resume) = (
        "/api/v1/cron/jobs/{id}/executions",
        "/api/v1/cron/jobs/{id}/trigger",
        "/api/v1/cron/jobs/{id}/pause",
        "/api/v1/cron/jobs/{id}/resume",
    );
    for (path, method, statuses) in [
        (
            jobs,
            "post",
            &["201", "400", "401", "403", "413", "415", "422"][..],
        ),
        (jobs, "get", &["200", "400", "401", "403"][..]),
        (job, "get", &["200", "400", "401", "403", "404"][..]),
        (
            job,
            "put",
            &[
                "200", "400", "401", "403", "404", "409", "413", "415", "422",
            ][..],
        ),
        (job, "delete", &["200", "400", "401", "403", "404"][..]),
        (executions, "get", &["200", "400", "401", "403", "404"][..]),
        (
            trigger,
            "post",
            &["200", "400", "401", "403", "404", "409", "429"][..],
        ),
        (
            pause,
            "post",
            &["200", "400", "401", "403", "404", "409"][..],
        ),
        (
            resume,
            "post",
            &["200", "400", "401", "403", "404", "409"][..],
        ),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert_eq!(op["tags"], json!(["krafter"]), "{method} {path}");
        let scope = if method == "get" {
            "jobs:read"
        } else {
            "jobs:write"
        };
        assert_eq!(
            op["security"],
            json!([{"api_key": [scope]}, {"session": [scope]}]),
            "{method} {path}"
        );
        let mut got: Vec<&str> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        got.sort_unstable();
        assert_eq!(got, statuses, "{method} {path}");
    }
    // Operation ids are unique (Krafter's handlers are not Chronos' jobs).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationId: {ids:?}");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CronJob",
        "CronJobRequest",
        "CronJobUpdate",
        "CronExecution",
        "CronJobState",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    // The native schedule's schema is the one shape.
    let mut fields: Vec<&str> = schemas["Schedule"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields.len(), 29, "{fields:?}");
    assert!(!fields.contains(&"enabled") && !fields.contains(&"timeout_ms"));
}
