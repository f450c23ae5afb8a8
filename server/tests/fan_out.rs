//! Fan-out and callbacks against real HTTP endpoints on loopback, on both
//! stores: one delivery per member with its own headers, a failing member
//! retried alone, a callback once per outcome (not per retry) with the
//! outcome in its body, the group callback once — also when two servers end
//! the last deliveries together — no loop through a queue that names
//! itself, and nothing of another organization reached.

mod common;

use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::{Endpoint, StoreKind, TestServer, assert_error, wait_until};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    each_member_gets_one_delivery_with_its_own_headers,
    a_failing_member_is_retried_alone,
    a_callback_comes_once_per_outcome_with_the_outcome,
    an_answer_that_is_not_text_is_kept_as_base64,
    every_attempt_calls_back_for_each_failed_attempt_then_the_outcome,
    the_group_callback_comes_once_when_the_last_delivery_ends,
    two_servers_ending_the_last_deliveries_send_one_group_callback,
    a_queue_that_names_itself_for_callbacks_does_not_loop,
    publishes_are_checked,
);

const WITHIN: Duration = Duration::from_secs(20);

fn local() -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    }
}

/// A target group of `members` (`(url, headers)`); its id.
async fn group(s: &TestServer, name: &str, members: &[(String, Value)]) -> String {
    let (status, group) = s
        .post(&s.admin_key, "/v1/target-groups", json!({"name": name}))
        .await;
    assert_eq!(status, 201, "{group}");
    let id = group["id"].as_str().unwrap().to_string();
    for (url, headers) in members {
        let (status, member) = s
            .post(
                &s.admin_key,
                &format!("/v1/target-groups/{id}/members"),
                json!({"target_url": url, "headers": headers}),
            )
            .await;
        assert_eq!(status, 201, "{member}");
    }
    id
}

async fn queue(s: &TestServer, body: Value) {
    let (status, queue) = s.post(&s.admin_key, "/v1/queues", body).await;
    assert_eq!(status, 201, "{queue}");
}

/// The queue `results`, which delivers to `hooks`' `/callbacks`.
async fn results_queue(s: &TestServer, hooks: &Endpoint) {
    queue(
        s,
        json!({"name": "results", "concurrency": null, "default_target_url": hooks.url("/callbacks")}),
    )
    .await;
}

async fn publish(s: &TestServer, body: Value) -> Value {
    let (status, answer) = s.post(&s.admin_key, "/v1/messages", body).await;
    assert_eq!(status, 202, "{answer}");
    answer
}

/// Waits until the fan-out is no longer running; its status.
async fn fan_out_done(s: &TestServer, id: &str) -> Value {
    s.get_until(&s.admin_key, &format!("/v1/fan-outs/{id}"), |f| {
        f["status"] != "running"
    })
    .await
}

/// Publishes every outcome still waiting (on each server given), so that
/// what a test counts afterwards is all there will ever be.
async fn settle_outcomes(servers: &[&TestServer]) {
    for s in servers {
        while s.engine.publish_outcomes(100).await.unwrap().taken > 0 {}
    }
}

