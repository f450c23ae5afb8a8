//! Store conformance, flow control: what a queue's limits do to the leases
//! of its jobs (`store::flow` says how they are enforced). A job names a
//! queue that exists or is refused; a queue with a concurrency limit never
//! has more jobs running, across two handles on one database as well; at
//! concurrency 1 it runs its jobs strictly in order, a retry included;
//! lifo serves the newest first; a paused queue starts nothing; a change of
//! limits applies to the jobs already waiting; the hand-off never starts a
//! limited queue's job; a free backlog never starves a limited queue. On
//! both stores, on the test clock.

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::{JobStatus, LeasedJob};
use chronos_server::account::OrgId;
use chronos_server::job::NewJob;
use chronos_server::job::slots::Taker;
use chronos_server::queue::{FailureMode, QueueOrdering, QueueSettings, QueueState, RateLimit};
use chronos_server::store::CancelOutcome;
use chronos_server::store::{DynLeases, DynStore, Handoff, JobFilter, StoreError, WakeKey};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    a_job_naming_a_queue_that_does_not_exist_is_refused_with_its_whole_batch,
    a_queue_never_runs_more_than_its_concurrency,
    a_queue_of_concurrency_one_runs_its_jobs_strictly_in_order_retries_included,
    the_head_of_a_strict_queue_waits_for_a_worker_of_its_handler,
    a_lifo_queue_serves_the_newest_first,
    a_paused_queue_starts_nothing_and_resumes_in_order,
    a_new_limit_applies_to_the_jobs_already_waiting_and_running,
    the_hand_off_never_starts_a_limited_queues_job,
    a_backlog_of_free_jobs_never_starves_a_limited_queue,
    two_handles_racing_never_run_more_than_the_concurrency,
    a_dead_job_blocks_or_pauses_its_queue_as_its_failure_mode_says,
    a_cancelled_running_job_gives_its_slot_back,
    push_delivery_keeps_a_queues_limits_and_the_hosts,
    a_rate_limit_allows_no_more_starts_than_its_limit_in_any_window,
    a_strict_queue_keeps_its_rate_limit_too,
    keys_take_turns_and_each_runs_in_order_at_key_concurrency_one,
    a_busy_key_never_starves_the_others,
    a_key_rate_limit_holds_only_its_key,
    a_rate_held_job_is_woken_the_moment_its_window_lets_it_start,
    keys_take_turns_from_one_lease_to_the_next,
    a_keyed_lifo_queue_serves_each_keys_newest_first_and_the_jobs_without_a_key,
    a_lease_limited_to_some_queues_takes_jobs_of_those_only,
);

/// Makes a queue `name` with `settings`.
async fn queue(store: &DynStore, org: OrgId, name: &str, settings: QueueSettings) {
    store
        .create_queue(org, Uuid::now_v7(), name, &settings)
        .await
        .expect("creating a queue")
        .expect("a new name");
}

/// A queue with at most `n` jobs running.
fn limited(n: u32) -> QueueSettings {
    QueueSettings {
        concurrency: Some(n),
        ..QueueSettings::unlimited()
    }
}

/// A pull job of `handler` in the queue `queue`, due now.
fn in_queue(queue: &str, handler: &str) -> NewJob {
    NewJob {
        queue: queue.into(),
        ..pull(handler)
    }
}

/// Creates `n` jobs of `handler` in `queue`, one after the other; their ids.
async fn create(leases: &DynLeases, org: OrgId, queue: &str, handler: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            leases
                .create_job(org, in_queue(queue, handler))
                .await
                .unwrap()
                .id,
        );
    }
    ids
}

/// Leases up to `max` jobs of `handlers`.
async fn lease(leases: &DynLeases, org: OrgId, handlers: &[&str], max: u32) -> Vec<LeasedJob> {
    let handlers: Vec<String> = handlers.iter().map(|h| h.to_string()).collect();
    leases
        .lease_jobs(org, &handlers, max, Some("w1"))
        .await
        .unwrap()
}

fn ids(leased: &[LeasedJob]) -> Vec<Uuid> {
    leased.iter().map(|l| l.job.id).collect()
}

async fn running(store: &DynStore, org: OrgId, queue: &str) -> usize {
    let filter = JobFilter {
        statuses: vec![JobStatus::Running],
        queue: Some(queue.into()),
        ..JobFilter::default()
    };
    store
        .list_jobs(org, &filter, first(1000))
        .await
        .unwrap()
        .items
        .len()
}

