//! The lease engine's contract at the store level, on both stores: order,
//! fencing, deadlines, retries and backoff, cancel and manual retry. The
//! same rules over HTTP are in `api_leases.rs`; across processes in
//! `lease_processes.rs`.

mod common;

use chronos_test_support::both_stores;

use chronos_proto::{ExecutionStatus, JobStatus, LeasedJob};
use chronos_server::lease::state::Failure;
use chronos_server::store::{
    CancelOutcome, DynStore, LeaseOutcome, NewJob, OrgId, PageRequest, RetryOutcome, RunAt,
    WorkerRegistration,
};
use common::{StoreKind, TestStore, pull_job as job};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    leases_follow_priority_then_run_at_then_creation,
    leases_only_the_handlers_asked_for_and_never_push_jobs,
    a_lease_opens_an_attempt_with_a_fresh_token,
    ack_completes_once_and_fences_everything_after,
    fail_retries_with_backoff_until_the_budget_is_spent,
    permanent_failures_and_retry_in,
    the_deadline_is_final_and_expiry_retries_the_job,
    extend_moves_the_deadline,
    cancel_of_a_running_job_fences_its_worker,
    manual_retry_gives_a_fresh_budget,
    concurrent_leases_never_share_a_job,
    a_lost_worker_loses_its_leases_after_the_grace_unless_it_returns,
);

/// The grace for WebSocket workers that went away, as the sweeper passes it.
const GRACE: Duration = Duration::from_secs(15);

async fn setup(kind: StoreKind) -> (TestStore, OrgId) {
    let t = TestStore::new(kind).await;
    let org = t.default_org().await;
    (t, org)
}

async fn lease_one(store: &DynStore, org: OrgId, handler: &str) -> LeasedJob {
    let mut got = store
        .lease_jobs(org, &[handler.to_string()], 1, Some("w1"))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "expected one job of {handler}");
    got.remove(0)
}

fn failure(retryable: bool, retry_in: Option<u64>) -> Failure {
    Failure {
        error: "it broke".into(),
        retryable,
        retry_in: retry_in.map(Duration::from_secs),
    }
}

