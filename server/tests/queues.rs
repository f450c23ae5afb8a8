//! Queues over real HTTP (seed 004's `/v1/queues`), on both stores: the
//! requests and answers as the seed documents them, its validation messages,
//! scopes, the rules of deleting a queue, publishing onto one, jobs and
//! schedules naming only queues that exist, and a queue's retries as its
//! jobs' default. What the limits do to leases is `store_flow.rs`; across
//! processes, `lease_processes.rs`.

mod common;

use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::socket::{connect, recv, send};
use common::{StoreKind, TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    a_queue_is_created_as_seed_004_shows,
    queue_requests_are_validated_with_the_seeds_messages,
    queues_are_read_with_jobs_read_and_managed_with_admin,
    queues_change_pause_resume_and_unblock,
    deleting_a_queue_keeps_what_depends_on_it,
    jobs_batches_and_schedules_name_only_queues_that_exist,
    a_message_published_onto_a_queue_inherits_its_settings,
    a_job_without_max_retries_takes_its_queues_retries,
    rate_and_per_key_limits_are_taken_and_keys_are_listed,
    a_strict_queue_shows_the_handler_no_worker_serves,
);

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, queue) = s.post(&s.admin_key, "/v1/queues", body).await;
    assert_eq!(status, 201, "{queue}");
    queue
}

async fn a_queue_is_created_as_seed_004_shows(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let queue = create(&s, json!({"name": "email-sends", "concurrency": 5})).await;
    for (field, value) in [
        ("name", json!("email-sends")),
        ("concurrency", json!(5)),
        ("max_retries", json!(3)),
        ("ordering", json!("fifo")),
        ("failure_mode", json!("continue")),
        ("status", json!("active")),
        ("rate_limit", Value::Null),
        ("rate_period_seconds", Value::Null),
        ("blocked", json!(false)),
        ("blocked_message_count", json!(0)),
    ] {
        assert_eq!(queue[field], value, "{field} in {queue}");
    }
    assert!(queue["id"].is_string() && queue["created_at"].is_string());
    assert!(queue.get("stats").is_none(), "stats only on GET one");

    // Seed 004's defaults for a name alone: one at a time.
    let one = create(&s, json!({"name": "serial"})).await;
    assert_eq!(one["concurrency"], 1);

    // The same name again.
    let again = s
        .post(&s.admin_key, "/v1/queues", json!({"name": "serial"}))
        .await;
    assert_error(&again, 409, "queue_exists", None);

    // Listed by name, with `default`.
    let (status, list) = s.get(&s.admin_key, "/v1/queues").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "email-sends", "serial"]);
    let default = &list["data"][0];
    assert_eq!(
        default["concurrency"],
        Value::Null,
        "the default queue limits nothing"
    );

    // One, with what it holds.
    s.post(
        &s.admin_key,
        "/v1/jobs",
        json!({"name": "n", "handler": "send", "queue": "email-sends"}),
    )
    .await;
    let (status, got) = s.get(&s.admin_key, "/v1/queues/email-sends").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["stats"]["queued"], 1);
    assert_eq!(got["stats"]["running"], 0);
    assert_eq!(got["stats"]["scheduled"], 0);
    assert!(got["stats"]["oldest_queued_at"].is_string());
    let missing = s.get(&s.admin_key, "/v1/queues/nope").await;
    assert_error(&missing, 404, "queue_not_found", Some("queue"));
}

async fn queue_requests_are_validated_with_the_seeds_messages(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    for (body, status, field, message) in [
        (json!({"concurrency": 2}), 400, "name", "name is required"),
        (
            json!({"name": "q", "concurrency": 0}),
            400,
            "concurrency",
            "concurrency must be between 1 and 100",
        ),
        (
            json!({"name": "q", "concurrency": 101}),
            400,
            "concurrency",
            "concurrency must be between 1 and 100",
        ),
        (
            json!({"name": "q", "ordering": "random"}),
            400,
            "ordering",
            "ordering must be one of: fifo, lifo",
        ),
        (
            json!({"name": "q", "failure_mode": "explode"}),
            400,
            "failure_mode",
            "failure_mode must be one of: continue, block, pause",
        ),
        (
            json!({"name": "q", "rate_limit": 10}),
            400,
            "",
            "rate_limit and rate_period_seconds must be set together",
        ),
        (
            json!({"name": "q", "default_target_group_id": "tg_1"}),
            404,
            "",
            "default_target_group_id not found: tg_1",
        ),
        (
            json!({"name": "q", "default_target_url": "https://127.0.0.1/x"}),
            422,
            "default_target_url",
            "",
        ),
        (
            json!({"name": "has space"}),
            400,
            "name",
            "name must be letters, digits, '-', '_', '.' or ':'",
        ),
        (json!({"name": "q", "colour": "red"}), 400, "colour", ""),
    ] {
        let (got, answer) = s.post(&s.admin_key, "/v1/queues", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
        }
        if !message.is_empty() {
            assert_eq!(answer["error"]["message"], message, "{body} → {answer}");
        }
    }
    let (_, list) = s.get(&s.admin_key, "/v1/queues").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing was made"
    );
}

