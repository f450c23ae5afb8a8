//! The jobs API over real HTTP, on both stores: the requests of the one-off
//! jobs document (seed 001), every error the conventions name, keys and
//! scopes, and organization isolation.

mod common;

use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;

use common::{StoreKind, TestServer, assert_error};
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    creates_a_job_that_runs_now,
    delay_and_scheduled_for_set_run_at,
    idempotency_keys_are_unique_per_organization,
    push_delivery_is_accepted_and_stored,
    timeout_and_retries_have_defaults_and_limits,
    lists_filter_and_paginate,
    cancel_moves_unfinished_jobs_only,
    executions_of_a_new_job_are_empty,
    bad_input_is_a_json_4xx_naming_the_field,
    keys_are_checked_and_scoped,
    organizations_cannot_see_each_other,
    delayed_jobs_become_queued_when_due,
    openapi_describes_every_route,
    health_and_readiness,
);

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, job) = s.post(&s.admin_key, "/v1/jobs", body).await;
    assert_eq!(status, 201, "{job}");
    job
}

async fn creates_a_job_that_runs_now(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let job = create(
        &s,
        json!({"name": "Process upload", "handler": "process-upload",
               "payload": {"fileId": "file_abc123"}}),
    )
    .await;
    assert_eq!(job["name"], "Process upload");
    assert_eq!(job["handler"], "process-upload");
    assert_eq!(job["payload"], json!({"fileId": "file_abc123"}));
    assert_eq!(job["status"], "queued");
    assert_eq!(job["queue"], "default");
    assert_eq!(job["priority"], 0);
    assert_eq!(job["delivery"], json!({"type": "pull"}));
    assert_eq!(job["timeout"], 30);
    assert_eq!(job["max_retries"], 3);
    assert_eq!(job["attempt"], 0);
    assert_eq!(job["schedule_id"], Value::Null);
    assert_eq!(job["result"], Value::Null);
    // RFC 3339 UTC with milliseconds.
    let run_at = job["run_at"].as_str().unwrap();
    assert_eq!(run_at.len(), "2026-01-02T03:04:05.678Z".len(), "{run_at}");
    assert!(run_at.ends_with('Z'));

    let (status, got) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got, job);
}

fn parse_ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

async fn delay_and_scheduled_for_set_run_at(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let job = create(
        &s,
        json!({"name": "Send follow-up", "handler": "send-email",
               "delay": {"value": 2, "unit": "hour"},
               "payload": {"userId": "usr_123", "template": "follow-up"}}),
    )
    .await;
    assert_eq!(job["status"], "scheduled");
    let ahead = parse_ts(&job["run_at"]) - parse_ts(&job["created_at"]);
    assert!(
        (ahead.num_milliseconds() - 7_200_000).abs() < 1000,
        "{ahead}"
    );

    for (unit, secs) in [
        ("second", 1),
        ("minute", 60),
        ("day", 86_400),
        ("week", 604_800),
    ] {
        let job = create(
            &s,
            json!({"name": "u", "handler": "h", "delay": {"value": 3, "unit": unit}}),
        )
        .await;
        let ahead = parse_ts(&job["run_at"]) - parse_ts(&job["created_at"]);
        assert!(
            (ahead.num_milliseconds() - 3000 * secs).abs() < 1000,
            "{unit}: {ahead}"
        );
    }

    let job = create(
        &s,
        json!({"name": "Expire trial", "handler": "expire-trial",
               "scheduled_for": "2030-02-15T00:00:00Z", "payload": {"accountId": "acc_456"}}),
    )
    .await;
    assert_eq!(job["status"], "scheduled");
    assert_eq!(job["run_at"], "2030-02-15T00:00:00.000Z");

    // Offsets are converted to UTC.
    let job = create(
        &s,
        json!({"name": "x", "handler": "h", "scheduled_for": "2030-02-15T01:00:00+01:00"}),
    )
    .await;
    assert_eq!(job["run_at"], "2030-02-15T00:00:00.000Z");

    let past = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "scheduled_for": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(&past, 422, "validation_failed", Some("scheduled_for"));
    assert!(
        past.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("future")
    );

    let both = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "delay": {"value": 1, "unit": "hour"},
                   "scheduled_for": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(&both, 400, "validation_failed", None);
    assert_eq!(
        both.1["error"]["message"],
        "give either delay or scheduled_for, not both"
    );

    let bad_unit = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "delay": {"value": 1, "unit": "fortnight"}}),
        )
        .await;
    assert_error(&bad_unit, 400, "validation_failed", Some("delay.unit"));

    let not_a_time = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "scheduled_for": "next tuesday"}),
        )
        .await;
    assert_error(&not_a_time, 400, "validation_failed", Some("scheduled_for"));

    let too_far = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "delay": {"value": 100000, "unit": "week"}}),
        )
        .await;
    // Each field fits the schema; together they are over ten years (422).
    assert_error(&too_far, 422, "validation_failed", Some("delay.value"));
    // One field alone over ten years in seconds is the schema's (400).
    let too_many_seconds = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "delay": {"value": 316_224_001, "unit": "second"}}),
        )
        .await;
    assert_error(
        &too_many_seconds,
        400,
        "validation_failed",
        Some("delay.value"),
    );
}