async fn each_member_gets_one_delivery_with_its_own_headers(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let members = [
        (
            endpoint.url("/eu"),
            json!({"X-Region": "eu", "Authorization": "Bearer eu"}),
        ),
        (endpoint.url("/us"), json!({"X-Region": "us"})),
        (endpoint.url("/ap"), json!({})),
    ];
    let id = group(&s, "regions", &members).await;
    let answer = publish(
        &s,
        json!({"default_target_group_id": id, "body": "{\"hello\":1}",
               "headers": {"X-Region": "none", "X-Trace": "t1"}}),
    )
    .await;
    assert_eq!(answer["fan_out"], true);
    assert_eq!(answer["count"], 3);
    assert_eq!(answer["queue"], "default");
    assert!(answer["scheduled_at"].is_string());
    let ids = answer["message_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    let fan_out_id = answer["fan_out_id"].as_str().unwrap();
    for id in ids {
        let id = id.as_str().unwrap();
        let (_, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
        assert_eq!(message["fan_out_id"], fan_out_id, "{message}");
        let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(job["fan_out_id"], fan_out_id, "{job}");
    }

    for (path, region) in [("/eu", "eu"), ("/us", "us"), ("/ap", "none")] {
        let got = endpoint.wait_for(path, 1, WITHIN).await;
        assert_eq!(got.len(), 1, "{path}");
        // The member's own headers win over the message's.
        assert_eq!(got[0].header("x-region"), Some(region), "{path}");
        assert_eq!(got[0].header("x-trace"), Some("t1"), "{path}");
        assert_eq!(got[0].body.as_ref(), b"{\"hello\":1}");
    }
    assert_eq!(
        endpoint.received_at("/eu")[0].header("authorization"),
        Some("Bearer eu")
    );
    let fan_out = fan_out_done(&s, fan_out_id).await;
    assert_eq!(fan_out["status"], "all_succeeded", "{fan_out}");
    assert_eq!(fan_out["count"], 3);
    assert_eq!(fan_out["succeeded"], 3);
    assert_eq!(fan_out["target_group_id"], id.as_str());
    let results = fan_out["results"].as_array().unwrap();
    let urls: Vec<&str> = results
        .iter()
        .map(|r| r["target_url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .all(|r| r["status"] == "succeeded" && r["http_status"] == 200)
    );
    // Each delivery is a message of its own, its credentials redacted.
    let (_, message) = s
        .get(
            &s.admin_key,
            &format!("/v1/messages/{}", ids[0].as_str().unwrap()),
        )
        .await;
    assert_eq!(message["url"], members[0].0.as_str());
    assert_eq!(message["headers"]["Authorization"], "***redacted***");

    // A member added later doesn't receive the earlier publish.
    let (status, _) = s
        .post(
            &s.admin_key,
            &format!("/v1/target-groups/{id}/members"),
            json!({"target_url": endpoint.url("/late")}),
        )
        .await;
    assert_eq!(status, 201);
    settle_outcomes(&[&s]).await;
    assert!(endpoint.received_at("/late").is_empty());
}

async fn a_failing_member_is_retried_alone(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with_test_clock(kind, local()).await;
    let id = group(
        &s,
        "mixed",
        &[
            (endpoint.url("/ok"), json!({})),
            (endpoint.url("/flaky/1"), json!({})),
            (endpoint.url("/status/404"), json!({})),
        ],
    )
    .await;
    let answer = publish(&s, json!({"default_target_group_id": id, "retries": 3})).await;
    endpoint.wait_for("/flaky/1", 1, WITHIN).await;
    endpoint.wait_for("/ok", 1, WITHIN).await;
    endpoint.wait_for("/status/404", 1, WITHIN).await;
    // The 503's retry is due after its backoff: move the clock past it.
    s.advance_clock_and_settle(Duration::from_secs(5)).await;
    endpoint.wait_for("/flaky/1", 2, WITHIN).await;
    let fan_out = fan_out_done(&s, answer["fan_out_id"].as_str().unwrap()).await;
    assert_eq!(fan_out["status"], "partial", "{fan_out}");
    assert_eq!(
        (fan_out["succeeded"].as_u64(), fan_out["failed"].as_u64()),
        (Some(2), Some(1))
    );
    // Only the failing member was called again; a 404 is not retried.
    assert_eq!(endpoint.received_at("/ok").len(), 1);
    assert_eq!(endpoint.received_at("/flaky/1").len(), 2);
    assert_eq!(endpoint.received_at("/status/404").len(), 1);
    let statuses: Vec<&str> = fan_out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "failed"]);
}

async fn a_callback_comes_once_per_outcome_with_the_outcome(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let hooks = Endpoint::start().await;
    let s = TestServer::start_with_test_clock(kind, local()).await;
    results_queue(&s, &hooks).await;
    // Succeeds on its second attempt: one callback, not two.
    let flaky = publish(
        &s,
        json!({"url": endpoint.url("/flaky/1"), "retries": 2, "callback_queue_id": "results"}),
    )
    .await;
    endpoint.wait_for("/flaky/1", 1, WITHIN).await;
    s.advance_clock_and_settle(Duration::from_secs(5)).await;
    // Dies at once: its callback says so.
    let dead = publish(
        &s,
        json!({"url": endpoint.url("/status/410"), "method": "PUT", "retries": 2,
               "callback_queue_id": "results"}),
    )
    .await;
    let got = hooks.wait_for("/callbacks", 2, WITHIN).await;
    settle_outcomes(&[&s]).await;
    assert_eq!(hooks.received_at("/callbacks").len(), 2, "one per outcome");
    let events: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let of = |id: &Value| {
        events
            .iter()
            .find(|e| e["message_id"] == *id)
            .unwrap_or_else(|| panic!("no callback for {id}: {events:?}"))
            .clone()
    };
    let ok = of(&flaky["message_id"]);
    assert_eq!(ok["status"], "succeeded");
    assert_eq!(ok["http_status"], 200);
    assert_eq!(ok["attempts"], 2);
    assert_eq!(ok["response_body"], "{\"ok\":true}");
    assert_eq!(ok["response_body_encoding"], "utf-8");
    assert_eq!(ok["response_truncated"], false);
    assert_eq!(ok["error"], Value::Null);
    assert_eq!(ok["fan_out_id"], Value::Null);
    assert_eq!(ok["url"], endpoint.url("/flaky/1"));
    assert_eq!(ok["method"], "POST");
    assert!(ok["created_at"].is_string() && ok["finished_at"].is_string());
    let failed = of(&dead["message_id"]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["http_status"], 410);
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["method"], "PUT");
    assert!(
        failed["error"].as_str().unwrap().contains("410"),
        "{failed}"
    );
    // A callback is a delivery like any other: JSON, with the message id.
    assert_eq!(
        got[0].header("content-type"),
        Some("application/json"),
        "{:?}",
        got[0].headers
    );
}