async fn queues_are_read_with_jobs_read_and_managed_with_admin(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    create(&s, json!({"name": "q"})).await;
    let reader = s.key(&["jobs:read"]).await;
    let writer = s.key(&["jobs:write"]).await;
    assert_eq!(s.get(&reader, "/v1/queues").await.0, 200);
    assert_eq!(s.get(&reader, "/v1/queues/q").await.0, 200);
    let refused = s.post(&reader, "/v1/queues", json!({"name": "r"})).await;
    assert_error(&refused, 403, "forbidden", None);
    let refused = s.post_empty(&writer, "/v1/queues/q/pause").await;
    assert_error(&refused, 403, "forbidden", None);
    let refused = s.send(Method::DELETE, &writer, "/v1/queues/q", None).await;
    assert_error(&refused, 403, "forbidden", None);
    // Publishing is jobs:write.
    let (status, _) = s
        .post(
            &writer,
            "/v1/queues/q/messages",
            json!({"url": "https://api.example.com/x"}),
        )
        .await;
    assert_eq!(status, 202);
    let refused = s
        .post(
            &reader,
            "/v1/queues/q/messages",
            json!({"url": "https://api.example.com/x"}),
        )
        .await;
    assert_error(&refused, 403, "forbidden", None);
}

async fn queues_change_pause_resume_and_unblock(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    create(
        &s,
        json!({"name": "q", "concurrency": 4, "ordering": "lifo"}),
    )
    .await;
    let patch = |body: Value| {
        let s = &s;
        async move {
            s.send(Method::PATCH, &s.admin_key, "/v1/queues/q", Some(body))
                .await
        }
    };
    let (status, changed) = patch(json!({"concurrency": null, "retries": 7})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["concurrency"], Value::Null);
    assert_eq!(changed["max_retries"], 7);
    assert_eq!(changed["ordering"], "lifo", "what is not given stays");
    let refused = patch(json!({"name": "other"})).await;
    assert_error(&refused, 400, "unknown_field", Some("name"));
    let refused = patch(json!({"concurrency": 0})).await;
    assert_error(&refused, 400, "validation_failed", Some("concurrency"));
    let (status, _) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            "/v1/queues/nope",
            Some(json!({"retries": 1})),
        )
        .await;
    assert_eq!(status, 404);

    let (status, paused) = s.post_empty(&s.admin_key, "/v1/queues/q/pause").await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    let (_, resumed) = s.post_empty(&s.admin_key, "/v1/queues/q/resume").await;
    assert_eq!(resumed["status"], "active");
    let (status, unblocked) = s.post_empty(&s.admin_key, "/v1/queues/q/unblock").await;
    assert_eq!(status, 200);
    assert_eq!(unblocked["blocked"], false);
    for action in ["pause", "resume", "unblock"] {
        let answer = s
            .post_empty(&s.admin_key, &format!("/v1/queues/nope/{action}"))
            .await;
        assert_error(&answer, 404, "queue_not_found", Some("queue"));
    }
}

async fn deleting_a_queue_keeps_what_depends_on_it(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let delete = |path: &'static str| {
        let s = &s;
        async move { s.send(Method::DELETE, &s.admin_key, path, None).await }
    };
    let answer = delete("/v1/queues/default").await;
    assert_error(&answer, 409, "default_queue", None);
    assert_error(
        &delete("/v1/queues/nope").await,
        404,
        "queue_not_found",
        Some("queue"),
    );

    create(&s, json!({"name": "busy"})).await;
    let (_, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "queue": "busy"}),
        )
        .await;
    assert_error(
        &delete("/v1/queues/busy").await,
        409,
        "queue_not_empty",
        None,
    );
    let deleted = delete("/v1/queues/busy?force=true").await;
    assert_eq!(deleted, (200, json!({"name": "busy", "deleted": true})));
    let (_, job) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(job["status"], "cancelled", "force cancels what it held");
    assert_eq!(s.get(&s.admin_key, "/v1/queues/busy").await.0, 404);

    create(&s, json!({"name": "nightly"})).await;
    let (status, schedule) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "n", "handler": "h", "cron": "0 3 * * *", "queue": "nightly"}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let answer = delete("/v1/queues/nightly").await;
    assert_error(&answer, 409, "queue_in_use", None);
    let id = schedule["id"].as_str().unwrap();
    let (status, _) = s
        .send(
            Method::DELETE,
            &s.admin_key,
            &format!("/v1/schedules/{id}"),
            None,
        )
        .await;
    assert!(status < 300);
    assert_eq!(delete("/v1/queues/nightly").await.0, 200);
}

