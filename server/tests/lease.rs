//! The lease engine's contract at the store level ([`LeaseStore`]), on both
//! stores: order, fencing, deadlines, retries and backoff, release, cancel
//! and manual retry, concurrency, lost workers, hand-offs to waiting polls,
//! promotion, batched and push leases, push answers. Time passes on the
//! test clock. The same rules over HTTP are in `api_leases.rs`; across
//! processes in `lease_processes.rs`; the guards of every status change in
//! `store_guards.rs`.
//!
//! [`LeaseStore`]: chronos_server::store::LeaseStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::{BodyEncoding, ExecutionStatus, JobStatus, Timestamp};
use chronos_server::job::slots::Taker;
use chronos_server::job::state::Failure;
use chronos_server::job::{NewJob, RunAt};
use chronos_server::store::{
    AttemptEnd, CancelOutcome, Clock, Handoff, HeldLease, HttpResponse, JobFilter, LeaseOutcome,
    Outcome, PushSlots, RetryOutcome, WakeKey, WorkerRegistration,
};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
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
    release_queues_the_job_again_without_using_a_retry,
    cancel_of_a_running_job_fences_its_worker,
    manual_retry_gives_a_fresh_budget,
    concurrent_leases_never_share_a_job,
    a_lost_worker_loses_its_leases_after_the_grace_unless_it_returns,
    a_silent_worker_loses_its_leases_after_the_grace,
    a_hand_off_is_leased_unless_its_handler_has_jobs_queued,
    promote_moves_only_due_jobs,
    a_batched_lease_deals_jobs_round_robin_over_the_takers,
    push_leases_respect_host_slots,
    no_backlog_hides_another_host,
    hosts_take_turns,
    push_attempts_record_the_answer,
    an_attempt_end_carries_the_whole_job_only_when_asked,
);

