//! Batches, on both stores: `POST /v1/jobs/batch` over real HTTP, and the
//! store's batched leases and attempt ends that the engine gathers from
//! many workers (each answer as if applied alone).

mod common;

use chronos_test_support::both_stores;

use chronos_proto::JobStatus;
use chronos_server::account::OrgId;
use chronos_server::job::NewJob;
use chronos_server::job::slots::Taker;
use chronos_server::job::state::Failure;
use chronos_server::store::{AttemptEnd, ExecutionsOf, Inserted, LeaseOutcome, Outcome};
use common::{StoreKind, TestServer, TestStore, assert_error, pull_job as job};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    a_batch_answers_each_job_in_request_order,
    a_batch_is_bounded_and_checked_as_a_whole,
    a_batch_wakes_waiting_polls,
    a_batched_lease_deals_jobs_over_the_takers,
    attempt_ends_in_one_batch_answer_as_if_alone,
    store_batch_insert_reports_conflicts_per_job,
);

async fn a_batch_answers_each_job_in_request_order(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, held) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "first", "handler": "h", "idempotency_key": "taken"}),
        )
        .await;
    assert_eq!(status, 201, "{held}");
    // Every job fits the schema; some break a rule beyond it (422 for
    // `POST /v1/jobs`), and some hold a taken key.
    let body = json!({"jobs": [
        {"name": "a", "handler": "h", "payload": {"n": 1}},
        {"name": "b", "handler": "h", "scheduled_for": "2020-01-01T00:00:00Z"},
        {"name": "c", "handler": "h", "idempotency_key": "taken"},
        {"name": "d", "handler": "h", "idempotency_key": "new"},
        {"name": "e", "handler": "h", "idempotency_key": "new"},
        {"name": "f", "handler": "h", "delay": {"value": 1, "unit": "hour"}},
        {"name": "g", "handler": "h", "delay": {"value": 100_000, "unit": "week"}},
        {"name": "h", "handler": "h",
         "delivery": {"type": "push", "http": {"url": "ftp://files.example.com/x"}}},
    ]});
    let (status, answer) = s.post(&s.admin_key, "/v1/jobs/batch", body).await;
    assert_eq!(status, 200, "{answer}");
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 8, "{answer}");

    let created = |i: usize| -> &Value {
        assert!(data[i]["error"].is_null(), "item {i}: {}", data[i]);
        &data[i]["job"]
    };
    let refused = |i: usize, code: &str| -> &Value {
        assert!(data[i]["job"].is_null(), "item {i}: {}", data[i]);
        assert_eq!(data[i]["error"]["code"], code, "item {i}: {}", data[i]);
        &data[i]["error"]
    };
    assert_eq!(created(0)["name"], "a");
    assert_eq!(created(0)["status"], "queued");
    assert_eq!(created(0)["payload"], json!({"n": 1}));
    assert_eq!(refused(1, "validation_failed")["field"], "scheduled_for");
    // A key held by an existing job, and one taken by an earlier job of the
    // same batch: both name the holder.
    assert_eq!(refused(2, "idempotency_key_conflict")["job_id"], held["id"]);
    let d = created(3);
    assert_eq!(refused(4, "idempotency_key_conflict")["job_id"], d["id"]);
    assert_eq!(created(5)["status"], "scheduled");
    assert_eq!(refused(6, "validation_failed")["field"], "delay.value");
    assert_eq!(
        refused(7, "validation_failed")["field"],
        "delivery.http.url"
    );

    // What the batch answered is what was committed.
    for i in [0, 3, 5] {
        let job = created(i);
        let (status, got) = s
            .get(
                &s.admin_key,
                &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(&got, job);
    }
    let (_, list) = s.get(&s.admin_key, "/v1/jobs?limit=100").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");

    // A job that breaks the schema refuses the whole batch, naming it.
    for (job, code, field) in [
        (
            json!({"name": "g", "handler": "h", "colour": "blue"}),
            "unknown_field",
            "jobs[1].colour",
        ),
        (
            json!({"name": "h", "handler": "h", "timeout": 0}),
            "validation_failed",
            "jobs[1].timeout",
        ),
        (json!({"name": "b"}), "validation_failed", "jobs[1].handler"),
        (
            json!({"name": "b", "handler": "h", "delay": {"value": 1, "unit": "hour"},
                   "scheduled_for": "2090-01-01T00:00:00Z"}),
            "validation_failed",
            "jobs[1]",
        ),
        (json!("not a job"), "validation_failed", "jobs[1]"),
    ] {
        let body = json!({"jobs": [{"name": "fine", "handler": "h"}, job]});
        let answer = s.post(&s.admin_key, "/v1/jobs/batch", body).await;
        assert_error(&answer, 400, code, Some(field));
    }
    let (_, list) = s.get(&s.admin_key, "/v1/jobs?limit=100").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");
}

