//! Plans and quotas over real HTTP, on both stores: the instance
//! administrator puts an organization on a plan; past its quota, creation
//! is a 429 with seed 004's structured fields and the rate-limit headers,
//! a batch refuses only the items past it, retries are capped to the plan
//! and the answer shows the value used; `GET /v1/usage` shows the plan and
//! the counts; the default plan limits nothing.

use chronos_server::account::plans::Plan;
use chronos_test_support::{StoreKind, TestServer, assert_error, both_stores};
use reqwest::Method;
use serde_json::{Value, json};

both_stores!(
    the_instance_administrator_assigns_plans,
    past_the_quota_creation_is_a_429_with_its_window,
    nothing_is_limited_on_the_default_plan,
    schedules_keep_to_the_plans_interval_and_retries,
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
