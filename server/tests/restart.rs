//! The real `chronos` binary as a child process: what survives a restart, a
//! SIGTERM and a SIGKILL, the embedded store's one-server lock, and keys
//! managed from the command line beside a running server.
//!
//! Every server started here is killed when its guard drops, so a failing
//! test leaves nothing running.

mod common;

use chronos_test_support::both_stores;

use common::process::{
    EXIT_TIMEOUT, Serve, cli, cli_create_key, cli_ok, find_key, free_port, get, http,
    list_all_jobs, post_job,
};
use common::{Backing, StoreKind, assert_error};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both_stores!(
    jobs_survive_graceful_restart,
    acknowledged_jobs_survive_sigkill,
    keys_revoked_from_cli_are_refused,
    plans_set_from_cli_apply_to_a_running_server,
);

fn job_id(job: &Value) -> String {
    job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a job without an id: {job}"))
        .to_string()
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

/// Jobs created before a SIGTERM are all there, unchanged, after a restart;
/// the restart creates no second admin key.
async fn jobs_survive_graceful_restart(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let http = http();

    let mut first = Serve::start(&backing).await;
    let admin = first.admin_key().await;
    {
        // Another process (a command) makes the queue some jobs name.
        let opened = backing
            .config()
            .open(
                chronos_server::store::sqlite::OpenMode::Command,
                chronos_server::store::Clock::Database,
            )
            .expect("opening the store beside the server");
        let org = opened
            .store
            .organization_by_slug("default")
            .await
            .unwrap()
            .expect("the default organization")
            .id;
        chronos_test_support::make_queue(&opened.store, org, "restart-queue").await;
    }
    let mut created = Vec::new();
    for i in 0..20u32 {
        let delayed = i % 3 != 0;
        let mut body = json!({
            "name": format!("restart-{i}"),
            "handler": format!("handlers.restart_{}", i % 4),
            "payload": {"i": i, "text": "héllo ✓", "list": [1, 2.5, null, true], "nested": {"k": "v"}},
        });
        if delayed {
            body["delay"] = json!({"value": 1 + i, "unit": "hour"});
        }
        if i % 5 == 0 {
            body["priority"] = json!(i);
            body["queue"] = json!("restart-queue");
            body["max_retries"] = json!(7);
            body["timeout"] = json!(120);
            body["idempotency_key"] = json!(format!("restart-idem-{i}"));
        }
        let (status, job) = post_job(&http, &first, &admin, &body).await;
        assert_eq!(status, 201, "{job}");
        let expected = if delayed { "scheduled" } else { "queued" };
        assert_eq!(job["status"], expected, "{job}");
        created.push(job);
    }
    let ids: HashSet<String> = created.iter().map(job_id).collect();
    assert_eq!(ids.len(), created.len(), "job ids repeat");

    first.stop_gracefully().await;
    assert!(
        first.stderr.get().contains("shutting down"),
        "no shutdown log line after SIGTERM:\n{}",
        first.stderr.get()
    );

    let mut second = Serve::start(&backing).await;
    for job in &created {
        let id = job_id(job);
        let (status, got) = get(&http, &second, &admin, &format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "job {id} after restart: {got}");
        assert_eq!(&got, job, "job {id} changed across the restart");
    }
    let listed = list_all_jobs(&http, &second, &admin).await;
    let listed_ids: HashSet<String> = listed.iter().map(job_id).collect();
    assert_eq!(
        listed_ids, ids,
        "the list after restart is not the jobs created"
    );
    assert_eq!(listed.len(), created.len(), "the list repeats jobs");

    // The idempotency keys survived too: the same key answers the same job.
    let retry = json!({"name": "restart-0", "handler": "handlers.restart_0", "idempotency_key": "restart-idem-0"});
    let (status, again) = post_job(&http, &second, &admin, &retry).await;
    assert!(
        matches!(status, 200 | 201 | 409),
        "retrying with a stored idempotency key: {status} {again}"
    );
    let existing = again["id"]
        .as_str()
        .or(again["error"]["job_id"].as_str())
        .map(str::to_string);
    assert_eq!(
        existing.as_deref(),
        Some(job_id(&created[0]).as_str()),
        "the idempotency key of job 0 does not point at it after restart: {status} {again}"
    );

    second.stop_gracefully().await;
    let stdout = second.stdout.get();
    assert!(
        find_key(&stdout).is_none() && !stdout.contains("admin API key"),
        "the restart printed an admin key again:\n{stdout}"
    );
}

/// Creating jobs flat out from several tasks, SIGKILL the server: every job
/// it answered 201 for is there after a restart.
async fn acknowledged_jobs_survive_sigkill(kind: StoreKind) {
    const TASKS: usize = 4;
    let backing = Backing::new(kind).await;
    let mut serve = Serve::start(&backing).await;
    let admin = serve.admin_key().await;
    // A client of its own: connections to the dead server must not be reused.
    let load = http();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (load, acked, refused, stop) =
            (load.clone(), acked.clone(), refused.clone(), stop.clone());
        let url = serve.url("/v1/jobs");
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = 0u32;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut body = json!({
                    "name": format!("kill-{t}-{i}"),
                    "handler": "handlers.kill",
                    "payload": {"task": t, "i": i},
                });
                if i.is_multiple_of(2) {
                    body["delay"] = json!({"value": 1, "unit": "hour"});
                }
                let sent = load.post(&url).bearer_auth(&admin).json(&body).send().await;
                let resp = match sent {
                    Ok(resp) => resp,
                    Err(_) => {
                        // The server is gone (or going): not acknowledged.
                        errors += 1;
                        if errors > 3 {
                            break;
                        }
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                let Ok(text) = resp.text().await else {
                    // Killed mid-answer: the 201 never fully arrived.
                    continue;
                };
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                match parsed {
                    Some(job) if status == 201 && job["id"].is_string() => {
                        acked.lock().unwrap().push(job_id(&job));
                    }
                    _ => refused.lock().unwrap().push(format!("{status} {text}")),
                }
            }
        }));
    }

    // Let the load run, then kill while requests are in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked_at_signal = acked.lock().unwrap().len();
    serve.signal(Signal::SIGKILL);
    let status = serve.wait_exit(EXIT_TIMEOUT).await;
    stop.store(true, Ordering::Relaxed);
    assert!(!status.success(), "SIGKILL gave exit status {status}");
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a load task did not stop after the server died")
            .expect("a load task panicked");
    }

    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "the server answered {} creates with something other than 201 before the kill, e.g. {}",
        refused.len(),
        refused[0]
    );
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(
        acked_set.len(),
        acked.len(),
        "the server acknowledged one id twice"
    );
    println!(
        "{kind:?}: {} jobs acknowledged before SIGKILL ({acked_at_signal} when the signal was sent)",
        acked.len()
    );
    assert!(
        acked.len() >= 20,
        "only {} jobs were acknowledged in 1 s: too few for this test to mean anything",
        acked.len()
    );

    let mut again = Serve::start(&backing).await;
    let http = http();
    let listed = list_all_jobs(&http, &again, &admin).await;
    let stored: HashMap<String, Value> = listed.into_iter().map(|j| (job_id(&j), j)).collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged jobs are gone after SIGKILL and restart, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "{kind:?}: {} jobs stored after restart (acknowledged ones plus any committed whose 201 was lost)",
        stored.len()
    );
    // Each one also answers on its own, as a job that is still waiting.
    for id in &acked {
        let (status, job) = get(&http, &again, &admin, &format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "job {id} after restart: {job}");
        assert!(
            job["status"] == "queued" || job["status"] == "scheduled",
            "job {id} after restart: {job}"
        );
    }
    again.stop_gracefully().await;
}

