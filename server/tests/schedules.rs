//! Schedules over real HTTP, on both stores: the three seed shapes, checks
//! and their errors, delivery by pull and by push, pause, resume, archive,
//! trigger, next runs, changes, overlap; and with the real binary: one job
//! per due time across two server processes and restarts, and each
//! catch-up policy after downtime.

mod common;

use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_server::store::DynStore;
use chronos_test_support::both_stores;
use common::process::{Serve, get, http};
use common::{Backing, Endpoint, StoreKind, TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_stores!(
    seed_000_schedules_push_a_handler_until_archived,
    seed_002_shapes_are_accepted_as_written,
    seed_004_shape_is_accepted_as_written,
    request_dialects_have_their_defaults_and_do_not_mix,
    bad_schedules_are_refused_naming_the_problem,
    an_interval_schedule_is_delivered_by_pull,
    pause_resume_trigger_archive_and_delete,
    next_runs_preview_the_timing,
    patch_and_put_change_a_schedule,
    a_schedules_concurrency_key_goes_with_each_job,
    overlap_policies_hold_fires_back,
    one_job_per_due_time_across_restarts_and_processes,
    catch_up_policies_after_downtime,
    the_rust_client_manages_schedules,
);

fn local() -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    }
}

fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .to_utc()
}

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, schedule) = s.post(&s.admin_key, "/v1/schedules", body).await;
    assert_eq!(status, 201, "{schedule}");
    schedule
}

/// The schedule's jobs, oldest first.
async fn jobs_of(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, page) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs?schedule_id={id}&limit=100"),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut jobs = page["data"].as_array().unwrap().clone();
    jobs.reverse();
    jobs
}

/// Moves the test clock to `at` (a due time), plus a millisecond, and
/// waits until the scheduler and the sweeper have made a pass on it.
async fn advance_to(s: &TestServer, at: &Value) {
    let now = s.store.now().await.unwrap();
    let by = (ts(at) - now.0).to_std().unwrap_or_default() + Duration::from_millis(1);
    s.advance_clock_and_settle(by).await;
}

/// Waits until the schedule has at least `n` jobs.
async fn wait_jobs(s: &TestServer, id: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let jobs = jobs_of(s, id).await;
        if jobs.len() >= n {
            return jobs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} jobs in {within:?}",
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn seed_000_schedules_push_a_handler_until_archived(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with_test_clock(kind, local()).await;
    // Seed 000's request as written (every 10 minutes), the local endpoint
    // for its URL.
    let delivery = json!({"type": "push",
                          "http": {"url": endpoint.url("/hooks/chronos"), "method": "POST"}});
    let ten = create(
        &s,
        json!({"name": "Hello every 10 minutes", "handler": "hello",
               "interval": {"value": 10, "unit": "minute"}, "delivery": delivery}),
    )
    .await;
    assert_eq!(ten["status"], "active");
    assert_eq!(ten["interval"], json!({"value": 10, "unit": "minute"}));
    assert_eq!(ten["handler"], "hello");
    assert_eq!(ten["delivery"]["http"]["url"], delivery["http"]["url"]);
    assert_eq!(ten["url"], delivery["http"]["url"]);
    assert_eq!(ten["method"], "POST");
    let first = ts(&ten["next_run_at"]) - ts(&ten["created_at"]);
    assert_eq!(first.num_seconds(), 600, "{ten}");

    // The same every minute: the endpoint gets seed 000's body at each due
    // time (on the test clock).
    let tick = create(
        &s,
        json!({"name": "Hello every minute", "handler": "hello", "payload": {"n": 1},
               "interval": {"value": 1, "unit": "minute"}, "delivery": delivery}),
    )
    .await;
    let id = tick["id"].as_str().unwrap();
    for _ in 0..2 {
        let (_, read) = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
        advance_to(&s, &read["next_run_at"]).await;
    }
    let got = endpoint
        .wait_for("/hooks/chronos", 2, Duration::from_secs(10))
        .await;
    let body = got[0].json();
    assert_eq!(body["handler"], "hello");
    assert_eq!(body["payload"], json!({"n": 1}));
    assert_eq!(body["attempt"], 1);
    let jobs = jobs_of(&s, id).await;
    assert_eq!(jobs.len(), 2, "one job per due time");
    assert!(jobs.iter().any(|j| j["id"] == body["job_id"]));
    assert!(
        jobs.iter()
            .all(|j| j["schedule_id"] == id && j["fire_at"].is_string())
    );

    // Seed 000: archive to stop it; it stays readable.
    let (status, archived) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/archive"))
        .await;
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["status"], "archived");
    assert!(archived["next_run_at"].is_null());
    s.advance_clock_and_settle(Duration::from_secs(600)).await;
    assert_eq!(jobs_of(&s, id).await.len(), 2, "archived, yet fired");
    let (status, read) = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["status"], "archived");
    assert!(read["last_run_at"].is_string(), "{read}");
    // Its runs are executions of its jobs.
    let (status, runs) = s
        .get(&s.admin_key, &format!("/v1/schedules/{id}/executions"))
        .await;
    assert_eq!(status, 200, "{runs}");
    let runs = runs["data"].as_array().unwrap();
    assert!(!runs.is_empty());
    assert!(runs.iter().any(|r| r["http_status"] == 200), "{runs:?}");
}

