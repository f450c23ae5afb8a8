//! The state machine's guards, held on both stores (`crate::job::state`):
//! every store method that changes a job's status applies only to a job in
//! its transition's `from()` statuses, and leads it to `to()`; on a job in
//! any other status it changes nothing — the job and its executions read
//! back identical, `updated_at` included — and its answer says why. The
//! statuses come from `JobStatus::ALL` and each method's statuses from
//! `Transition::from()`, so a new status or transition is covered by
//! construction (the matches below have no wildcard: they do not compile
//! until it is given a way to be reached, or its methods). Attempts close
//! their executions with the state machine's `ExecutionStatus`es.

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::{ExecutionStatus, JobStatus};
use chronos_server::account::OrgId;
use chronos_server::endpoint::{EndpointKey, HealthPolicy, Tally};
use chronos_server::job::NewJob;
use chronos_server::job::state::{
    CANCELLED_ERROR, CANCELLED_EXECUTION, Cause, LEASED, RunningAttempt, Transition,
};
use chronos_server::store::{
    CancelOutcome, DynLeases, Handoff, LeaseOutcome, RetryOutcome, WorkerRegistration,
};
use chronos_test_support::both_stores;
use common::{StoreKind, TestStore};
use conformance::*;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    status_changes_apply_only_from_their_transitions_statuses,
    attempts_close_with_the_state_machines_execution_statuses,
);

/// A store method that changes a job's status (or, for `Extend`, needs the
/// job to hold its lease).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Promote,
    /// `lease_jobs` (`lease_batch` with one taker).
    Lease,
    LeasePush,
    /// `create_leased_job`: it never changes an existing job; a job of its
    /// handler in a `Lease` status only makes it queue behind.
    HandOff,
    Ack,
    Fail,
    Release,
    Extend,
    /// `expire_leases`, past every deadline and with the job's worker gone.
    Expire,
    Cancel,
    Retry,
    /// `hold_for_disabled_endpoints`, the subject's endpoint disabled.
    Hold,
    /// `hold_leased`, with the subject's last token.
    HoldLeased,
}

/// Every transition of the state machine.
const TRANSITIONS: [Transition; 9] = [
    Transition::Promote,
    Transition::Lease,
    Transition::Ack,
    Transition::Fail,
    Transition::Cancel,
    Transition::Retry,
    Transition::Release,
    Transition::Hold,
    Transition::HoldLeased,
];

/// The store methods that make a transition. No wildcard: a new transition
/// does not compile until its methods are named here (and listed above).
fn methods_of(transition: Transition) -> &'static [Method] {
    match transition {
        Transition::Promote => &[Method::Promote],
        Transition::Lease => &[Method::Lease, Method::LeasePush, Method::HandOff],
        Transition::Ack => &[Method::Ack],
        Transition::Fail => &[Method::Fail, Method::Expire],
        Transition::Cancel => &[Method::Cancel],
        Transition::Retry => &[Method::Retry],
        Transition::Release => &[Method::Release],
        Transition::Hold => &[Method::Hold],
        Transition::HoldLeased => &[Method::HoldLeased],
    }
}

/// Each method, the statuses it may change a job from, and the status it
/// leads to.
fn guarded_methods() -> Vec<(Method, &'static [JobStatus], JobStatus)> {
    let mut all: Vec<_> = TRANSITIONS
        .iter()
        .flat_map(|&t| methods_of(t).iter().map(move |&m| (m, t.from(), t.to())))
        .collect();
    // Not a transition: it moves the deadline of a job holding its lease.
    all.push((Method::Extend, LEASED, JobStatus::Running));
    all
}

/// How a job is brought to a status with the store's own methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Created so, or changed without ever being leased.
    Unleased,
    /// After an attempt: the job still names that attempt's token.
    AfterALease,
}

/// The ways to reach each status. No wildcard: a new status does not
/// compile until it has a way to be reached (in [`reach`] too).
fn paths(status: JobStatus) -> &'static [Path] {
    match status {
        JobStatus::Scheduled | JobStatus::Queued | JobStatus::Cancelled => {
            &[Path::Unleased, Path::AfterALease]
        }
        JobStatus::Running | JobStatus::Completed | JobStatus::Failed => &[Path::AfterALease],
    }
}