async fn idempotency_keys_are_unique_per_organization(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let body = json!({"name": "Charge invoice inv_789", "handler": "charge-invoice",
                      "delay": {"value": 1, "unit": "hour"},
                      "idempotency_key": "charge-inv_789", "payload": {"invoiceId": "inv_789"}});
    let first = create(&s, body.clone()).await;
    assert_eq!(first["idempotency_key"], "charge-inv_789");
    let again = s.post(&s.admin_key, "/v1/jobs", body.clone()).await;
    assert_error(&again, 409, "idempotency_key_conflict", None);
    assert_eq!(again.1["error"]["job_id"], first["id"]);

    // The same key in another organization is another key.
    let other = s.other_org_key("other").await;
    let (status, theirs) = s.post(&other, "/v1/jobs", body).await;
    assert_eq!(status, 201, "{theirs}");
    assert_ne!(theirs["id"], first["id"]);

    let long = "k".repeat(256);
    let too_long = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "x", "handler": "h", "idempotency_key": long}),
        )
        .await;
    assert_error(&too_long, 400, "validation_failed", Some("idempotency_key"));
    let max = create(
        &s,
        json!({"name": "x", "handler": "h", "idempotency_key": "k".repeat(255)}),
    )
    .await;
    assert_eq!(max["idempotency_key"].as_str().unwrap().len(), 255);

    // Concurrent duplicates: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = s.http.clone();
        let url = s.url("/v1/jobs");
        let key = s.admin_key.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"name": "race", "handler": "h", "idempotency_key": "race"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [201, 409, 409, 409, 409, 409, 409, 409]);
}

async fn push_delivery_is_accepted_and_stored(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let job = create(
        &s,
        json!({"name": "Send webhook notification", "handler": "notify",
               "delay": {"value": 5, "unit": "minute"},
               "delivery": {"type": "push", "http": {"url": "https://your-app.com/hooks/chronos",
                                                     "method": "POST"}},
               "payload": {"event": "subscription.created", "data": {"id": "sub_123"}}}),
    )
    .await;
    assert_eq!(
        job["delivery"],
        json!({"type": "push", "http": {"url": "https://your-app.com/hooks/chronos",
                                        "method": "POST", "headers": {}}})
    );
    let with_headers = create(
        &s,
        json!({"name": "n", "handler": "h",
               "delivery": {"type": "push", "http": {"url": "https://x.test/h", "method": "PUT",
                                                     "headers": {"X-Tenant": "abc", "X-Token": "t"}}}}),
    )
    .await;
    // A credential's value is hidden (tests/redaction.rs).
    assert_eq!(
        with_headers["delivery"]["http"]["headers"],
        json!({"X-Tenant": "abc", "X-Token": "***redacted***"})
    );
    assert_eq!(with_headers["delivery"]["http"]["method"], "PUT");

    // What the schema refuses is a 400; a URL that fits it but is no
    // http(s) target breaks a rule beyond it (422).
    for (delivery, status, field) in [
        (
            json!({"type": "push", "http": {"url": "not a url"}}),
            400,
            "delivery.http.url",
        ),
        (
            json!({"type": "push", "http": {"url": "ftp://x.test/"}}),
            422,
            "delivery.http.url",
        ),
        (json!({"type": "push"}), 400, "delivery.http"),
        (
            json!({"type": "push", "http": {"url": "https://x.test", "method": "BREW"}}),
            400,
            "delivery.http.method",
        ),
        (
            json!({"type": "push", "http": {"url": "https://x.test", "headers": {"bad header": "v"}}}),
            400,
            "delivery.http.headers.bad header",
        ),
        (json!({"type": "carrier-pigeon"}), 400, "delivery.type"),
    ] {
        let answer = s
            .post(
                &s.admin_key,
                "/v1/jobs",
                json!({"name": "n", "handler": "h", "delivery": delivery}),
            )
            .await;
        assert_error(&answer, status, "validation_failed", Some(field));
    }
}