async fn a_job_naming_a_queue_that_does_not_exist_is_refused_with_its_whole_batch(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let batch = vec![pull("a"), in_queue("nope", "a")];
    match leases.create_jobs(org, batch).await {
        Err(StoreError::QueueNotFound { name }) => assert_eq!(name, "nope"),
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
    let all = t
        .store
        .list_jobs(org, &JobFilter::default(), first(10))
        .await
        .unwrap();
    assert!(all.items.is_empty(), "nothing of the batch was kept");

    match leases
        .create_leased_job(org, in_queue("nope", "a"), Some("w1"))
        .await
    {
        Err(StoreError::QueueNotFound { name }) => assert_eq!(name, "nope"),
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
    // Another organization's queue is not this one's.
    let other = other_org(&t.store).await;
    queue(&t.store, other, "theirs", limited(1)).await;
    assert!(matches!(
        leases.create_job(org, in_queue("theirs", "a")).await,
        Err(StoreError::QueueNotFound { .. })
    ));
    queue(&t.store, org, "ours", limited(1)).await;
    leases.create_job(org, in_queue("ours", "a")).await.unwrap();
}

async fn a_queue_never_runs_more_than_its_concurrency(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "api", limited(2)).await;
    let jobs = create(leases, org, "api", "call", 5).await;

    let got = lease(leases, org, &["call"], 10).await;
    assert_eq!(ids(&got), jobs[..2], "the two oldest, and no more");
    assert!(
        lease(leases, org, &["call"], 10).await.is_empty(),
        "both slots are taken"
    );

    // A failed attempt waiting for its retry holds no slot (only a queue of
    // one holds its head).
    let failed = done(
        leases
            .fail_job(
                org,
                got[0].lease.token,
                failure(true, Some(Duration::from_secs(60))),
            )
            .await
            .unwrap(),
    );
    assert_eq!(failed.status, JobStatus::Scheduled);
    assert_eq!(
        failed.freed,
        [WakeKey::Pull(org, "call".into())],
        "the freed slot wakes the polls of the next jobs' handler"
    );
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), [jobs[2]]);

    let acked = done(leases.ack_job(org, got[1].lease.token, None).await.unwrap());
    assert_eq!(acked.freed, [WakeKey::Pull(org, "call".into())]);
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), [jobs[3]]);
    assert_eq!(running(&t.store, org, "api").await, 2);

    // Several takers at once share the room.
    let takers = vec![
        Taker {
            worker_id: Some("w1".into()),
            max: 5,
        },
        Taker {
            worker_id: Some("w2".into()),
            max: 5,
        },
    ];
    let dealt = leases
        .lease_batch(org, &["call".into()], None, &takers)
        .await
        .unwrap();
    assert_eq!(dealt.iter().map(Vec::len).sum::<usize>(), 0);

    // Leases that end by their deadline give their slots back (their jobs
    // wait for their retries), and wake the polls of the next.
    advance(&t.store, Duration::from_secs(31)).await;
    let expired = leases.expire_leases(GRACE).await.unwrap();
    assert_eq!(expired.ended.len(), 2);
    assert!(
        expired
            .ended
            .iter()
            .all(|m| m.freed == [WakeKey::Pull(org, "call".into())])
    );
    let dealt = leases
        .lease_batch(org, &["call".into()], None, &takers)
        .await
        .unwrap();
    let dealt: Vec<Uuid> = dealt.iter().flat_map(|d| ids(d)).collect();
    assert_eq!(dealt, [jobs[4]]);
    assert_eq!(running(&t.store, org, "api").await, 1);
}

async fn a_queue_of_concurrency_one_runs_its_jobs_strictly_in_order_retries_included(
    kind: StoreKind,
) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "serial", limited(1)).await;
    let jobs = create(leases, org, "serial", "step", 3).await;

    let first = lease(leases, org, &["step"], 10).await;
    assert_eq!(ids(&first), [jobs[0]]);
    assert!(lease(leases, org, &["step"], 10).await.is_empty());

    // Its retry holds the queue while it waits, and comes first when due,
    // though the next job has waited longer.
    let retry_in = Some(Duration::from_secs(10));
    let failed = done(
        leases
            .fail_job(org, first[0].lease.token, failure(true, retry_in))
            .await
            .unwrap(),
    );
    assert_eq!(failed.status, JobStatus::Scheduled);
    assert!(
        lease(leases, org, &["step"], 10).await.is_empty(),
        "the head's retry holds the queue"
    );
    advance(&t.store, Duration::from_secs(11)).await;
    assert_eq!(leases.promote_due_jobs().await.unwrap().count, 1);
    let again = lease(leases, org, &["step"], 10).await;
    assert_eq!(ids(&again), [jobs[0]]);
    assert_eq!(again[0].job.attempt, 2);

    // Failed for good: the next one starts.
    let dead = done(
        leases
            .fail_job(org, again[0].lease.token, failure(false, None))
            .await
            .unwrap(),
    );
    assert_eq!(dead.status, JobStatus::Failed);
    let second = lease(leases, org, &["step"], 10).await;
    assert_eq!(ids(&second), [jobs[1]]);
    done(
        leases
            .ack_job(org, second[0].lease.token, None)
            .await
            .unwrap(),
    );
    assert_eq!(ids(&lease(leases, org, &["step"], 10).await), [jobs[2]]);
}

