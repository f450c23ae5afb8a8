//! The worker endpoints over real HTTP, on both stores: long-poll, ack, fail,
//! extend, fencing, timeouts re-leased by the sweeper, retry and cancel.
//! Deadlines, delays and backoffs pass on the test clock, not by waiting.

mod common;

use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;

use common::{StoreKind, TestServer, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_stores!(
    a_job_is_polled_acked_and_completed,
    long_polls_wake_for_new_and_newly_due_jobs,
    stale_and_unknown_tokens_are_refused,
    bad_worker_requests_are_400s_and_scopes_hold,
    an_unacked_job_is_leased_again_after_its_timeout,
    failures_retry_then_fail_and_can_be_retried_by_hand,
    cancelling_a_running_job_refuses_its_ack,
    extend_keeps_a_long_attempt_alive,
);

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, job) = s.post(&s.admin_key, "/v1/jobs", body).await;
    assert_eq!(status, 201, "{job}");
    job
}

async fn poll(s: &TestServer, key: &str, body: Value) -> Vec<Value> {
    let (status, page) = s.post(key, "/v1/workers/poll", body).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    page["data"].as_array().unwrap().clone()
}

fn token(leased: &Value) -> String {
    leased["lease"]["token"].as_str().unwrap().to_string()
}

async fn a_job_is_polled_acked_and_completed(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let job = create(
        &s,
        json!({"name": "n", "handler": "hello", "payload": {"to": "you"}}),
    )
    .await;
    let got = poll(
        &s,
        &worker,
        json!({"handlers": ["hello"], "worker_id": "w-1"}),
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["job"]["id"], job["id"]);
    assert_eq!(got[0]["job"]["status"], "running");
    assert_eq!(got[0]["job"]["attempt"], 1);
    assert_eq!(got[0]["job"]["payload"], json!({"to": "you"}));
    assert!(got[0]["lease"]["expires_at"].is_string());
    let (status, acked) = s
        .post(
            &worker,
            "/v1/leases/ack",
            json!({"token": token(&got[0]), "result": {"sent": true}}),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "completed");
    let id = job["id"].as_str().unwrap();
    let (_, now) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(now["status"], "completed");
    assert_eq!(now["result"], json!({"sent": true}));
    let (_, ex) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    let ex = &ex["data"][0];
    assert_eq!(ex["status"], "completed");
    assert_eq!(ex["attempt"], 1);
    assert_eq!(ex["worker_id"], "w-1");
    assert!(ex["duration_ms"].is_u64());
    // Nothing left.
    assert!(
        poll(&s, &worker, json!({"handlers": ["hello"]}))
            .await
            .is_empty()
    );
}

async fn long_polls_wake_for_new_and_newly_due_jobs(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    // An empty wait ends empty.
    let started = Instant::now();
    assert!(
        poll(&s, &worker, json!({"handlers": ["h"], "wait_seconds": 1}))
            .await
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A job created while a poll waits is handed to it, long before the wait ends.
    let (http, url, key) = (s.http.clone(), s.url("/v1/workers/poll"), worker.clone());
    let waiting = tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(key)
            .json(&json!({"handlers": ["h", "other"], "wait_seconds": 30, "max_jobs": 5}))
            .send()
            .await
            .unwrap();
        (Instant::now(), resp.json::<Value>().await.unwrap())
    });
    s.polls_waiting(1).await;
    let job = create(&s, json!({"name": "n", "handler": "h"})).await;
    let created_at = Instant::now();
    let (answered_at, page) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the poll was not woken")
        .unwrap();
    assert_eq!(page["data"][0]["job"]["id"], job["id"]);
    eprintln!("pickup after create: {:?}", answered_at - created_at);

    // A delayed job wakes a waiting poll when it falls due.
    let job = create(
        &s,
        json!({"name": "n", "handler": "h", "delay": {"value": 1, "unit": "hour"}}),
    )
    .await;
    let (http, url, key) = (s.http.clone(), s.url("/v1/workers/poll"), worker.clone());
    let waiting = tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(key)
            .json(&json!({"handlers": ["h"], "wait_seconds": 30}))
            .send()
            .await
            .unwrap();
        resp.json::<Value>().await.unwrap()
    });
    s.polls_waiting(1).await;
    s.advance_clock(Duration::from_secs(3600)).await;
    let page = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the poll was not woken when the job fell due")
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["job"]["id"], job["id"]);

    // Several due jobs in one answer, up to max_jobs.
    for _ in 0..3 {
        create(&s, json!({"name": "n", "handler": "m"})).await;
    }
    assert_eq!(
        poll(&s, &worker, json!({"handlers": ["m"], "max_jobs": 2}))
            .await
            .len(),
        2
    );
    assert_eq!(
        poll(&s, &worker, json!({"handlers": ["m"], "max_jobs": 2}))
            .await
            .len(),
        1
    );
}