/// A `chronos keys revoke` beside a running server takes effect at once.
async fn keys_revoked_from_cli_are_refused(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let serve = Serve::start(&backing).await;
    let http = http();
    let key = cli_create_key(&backing, "revoke-me", "jobs:write").await;
    let job = json!({"name": "before-revoke", "handler": "handlers.revoke"});
    let (status, body) = post_job(&http, &serve, &key, &job).await;
    assert_eq!(status, 201, "a fresh CLI key: {body}");

    let id = &key["chrns_".len().."chrns_".len() + 16];
    let out = cli_ok(&["keys", "revoke", id], &backing).await;
    assert!(
        out.contains(id),
        "`keys revoke` output does not name the key: {out}"
    );

    let answer = post_job(&http, &serve, &key, &job).await;
    assert_error(&answer, 401, "unauthorized", None);
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("revoked"), "{message}");

    // Revoking it again, or a key that does not exist, fails and says so.
    let out = cli(&["keys", "revoke", "0000000000000000"], &backing).await;
    assert!(!out.status.success(), "revoking an unknown key succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no key"), "{stderr}");
}

/// `chronos plans set` and `chronos orgs set-plan` beside a running server:
/// its next job is counted against the plan.
async fn plans_set_from_cli_apply_to_a_running_server(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let serve = Serve::start(&backing).await;
    let http = http();
    let key = cli_create_key(&backing, "quota", "jobs:write").await;
    cli_ok(
        &[
            "plans",
            "set",
            "tiny",
            "--per-day",
            "1",
            "--max-retries",
            "2",
        ],
        &backing,
    )
    .await;
    let listed = cli_ok(&["plans", "list"], &backing).await;
    assert!(
        listed.contains("tiny: 1 a day, no limit a month"),
        "{listed}"
    );
    cli_ok(&["orgs", "set-plan", "default", "tiny"], &backing).await;

    let job = json!({"name": "counted", "handler": "h", "max_retries": 10});
    let (status, body) = post_job(&http, &serve, &key, &job).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["max_retries"], 2);
    let answer = post_job(&http, &serve, &key, &job).await;
    assert_error(&answer, 429, "quota_exceeded", None);

    let out = cli(&["plans", "delete", "tiny"], &backing).await;
    assert!(!out.status.success(), "deleted a plan in use");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 organization(s) are on `tiny`"),
        "{stderr}"
    );
    let out = cli(&["orgs", "set-plan", "default", "gold"], &backing).await;
    assert!(!out.status.success(), "put on a plan that doesn't exist");
    let out = cli(&["plans", "set", "unlimited", "--per-day", "5"], &backing).await;
    assert!(!out.status.success(), "changed the unlimited plan");
}