async fn the_head_of_a_strict_queue_waits_for_a_worker_of_its_handler(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "serial", limited(1)).await;
    let x = create(leases, org, "serial", "x", 1).await;
    let y = create(leases, org, "serial", "y", 1).await;
    assert!(
        lease(leases, org, &["y"], 10).await.is_empty(),
        "y's job may not start before x's"
    );
    assert_eq!(ids(&lease(leases, org, &["x"], 10).await), x);
    assert!(lease(leases, org, &["y"], 10).await.is_empty());
    // A queue of several slots serves each handler's workers.
    queue(&t.store, org, "wide", limited(5)).await;
    let wx = create(leases, org, "wide", "x", 1).await;
    let wy = create(leases, org, "wide", "y", 1).await;
    assert_eq!(ids(&lease(leases, org, &["y"], 10).await), wy);
    assert_eq!(ids(&lease(leases, org, &["x"], 10).await), wx);
    let _ = y;
}

async fn a_lifo_queue_serves_the_newest_first(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let lifo = QueueSettings {
        ordering: QueueOrdering::Lifo,
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "stack", lifo.clone()).await;
    let jobs = create(leases, org, "stack", "pop", 3).await;
    let urgent = leases
        .create_job(
            org,
            NewJob {
                priority: 5,
                ..in_queue("stack", "pop")
            },
        )
        .await
        .unwrap()
        .id;
    let newest = create(leases, org, "stack", "pop", 1).await;
    let got = lease(leases, org, &["pop"], 10).await;
    assert_eq!(ids(&got), [urgent, newest[0], jobs[2], jobs[1], jobs[0]]);

    // With one slot, in the same order.
    queue(
        &t.store,
        org,
        "stack1",
        QueueSettings {
            concurrency: Some(1),
            ..lifo
        },
    )
    .await;
    let jobs = create(leases, org, "stack1", "pop1", 3).await;
    let got = lease(leases, org, &["pop1"], 10).await;
    assert_eq!(ids(&got), [jobs[2]]);
    done(leases.ack_job(org, got[0].lease.token, None).await.unwrap());
    assert_eq!(ids(&lease(leases, org, &["pop1"], 10).await), [jobs[1]]);
}

async fn a_paused_queue_starts_nothing_and_resumes_in_order(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "mail", QueueSettings::unlimited()).await;
    let early = create(leases, org, "mail", "send", 2).await;
    let running_one = lease(leases, org, &["send"], 1).await;
    assert_eq!(ids(&running_one), [early[0]]);

    let paused = t
        .store
        .set_queue_status(org, "mail", QueueState::Paused)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.status, QueueState::Paused);
    let late = create(leases, org, "mail", "send", 1).await;
    assert!(lease(leases, org, &["send"], 10).await.is_empty(), "paused");
    // Pausing cancels nothing: the running job finishes.
    done(
        leases
            .ack_job(org, running_one[0].lease.token, None)
            .await
            .unwrap(),
    );

    t.store
        .set_queue_status(org, "mail", QueueState::Active)
        .await
        .unwrap()
        .unwrap();
    let got = lease(leases, org, &["send"], 10).await;
    assert_eq!(ids(&got), [early[1], late[0]], "in their order");
    // The queue is free again: its jobs take the fast path, handed off too.
    match leases
        .create_leased_job(org, in_queue("mail", "send"), Some("w1"))
        .await
        .unwrap()
    {
        Handoff::Leased(_) => {}
        other => panic!("expected a hand-off, got {other:?}"),
    }
}

