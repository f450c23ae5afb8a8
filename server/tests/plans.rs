//! Plans and quotas over real HTTP, on both stores: the instance
//! administrator puts an organization on a plan; past its quota, creation
//! is a 429 with seed 004's structured fields and the rate-limit headers,
//! a batch refuses only the items past it, retries are capped to the plan
//! and the answer shows the value used; `GET /v1/usage` shows the plan and
//! the counts; two servers creating at once never overshoot a quota;
//! schedule runs past it are skipped runs; the default plan limits nothing.

use chronos_server::account::plans::Plan;
use chronos_server::server::ServeOptions;
use chronos_test_support::{StoreKind, TestServer, assert_error, both_stores};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    the_instance_administrator_assigns_plans,
    past_the_quota_creation_is_a_429_with_its_window,
    nothing_is_limited_on_the_default_plan,
    schedules_keep_to_the_plans_interval_and_retries,
    a_fire_past_the_quota_is_a_skipped_run,
    two_servers_creating_at_once_never_overshoot,
);

/// `PATCH /v1/orgs/default` `{"plan": plan}` with `key`.
async fn set_plan(s: &TestServer, key: &str, plan: &str) -> (u16, Value) {
    let body = Some(json!({ "plan": plan }));
    s.send(Method::PATCH, key, "/v1/orgs/default", body).await
}

async fn put_on(s: &TestServer, plan: Plan) {
    s.store.put_plan(&plan).await.unwrap();
    let (status, org) = set_plan(s, &s.admin_key, &plan.name).await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(org["plan"], plan.name.as_str());
}

fn small(per_day: u64, max_retries: u32) -> Plan {
    Plan {
        name: "small".into(),
        messages_per_day: Some(per_day),
        messages_per_month: Some(1000),
        min_interval_seconds: None,
        max_retries: Some(max_retries),
        verify_domains: false,
    }
}

async fn the_instance_administrator_assigns_plans(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (_, org) = s.get(&s.admin_key, "/v1/orgs/default").await;
    assert_eq!(org["plan"], "unlimited");
    // An admin of the organization may rename it, not change its plan.
    let admin = s.key(&["admin"]).await;
    let answer = set_plan(&s, &admin, "business").await;
    assert_error(&answer, 403, "instance_admin_only", None);
    let answer = set_plan(&s, &s.admin_key, "platinum").await;
    assert_error(&answer, 422, "validation_failed", Some("plan"));
    let (status, org) = set_plan(&s, &s.admin_key, "free").await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(org["plan"], "free");
    let (status, usage) = s.get(&admin, "/v1/usage").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(
        usage["plan"],
        json!({"name": "free", "messages_per_day": 500, "messages_per_month": 15000,
               "min_interval_seconds": 900, "max_retries": 1, "verify_domains": true})
    );
}