async fn a_batch_is_bounded_and_checked_as_a_whole(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = &s.admin_key;
    let (status, body) = s.post(key, "/v1/jobs/batch", json!({"jobs": []})).await;
    assert_error(&(status, body.clone()), 400, "validation_failed", None);
    assert_eq!(body["error"]["field"], "jobs");
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("j{i}"), "handler": "h"}))
        .collect();
    let (status, body) = s
        .post(key, "/v1/jobs/batch", json!({"jobs": too_many}))
        .await;
    assert_error(&(status, body.clone()), 400, "validation_failed", None);
    assert_eq!(
        body["error"]["message"], "jobs must hold 1 to 1000 items",
        "{body}"
    );
    let (status, body) = s.post(key, "/v1/jobs/batch", json!({"job": []})).await;
    assert_error(&(status, body.clone()), 400, "unknown_field", None);
    let (status, body) = s.post(key, "/v1/jobs/batch", json!([1, 2])).await;
    assert_error(&(status, body.clone()), 400, "validation_failed", None);
    let (status, body) = s.post(key, "/v1/jobs/batch", json!({"jobs": {}})).await;
    assert_error(&(status, body.clone()), 400, "validation_failed", None);
    assert_eq!(body["error"]["field"], "jobs");

    let reader = s.key(&["jobs:read"]).await;
    let (status, body) = s
        .post(
            &reader,
            "/v1/jobs/batch",
            json!({"jobs": [{"name": "a", "handler": "h"}]}),
        )
        .await;
    assert_error(&(status, body.clone()), 403, "forbidden", None);
    let (status, body) = s
        .post("chrns_nope", "/v1/jobs/batch", json!({"jobs": []}))
        .await;
    assert_error(&(status, body.clone()), 401, "unauthorized", None);

    // A full batch of 1,000, with payloads past the 1 MiB limit of one job's
    // request, goes through.
    let full: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("j{i}"), "handler": "h", "payload": "x".repeat(2000)}))
        .collect();
    let (status, body) = s.post(key, "/v1/jobs/batch", json!({"jobs": full})).await;
    assert_eq!(status, 200, "{}", body["error"]);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1000);
    assert!(data.iter().all(|d| d["job"]["status"] == "queued"));
    let ids: HashSet<&str> = data
        .iter()
        .map(|d| d["job"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
    // In request order: ids are UUIDv7, made in order.
    let names: Vec<&str> = data
        .iter()
        .map(|d| d["job"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "j0");
    assert_eq!(names[999], "j999");
}

async fn a_batch_wakes_waiting_polls(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = s.key(&["worker"]).await;
    let poll = {
        let (base, http, worker) = (s.base.clone(), s.http.clone(), worker.clone());
        tokio::spawn(async move {
            let resp = http
                .post(format!("{base}/v1/workers/poll"))
                .bearer_auth(&worker)
                .json(&json!({"handlers": ["woken"], "max_jobs": 10, "wait_seconds": 20}))
                .send()
                .await
                .unwrap();
            common::decode(resp).await
        })
    };
    s.polls_waiting(1).await;
    let started = std::time::Instant::now();
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/jobs/batch",
            json!({"jobs": [{"name": "a", "handler": "woken"}, {"name": "b", "handler": "woken"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, leased) = poll.await.unwrap();
    assert_eq!(status, 200, "{leased}");
    assert!(!leased["data"].as_array().unwrap().is_empty(), "{leased}");
    // Woken, not found by the poll's end.
    assert!(started.elapsed() < Duration::from_secs(15));
}

async fn setup(kind: StoreKind) -> (TestStore, OrgId) {
    let t = TestStore::new(kind).await;
    let org = t.default_org().await;
    (t, org)
}

async fn a_batched_lease_deals_jobs_over_the_takers(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let jobs: Vec<NewJob> = (0..5).map(|_| job("deal")).collect();
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    leases.create_jobs(org, jobs).await.unwrap();
    let taker = |w: &str, max| Taker {
        worker_id: Some(w.to_string()),
        max,
    };
    let handlers = ["deal".to_string()];
    // Fewer jobs than slots: they spread over the takers, best first to
    // the first, instead of filling one.
    let leased = leases
        .lease_batch(
            org,
            &handlers,
            None,
            &[taker("w1", 10), taker("w2", 1), taker("w3", 10)],
        )
        .await
        .unwrap();
    let got: Vec<Vec<Uuid>> = leased
        .iter()
        .map(|l| l.iter().map(|j| j.job.id).collect())
        .collect();
    assert_eq!(got[0], vec![ids[0], ids[3]]);
    assert_eq!(got[1], vec![ids[1]]);
    assert_eq!(got[2], vec![ids[2], ids[4]]);
    for (w, jobs) in ["w1", "w2", "w3"].iter().zip(&leased) {
        for j in jobs {
            assert_eq!(j.job.status, JobStatus::Running);
            let page = store
                .executions(
                    org,
                    ExecutionsOf::Job(j.job.id),
                    chronos_server::store::PageRequest {
                        limit: 10,
                        before: None,
                    },
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].worker_id.as_deref(), Some(*w));
        }
    }
    let tokens: HashSet<Uuid> = leased.iter().flatten().map(|j| j.lease.token).collect();
    assert_eq!(tokens.len(), 5);
    // Nothing left: every taker gets an empty list, in place.
    let again = leases
        .lease_batch(org, &handlers, None, &[taker("w1", 3), taker("w2", 3)])
        .await
        .unwrap();
    assert_eq!(again, vec![vec![], vec![]]);
}

async fn attempt_ends_in_one_batch_answer_as_if_alone(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let mut jobs: Vec<NewJob> = (0..4).map(|_| job("end")).collect();
    jobs[3].max_retries = Some(0);
    leases.create_jobs(org, jobs).await.unwrap();
    let leased = leases
        .lease_jobs(org, &["end".into()], 4, None)
        .await
        .unwrap();
    assert_eq!(leased.len(), 4);
    let other = store
        .create_organization("other", "Other")
        .await
        .unwrap()
        .id;
    let end = |org: OrgId, i: usize, outcome: Outcome| AttemptEnd {
        org,
        token: leased[i].lease.token,
        outcome,
        response: None,
        whole_job: false,
    };
    let fail = |error: &str| {
        Outcome::Fail(Failure {
            error: error.into(),
            retryable: true,
            retry_in: None,
        })
    };
    let outcomes = leases
        .end_attempts(vec![
            end(org, 0, Outcome::Ack(Some(json!({"ok": 0})))),
            end(org, 1, fail("boom")),
            // The same token again: the first won; this one finds it lost.
            end(org, 0, Outcome::Ack(None)),
            end(org, 1, Outcome::Ack(None)),
            // Another organization's token: unknown there, untouched here.
            end(other, 2, Outcome::Ack(None)),
            end(org, 3, fail("for good")),
            AttemptEnd {
                org,
                token: Uuid::new_v4(),
                outcome: Outcome::Ack(None),
                response: None,
                whole_job: false,
            },
        ])
        .await
        .unwrap();
    let done = |i: usize| match &outcomes[i] {
        LeaseOutcome::Done(job) => job.clone(),
        other => panic!("item {i}: {other:?}"),
    };
    assert_eq!(done(0).status, JobStatus::Completed);
    let acked = store.job(org, done(0).id).await.unwrap().unwrap();
    assert_eq!(acked.result, Some(json!({"ok": 0})));
    assert_eq!(done(1).status, JobStatus::Scheduled);
    let retried = store.job(org, done(1).id).await.unwrap().unwrap();
    assert_eq!(retried.last_error.as_deref(), Some("boom"));
    assert_eq!(outcomes[2], LeaseOutcome::Lost);
    assert_eq!(outcomes[3], LeaseOutcome::Lost);
    assert_eq!(outcomes[4], LeaseOutcome::Unknown);
    assert_eq!(done(5).status, JobStatus::Failed);
    assert_eq!(outcomes[6], LeaseOutcome::Unknown);
    let untouched = store.job(org, leased[2].job.id).await.unwrap().unwrap();
    assert_eq!(untouched.status, JobStatus::Running);
    // The single-call forms are the same path.
    assert!(matches!(
        leases
            .ack_job(org, leased[2].lease.token, None)
            .await
            .unwrap(),
        LeaseOutcome::Done(_)
    ));
}

async fn store_batch_insert_reports_conflicts_per_job(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let keyed = |key: &str| NewJob {
        idempotency_key: Some(key.into()),
        ..job("keyed")
    };
    let first = leases.create_job(org, keyed("k1")).await.unwrap();
    let batch = vec![keyed("k1"), keyed("k2"), keyed("k2"), job("keyed")];
    let batch_ids: Vec<Uuid> = batch.iter().map(|j| j.id).collect();
    let inserted = leases.create_jobs(org, batch).await.unwrap();
    assert_eq!(inserted.len(), 4);
    assert_eq!(inserted[0], Inserted::Conflict { existing: first.id });
    match &inserted[1] {
        Inserted::Created(job) => assert_eq!(job.id, batch_ids[1]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        inserted[2],
        Inserted::Conflict {
            existing: batch_ids[1]
        }
    );
    assert!(matches!(&inserted[3], Inserted::Created(j) if j.id == batch_ids[3]));
    // Another organization may use the same keys.
    let other = store
        .create_organization("other", "Other")
        .await
        .unwrap()
        .id;
    let theirs = leases.create_jobs(other, vec![keyed("k1")]).await.unwrap();
    assert!(matches!(&theirs[0], Inserted::Created(_)));
}