/// A job brought to a status for one case.
struct Subject {
    id: Uuid,
    handler: String,
    idempotency_key: String,
    /// The token of its last lease, if it had one.
    token: Option<Uuid>,
}

/// The worker every subject is leased to; gone, in the store of `Expire`.
const WORKER: &str = "w";

const HOUR: Duration = Duration::from_secs(3600);

/// Creates job number `n` (a push job if `push`, else a pull job of its
/// own handler, each with its own idempotency key) and brings it to
/// `status` along `path`.
async fn reach(
    t: &TestStore,
    org: OrgId,
    n: usize,
    push_job: bool,
    status: JobStatus,
    path: Path,
) -> Subject {
    let leases = &t.leases;
    let handler = format!("h{n}");
    let idempotency_key = format!("subject-{n}");
    let base = if push_job {
        push(&handler, &format!("https://h{n}.example/hook"))
    } else {
        pull(&handler)
    };
    let new = NewJob {
        idempotency_key: Some(idempotency_key.clone()),
        run_at: match (status, path) {
            (JobStatus::Scheduled, Path::Unleased) => chronos_server::job::RunAt::After(HOUR),
            _ => chronos_server::job::RunAt::Now,
        },
        ..base
    };
    let id = leases.create_job(org, new).await.unwrap().id;
    let mut token = None;
    if path == Path::AfterALease {
        let leased = if push_job {
            // Earlier subjects' hosts count as full: only this one's job.
            let others: Vec<String> = (1..n).map(|i| format!("h{i}.example:443")).collect();
            let busy: Vec<(&str, u32)> = others.iter().map(|h| (h.as_str(), 1)).collect();
            let mut got = leases.lease_push(&slots(n as u32, 1, &busy)).await.unwrap();
            assert_eq!(got.len(), 1, "one push job queued");
            got.remove(0).1
        } else {
            lease_one(leases, org, &handler, Some(WORKER)).await
        };
        assert_eq!(leased.job.id, id);
        token = Some(leased.lease.token);
    }
    let last = token.unwrap_or_default();
    match (status, path) {
        (JobStatus::Scheduled | JobStatus::Queued, Path::Unleased) => {}
        (JobStatus::Scheduled, Path::AfterALease) => {
            let later = failure(true, Some(HOUR));
            done(leases.fail_job(org, last, later).await.unwrap());
        }
        (JobStatus::Queued, Path::AfterALease) => {
            done(leases.release_lease(org, last).await.unwrap());
        }
        (JobStatus::Running, _) => {}
        (JobStatus::Completed, _) => {
            done(leases.ack_job(org, last, None).await.unwrap());
        }
        (JobStatus::Failed, _) => {
            done(
                leases
                    .fail_job(org, last, failure(false, None))
                    .await
                    .unwrap(),
            );
        }
        (JobStatus::Cancelled, _) => {
            let outcome = leases.cancel_job(org, id).await.unwrap();
            assert!(
                matches!(outcome, CancelOutcome::Cancelled(..)),
                "{outcome:?}"
            );
        }
    }
    assert_eq!(
        job(&t.store, org, id).await.status,
        status,
        "reached along {path:?}"
    );
    Subject {
        id,
        handler,
        idempotency_key,
        token,
    }
}

/// For every status-changing method, in a store of its own, and every way
/// to reach every status: from a `from()` status the method leads the job
/// to `to()`; from any other it changes nothing and says why.
async fn status_changes_apply_only_from_their_transitions_statuses(kind: StoreKind) {
    let mut tasks = tokio::task::JoinSet::new();
    for (method, from, to) in guarded_methods() {
        tasks.spawn(check_method(kind, method, from, to));
    }
    let mut checked = 0;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(cases) => checked += cases,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let per_method: usize = JobStatus::ALL.iter().map(|&s| paths(s).len()).sum();
    assert_eq!(checked, guarded_methods().len() * per_method);
}