/// Bytes that are not UTF-8 are kept as they came, base64-encoded: on the
/// execution, in the job's result and in the callback.
async fn an_answer_that_is_not_text_is_kept_as_base64(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let hooks = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    results_queue(&s, &hooks).await;
    let sent = publish(
        &s,
        json!({"url": endpoint.url("/bytes"), "callback_queue_id": "results"}),
    )
    .await;
    let got = hooks.wait_for("/callbacks", 1, WITHIN).await;
    let event = got[0].json();
    assert_eq!(event["message_id"], sent["message_id"]);
    assert_eq!(event["response_body"], "/wCAYQ==");
    assert_eq!(event["response_body_encoding"], "base64");
    let id = sent["message_id"].as_str().unwrap();
    let (status, runs) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(status, 200, "{runs}");
    let run = &runs["data"][0];
    assert_eq!(run["response_body"], "/wCAYQ==", "{run}");
    assert_eq!(run["response_body_encoding"], "base64");
    let (_, job) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(job["result"], "/wCAYQ==");
    // Where its outcome went, on the job and the message.
    let (_, message) = s.get(&s.admin_key, &format!("/v1/messages/{id}")).await;
    assert_eq!(job["callback_queue_id"], message["callback_queue_id"]);
    assert!(message["callback_queue_id"].is_string(), "{message}");
    assert!(message.get("fan_out_id").is_none(), "{message}");
    // Text stays text, and says so.
    let text = publish(&s, json!({"url": endpoint.url("/text")})).await;
    let id = text["message_id"].as_str().unwrap();
    let runs = s
        .get_until(&s.admin_key, &format!("/v1/jobs/{id}/executions"), |r| {
            r["data"][0]["finished_at"].is_string()
        })
        .await;
    assert_eq!(runs["data"][0]["response_body"], "OK");
    assert_eq!(runs["data"][0]["response_body_encoding"], "utf-8");
}