async fn a_new_limit_applies_to_the_jobs_already_waiting_and_running(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "grow", QueueSettings::unlimited()).await;
    let jobs = create(leases, org, "grow", "g", 4).await;
    let first = lease(leases, org, &["g"], 1).await;
    assert_eq!(ids(&first), [jobs[0]]);

    t.store
        .update_queue(org, "grow", &limited(2))
        .await
        .unwrap()
        .unwrap();
    let got = lease(leases, org, &["g"], 10).await;
    assert_eq!(
        ids(&got),
        [jobs[1]],
        "the running job counts against the new limit"
    );
    done(
        leases
            .ack_job(org, first[0].lease.token, None)
            .await
            .unwrap(),
    );
    assert_eq!(ids(&lease(leases, org, &["g"], 10).await), [jobs[2]]);

    // No limit again: the rest start at once.
    t.store
        .update_queue(org, "grow", &QueueSettings::unlimited())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&lease(leases, org, &["g"], 10).await), [jobs[3]]);
    assert_eq!(running(&t.store, org, "grow").await, 3);
}

async fn the_hand_off_never_starts_a_limited_queues_job(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "one", limited(1)).await;
    let handed = leases
        .create_leased_job(org, in_queue("one", "h"), Some("w1"))
        .await
        .unwrap();
    let Handoff::Queued(job) = handed else {
        panic!("expected the job queued, got {handed:?}");
    };
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(ids(&lease(leases, org, &["h"], 10).await), [job.id]);
}

async fn a_backlog_of_free_jobs_never_starves_a_limited_queue(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "slow", limited(1)).await;
    create(leases, org, "default", "work", 20).await;
    let limited_job = create(leases, org, "slow", "work", 1).await;
    // One job per lease, as a worker with one free slot takes them: the
    // limited queue's job is among the first two (a PostgreSQL server
    // learns of the limited queue from its first lease).
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(ids(&lease(leases, org, &["work"], 1).await));
    }
    assert!(seen.contains(&limited_job[0]), "leased {seen:?}");
}

async fn two_handles_racing_never_run_more_than_the_concurrency(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    queue(&t.store, org, "three", limited(3)).await;
    let second = reopen(&t, chronos_server::store::Clock::Test);
    let handles = [t.leases.clone(), second.leases.clone()];
    create(&t.leases, org, "three", "r", 30).await;
    let mut completed = HashSet::new();
    while completed.len() < 30 {
        // Eight leases at once, four on each handle.
        let mut racing = Vec::new();
        for i in 0..8 {
            let leases = handles[i % 2].clone();
            racing.push(tokio::spawn(async move {
                leases
                    .lease_jobs(org, &["r".to_string()], 2, Some("w"))
                    .await
                    .unwrap()
            }));
        }
        let mut leased = Vec::new();
        for r in racing {
            leased.extend(r.await.unwrap());
        }
        assert!(
            leased.len() <= 3,
            "{} leased at once in a queue of three",
            leased.len()
        );
        assert!(!leased.is_empty(), "the queue had room: something starts");
        assert_eq!(running(&t.store, org, "three").await, leased.len());
        for l in leased {
            done(t.leases.ack_job(org, l.lease.token, None).await.unwrap());
            completed.insert(l.job.id);
        }
    }
}