/// Every case of one method; returns how many were checked.
async fn check_method(
    kind: StoreKind,
    method: Method,
    from: &'static [JobStatus],
    to: JobStatus,
) -> usize {
    let (t, org) = clocked(kind).await;
    // Subjects are leased to a worker that went away, so that for
    // `Expire` only the status stands between a job and its end.
    let worker = WorkerRegistration {
        worker_id: WORKER.into(),
        session_id: Uuid::now_v7(),
        handlers: vec![],
        max_in_flight: 100,
        sdk: "test/0".into(),
    };
    t.store.register_worker(org, &worker).await.unwrap();
    t.store
        .disconnect_worker(org, WORKER, worker.session_id)
        .await
        .unwrap();
    let mut n = 0;
    for status in JobStatus::ALL {
        for &path in paths(status) {
            n += 1;
            let case = format!("{method:?} on a {status:?} job reached {path:?}");
            let push_job = matches!(
                method,
                Method::LeasePush | Method::Hold | Method::HoldLeased
            );
            let subject = reach(&t, org, n, push_job, status, path).await;
            let job_before = job(&t.store, org, subject.id).await;
            let runs_before = executions(&t.store, org, subject.id).await;
            let allowed = from.contains(&status);
            apply(&t, org, method, &subject, allowed, &case).await;
            let job_after = job(&t.store, org, subject.id).await;
            if allowed && method != Method::HandOff {
                assert_eq!(job_after.status, to, "{case}: leads to {to:?}");
            } else {
                assert_eq!(job_after, job_before, "{case}: the job changed");
                let runs_after = executions(&t.store, org, subject.id).await;
                assert_eq!(runs_after, runs_before, "{case}: its executions changed");
            }
        }
    }
    n
}

