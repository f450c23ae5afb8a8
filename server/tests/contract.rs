//! The server holds every request to its OpenAPI document, over real HTTP
//! on both stores: what the document refuses is a 400 naming the field,
//! what it accepts gets through, and the caller is authenticated first.
//! (`tests/contract/run` fuzzes every route against the document too.)

mod common;

use chronos_test_support::both_stores;
use common::{StoreKind, TestServer, assert_error};
use serde_json::json;

both_stores!(
    limits_in_the_document_are_the_limits_enforced,
    unknown_query_parameters_are_refused_on_every_route,
    a_caller_without_a_key_learns_nothing_but_401,
    whole_numbers_are_integers_as_json_schema_counts_them,
    the_document_served_is_the_one_enforced,
);

async fn limits_in_the_document_are_the_limits_enforced(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    for (body, field, message) in [
        (
            json!({"name": "n", "handler": "h", "timeout": 0}),
            "timeout",
            "timeout must be between 1 and 86400",
        ),
        (
            json!({"name": "n", "handler": "h", "timeout": 86_401}),
            "timeout",
            "timeout must be between 1 and 86400",
        ),
        (
            json!({"name": "n", "handler": "h", "max_retries": 101}),
            "max_retries",
            "max_retries must be between 0 and 100",
        ),
        (
            json!({"name": "", "handler": "h"}),
            "name",
            "name must be 1 to 255 characters",
        ),
        (
            json!({"name": "n".repeat(256), "handler": "h"}),
            "name",
            "name must be 1 to 255 characters",
        ),
        (
            json!({"name": "n", "handler": "two words"}),
            "handler",
            "handler may not hold commas, white space or control characters",
        ),
        (
            json!({"name": "n", "handler": "h", "queue": "a/b"}),
            "queue",
            "queue must be letters, digits, '-', '_', '.' or ':'",
        ),
        (
            json!({"name": "n", "handler": "h", "priority": 2_147_483_648_i64}),
            "priority",
            "priority must be between -2147483648 and 2147483647",
        ),
    ] {
        let answer = s.post(key, "/v1/jobs", body.clone()).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
        assert_eq!(answer.1["error"]["message"], message, "{body}");
    }
    // The bounds themselves are accepted.
    s.make_queue("a.b:c-d_e").await;
    for body in [
        json!({"name": "n", "handler": "h", "timeout": 1, "max_retries": 0}),
        json!({"name": "n", "handler": "h", "timeout": 86_400, "max_retries": 100}),
        json!({"name": "n".repeat(255), "handler": "h".repeat(255), "queue": "a.b:c-d_e"}),
    ] {
        let (status, job) = s.post(key, "/v1/jobs", body).await;
        assert_eq!(status, 201, "{job}");
    }
    for (path, field, message) in [
        (
            "/v1/jobs?limit=0",
            "limit",
            "limit must be between 1 and 100",
        ),
        (
            "/v1/jobs?limit=101",
            "limit",
            "limit must be between 1 and 100",
        ),
        ("/v1/jobs?limit=ten", "limit", "limit must be an integer"),
        (
            "/v1/jobs?status=queued,sleeping",
            "status",
            "status must match the pattern `^(\\s*(scheduled|queued|running|completed|failed|cancelled)\\s*(,\\s*(scheduled|queued|running|completed|failed|cancelled)\\s*)*)?$`",
        ),
    ] {
        let answer = s.get(key, path).await;
        assert_error(&answer, 400, "validation_failed", Some(field));
        assert_eq!(answer.1["error"]["message"], message, "{path}");
    }
    let answer = s
        .post(
            key,
            "/v1/leases/extend",
            json!({"token": uuid::Uuid::now_v7(), "seconds": 86_401}),
        )
        .await;
    assert_error(&answer, 400, "validation_failed", Some("seconds"));
}

async fn unknown_query_parameters_are_refused_on_every_route(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    let (_, job) = s
        .post(key, "/v1/jobs", json!({"name": "n", "handler": "h"}))
        .await;
    let id = job["id"].as_str().unwrap();
    for path in [
        "/v1/jobs?colour=blue".to_string(),
        format!("/v1/jobs/{id}?colour=blue"),
        "/v1/api-keys?colour=blue".to_string(),
    ] {
        let answer = s.get(key, &path).await;
        assert_error(&answer, 400, "unknown_field", Some("colour"));
    }
    let answer = s
        .post(key, &format!("/v1/jobs/{id}/cancel?now=1"), json!(null))
        .await;
    assert_error(&answer, 400, "unknown_field", Some("now"));
    let answer = s.get(key, "/v1/jobs?limit=5&limit=6").await;
    assert_error(&answer, 400, "validation_failed", Some("limit"));
}

async fn a_caller_without_a_key_learns_nothing_but_401(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let answer = s.get("chrns_nope", "/v1/jobs?limit=0&colour=blue").await;
    assert_error(&answer, 401, "unauthorized", None);
    let answer = s
        .post("chrns_nope", "/v1/jobs", json!({"colour": "blue"}))
        .await;
    assert_error(&answer, 401, "unauthorized", None);
}

async fn whole_numbers_are_integers_as_json_schema_counts_them(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    let (status, job) = s
        .post(
            key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "timeout": 90.0, "max_retries": 2.0,
                   "payload": {"kept": 1.0}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["timeout"], 90);
    assert_eq!(job["max_retries"], 2);
    // The payload is the user's: its numbers stay as sent.
    assert_eq!(job["payload"], json!({"kept": 1.0}));
    let answer = s
        .post(
            key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h", "timeout": 90.5}),
        )
        .await;
    assert_error(&answer, 400, "validation_failed", Some("timeout"));
}

async fn the_document_served_is_the_one_enforced(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, served) = s.get(&s.admin_key, "/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(served, chronos_server::api::document());
    // Requests refuse unknown fields; so do the objects they hold.
    let schemas = &served["components"]["schemas"];
    for name in [
        "CreateJob",
        "Delay",
        "HttpTarget",
        "CreateMessage",
        "PollRequest",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
}