async fn a_dead_job_blocks_or_pauses_its_queue_as_its_failure_mode_says(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    for (name, mode) in [
        ("blocking", FailureMode::Block),
        ("pausing", FailureMode::Pause),
        ("going-on", FailureMode::Continue),
    ] {
        // No limit: the failure mode alone decides.
        let settings = QueueSettings {
            failure_mode: mode,
            ..QueueSettings::unlimited()
        };
        queue(&t.store, org, name, settings).await;
        let jobs = create(leases, org, name, name, 3).await;
        let first = lease(leases, org, &[name], 1).await;
        assert_eq!(ids(&first), [jobs[0]]);
        // The retry must fall due after the others were made: within one
        // millisecond the ids would break the tie the other way.
        advance(&t.store, Duration::from_secs(1)).await;
        // A failure with retries left is not a death.
        let again = done(
            leases
                .fail_job(
                    org,
                    first[0].lease.token,
                    failure(true, Some(Duration::ZERO)),
                )
                .await
                .unwrap(),
        );
        assert_eq!(again.status, JobStatus::Queued);
        let q = t.store.queue(org, name).await.unwrap().unwrap();
        assert!(!q.blocked && q.status == QueueState::Active);

        // Due again now, it waits behind the others.
        let retry = lease(leases, org, &[name], 1).await;
        assert_eq!(ids(&retry), [jobs[1]]);
        let rest = [jobs[2], jobs[0]];
        let dead = done(
            leases
                .fail_job(org, retry[0].lease.token, failure(false, None))
                .await
                .unwrap(),
        );
        assert_eq!(dead.status, JobStatus::Failed);
        let q = t.store.queue(org, name).await.unwrap().unwrap();
        let left = lease(leases, org, &[name], 10).await;
        match mode {
            FailureMode::Block => {
                assert!(q.blocked, "{name}");
                assert_eq!(q.status, QueueState::Active);
                assert!(left.is_empty(), "a blocked queue starts nothing");
                let counts = t.store.queue_counts(org, name).await.unwrap();
                assert_eq!(counts.queued, 2, "what waits");
                t.store.unblock_queue(org, name).await.unwrap().unwrap();
                assert_eq!(ids(&lease(leases, org, &[name], 10).await), rest);
            }
            FailureMode::Pause => {
                assert!(!q.blocked);
                assert_eq!(q.status, QueueState::Paused);
                assert!(left.is_empty(), "a paused queue starts nothing");
                t.store
                    .set_queue_status(org, name, QueueState::Active)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(ids(&lease(leases, org, &[name], 10).await), rest);
            }
            FailureMode::Continue => {
                assert!(!q.blocked && q.status == QueueState::Active);
                assert_eq!(ids(&left), rest);
            }
        }
    }
    // A death by the deadline, the sweeper's, counts the same.
    let settings = QueueSettings {
        failure_mode: FailureMode::Block,
        ..limited(1)
    };
    queue(&t.store, org, "timed", settings).await;
    let jobs = create(leases, org, "timed", "slow", 1).await;
    let job = NewJob {
        max_retries: Some(0),
        ..in_queue("timed", "slow")
    };
    let last = leases.create_job(org, job).await.unwrap().id;
    done(
        leases
            .ack_job(
                org,
                lease(leases, org, &["slow"], 1).await[0].lease.token,
                None,
            )
            .await
            .unwrap(),
    );
    assert_eq!(jobs.len(), 1);
    assert_eq!(ids(&lease(leases, org, &["slow"], 1).await), [last]);
    advance(&t.store, Duration::from_secs(31)).await;
    leases.expire_leases(GRACE).await.unwrap();
    assert!(t.store.queue(org, "timed").await.unwrap().unwrap().blocked);
}

async fn a_cancelled_running_job_gives_its_slot_back(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "one", limited(1)).await;
    let jobs = create(leases, org, "one", "c", 2).await;
    assert_eq!(ids(&lease(leases, org, &["c"], 5).await), [jobs[0]]);
    let CancelOutcome::Cancelled(_, freed) = leases.cancel_job(org, jobs[0]).await.unwrap() else {
        panic!("not cancelled");
    };
    assert_eq!(
        freed,
        [WakeKey::Pull(org, "c".into())],
        "the polls of the next job are woken"
    );
    // A free queue's job frees no slot.
    let free = create(leases, org, "default", "d", 1).await;
    let CancelOutcome::Cancelled(_, freed) = leases.cancel_job(org, free[0]).await.unwrap() else {
        panic!("not cancelled");
    };
    assert!(freed.is_empty(), "{freed:?}");
    assert_eq!(ids(&lease(leases, org, &["c"], 5).await), [jobs[1]]);
}

/// A push job of `queue` for `url`, due now.
fn push_in(queue: &str, url: &str) -> NewJob {
    NewJob {
        queue: queue.into(),
        ..push("hook", url)
    }
}

async fn push_delivery_keeps_a_queues_limits_and_the_hosts(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "one", limited(1)).await;
    let mut serial = Vec::new();
    for _ in 0..3 {
        let job = leases
            .create_job(org, push_in("one", "https://a.test/x"))
            .await;
        serial.push(job.unwrap().id);
    }
    // A backlog of free push jobs doesn't hold the limited queue back.
    for _ in 0..20 {
        leases
            .create_job(org, push("free", "https://b.test/x"))
            .await
            .unwrap();
    }
    let mut leased = Vec::new();
    for _ in 0..3 {
        leased.extend(leases.lease_push(&slots(4, 10, &[])).await.unwrap());
    }
    let of_one: Vec<_> = leased
        .iter()
        .filter(|(_, l)| l.job.queue == "one")
        .collect();
    assert_eq!(of_one.len(), 1, "one at a time");
    assert_eq!(of_one[0].1.job.id, serial[0]);
    assert_eq!(of_one[0].0, org);
    let token = of_one[0].1.lease.token;
    done(leases.ack_job(org, token, None).await.unwrap());
    let next = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert!(
        next.iter().any(|(_, l)| l.job.id == serial[1]),
        "then the next, in order"
    );
    assert!(!next.iter().any(|(_, l)| l.job.id == serial[2]));

    // A host's calls are capped for a limited queue's jobs too.
    queue(&t.store, org, "wide", limited(10)).await;
    for _ in 0..3 {
        leases
            .create_job(org, push_in("wide", "https://c.test/x"))
            .await
            .unwrap();
    }
    let got = leases
        .lease_push(&slots(10, 2, &[("c.test:443", 1)]))
        .await
        .unwrap();
    let to_c = got.iter().filter(|(_, l)| l.job.queue == "wide").count();
    assert_eq!(to_c, 1, "the host had one call of two already");

    // A queue of one whose head is a pull job: its push jobs wait.
    queue(&t.store, org, "mixed", limited(1)).await;
    leases
        .create_job(org, in_queue("mixed", "p"))
        .await
        .unwrap();
    leases
        .create_job(org, push_in("mixed", "https://d.test/x"))
        .await
        .unwrap();
    let got = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert!(got.iter().all(|(_, l)| l.job.queue != "mixed"));
    assert_eq!(lease(leases, org, &["p"], 5).await.len(), 1);
}