/// Calls `method` on the subject and checks its answer: that it did the
/// change if `allowed`, else why it did not.
async fn apply(
    t: &TestStore,
    org: OrgId,
    method: Method,
    subject: &Subject,
    allowed: bool,
    case: &str,
) {
    let leases: &DynLeases = &t.leases;
    // A token-taking method is given the job's last token, or one it never had.
    let token = subject.token.unwrap_or_else(Uuid::new_v4);
    let only_subject = |ids: Vec<Uuid>| {
        if allowed {
            assert_eq!(
                ids,
                vec![subject.id],
                "{case}: the subject and nothing else"
            );
        } else {
            assert!(ids.is_empty(), "{case}: changed {ids:?}");
        }
    };
    match method {
        Method::Promote => {
            // Whatever its run_at, it is due now.
            advance(&t.store, 2 * HOUR).await;
            let promoted = leases.promote_due_jobs().await.unwrap();
            assert_eq!(promoted.count, u64::from(allowed), "{case}: {promoted:?}");
            assert_eq!(promoted.woken.is_empty(), !allowed, "{case}: {promoted:?}");
        }
        Method::Lease => {
            let handlers = [subject.handler.clone()];
            let leased = leases
                .lease_jobs(org, &handlers, 10, Some(WORKER))
                .await
                .unwrap();
            only_subject(leased.iter().map(|l| l.job.id).collect());
        }
        Method::LeasePush => {
            let leased = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
            only_subject(leased.iter().map(|(_, l)| l.job.id).collect());
        }
        Method::HandOff => {
            let keyed = NewJob {
                idempotency_key: Some(subject.idempotency_key.clone()),
                ..pull(&subject.handler)
            };
            let held = leases
                .create_leased_job(org, keyed, Some(WORKER))
                .await
                .unwrap();
            assert_eq!(
                held,
                Handoff::Conflict {
                    existing: subject.id
                },
                "{case}"
            );
            let fresh = pull(&subject.handler);
            let handoff = leases
                .create_leased_job(org, fresh, Some(WORKER))
                .await
                .unwrap();
            match handoff {
                Handoff::Queued(_) if allowed => {}
                Handoff::Leased(_) if !allowed => {}
                other => panic!("{case}: queued ahead is {allowed}, got {other:?}"),
            }
        }
        Method::Ack | Method::Fail | Method::Release => {
            let outcome = match method {
                Method::Ack => leases.ack_job(org, token, None).await,
                Method::Fail => leases.fail_job(org, token, failure(true, Some(HOUR))).await,
                _ => leases.release_lease(org, token).await,
            }
            .unwrap();
            if allowed {
                assert_eq!(done(outcome).id, subject.id, "{case}");
            } else {
                assert_eq!(outcome, refusal(subject), "{case}");
            }
        }
        Method::Extend => {
            let outcome = leases.extend_lease(org, token, HOUR).await.unwrap();
            if allowed {
                assert_eq!(done(outcome).token, token, "{case}");
            } else {
                assert_eq!(outcome, refusal(subject), "{case}");
            }
        }
        Method::Expire => {
            // Past every deadline, and past the grace of its gone worker.
            advance(&t.store, 2 * HOUR).await;
            let expired = leases.expire_leases(GRACE).await.unwrap();
            only_subject(expired.ended.iter().map(|m| m.id).collect());
        }
        Method::Cancel => match leases.cancel_job(org, subject.id).await.unwrap() {
            CancelOutcome::Cancelled(job, _) if allowed => assert_eq!(job.id, subject.id),
            CancelOutcome::AlreadyFinished(job) if !allowed => {
                assert_eq!(job.id, subject.id, "{case}");
                assert!(job.status.is_finished(), "{case}: {:?}", job.status);
            }
            other => panic!("{case}: {other:?}"),
        },
        Method::Retry => match leases.retry_job(org, subject.id).await.unwrap() {
            RetryOutcome::Retried(job) if allowed => assert_eq!(job.id, subject.id),
            RetryOutcome::NotRetryable(job) if !allowed => assert_eq!(job.id, subject.id),
            other => panic!("{case}: {other:?}"),
        },
        Method::HoldLeased => {
            let outcome = leases.hold_leased(org, token).await.unwrap();
            if allowed {
                assert_eq!(outcome, LeaseOutcome::Done(subject.id), "{case}");
                let job = job(&t.store, org, subject.id).await;
                assert_eq!(job.held_reason.as_deref(), Some("endpoint_disabled"));
                // The lease is undone: its attempt and its execution.
                assert_eq!(job.attempt, 0, "{case}");
                assert!(executions(&t.store, org, subject.id).await.is_empty());
            } else {
                assert_eq!(outcome, refusal(subject), "{case}");
            }
        }
        Method::Hold => {
            // Failing for a second, twice: disabled.
            let key = EndpointKey::of(&format!("https://{}.example/", subject.handler)).unwrap();
            let policy = HealthPolicy {
                disable_after: Some(Duration::from_secs(1)),
            };
            for _ in 0..2 {
                let tally = Tally {
                    answered: false,
                    failures: 1,
                    last_error: Some("down".into()),
                };
                leases
                    .record_endpoint_health(vec![((org, key.clone()), tally)], policy)
                    .await
                    .unwrap();
                advance(&t.store, Duration::from_secs(2)).await;
            }
            let held = leases.hold_for_disabled_endpoints(10).await.unwrap();
            assert_eq!(held, u64::from(allowed), "{case}");
            if allowed {
                let job = job(&t.store, org, subject.id).await;
                assert_eq!(job.held_reason.as_deref(), Some("endpoint_disabled"));
            }
        }
    }
}

/// Why a token-taking method refuses the subject: its token is no longer
/// current, or was never one of its leases.
fn refusal<T>(subject: &Subject) -> LeaseOutcome<T> {
    match subject.token {
        Some(_) => LeaseOutcome::Lost,
        None => LeaseOutcome::Unknown,
    }
}