/// `callback_on: "every_attempt"`: a callback for each failed attempt
/// with retries to follow (`final: false`), then the outcome (`final:
/// true`); and it needs a callback queue.
async fn every_attempt_calls_back_for_each_failed_attempt_then_the_outcome(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let hooks = Endpoint::start().await;
    let s = TestServer::start_with_test_clock(kind, local()).await;
    results_queue(&s, &hooks).await;
    let answer = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/ok"), "callback_on": "every_attempt"}),
        )
        .await;
    assert_error(&answer, 400, "validation_failed", Some("callback_on"));
    let sent = publish(
        &s,
        json!({"url": endpoint.url("/flaky/2"), "retries": 3, "callback_queue_id": "results",
               "callback_on": "every_attempt"}),
    )
    .await;
    for n in 1..=3 {
        endpoint.wait_for("/flaky/2", n, WITHIN).await;
        hooks.wait_for("/callbacks", n, WITHIN).await;
        s.advance_clock_and_settle(Duration::from_secs(10)).await;
    }
    settle_outcomes(&[&s]).await;
    let got = hooks.received_at("/callbacks");
    assert_eq!(got.len(), 3, "two attempts and the outcome");
    let events: Vec<Value> = got.iter().map(|r| r.json()).collect();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["message_id"], sent["message_id"]);
        assert_eq!(event["attempts"], n + 1);
        assert_eq!(event["final"], n == 2, "{event}");
    }
    assert_eq!(events[0]["status"], "failed");
    assert_eq!(events[0]["http_status"], 503);
    assert_eq!(events[2]["status"], "succeeded");
    assert_eq!(events[2]["http_status"], 200);

    // As a queue's default: its publishes call back on every attempt
    // unless they say otherwise; it needs a callback queue.
    let refused = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "nowhere", "callback_on": "every_attempt"}),
        )
        .await;
    assert_error(&refused, 400, "validation_failed", Some("callback_on"));
    let (status, work) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "work", "concurrency": null, "default_target_url": endpoint.url("/flaky/1"),
                   "retries": 1, "callback_queue_id": "results", "callback_on": "every_attempt"}),
        )
        .await;
    assert_eq!(status, 201, "{work}");
    assert_eq!(work["callback_on"], "every_attempt");
    let (status, sent) = s
        .post(
            &s.admin_key,
            "/v1/queues/work/messages",
            json!({"body": "{}"}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    endpoint.wait_for("/flaky/1", 1, WITHIN).await;
    hooks.wait_for("/callbacks", 4, WITHIN).await;
    s.advance_clock_and_settle(Duration::from_secs(10)).await;
    let got = hooks.wait_for("/callbacks", 5, WITHIN).await;
    settle_outcomes(&[&s]).await;
    let ours: Vec<Value> = got
        .iter()
        .map(|r| r.json())
        .filter(|e| e["message_id"] == sent["message_id"])
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert_eq!(
        (&ours[0]["final"], &ours[1]["final"]),
        (&json!(false), &json!(true))
    );
}

async fn the_group_callback_comes_once_when_the_last_delivery_ends(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let hooks = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    results_queue(&s, &hooks).await;
    let id = group(
        &s,
        "pair",
        &[
            (endpoint.url("/ok"), json!({})),
            (endpoint.url("/status/500"), json!({})),
        ],
    )
    .await;
    let answer = publish(
        &s,
        json!({"default_target_group_id": id, "callback_queue_id": "results"}),
    )
    .await;
    let fan_out_id = answer["fan_out_id"].as_str().unwrap();
    // Two member callbacks and one group callback.
    hooks.wait_for("/callbacks", 3, WITHIN).await;
    settle_outcomes(&[&s]).await;
    let events: Vec<Value> = hooks
        .received_at("/callbacks")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    let group_events: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("results").is_some())
        .collect();
    assert_eq!(group_events.len(), 1, "{events:?}");
    let group_event = group_events[0];
    assert_eq!(group_event["fan_out_id"], fan_out_id);
    assert_eq!(group_event["status"], "partial");
    let results = group_event["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["target_url"], endpoint.url("/ok"));
    assert_eq!(results[0]["status"], "succeeded");
    assert_eq!(results[0]["http_status"], 200);
    assert_eq!(results[1]["status"], "failed");
    assert_eq!(results[1]["http_status"], 500);
    for member in events.iter().filter(|e| e.get("results").is_none()) {
        assert_eq!(member["fan_out_id"], fan_out_id, "{member}");
    }
}

async fn two_servers_ending_the_last_deliveries_send_one_group_callback(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let hooks = Endpoint::start().await;
    let a = TestServer::start_with(kind, local()).await;
    let b = a.another().await;
    queue(
        &a,
        json!({"name": "results", "concurrency": null, "default_target_url": hooks.url("/callbacks")}),
    )
    .await;
    let members: Vec<(String, Value)> = (0..8)
        .map(|i| (endpoint.url(&format!("/ok/{i}")), json!({})))
        .collect();
    let id = group(&a, "eight", &members).await;
    // Fan-outs published through both servers: both deliver, both end
    // deliveries, both publish outcomes.
    let mut fan_outs = Vec::new();
    for (i, s) in [&a, &b, &a, &b].into_iter().enumerate() {
        let answer = publish(
            s,
            json!({"default_target_group_id": id, "callback_queue_id": "results",
                   "body": format!("round {i}")}),
        )
        .await;
        fan_outs.push(answer["fan_out_id"].as_str().unwrap().to_string());
    }
    for fan_out in &fan_outs {
        assert_eq!(fan_out_done(&a, fan_out).await["status"], "all_succeeded");
    }
    // 32 member callbacks and 4 group callbacks, and nothing more.
    hooks.wait_for("/callbacks", 36, WITHIN).await;
    settle_outcomes(&[&a, &b]).await;
    let events: Vec<Value> = hooks
        .received_at("/callbacks")
        .iter()
        .map(|r| r.json())
        .collect();
    for fan_out in &fan_outs {
        let groups = events
            .iter()
            .filter(|e| e.get("results").is_some() && e["fan_out_id"] == fan_out.as_str())
            .count();
        assert_eq!(groups, 1, "group callbacks of {fan_out}");
    }
    assert_eq!(events.len(), 36);
}

async fn a_queue_that_names_itself_for_callbacks_does_not_loop(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    queue(
        &s,
        json!({"name": "echo", "concurrency": null, "default_target_url": endpoint.url("/echo")}),
    )
    .await;
    let (status, queue) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            "/v1/queues/echo",
            Some(json!({"callback_queue_id": "echo"})),
        )
        .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["callback_queue_id"], queue["id"]);
    let (status, answer) = s
        .post(
            &s.admin_key,
            "/v1/queues/echo/messages",
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    // The message, then its callback (the queue's default target); the
    // callback has none of its own.
    let got = endpoint.wait_for("/echo", 2, WITHIN).await;
    wait_until("both delivered", || {
        endpoint.received_at("/echo").len() >= 2
    })
    .await;
    let (_, jobs) = s.get(&s.admin_key, "/v1/jobs?queue=echo").await;
    let finished = || async {
        let (_, jobs) = s.get(&s.admin_key, "/v1/jobs?queue=echo").await;
        jobs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "completed")
    };
    while !finished().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settle_outcomes(&[&s]).await;
    assert_eq!(endpoint.received_at("/echo").len(), 2, "{jobs}");
    let (_, jobs) = s.get(&s.admin_key, "/v1/jobs?queue=echo").await;
    assert_eq!(jobs["data"].as_array().unwrap().len(), 2, "{jobs}");
    assert_eq!(got[1].json()["message_id"], answer["message_id"]);
}

