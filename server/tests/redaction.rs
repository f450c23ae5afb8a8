//! Sensitive push headers over real HTTP on both stores: every answer
//! showing a job, a message or a schedule (in each of its shapes) shows
//! their values as `***redacted***`, while the store keeps the real ones and
//! a loopback endpoint receives them; a schedule's `PATCH` or `PUT` (and
//! Krafter's `PUT`) sending the redacted value back keeps the stored one;
//! and no request may store the redacted value itself.

mod common;

use chronos_proto::Delivery;
use chronos_proto::headers::REDACTED;
use chronos_server::account::OrgId;
use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use chronos_test_support::endpoint::Received;
use common::{Endpoint, StoreKind, TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    every_answer_redacts_and_the_target_gets_the_real_values,
    a_redacted_value_sent_back_keeps_the_stored_one,
    a_redacted_value_with_nothing_to_keep_is_refused,
);

const SECRET: &str = "Bearer s3cr3t";
const TOKEN: &str = "tok-123";
/// A cron expression that won't fire during a test: schedules here run
/// only when triggered.
const NEVER: &str = "0 0 1 1 *";
const WITHIN: Duration = Duration::from_secs(20);

/// The headers every target here is given.
fn sent() -> Value {
    json!({"Authorization": SECRET, "X-Webhook-Token": TOKEN, "X-Tenant": "acme"})
}

/// [`sent`] as answers show it.
fn shown() -> Value {
    json!({"Authorization": REDACTED, "X-Webhook-Token": REDACTED, "X-Tenant": "acme"})
}

async fn start(kind: StoreKind) -> TestServer {
    let options = ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    };
    TestServer::start_with(kind, options).await
}

async fn org(s: &TestServer) -> OrgId {
    s.store
        .organization_by_slug("default")
        .await
        .unwrap()
        .expect("the default organization")
        .id
}

/// The one request `endpoint` got at `path` carried the real values.
async fn received_real(endpoint: &Endpoint, path: &str) -> Received {
    let got = endpoint.wait_for(path, 1, WITHIN).await;
    assert_eq!(got.len(), 1, "{path}: {got:?}");
    let request = got[0].clone();
    assert_eq!(request.header("authorization"), Some(SECRET), "{path}");
    assert_eq!(request.header("x-webhook-token"), Some(TOKEN), "{path}");
    assert_eq!(request.header("x-tenant"), Some("acme"), "{path}");
    request
}

/// The item of a list answer whose `key` is `id`.
fn item<'a>(list: &'a Value, key: &str, id: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == id)
        .unwrap_or_else(|| panic!("{id} is not listed: {list}"))
}