/// A limit of `limit` starts in any window of `seconds`.
fn rate(limit: u32, seconds: u32) -> Option<RateLimit> {
    Some(RateLimit {
        limit,
        period_seconds: seconds,
    })
}

/// A pull job of `handler` in `queue` with the concurrency key `key`.
fn keyed(queue: &str, handler: &str, key: Option<&str>) -> NewJob {
    NewJob {
        concurrency_key: key.map(str::to_string),
        ..in_queue(queue, handler)
    }
}

/// Creates one job of each key in `keys`, in that order; their ids.
async fn create_keyed(
    leases: &DynLeases,
    org: OrgId,
    queue: &str,
    keys: &[Option<&str>],
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for key in keys {
        ids.push(
            leases
                .create_job(org, keyed(queue, "call", *key))
                .await
                .unwrap()
                .id,
        );
    }
    ids
}

async fn ack_all(leases: &DynLeases, org: OrgId, leased: &[LeasedJob]) {
    for l in leased {
        done(leases.ack_job(org, l.lease.token, None).await.unwrap());
    }
}

async fn a_rate_limit_allows_no_more_starts_than_its_limit_in_any_window(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        rate: rate(2, 10),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "mail", settings).await;
    let jobs = create(leases, org, "mail", "call", 6).await;

    // t = 0: one start.
    let first = lease(leases, org, &["call"], 1).await;
    assert_eq!(ids(&first), [jobs[0]]);
    ack_all(leases, org, &first).await;
    // t = 6: one more fills the window; finished jobs still count.
    advance(&t.store, Duration::from_secs(6)).await;
    let second = lease(leases, org, &["call"], 10).await;
    assert_eq!(
        ids(&second),
        [jobs[1]],
        "two starts in ten seconds, no more"
    );
    ack_all(leases, org, &second).await;
    assert!(lease(leases, org, &["call"], 10).await.is_empty());
    // t = 10.5: the first start has left the window, the second has not. A
    // fixed window starting at 10 would allow two here: a double burst.
    advance(&t.store, Duration::from_millis(4500)).await;
    let third = lease(leases, org, &["call"], 10).await;
    assert_eq!(
        ids(&third),
        [jobs[2]],
        "one start in any window of ten seconds"
    );
    assert!(lease(leases, org, &["call"], 10).await.is_empty());
    // t = 16.5: the second has left too.
    advance(&t.store, Duration::from_secs(6)).await;
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), [jobs[3]]);
    // t = 30: a whole window has passed: two at once.
    advance(&t.store, Duration::from_secs(14)).await;
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), jobs[4..6]);
}

async fn a_strict_queue_keeps_its_rate_limit_too(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        rate: rate(1, 60),
        ..limited(1)
    };
    queue(&t.store, org, "one", settings).await;
    let jobs = create(leases, org, "one", "call", 2).await;
    let first = lease(leases, org, &["call"], 10).await;
    assert_eq!(ids(&first), [jobs[0]]);
    ack_all(leases, org, &first).await;
    assert!(
        lease(leases, org, &["call"], 10).await.is_empty(),
        "the head finished, but the minute's one start is spent"
    );
    advance(&t.store, Duration::from_secs(61)).await;
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), [jobs[1]]);
}

