//! Direct hand-off, on both stores: a job created while a poll waits for
//! its handler is inserted already leased to that poll — unless jobs of the
//! handler are queued ahead of it — and behaves as any other lease.

mod common;

use chronos_test_support::both_stores;

use chronos_proto::JobStatus;
use chronos_server::store::{ExecutionsOf, Handoff, LeaseOutcome, PageRequest};
use common::{StoreKind, TestServer, TestStore, pull_job as job};
use serde_json::{Value, json};

both_stores!(
    a_job_created_while_a_poll_waits_is_handed_to_it,
    a_refused_create_leaves_the_poll_waiting,
    a_handed_job_never_jumps_the_queue,
);

/// A long poll for `handler` as worker `w-hand`, started in the background.
fn start_poll(s: &TestServer, key: &str, handler: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let (base, http, key, handler) = (
        s.base.clone(),
        s.http.clone(),
        key.to_string(),
        handler.to_string(),
    );
    tokio::spawn(async move {
        let resp = http
            .post(format!("{base}/v1/workers/poll"))
            .bearer_auth(&key)
            .json(
                &json!({"handlers": [handler], "max_jobs": 5, "wait_seconds": 20,
                          "worker_id": "w-hand"}),
            )
            .send()
            .await
            .unwrap();
        common::decode(resp).await
    })
}

async fn a_job_created_while_a_poll_waits_is_handed_to_it(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let poll = start_poll(&s, &worker, "handed");
    s.polls_waiting(1).await;
    let (status, created) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "handed", "payload": {"x": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    // Leased as it was inserted.
    assert_eq!(created["status"], "running");
    assert_eq!(created["attempt"], 1);
    let (status, leased) = poll.await.unwrap();
    assert_eq!(status, 200, "{leased}");
    let data = leased["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{leased}");
    assert_eq!(data[0]["job"]["id"], created["id"]);
    assert_eq!(data[0]["job"]["payload"], json!({"x": 1}));
    let token = data[0]["lease"]["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    let (_, executions) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(executions["data"][0]["status"], "running", "{executions}");
    assert_eq!(executions["data"][0]["worker_id"], "w-hand");
    // The lease is a lease like any other.
    let (status, acked) = s
        .post(
            &worker,
            "/v1/leases/ack",
            json!({"token": token, "result": {"ok": true}}),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "completed");
    let (_, executions) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(executions["data"][0]["status"], "completed");
}

async fn a_refused_create_leaves_the_poll_waiting(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let (status, first) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "other", "idempotency_key": "k"}),
        )
        .await;
    assert_eq!(status, 201);
    let poll = start_poll(&s, &worker, "refused");
    s.polls_waiting(1).await;
    // The key is taken: 409, nothing inserted, and the poll still waits…
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "refused", "idempotency_key": "k"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["job_id"], first["id"]);
    assert!(!poll.is_finished());
    // …for the next job, which it gets.
    let (status, created) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "refused"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, leased) = poll.await.unwrap();
    assert_eq!(status, 200, "{leased}");
    assert_eq!(leased["data"][0]["job"]["id"], created["id"]);
}

async fn a_handed_job_never_jumps_the_queue(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let org = t.default_org().await;
    // Nothing queued: leased as inserted, to the worker named.
    let first = leases
        .create_leased_job(org, job("q"), Some("w1"))
        .await
        .unwrap();
    let Handoff::Leased(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!(first.job.status, JobStatus::Running);
    assert_eq!(first.job.attempt, 1);
    let page = store
        .executions(
            org,
            ExecutionsOf::Job(first.job.id),
            PageRequest {
                limit: 5,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].worker_id.as_deref(), Some("w1"));
    assert!(matches!(
        leases.ack_job(org, first.lease.token, None).await.unwrap(),
        LeaseOutcome::Done(_)
    ));

    // A job of the handler already queued: the new one queues behind it.
    let ahead = leases.create_job(org, job("q")).await.unwrap();
    let behind = leases
        .create_leased_job(org, job("q"), Some("w1"))
        .await
        .unwrap();
    let Handoff::Queued(behind) = behind else {
        panic!("{behind:?}")
    };
    assert_eq!(behind.status, JobStatus::Queued);
    let leased = leases
        .lease_jobs(org, &["q".into()], 1, None)
        .await
        .unwrap();
    assert_eq!(leased[0].job.id, ahead.id);

    // Another handler's queue is no reason to wait.
    let other = leases.create_leased_job(org, job("r"), None).await.unwrap();
    assert!(matches!(other, Handoff::Leased(_)), "{other:?}");
}