async fn timeout_and_retries_have_defaults_and_limits(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let job = create(
        &s,
        json!({"name": "Critical charge", "handler": "charge-invoice",
               "delay": {"value": 1, "unit": "hour"}, "timeout": 60, "max_retries": 5,
               "payload": {"invoiceId": "inv_789"}}),
    )
    .await;
    assert_eq!(job["timeout"], 60);
    assert_eq!(job["max_retries"], 5);
    let none = create(&s, json!({"name": "n", "handler": "h", "max_retries": 0})).await;
    assert_eq!(none["max_retries"], 0);
    s.make_queue("emails").await;
    let prio = create(
        &s,
        json!({"name": "n", "handler": "h", "priority": 10, "queue": "emails"}),
    )
    .await;
    assert_eq!(prio["priority"], 10);
    assert_eq!(prio["queue"], "emails");

    for (body, field) in [
        (
            json!({"name": "n", "handler": "h", "timeout": 0}),
            "timeout",
        ),
        (
            json!({"name": "n", "handler": "h", "timeout": 86401}),
            "timeout",
        ),
        (
            json!({"name": "n", "handler": "h", "timeout": -1}),
            "timeout",
        ),
        (
            json!({"name": "n", "handler": "h", "timeout": "30"}),
            "timeout",
        ),
        (
            json!({"name": "n", "handler": "h", "max_retries": 101}),
            "max_retries",
        ),
        (
            json!({"name": "n", "handler": "h", "queue": "has space"}),
            "queue",
        ),
        (
            json!({"name": "n", "handler": "h", "priority": 1.5}),
            "priority",
        ),
    ] {
        let answer = s.post(&s.admin_key, "/v1/jobs", body).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
    }
}

async fn list_all(s: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?{query}{sep}limit=3&cursor={c}"),
            None => format!("/v1/jobs?{query}{sep}limit=3"),
        };
        let (status, page) = s.get(&s.admin_key, &path).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        out.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out
}

