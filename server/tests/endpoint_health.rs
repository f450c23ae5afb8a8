//! Endpoint health against a real HTTP endpoint on loopback, on both
//! stores, with the test clock: an endpoint failing for the threshold with
//! no success is disabled for its organization alone; its deliveries are
//! held (`scheduled`, `held_reason`) without attempts or spent retries,
//! while another organization's deliveries to the same endpoint go on;
//! enabling it releases them.

mod common;

use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::{Endpoint, StoreKind, TestServer, assert_error};
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    a_disabled_endpoint_holds_only_its_own_organizations_deliveries,
    endpoints_are_listed_with_their_health_and_scopes_hold,
);

const WITHIN: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// 503, retry after an hour.
const DOWN: &str = "/unavailable/3600";

fn local() -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    }
}

async fn message(s: &TestServer, key: &str, url: String) -> String {
    let (status, answer) = s
        .post(
            key,
            "/v1/messages",
            json!({"url": url, "body": "{}", "retries": 10}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["message_id"].as_str().unwrap().to_string()
}

/// The only endpoint `key`'s organization has.
async fn the_endpoint(s: &TestServer, key: &str, status: &str) -> Value {
    let list = s
        .get_until(key, "/v1/endpoints", |l| l["data"][0]["status"] == status)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    list["data"][0].clone()
}

async fn a_disabled_endpoint_holds_only_its_own_organizations_deliveries(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with_test_clock(kind, local()).await;
    let ours = s.admin_key.clone();
    let theirs = s.other_org_key("acme").await;

    // Failing: a first attempt, then a day later another, with no success
    // between (each asks to be retried an hour later).
    let failing = message(&s, &ours, endpoint.url(DOWN)).await;
    endpoint.wait_for(DOWN, 1, WITHIN).await;
    let health = the_endpoint(&s, &ours, "failing").await;
    assert_eq!(health["consecutive_failures"], 1, "{health}");
    assert_eq!(health["url"], endpoint.base);
    s.advance_clock_and_settle(DAY).await;
    endpoint.wait_for(DOWN, 2, WITHIN).await;
    let health = the_endpoint(&s, &ours, "disabled").await;
    assert_eq!(health["consecutive_failures"], 2, "{health}");
    assert!(
        health["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("the target answered 503"),
        "{health}"
    );
    let id = health["id"].as_str().unwrap().to_string();

    // Our deliveries there are held: the failing one when its retry comes
    // due, a new one at once; no attempt is made, none is spent.
    let new = message(&s, &ours, endpoint.url("/ok")).await;
    s.advance_clock_and_settle(Duration::from_secs(3600)).await;
    for job in [&failing, &new] {
        let held = s
            .get_until(&ours, &format!("/v1/jobs/{job}"), |j| {
                j["held_reason"] == "endpoint_disabled"
            })
            .await;
        assert_eq!(held["status"], "scheduled", "{held}");
    }
    let (_, job) = s.get(&ours, &format!("/v1/jobs/{failing}")).await;
    assert_eq!(job["attempt"], 2, "no attempt while held: {job}");
    let (_, held) = s.get(&ours, &format!("/v1/messages/{new}")).await;
    assert_eq!(held["held_reason"], "endpoint_disabled", "{held}");

    // Theirs to the same endpoint are delivered: health is per organization.
    let their_message = message(&s, &theirs, endpoint.url("/ok")).await;
    endpoint.wait_for("/ok", 1, WITHIN).await;
    s.get_until(&theirs, &format!("/v1/jobs/{their_message}"), |j| {
        j["status"] == "completed"
    })
    .await;
    let their_health = the_endpoint(&s, &theirs, "healthy").await;
    assert_ne!(their_health["id"], id.as_str());
    s.advance_clock_and_settle(Duration::from_secs(3600)).await;
    assert_eq!(endpoint.received_at("/ok").len(), 1, "ours stayed held");
    assert_eq!(endpoint.received_at(DOWN).len(), 2);
    let health = the_endpoint(&s, &ours, "disabled").await;
    assert_eq!(health["held_deliveries"], 2, "{health}");

    // They can neither see nor enable ours.
    let path = format!("/v1/endpoints/{id}/enable");
    assert_error(&s.post_empty(&theirs, &path).await, 404, "not_found", None);
    let reader = s.key(&["jobs:read"]).await;
    assert_error(&s.post_empty(&reader, &path).await, 403, "forbidden", None);

    // Enabled: the held deliveries go out, their attempts counted on from
    // where they stopped.
    let (status, enabled) = s.post_empty(&ours, &path).await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["released"], 2);
    assert_eq!(enabled["endpoint"]["status"], "healthy");
    assert_eq!(enabled["endpoint"]["held_deliveries"], 0);
    endpoint.wait_for("/ok", 2, WITHIN).await;
    endpoint.wait_for(DOWN, 3, WITHIN).await;
    s.get_until(&ours, &format!("/v1/jobs/{new}"), |j| {
        j["status"] == "completed"
    })
    .await;
    let job = s
        .get_until(&ours, &format!("/v1/jobs/{failing}"), |j| {
            j["attempt"] == 3 && j["status"] == "scheduled"
        })
        .await;
    assert!(job.get("held_reason").is_none(), "{job}");
}

async fn endpoints_are_listed_with_their_health_and_scopes_hold(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let other = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let key = s.admin_key.clone();
    let (status, list) = s.get(&key, "/v1/endpoints").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list, json!({"data": [], "next_cursor": null}));

    let ok = message(&s, &key, endpoint.url("/ok")).await;
    s.get_until(&key, &format!("/v1/jobs/{ok}"), |j| {
        j["status"] == "completed"
    })
    .await;
    message(&s, &key, other.url("/status/500")).await;
    other.wait_for("/status/500", 1, WITHIN).await;
    let list = s
        .get_until(&key, "/v1/endpoints", |l| {
            let data = l["data"].as_array().unwrap();
            data.len() == 2 && data.iter().any(|e| e["status"] == "failing")
        })
        .await;
    let data = list["data"].as_array().unwrap();
    let failing = data
        .iter()
        .find(|e| e["url"] == other.base.as_str())
        .unwrap();
    let healthy = data
        .iter()
        .find(|e| e["url"] == endpoint.base.as_str())
        .unwrap();
    let port: u16 = other.base.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(failing["status"], "failing");
    assert_eq!(failing["scheme"], "http");
    assert_eq!(failing["host"], "127.0.0.1");
    assert_eq!(failing["port"], port);
    assert_eq!(failing["last_error"], "the target answered 500");
    // Since its first failure, which is at or before its last.
    let at = |v: &Value| v.as_str().unwrap().to_string();
    assert!(
        at(&failing["since"]) <= at(&failing["last_failure_at"]),
        "{failing}"
    );
    assert_eq!(failing["disabled_reason"], Value::Null);
    assert_eq!(healthy["status"], "healthy");
    assert_eq!(healthy["consecutive_failures"], 0);
    assert_eq!(healthy["last_failure_at"], Value::Null);

    // Pages of one.
    let (_, first) = s.get(&key, "/v1/endpoints?limit=1").await;
    assert_eq!(first["data"][0]["id"], data[0]["id"], "newest first");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = s
        .get(&key, &format!("/v1/endpoints?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["data"][0]["id"], data[1]["id"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Reading needs jobs:read; one of another organization is a 404.
    let reader = s.key(&["jobs:read"]).await;
    let id = failing["id"].as_str().unwrap();
    let (status, one) = s.get(&reader, &format!("/v1/endpoints/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], failing["id"]);
    let worker = s.key(&["worker"]).await;
    assert_error(
        &s.get(&worker, "/v1/endpoints").await,
        403,
        "forbidden",
        None,
    );
    let theirs = s.other_org_key("acme").await;
    assert_error(
        &s.get(&theirs, &format!("/v1/endpoints/{id}")).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.get(&key, "/v1/endpoints/not-an-id").await,
        404,
        "not_found",
        None,
    );
}
