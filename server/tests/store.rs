//! The store conformance suite: one set of tests, run against both stores.
//! Whatever the rest of the server relies on from `Store` is pinned here.

mod common;

use chronos_test_support::both_stores;

use chronos_proto::{Delivery, JobStatus, Scope};
use chronos_server::keys::new_api_key;
use chronos_server::lease::state::Failure;
use chronos_server::store::sqlite::OpenMode;
use chronos_server::store::{
    AttemptEnd, CancelOutcome, DynStore, HttpResponse, JobFilter, LeaseOutcome, NewJob, OrgId,
    Outcome, PageRequest, PushSlots, RunAt, ScheduleFilter, StoreError,
};
use common::{Backing, StoreKind, TestStore};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    migrations_apply_once_even_when_raced,
    bootstrap_creates_one_default_organization_even_when_raced,
    jobs_are_created_and_read_back,
    idempotency_conflicts_name_the_existing_job,
    lists_paginate_by_id_and_filter,
    cancel_follows_the_state_machine,
    promote_moves_only_due_jobs,
    api_keys_are_stored_looked_up_and_revoked,
    jobs_survive_reopening_the_store,
    push_leases_respect_host_slots,
    push_attempts_record_the_answer,
);

fn job(name: &str, run_at: RunAt) -> NewJob {
    NewJob {
        id: Uuid::now_v7(),
        name: name.to_string(),
        handler: Some("h".into()),
        payload: json!({"n": name}),
        queue: "default".into(),
        priority: 0,
        delivery: Delivery::Pull,
        run_at,
        max_retries: 3,
        timeout_seconds: 30,
        schedule_id: None,
        idempotency_key: None,
    }
}

async fn default_org(store: &DynStore) -> OrgId {
    store
        .organization_by_slug("default")
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn migrations_apply_once_even_when_raced(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let a = backing.config().open(OpenMode::Command).unwrap();
    let b = backing.config().open(OpenMode::Command).unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let mut applied = ra.unwrap();
    applied.extend(rb.unwrap());
    applied.sort();
    // Every version from 1 up, each by one of the two.
    let all: Vec<i64> = (1..=applied.len() as i64).collect();
    assert!(!applied.is_empty());
    assert_eq!(applied, all, "each migration applied exactly once");
    assert_eq!(a.migrate().await.unwrap(), Vec::<i64>::new());
}

async fn bootstrap_creates_one_default_organization_even_when_raced(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let a = backing.config().open(OpenMode::Command).unwrap();
    let b = backing.config().open(OpenMode::Command).unwrap();
    a.migrate().await.unwrap();
    let key = || new_api_key(OrgId(Uuid::now_v7()), "admin", vec![Scope::Admin]).0;
    let (ra, rb) = tokio::join!(a.bootstrap(key()), b.bootstrap(key()));
    let created: Vec<_> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one start creates the organization"
    );
    assert_eq!(created[0].slug, "default");
    let org = default_org(&a).await;
    assert_eq!(org, created[0].id);
    assert_eq!(a.list_api_keys(org).await.unwrap().len(), 1);
    assert!(a.bootstrap(key()).await.unwrap().is_none());
}

async fn jobs_are_created_and_read_back(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let now = t
        .store
        .create_job(org, job("now", RunAt::Now))
        .await
        .unwrap();
    assert_eq!(now.status, JobStatus::Queued);
    assert_eq!(now.payload, json!({"n": "now"}));
    assert_eq!(now.attempt, 0);
    assert_eq!(t.store.job(org, now.id).await.unwrap(), Some(now.clone()));

    let later = t
        .store
        .create_job(org, job("later", RunAt::After(Duration::from_secs(3600))))
        .await
        .unwrap();
    assert_eq!(later.status, JobStatus::Scheduled);
    let ahead = later.run_at.0 - later.created_at.0;
    assert!(
        (ahead.num_milliseconds() - 3_600_000).abs() < 1000,
        "{ahead}"
    );

    let at = chronos_proto::Timestamp::parse("2031-05-06T07:08:09.123Z").unwrap();
    let fixed = t
        .store
        .create_job(org, job("at", RunAt::At(at)))
        .await
        .unwrap();
    assert_eq!(fixed.run_at, at);
    assert_eq!(fixed.status, JobStatus::Scheduled);

    let push = NewJob {
        delivery: serde_json::from_value(
            json!({"type": "push", "http": {"url": "https://x.test/h", "headers": {"A": "b"}}}),
        )
        .unwrap(),
        handler: None,
        ..job("push", RunAt::Now)
    };
    let push = t.store.create_job(org, push).await.unwrap();
    assert!(matches!(push.delivery, Delivery::Push { .. }));
    assert_eq!(push.handler, None);

    let other = t.store.create_organization("other", "Other").await.unwrap();
    assert_eq!(t.store.job(other.id, now.id).await.unwrap(), None);
    assert_eq!(t.store.job(org, Uuid::now_v7()).await.unwrap(), None);
}