async fn keys_take_turns_and_each_runs_in_order_at_key_concurrency_one(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        key_concurrency: Some(1),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "tenants", settings).await;
    let (a, b, c) = (Some("a"), Some("b"), Some("c"));
    let jobs = create_keyed(leases, org, "tenants", &[a, a, a, b, b, c, None, None]).await;

    // One of each key, and the jobs without a key, held by nothing.
    let got = lease(leases, org, &["call"], 20).await;
    let got_ids: HashSet<Uuid> = ids(&got).into_iter().collect();
    let expected: HashSet<Uuid> = [jobs[0], jobs[3], jobs[5], jobs[6], jobs[7]].into();
    assert_eq!(got_ids, expected);
    assert!(
        lease(leases, org, &["call"], 20).await.is_empty(),
        "every key holds its one slot"
    );

    // b's head fails and waits for its retry: b holds, a moves on in order.
    let b1 = got.iter().find(|l| l.job.id == jobs[3]).unwrap();
    let a1 = got.iter().find(|l| l.job.id == jobs[0]).unwrap();
    done(
        leases
            .fail_job(
                org,
                b1.lease.token,
                failure(true, Some(Duration::from_secs(30))),
            )
            .await
            .unwrap(),
    );
    done(leases.ack_job(org, a1.lease.token, None).await.unwrap());
    assert_eq!(ids(&lease(leases, org, &["call"], 20).await), [jobs[1]]);
    // b's retry comes back first, before b's second job.
    advance(&t.store, Duration::from_secs(31)).await;
    leases.promote_due_jobs().await.unwrap();
    assert_eq!(ids(&lease(leases, org, &["call"], 20).await), [jobs[3]]);
}

async fn a_busy_key_never_starves_the_others(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        key_concurrency: Some(5),
        ..limited(2)
    };
    queue(&t.store, org, "tenants", settings).await;
    let mut keys = vec![Some("busy"); 10];
    keys.push(Some("quiet"));
    let jobs = create_keyed(leases, org, "tenants", &keys).await;
    // Two slots: the busy key's first and the quiet key's, not the busy
    // key's two oldest.
    let got = lease(leases, org, &["call"], 10).await;
    let got_ids: HashSet<Uuid> = ids(&got).into_iter().collect();
    assert_eq!(got_ids, [jobs[0], jobs[10]].into());
}

async fn a_key_rate_limit_holds_only_its_key(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        key_rate: rate(1, 60),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "tenants", settings).await;
    let (a, b) = (Some("a"), Some("b"));
    let jobs = create_keyed(leases, org, "tenants", &[a, a, b, b]).await;
    let got = lease(leases, org, &["call"], 10).await;
    assert_eq!(
        ids(&got).into_iter().collect::<HashSet<_>>(),
        [jobs[0], jobs[2]].into()
    );
    ack_all(leases, org, &got).await;
    assert!(
        lease(leases, org, &["call"], 10).await.is_empty(),
        "each key's minute is spent"
    );
    // Another key is not held by theirs.
    let c = create_keyed(leases, org, "tenants", &[Some("c")]).await;
    assert_eq!(ids(&lease(leases, org, &["call"], 10).await), c);
    advance(&t.store, Duration::from_secs(61)).await;
    let got = lease(leases, org, &["call"], 10).await;
    assert_eq!(
        ids(&got).into_iter().collect::<HashSet<_>>(),
        [jobs[1], jobs[3]].into()
    );
}

async fn a_rate_held_job_is_woken_the_moment_its_window_lets_it_start(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        rate: rate(1, 10),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "mail", settings).await;
    let keyed_settings = QueueSettings {
        key_rate: rate(1, 20),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "tenants", keyed_settings).await;
    create(leases, org, "mail", "send", 2).await;
    leases
        .create_job(org, keyed("tenants", "bill", Some("a")))
        .await
        .unwrap();
    leases
        .create_job(org, keyed("tenants", "bill", Some("a")))
        .await
        .unwrap();
    assert_eq!(lease(leases, org, &["send", "bill"], 10).await.len(), 2);

    let held = leases.rate_releases(None).await.unwrap();
    assert!(
        held.woken.is_empty(),
        "no window has let a start go: {held:?}"
    );
    let next = held
        .next_in
        .expect("the mail queue's window frees in ten seconds");
    assert!(
        next > Duration::from_secs(9) && next <= Duration::from_secs(10),
        "{next:?}"
    );

    advance(&t.store, Duration::from_secs(11)).await;
    let released = leases.rate_releases(Some(held.checked_at)).await.unwrap();
    assert_eq!(released.woken, [WakeKey::Pull(org, "send".into())]);
    let next = released.next_in.expect("the key's window frees at twenty");
    assert!(
        next > Duration::from_secs(8) && next <= Duration::from_secs(9),
        "{next:?}"
    );
    // Each moment wakes once.
    let again = leases
        .rate_releases(Some(released.checked_at))
        .await
        .unwrap();
    assert!(again.woken.is_empty());

    advance(&t.store, Duration::from_secs(10)).await;
    let released = leases.rate_releases(Some(again.checked_at)).await.unwrap();
    assert_eq!(released.woken, [WakeKey::Pull(org, "bill".into())]);
    assert_eq!(lease(leases, org, &["send", "bill"], 10).await.len(), 2);
}