async fn leases_follow_priority_then_run_at_then_creation(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let low = leases.create_job(org, pull("h")).await.unwrap();
    let high = NewJob {
        priority: 5,
        ..pull("h")
    };
    let high = leases.create_job(org, high).await.unwrap();
    let low2 = leases.create_job(org, pull("h")).await.unwrap();
    // Due earlier than `low` although created later.
    let past = Timestamp(now(&t.store).await.0 - chrono::TimeDelta::seconds(60));
    let early = NewJob {
        run_at: RunAt::At(past),
        ..pull("h")
    };
    let early = leases.create_job(org, early).await.unwrap();
    assert_eq!(early.status, JobStatus::Queued);
    let leased = leases
        .lease_jobs(org, &["h".into()], 10, None)
        .await
        .unwrap();
    let order: Vec<Uuid> = leased.iter().map(|l| l.job.id).collect();
    assert_eq!(order, vec![high.id, early.id, low.id, low2.id]);
    assert!(
        leases
            .lease_jobs(org, &["h".into()], 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn leases_only_the_handlers_asked_for_and_never_push_jobs(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    for handler in ["a", "b", "c"] {
        leases.create_job(org, pull(handler)).await.unwrap();
    }
    let push = NewJob {
        handler: Some("a".into()),
        ..push("a", "https://x.test")
    };
    leases.create_job(org, push).await.unwrap();
    let not_yet = later("a", Duration::from_secs(3600));
    leases.create_job(org, not_yet).await.unwrap();
    let other = other_org(&t.store).await;
    leases.create_job(other, pull("a")).await.unwrap();

    let got = leases
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
    let c = leases
        .lease_jobs(org, &["c".into()], 10, None)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    let theirs = leases
        .lease_jobs(other, &["a".into()], 10, None)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
}

async fn a_lease_opens_an_attempt_with_a_fresh_token(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let created = NewJob {
        timeout_seconds: 120,
        ..pull("h")
    };
    let created = t.leases.create_job(org, created).await.unwrap();
    let before = now(&t.store).await;
    let leased = lease_one(&t.leases, org, "h", Some("w1")).await;
    let after = now(&t.store).await;
    assert_eq!(leased.job.id, created.id);
    assert_eq!(leased.job.status, JobStatus::Running);
    assert_eq!(leased.job.attempt, 1);
    let deadline = leased.lease.expires_at;
    assert!(
        millis_between(before, deadline) >= 120_000 && millis_between(after, deadline) <= 120_000,
        "the timeout from the lease: {deadline}"
    );
    let runs = executions(&t.store, org, created.id).await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status, ExecutionStatus::Running);
    assert_eq!(run.attempt, 1);
    assert_eq!(run.worker_id.as_deref(), Some("w1"));
    assert_eq!((run.finished_at, run.duration_ms), (None, None));
    assert_eq!(
        job(&t.store, org, created.id).await.status,
        JobStatus::Running
    );
    // The next lease of the job, later, is another token.
    let again = failure(true, Some(Duration::ZERO));
    done(
        t.leases
            .fail_job(org, leased.lease.token, again)
            .await
            .unwrap(),
    );
    let second = lease_one(&t.leases, org, "h", Some("w1")).await;
    assert_ne!(second.lease.token, leased.lease.token);
    assert_eq!(second.job.attempt, 2);
}

async fn ack_completes_once_and_fences_everything_after(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    leases.create_job(org, pull("h")).await.unwrap();
    let l = lease_one(leases, org, "h", Some("w1")).await;
    let moved = done(
        leases
            .ack_job(org, l.lease.token, Some(json!({"ok": 1})))
            .await
            .unwrap(),
    );
    assert_eq!(moved.id, l.job.id);
    assert_eq!(moved.status, JobStatus::Completed);
    assert_eq!(moved.attempt, 1);
    assert_eq!(moved.schedule_id, None);
    assert_eq!(moved.wake, WakeKey::Pull(org, "h".into()));
    let completed = job(&t.store, org, l.job.id).await;
    assert_eq!(completed.status, JobStatus::Completed);
    assert_eq!(completed.result, Some(json!({"ok": 1})));
    assert!(completed.finished_at.is_some());
    assert_eq!(
        leases.ack_job(org, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases
            .fail_job(org, l.lease.token, failure(true, None))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases
            .extend_lease(org, l.lease.token, Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases.release_lease(org, l.lease.token).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        job(&t.store, org, l.job.id).await,
        completed,
        "nothing after the ack changed it"
    );
    // Never a token: 404-like; another organization's token likewise.
    assert_eq!(
        leases.ack_job(org, Uuid::new_v4(), None).await.unwrap(),
        LeaseOutcome::Unknown
    );
    let other = other_org(&t.store).await;
    assert_eq!(
        leases.ack_job(other, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Unknown
    );
    let run = &executions(&t.store, org, l.job.id).await[0];
    assert_eq!(run.status, ExecutionStatus::Completed);
    assert!(run.duration_ms.is_some() && run.finished_at.is_some());
    // Ack without a result stores none.
    leases.create_job(org, pull("h")).await.unwrap();
    let l = lease_one(leases, org, "h", None).await;
    done(leases.ack_job(org, l.lease.token, None).await.unwrap());
    assert_eq!(job(&t.store, org, l.job.id).await.result, None);
}

async fn fail_retries_with_backoff_until_the_budget_is_spent(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let created = NewJob {
        max_retries: Some(2),
        ..pull("h")
    };
    let created = leases.create_job(org, created).await.unwrap();
    for attempt in 1..=3u32 {
        let l = lease_one(leases, org, "h", None).await;
        assert_eq!(l.job.attempt, attempt);
        let before = now(&t.store).await;
        let moved = done(
            leases
                .fail_job(org, l.lease.token, failure(true, None))
                .await
                .unwrap(),
        );
        let after = now(&t.store).await;
        assert_eq!(moved.attempt, attempt);
        let failed = job(&t.store, org, created.id).await;
        assert_eq!(failed.last_error.as_deref(), Some("it broke"));
        if attempt < 3 {
            assert_eq!(moved.status, JobStatus::Scheduled, "attempt {attempt}");
            // 1 s × 2^(attempt−1), ±20%, from the fail.
            let base = 1000 * (1i64 << (attempt - 1));
            assert!(
                millis_between(before, failed.run_at) >= base * 8 / 10
                    && millis_between(after, failed.run_at) <= base * 12 / 10,
                "attempt {attempt}: due at {} after {before}",
                failed.run_at
            );
            // Not leasable, nor promoted, until due; then both.
            assert!(
                leases
                    .lease_jobs(org, &["h".into()], 1, None)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(leases.promote_due_jobs().await.unwrap().count, 0);
            advance(&t.store, Duration::from_millis(base as u64 * 12 / 10 + 50)).await;
            assert_eq!(leases.promote_due_jobs().await.unwrap().count, 1);
        } else {
            assert_eq!(moved.status, JobStatus::Failed, "retries spent");
            assert!(failed.finished_at.is_some());
        }
    }
    let runs = executions(&t.store, org, created.id).await;
    let attempts: Vec<u32> = runs.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![3, 2, 1], "newest first");
    assert!(runs.iter().all(|e| e.status == ExecutionStatus::Failed));
    assert!(runs.iter().all(|e| e.error.as_deref() == Some("it broke")));
}

async fn permanent_failures_and_retry_in(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    leases.create_job(org, pull("h")).await.unwrap();
    let l = lease_one(leases, org, "h", None).await;
    let failed = done(
        leases
            .fail_job(org, l.lease.token, failure(false, None))
            .await
            .unwrap(),
    );
    assert_eq!(
        failed.status,
        JobStatus::Failed,
        "not retryable: no retry despite budget"
    );

    leases.create_job(org, pull("h")).await.unwrap();
    let l = lease_one(leases, org, "h", None).await;
    let before = now(&t.store).await;
    let retry_in = failure(true, Some(Duration::from_secs(120)));
    let moved = done(leases.fail_job(org, l.lease.token, retry_in).await.unwrap());
    let after = now(&t.store).await;
    assert_eq!(moved.status, JobStatus::Scheduled);
    let due = job(&t.store, org, l.job.id).await.run_at;
    assert!(
        millis_between(before, due) >= 120_000 && millis_between(after, due) <= 120_000,
        "retry_in honoured: due {due}, failed between {before} and {after}"
    );

    leases.create_job(org, pull("z")).await.unwrap();
    let l = lease_one(leases, org, "z", None).await;
    let at_once = failure(true, Some(Duration::ZERO));
    let moved = done(leases.fail_job(org, l.lease.token, at_once).await.unwrap());
    assert_eq!(moved.status, JobStatus::Queued, "retry_in 0 is due at once");
    assert_eq!(moved.wake, WakeKey::Pull(org, "z".into()));
    assert_eq!(lease_one(leases, org, "z", None).await.job.attempt, 2);
}

async fn the_deadline_is_final_and_expiry_retries_the_job(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let created = NewJob {
        timeout_seconds: 30,
        ..pull("h")
    };
    let created = leases.create_job(org, created).await.unwrap();
    let first = lease_one(leases, org, "h", None).await;
    let quiet = leases.expire_leases(GRACE).await.unwrap();
    assert!(quiet.ended.is_empty(), "before the deadline");
    let next = quiet.next_expiry_in.expect("a lease is running");
    assert!(
        next > Duration::from_secs(25) && next <= Duration::from_secs(30),
        "{next:?}"
    );

    advance(&t.store, Duration::from_secs(31)).await;
    // Past the deadline, before any sweep: refused all the same.
    assert_eq!(
        leases.ack_job(org, first.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases
            .extend_lease(org, first.lease.token, Duration::from_secs(60))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases.release_lease(org, first.lease.token).await.unwrap(),
        LeaseOutcome::Lost
    );
    let expired = leases.expire_leases(GRACE).await.unwrap();
    assert_eq!(expired.ended.len(), 1);
    assert_eq!(expired.next_expiry_in, None, "nothing else is running");
    let moved = &expired.ended[0];
    assert_eq!((moved.id, moved.attempt), (created.id, 1));
    assert_eq!(moved.status, JobStatus::Scheduled, "a timeout uses a retry");
    let retried = job(&t.store, org, created.id).await;
    assert!(retried.last_error.as_deref().unwrap().contains("timed out"));
    let run = &executions(&t.store, org, created.id).await[0];
    assert_eq!(run.status, ExecutionStatus::TimedOut);
    assert_eq!(run.error, retried.last_error);

    // After the backoff it is leased again as attempt 2, with a new token.
    let wait = millis_between(now(&t.store).await, retried.run_at);
    assert!(
        (0..=1200).contains(&wait),
        "backoff of attempt 1: {wait} ms"
    );
    advance(&t.store, Duration::from_millis(wait as u64 + 50)).await;
    assert_eq!(leases.promote_due_jobs().await.unwrap().count, 1);
    let second = lease_one(leases, org, "h", None).await;
    assert_eq!(second.job.attempt, 2);
    assert_ne!(second.lease.token, first.lease.token);
    assert_eq!(
        leases.ack_job(org, first.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    done(leases.ack_job(org, second.lease.token, None).await.unwrap());

    // A timeout with no retries left fails the job.
    let last = NewJob {
        timeout_seconds: 30,
        max_retries: Some(0),
        ..pull("g")
    };
    leases.create_job(org, last).await.unwrap();
    let l = lease_one(leases, org, "g", None).await;
    advance(&t.store, Duration::from_secs(31)).await;
    let expired = leases.expire_leases(GRACE).await.unwrap();
    assert_eq!(expired.ended.len(), 1);
    assert_eq!(expired.ended[0].status, JobStatus::Failed);
    assert!(job(&t.store, org, l.job.id).await.finished_at.is_some());
    assert!(leases.expire_leases(GRACE).await.unwrap().ended.is_empty());
}

async fn extend_moves_the_deadline(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let short = NewJob {
        timeout_seconds: 30,
        ..pull("h")
    };
    leases.create_job(org, short).await.unwrap();
    let l = lease_one(leases, org, "h", None).await;
    let before = now(&t.store).await;
    let lease = done(
        leases
            .extend_lease(org, l.lease.token, Duration::from_secs(120))
            .await
            .unwrap(),
    );
    let after = now(&t.store).await;
    assert_eq!(lease.token, l.lease.token);
    assert!(
        millis_between(before, lease.expires_at) >= 120_000
            && millis_between(after, lease.expires_at) <= 120_000,
        "120 s from the extend: {}",
        lease.expires_at
    );
    advance(&t.store, Duration::from_secs(60)).await;
    let expired = leases.expire_leases(GRACE).await.unwrap();
    assert!(expired.ended.is_empty(), "extended past the first deadline");
    let next = expired.next_expiry_in.unwrap();
    assert!(
        next > Duration::from_secs(55) && next <= Duration::from_secs(60),
        "{next:?}"
    );
    assert_eq!(
        job(&t.store, org, l.job.id).await.status,
        JobStatus::Running
    );
    done(leases.ack_job(org, l.lease.token, None).await.unwrap());
    assert_eq!(
        leases
            .extend_lease(org, Uuid::new_v4(), Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseOutcome::Unknown
    );
}

/// A worker may hand an attempt back: the job is queued again at once, its
/// execution is `released`, and the attempt does not count against the
/// retries. The token is then spent.
async fn release_queues_the_job_again_without_using_a_retry(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let one_retry = NewJob {
        max_retries: Some(1),
        ..pull("h")
    };
    let created = leases.create_job(org, one_retry).await.unwrap();
    let first = lease_one(leases, org, "h", Some("w1")).await;
    let moved = done(leases.release_lease(org, first.lease.token).await.unwrap());
    assert_eq!(moved.id, created.id);
    assert_eq!(moved.status, JobStatus::Queued);
    assert_eq!(moved.attempt, 1);
    assert_eq!(moved.wake, WakeKey::Pull(org, "h".into()));
    let run = &executions(&t.store, org, created.id).await[0];
    assert_eq!(run.status, ExecutionStatus::Released);
    assert!(run.finished_at.is_some());
    assert_eq!(run.error, None);

    for spent in [
        leases.release_lease(org, first.lease.token).await.unwrap(),
        leases.ack_job(org, first.lease.token, None).await.unwrap(),
    ] {
        assert_eq!(spent, LeaseOutcome::Lost);
    }
    assert_eq!(
        leases.release_lease(org, Uuid::new_v4()).await.unwrap(),
        LeaseOutcome::Unknown
    );
    let other = other_org(&t.store).await;
    let second = lease_one(leases, org, "h", Some("w1")).await;
    assert_eq!(
        leases
            .release_lease(other, second.lease.token)
            .await
            .unwrap(),
        LeaseOutcome::Unknown
    );
    assert_eq!(second.job.attempt, 2);
    // One retry left: this failure is the first attempt that counts.
    let moved = done(
        leases
            .fail_job(org, second.lease.token, failure(true, Some(Duration::ZERO)))
            .await
            .unwrap(),
    );
    assert_eq!(
        moved.status,
        JobStatus::Queued,
        "the released attempt did not count"
    );
    let third = lease_one(leases, org, "h", Some("w1")).await;
    let moved = done(
        leases
            .fail_job(org, third.lease.token, failure(true, Some(Duration::ZERO)))
            .await
            .unwrap(),
    );
    assert_eq!(
        moved.status,
        JobStatus::Failed,
        "two counted attempts: spent"
    );

    // Past its deadline, an attempt can no longer be handed back.
    let late = NewJob {
        timeout_seconds: 30,
        ..pull("late")
    };
    leases.create_job(org, late).await.unwrap();
    let l = lease_one(leases, org, "late", None).await;
    advance(&t.store, Duration::from_secs(31)).await;
    assert_eq!(
        leases.release_lease(org, l.lease.token).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        job(&t.store, org, l.job.id).await.status,
        JobStatus::Running
    );
}

async fn cancel_of_a_running_job_fences_its_worker(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    leases.create_job(org, pull("h")).await.unwrap();
    let l = lease_one(leases, org, "h", None).await;
    let CancelOutcome::Cancelled(c, _) = leases.cancel_job(org, l.job.id).await.unwrap() else {
        panic!("running jobs can be cancelled");
    };
    assert_eq!(c.status, JobStatus::Cancelled);
    assert!(c.finished_at.is_some());
    assert_eq!(
        leases.ack_job(org, l.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    assert_eq!(
        leases
            .fail_job(org, l.lease.token, failure(true, None))
            .await
            .unwrap(),
        LeaseOutcome::Lost
    );
    let run = &executions(&t.store, org, l.job.id).await[0];
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("job cancelled"));
    advance(&t.store, Duration::from_secs(3600)).await;
    assert!(leases.expire_leases(GRACE).await.unwrap().ended.is_empty());
    assert_eq!(
        job(&t.store, org, l.job.id).await,
        c,
        "nothing after the cancel changed it"
    );

    // Scheduled and queued jobs too; a finished one is left as it is; and
    // another organization's job is not found.
    for new in [pull("q"), later("s", Duration::from_secs(60))] {
        let j = leases.create_job(org, new).await.unwrap();
        let CancelOutcome::Cancelled(cancelled, _) = leases.cancel_job(org, j.id).await.unwrap()
        else {
            panic!("{:?} jobs can be cancelled", j.status);
        };
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        let again = leases.cancel_job(org, j.id).await.unwrap();
        assert_eq!(again, CancelOutcome::AlreadyFinished(cancelled));
    }
    let other = other_org(&t.store).await;
    let mine = leases.create_job(org, pull("mine")).await.unwrap();
    assert_eq!(
        leases.cancel_job(other, mine.id).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(job(&t.store, org, mine.id).await.status, JobStatus::Queued);
    assert_eq!(
        leases.cancel_job(org, Uuid::now_v7()).await.unwrap(),
        CancelOutcome::NotFound
    );
}

async fn manual_retry_gives_a_fresh_budget(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let no_retries = NewJob {
        max_retries: Some(0),
        ..pull("h")
    };
    let created = leases.create_job(org, no_retries).await.unwrap();
    assert!(
        matches!(leases.retry_job(org, created.id).await.unwrap(), RetryOutcome::NotRetryable(j) if j.status == JobStatus::Queued)
    );
    let l = lease_one(leases, org, "h", None).await;
    let moved = done(
        leases
            .fail_job(org, l.lease.token, failure(true, None))
            .await
            .unwrap(),
    );
    assert_eq!(moved.status, JobStatus::Failed);
    let RetryOutcome::Retried(again) = leases.retry_job(org, created.id).await.unwrap() else {
        panic!("failed jobs can be retried");
    };
    assert_eq!(again.status, JobStatus::Queued);
    assert_eq!(again.finished_at, None);
    let l2 = lease_one(leases, org, "h", None).await;
    assert_eq!(l2.job.attempt, 2, "attempts keep counting");
    // max_retries 0 again applies afresh: one attempt, then failed.
    let moved = done(
        leases
            .fail_job(org, l2.lease.token, failure(true, None))
            .await
            .unwrap(),
    );
    assert_eq!(moved.status, JobStatus::Failed);
    // Cancelled jobs too.
    let c = leases.create_job(org, pull("h")).await.unwrap();
    leases.cancel_job(org, c.id).await.unwrap();
    assert!(matches!(
        leases.retry_job(org, c.id).await.unwrap(),
        RetryOutcome::Retried(_)
    ));
    assert_eq!(
        leases.retry_job(org, Uuid::now_v7()).await.unwrap(),
        RetryOutcome::NotFound
    );
    let other = other_org(&t.store).await;
    assert_eq!(
        leases.retry_job(other, created.id).await.unwrap(),
        RetryOutcome::NotFound
    );
}

/// Six takers on two handles of the same database (two server processes)
/// lease 60 jobs at once: each is leased exactly once.
async fn concurrent_leases_never_share_a_job(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let second = reopen(&t, Clock::Database);
    let mut created = HashSet::new();
    for _ in 0..60 {
        created.insert(t.leases.create_job(org, pull("h")).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let leases = if i % 2 == 0 {
            t.leases.clone()
        } else {
            second.leases.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = leases
                    .lease_jobs(org, &["h".into()], 7, None)
                    .await
                    .unwrap();
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

fn registration(worker_id: &str) -> WorkerRegistration {
    WorkerRegistration {
        worker_id: worker_id.into(),
        session_id: Uuid::now_v7(),
        handlers: vec!["h".into()],
        max_in_flight: 4,
        sdk: "test/0".into(),
    }
}

/// A job that runs long: only the worker's absence can end its attempt.
fn long(handler: &str) -> NewJob {
    NewJob {
        timeout_seconds: 3600,
        ..pull(handler)
    }
}

/// A WebSocket worker that disconnects keeps its leases for the grace; if
/// it comes back within it, it keeps them; otherwise its attempts end as
/// failed and their jobs are due again at once.
async fn a_lost_worker_loses_its_leases_after_the_grace_unless_it_returns(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let (w1, w2) = (registration("w1"), registration("w2"));
    assert!(store.register_worker(org, &w1).await.unwrap().is_empty());
    assert!(store.register_worker(org, &w2).await.unwrap().is_empty());
    leases.create_job(org, long("h")).await.unwrap();
    leases.create_job(org, long("h")).await.unwrap();
    let held1 = lease_one(leases, org, "h", Some("w1")).await;
    let held2 = lease_one(leases, org, "h", Some("w2")).await;

    // Both go away; w1 comes back within the grace and keeps its lease.
    store
        .disconnect_worker(org, "w1", w1.session_id)
        .await
        .unwrap();
    store
        .disconnect_worker(org, "w2", w2.session_id)
        .await
        .unwrap();
    advance(store, GRACE - Duration::from_secs(1)).await;
    assert!(
        leases.expire_leases(GRACE).await.unwrap().ended.is_empty(),
        "within the grace"
    );
    let w1_again = registration("w1");
    let back = store.register_worker(org, &w1_again).await.unwrap();
    let held = HeldLease {
        token: held1.lease.token,
        job_id: held1.job.id,
    };
    assert_eq!(back, vec![held], "a reconnect is told the leases it holds");

    advance(store, Duration::from_secs(2)).await;
    let ended = leases.expire_leases(GRACE).await.unwrap().ended;
    assert_eq!(ended.len(), 1, "only w2's lease ends: {ended:?}");
    assert_eq!(ended[0].id, held2.job.id);
    assert_eq!(ended[0].status, JobStatus::Queued, "due again at once");
    assert_eq!(
        job(store, org, held2.job.id).await.last_error.as_deref(),
        Some("worker connection lost")
    );
    let run = &executions(store, org, held2.job.id).await[0];
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        leases.ack_job(org, held2.lease.token, None).await.unwrap(),
        LeaseOutcome::Lost
    );
    done(leases.ack_job(org, held1.lease.token, None).await.unwrap());
}

/// A worker whose server died says nothing: silent for longer than the
/// grace, it is gone too; each heartbeat starts the grace again.
async fn a_silent_worker_loses_its_leases_after_the_grace(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let w = registration("w");
    store.register_worker(org, &w).await.unwrap();
    leases.create_job(org, long("h")).await.unwrap();
    let held = lease_one(leases, org, "h", Some("w")).await;
    advance(store, Duration::from_secs(10)).await;
    store
        .worker_heartbeat(org, "w", w.session_id)
        .await
        .unwrap();
    advance(store, Duration::from_secs(10)).await;
    assert!(
        leases.expire_leases(GRACE).await.unwrap().ended.is_empty(),
        "heard from 10 s ago"
    );
    advance(store, Duration::from_secs(10)).await;
    let ended = leases.expire_leases(GRACE).await.unwrap().ended;
    let ids: Vec<Uuid> = ended.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![held.job.id], "silent for 20 s");
    assert_eq!(
        job(store, org, held.job.id).await.last_error.as_deref(),
        Some("worker connection lost")
    );
}

/// A job created while a poll waits for its handler is inserted already
/// leased to that poll's worker, unless jobs of its handler are queued:
/// then it queues behind them. A held idempotency key inserts nothing.
async fn a_hand_off_is_leased_unless_its_handler_has_jobs_queued(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let handed = NewJob {
        timeout_seconds: 45,
        ..pull("h")
    };
    let before = now(&t.store).await;
    let Handoff::Leased(l) = leases
        .create_leased_job(org, handed.clone(), Some("w1"))
        .await
        .unwrap()
    else {
        panic!("nothing queued ahead: leased");
    };
    let after = now(&t.store).await;
    assert_eq!(l.job.id, handed.id);
    assert_eq!((l.job.status, l.job.attempt), (JobStatus::Running, 1));
    assert!(
        millis_between(before, l.lease.expires_at) >= 45_000
            && millis_between(after, l.lease.expires_at) <= 45_000,
        "the timeout from now: {}",
        l.lease.expires_at
    );
    assert_eq!(job(&t.store, org, l.job.id).await, l.job);
    let runs = executions(&t.store, org, l.job.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ExecutionStatus::Running);
    assert_eq!(runs[0].worker_id.as_deref(), Some("w1"));
    done(leases.ack_job(org, l.lease.token, None).await.unwrap());

    // Scheduled, running and other handlers' jobs are not ahead of it.
    leases
        .create_job(org, later("h", Duration::from_secs(60)))
        .await
        .unwrap();
    leases.create_job(org, pull("h")).await.unwrap();
    lease_one(leases, org, "h", None).await;
    leases.create_job(org, pull("other")).await.unwrap();
    let handoff = leases
        .create_leased_job(org, pull("h"), None)
        .await
        .unwrap();
    assert!(matches!(handoff, Handoff::Leased(_)), "{handoff:?}");

    // A queued job of its handler is: it queues behind it.
    let ahead = leases.create_job(org, pull("h")).await.unwrap();
    let behind = pull("h");
    let Handoff::Queued(queued) = leases
        .create_leased_job(org, behind.clone(), Some("w1"))
        .await
        .unwrap()
    else {
        panic!("a job is queued ahead: queued");
    };
    assert_eq!(queued.id, behind.id);
    assert_eq!((queued.status, queued.attempt), (JobStatus::Queued, 0));
    assert_eq!(executions(&t.store, org, queued.id).await, vec![]);
    let order: Vec<Uuid> = leases
        .lease_jobs(org, &["h".into()], 10, None)
        .await
        .unwrap()
        .iter()
        .map(|l| l.job.id)
        .collect();
    assert_eq!(order, vec![ahead.id, behind.id], "in creation order");

    // A held key: a conflict naming its holder, and nothing inserted.
    let keyed = |key: &str| NewJob {
        idempotency_key: Some(key.into()),
        ..pull("k")
    };
    let holder = leases.create_job(org, keyed("once")).await.unwrap();
    let refused = keyed("once");
    assert_eq!(
        leases
            .create_leased_job(org, refused.clone(), None)
            .await
            .unwrap(),
        Handoff::Conflict {
            existing: holder.id
        }
    );
    assert_eq!(t.store.job(org, refused.id).await.unwrap(), None);
    let count = t
        .store
        .list_jobs(org, &JobFilter::default(), first(100))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(count, 8, "every job above but the refused one");
}

/// Scheduled jobs become queued once due by the store's clock, each pass
/// saying whose polls to wake and when the next is due; cancelled jobs are
/// never promoted.
async fn promote_moves_only_due_jobs(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let minute = Duration::from_secs(60);
    let soon = leases.create_job(org, later("h", minute)).await.unwrap();
    let hook = NewJob {
        run_at: RunAt::After(minute),
        ..push("hook", "https://x.test/h")
    };
    let hook = leases.create_job(org, hook).await.unwrap();
    let hour = leases
        .create_job(org, later("h", Duration::from_secs(3600)))
        .await
        .unwrap();
    let first = leases.promote_due_jobs().await.unwrap();
    assert_eq!(first.count, 0);
    assert!(first.woken.is_empty());
    let wait = first.next_due_in.expect("jobs are scheduled");
    assert!(wait > Duration::from_secs(55) && wait <= minute, "{wait:?}");

    advance(&t.store, minute + Duration::from_secs(1)).await;
    let second = leases.promote_due_jobs().await.unwrap();
    assert_eq!(second.count, 2);
    let woken: HashSet<WakeKey> = second.woken.into_iter().collect();
    assert_eq!(
        woken,
        HashSet::from([WakeKey::Pull(org, "h".into()), WakeKey::Push])
    );
    let next = second.next_due_in.unwrap();
    assert!(
        next > Duration::from_secs(3500) && next <= Duration::from_secs(3540),
        "{next:?}"
    );
    for (id, status) in [
        (soon.id, JobStatus::Queued),
        (hook.id, JobStatus::Queued),
        (hour.id, JobStatus::Scheduled),
    ] {
        assert_eq!(job(&t.store, org, id).await.status, status);
    }
    let again = leases.promote_due_jobs().await.unwrap();
    assert_eq!((again.count, again.woken.len()), (0, 0));

    // A cancelled scheduled job is never promoted.
    let c = leases
        .create_job(org, later("c", Duration::from_secs(10)))
        .await
        .unwrap();
    leases.cancel_job(org, c.id).await.unwrap();
    advance(&t.store, Duration::from_secs(11)).await;
    assert_eq!(leases.promote_due_jobs().await.unwrap().count, 0);
    assert_eq!(job(&t.store, org, c.id).await.status, JobStatus::Cancelled);
}

/// One lease for several takers: the best jobs first, dealt round-robin
/// over the takers' free slots, each recorded with its taker's worker.
async fn a_batched_lease_deals_jobs_round_robin_over_the_takers(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let mut ids = Vec::new();
    for priority in [3, 2, 1] {
        let j = NewJob {
            priority,
            ..pull("h")
        };
        ids.push(t.leases.create_job(org, j).await.unwrap().id);
    }
    let taker = |worker: &str, max| Taker {
        worker_id: Some(worker.into()),
        max,
    };
    let takers = [taker("w1", 2), taker("w2", 2), taker("w3", 0)];
    let dealt = t
        .leases
        .lease_batch(org, &["h".into()], None, &takers)
        .await
        .unwrap();
    let got: Vec<Vec<Uuid>> = dealt
        .iter()
        .map(|jobs| jobs.iter().map(|l| l.job.id).collect())
        .collect();
    assert_eq!(got, vec![vec![ids[0], ids[2]], vec![ids[1]], vec![]]);
    for (jobs, worker) in dealt.iter().zip(["w1", "w2"]) {
        for l in jobs {
            let run = &executions(&t.store, org, l.job.id).await[0];
            assert_eq!(run.worker_id.as_deref(), Some(worker));
        }
    }
    let none = t
        .leases
        .lease_batch(org, &["h".into()], None, &takers)
        .await
        .unwrap();
    assert_eq!(none, vec![vec![], vec![], vec![]], "one answer per taker");
}

/// Push leases take only what the dispatcher has room for: per host
/// (`host:port`, the default port explicit) and in all, best first, never a
/// full host's job, never a pull job; deadlines are timeout + margin.
async fn push_leases_respect_host_slots(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(push(&format!("a{i}"), "https://a.example/hook"));
    }
    for i in 0..3 {
        jobs.push(push(&format!("b{i}"), "https://B.example:443/other"));
    }
    jobs.push(push("c0", "https://c.example:8443/x"));
    jobs.push(NewJob {
        handler: Some("h".into()),
        ..pull("pull")
    });
    t.leases.create_jobs(org, jobs).await.unwrap();

    // a.example:443 is full; b has room for one; c for two.
    let before = now(&t.store).await;
    let leased = t
        .leases
        .lease_push(&slots(10, 2, &[("a.example:443", 2), ("b.example:443", 1)]))
        .await
        .unwrap();
    let after = now(&t.store).await;
    let names: Vec<&str> = leased.iter().map(|(_, l)| l.job.name.as_str()).collect();
    assert_eq!(names, ["b0", "c0"]);
    for (o, l) in &leased {
        assert_eq!(*o, org);
        assert_eq!(l.job.status, JobStatus::Running);
        assert_eq!(l.job.attempt, 1);
        let deadline = l.lease.expires_at;
        assert!(
            millis_between(before, deadline) >= 35_000 && millis_between(after, deadline) <= 35_000,
            "timeout 30 + margin 5: {deadline}"
        );
        let run = &executions(&t.store, org, l.job.id).await[0];
        assert_eq!(
            (run.status, run.worker_id.as_deref()),
            (ExecutionStatus::Running, None)
        );
    }
    // Room in all caps the lease; a host's jobs come best first.
    let names_of = |leased: Vec<(_, chronos_proto::LeasedJob)>| -> Vec<String> {
        leased.into_iter().map(|(_, l)| l.job.name).collect()
    };
    let leased = t.leases.lease_push(&slots(3, 2, &[])).await.unwrap();
    assert_eq!(names_of(leased), ["a0", "a1", "b1"]);
    let leased = t.leases.lease_push(&slots(100, 100, &[])).await.unwrap();
    assert_eq!(names_of(leased), ["a2", "a3", "a4", "b2"]);
    assert!(
        t.leases
            .lease_push(&slots(100, 100, &[]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        t.leases
            .lease_push(&slots(0, 100, &[]))
            .await
            .unwrap()
            .is_empty()
    );
    // Workers still get the pull job; push delivery never did.
    let pulled = t
        .leases
        .lease_jobs(org, &["h".into()], 10, None)
        .await
        .unwrap();
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].job.name, "pull");
}

/// A host's backlog, however long, never hides another host's push jobs:
/// not when the host is full, nor when it has a slot free at the head of
/// the queue (the dispatcher reads each host's head on its own).
async fn no_backlog_hides_another_host(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let backlog = (0..1500)
        .map(|i| push(&format!("a{i}"), "https://a.example/"))
        .collect();
    t.leases.create_jobs(org, backlog).await.unwrap();
    let mut others = Vec::new();
    for i in 0..2 {
        others.push(push(&format!("b{i}"), "https://b.example/"));
    }
    for i in 0..3 {
        others.push(push(&format!("c{i}"), "https://c.example/"));
    }
    t.leases.create_jobs(org, others).await.unwrap();
    let names = |leased: Vec<(_, chronos_proto::LeasedJob)>| -> Vec<String> {
        leased.into_iter().map(|(_, l)| l.job.name).collect()
    };

    let leased = t
        .leases
        .lease_push(&slots(10, 2, &[("a.example:443", 2)]))
        .await
        .unwrap();
    assert_eq!(names(leased), ["b0", "b1", "c0", "c1"]);
    let busy = [
        ("a.example:443", 1),
        ("b.example:443", 2),
        ("c.example:443", 1),
    ];
    let leased = t.leases.lease_push(&slots(10, 2, &busy)).await.unwrap();
    assert_eq!(names(leased), ["a0", "c2"]);
}

/// With more hosts waiting than one lease serves, they take turns: each
/// lease starts after the last host served, and wraps round.
async fn hosts_take_turns(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let mut jobs = Vec::new();
    for host in ["x", "y", "z"] {
        for i in 0..2 {
            jobs.push(push(
                &format!("{host}{i}"),
                &format!("https://{host}.example/"),
            ));
        }
    }
    t.leases.create_jobs(org, jobs).await.unwrap();
    let mut after: Option<String> = None;
    let mut served = Vec::new();
    for _ in 0..5 {
        let request = PushSlots {
            after: after.clone(),
            ..slots(1, 5, &[])
        };
        let leased = t.leases.lease_push(&request).await.unwrap();
        assert_eq!(leased.len(), 1, "after {after:?}");
        let job = &leased[0].1.job;
        served.push(job.name.clone());
        after = Some(format!("{}.example:443", &job.name[..1]));
    }
    assert_eq!(served, ["x0", "y0", "z0", "x1", "y1"]);
}

/// A push attempt's end keeps what the target answered on its execution,
/// for a completion and for a failure, ended together in one batch; with
/// how the body is written (text, or base64 of bytes that were not UTF-8).
async fn push_attempts_record_the_answer(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let jobs = vec![
        push("ok", "https://a.example/"),
        push("bad", "https://a.example/"),
    ];
    t.leases.create_jobs(org, jobs).await.unwrap();
    let leased = t.leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert_eq!(leased.len(), 2);
    let answer = |status, body: &str, encoding, truncated| {
        Some(HttpResponse {
            status,
            body: body.into(),
            encoding,
            truncated,
        })
    };
    let outcomes = t
        .leases
        .end_attempts(vec![
            AttemptEnd {
                org,
                token: leased[0].1.lease.token,
                outcome: Outcome::Ack(Some(json!({"ok": true}))),
                response: answer(201, r#"{"ok":true}"#, BodyEncoding::Utf8, false),
                whole_job: false,
            },
            AttemptEnd {
                org,
                token: leased[1].1.lease.token,
                outcome: Outcome::Fail(Failure {
                    error: "the target answered 503".into(),
                    retryable: true,
                    retry_in: Some(Duration::from_secs(60)),
                }),
                response: answer(503, "/wCA", BodyEncoding::Base64, true),
                whole_job: false,
            },
        ])
        .await
        .unwrap();
    let moved: Vec<_> = outcomes.into_iter().map(done).collect();
    assert_eq!(moved[0].status, JobStatus::Completed);
    assert_eq!(
        moved[1].status,
        JobStatus::Scheduled,
        "retried after Retry-After"
    );
    assert!(moved.iter().all(|m| m.wake == WakeKey::Push));
    for ((_, l), (status, http, body, encoding, truncated)) in leased.iter().zip([
        (
            ExecutionStatus::Completed,
            201,
            r#"{"ok":true}"#,
            BodyEncoding::Utf8,
            false,
        ),
        (
            ExecutionStatus::Failed,
            503,
            "/wCA",
            BodyEncoding::Base64,
            true,
        ),
    ]) {
        let runs = executions(&t.store, org, l.job.id).await;
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run.status, status);
        assert_eq!(run.http_status, Some(http));
        assert_eq!(run.response_body.as_deref(), Some(body));
        assert_eq!(run.response_body_encoding, Some(encoding));
        assert_eq!(run.response_truncated, truncated);
        assert!(run.finished_at.is_some());
    }
}

/// An attempt's end answers with the whole job, read by the same statement,
/// only when it asks (HTTP acks and fails do); otherwise with its status
/// and wake-up key alone.
async fn an_attempt_end_carries_the_whole_job_only_when_asked(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    for _ in 0..3 {
        t.leases.create_job(org, pull("h")).await.unwrap();
    }
    let leased = t
        .leases
        .lease_jobs(org, &["h".into()], 3, Some("w"))
        .await
        .unwrap();
    assert_eq!(leased.len(), 3);
    let end = |i: usize, outcome: Outcome, whole_job: bool| AttemptEnd {
        org,
        token: leased[i].lease.token,
        outcome,
        response: None,
        whole_job,
    };
    let outcomes = t
        .leases
        .end_attempts(vec![
            end(0, Outcome::Ack(Some(json!({"n": 0}))), true),
            end(1, Outcome::Fail(failure(true, None)), true),
            end(2, Outcome::Ack(Some(json!({"n": 2}))), false),
        ])
        .await
        .unwrap();
    let moved: Vec<_> = outcomes.into_iter().map(done).collect();
    for m in &moved[..2] {
        let whole = m.job.as_deref().expect("the whole job, asked for");
        assert_eq!(whole, &job(&t.store, org, m.id).await, "as stored");
        assert_eq!(whole.status, m.status);
    }
    assert_eq!(moved[0].job.as_ref().unwrap().result, Some(json!({"n": 0})));
    assert_eq!(
        moved[1].job.as_ref().unwrap().last_error.as_deref(),
        Some("it broke")
    );
    assert_eq!(moved[2].job, None, "not asked for");
    assert_eq!(moved[2].status, JobStatus::Completed);
}