async fn idempotency_conflicts_name_the_existing_job(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let keyed = |name| NewJob {
        idempotency_key: Some("k".into()),
        ..job(name, RunAt::Now)
    };
    let first = t.store.create_job(org, keyed("a")).await.unwrap();
    match t.store.create_job(org, keyed("b")).await {
        Err(StoreError::IdempotencyConflict { existing }) => assert_eq!(existing, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let other = t.store.create_organization("other", "Other").await.unwrap();
    t.store.create_job(other.id, keyed("c")).await.unwrap();
    // Jobs without a key never conflict.
    t.store.create_job(org, job("d", RunAt::Now)).await.unwrap();
    t.store.create_job(org, job("e", RunAt::Now)).await.unwrap();
}

async fn lists_paginate_by_id_and_filter(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut j = job(&format!("j{i}"), RunAt::Now);
        if i == 4 {
            j.schedule_id = Some(Uuid::now_v7());
        }
        ids.push(t.store.create_job(org, j).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = t
            .store
            .list_jobs(org, &JobFilter::default(), PageRequest { limit: 2, before })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|j| j.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    let one_off = JobFilter {
        schedule: ScheduleFilter::None,
        ..JobFilter::default()
    };
    let page = t
        .store
        .list_jobs(
            org,
            &one_off,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.next, None);
    let scheduled = JobFilter {
        statuses: vec![JobStatus::Scheduled, JobStatus::Completed],
        ..JobFilter::default()
    };
    let page = t
        .store
        .list_jobs(
            org,
            &scheduled,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

async fn cancel_follows_the_state_machine(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    for run_at in [RunAt::Now, RunAt::After(Duration::from_secs(60))] {
        let j = t.store.create_job(org, job("c", run_at)).await.unwrap();
        let CancelOutcome::Cancelled(cancelled) = t.store.cancel_job(org, j.id).await.unwrap()
        else {
            panic!("not cancelled");
        };
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        let CancelOutcome::AlreadyFinished(again) = t.store.cancel_job(org, j.id).await.unwrap()
        else {
            panic!("cancelled twice");
        };
        assert_eq!(again, cancelled);
    }
    let other = t.store.create_organization("other", "Other").await.unwrap();
    let j = t
        .store
        .create_job(org, job("mine", RunAt::Now))
        .await
        .unwrap();
    assert_eq!(
        t.store.cancel_job(other.id, j.id).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(
        t.store.job(org, j.id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
}

async fn promote_moves_only_due_jobs(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let soon = t
        .store
        .create_job(org, job("soon", RunAt::After(Duration::from_millis(300))))
        .await
        .unwrap();
    let later = t
        .store
        .create_job(org, job("later", RunAt::After(Duration::from_secs(3600))))
        .await
        .unwrap();
    let first = t.store.promote_due_jobs().await.unwrap();
    assert_eq!(first.count, 0);
    let wait = first.next_due_in.expect("a job is scheduled");
    assert!(wait <= Duration::from_millis(300), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let second = t.store.promote_due_jobs().await.unwrap();
    assert_eq!(second.count, 1);
    let next = second.next_due_in.unwrap();
    assert!(
        next > Duration::from_secs(3500) && next <= Duration::from_secs(3600),
        "{next:?}"
    );
    assert_eq!(
        t.store.job(org, soon.id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    assert_eq!(
        t.store.job(org, later.id).await.unwrap().unwrap().status,
        JobStatus::Scheduled
    );
    // A cancelled scheduled job is never promoted.
    let c = t
        .store
        .create_job(org, job("c", RunAt::After(Duration::from_millis(10))))
        .await
        .unwrap();
    t.store.cancel_job(org, c.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(t.store.promote_due_jobs().await.unwrap().count, 0);
    assert_eq!(
        t.store.job(org, c.id).await.unwrap().unwrap().status,
        JobStatus::Cancelled
    );
}

async fn api_keys_are_stored_looked_up_and_revoked(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let (record, _) = new_api_key(org, "ci", vec![Scope::JobsRead, Scope::JobsWrite]);
    let stored = t.store.insert_api_key(record.clone()).await.unwrap();
    assert_eq!(stored.scopes, vec![Scope::JobsRead, Scope::JobsWrite]);
    assert_eq!(stored.secret_sha256, record.secret_sha256);
    assert_eq!(
        t.store.api_key(&record.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(t.store.list_api_keys(org).await.unwrap().len(), 2);

    let other = t.store.create_organization("other", "Other").await.unwrap();
    assert_eq!(
        t.store.revoke_api_key(other.id, &record.id).await.unwrap(),
        None
    );
    let revoked = t
        .store
        .revoke_api_key(org, &record.id)
        .await
        .unwrap()
        .unwrap();
    let at = revoked.revoked_at.expect("revoked");
    let again = t
        .store
        .revoke_api_key(org, &record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "revoking twice keeps the first time"
    );
    assert_eq!(t.store.api_key("0000000000000000").await.unwrap(), None);
}

async fn jobs_survive_reopening_the_store(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let j = t
        .store
        .create_job(org, job("kept", RunAt::Now))
        .await
        .unwrap();
    let config = t.backing.config();
    drop(t.store);
    let reopened = config.open(OpenMode::Serve).unwrap();
    assert_eq!(reopened.job(org, j.id).await.unwrap(), Some(j));
}

#[tokio::test]
async fn only_one_server_may_open_an_embedded_store() {
    let backing = Backing::new(StoreKind::Sqlite).await;
    let config = backing.config();
    let serving = config.open(OpenMode::Serve).unwrap();
    serving.migrate().await.unwrap();
    let second = config.open(OpenMode::Serve);
    let err = second.err().expect("a second server is refused");
    assert!(matches!(err, StoreError::Locked { .. }));
    assert!(err.to_string().contains("already using"), "{err}");
    // Short commands work beside it.
    let cli = config.open(OpenMode::Command).unwrap();
    let org = cli.create_organization("side", "Side").await.unwrap();
    assert_eq!(
        serving.organization_by_slug("side").await.unwrap(),
        Some(org)
    );
    drop(serving);
    config
        .open(OpenMode::Serve)
        .expect("the lock goes with the server");
}

fn push(name: &str, url: &str) -> NewJob {
    NewJob {
        delivery: serde_json::from_value(json!({"type": "push", "http": {"url": url}})).unwrap(),
        ..job(name, RunAt::Now)
    }
}

fn slots(max: u32, per_host: u32, busy: &[(&str, u32)]) -> PushSlots {
    PushSlots {
        max,
        per_host,
        busy: busy.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
        lease_margin: Duration::from_secs(5),
    }
}

/// Push leases take only what the dispatcher has room for: per host
/// (`host:port`, the default port explicit) and in all, best first, never a
/// full host's job, never a pull job; deadlines are timeout + margin.
async fn push_leases_respect_host_slots(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(push(&format!("a{i}"), "https://a.example/hook"));
    }
    for i in 0..3 {
        jobs.push(push(&format!("b{i}"), "https://B.example:443/other"));
    }
    jobs.push(push("c0", "https://c.example:8443/x"));
    jobs.push(job("pull", RunAt::Now));
    t.store.create_jobs(org, jobs).await.unwrap();

    // a.example:443 is full; b has room for one; c for two.
    let leased = t
        .store
        .lease_push(&slots(10, 2, &[("a.example:443", 2), ("b.example:443", 1)]))
        .await
        .unwrap();
    let names: Vec<&str> = leased.iter().map(|(_, l)| l.job.name.as_str()).collect();
    assert_eq!(names, ["b0", "c0"]);
    for (o, l) in &leased {
        assert_eq!(*o, org);
        assert_eq!(l.job.status, JobStatus::Running);
        assert_eq!(l.job.attempt, 1);
        let left = (l.lease.expires_at.0 - chrono::Utc::now()).num_seconds();
        assert!((30..=35).contains(&left), "timeout 30 + margin 5: {left}");
    }
    // Room in all caps the lease; a host's jobs come best first.
    let leased = t.store.lease_push(&slots(3, 2, &[])).await.unwrap();
    let names: Vec<&str> = leased.iter().map(|(_, l)| l.job.name.as_str()).collect();
    assert_eq!(names, ["a0", "a1", "b1"]);
    let leased = t.store.lease_push(&slots(100, 100, &[])).await.unwrap();
    let names: Vec<&str> = leased.iter().map(|(_, l)| l.job.name.as_str()).collect();
    assert_eq!(names, ["a2", "a3", "a4", "b2"]);
    assert!(
        t.store
            .lease_push(&slots(100, 100, &[]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        t.store
            .lease_push(&slots(0, 100, &[]))
            .await
            .unwrap()
            .is_empty()
    );
    // Workers still get the pull job; push delivery never did.
    let pulled = t
        .store
        .lease_jobs(org, &["h".into()], 10, None)
        .await
        .unwrap();
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].job.name, "pull");
}

/// A push attempt's end keeps what the target answered on its execution,
/// for a completion and for a failure.
async fn push_attempts_record_the_answer(kind: StoreKind) {
    let t = TestStore::new(kind).await;
    let org = default_org(&t.store).await;
    let jobs = vec![
        push("ok", "https://a.example/"),
        push("bad", "https://a.example/"),
    ];
    t.store.create_jobs(org, jobs).await.unwrap();
    let leased = t.store.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert_eq!(leased.len(), 2);
    let answer = |status, body: &str, truncated| {
        Some(HttpResponse {
            status,
            body: body.into(),
            truncated,
        })
    };
    let outcomes = t
        .store
        .end_attempts(vec![
            AttemptEnd {
                org,
                token: leased[0].1.lease.token,
                outcome: Outcome::Ack(Some(json!({"ok": true}))),
                response: answer(201, r#"{"ok":true}"#, false),
            },
            AttemptEnd {
                org,
                token: leased[1].1.lease.token,
                outcome: Outcome::Fail(Failure {
                    error: "the target answered 503".into(),
                    retryable: true,
                    retry_in: Some(Duration::from_secs(60)),
                }),
                response: answer(503, "xxxx", true),
            },
        ])
        .await
        .unwrap();
    assert!(
        outcomes.iter().all(|o| matches!(o, LeaseOutcome::Done(_))),
        "{outcomes:?}"
    );
    let page = PageRequest {
        limit: 10,
        before: None,
    };
    for ((_, l), (status, http, body, truncated)) in leased.iter().zip([
        ("completed", 201, r#"{"ok":true}"#, false),
        ("failed", 503, "xxxx", true),
    ]) {
        let runs = t
            .store
            .list_executions(org, l.job.id, page)
            .await
            .unwrap()
            .unwrap()
            .items;
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run.status.as_str(), status);
        assert_eq!(run.http_status, Some(http));
        assert_eq!(run.response_body.as_deref(), Some(body));
        assert_eq!(run.response_truncated, truncated);
        assert!(run.finished_at.is_some());
    }
    let bad = t.store.job(org, leased[1].1.job.id).await.unwrap().unwrap();
    assert_eq!(
        bad.status,
        JobStatus::Scheduled,
        "retried after Retry-After"
    );
}