async fn lists_filter_and_paginate(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    s.make_queue("later").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let handler = if i % 2 == 0 { "even" } else { "odd" };
        let mut body = json!({"name": format!("job {i}"), "handler": handler});
        if i >= 5 {
            body["delay"] = json!({"value": 1, "unit": "day"});
            body["queue"] = json!("later");
        }
        ids.push(create(&s, body).await["id"].as_str().unwrap().to_string());
    }
    let all = list_all(&s, "").await;
    let listed: Vec<&str> = all.iter().map(|j| j["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first, "every job once, newest first");

    assert_eq!(list_all(&s, "schedule_id=null").await.len(), 7);
    assert_eq!(list_all(&s, "handler=even").await.len(), 4);
    assert_eq!(list_all(&s, "queue=later").await.len(), 2);
    assert_eq!(list_all(&s, "status=scheduled").await.len(), 2);
    assert_eq!(list_all(&s, "status=queued").await.len(), 5);
    assert_eq!(list_all(&s, "status=queued,scheduled").await.len(), 7);
    assert_eq!(list_all(&s, "status=completed").await.len(), 0);
    assert_eq!(list_all(&s, "handler=odd&status=queued").await.len(), 2);
    let random_schedule = uuid::Uuid::now_v7();
    assert_eq!(
        list_all(&s, &format!("schedule_id={random_schedule}"))
            .await
            .len(),
        0
    );

    let (status, page) = s.get(&s.admin_key, "/v1/jobs").await;
    assert_eq!(status, 200);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["data"].as_array().unwrap().len(), 7);

    for (query, field) in [
        ("status=bogus", "status"),
        ("schedule_id=nope", "schedule_id"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage!", "cursor"),
    ] {
        let answer = s.get(&s.admin_key, &format!("/v1/jobs?{query}")).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
    }
    let unknown = s.get(&s.admin_key, "/v1/jobs?colour=red").await;
    assert_error(&unknown, 400, "unknown_field", Some("colour"));
}

async fn cancel_moves_unfinished_jobs_only(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    for body in [
        json!({"name": "n", "handler": "h"}),
        json!({"name": "n", "handler": "h", "delay": {"value": 1, "unit": "hour"}}),
    ] {
        let job = create(&s, body).await;
        let id = job["id"].as_str().unwrap();
        let (status, cancelled) = s
            .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/cancel"))
            .await;
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");
        assert!(cancelled["finished_at"].is_string());
        let again = s
            .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/cancel"))
            .await;
        assert_error(&again, 409, "job_finished", None);
        let (_, got) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(got["status"], "cancelled");
    }
    let missing = s
        .post_empty(
            &s.admin_key,
            &format!("/v1/jobs/{}/cancel", uuid::Uuid::now_v7()),
        )
        .await;
    assert_error(&missing, 404, "not_found", None);
    let not_uuid = s.post_empty(&s.admin_key, "/v1/jobs/123/cancel").await;
    assert_error(&not_uuid, 404, "not_found", None);
}

async fn executions_of_a_new_job_are_empty(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let job = create(&s, json!({"name": "n", "handler": "h"})).await;
    let (status, page) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}/executions", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page, json!({"data": [], "next_cursor": null}));
    let missing = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}/executions", uuid::Uuid::now_v7()),
        )
        .await;
    assert_error(&missing, 404, "not_found", None);
}