async fn publishes_are_checked(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let id = group(&s, "one", &[(endpoint.url("/ok"), json!({}))]).await;
    let empty = group(&s, "empty", &[]).await;
    queue(&s, json!({"name": "nowhere"})).await;

    let both = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/ok"), "default_target_group_id": id}),
        )
        .await;
    assert_error(&both, 400, "validation_failed", None);
    assert_eq!(
        both.1["error"]["message"],
        "Provide either url or default_target_group_id, not both"
    );
    let neither = s
        .post(&s.admin_key, "/v1/messages", json!({"body": "x"}))
        .await;
    assert_error(&neither, 400, "validation_failed", Some("url"));
    assert_eq!(neither.1["error"]["message"], "url is required");

    let none = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"default_target_group_id": empty}),
        )
        .await;
    assert_error(
        &none,
        422,
        "validation_failed",
        Some("default_target_group_id"),
    );
    for missing in ["tg_1", "01a25013-a898-7191-a293-d45d72c7dc33"] {
        let answer = s
            .post(
                &s.admin_key,
                "/v1/messages",
                json!({"default_target_group_id": missing}),
            )
            .await;
        assert_error(&answer, 404, "not_found", None);
    }
    // A callback queue must be the organization's, with somewhere to deliver.
    let unknown = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/ok"), "callback_queue_id": "missing"}),
        )
        .await;
    assert_error(&unknown, 404, "not_found", None);
    let nowhere = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": endpoint.url("/ok"), "callback_queue_id": "nowhere"}),
        )
        .await;
    assert_error(
        &nowhere,
        400,
        "validation_failed",
        Some("callback_queue_id"),
    );

    // A deduplication_id holds the whole fan-out.
    let body = json!({"default_target_group_id": id, "deduplication_id": "once"});
    let first = publish(&s, body.clone()).await;
    let again = s.post(&s.admin_key, "/v1/messages", body).await;
    assert_error(&again, 409, "duplicate_message", None);
    assert_eq!(again.1["error"]["job_id"], first["message_ids"][0]);

    // Another organization reaches neither the group nor the queue.
    let theirs = s.other_org_key("acme").await;
    let answer = s
        .post(
            &theirs,
            "/v1/messages",
            json!({"default_target_group_id": id}),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
    queue(
        &s,
        json!({"name": "results", "default_target_url": endpoint.url("/hooks")}),
    )
    .await;
    let answer = s
        .post(
            &theirs,
            "/v1/messages",
            json!({"url": "https://a.example/x", "callback_queue_id": "results"}),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
    let fan_out = format!("/v1/fan-outs/{}", first["fan_out_id"].as_str().unwrap());
    assert_error(&s.get(&theirs, &fan_out).await, 404, "not_found", None);
    assert_eq!(s.get(&s.admin_key, &fan_out).await.0, 200);

    // A queue fans out to its default group when a message names no target.
    let (status, fanning) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "fans", "concurrency": null, "default_target_group_id": id}),
        )
        .await;
    assert_eq!(status, 201, "{fanning}");
    let (status, answer) = s
        .post(
            &s.admin_key,
            "/v1/queues/fans/messages",
            json!({"body": "x"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["fan_out"], true);
    assert_eq!(answer["queue"], "fans");
    assert_eq!(answer["count"], 1);
    // Not both defaults on one queue.
    let answer = s
        .send(
            Method::PATCH,
            &s.admin_key,
            "/v1/queues/fans",
            Some(json!({"default_target_url": endpoint.url("/ok")})),
        )
        .await;
    assert_error(
        &answer,
        422,
        "validation_failed",
        Some("default_target_group_id"),
    );
}