/// Seed 002's request on the native route: accepted as written, with
/// Krafter's defaults, and answered in the one native shape (Krafter's own
/// shape is on its own routes: tests/krafter.rs).
async fn seed_002_shapes_are_accepted_as_written(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let health = create(
        &s,
        json!({"name": "Health Check", "schedule_type": "interval", "schedule": "every_5m",
               "url": "https://example.com/api/health", "method": "GET"}),
    )
    .await;
    assert_native_shape(&health);
    for (field, value) in [
        ("name", json!("Health Check")),
        ("status", json!("active")),
        ("interval", json!({"value": 5, "unit": "minute"})),
        ("cron", Value::Null),
        ("timezone", json!("UTC")),
        ("handler", Value::Null),
        ("url", json!("https://example.com/api/health")),
        ("method", json!("GET")),
        ("headers", json!({})),
        ("timeout", json!(30)),
        ("max_retries", json!(3)),
        ("failure_notify", json!(false)),
        ("last_status", Value::Null),
        ("last_run_at", Value::Null),
    ] {
        assert_eq!(health[field], value, "{field}: {health}");
    }
    // Seed 002: created at 10:00, next_run_at 10:05.
    let first = ts(&health["next_run_at"]) - ts(&health["created_at"]);
    assert_eq!(first.num_seconds(), 300);
    let id = health["id"].as_str().unwrap();

    let (status, runs) = s
        .get(&s.admin_key, &format!("/v1/schedules/{id}/executions"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(runs["data"], json!([]));
    // Step 3: trigger now. Step 4: pause and resume.
    let (status, job) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/trigger"))
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["schedule_id"], id);
    let (status, paused) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/pause"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["name"], "Health Check");
    let (_, resumed) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/resume"))
        .await;
    assert_eq!(resumed["status"], "active");
    assert!(resumed["last_run_at"].is_string(), "{resumed}");

    // schedule_type cron, the expression in `schedule`; timeout_ms rounds up.
    let cron = create(
        &s,
        json!({"name": "Precise", "schedule_type": "cron", "schedule": "*/5 * * * *",
               "url": "https://example.com/api/health", "timeout_ms": 1500,
               "max_retries": 1, "failure_notify": true}),
    )
    .await;
    assert_native_shape(&cron);
    assert_eq!(cron["cron"], "*/5 * * * *");
    assert!(cron["interval"].is_null());
    assert_eq!(cron["timeout"], 2);
    assert_eq!(cron["max_retries"], 1);
    assert_eq!(cron["failure_notify"], true);
    let next = ts(&cron["next_run_at"]);
    assert_eq!(
        next.timestamp() % 300,
        0,
        "on a five-minute boundary: {next}"
    );
}

/// The fields of the native schedule answer, and no others.
const NATIVE_FIELDS: [&str; 28] = [
    "id",
    "name",
    "status",
    "handler",
    "payload",
    "cron",
    "interval",
    "timezone",
    "delivery",
    "url",
    "method",
    "headers",
    "body",
    "signing_secret_id",
    "timeout",
    "max_retries",
    "queue",
    "concurrency_key",
    "priority",
    "catch_up",
    "overlap",
    "failure_notify",
    "last_status",
    "last_run_at",
    "next_run_at",
    "next_fire_at",
    "created_at",
    "updated_at",
];

fn assert_native_shape(schedule: &Value) {
    let mut got: Vec<&str> = schedule
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {schedule}"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = NATIVE_FIELDS.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "{schedule}");
}

/// Which dialect a request is decides its defaults; a request naming one
/// thing in two dialects' words is refused, naming the field. Every answer
/// is the native shape, on every route.
async fn request_dialects_have_their_defaults_and_do_not_mix(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let url = "https://api.example.com/x";
    let made = |body: Value| {
        let s = &s;
        async move {
            let schedule = create(s, body).await;
            assert_native_shape(&schedule);
            (schedule["max_retries"].clone(), schedule["timeout"].clone())
        }
    };
    // Chronos: a handler. Krafter: any of its names. CronPilot: a url.
    assert_eq!(
        made(json!({"name": "c", "handler": "h", "cron": "@daily"})).await,
        (json!(3), json!(30))
    );
    assert_eq!(
        made(json!({"name": "k", "schedule_type": "cron", "schedule": "@daily", "url": url})).await,
        (json!(3), json!(30))
    );
    assert_eq!(
        made(json!({"name": "k", "schedule": "every_1h", "url": url})).await,
        (json!(3), json!(30))
    );
    assert_eq!(
        made(json!({"name": "p", "cron": "@daily", "url": url})).await,
        (json!(0), json!(30))
    );
    assert_eq!(
        made(json!({"name": "p", "cron": "@daily", "url": url, "retries": 2})).await,
        (json!(2), json!(30))
    );
    // Native names with a url are still CronPilot's shape.
    assert_eq!(
        made(json!({"name": "p", "cron": "@daily", "url": url, "max_retries": 1, "timeout": 9}))
            .await,
        (json!(1), json!(9))
    );

    let post = |body: Value| s.post(&s.admin_key, "/v1/schedules", body);
    for (body, field) in [
        (
            json!({"name": "n", "schedule_type": "cron", "schedule": "@daily", "cron": "@daily", "url": url}),
            "cron",
        ),
        (
            json!({"name": "n", "schedule_type": "interval", "schedule": "every_5m",
                   "interval": {"value": 5, "unit": "minute"}, "url": url}),
            "interval",
        ),
        (
            json!({"name": "n", "schedule": "every_5m", "url": url, "timeout": 5, "timeout_ms": 5000}),
            "timeout",
        ),
        (
            json!({"name": "n", "schedule": "every_5m", "url": url, "retries": 1}),
            "retries",
        ),
        (
            json!({"name": "n", "cron": "@daily", "url": url, "retries": 1, "max_retries": 1}),
            "retries",
        ),
        (
            json!({"name": "n", "cron": "@daily", "handler": "h", "retries": 1}),
            "retries",
        ),
    ] {
        // Each word alone fits the document; together they break a rule.
        let answer = post(body.clone()).await;
        assert_error(&answer, 422, "validation_failed", Some(field));
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body} → {message}");
    }
    // A missing timing or target is named in the request's own words.
    let answer = post(json!({"name": "n", "schedule_type": "cron", "url": url})).await;
    assert_error(&answer, 422, "validation_failed", Some("schedule"));
    let answer = post(json!({"name": "n", "timeout_ms": 1000, "url": url})).await;
    assert_error(&answer, 422, "validation_failed", Some("schedule_type"));
    let answer = post(json!({"name": "n", "schedule": "every_5m"})).await;
    assert_error(&answer, 422, "validation_failed", Some("url"));
    let answer = post(json!({"name": "n", "cron": "@daily", "retries": 1})).await;
    assert_error(&answer, 422, "validation_failed", Some("url"));

    // PATCH: the patch's words are checked; the fields given change.
    let pilot = create(&s, json!({"name": "p", "cron": "@daily", "url": url})).await;
    let path = format!("/v1/schedules/{}", pilot["id"].as_str().unwrap());
    let (status, patched) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &path,
            Some(json!({"retries": 4, "timeout_ms": 2000})),
        )
        .await;
    assert_error(
        &(status, patched),
        422,
        "validation_failed",
        Some("retries"),
    );
    let (status, patched) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &path,
            Some(json!({"retries": 4})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_native_shape(&patched);
    assert_eq!(patched["max_retries"], 4);
    let (status, patched) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &path,
            Some(json!({"schedule": "every_5m", "timeout_ms": 2000})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["interval"], json!({"value": 5, "unit": "minute"}));
    assert_eq!(patched["timeout"], 2);
    assert_eq!(patched["max_retries"], 4, "unchanged: {patched}");
    for action in ["pause", "resume", "archive"] {
        let (status, answer) = s
            .post_empty(&s.admin_key, &format!("{path}/{action}"))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_native_shape(&answer);
    }
    let (_, list) = s.get(&s.admin_key, "/v1/schedules").await;
    for schedule in list["data"].as_array().unwrap() {
        assert_native_shape(schedule);
    }
}

