//! Retention from the outside: a deleted job is gone from the API and its
//! idempotency key is free again; `chronos retention` shows and sets the
//! periods; a server on a store from before retention says, at each start,
//! that it keeps everything, until an operator sets periods.
//!
//! Which jobs are deleted and when is the store suite's
//! (`store_retention.rs`).

mod common;

use chronos_server::server::ServeOptions;
use chronos_test_support::both_stores;
use common::process::{Serve, cli, cli_ok};
use common::{Backing, StoreKind, TestServer, assert_error, migrate_before_retention, wait_until};
use serde_json::json;
use std::time::Duration;

both_stores!(
    a_deleted_job_is_gone_and_its_idempotency_key_free_again,
    the_retention_command_shows_and_sets_the_periods,
    a_store_from_before_retention_is_said_to_keep_everything_at_each_start,
);

const DAY: Duration = Duration::from_secs(86_400);

async fn a_deleted_job_is_gone_and_its_idempotency_key_free_again(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, ServeOptions::default()).await;
    let body = json!({"name": "charge", "handler": "charge", "idempotency_key": "inv-1"});
    let (status, first) = s.post(&s.admin_key, "/v1/jobs", body.clone()).await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    assert_error(
        &s.post(&s.admin_key, "/v1/jobs", body.clone()).await,
        409,
        "idempotency_key_conflict",
        None,
    );
    let (status, cancelled) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/cancel"))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_error(
        &s.post(&s.admin_key, "/v1/jobs", body.clone()).await,
        409,
        "idempotency_key_conflict",
        None,
    );

    s.advance_clock(31 * DAY).await;
    let deleted = chronos_server::retention::pass(&s.store).await.unwrap();
    assert!(deleted >= 1, "the cancelled job is 31 days old");
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/executions"),
    ] {
        assert_error(&s.get(&s.admin_key, &path).await, 404, "not_found", None);
    }
    let (status, again) = s.post(&s.admin_key, "/v1/jobs", body).await;
    assert_eq!(status, 201, "the key is free again: {again}");
    assert_ne!(again["id"], first["id"]);
}

/// The `completed`, `failed` and `cancelled` lines of the command's output.
fn periods(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

fn expect(periods: [(&str, &str); 3]) -> Vec<(String, String)> {
    periods
        .iter()
        .map(|(status, period)| (status.to_string(), period.to_string()))
        .collect()
}

async fn the_retention_command_shows_and_sets_the_periods(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let shown = cli_ok(&["retention"], &backing).await;
    assert_eq!(
        periods(&shown),
        expect([("completed", "7d"), ("failed", "30d"), ("cancelled", "30d")]),
        "a new store's defaults:\n{shown}"
    );

    let set = ["retention", "--completed", "36h", "--failed", "forever"];
    let changed = expect([
        ("completed", "36h"),
        ("failed", "forever"),
        ("cancelled", "30d"),
    ]);
    assert_eq!(periods(&cli_ok(&set, &backing).await), changed);
    assert_eq!(periods(&cli_ok(&["retention"], &backing).await), changed);

    for bad in ["0s", "59s", "-1d", "-5m", "0"] {
        let out = cli(&["retention", "--cancelled", bad], &backing).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--cancelled {bad} was accepted");
        assert!(
            stderr.contains("at least 1 minute") || stderr.contains("is not a period"),
            "--cancelled {bad}: {stderr}"
        );
    }
    assert_eq!(
        periods(&cli_ok(&["retention"], &backing).await),
        changed,
        "refused periods change nothing"
    );
}

/// Starts `chronos serve` on `backing`, waits until it has logged its
/// retention periods, stops it, and returns its log.
async fn log_of_a_start(backing: &Backing) -> String {
    let mut serve = Serve::start(backing).await;
    wait_until("the retention periods in the log", || {
        serve
            .stderr
            .get()
            .contains("finished jobs are kept this long")
    })
    .await;
    serve.stop_gracefully().await;
    serve.stderr.get()
}

async fn a_store_from_before_retention_is_said_to_keep_everything_at_each_start(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    migrate_before_retention(&backing, kind).await;
    let warning = "chronos retention --completed";

    let log = log_of_a_start(&backing).await;
    assert!(log.contains(warning), "{log}");
    let out = cli(&["retention"], &backing).await;
    assert!(out.status.success());
    let forever = expect([
        ("completed", "forever"),
        ("failed", "forever"),
        ("cancelled", "forever"),
    ]);
    assert_eq!(periods(&String::from_utf8_lossy(&out.stdout)), forever);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("predates retention"), "{said}");
    let log = log_of_a_start(&backing).await;
    assert!(
        log.contains(warning),
        "showing the periods is no choice: {log}"
    );

    // Choosing forever is a choice: the server no longer says it.
    let set = cli_ok(&["retention", "--completed", "forever"], &backing).await;
    assert_eq!(periods(&set), forever);
    let log = log_of_a_start(&backing).await;
    assert!(!log.contains(warning), "{log}");
}