/// The embedded store takes one server: a second `chronos serve` on the same
/// data directory exits at once and says why, while CLI commands still work
/// beside the running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_serve_on_same_data_dir_is_refused() {
    let backing = Backing::new(StoreKind::Sqlite).await;
    let first = Serve::start(&backing).await;
    let admin = first.admin_key().await;
    let http = http();

    let mut second = Serve::spawn(&backing, free_port());
    let status = second.wait_exit(EXIT_TIMEOUT).await;
    let stderr = second.stderr.get();
    assert!(
        !status.success(),
        "a second serve on the same data dir exited with {status}"
    );
    assert!(
        stderr.contains("already using"),
        "the second serve does not say the store is in use:\n{stderr}"
    );
    let stdout = second.stdout.get();
    assert!(
        find_key(&stdout).is_none(),
        "the refused serve printed a key:\n{stdout}"
    );

    // The first one is unharmed.
    let (status, body) = get(&http, &first, &admin, "/v1/jobs?limit=1").await;
    assert_eq!(status, 200, "{body}");

    let key = cli_create_key(&backing, "ci", "jobs:write").await;
    let (status, body) = post_job(
        &http,
        &first,
        &key,
        &json!({"name": "from-ci", "handler": "handlers.ci", "payload": {"ok": true}}),
    )
    .await;
    assert_eq!(
        status, 201,
        "a key made by the CLI beside the server: {body}"
    );
    assert_eq!(body["status"], "queued", "{body}");
}
