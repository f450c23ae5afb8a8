//! `sdk-rust/manifest.json` is the Rust SDK as it is: the client's methods
//! and properties are those of `impl Client` in src/client.rs, and its
//! defaults those the real builders start with. The Node and Python suites
//! hold their SDK to the same file, so the three cannot drift apart.

use chronos::client::{CONNECT_TIMEOUT, DEFAULT_NEXT_RUNS, DEFAULT_TIMEOUT};
use chronos::worker::{
    DEFAULT_CONCURRENCY, MAX_CONCURRENCY, MIN_HEARTBEAT, RECONNECT_FIRST_WAIT, RECONNECT_MAX_WAIT,
};
use chronos::{Client, Worker, WorkerSettings};
use serde_json::{Value, json};

fn manifest() -> Value {
    serde_json::from_str(include_str!("../manifest.json")).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The `pub async fn`s (methods) and other `pub fn`s taking `&self`
/// (properties) of `impl Client`, as the source declares them.
fn client_surface() -> (Vec<String>, Vec<String>) {
    let source = include_str!("../src/client.rs");
    let start = source
        .find("\nimpl Client {\n")
        .expect("impl Client in client.rs");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("the end of impl Client")];
    let (mut methods, mut properties) = (Vec::new(), Vec::new());
    for line in body.lines().map(str::trim) {
        let (list, rest) = if let Some(rest) = line.strip_prefix("pub async fn ") {
            (&mut methods, rest)
        } else if let Some(rest) = line.strip_prefix("pub fn ") {
            if !rest.contains("(&self") {
                continue; // constructors: new, builder
            }
            (&mut properties, rest)
        } else {
            continue;
        };
        let name = rest.split(['(', '<']).next().unwrap().to_string();
        list.push(name);
    }
    methods.sort();
    properties.sort();
    (methods, properties)
}

#[test]
fn the_client_methods_are_the_manifests() {
    let m = manifest();
    let (methods, properties) = client_surface();
    assert!(methods.len() > 20, "{methods:?}");
    assert_eq!(
        methods,
        names(&m["client"]["methods"]),
        "sdk-rust/manifest.json's client.methods must list every `pub async fn` of Client"
    );
    assert_eq!(properties, names(&m["client"]["properties"]));
}

#[test]
fn the_defaults_are_the_builders() {
    let m = manifest();
    let client = Client::new("http://127.0.0.1:7070", "chrns_x").unwrap();
    assert_eq!(client.timeout(), Some(DEFAULT_TIMEOUT));
    assert_eq!(
        m["client"]["defaults"],
        json!({
            "timeout_seconds": DEFAULT_TIMEOUT.as_secs(),
            "next_runs_count": DEFAULT_NEXT_RUNS,
        })
    );
    assert_eq!(
        m["client"]["core"],
        json!({"connect_timeout_seconds": CONNECT_TIMEOUT.as_secs()})
    );

    // Every setting is here (a new one fails to compile until it is listed).
    let WorkerSettings {
        concurrency,
        worker_id,
        shutdown_grace,
        handle_signals,
    } = Worker::builder("http://127.0.0.1:7070", "chrns_x").settings();
    assert_eq!(concurrency, DEFAULT_CONCURRENCY);
    assert_eq!(worker_id, None);
    assert_eq!(
        m["worker"]["options"],
        json!([
            "concurrency",
            "worker_id",
            "shutdown_grace_seconds",
            "handle_signals"
        ])
    );
    assert_eq!(
        m["worker"]["defaults"],
        json!({
            "concurrency": concurrency,
            "shutdown_grace_seconds": shutdown_grace.as_secs(),
            "handle_signals": handle_signals,
        })
    );
    assert_eq!(
        m["worker"]["core"],
        json!({
            "max_concurrency": MAX_CONCURRENCY,
            "reconnect_first_wait_ms": RECONNECT_FIRST_WAIT.as_millis() as u64,
            "reconnect_max_wait_ms": RECONNECT_MAX_WAIT.as_millis() as u64,
            "min_heartbeat_ms": MIN_HEARTBEAT.as_millis() as u64,
        })
    );
}

#[test]
fn a_hosted_worker_keeps_the_builders_settings() {
    let hosted = chronos::hosted::HostedWorker::new(
        Worker::builder("http://127.0.0.1:7070", "chrns_x").concurrency(7),
    );
    assert_eq!(hosted.settings().concurrency, 7);
    // The host owns its process's signals.
    assert!(!hosted.settings().handle_signals);
}
