//! The SSRF guard at job creation, on both stores: push targets must be
//! HTTPS and public — loopback, private, link-local, metadata and IPv4 in
//! IPv6 are refused with 422 `ssrf_blocked`, naming the field — unless the
//! server runs with `--allow-private-targets`.

mod common;

use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::{StoreKind, TestServer, assert_error};
use serde_json::{Value, json};

both_stores!(
    private_targets_are_refused,
    plain_http_is_refused,
    a_batch_refuses_private_targets_per_job,
    local_development_allows_private_targets,
);

fn push(url: &str) -> Value {
    json!({"name": "n", "handler": "h",
           "delivery": {"type": "push", "http": {"url": url}}})
}

async fn private_targets_are_refused(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.20:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://100.64.0.1/hook",
        // A name that resolves to loopback.
        "https://localhost:3000/hook",
    ] {
        let answer = s.post(&s.admin_key, "/v1/jobs", push(url)).await;
        assert_error(&answer, 422, "ssrf_blocked", Some("delivery.http.url"));
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains("--allow-private-targets"), "{message}");
    }
    // A public address passes.
    let (status, job) = s
        .post(&s.admin_key, "/v1/jobs", push("https://93.184.216.34/hook"))
        .await;
    assert_eq!(status, 201, "{job}");
}

async fn plain_http_is_refused(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let answer = s
        .post(&s.admin_key, "/v1/jobs", push("http://93.184.216.34/hook"))
        .await;
    // A rule beyond the schema (which allows any absolute URL): 422, as
    // seed 004 answers plain HTTP.
    assert_error(&answer, 422, "validation_failed", Some("delivery.http.url"));
}

async fn a_batch_refuses_private_targets_per_job(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/jobs/batch",
            json!({"jobs": [push("https://93.184.216.34/a"), push("https://10.1.2.3/b"),
                            push("http://93.184.216.34/c")]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["job"]["status"], "queued");
    assert_eq!(body["data"][1]["error"]["code"], "ssrf_blocked");
    assert_eq!(body["data"][2]["error"]["code"], "validation_failed");
}

async fn local_development_allows_private_targets(kind: StoreKind) {
    let options = ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        ..ServeOptions::default()
    };
    let s = TestServer::start_with(kind, options).await;
    for url in [
        "http://localhost:3000/hooks/chronos",
        "https://127.0.0.1/hook",
    ] {
        let (status, job) = s.post(&s.admin_key, "/v1/jobs", push(url)).await;
        assert_eq!(status, 201, "{url}: {job}");
    }
}
