//! Messages (seed 004's one-shot HTTP requests) over real HTTP, on both
//! stores: accepted with 202 once durable, deduplicated, checked like any
//! push target, and readable both as a message and as the job it is.

mod common;

use chronos_test_support::both_stores;
use common::{StoreKind, TestServer, assert_error};
use serde_json::{Value, json};

both_stores!(
    a_message_is_accepted_as_seed_004_shows,
    messages_are_checked,
    a_message_is_a_job,
    a_message_carries_its_concurrency_key,
);

fn seconds_from_now(v: &Value) -> i64 {
    let at = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    (at.to_utc() - chrono::Utc::now()).num_seconds()
}

async fn a_message_is_accepted_as_seed_004_shows(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let request = json!({
        "url": "https://api.example.com/send-reminder",
        "delay": 3600,
        "deduplication_id": "reminder-u_123-2026-05-29"
    });
    let (status, accepted) = s.post(&s.admin_key, "/v1/messages", request.clone()).await;
    assert_eq!(status, 202, "{accepted}");
    let keys: Vec<&String> = accepted.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["message_id", "scheduled_at"]);
    let ahead = seconds_from_now(&accepted["scheduled_at"]);
    assert!((3590..=3600).contains(&ahead), "{ahead}");

    // The same deduplication_id again: 409, naming the first.
    let answer = s.post(&s.admin_key, "/v1/messages", request).await;
    assert_error(&answer, 409, "duplicate_message", None);
    assert_eq!(answer.1["error"]["job_id"], accepted["message_id"]);

    let id = accepted["message_id"].as_str().unwrap();
    let (status, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["url"], "https://api.example.com/send-reminder");
    assert_eq!(message["method"], "POST");
    assert_eq!(message["status"], "scheduled");
    assert_eq!(message["retries"], 0);
    assert_eq!(message["attempt"], 0);
    assert_eq!(message["deduplication_id"], "reminder-u_123-2026-05-29");
    assert_eq!(message["scheduled_at"], accepted["scheduled_at"]);
    assert!(message["body"].is_null());

    // Neither delay nor scheduled_at: delivered at once; a body and headers
    // are kept as given.
    let (status, now) = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": "https://api.example.com/cleanup", "method": "PUT",
                   "headers": {"X-Run": "cleanup"}, "body": "{ \"run\": \"cleanup\" }",
                   "retries": 2}),
        )
        .await;
    assert_eq!(status, 202, "{now}");
    assert!(seconds_from_now(&now["scheduled_at"]).abs() <= 1);
    let id = now["message_id"].as_str().unwrap();
    let (_, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
    // Due at once: queued, or already sent (and, here, failing to resolve
    // and waiting to retry); push_delivery.rs follows messages all the way
    // to a real endpoint.
    assert!(
        message["status"] != "scheduled" || message["attempt"].as_u64() >= Some(1),
        "{message}"
    );
    assert_eq!(message["method"], "PUT");
    assert_eq!(message["headers"], json!({"X-Run": "cleanup"}));
    assert_eq!(message["body"], "{ \"run\": \"cleanup\" }");
    assert_eq!(message["retries"], 2);
}