fn done<T: std::fmt::Debug>(outcome: LeaseOutcome<T>) -> T {
    match outcome {
        LeaseOutcome::Done(v) => v,
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn leases_follow_priority_then_run_at_then_creation(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let low = s.create_job(org, job("h")).await.unwrap();
    let high = s
        .create_job(
            org,
            NewJob {
                priority: 5,
                ..job("h")
            },
        )
        .await
        .unwrap();
    let low2 = s.create_job(org, job("h")).await.unwrap();
    // Due earlier than `low` although created later.
    let past = chronos_proto::Timestamp(chrono::Utc::now() - chrono::TimeDelta::seconds(60));
    let early = s
        .create_job(
            org,
            NewJob {
                run_at: RunAt::At(past),
                ..job("h")
            },
        )
        .await
        .unwrap();
    assert_eq!(early.status, JobStatus::Queued);
    let leased = s.lease_jobs(org, &["h".into()], 10, None).await.unwrap();
    let order: Vec<Uuid> = leased.iter().map(|l| l.job.id).collect();
    assert_eq!(order, vec![high.id, early.id, low.id, low2.id]);
    assert!(
        s.lease_jobs(org, &["h".into()], 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn leases_only_the_handlers_asked_for_and_never_push_jobs(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    s.create_job(org, job("a")).await.unwrap();
    s.create_job(org, job("b")).await.unwrap();
    s.create_job(org, job("c")).await.unwrap();
    let push = NewJob {
        delivery: serde_json::from_value(
            json!({"type": "push", "http": {"url": "https://x.test"}}),
        )
        .unwrap(),
        ..job("a")
    };
    s.create_job(org, push).await.unwrap();
    let later = NewJob {
        run_at: RunAt::After(Duration::from_secs(3600)),
        ..job("a")
    };
    s.create_job(org, later).await.unwrap();
    let other = s.create_organization("other", "Other").await.unwrap();
    s.create_job(other.id, job("a")).await.unwrap();

    let got = s
        .lease_jobs(org, &["a".into(), "b".into()], 10, None)
        .await
        .unwrap();
    let handlers: HashSet<_> = got.iter().map(|l| l.job.handler.clone().unwrap()).collect();
    assert_eq!(
        got.len(),
        2,
        "one a and one b: not c, not push, not scheduled, not other org"
    );
    assert_eq!(handlers, HashSet::from(["a".to_string(), "b".to_string()]));
    assert_eq!(
        s.lease_jobs(org, &["c".into()], 10, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.lease_jobs(other.id, &["a".into()], 10, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_lease_opens_an_attempt_with_a_fresh_token(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let created = s
        .create_job(
            org,
            NewJob {
                timeout_seconds: 120,
                ..job("h")
            },
        )
        .await
        .unwrap();
    let leased = lease_one(s, org, "h").await;
    assert_eq!(leased.job.id, created.id);
    assert_eq!(leased.job.status, JobStatus::Running);
    assert_eq!(leased.job.attempt, 1);
    let ahead = leased.lease.expires_at.0 - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::seconds(110) && ahead <= chrono::TimeDelta::seconds(121),
        "{ahead}"
    );
    let page = s
        .list_executions(
            org,
            created.id,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let ex = &page.items[0];
    assert_eq!(ex.status, ExecutionStatus::Running);
    assert_eq!(ex.attempt, 1);
    assert_eq!(ex.worker_id.as_deref(), Some("w1"));
    assert_eq!(ex.finished_at, None);
    assert_eq!(
        s.job(org, created.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
}

async fn ack_completes_once_and_fences_everything_after(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    s.create_job(org, job("h")).await.unwrap();
    let l = lease_one(s, org, "h").await;
    let completed = done(
        s.ack_job(org, l.lease.token, Some(json!({"ok": 1})))
            .await
            .unwrap(),
    );
    assert_eq!(completed.status, JobStatus::Completed);
    assert_eq!(completed.result, Some(json!({"ok": 1})));
    assert!(completed.finished_at.is_some());
    assert_eq!(
        s.ack_job(org, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        s.fail_job(org, l.lease.token, failure(true, None))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        s.extend_lease(org, l.lease.token, Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    // Never a token: 404-like; another organization's token likewise.
    assert_eq!(
        s.ack_job(org, Uuid::new_v4(), None).await.unwrap(),
        LeaseOutcome::Unknown
    );
    let other = s.create_organization("other", "Other").await.unwrap();
    assert_eq!(
        s.ack_job(other.id, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Unknown
    );
    let ex = &s
        .list_executions(
            org,
            l.job.id,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap()
        .items[0];
    assert_eq!(ex.status, ExecutionStatus::Completed);
    assert!(ex.duration_ms.is_some() && ex.finished_at.is_some());
    // Ack without a result stores none.
    s.create_job(org, job("h")).await.unwrap();
    let l = lease_one(s, org, "h").await;
    assert_eq!(
        done(s.ack_job(org, l.lease.token, None).await.unwrap()).result,
        None
    );
}

async fn fail_retries_with_backoff_until_the_budget_is_spent(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let created = s
        .create_job(
            org,
            NewJob {
                max_retries: 2,
                ..job("h")
            },
        )
        .await
        .unwrap();
    for attempt in 1..=3u32 {
        let l = lease_one(s, org, "h").await;
        assert_eq!(l.job.attempt, attempt);
        let before = chrono::Utc::now();
        let after = done(
            s.fail_job(org, l.lease.token, failure(true, None))
                .await
                .unwrap(),
        );
        assert_eq!(after.last_error.as_deref(), Some("it broke"));
        if attempt < 3 {
            assert_eq!(after.status, JobStatus::Scheduled, "attempt {attempt}");
            // 1 s × 2^(attempt−1), ±20%.
            let base = 1000 * (1i64 << (attempt - 1));
            let wait = (after.run_at.0 - before).num_milliseconds();
            assert!(
                wait >= base * 8 / 10 - 50 && wait <= base * 12 / 10 + 50,
                "attempt {attempt}: {wait} ms"
            );
            // Not leasable until due; then promoted and leased again.
            assert!(
                s.lease_jobs(org, &["h".into()], 1, None)
                    .await
                    .unwrap()
                    .is_empty()
            );
            tokio::time::sleep(Duration::from_millis(wait as u64 + 50)).await;
            assert_eq!(s.promote_due_jobs().await.unwrap().count, 1);
        } else {
            assert_eq!(after.status, JobStatus::Failed, "retries spent");
            assert!(after.finished_at.is_some());
        }
    }
    let page = s
        .list_executions(
            org,
            created.id,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let attempts: Vec<u32> = page.items.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![3, 2, 1], "newest first");
    assert!(
        page.items
            .iter()
            .all(|e| e.status == ExecutionStatus::Failed)
    );
    assert!(
        page.items
            .iter()
            .all(|e| e.error.as_deref() == Some("it broke"))
    );
}

async fn permanent_failures_and_retry_in(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    s.create_job(org, job("h")).await.unwrap();
    let l = lease_one(s, org, "h").await;
    let failed = done(
        s.fail_job(org, l.lease.token, failure(false, None))
            .await
            .unwrap(),
    );
    assert_eq!(
        failed.status,
        JobStatus::Failed,
        "not retryable: no retry despite budget"
    );

    s.create_job(org, job("h")).await.unwrap();
    let l = lease_one(s, org, "h").await;
    let before = chrono::Utc::now();
    let later = done(
        s.fail_job(org, l.lease.token, failure(true, Some(120)))
            .await
            .unwrap(),
    );
    assert_eq!(later.status, JobStatus::Scheduled);
    let wait = (later.run_at.0 - before).num_milliseconds();
    assert!(
        (119_000..=121_000).contains(&wait),
        "retry_in honoured: {wait}"
    );

    s.create_job(org, job("z")).await.unwrap();
    let l = lease_one(s, org, "z").await;
    let now = done(
        s.fail_job(org, l.lease.token, failure(true, Some(0)))
            .await
            .unwrap(),
    );
    assert_eq!(now.status, JobStatus::Queued, "retry_in 0 is due at once");
    assert_eq!(lease_one(s, org, "z").await.job.attempt, 2);
}

async fn the_deadline_is_final_and_expiry_retries_the_job(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let created = s
        .create_job(
            org,
            NewJob {
                timeout_seconds: 1,
                ..job("h")
            },
        )
        .await
        .unwrap();
    let first = lease_one(s, org, "h").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Past the deadline, before any sweep: refused all the same.
    assert_eq!(
        s.ack_job(org, first.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        s.extend_lease(org, first.lease.token, Duration::from_secs(60))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    let expired = s.expire_leases(GRACE).await.unwrap();
    assert_eq!(expired.jobs.len(), 1);
    let retried = &expired.jobs[0];
    assert_eq!(
        retried.status,
        JobStatus::Scheduled,
        "a timeout uses a retry"
    );
    assert!(retried.last_error.as_deref().unwrap().contains("timed out"));
    let ex = s
        .list_executions(
            org,
            created.id,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ex.items[0].status, ExecutionStatus::TimedOut);
    // After the backoff it is leased again as attempt 2, with a new token.
    tokio::time::sleep(
        (retried.run_at.0 - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + Duration::from_millis(50),
    )
    .await;
    s.promote_due_jobs().await.unwrap();
    let second = lease_one(s, org, "h").await;
    assert_eq!(second.job.attempt, 2);
    assert_ne!(second.lease.token, first.lease.token);
    assert_eq!(
        s.ack_job(org, first.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    done(s.ack_job(org, second.lease.token, None).await.unwrap());

    // A timeout with no retries left fails the job.
    s.create_job(
        org,
        NewJob {
            timeout_seconds: 1,
            max_retries: 0,
            ..job("g")
        },
    )
    .await
    .unwrap();
    lease_one(s, org, "g").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = s.expire_leases(GRACE).await.unwrap();
    assert_eq!(expired.jobs.len(), 1);
    assert_eq!(expired.jobs[0].status, JobStatus::Failed);
    assert!(s.expire_leases(GRACE).await.unwrap().jobs.is_empty());
}

async fn extend_moves_the_deadline(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    s.create_job(
        org,
        NewJob {
            timeout_seconds: 1,
            ..job("h")
        },
    )
    .await
    .unwrap();
    let l = lease_one(s, org, "h").await;
    let lease = done(
        s.extend_lease(org, l.lease.token, Duration::from_secs(30))
            .await
            .unwrap(),
    );
    assert_eq!(lease.token, l.lease.token);
    assert!(lease.expires_at.0 - chrono::Utc::now() > chrono::TimeDelta::seconds(25));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        s.expire_leases(GRACE).await.unwrap().jobs.is_empty(),
        "extended: not expired"
    );
    let next = s
        .expire_leases(GRACE)
        .await
        .unwrap()
        .next_expiry_in
        .unwrap();
    assert!(next > Duration::from_secs(25), "{next:?}");
    done(s.ack_job(org, l.lease.token, None).await.unwrap());
    assert_eq!(
        s.extend_lease(org, Uuid::new_v4(), Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseOutcome::Unknown
    );
}

async fn cancel_of_a_running_job_fences_its_worker(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    s.create_job(org, job("h")).await.unwrap();
    let l = lease_one(s, org, "h").await;
    let CancelOutcome::Cancelled(c) = s.cancel_job(org, l.job.id).await.unwrap() else {
        panic!("running jobs can be cancelled");
    };
    assert_eq!(c.status, JobStatus::Cancelled);
    assert_eq!(
        s.ack_job(org, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        s.fail_job(org, l.lease.token, failure(true, None))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    let ex = s
        .list_executions(
            org,
            l.job.id,
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ex.items[0].status, ExecutionStatus::Failed);
    assert_eq!(ex.items[0].error.as_deref(), Some("job cancelled"));
    assert!(s.expire_leases(GRACE).await.unwrap().jobs.is_empty());
}

async fn manual_retry_gives_a_fresh_budget(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let created = s
        .create_job(
            org,
            NewJob {
                max_retries: 0,
                ..job("h")
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(s.retry_job(org, created.id).await.unwrap(), RetryOutcome::NotRetryable(j) if j.status == JobStatus::Queued)
    );
    let l = lease_one(s, org, "h").await;
    assert_eq!(
        done(
            s.fail_job(org, l.lease.token, failure(true, None))
                .await
                .unwrap()
        )
        .status,
        JobStatus::Failed
    );
    let RetryOutcome::Retried(again) = s.retry_job(org, created.id).await.unwrap() else {
        panic!("failed jobs can be retried");
    };
    assert_eq!(again.status, JobStatus::Queued);
    assert_eq!(again.finished_at, None);
    let l2 = lease_one(s, org, "h").await;
    assert_eq!(l2.job.attempt, 2, "attempts keep counting");
    // max_retries 0 again applies afresh: one attempt, then failed.
    assert_eq!(
        done(
            s.fail_job(org, l2.lease.token, failure(true, None))
                .await
                .unwrap()
        )
        .status,
        JobStatus::Failed
    );
    // Cancelled jobs too.
    let c = s.create_job(org, job("h")).await.unwrap();
    s.cancel_job(org, c.id).await.unwrap();
    assert!(matches!(
        s.retry_job(org, c.id).await.unwrap(),
        RetryOutcome::Retried(_)
    ));
    assert_eq!(
        s.retry_job(org, Uuid::now_v7()).await.unwrap(),
        RetryOutcome::NotFound
    );
    let other = s.create_organization("other", "Other").await.unwrap();
    assert_eq!(
        s.retry_job(other.id, created.id).await.unwrap(),
        RetryOutcome::NotFound
    );
}

async fn concurrent_leases_never_share_a_job(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let mut created = HashSet::new();
    for _ in 0..60 {
        created.insert(t.store.create_job(org, job("h")).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.lease_jobs(org, &["h".into()], 7, None).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|l| l.job.id));
            }
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap());
    }
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "a job was leased twice");
    assert_eq!(unique, created);
}

async fn a_lost_worker_loses_its_leases_after_the_grace_unless_it_returns(kind: StoreKind) {
    let (t, org) = setup(kind).await;
    let s = &t.store;
    let registration = |worker_id: &str| WorkerRegistration {
        worker_id: worker_id.into(),
        session_id: Uuid::now_v7(),
        handlers: vec!["h".into()],
        max_in_flight: 4,
        sdk: "test/0".into(),
    };
    // Long enough that a loaded machine's pauses do not look like absences.
    let grace = Duration::from_millis(1000);
    let (w1, w2) = (registration("w1"), registration("w2"));
    assert!(s.register_worker(org, &w1).await.unwrap().is_empty());
    assert!(s.register_worker(org, &w2).await.unwrap().is_empty());
    s.create_job(org, job("h")).await.unwrap();
    s.create_job(org, job("h")).await.unwrap();
    let held1 = lease_one(s, org, "h").await; // leased as "w1"
    let held2 = s
        .lease_jobs(org, &["h".into()], 1, Some("w2"))
        .await
        .unwrap()
        .remove(0);

    let listed = s.list_workers(org, GRACE).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|w| w.in_flight == 1 && w.handlers == ["h"])
    );

    // Both go away; w1 comes back within the grace and keeps its lease.
    s.disconnect_worker(org, "w1", w1.session_id).await.unwrap();
    s.disconnect_worker(org, "w2", w2.session_id).await.unwrap();
    assert!(s.list_workers(org, GRACE).await.unwrap().is_empty());
    let w1_again = registration("w1");
    let back = s.register_worker(org, &w1_again).await.unwrap();
    assert_eq!(
        back,
        vec![chronos_server::store::HeldLease {
            token: held1.lease.token,
            job_id: held1.job.id
        }]
    );
    assert!(
        s.expire_leases(grace).await.unwrap().jobs.is_empty(),
        "within the grace"
    );
    tokio::time::sleep(grace + Duration::from_millis(100)).await;
    s.worker_heartbeat(org, "w1", w1_again.session_id)
        .await
        .unwrap();
    let ended = s.expire_leases(grace).await.unwrap().jobs;
    assert_eq!(ended.len(), 1, "only w2's lease ends: {ended:?}");
    assert_eq!(ended[0].id, held2.job.id);
    assert_eq!(ended[0].status, JobStatus::Queued, "due again at once");
    assert_eq!(
        ended[0].last_error.as_deref(),
        Some("worker connection lost")
    );
    assert_eq!(
        s.ack_job(org, held2.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    done(s.ack_job(org, held1.lease.token, None).await.unwrap());
    // A stale heartbeat counts as gone too, and a heartbeat keeps it alive.
    s.create_job(org, job("h")).await.unwrap();
    let w3 = registration("w3");
    s.register_worker(org, &w3).await.unwrap();
    let held3 = s
        .lease_jobs(org, &["h".into()], 1, Some("w3"))
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.worker_heartbeat(org, "w3", w3.session_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        s.expire_leases(grace).await.unwrap().jobs.is_empty(),
        "heard from lately"
    );
    tokio::time::sleep(grace).await;
    let ended = s.expire_leases(grace).await.unwrap().jobs;
    assert_eq!(
        ended.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![held3.job.id]
    );
}