async fn seed_004_shape_is_accepted_as_written(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let before = chrono::Utc::now();
    let cleanup = create(
        &s,
        json!({"name": "Cleanup stale sessions", "cron": "0 */6 * * *",
               "url": "https://api.example.com/cleanup", "method": "POST",
               "timezone": "America/New_York"}),
    )
    .await;
    for (field, value) in [
        ("name", json!("Cleanup stale sessions")),
        ("cron", json!("0 */6 * * *")),
        ("timezone", json!("America/New_York")),
        ("url", json!("https://api.example.com/cleanup")),
        ("method", json!("POST")),
        ("status", json!("active")),
        ("max_retries", json!(0)),
    ] {
        assert_eq!(cleanup[field], value, "{field}: {cleanup}");
    }
    assert_eq!(cleanup["next_fire_at"], cleanup["next_run_at"]);
    // The next 00:00, 06:00, 12:00 or 18:00 in New York.
    let next = ts(&cleanup["next_fire_at"]);
    let local = next.with_timezone(&chrono_tz::America::New_York);
    use chrono::Timelike;
    assert_eq!(
        (local.hour() % 6, local.minute(), local.second()),
        (0, 0, 0),
        "{local}"
    );
    assert!(
        next > before && next - before <= chrono::Duration::hours(6),
        "{next}"
    );

    // A body, sent as given, and retries.
    let with_body = create(
        &s,
        json!({"name": "Ping", "cron": "@hourly", "url": "https://api.example.com/ping",
               "headers": {"X-Token": "t"}, "body": "{\"ping\":true}", "retries": 2}),
    )
    .await;
    assert_eq!(with_body["body"], "{\"ping\":true}");
    // A credential's value is hidden (tests/redaction.rs).
    assert_eq!(with_body["headers"], json!({"X-Token": "***redacted***"}));
    assert_eq!(with_body["max_retries"], 2);
    assert_eq!(with_body["timezone"], "UTC");
    let id = with_body["id"].as_str().unwrap();
    let (status, job) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/trigger"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(job["payload"], "{\"ping\":true}");
    assert!(job["handler"].is_null());
    assert_eq!(job["max_retries"], 2);
    // A fire of a url schedule is a message too.
    let (status, message) = s
        .get(
            &s.admin_key,
            &format!("/v1/messages/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["body"], "{\"ping\":true}");
}

async fn bad_schedules_are_refused_naming_the_problem(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let post = |body: Value| s.post(&s.admin_key, "/v1/schedules", body);
    let url = "https://api.example.com/x";
    let answer = post(json!({"cron": "* * * * *", "url": url})).await;
    assert_error(&answer, 400, "validation_failed", Some("name"));
    assert_eq!(answer.1["error"]["message"], "name is required");
    let answer = post(json!({"name": "n", "url": url})).await;
    assert_error(&answer, 422, "validation_failed", Some("cron"));
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cron is required")
    );
    for bad in [
        "60 * * * *",
        "* * *",
        "0 0 32 * *",
        "0 0 * 13 *",
        "0 0 * * 8",
        "@often",
    ] {
        let answer = post(json!({"name": "n", "cron": bad, "url": url})).await;
        assert_error(&answer, 422, "validation_failed", Some("cron"));
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Invalid cron expression"),
            "{bad}: {message}"
        );
    }
    let answer = post(json!({"name": "n", "cron": "0 0 30 2 *", "url": url})).await;
    assert_error(&answer, 422, "validation_failed", Some("cron"));
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url,
                             "timezone": "Mars/Olympus"}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("timezone"));
    // What the document states about one field is a 400 ...
    let answer = post(json!({"name": "n", "handler": "h",
                             "interval": {"value": 0, "unit": "second"}}))
    .await;
    assert_error(&answer, 400, "validation_failed", Some("interval.value"));
    let answer = post(json!({"name": "n", "handler": "h",
                             "interval": {"value": 1, "unit": "fortnight"}}))
    .await;
    assert_error(&answer, 400, "validation_failed", Some("interval.unit"));
    for (body, field) in [
        (
            json!({"name": " ", "cron": "@daily", "handler": "h"}),
            "name",
        ),
        (
            json!({"name": "x".repeat(256), "cron": "@daily", "handler": "h"}),
            "name",
        ),
        (
            json!({"name": "n", "cron": "@daily", "handler": "a,b"}),
            "handler",
        ),
        (
            json!({"name": "n", "cron": "@daily", "handler": "h", "queue": "a b"}),
            "queue",
        ),
        (
            json!({"name": "n", "cron": "@daily", "handler": "h", "timeout": 0}),
            "timeout",
        ),
        (
            json!({"name": "n", "cron": "@daily", "handler": "h", "max_retries": 101}),
            "max_retries",
        ),
        (
            json!({"name": "n", "cron": "@daily", "url": url, "body": "x".repeat(102_401)}),
            "body",
        ),
        (
            json!({"name": "n", "cron": "@daily", "url": "not a url"}),
            "url",
        ),
    ] {
        let answer = post(body.clone()).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
    }
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url,
                             "headers": {"a b": "x"}}))
    .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    // ... and a rule between fields, or beyond any schema, a 422.
    let answer = post(json!({"name": "n", "handler": "h",
                             "interval": {"value": 600, "unit": "week"}}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("interval.value"));
    let answer = post(
        json!({"name": "n", "schedule_type": "interval", "schedule": "every_2m",
                             "url": url}),
    )
    .await;
    assert_error(&answer, 422, "validation_failed", Some("schedule"));
    let answer = post(
        json!({"name": "n", "cron": "@daily", "interval": {"value": 1, "unit": "hour"},
                             "handler": "h"}),
    )
    .await;
    assert_error(&answer, 422, "validation_failed", Some("cron"));
    let answer = post(json!({"name": "n", "cron": "@daily", "handler": "h", "url": url})).await;
    assert_error(&answer, 422, "validation_failed", Some("url"));
    let answer = post(json!({"name": "n", "cron": "@daily"})).await;
    assert_error(&answer, 422, "validation_failed", Some("handler"));
    let answer = post(json!({"name": "n", "cron": "@daily", "handler": "h", "body": "x"})).await;
    assert_error(&answer, 422, "validation_failed", Some("body"));
    let answer =
        post(json!({"name": "n", "cron": "@daily", "url": "http://93.184.216.34/x"})).await;
    assert_error(&answer, 422, "validation_failed", Some("url"));
    let answer = post(json!({"name": "n", "cron": "@daily", "url": "https://10.0.0.1/x"})).await;
    assert_error(&answer, 422, "ssrf_blocked", Some("url"));
    let answer = post(json!({"name": "n", "cron": "@daily", "handler": "h",
                             "delivery": {"type": "push", "http": {"url": "https://127.0.0.1/x"}}}))
    .await;
    assert_error(&answer, 422, "ssrf_blocked", Some("delivery.http.url"));
    // The document counts characters; the limit is 102,400 bytes.
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url,
                             "body": "é".repeat(51_201)}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("body"));
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url,
                             "retries": 1, "max_retries": 1}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("retries"));
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url,
                             "signing_secret_id": uuid::Uuid::now_v7()}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("signing_secret_id"));
    let answer = post(json!({"name": "n", "cron": "@daily", "url": url, "cronn": "x"})).await;
    assert_error(&answer, 400, "unknown_field", Some("cronn"));
    let answer = s.get(&s.admin_key, "/v1/schedules/nope").await;
    assert_error(&answer, 404, "not_found", None);
    let reader = s.key(&["jobs:read"]).await;
    let answer = s
        .post(
            &reader,
            "/v1/schedules",
            json!({"name": "n", "cron": "@daily", "url": url}),
        )
        .await;
    assert_error(&answer, 403, "forbidden", None);
}