async fn jobs_batches_and_schedules_name_only_queues_that_exist(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let answer = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "queue": "typo"}),
        )
        .await;
    assert_error(&answer, 404, "queue_not_found", Some("queue"));
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("typo")
    );

    let answer = s
        .post(
            &s.admin_key,
            "/v1/jobs/batch",
            json!({"jobs": [{"name": "a", "handler": "h"},
                            {"name": "b", "handler": "h", "queue": "typo"}]}),
        )
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(answer.1["data"][0]["job"].is_object(), "{}", answer.1);
    assert_eq!(answer.1["data"][1]["error"]["code"], "queue_not_found");

    let answer = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "n", "handler": "h", "cron": "0 3 * * *", "queue": "typo"}),
        )
        .await;
    assert_error(&answer, 404, "queue_not_found", Some("queue"));
    let (_, jobs) = s.get(&s.admin_key, "/v1/jobs?queue=typo").await;
    assert!(jobs["data"].as_array().unwrap().is_empty());
}

async fn a_message_published_onto_a_queue_inherits_its_settings(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (_, secret) = s
        .post(&s.admin_key, "/v1/signing-secrets", json!({"name": "s"}))
        .await;
    create(
        &s,
        json!({"name": "email-sends", "retries": 5,
               "signing_secret_id": secret["id"],
               "default_target_url": "https://api.example.com/send-email"}),
    )
    .await;
    let (status, accepted) = s
        .post(
            &s.admin_key,
            "/v1/queues/email-sends/messages",
            json!({"body": "{ \"to\": \"user@example.com\", \"template\": \"welcome\" }"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let keys: Vec<&String> = accepted.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["message_id", "queue", "scheduled_at"]);
    assert_eq!(accepted["queue"], "email-sends");
    let id = accepted["message_id"].as_str().unwrap();
    let (_, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
    assert_eq!(message["url"], "https://api.example.com/send-email");
    assert_eq!(message["retries"], 5);
    assert_eq!(message["signing_secret_id"], secret["id"]);
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(job["queue"], "email-sends");

    // An explicit url wins; none at all, and no default, is refused.
    create(&s, json!({"name": "bare"})).await;
    let answer = s
        .post(
            &s.admin_key,
            "/v1/queues/bare/messages",
            json!({"body": "x"}),
        )
        .await;
    assert_error(&answer, 422, "validation_failed", Some("url"));
    assert_eq!(answer.1["error"]["message"], "url is required");
    let answer = s
        .post(
            &s.admin_key,
            "/v1/queues/nope/messages",
            json!({"url": "https://api.example.com/x"}),
        )
        .await;
    assert_error(&answer, 404, "queue_not_found", Some("queue"));
    let request = json!({"url": "https://api.example.com/x", "deduplication_id": "d1"});
    let first = s
        .post(&s.admin_key, "/v1/queues/bare/messages", request.clone())
        .await;
    assert_eq!(first.0, 202);
    let again = s
        .post(&s.admin_key, "/v1/queues/bare/messages", request)
        .await;
    assert_error(&again, 409, "duplicate_message", None);
    let answer = s
        .post(
            &s.admin_key,
            "/v1/queues/bare/messages",
            json!({"url": "https://api.example.com/x", "callback_queue_id": "q"}),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
}

async fn a_job_without_max_retries_takes_its_queues_retries(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    create(&s, json!({"name": "patient", "retries": 9})).await;
    let (_, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "queue": "patient"}),
        )
        .await;
    assert_eq!(job["max_retries"], 9);
    let (_, own) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "queue": "patient", "max_retries": 1}),
        )
        .await;
    assert_eq!(own["max_retries"], 1, "the job's own wins");
    let (_, default) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h"}),
        )
        .await;
    assert_eq!(default["max_retries"], 3, "the default queue's retries");
}