async fn past_the_quota_creation_is_a_429_with_its_window(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    put_on(&s, small(3, 1)).await;
    let (status, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "a", "handler": "h", "max_retries": 9}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["max_retries"], 1, "capped, and the answer shows it");

    // A batch of three: two fit, the third is refused on its own.
    let (status, batch) = s
        .post(
            &s.admin_key,
            "/v1/jobs/batch",
            json!({"jobs": [{"name": "b", "handler": "h"}, {"name": "c", "handler": "h"},
                            {"name": "d", "handler": "h"}]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let items = batch["data"].as_array().unwrap();
    assert!(
        items[0]["job"]["id"].is_string() && items[1]["job"]["id"].is_string(),
        "{batch}"
    );
    assert_eq!(items[2]["error"]["code"], "quota_exceeded", "{batch}");
    assert_eq!(items[2]["error"]["window"], "day");

    let response = s
        .http
        .post(s.url("/v1/jobs"))
        .bearer_auth(&s.admin_key)
        .json(&json!({"name": "e", "handler": "h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "quota_exceeded", "{body}");
    assert_eq!(error["message"], "Daily message limit reached");
    assert_eq!(
        (
            error["window"].as_str(),
            error["limit"].as_u64(),
            error["used"].as_u64()
        ),
        (Some("day"), Some(3), Some(3))
    );
    let resets_at = error["resets_at"].as_str().unwrap();
    assert!(resets_at.ends_with("T00:00:00.000Z"), "{resets_at}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after));
    assert_eq!(
        headers["ratelimit-policy"].to_str().unwrap(),
        "\"day\";q=3;w=86400"
    );
    assert_eq!(
        headers["ratelimit"].to_str().unwrap(),
        format!("\"day\";r=0;t={retry_after}")
    );

    // Messages count against the same quota.
    let answer = s
        .post(
            &s.admin_key,
            "/v1/messages",
            json!({"url": "https://example.com/hook", "body": "{}"}),
        )
        .await;
    assert_error(&answer, 429, "quota_exceeded", None);

    let (status, usage) = s.get(&s.admin_key, "/v1/usage").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["day"]["used"], 3);
    assert_eq!(usage["day"]["limit"], 3);
    assert_eq!(usage["day"]["resets_at"], resets_at);
    assert_eq!(usage["month"]["used"], 3);
    assert_eq!(usage["month"]["limit"], 1000);
}

async fn nothing_is_limited_on_the_default_plan(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let jobs: Vec<Value> = (0..600)
        .map(|i| json!({"name": format!("j{i}"), "handler": "h", "max_retries": 50}))
        .collect();
    let (status, batch) = s
        .post(&s.admin_key, "/v1/jobs/batch", json!({"jobs": jobs}))
        .await;
    assert_eq!(status, 200, "{batch}");
    let items = batch["data"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["job"]["id"].is_string() && i["job"]["max_retries"] == 50),
        "{batch}"
    );
    let (_, usage) = s.get(&s.admin_key, "/v1/usage").await;
    assert_eq!(usage["plan"]["name"], "unlimited");
    assert_eq!(usage["day"]["used"], 0, "the unlimited plan counts nothing");
    assert_eq!(usage["day"]["limit"], Value::Null);
}

async fn schedules_keep_to_the_plans_interval_and_retries(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, _) = set_plan(&s, &s.admin_key, "free").await;
    assert_eq!(status, 200);
    let post = |body: Value| s.post(&s.admin_key, "/v1/schedules", body);
    let refused = post(json!({"name": "often", "cron": "*/5 * * * *",
                              "url": "https://example.com/hook"}))
    .await;
    assert_error(&refused, 400, "validation_failed", Some("cron"));
    assert_eq!(
        refused.1["error"]["message"],
        "minimum interval is 15 minutes on this plan"
    );
    // Two runs a minute apart once an hour are still too often.
    let refused = post(json!({"name": "pair", "cron": "0,1 * * * *",
                              "url": "https://example.com/hook"}))
    .await;
    assert_error(&refused, 400, "validation_failed", Some("cron"));
    let refused = post(
        json!({"name": "every", "interval": {"value": 10, "unit": "minute"},
                              "url": "https://example.com/hook"}),
    )
    .await;
    assert_error(&refused, 400, "validation_failed", Some("interval"));

    let (status, schedule) = post(json!({"name": "fine", "cron": "*/15 * * * *",
                                         "url": "https://example.com/hook", "max_retries": 5}))
    .await;
    assert_eq!(status, 201, "{schedule}");
    assert_eq!(
        schedule["max_retries"], 1,
        "capped, and the answer shows it"
    );
}

async fn a_fire_past_the_quota_is_a_skipped_run(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    put_on(&s, small(2, 1)).await;
    let (status, schedule) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "tick", "handler": "h", "max_retries": 4,
                   "interval": {"value": 1, "unit": "minute"}}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_str().unwrap();
    async fn jobs_of(s: &TestServer, schedule: &str) -> Vec<Value> {
        let path = format!("/v1/jobs?schedule_id={schedule}&limit=100");
        s.get(&s.admin_key, &path).await.1["data"]
            .as_array()
            .unwrap()
            .clone()
    }
    let skipped_path = format!("/v1/schedules/{id}/skipped-runs");
    // One job of the day's two by hand, the second by the first fire.
    let (status, _) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "a", "handler": "h"}),
        )
        .await;
    assert_eq!(status, 201);
    s.advance_clock_and_settle(Duration::from_secs(61)).await;
    let fired = jobs_of(&s, id).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0]["max_retries"], 1, "capped to the plan");
    let (_, none) = s.get(&s.admin_key, &skipped_path).await;
    assert_eq!(none["data"], json!([]));

    // The next fire finds the day spent: no job, a skipped run saying why.
    s.advance_clock_and_settle(Duration::from_secs(60)).await;
    assert_eq!(jobs_of(&s, id).await.len(), 1);
    let (status, skipped) = s.get(&s.admin_key, &skipped_path).await;
    assert_eq!(status, 200, "{skipped}");
    let runs = skipped["data"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{skipped}");
    assert_eq!(runs[0]["schedule_id"], id);
    let error = &runs[0]["error"];
    assert_eq!(error["code"], "quota_exceeded");
    assert_eq!(error["message"], "Daily message limit reached");
    assert_eq!(
        (&error["window"], &error["limit"], &error["used"]),
        (&json!("day"), &json!(2), &json!(2))
    );
    let (_, usage) = s.get(&s.admin_key, "/v1/usage").await;
    assert_eq!(usage["day"]["used"], 2, "a skipped fire counts nothing");

    // A new day has room again: the schedule fires (its runs missed
    // meanwhile are skipped, as its `catch_up` says).
    s.advance_clock_and_settle(Duration::from_secs(86_400))
        .await;
    s.advance_clock_and_settle(Duration::from_secs(61)).await;
    assert_eq!(jobs_of(&s, id).await.len(), 2);
    let (_, usage) = s.get(&s.admin_key, "/v1/usage").await;
    assert!(
        matches!(usage["day"]["used"].as_u64(), Some(1..=2)),
        "{usage}"
    );

    let missing = s
        .get(
            &s.admin_key,
            "/v1/schedules/0190a6e0-0000-7000-8000-000000000000/skipped-runs",
        )
        .await;
    assert_error(&missing, 404, "not_found", None);
}

/// Two servers on one store, 40 creates at once for a quota of 25: exactly
/// 25 are made, the rest refused, and the count says 25.
async fn two_servers_creating_at_once_never_overshoot(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    put_on(&s, small(25, 1)).await;
    let t = s.another().await;
    let creates = (0..40).map(|i| {
        let server = if i % 2 == 0 { &s } else { &t };
        let body = json!({"name": format!("j{i}"), "handler": "h"});
        async move { server.post(&server.admin_key, "/v1/jobs", body).await.0 }
    });
    let statuses = futures_util::future::join_all(creates).await;
    let made = statuses.iter().filter(|&&s| s == 201).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((made, refused), (25, 15), "{statuses:?}");
    let (_, usage) = t.get(&t.admin_key, "/v1/usage").await;
    assert_eq!(usage["day"]["used"], 25);
    let (_, jobs) = s.get(&s.admin_key, "/v1/jobs?limit=100").await;
    assert_eq!(jobs["data"].as_array().unwrap().len(), 25);
}