async fn an_interval_schedule_is_delivered_by_pull(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    let schedule = create(
        &s,
        json!({"name": "tick", "handler": "tick", "payload": {"k": "v"},
               "interval": {"value": 1, "unit": "minute"}}),
    )
    .await;
    let (http, url, key) = (s.http.clone(), s.url("/v1/workers/poll"), worker.clone());
    let poll = tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(key)
            .json(&json!({"handlers": ["tick"], "wait_seconds": 30}))
            .send()
            .await
            .unwrap();
        common::decode(resp).await
    });
    s.polls_waiting(1).await;
    // The due time comes: the waiting poll gets the fire's job.
    let now = s.store.now().await.unwrap();
    let due = (ts(&schedule["next_run_at"]) - now.0).to_std().unwrap();
    s.advance_clock(due + Duration::from_millis(1)).await;
    let (status, leased) = poll.await.unwrap();
    assert_eq!(status, 200, "{leased}");
    let leased = &leased["data"][0];
    assert_eq!(leased["job"]["schedule_id"], schedule["id"]);
    assert_eq!(leased["job"]["payload"], json!({"k": "v"}));
    assert_eq!(leased["job"]["fire_at"], schedule["next_run_at"]);
    let (status, _) = s
        .post(
            &worker,
            "/v1/leases/ack",
            json!({"token": leased["lease"]["token"]}),
        )
        .await;
    assert_eq!(status, 200);
    let id = schedule["id"].as_str().unwrap();
    let (_, read) = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_eq!(read["last_status"], "completed", "{read}");
    assert!(read["last_run_at"].is_string(), "{read}");
}