async fn rate_and_per_key_limits_are_taken_and_keys_are_listed(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let queue = create(
        &s,
        json!({"name": "tenants", "concurrency": null, "rate_limit": 100,
               "rate_period_seconds": 60, "key_concurrency": 1, "key_rate_limit": 10,
               "key_rate_period_seconds": 60}),
    )
    .await;
    for (field, value) in [
        ("concurrency", Value::Null),
        ("rate_limit", json!(100)),
        ("rate_period_seconds", json!(60)),
        ("key_concurrency", json!(1)),
        ("key_rate_limit", json!(10)),
        ("key_rate_period_seconds", json!(60)),
    ] {
        assert_eq!(queue[field], value, "{field} in {queue}");
    }
    for (key, n) in [("acme", 3), ("globex", 1)] {
        for _ in 0..n {
            let (status, job) = s
                .post(
                    &s.admin_key,
                    "/v1/jobs",
                    json!({"name": "n", "handler": "bill", "queue": "tenants",
                           "concurrency_key": key}),
                )
                .await;
            assert_eq!(status, 201, "{job}");
            assert_eq!(job["concurrency_key"], key);
        }
    }
    let (_, plain) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "bill", "queue": "tenants"}),
        )
        .await;
    assert_eq!(plain["concurrency_key"], Value::Null);

    // One of each key starts (key_concurrency 1), and the job without one.
    let (status, leased) = s
        .post(
            &s.admin_key,
            "/v1/workers/poll",
            json!({"handlers": ["bill"], "max_jobs": 10}),
        )
        .await;
    assert_eq!(status, 200, "{leased}");
    assert_eq!(leased["data"].as_array().unwrap().len(), 3, "{leased}");

    let (status, keys) = s.get(&s.admin_key, "/v1/queues/tenants/keys").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(
        keys["data"],
        json!([{"key": "acme", "running": 1, "waiting": 2},
               {"key": "globex", "running": 1, "waiting": 0}])
    );
    let (_, one) = s.get(&s.admin_key, "/v1/queues/tenants/keys?limit=1").await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    let bad = s.get(&s.admin_key, "/v1/queues/tenants/keys?limit=0").await;
    assert_error(&bad, 400, "validation_failed", None);
    let missing = s.get(&s.admin_key, "/v1/queues/nope/keys").await;
    assert_error(&missing, 404, "queue_not_found", None);

    // A longer key than the document allows is refused.
    let long = "k".repeat(256);
    let (status, _) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "bill", "queue": "tenants", "concurrency_key": long}),
        )
        .await;
    assert_eq!(status, 400);
}

/// `stats.waiting_for_handler`: a queue of one slot whose next job needs a
/// handler no worker serves, whether workers connect over WebSocket or
/// long-poll (which keeps no session: its last poll for the handler counts
/// for 90 s, by the test clock).
async fn a_strict_queue_shows_the_handler_no_worker_serves(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    create(&s, json!({"name": "serial", "concurrency": 1})).await;
    assert_eq!(
        waiting_for_handler(&s, "serial").await,
        Value::Null,
        "an empty queue waits for nothing"
    );

    let (status, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "send", "queue": "serial"}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(waiting_for_handler(&s, "serial").await, "send");

    // Paused, so that polls for `send` take nothing and the job stays next.
    let (status, _) = s
        .post(&s.admin_key, "/v1/queues/serial/pause", json!({}))
        .await;
    assert_eq!(status, 200);
    let poll = |handlers: Value| {
        s.post(
            &s.admin_key,
            "/v1/workers/poll",
            json!({"handlers": handlers}),
        )
    };
    let (status, leased) = poll(json!(["other"])).await;
    assert_eq!((status, leased["data"].clone()), (200, json!([])));
    assert_eq!(
        waiting_for_handler(&s, "serial").await,
        "send",
        "a poll for another handler"
    );
    let (status, leased) = poll(json!(["other", "send"])).await;
    assert_eq!((status, leased["data"].clone()), (200, json!([])));
    assert_eq!(
        waiting_for_handler(&s, "serial").await,
        Value::Null,
        "a long-poll worker serves it"
    );

    // 90 s without a poll for it (this process records a handler at most
    // every 10 s: its next poll is not recorded again, and doesn't count).
    s.advance_clock(Duration::from_secs(85)).await;
    assert_eq!(waiting_for_handler(&s, "serial").await, Value::Null);
    s.advance_clock(Duration::from_secs(6)).await;
    assert_eq!(
        waiting_for_handler(&s, "serial").await,
        "send",
        "the poller is gone"
    );

    // A WebSocket worker that runs it, connected while the queue is paused.
    let mut ws = connect(&s, &s.admin_key).await;
    send(
        &mut ws,
        json!({"type": "hello", "worker_id": "w1", "handlers": ["send"], "max_in_flight": 1,
               "sdk": "test/0", "protocol": 1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    assert_eq!(
        waiting_for_handler(&s, "serial").await,
        Value::Null,
        "a WebSocket worker serves it"
    );
    drop(ws);
}

async fn waiting_for_handler(s: &TestServer, queue: &str) -> Value {
    let (status, queue) = s.get(&s.admin_key, &format!("/v1/queues/{queue}")).await;
    assert_eq!(status, 200, "{queue}");
    queue["stats"]["waiting_for_handler"].clone()
}