async fn get(s: &TestServer, path: &str) -> Value {
    let (status, body) = s.get(&s.admin_key, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A push job with a handler, to `url`, with `headers`.
fn push_job(url: &str, headers: Value, extra: Value) -> Value {
    let mut job = json!({
        "name": "push",
        "handler": "hello",
        "delivery": {"type": "push", "http": {"url": url, "headers": headers}},
    });
    for (k, v) in extra.as_object().unwrap() {
        job[k] = v.clone();
    }
    job
}

/// The headers the store holds for push delivery `d`.
fn stored_headers(d: &Delivery) -> BTreeMap<String, String> {
    match d {
        Delivery::Push { http, .. } => http.headers.clone(),
        Delivery::Pull => panic!("a push delivery was stored as pull"),
    }
}

/// Fires schedule `id` now.
async fn trigger(s: &TestServer, id: &str) {
    let (status, job) = s
        .post_empty(&s.admin_key, &format!("/v1/schedules/{id}/trigger"))
        .await;
    assert_eq!(status, 202, "{job}");
}

/// The headers the store holds for schedule `id`'s target.
async fn stored(s: &TestServer, org: OrgId, id: &str) -> BTreeMap<String, String> {
    let record = s
        .store
        .schedule(org, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    stored_headers(&record.template.delivery)
}

fn map(v: Value) -> BTreeMap<String, String> {
    serde_json::from_value(v).unwrap()
}

async fn every_answer_redacts_and_the_target_gets_the_real_values(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let key = &s.admin_key;
    let org = org(&s).await;

    // A job: its create answer, GET, the list.
    let (status, job) = s
        .post(
            key,
            "/v1/jobs",
            push_job(&endpoint.url("/job"), sent(), json!({})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["delivery"]["http"]["headers"], shown(), "{job}");
    let id = job["id"].as_str().unwrap();
    received_real(&endpoint, "/job").await;
    let one = get(&s, &format!("/v1/jobs/{id}")).await;
    assert_eq!(one["delivery"]["http"]["headers"], shown(), "{one}");
    let list = get(&s, "/v1/jobs").await;
    assert_eq!(
        item(&list, "id", id)["delivery"]["http"]["headers"],
        shown()
    );
    // The store keeps what was sent.
    let stored = s
        .store
        .job(org, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored_headers(&stored.delivery), map(sent()));

    // A batch's items.
    let (status, batch) = s
        .post(
            key,
            "/v1/jobs/batch",
            json!({"jobs": [push_job(&endpoint.url("/batch"), sent(), json!({}))]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(
        batch["data"][0]["job"]["delivery"]["http"]["headers"],
        shown(),
        "{batch}"
    );
    received_real(&endpoint, "/batch").await;

    // Cancelling and retrying answer with the job too.
    let (status, later) = s
        .post(
            key,
            "/v1/jobs",
            push_job(
                &endpoint.url("/later"),
                sent(),
                json!({"delay": {"value": 1, "unit": "hour"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{later}");
    let later = later["id"].as_str().unwrap();
    for action in ["cancel", "retry"] {
        let (status, job) = s
            .post_empty(key, &format!("/v1/jobs/{later}/{action}"))
            .await;
        assert_eq!(status, 200, "{action}: {job}");
        assert_eq!(job["delivery"]["http"]["headers"], shown(), "{action}");
    }
    received_real(&endpoint, "/later").await;

    // A message, and one published onto a queue: GET shows them (as a
    // message and as a job).
    for (path, target) in [
        ("/v1/messages", "/message"),
        ("/v1/queues/default/messages", "/queued"),
    ] {
        let (status, accepted) = s
            .post(
                key,
                path,
                json!({"url": endpoint.url(target), "headers": sent(), "body": "hi"}),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["message_id"].as_str().unwrap();
        let request = received_real(&endpoint, target).await;
        assert_eq!(&request.body[..], b"hi");
        let message = get(&s, &format!("/v1/messages/{id}")).await;
        assert_eq!(message["headers"], shown(), "{message}");
        let job = get(&s, &format!("/v1/jobs/{id}")).await;
        assert_eq!(job["delivery"]["http"]["headers"], shown(), "{job}");
    }

    // Schedules, in the native shape whichever request shape made them: a
    // `url` one (CronPilot's) and a handler's push delivery (Chronos').
    for (body, target) in [
        (
            json!({"name": "url", "cron": NEVER, "url": endpoint.url("/url-schedule"), "headers": sent()}),
            "/url-schedule",
        ),
        (
            json!({
                "name": "handler", "handler": "hello", "cron": NEVER,
                "delivery": {"type": "push", "http": {"url": endpoint.url("/handler-schedule"), "headers": sent()}},
            }),
            "/handler-schedule",
        ),
    ] {
        let (status, created) = s.post(key, "/v1/schedules", body).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        let list = get(&s, "/v1/schedules").await;
        let read = get(&s, &format!("/v1/schedules/{id}")).await;
        let (status, paused) = s
            .post_empty(key, &format!("/v1/schedules/{id}/pause"))
            .await;
        assert_eq!(status, 200, "{paused}");
        for answer in [&created, item(&list, "id", id), &read, &paused] {
            assert_eq!(answer["headers"], shown(), "{answer}");
            assert_eq!(answer["delivery"]["http"]["headers"], shown(), "{answer}");
        }
        // Its job, as the trigger answers it, and as sent.
        let (status, job) = s
            .post_empty(key, &format!("/v1/schedules/{id}/trigger"))
            .await;
        assert_eq!(status, 202, "{job}");
        assert_eq!(job["delivery"]["http"]["headers"], shown(), "{job}");
        received_real(&endpoint, target).await;
        let stored = s
            .store
            .schedule(org, Uuid::parse_str(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored_headers(&stored.template.delivery), map(sent()));
    }

    // Krafter's routes show its cron jobs in its shape.
    let (status, created) = s
        .post(
            key,
            "/api/v1/cron/jobs",
            json!({
                "name": "krafter", "schedule_type": "cron", "schedule": NEVER,
                "url": endpoint.url("/krafter"), "headers": sent(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap();
    let read = get(&s, &format!("/api/v1/cron/jobs/{id}")).await;
    let list = get(&s, "/api/v1/cron/jobs").await;
    let native = get(&s, &format!("/v1/schedules/{id}")).await;
    for cron_job in [
        &created["data"],
        &read["data"],
        item(&list, "id", id),
        &native,
    ] {
        assert_eq!(cron_job["headers"], shown(), "{cron_job}");
    }
    let (status, done) = s
        .post_empty(key, &format!("/api/v1/cron/jobs/{id}/trigger"))
        .await;
    assert_eq!(status, 200, "{done}");
    received_real(&endpoint, "/krafter").await;
}

async fn a_redacted_value_sent_back_keeps_the_stored_one(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let key = &s.admin_key;
    let org = org(&s).await;

    // A `url` schedule's PATCH sends back the headers it read, with a
    // harmless one changed.
    let (status, created) = s
        .post(
            key,
            "/v1/schedules",
            json!({"name": "url", "cron": NEVER, "url": endpoint.url("/kept"), "headers": sent()}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/schedules/{id}");
    let mut headers = get(&s, &path).await["headers"].clone();
    assert_eq!(headers, shown());
    headers["X-Tenant"] = json!("beta");
    let (status, patched) = s
        .send(
            Method::PATCH,
            key,
            &path,
            Some(json!({"headers": headers.clone()})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["headers"], headers, "{patched}");
    let mut real = sent();
    real["X-Tenant"] = json!("beta");
    assert_eq!(stored(&s, org, &id).await, map(real));
    trigger(&s, &id).await;
    let got = endpoint.wait_for("/kept", 1, WITHIN).await;
    assert_eq!(got[0].header("authorization"), Some(SECRET));
    assert_eq!(got[0].header("x-webhook-token"), Some(TOKEN));
    assert_eq!(got[0].header("x-tenant"), Some("beta"));

    // A PUT replaces the definition; a name in another case still finds
    // its stored value.
    let (status, put) = s
        .send(
            Method::PUT,
            key,
            &path,
            Some(json!({
                "name": "url", "cron": NEVER, "url": endpoint.url("/kept"),
                "headers": {"authorization": REDACTED, "x-webhook-token": REDACTED},
            })),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        put["headers"],
        json!({"authorization": REDACTED, "x-webhook-token": REDACTED})
    );
    assert_eq!(
        stored(&s, org, &id).await,
        map(json!({"authorization": SECRET, "x-webhook-token": TOKEN}))
    );
    trigger(&s, &id).await;
    let got = endpoint.wait_for("/kept", 2, WITHIN).await;
    assert_eq!(got[1].header("authorization"), Some(SECRET));
    assert_eq!(got[1].header("x-webhook-token"), Some(TOKEN));
    assert_eq!(got[1].header("x-tenant"), None);

    // A handler's push delivery, sent back as read.
    let (status, created) = s
        .post(
            key,
            "/v1/schedules",
            json!({
                "name": "handler", "handler": "hello", "cron": NEVER,
                "delivery": {"type": "push", "http": {"url": endpoint.url("/kept-handler"), "headers": sent()}},
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/schedules/{id}");
    let delivery = get(&s, &path).await["delivery"].clone();
    let (status, patched) = s
        .send(
            Method::PATCH,
            key,
            &path,
            Some(json!({"delivery": delivery})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["delivery"]["http"]["headers"], shown());
    assert_eq!(stored(&s, org, &id).await, map(sent()));
    trigger(&s, &id).await;
    received_real(&endpoint, "/kept-handler").await;

    // Krafter's PUT, which changes the fields it gives.
    let (status, created) = s
        .post(
            key,
            "/api/v1/cron/jobs",
            json!({
                "name": "krafter", "schedule_type": "cron", "schedule": NEVER,
                "url": endpoint.url("/kept-krafter"), "headers": sent(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let (status, put) = s
        .send(
            Method::PUT,
            key,
            &format!("/api/v1/cron/jobs/{id}"),
            Some(json!({"headers": {"Authorization": REDACTED, "X-Webhook-Token": "tok-456"}})),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        put["data"]["headers"],
        json!({"Authorization": REDACTED, "X-Webhook-Token": REDACTED})
    );
    assert_eq!(
        stored(&s, org, &id).await,
        map(json!({"Authorization": SECRET, "X-Webhook-Token": "tok-456"}))
    );
    trigger(&s, &id).await;
    let got = endpoint.wait_for("/kept-krafter", 1, WITHIN).await;
    assert_eq!(got[0].header("authorization"), Some(SECRET));
    assert_eq!(got[0].header("x-webhook-token"), Some("tok-456"));
}

async fn a_redacted_value_with_nothing_to_keep_is_refused(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = start(kind).await;
    let key = &s.admin_key;
    let org = org(&s).await;
    let url = endpoint.url("/refused");
    let redacted = |name: &str| json!({ name: REDACTED, "X-Tenant": "acme" });

    // Every create: it would be sent as `***redacted***`.
    for (path, body, field) in [
        (
            "/v1/jobs",
            push_job(&url, redacted("Authorization"), json!({})),
            "delivery.http.headers.Authorization",
        ),
        (
            "/v1/messages",
            json!({"url": url, "headers": redacted("X-Api-Key")}),
            "headers.X-Api-Key",
        ),
        (
            "/v1/queues/default/messages",
            json!({"url": url, "headers": redacted("Cookie")}),
            "headers.Cookie",
        ),
        (
            "/v1/schedules",
            json!({"name": "url", "cron": NEVER, "url": url, "headers": redacted("X-Client-Secret")}),
            "headers.X-Client-Secret",
        ),
        (
            "/v1/schedules",
            json!({
                "name": "handler", "handler": "hello", "cron": NEVER,
                "delivery": {"type": "push", "http": {"url": url, "headers": redacted("X-Webhook-Token")}},
            }),
            "delivery.http.headers.X-Webhook-Token",
        ),
        (
            "/api/v1/cron/jobs",
            json!({
                "name": "krafter", "schedule_type": "cron", "schedule": NEVER,
                "url": url, "headers": redacted("Proxy-Authorization"),
            }),
            "headers.Proxy-Authorization",
        ),
    ] {
        let answer = s.post(key, path, body).await;
        assert_error(&answer, 422, "validation_failed", Some(field));
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{REDACTED} can't be stored")),
            "{message}"
        );
    }
    // In a batch, the item is refused and the others are created.
    let (status, batch) = s
        .post(
            key,
            "/v1/jobs/batch",
            json!({"jobs": [
                push_job(&url, redacted("Authorization"), json!({})),
                push_job(&endpoint.url("/batch"), sent(), json!({})),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let refused = &batch["data"][0]["error"];
    assert_eq!(refused["code"], "validation_failed", "{batch}");
    assert_eq!(refused["field"], "delivery.http.headers.Authorization");
    assert_eq!(
        batch["data"][1]["job"]["delivery"]["http"]["headers"],
        shown()
    );

    // A change naming a header the schedule doesn't have: nothing to keep.
    let (status, created) = s
        .post(
            key,
            "/v1/schedules",
            json!({"name": "url", "cron": NEVER, "url": url, "headers": {"X-Tenant": "acme"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/schedules/{id}");
    let answer = s
        .send(
            Method::PATCH,
            key,
            &path,
            Some(json!({"headers": redacted("Authorization")})),
        )
        .await;
    assert_error(
        &answer,
        422,
        "validation_failed",
        Some("headers.Authorization"),
    );
    let answer = s
        .send(
            Method::PUT,
            key,
            &path,
            Some(
                json!({"name": "url", "cron": NEVER, "url": url, "headers": redacted("X-Api-Key")}),
            ),
        )
        .await;
    assert_error(&answer, 422, "validation_failed", Some("headers.X-Api-Key"));
    let answer = s
        .send(
            Method::PUT,
            key,
            &format!("/api/v1/cron/jobs/{id}"),
            Some(json!({"headers": redacted("Cookie")})),
        )
        .await;
    assert_error(&answer, 422, "validation_failed", Some("headers.Cookie"));
    assert_eq!(stored(&s, org, id).await, map(json!({"X-Tenant": "acme"})));

    // A harmless header's value is its own, `***redacted***` too: stored,
    // shown and sent as given.
    let (status, accepted) = s
        .post(
            key,
            "/v1/messages",
            json!({"url": endpoint.url("/note"), "headers": {"X-Note": REDACTED}}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["message_id"].as_str().unwrap();
    let got = endpoint.wait_for("/note", 1, WITHIN).await;
    assert_eq!(got[0].header("x-note"), Some(REDACTED));
    let message = get(&s, &format!("/v1/messages/{id}")).await;
    assert_eq!(message["headers"], json!({"X-Note": REDACTED}));
}