async fn pause_resume_trigger_archive_and_delete(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let schedule = create(
        &s,
        json!({"name": "tick", "handler": "tick", "interval": {"value": 1, "unit": "minute"}}),
    )
    .await;
    let id = schedule["id"].as_str().unwrap();
    let path = |action: &str| format!("/v1/schedules/{id}/{action}");
    advance_to(&s, &schedule["next_run_at"]).await;
    assert_eq!(jobs_of(&s, id).await.len(), 1);
    let (status, paused) = s.post_empty(&s.admin_key, &path("pause")).await;
    assert_eq!(status, 200);
    assert_eq!(paused["status"], "paused");
    assert!(paused["next_run_at"].is_null());
    s.advance_clock_and_settle(Duration::from_secs(180)).await;
    assert_eq!(jobs_of(&s, id).await.len(), 1, "paused, yet fired");
    // Trigger works while paused, and does not resume it.
    let (status, job) = s.post_empty(&s.admin_key, &path("trigger")).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["schedule_id"], id);
    assert!(
        job["fire_at"].is_null(),
        "a trigger is not a due time's fire"
    );
    assert_eq!(jobs_of(&s, id).await.len(), 2);
    let (_, read) = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_eq!(read["status"], "paused");
    // Resume: the missed due times are not fired; it goes on from now (the
    // store's clock).
    let (status, resumed) = s.post_empty(&s.admin_key, &path("resume")).await;
    assert_eq!(status, 200);
    assert_eq!(resumed["status"], "active");
    let now = s.store.now().await.unwrap();
    assert!(ts(&resumed["next_run_at"]) > now.0, "{resumed}");
    s.settle().await;
    assert_eq!(jobs_of(&s, id).await.len(), 2, "a missed due time fired");
    advance_to(&s, &resumed["next_run_at"]).await;
    assert_eq!(
        jobs_of(&s, id).await.len(),
        3,
        "the next due time fired once"
    );
    // Archive: for good.
    let (status, archived) = s.post_empty(&s.admin_key, &path("archive")).await;
    assert_eq!(status, 200);
    assert_eq!(archived["status"], "archived");
    for action in ["resume", "pause", "trigger"] {
        let answer = s.post_empty(&s.admin_key, &path(action)).await;
        assert_error(&answer, 409, "schedule_archived", None);
    }
    let answer = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &format!("/v1/schedules/{id}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(&answer, 409, "schedule_archived", None);
    let (status, list) = s.get(&s.admin_key, "/v1/schedules?status=archived").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Delete: gone, its jobs stay.
    let jobs = jobs_of(&s, id).await.len();
    let (status, deleted) = s
        .send(
            Method::DELETE,
            &s.admin_key,
            &format!("/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    let answer = s.get(&s.admin_key, &format!("/v1/schedules/{id}")).await;
    assert_error(&answer, 404, "not_found", None);
    assert_eq!(jobs_of(&s, id).await.len(), jobs);
    // Another organization sees none of it.
    let other = s.other_org_key("other").await;
    let (_, list) = s.get(&other, "/v1/schedules").await;
    assert_eq!(list["data"], json!([]));
}

async fn next_runs_preview_the_timing(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let schedule = create(
        &s,
        json!({"name": "standup", "handler": "h", "cron": "0 9 * * 1-5",
               "timezone": "America/New_York"}),
    )
    .await;
    let id = schedule["id"].as_str().unwrap();
    let (status, runs) = s
        .get(
            &s.admin_key,
            &format!("/v1/schedules/{id}/next-runs?count=7"),
        )
        .await;
    assert_eq!(status, 200, "{runs}");
    let runs: Vec<_> = runs["data"].as_array().unwrap().iter().map(ts).collect();
    assert_eq!(runs.len(), 7);
    assert_eq!(runs[0], ts(&schedule["next_run_at"]));
    use chrono::{Datelike, Timelike};
    for pair in runs.windows(2) {
        assert!(pair[0] < pair[1]);
    }
    for run in &runs {
        let local = run.with_timezone(&chrono_tz::America::New_York);
        assert_eq!((local.hour(), local.minute()), (9, 0), "{local}");
        assert!(local.weekday().number_from_monday() <= 5, "{local}");
    }
    for bad in ["0", "101", "x"] {
        let (status, body) = s
            .get(
                &s.admin_key,
                &format!("/v1/schedules/{id}/next-runs?count={bad}"),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, runs) = s
        .get(
            &s.admin_key,
            &format!("/v1/schedules/{id}/next-runs?count=100"),
        )
        .await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 100);
}

async fn patch_and_put_change_a_schedule(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let schedule = create(
        &s,
        json!({"name": "a", "handler": "h", "interval": {"value": 1, "unit": "hour"},
               "payload": {"v": 1}}),
    )
    .await;
    let id = schedule["id"].as_str().unwrap();
    let path = format!("/v1/schedules/{id}");
    let patch = |body: Value| s.send(Method::PATCH, &s.admin_key, &path, Some(body));
    // A name: the timing and next run stay.
    let (status, renamed) = patch(json!({"name": "b"})).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "b");
    assert_eq!(renamed["next_run_at"], schedule["next_run_at"]);
    assert_eq!(renamed["payload"], json!({"v": 1}));
    // A cron replaces the interval and moves the next run.
    let (_, cron) = patch(json!({"cron": "0 0 * * *", "timezone": "Europe/London"})).await;
    assert_eq!(cron["cron"], "0 0 * * *");
    assert!(cron["interval"].is_null());
    let next = ts(&cron["next_run_at"]).with_timezone(&chrono_tz::Europe::London);
    use chrono::Timelike;
    assert_eq!((next.hour(), next.minute()), (0, 0));
    // enabled: false pauses.
    let (_, paused) = patch(json!({"enabled": false})).await;
    assert_eq!(paused["status"], "paused");
    let answer = patch(json!({"cron": "nope"})).await;
    assert_error(&answer, 422, "validation_failed", Some("cron"));
    // PATCH requires nothing, and reads null as absent; PUT requires a name.
    let (status, kept) = patch(json!({"name": null, "handler": null})).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["name"], "b");
    let answer = s
        .send(
            Method::PUT,
            &s.admin_key,
            &path,
            Some(json!({"cron": "@daily", "handler": "h"})),
        )
        .await;
    assert_error(&answer, 400, "validation_failed", Some("name"));
    // PUT replaces the whole definition (and is active unless told).
    let (status, put) = s
        .send(
            Method::PUT,
            &s.admin_key,
            &path,
            Some(json!({"name": "c", "cron": "@daily", "url": "https://api.example.com/c"})),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["name"], "c");
    assert!(put["handler"].is_null());
    assert_eq!(put["url"], "https://api.example.com/c");
    assert_eq!(put["status"], "active");
    assert_eq!(put["id"], schedule["id"]);
    assert_eq!(put["created_at"], schedule["created_at"]);
}