async fn keys_take_turns_from_one_lease_to_the_next(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        key_concurrency: Some(5),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "tenants", settings).await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.extend(["a", "b", "c", "d", "e"].map(Some));
    }
    let jobs = create_keyed(leases, org, "tenants", &keys).await;
    let key_of = |id: Uuid| keys[jobs.iter().position(|j| *j == id).unwrap()].unwrap();
    let mut served = Vec::new();
    for _ in 0..5 {
        let got = lease(leases, org, &["call"], 2).await;
        let mut names: Vec<&str> = got.iter().map(|l| key_of(l.job.id)).collect();
        names.sort();
        served.push(names.join(""));
    }
    // Each lease goes on from the key after the last one served, round.
    assert_eq!(served, ["ab", "cd", "ae", "bc", "de"]);
}

async fn a_keyed_lifo_queue_serves_each_keys_newest_first_and_the_jobs_without_a_key(
    kind: StoreKind,
) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    let settings = QueueSettings {
        ordering: QueueOrdering::Lifo,
        key_concurrency: Some(2),
        ..QueueSettings::unlimited()
    };
    queue(&t.store, org, "tenants", settings).await;
    let (a, b) = (Some("a"), Some("b"));
    let jobs = create_keyed(leases, org, "tenants", &[a, a, a, b, None, None]).await;
    let hook = leases
        .create_job(org, push_in("tenants", "https://a.test/x"))
        .await
        .unwrap()
        .id;

    let got = lease(leases, org, &["call"], 20).await;
    let got_ids: HashSet<Uuid> = ids(&got).into_iter().collect();
    let expected: HashSet<Uuid> = [jobs[1], jobs[2], jobs[3], jobs[4], jobs[5]].into();
    assert_eq!(
        got_ids, expected,
        "a's two newest, b's one, and both jobs without a key"
    );
    let pushed = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert_eq!(
        pushed.iter().map(|(_, l)| l.job.id).collect::<Vec<_>>(),
        [hook],
        "push delivery takes the push job without a key"
    );
    ack_all(leases, org, &got).await;
    assert_eq!(ids(&lease(leases, org, &["call"], 20).await), [jobs[0]]);
}

/// A key limited to some queues leases their jobs only, from free and
/// controlled queues alike, however good the others' jobs are.
async fn a_lease_limited_to_some_queues_takes_jobs_of_those_only(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let leases = &t.leases;
    queue(&t.store, org, "mine", QueueSettings::unlimited()).await;
    queue(&t.store, org, "theirs", QueueSettings::unlimited()).await;
    queue(&t.store, org, "mine-limited", limited(1)).await;
    queue(&t.store, org, "theirs-limited", limited(1)).await;
    // Theirs first and better: a lease that ignored the limit would take
    // them.
    let mut theirs = Vec::new();
    for q in ["default", "theirs", "theirs-limited"] {
        let job = NewJob {
            priority: 9,
            ..in_queue(q, "h")
        };
        theirs.push(leases.create_job(org, job).await.unwrap().id);
    }
    let mine = create(leases, org, "mine", "h", 2).await;
    let mine_limited = create(leases, org, "mine-limited", "h", 2).await;

    let limit: Vec<String> = vec!["mine".into(), "mine-limited".into()];
    let takers = [Taker {
        worker_id: Some("w1".into()),
        max: 10,
    }];
    let dealt = leases
        .lease_batch(org, &["h".into()], Some(&limit), &takers)
        .await
        .unwrap();
    let mut got = ids(&dealt[0]);
    got.sort();
    // The limited queue's concurrency still holds: one of its two.
    let mut expected = vec![mine[0], mine[1], mine_limited[0]];
    expected.sort();
    assert_eq!(got, expected);

    // Nothing else of theirs is taken by a limited lease; an unlimited one
    // takes them.
    let dealt = leases
        .lease_batch(org, &["h".into()], Some(&limit), &takers)
        .await
        .unwrap();
    assert!(dealt[0].is_empty(), "{:?}", ids(&dealt[0]));
    let mut rest = ids(&lease(leases, org, &["h"], 10).await);
    rest.sort();
    theirs.sort();
    assert_eq!(rest, theirs);
}