async fn bad_input_is_a_json_4xx_naming_the_field(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let raw = |body: &'static str, ct: Option<&'static str>| {
        let mut req = s
            .http
            .post(s.url("/v1/jobs"))
            .bearer_auth(&s.admin_key)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        async move { common::decode(req.send().await.unwrap()).await }
    };
    let json_ct = Some("application/json");
    assert_error(
        &raw("{\"name\": ", json_ct).await,
        400,
        "invalid_json",
        None,
    );
    assert_error(&raw("", json_ct).await, 400, "invalid_json", None);
    assert_error(
        &raw("[1, 2]", json_ct).await,
        400,
        "validation_failed",
        None,
    );
    assert_error(
        &raw(r#"{"name": 5, "handler": "h"}"#, json_ct).await,
        400,
        "validation_failed",
        Some("name"),
    );
    assert_error(
        &raw(r#"{"name": "n", "handler": "h", "hander": "x"}"#, json_ct).await,
        400,
        "unknown_field",
        Some("hander"),
    );
    assert_error(
        &raw(
            r#"{"name": "n", "handler": "h", "delay": {"value": 1, "unit": "hour", "jitter": 1}}"#,
            json_ct,
        )
        .await,
        400,
        "unknown_field",
        Some("delay.jitter"),
    );
    assert_error(
        &raw(
            r#"{"name": "n", "handler": "h", "delivery": {"type": "pull", "when": 1}}"#,
            json_ct,
        )
        .await,
        400,
        "unknown_field",
        Some("delivery.when"),
    );
    assert_error(
        &raw(r#"{"name": "n", "handler": "h", "delivery": {"type": "pull", "http": {"url": "https://x.test"}}}"#, json_ct).await,
        400,
        "unknown_field",
        Some("delivery.http"),
    );
    // Missing content type is read as JSON; a non-JSON one is refused.
    let (status, _) = raw(r#"{"name": "n", "handler": "h"}"#, None).await;
    assert_eq!(status, 201);
    assert_error(
        &raw("name=n", Some("application/x-www-form-urlencoded")).await,
        415,
        "unsupported_media_type",
        None,
    );

    let missing_name = s
        .post(&s.admin_key, "/v1/jobs", json!({"handler": "h"}))
        .await;
    assert_error(&missing_name, 400, "validation_failed", Some("name"));
    assert_eq!(missing_name.1["error"]["message"], "name is required");
    let missing_handler = s.post(&s.admin_key, "/v1/jobs", json!({"name": "n"})).await;
    assert_error(&missing_handler, 400, "validation_failed", Some("handler"));
    let blank = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "  ", "handler": "h"}),
        )
        .await;
    assert_error(&blank, 400, "validation_failed", Some("name"));

    let big = json!({"name": "n", "handler": "h", "payload": {"blob": "x".repeat(1024 * 1024)}});
    let too_large = s.post(&s.admin_key, "/v1/jobs", big).await;
    assert_error(&too_large, 413, "payload_too_large", None);
    // Just under the limit is fine.
    let fits = json!({"name": "n", "handler": "h", "payload": {"blob": "x".repeat(1000 * 1000)}});
    assert_eq!(s.post(&s.admin_key, "/v1/jobs", fits).await.0, 201);

    let no_route = s.get(&s.admin_key, "/v1/nothing-here").await;
    assert_error(&no_route, 404, "not_found", None);
    let resp = s
        .http
        .delete(s.url("/v1/jobs"))
        .bearer_auth(&s.admin_key)
        .send()
        .await
        .unwrap();
    assert_error(&common::decode(resp).await, 405, "method_not_allowed", None);
}

async fn keys_are_checked_and_scoped(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let no_header = common::decode(s.http.get(s.url("/v1/jobs")).send().await.unwrap()).await;
    assert_error(&no_header, 401, "unauthorized", None);
    assert!(
        no_header.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing")
    );

    let basic = common::decode(
        s.http
            .get(s.url("/v1/jobs"))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&basic, 401, "unauthorized", None);
    assert!(
        basic.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );

    let placeholder = s.get("chrns_your_api_key", "/v1/jobs").await;
    assert_error(&placeholder, 401, "unauthorized", None);
    assert!(
        placeholder.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("placeholder")
    );

    let malformed = s.get("chrns_123", "/v1/jobs").await;
    assert_error(&malformed, 401, "unauthorized", None);
    assert!(
        malformed.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );

    let unknown = s
        .get(&chronos_server::account::keys::generate().full, "/v1/jobs")
        .await;
    assert_error(&unknown, 401, "unauthorized", None);
    assert!(
        unknown.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown")
    );

    // A known id with the wrong secret is as unknown as any other.
    let admin_id = s.admin_key.split('_').nth(1).unwrap();
    let wrong_secret = format!("chrns_{admin_id}_{}", "0".repeat(64));
    assert_error(
        &s.get(&wrong_secret, "/v1/jobs").await,
        401,
        "unauthorized",
        None,
    );

    let reader = s.key(&["jobs:read"]).await;
    let writer = s.key(&["jobs:write"]).await;
    let worker = s.key(&["worker"]).await;
    let body = json!({"name": "n", "handler": "h"});
    let denied = s.post(&reader, "/v1/jobs", body.clone()).await;
    assert_error(&denied, 403, "forbidden", None);
    assert!(
        denied.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jobs:write")
    );
    let (status, job) = s.post(&writer, "/v1/jobs", body.clone()).await;
    assert_eq!(status, 201);
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    assert_eq!(s.get(&reader, &path).await.0, 200);
    assert_eq!(
        s.get(&writer, &path).await.0,
        200,
        "jobs:write includes jobs:read"
    );
    let worker_read = s.get(&worker, &path).await;
    assert_error(&worker_read, 403, "forbidden", None);
    assert!(
        worker_read.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jobs:read")
    );
    assert_error(
        &s.post_empty(&reader, &format!("{path}/cancel")).await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &s.get(&writer, "/v1/api-keys").await,
        403,
        "forbidden",
        None,
    );

    // Keys: list, revoke, and the revoked key is refused.
    let (status, keys) = s.get(&s.admin_key, "/v1/api-keys").await;
    assert_eq!(status, 200);
    assert_eq!(keys["data"].as_array().unwrap().len(), 4);
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none())
    );
    let reader_id = reader.split('_').nth(1).unwrap();
    let (status, revoked) = s
        .post_empty(&s.admin_key, &format!("/v1/api-keys/{reader_id}/revoke"))
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let refused = s.get(&reader, &path).await;
    assert_error(&refused, 401, "unauthorized", None);
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let no_scopes = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "n", "scopes": []}),
        )
        .await;
    assert_error(&no_scopes, 400, "validation_failed", Some("scopes"));
    let bad_scope = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "n", "scopes": ["root"]}),
        )
        .await;
    assert_error(&bad_scope, 400, "validation_failed", Some("scopes[0]"));
}