async fn messages_are_checked(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    let post = |body: Value| s.post(key, "/v1/messages", body);
    let answer = post(json!({"delay": 5})).await;
    assert_error(&answer, 400, "validation_failed", Some("url"));
    assert_eq!(answer.1["error"]["message"], "url is required");
    let answer = post(json!({"url": "https://a.example/x", "delay": 5,
                             "scheduled_at": "2030-01-01T00:00:00Z"}))
    .await;
    assert_error(&answer, 400, "validation_failed", None);
    assert_eq!(
        answer.1["error"]["message"],
        "Provide either delay or scheduled_at, not both"
    );
    let answer = post(json!({"url": "https://a.example/x", "body": "x".repeat(102_401)})).await;
    assert_error(&answer, 400, "validation_failed", Some("body"));
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Body exceeds 102400 byte limit")
    );
    let (status, _) =
        post(json!({"url": "https://a.example/x", "body": "x".repeat(102_400)})).await;
    assert_eq!(status, 202);
    // Plain HTTP and private addresses are refused with 422 (seed 004).
    let answer = post(json!({"url": "http://93.184.216.34/x"})).await;
    assert_error(&answer, 422, "validation_failed", Some("url"));
    let answer = post(json!({"url": "https://127.0.0.1/x"})).await;
    assert_error(&answer, 422, "ssrf_blocked", Some("url"));
    let answer = post(json!({"url": "https://a.example/x", "callback_queue_id": "q"})).await;
    // No such queue (what callbacks need is fan_out.rs).
    assert_error(&answer, 404, "not_found", None);
    let answer = post(json!({"url": "https://a.example/x", "retires": 1})).await;
    assert_error(&answer, 400, "unknown_field", Some("retires"));
    let answer = post(json!({"url": "https://a.example/x",
                             "signing_secret_id": "0192d5a4-0000-7000-8000-000000000000"}))
    .await;
    assert_error(&answer, 422, "validation_failed", Some("signing_secret_id"));
    let reader = s.key(&["jobs:read"]).await;
    let answer = s
        .post(
            &reader,
            "/v1/messages",
            json!({"url": "https://a.example/x"}),
        )
        .await;
    assert_error(&answer, 403, "forbidden", None);
}

async fn a_message_is_a_job(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (_, accepted) = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": "https://api.example.com/hook", "body": "hi", "delay": 3600}),
        )
        .await;
    let id = accepted["message_id"].as_str().unwrap();
    let (status, job) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{job}");
    assert!(job["handler"].is_null());
    assert_eq!(job["payload"], "hi");
    assert_eq!(job["delivery"]["type"], "push");
    assert_eq!(job["max_retries"], 0);
    let (status, executions) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(executions["data"], json!([]), "not due for an hour");
    // A job with a handler is not a message.
    let (_, pulled) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h"}),
        )
        .await;
    let answer = s
        .get(
            &s.admin_key,
            &format!("/v1/messages/{}", pulled["id"].as_str().unwrap()),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
    let answer = s.get(&s.admin_key, "/v1/messages/nope").await;
    assert_error(&answer, 404, "not_found", None);
}

/// A message's `concurrency_key`, on either route, is its job's, and the
/// message shows it; it is held to the same rules as a job's key.
async fn a_message_carries_its_concurrency_key(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    let (status, queue) = s
        .post(
            key,
            "/v1/queues",
            json!({"name": "tenants", "key_concurrency": 1,
                   "default_target_url": "https://api.example.com/bill"}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    let published = [
        (
            "/v1/messages",
            json!({"url": "https://api.example.com/hook", "delay": 3600,
                   "concurrency_key": "acme"}),
            "default",
            "acme",
        ),
        (
            "/v1/queues/tenants/messages",
            json!({"delay": 3600, "concurrency_key": "globex"}),
            "tenants",
            "globex",
        ),
    ];
    for (route, body, queue, concurrency_key) in published {
        let (status, accepted) = s.post(key, route, body).await;
        assert_eq!(status, 202, "{route}: {accepted}");
        let id = accepted["message_id"].as_str().unwrap();
        let (_, message) = s.get(key, &format!("/v1/messages/{id}")).await;
        assert_eq!(message["concurrency_key"], concurrency_key, "{message}");
        let (_, job) = s.get(key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(
            (&job["queue"], &job["concurrency_key"]),
            (&json!(queue), &json!(concurrency_key)),
            "{job}"
        );
    }
    for route in ["/v1/messages", "/v1/queues/tenants/messages"] {
        let (_, accepted) = s
            .post(
                key,
                route,
                json!({"url": "https://api.example.com/x", "delay": 60}),
            )
            .await;
        let id = accepted["message_id"].as_str().unwrap();
        let (_, message) = s.get(key, &format!("/v1/messages/{id}")).await;
        assert_eq!(
            message["concurrency_key"],
            Value::Null,
            "{route}: {message}"
        );
        for bad in [String::new(), "k".repeat(256)] {
            let body = json!({"url": "https://api.example.com/x", "concurrency_key": bad});
            let answer = s.post(key, route, body).await;
            assert_error(&answer, 400, "validation_failed", Some("concurrency_key"));
        }
    }
}