async fn stale_and_unknown_tokens_are_refused(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    create(&s, json!({"name": "n", "handler": "h"})).await;
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    let t = token(&got[0]);
    assert_eq!(
        s.post(&worker, "/v1/leases/ack", json!({"token": t}))
            .await
            .0,
        200
    );
    for (path, body) in [
        ("/v1/leases/ack", json!({"token": t})),
        ("/v1/leases/fail", json!({"token": t, "error": "x"})),
        ("/v1/leases/extend", json!({"token": t, "seconds": 10})),
    ] {
        assert_error(&s.post(&worker, path, body).await, 409, "lease_lost", None);
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        &s.post(&worker, "/v1/leases/ack", json!({"token": unknown}))
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.post(&worker, "/v1/leases/ack", json!({"token": "not-a-token"}))
            .await,
        400,
        "validation_failed",
        Some("token"),
    );
    // Another organization's worker cannot use our token.
    let theirs = s.other_org_key("other").await;
    create(&s, json!({"name": "n", "handler": "h"})).await;
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    assert_error(
        &s.post(&theirs, "/v1/leases/ack", json!({"token": token(&got[0])}))
            .await,
        404,
        "not_found",
        None,
    );
    assert!(
        poll(&s, &theirs, json!({"handlers": ["h"]}))
            .await
            .is_empty()
    );
}

async fn bad_worker_requests_are_400s_and_scopes_hold(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let writer = s.key(&["jobs:write"]).await;
    for (body, field) in [
        (json!({"handlers": []}), "handlers"),
        (json!({"handlers": ["a,b"]}), "handlers[0]"),
        (json!({"handlers": ["h"], "max_jobs": 0}), "max_jobs"),
        (json!({"handlers": ["h"], "max_jobs": 101}), "max_jobs"),
        (
            json!({"handlers": ["h"], "wait_seconds": 61}),
            "wait_seconds",
        ),
        (json!({"handlers": ["h"], "worker_id": ""}), "worker_id"),
        (json!({"max_jobs": 1}), "handlers"),
    ] {
        assert_error(
            &s.post(&worker, "/v1/workers/poll", body).await,
            400,
            "validation_failed",
            Some(field),
        );
    }
    assert_error(
        &s.post(
            &worker,
            "/v1/workers/poll",
            json!({"handlers": ["h"], "queue": "x"}),
        )
        .await,
        400,
        "unknown_field",
        Some("queue"),
    );
    let t = uuid::Uuid::new_v4();
    assert_error(
        &s.post(
            &worker,
            "/v1/leases/extend",
            json!({"token": t, "seconds": 0}),
        )
        .await,
        400,
        "validation_failed",
        Some("seconds"),
    );
    assert_error(
        &s.post(
            &worker,
            "/v1/leases/fail",
            json!({"token": t, "retry_in": 99999999}),
        )
        .await,
        400,
        "validation_failed",
        Some("retry_in"),
    );
    assert_error(
        &s.post(&worker, "/v1/leases/ack", json!({})).await,
        400,
        "validation_failed",
        Some("token"),
    );

    // worker keys lease; they do not create or read jobs; jobs keys do not lease.
    let denied = s
        .post(&writer, "/v1/workers/poll", json!({"handlers": ["h"]}))
        .await;
    assert_error(&denied, 403, "forbidden", None);
    assert!(
        denied.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("worker")
    );
    assert_error(
        &s.post(&writer, "/v1/leases/ack", json!({"token": t})).await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &s.post(&worker, "/v1/jobs", json!({"name": "n", "handler": "h"}))
            .await,
        403,
        "forbidden",
        None,
    );
    assert_eq!(
        s.post(&s.admin_key, "/v1/workers/poll", json!({"handlers": ["h"]}))
            .await
            .0,
        200,
        "admin may do all"
    );
}