async fn organizations_cannot_see_each_other(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let ours = create(&s, json!({"name": "n", "handler": "h"})).await;
    let id = ours["id"].as_str().unwrap();
    let theirs = s.other_org_key("acme").await;
    assert_error(
        &s.get(&theirs, &format!("/v1/jobs/{id}")).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.get(&theirs, &format!("/v1/jobs/{id}/executions")).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.post_empty(&theirs, &format!("/v1/jobs/{id}/cancel"))
            .await,
        404,
        "not_found",
        None,
    );
    let (_, list) = s.get(&theirs, "/v1/jobs").await;
    assert_eq!(list["data"], json!([]));
    let admin_id = s.admin_key.split('_').nth(1).unwrap();
    assert_error(
        &s.post_empty(&theirs, &format!("/v1/api-keys/{admin_id}/revoke"))
            .await,
        404,
        "not_found",
        None,
    );
    // And ours is untouched.
    let (_, still) = s.get(&s.admin_key, &format!("/v1/jobs/{id}")).await;
    assert_eq!(still["status"], "queued");
    let (_, keys) = s.get(&theirs, "/v1/api-keys").await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
}

async fn delayed_jobs_become_queued_when_due(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let job = create(
        &s,
        json!({"name": "n", "handler": "h", "delay": {"value": 1, "unit": "hour"}}),
    )
    .await;
    assert_eq!(job["status"], "scheduled");
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    s.advance_clock_and_settle(Duration::from_secs(3599)).await;
    let (_, before) = s.get(&s.admin_key, &path).await;
    assert_eq!(before["status"], "scheduled", "promoted early: {before}");
    s.advance_clock_and_settle(Duration::from_secs(2)).await;
    let (_, now) = s.get(&s.admin_key, &path).await;
    assert_eq!(now["status"], "queued", "not promoted when due: {now}");
}

async fn openapi_describes_every_route(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let resp = s.http.get(s.url("/v1/openapi.json")).send().await.unwrap();
    let (status, doc) = common::decode(resp).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/executions", "get"),
        ("/v1/jobs/{id}/retry", "post"),
        ("/v1/workers/poll", "post"),
        ("/v1/leases/ack", "post"),
        ("/v1/leases/fail", "post"),
        ("/v1/leases/extend", "post"),
        ("/v1/workers", "get"),
        ("/v1/workers/connect", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys/{id}/revoke", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Job",
        "CreateJob",
        "ErrorBody",
        "Execution",
        "Delivery",
        "LeasedJob",
        "PollRequest",
        "AckRequest",
        "FailRequest",
        "ExtendRequest",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}

async fn health_and_readiness(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = common::decode(s.http.get(s.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
    }
}