/// A schedule's `concurrency_key` is taken as a job's is, shown, changed
/// by `PATCH` and removed by `PUT` (a `PATCH` reads null as absent); each
/// job it makes, by its timing or by a trigger, carries it, and the queue's
/// per-key limit holds them.
async fn a_schedules_concurrency_key_goes_with_each_job(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    let (status, queue) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "tenants", "concurrency": null, "key_concurrency": 1}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    let schedule = create(
        &s,
        json!({"name": "bill acme", "handler": "bill", "queue": "tenants",
               "concurrency_key": "acme", "interval": {"value": 1, "unit": "minute"}}),
    )
    .await;
    assert_eq!(schedule["concurrency_key"], "acme");
    let id = schedule["id"].as_str().unwrap();
    let path = format!("/v1/schedules/{id}");
    let (_, read) = s.get(&s.admin_key, &path).await;
    assert_eq!(read["concurrency_key"], "acme");
    let plain = create(
        &s,
        json!({"name": "plain", "handler": "h", "cron": "@daily"}),
    )
    .await;
    assert_eq!(plain["concurrency_key"], Value::Null, "{plain}");

    // A fire's job and a trigger's carry the key; the queue starts one of
    // them at a time.
    advance_to(&s, &schedule["next_run_at"]).await;
    let (status, triggered) = s.post_empty(&s.admin_key, &format!("{path}/trigger")).await;
    assert_eq!(status, 202, "{triggered}");
    let jobs = jobs_of(&s, id).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(!jobs[0]["fire_at"].is_null(), "a due time's fire");
    for job in &jobs {
        assert_eq!(job["concurrency_key"], "acme", "{job}");
        assert_eq!(job["queue"], "tenants", "{job}");
    }
    let (status, leased) = s
        .post(
            &worker,
            "/v1/workers/poll",
            json!({"handlers": ["bill"], "max_jobs": 10}),
        )
        .await;
    assert_eq!(status, 200, "{leased}");
    assert_eq!(leased["data"].as_array().unwrap().len(), 1, "{leased}");

    let patch = |body: Value| s.send(Method::PATCH, &s.admin_key, &path, Some(body));
    // Another field leaves it; a new key replaces it; null is absent.
    let (status, renamed) = patch(json!({"name": "renamed"})).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["concurrency_key"], "acme");
    let (_, changed) = patch(json!({"concurrency_key": "globex"})).await;
    assert_eq!(changed["concurrency_key"], "globex");
    let (_, kept) = patch(json!({"concurrency_key": null})).await;
    assert_eq!(kept["concurrency_key"], "globex");
    let (_, triggered) = s.post_empty(&s.admin_key, &format!("{path}/trigger")).await;
    assert_eq!(triggered["concurrency_key"], "globex");
    // PUT replaces the whole definition: without a key, it has none.
    let (status, put) = s
        .send(
            Method::PUT,
            &s.admin_key,
            &path,
            Some(
                json!({"name": "bill", "handler": "bill", "queue": "tenants",
                        "interval": {"value": 1, "unit": "minute"}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["concurrency_key"], Value::Null);
    let (_, read) = s.get(&s.admin_key, &path).await;
    assert_eq!(read["concurrency_key"], Value::Null);
    let (_, triggered) = s.post_empty(&s.admin_key, &format!("{path}/trigger")).await;
    assert_eq!(triggered["concurrency_key"], Value::Null);

    // Held to the same rules as a job's key: 1 to 255 characters (400).
    for key in [String::new(), "k".repeat(256)] {
        let body = json!({"name": "n", "handler": "h", "cron": "@daily", "concurrency_key": key});
        let answer = s.post(&s.admin_key, "/v1/schedules", body).await;
        assert_error(&answer, 400, "validation_failed", Some("concurrency_key"));
        let answer = patch(json!({"concurrency_key": key})).await;
        assert_error(&answer, 400, "validation_failed", Some("concurrency_key"));
        let job = json!({"name": "n", "handler": "h", "concurrency_key": key});
        let answer = s.post(&s.admin_key, "/v1/jobs", job).await;
        assert_error(&answer, 400, "validation_failed", Some("concurrency_key"));
    }
    let (status, longest) = patch(json!({"concurrency_key": "k".repeat(255)})).await;
    assert_eq!(status, 200, "{longest}");
    assert_eq!(longest["concurrency_key"], "k".repeat(255));
}

async fn overlap_policies_hold_fires_back(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    // Nobody takes these jobs: each first job stays unfinished.
    let make = |overlap: &str| {
        json!({"name": overlap, "handler": format!("overlap-{overlap}"), "overlap": overlap,
               "interval": {"value": 1, "unit": "minute"}})
    };
    let allow = create(&s, make("allow")).await;
    let skip = create(&s, make("skip")).await;
    let wait = create(&s, make("wait")).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    // Three due times pass, each on time.
    advance_to(&s, &wait["next_run_at"]).await;
    for _ in 0..2 {
        s.advance_clock_and_settle(Duration::from_secs(60)).await;
    }
    assert_eq!(jobs_of(&s, &id(&allow)).await.len(), 3, "allow");
    assert_eq!(jobs_of(&s, &id(&skip)).await.len(), 1, "skip");
    assert_eq!(jobs_of(&s, &id(&wait)).await.len(), 1, "wait");
    // The waiting schedule's job ends: its one held fire goes at once,
    // with no clock moving.
    let (_, leased) = s
        .post(
            &worker,
            "/v1/workers/poll",
            json!({"handlers": ["overlap-wait"]}),
        )
        .await;
    let token = leased["data"][0]["lease"]["token"].clone();
    s.post(&worker, "/v1/leases/ack", json!({"token": token}))
        .await;
    let jobs = wait_jobs(&s, &id(&wait), 2, Duration::from_secs(10)).await;
    s.settle().await;
    assert_eq!(
        jobs_of(&s, &id(&wait)).await.len(),
        2,
        "one held fire, not one per missed due time: {jobs:?}"
    );
}

/// The store's clock now, as the servers read it.
async fn store_now(clock: &DynStore) -> chrono::DateTime<chrono::Utc> {
    clock.now().await.unwrap().0
}

/// The fire times of a schedule's jobs, oldest first, once it has at least
/// `n` jobs (looked up through `serve`, for at most 20 s).
async fn fires_of(
    serve: &Serve,
    admin: &str,
    id: &str,
    n: usize,
) -> Vec<chrono::DateTime<chrono::Utc>> {
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = get(
            &http,
            serve,
            admin,
            &format!("/v1/jobs?schedule_id={id}&limit=100"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let mut fires: Vec<_> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| ts(&j["fire_at"]))
            .collect();
        if fires.len() >= n {
            fires.sort();
            return fires;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} jobs: {page}",
            fires.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a server has moved the schedule's next run past the store's
/// clock: it has made its pass over the schedule's due times.
async fn passed(serve: &Serve, clock: &DynStore, admin: &str, id: &str) -> Value {
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, schedule) = get(&http, serve, admin, &format!("/v1/schedules/{id}")).await;
        if schedule["next_run_at"].is_string()
            && ts(&schedule["next_run_at"]) > store_now(clock).await
        {
            return schedule;
        }
        assert!(Instant::now() < deadline, "never passed: {schedule}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every due time has exactly one job: counted by `fire_at`, consecutive
/// minutes with no gap and no repeat — through a restart of the real
/// binary, and on PostgreSQL with two server processes firing the same
/// schedule. Time passes on the test clock.
async fn one_job_per_due_time_across_restarts_and_processes(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let http = http();
    let args = ["--test-clock"];
    let mut first = Serve::start_with(&backing, &args).await;
    let admin = first.admin_key().await;
    let resp = http
        .post(first.url("/v1/schedules"))
        .bearer_auth(&admin)
        .json(&json!({"name": "tick", "handler": "tick",
                      "interval": {"value": 1, "unit": "minute"}}))
        .send()
        .await
        .unwrap();
    let (status, schedule) = common::decode(resp).await;
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_str().unwrap().to_string();
    let anchor = ts(&schedule["created_at"]);
    let clock = backing.test_clock();
    let advance = |by: Duration| {
        let clock = clock.clone();
        async move { clock.advance_clock(by).await.unwrap() }
    };
    // Two due times on the first server.
    let to_first = (ts(&schedule["next_run_at"]) - store_now(&clock).await)
        .to_std()
        .unwrap();
    advance(to_first + Duration::from_millis(1)).await;
    fires_of(&first, &admin, &id, 1).await;
    advance(Duration::from_secs(60)).await;
    fires_of(&first, &admin, &id, 2).await;
    // A restart, quicker than an outage: every due time still fires.
    first.stop_gracefully().await;
    let mut servers = vec![Serve::start_with(&backing, &args).await];
    if kind == StoreKind::Postgres {
        servers.push(Serve::start_with(&backing, &args).await);
    }
    for n in 3..=6 {
        advance(Duration::from_secs(60)).await;
        fires_of(&servers[0], &admin, &id, n).await;
    }
    let last = &servers[0];
    let resp = http
        .post(last.url(&format!("/v1/schedules/{id}/pause")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let fires = fires_of(last, &admin, &id, 6).await;
    assert_eq!(fires.len(), 6, "one job per due time: {fires:?}");
    assert_eq!((fires[0] - anchor).num_seconds(), 60, "{fires:?}");
    for pair in fires.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_milliseconds(), 60_000, "{fires:?}");
    }
}

/// The server is stopped across ten due times (longer than an outage's
/// threshold, on the test clock); after the restart each schedule catches
/// up as its policy says: `skip` none of them, `one` once for all of them,
/// `all` each.
async fn catch_up_policies_after_downtime(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let http = http();
    let args = ["--test-clock"];
    let mut first = Serve::start_with(&backing, &args).await;
    let admin = first.admin_key().await;
    let mut schedules = Vec::new();
    for policy in ["skip", "one", "all"] {
        let resp = http
            .post(first.url("/v1/schedules"))
            .bearer_auth(&admin)
            .json(
                &json!({"name": policy, "handler": "tick", "catch_up": policy,
                          "interval": {"value": 1, "unit": "minute"}}),
            )
            .send()
            .await
            .unwrap();
        let (status, schedule) = common::decode(resp).await;
        assert_eq!(status, 201, "{schedule}");
        schedules.push(schedule);
    }
    let id = |i: usize| schedules[i]["id"].as_str().unwrap().to_string();
    // Each fires its first due time on time.
    let latest = schedules
        .iter()
        .map(|s| ts(&s["next_run_at"]))
        .max()
        .unwrap();
    let clock = backing.test_clock();
    let to_first = (latest - store_now(&clock).await).to_std().unwrap();
    clock
        .advance_clock(to_first + Duration::from_millis(1))
        .await
        .unwrap();
    for i in 0..3 {
        fires_of(&first, &admin, &id(i), 1).await;
    }
    // Down for ten and a half minutes: the due times of minutes 2 to 11 pass
    // with no scheduler running.
    first.stop_gracefully().await;
    clock.advance_clock(Duration::from_secs(630)).await.unwrap();
    let second = Serve::start_with(&backing, &args).await;
    let mut counts = Vec::new();
    for i in 0..3 {
        passed(&second, &clock, &admin, &id(i)).await;
        let fires = fires_of(&second, &admin, &id(i), 1).await;
        // Missed due times are fired with their own fire_at, each once.
        let unique: std::collections::HashSet<_> = fires.iter().collect();
        assert_eq!(unique.len(), fires.len(), "{fires:?}");
        counts.push(fires.len());
    }
    assert_eq!(counts, vec![1, 2, 11], "skip, one, all: {counts:?}");
}

/// The Rust SDK's client over the same routes.
async fn the_rust_client_manages_schedules(kind: StoreKind) {
    use chronos::{Client, CreateSchedule, Delay, ScheduleStatus, TimeUnit};
    let s = TestServer::start(kind).await;
    let client = Client::new(&s.base, &s.admin_key).unwrap();
    let created = client
        .create_schedule(&CreateSchedule {
            name: Some("report".into()),
            handler: Some("report".into()),
            interval: Some(Delay {
                value: 1,
                unit: TimeUnit::Day,
            }),
            timezone: Some("Europe/London".into()),
            concurrency_key: Some("customer-42".into()),
            ..CreateSchedule::default()
        })
        .await
        .unwrap();
    assert_eq!(created.status, ScheduleStatus::Active);
    assert_eq!(created.concurrency_key.as_deref(), Some("customer-42"));
    let runs = client.next_runs(created.id, 3).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(Some(runs[0]), created.next_run_at);
    let paused = client.pause_schedule(created.id).await.unwrap();
    assert_eq!(paused.status, ScheduleStatus::Paused);
    let job = client.trigger_schedule(created.id).await.unwrap();
    assert_eq!(job.schedule_id, Some(created.id));
    assert_eq!(job.concurrency_key.as_deref(), Some("customer-42"));
    let renamed = client
        .update_schedule(
            created.id,
            &CreateSchedule {
                name: Some("daily report".into()),
                ..CreateSchedule::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "daily report");
    assert_eq!(renamed.status, ScheduleStatus::Paused);
    assert_eq!(renamed.concurrency_key.as_deref(), Some("customer-42"));
    let resumed = client.resume_schedule(created.id).await.unwrap();
    assert_eq!(resumed.status, ScheduleStatus::Active);
    let listed = client
        .list_schedules(Some(ScheduleStatus::Active), None, None)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);
    assert!(
        client
            .list_schedule_executions(created.id, None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let bad = client
        .create_schedule(&CreateSchedule {
            name: Some("bad".into()),
            handler: Some("h".into()),
            cron: Some("61 * * * *".into()),
            ..CreateSchedule::default()
        })
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("Invalid cron expression"), "{bad}");
    client.archive_schedule(created.id).await.unwrap();
    client.delete_schedule(created.id).await.unwrap();
    assert!(client.get_schedule(created.id).await.is_err());
}