async fn an_unacked_job_is_leased_again_after_its_timeout(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    let job = create(&s, json!({"name": "n", "handler": "h", "timeout": 60})).await;
    let first = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    // The worker goes silent. Past the deadline the sweeper times the
    // attempt out; past the backoff (1 s ± 20%) a poll gets attempt 2.
    s.advance_clock_and_settle(Duration::from_secs(61)).await;
    let (_, timed_out) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(timed_out["status"], "scheduled", "{timed_out}");
    assert!(
        poll(&s, &worker, json!({"handlers": ["h"]}))
            .await
            .is_empty()
    );
    s.advance_clock_and_settle(Duration::from_secs(2)).await;
    let second = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    assert_eq!(second.len(), 1, "not leased again within the wait");
    assert_eq!(second[0]["job"]["id"], job["id"]);
    assert_eq!(second[0]["job"]["attempt"], 2);
    assert_ne!(token(&first[0]), token(&second[0]));
    assert_error(
        &s.post(
            &worker,
            "/v1/leases/ack",
            json!({"token": token(&first[0])}),
        )
        .await,
        409,
        "lease_lost",
        None,
    );
    assert_eq!(
        s.post(
            &worker,
            "/v1/leases/ack",
            json!({"token": token(&second[0])})
        )
        .await
        .0,
        200
    );
    let id = job["id"].as_str().unwrap();
    let (_, ex) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    let statuses: Vec<&str> = ex["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["completed", "timed_out"]);
}

async fn failures_retry_then_fail_and_can_be_retried_by_hand(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let job = create(&s, json!({"name": "n", "handler": "h", "max_retries": 1})).await;
    let id = job["id"].as_str().unwrap();
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    let (status, after) = s
        .post(
            &worker,
            "/v1/leases/fail",
            json!({"token": token(&got[0]), "error": "db down", "retry_in": 0}),
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "queued");
    assert_eq!(after["last_error"], "db down");
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    assert_eq!(got[0]["job"]["attempt"], 2);
    let (_, after) = s
        .post(
            &worker,
            "/v1/leases/fail",
            json!({"token": token(&got[0]), "error": "still down"}),
        )
        .await;
    assert_eq!(
        after["status"], "failed",
        "max_retries 1: two attempts in all"
    );

    assert_error(
        &s.post_empty(&worker, &format!("/v1/jobs/{id}/retry")).await,
        403,
        "forbidden",
        None,
    );
    let (status, again) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/retry"))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "queued");
    assert_error(
        &s.post_empty(&s.admin_key, &format!("/v1/jobs/{id}/retry"))
            .await,
        409,
        "job_not_retryable",
        None,
    );
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    assert_eq!(got[0]["job"]["attempt"], 3);
    let (_, after) = s
        .post(
            &worker,
            "/v1/leases/fail",
            json!({"token": token(&got[0]), "retryable": false}),
        )
        .await;
    assert_eq!(after["status"], "failed", "permanent failure");
    assert!(
        after["last_error"]
            .as_str()
            .unwrap()
            .contains("without a message")
    );
    assert_error(
        &s.post_empty(
            &s.admin_key,
            &format!("/v1/jobs/{}/retry", uuid::Uuid::now_v7()),
        )
        .await,
        404,
        "not_found",
        None,
    );
}

async fn cancelling_a_running_job_refuses_its_ack(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let job = create(&s, json!({"name": "n", "handler": "h"})).await;
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    let id = job["id"].as_str().unwrap();
    let (status, cancelled) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/cancel"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_error(
        &s.post(&worker, "/v1/leases/ack", json!({"token": token(&got[0])}))
            .await,
        409,
        "lease_lost",
        None,
    );
    let (_, now) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(now["status"], "cancelled");
    let (status, _) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/retry"))
        .await;
    assert_eq!(status, 200, "cancelled jobs can be retried");
}

async fn extend_keeps_a_long_attempt_alive(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let worker = s.key(&["worker"]).await;
    create(&s, json!({"name": "n", "handler": "h", "timeout": 1})).await;
    let got = poll(&s, &worker, json!({"handlers": ["h"]})).await;
    let (status, lease) = s
        .post(
            &worker,
            "/v1/leases/extend",
            json!({"token": token(&got[0]), "seconds": 30}),
        )
        .await;
    assert_eq!(status, 200, "{lease}");
    assert_eq!(lease["token"], got[0]["lease"]["token"]);
    assert!(
        lease["expires_at"].as_str().unwrap() > got[0]["lease"]["expires_at"].as_str().unwrap()
    );
    // Past the first deadline, within the extended one.
    s.advance_clock_and_settle(Duration::from_secs(20)).await;
    assert_eq!(
        s.post(&worker, "/v1/leases/ack", json!({"token": token(&got[0])}))
            .await
            .0,
        200
    );
}