/// Each way an attempt ends closes its execution with the status, and the
/// error, that the state machine gives it ([`RunningAttempt::end`],
/// [`CANCELLED_EXECUTION`]); every `ExecutionStatus` is written by some
/// ending, and read back as itself.
async fn attempts_close_with_the_state_machines_execution_statuses(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let gone = WorkerRegistration {
        worker_id: "gone".into(),
        session_id: Uuid::now_v7(),
        handlers: vec![],
        max_in_flight: 1,
        sdk: "test/0".into(),
    };
    t.store.register_worker(org, &gone).await.unwrap();
    let start = |handler: &'static str, timeout_seconds, worker| async move {
        let new = NewJob {
            timeout_seconds,
            ..pull(handler)
        };
        let created = leases.create_job(org, new).await.unwrap();
        let l = lease_one(leases, org, handler, worker).await;
        assert_eq!(l.job.id, created.id);
        l
    };
    let attempt_of = |j: &chronos_proto::Job| RunningAttempt {
        attempt: j.attempt,
        attempt_base: 0,
        max_retries: j.max_retries,
        timeout_seconds: j.timeout,
    };
    let mut endings: Vec<(&str, Uuid, ExecutionStatus, Option<String>)> = Vec::new();

    // The sweeper's endings first, while nothing else runs.
    let timed_out = start("timed_out", 30, None).await;
    advance(&t.store, Duration::from_secs(31)).await;
    assert_eq!(leases.expire_leases(GRACE).await.unwrap().ended.len(), 1);
    let ending = attempt_of(&timed_out.job).end(Cause::DeadlinePassed);
    endings.push((
        "timed out",
        timed_out.job.id,
        ending.execution,
        Some(ending.error),
    ));

    let lost = start("lost", 3600, Some("gone")).await;
    t.store
        .disconnect_worker(org, "gone", gone.session_id)
        .await
        .unwrap();
    advance(&t.store, GRACE + Duration::from_secs(1)).await;
    assert_eq!(leases.expire_leases(GRACE).await.unwrap().ended.len(), 1);
    let ending = attempt_of(&lost.job).end(Cause::WorkerGone);
    endings.push((
        "worker gone",
        lost.job.id,
        ending.execution,
        Some(ending.error),
    ));

    let acked = start("acked", 30, None).await;
    done(leases.ack_job(org, acked.lease.token, None).await.unwrap());
    endings.push(("acked", acked.job.id, ExecutionStatus::Completed, None));

    let failed = start("failed", 30, None).await;
    let reported = failure(true, None);
    done(
        leases
            .fail_job(org, failed.lease.token, reported.clone())
            .await
            .unwrap(),
    );
    let ending = attempt_of(&failed.job).end(Cause::Reported(reported));
    endings.push((
        "failed",
        failed.job.id,
        ending.execution,
        Some(ending.error),
    ));

    let released = start("released", 30, None).await;
    done(
        leases
            .release_lease(org, released.lease.token)
            .await
            .unwrap(),
    );
    endings.push(("released", released.job.id, ExecutionStatus::Released, None));

    let cancelled = start("cancelled", 30, None).await;
    leases.cancel_job(org, cancelled.job.id).await.unwrap();
    let error = Some(CANCELLED_ERROR.to_string());
    endings.push(("cancelled", cancelled.job.id, CANCELLED_EXECUTION, error));

    let running = start("running", 30, None).await;
    endings.push(("running", running.job.id, ExecutionStatus::Running, None));

    let mut written = Vec::new();
    for (what, id, status, error) in endings {
        let runs = executions(&t.store, org, id).await;
        assert_eq!(runs.len(), 1, "{what}");
        assert_eq!(runs[0].status, status, "{what}");
        assert_eq!(runs[0].error, error, "{what}");
        assert_eq!(
            runs[0].finished_at.is_some(),
            status != ExecutionStatus::Running,
            "{what}"
        );
        written.push(status);
    }
    for status in [
        ExecutionStatus::Running,
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Released,
    ] {
        // No wildcard: a new execution status needs an ending above.
        match status {
            ExecutionStatus::Running
            | ExecutionStatus::Completed
            | ExecutionStatus::Failed
            | ExecutionStatus::TimedOut
            | ExecutionStatus::Released => {
                assert!(written.contains(&status), "no ending writes {status:?}")
            }
        }
    }
}
