//! The store conformance suite: one set of tests that every store must
//! pass, run on SQLite and on PostgreSQL (`both_stores!`), each test with a
//! database of its own. Whatever the rest of the server relies on from the
//! store traits (`server/src/store/mod.rs`) is pinned here, one file per
//! concept:
//!
//! | file | pins |
//! |---|---|
//! | `store.rs` (this one) | [`Database`]: migrations and bootstrap under races, kind, ping, the clock and the test clock, changes from other processes, reopening, the embedded store's lock; [`AccountStore`]; [`SigningSecretStore`] and rotation windows; [`JobStore`]: creating and reading jobs, idempotency, pagination and filters, executions of a job and of a schedule; and that every trait method is called by the suite |
//! | `lease.rs` | [`LeaseStore`]: lease order, fencing, deadlines, retries and backoff, release, cancel and manual retry, concurrency, lost workers, hand-offs, promotion, batched and push leases, push answers |
//! | `store_guards.rs` | the state machine's guards: each status change applies from its transition's `from()` statuses only, and executions close with its statuses |
//! | `store_schedules.rs` | [`ScheduleStore`], and scheduler passes (`fire_schedules`): one job per due time, waiting fires |
//! | `store_workers.rs` | [`WorkerStore`]: sessions, heartbeats, reconnects |
//! | `store_retention.rs` | [`RetentionStore`]: which finished jobs are deleted and when, what never is, batches, the settings and what a migration gives them |
//! | `store_queues.rs` | [`QueueStore`]: each organization's `default` queue, settings, names unique per organization, pause and unblock, the queues the upgrade makes |
//! | `store_target_groups.rs` | [`TargetGroupStore`]: names unique per organization, renames, members as given, deletes, organizations apart |
//!
//! Time-dependent rules run on a store opened with the test clock, which the
//! tests move (`advance_clock`) instead of sleeping.
//!
//! [`Database`]: chronos_server::store::Database
//! [`AccountStore`]: chronos_server::store::AccountStore
//! [`SigningSecretStore`]: chronos_server::store::SigningSecretStore
//! [`JobStore`]: chronos_server::store::JobStore
//! [`LeaseStore`]: chronos_server::store::LeaseStore
//! [`ScheduleStore`]: chronos_server::store::ScheduleStore
//! [`WorkerStore`]: chronos_server::store::WorkerStore
//! [`RetentionStore`]: chronos_server::store::RetentionStore
//! [`QueueStore`]: chronos_server::store::QueueStore
//! [`TargetGroupStore`]: chronos_server::store::TargetGroupStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::{Delivery, ExecutionStatus, JobStatus, Scope, Timestamp};
use chronos_server::account::OrgId;
use chronos_server::account::keys::new_api_key;
use chronos_server::job::{NewJob, RunAt};
use chronos_server::store::sqlite::OpenMode;
use chronos_server::store::{
    Change, ChangeFn, Clock, ExecutionsOf, Inserted, JobFilter, PageRequest, ScheduleFilter,
    StoreError, WakeKey,
};
use chronos_test_support::both_stores;
use common::{Backing, StoreKind};
use conformance::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    migrations_apply_once_even_when_raced,
    bootstrap_creates_one_default_organization_even_when_raced,
    a_store_names_its_kind_and_answers_pings,
    a_production_store_reads_the_database_clock_and_refuses_to_move_it,
    the_test_clock_moves_for_every_handle_on_the_database,
    changes_reach_the_processes_that_watch,
    rows_are_stamped_by_the_stores_clock,
    jobs_survive_reopening_the_store,
    organizations_are_created_and_found_by_slug,
    api_keys_are_stored_looked_up_and_revoked,
    signing_secrets_are_stored_listed_and_kept_to_their_organization,
    a_rotated_secret_keeps_its_previous_value_until_the_window_ends,
    jobs_are_created_and_read_back,
    idempotency_conflicts_name_the_existing_job,
    lists_paginate_by_id_and_filter,
    executions_of_a_job_page_newest_first,
    executions_of_a_schedule_cover_every_job_it_created,
);

async fn migrations_apply_once_even_when_raced(kind: StoreKind) {
    let backing = Backing::new(kind).await;
    let open = || {
        backing
            .config()
            .open(OpenMode::Command, Clock::Database)
            .unwrap()
            .store
    };
    let (a, b) = (open(), open());
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
    let open = || {
        backing
            .config()
            .open(OpenMode::Command, Clock::Database)
            .unwrap()
            .store
    };
    let (a, b) = (open(), open());
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
    let org = a.organization_by_slug("default").await.unwrap().unwrap().id;
    assert_eq!(org, created[0].id);
    assert_eq!(a.list_api_keys(org).await.unwrap().len(), 1);
    assert!(a.bootstrap(key()).await.unwrap().is_none());
}

async fn a_store_names_its_kind_and_answers_pings(kind: StoreKind) {
    let (t, _) = plain(kind).await;
    let expected = match kind {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    };
    assert_eq!(t.store.kind(), expected);
    t.store.ping().await.expect("a store that answers");
}

/// Outside tests the clock is the database's: `now` reads it, and moving it
/// is refused.
async fn a_production_store_reads_the_database_clock_and_refuses_to_move_it(kind: StoreKind) {
    let (t, _) = plain(kind).await;
    let close_to_ours = |at: Timestamp| {
        let skew = (at.0 - chrono::Utc::now()).num_milliseconds().abs();
        assert!(
            skew < 5_000,
            "the database's clock is this machine's: {skew} ms off"
        );
    };
    close_to_ours(now(&t.store).await);
    let refused = t.store.advance_clock(Duration::from_secs(3600)).await;
    assert!(
        matches!(refused, Err(StoreError::NoTestClock)),
        "{refused:?}"
    );
    close_to_ours(now(&t.store).await);
}

/// `advance_clock` moves the clock of every handle on the database, by as
/// much as asked, and moves it again from where it is.
async fn the_test_clock_moves_for_every_handle_on_the_database(kind: StoreKind) {
    let (t, _) = clocked(kind).await;
    let second = reopen(&t, Clock::Test);
    let start = now(&t.store).await;
    assert!(
        (start.0 - chrono::Utc::now()).num_seconds().abs() < 5,
        "starts at the real time"
    );
    advance(&t.store, Duration::from_secs(3600)).await;
    let moved = now(&t.store).await;
    let by = millis_between(start, moved);
    assert!((3_600_000..3_610_000).contains(&by), "moved by {by} ms");
    let seen = now(&second.store).await;
    assert!(
        seen >= moved,
        "another handle reads the moved clock: {seen} < {moved}"
    );
    advance(&second.store, Duration::from_secs(90)).await;
    let again = millis_between(start, now(&t.store).await);
    assert!(
        (3_690_000..3_700_000).contains(&again),
        "moved by {again} ms"
    );
}

/// A store opened with the test clock tells its watcher when the clock
/// moves, whichever handle on the database moved it; PostgreSQL also tells
/// of jobs queued and cancelled by any process, while the embedded store,
/// one server per file, has nothing else to tell — and, on the database's
/// clock, nothing at all to follow.
async fn changes_reach_the_processes_that_watch(kind: StoreKind) {
    if kind == StoreKind::Sqlite {
        let (production, _) = plain(kind).await;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let ignore: ChangeFn = Arc::new(|_| {});
        assert!(production.store.watch_changes(ignore, stopped).is_none());
    }
    let (t, org) = clocked(kind).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let on_change: ChangeFn = Arc::new(move |change| {
        let _ = tx.send(change);
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = t
        .store
        .watch_changes(on_change, stopped)
        .expect("a store on the test clock follows it");
    let other = reopen(&t, Clock::Test);
    // Moved from another handle: heard once the watcher has started.
    clock_move_is_heard(&other.store, &mut rx).await;

    let job = other.leases.create_job(org, pull("h")).await.unwrap();
    other.leases.cancel_job(org, job.id).await.unwrap();
    match kind {
        StoreKind::Postgres => {
            let key = WakeKey::Pull(org, "h".into());
            next_change(
                &mut rx,
                "a job queued",
                |c| matches!(c, Change::Queued(Some(keys)) if keys.contains(&key)),
            )
            .await;
            next_change(&mut rx, "a job cancelled", |c| {
                *c == Change::Cancelled(job.id)
            })
            .await;
        }
        StoreKind::Sqlite => {
            advance(&other.store, Duration::from_secs(1)).await;
            next_change(&mut rx, "the clock moved", |c| {
                assert_eq!(*c, Change::ClockMoved, "nothing but the clock is told");
                true
            })
            .await;
        }
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the watcher stops when told")
        .unwrap();
}

/// Moves the clock by a second at a time until the watcher says so (it
/// may not have started following yet), for at most 20 s.
async fn clock_move_is_heard(
    store: &chronos_server::store::DynStore,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clock's moves are not heard"
        );
        advance(store, Duration::from_secs(1)).await;
        let heard = tokio::time::timeout(Duration::from_millis(100), async {
            while let Some(change) = rx.recv().await {
                if change == Change::ClockMoved {
                    return true;
                }
            }
            false
        })
        .await;
        if heard == Ok(true) {
            return;
        }
    }
}

/// Waits (at most 20 s) for a change that `wanted` accepts, skipping others.
async fn next_change(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>,
    what: &str,
    wanted: impl Fn(&Change) -> bool,
) {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(change) = rx.recv().await {
            if wanted(&change) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no change telling {what}");
}

/// Every time a store writes is read from its clock: on a test clock moved
/// an hour ahead, new rows (a job, its attempt, a secret, an organization
/// and its key) are stamped with the moved time, as due times and
/// deadlines are.
async fn rows_are_stamped_by_the_stores_clock(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    advance(&t.store, Duration::from_secs(3600)).await;
    let before = now(&t.store).await;
    let created = t.leases.create_job(org, pull("h")).await.unwrap();
    let leased = lease_one(&t.leases, org, "h", None).await;
    done(
        t.leases
            .ack_job(org, leased.lease.token, None)
            .await
            .unwrap(),
    );
    let secret = t
        .store
        .insert_signing_secret(org, Uuid::now_v7(), "s", "whsec_x")
        .await
        .unwrap();
    let other = t.store.create_organization("later", "Later").await.unwrap();
    let (key, _) = new_api_key(other.id, "k", vec![Scope::Admin]);
    let key = t.store.insert_api_key(key).await.unwrap();
    let after = now(&t.store).await;
    let run = &executions(&t.store, org, created.id).await[0];
    let stamps = [
        ("job run_at", created.run_at),
        ("job created_at", created.created_at),
        ("job updated_at", created.updated_at),
        (
            "lease expires_at - 30 s",
            Timestamp(leased.lease.expires_at.0 - chrono::TimeDelta::seconds(30)),
        ),
        ("execution started_at", run.started_at),
        ("execution finished_at", run.finished_at.unwrap()),
        ("secret created_at", secret.created_at),
        ("organization created_at", other.created_at),
        ("api key created_at", key.created_at),
    ];
    let off: Vec<String> = stamps
        .iter()
        .filter(|(_, at)| !(before.0 - chrono::TimeDelta::seconds(1) <= at.0 && *at <= after))
        .map(|(what, at)| format!("{what} {at}"))
        .collect();
    assert!(
        off.is_empty(),
        "stamped outside [{before}, {after}] (the store's clock): {off:?}; \
         the attempt acked at once lasted {:?} ms",
        run.duration_ms
    );
}

async fn jobs_survive_reopening_the_store(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let created = t.leases.create_job(org, pull("kept")).await.unwrap();
    let config = t.backing.config();
    drop(t.store);
    drop(t.leases);
    let reopened = config.open(OpenMode::Serve, Clock::Database).unwrap();
    assert_eq!(
        reopened.store.job(org, created.id).await.unwrap(),
        Some(created)
    );
}

#[tokio::test]
async fn only_one_server_may_open_an_embedded_store() {
    let backing = Backing::new(StoreKind::Sqlite).await;
    let config = backing.config();
    let serving = config.open(OpenMode::Serve, Clock::Database).unwrap();
    serving.store.migrate().await.unwrap();
    let second = config.open(OpenMode::Serve, Clock::Database);
    let err = second.err().expect("a second server is refused");
    assert!(matches!(err, StoreError::Locked { .. }));
    assert!(err.to_string().contains("already using"), "{err}");
    // Short commands work beside it.
    let cli = config.open(OpenMode::Command, Clock::Database).unwrap();
    let org = cli.store.create_organization("side", "Side").await.unwrap();
    assert_eq!(
        serving.store.organization_by_slug("side").await.unwrap(),
        Some(org)
    );
    drop(serving);
    config
        .open(OpenMode::Serve, Clock::Database)
        .expect("the lock goes with the server");
}

async fn organizations_are_created_and_found_by_slug(kind: StoreKind) {
    let (t, _) = plain(kind).await;
    let acme = t
        .store
        .create_organization("acme", "Acme Inc")
        .await
        .unwrap();
    assert_eq!(
        (acme.slug.as_str(), acme.name.as_str()),
        ("acme", "Acme Inc")
    );
    assert_eq!(
        t.store.organization_by_slug("acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(t.store.organization_by_slug("nobody").await.unwrap(), None);
    assert!(
        t.store.create_organization("acme", "Again").await.is_err(),
        "slugs are unique"
    );
    assert_eq!(
        t.store.organization_by_slug("acme").await.unwrap(),
        Some(acme)
    );
}

async fn api_keys_are_stored_looked_up_and_revoked(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let (record, _) = new_api_key(org, "ci", vec![Scope::JobsRead, Scope::JobsWrite]);
    let stored = t.store.insert_api_key(record.clone()).await.unwrap();
    assert_eq!(stored.scopes, vec![Scope::JobsRead, Scope::JobsWrite]);
    assert_eq!(stored.secret_sha256, record.secret_sha256);
    assert_eq!(stored.revoked_at, None);
    assert_eq!(
        t.store.api_key(&record.id).await.unwrap(),
        Some(stored.clone())
    );
    let listed = t.store.list_api_keys(org).await.unwrap();
    assert_eq!(listed.len(), 2, "the admin key and this one");
    assert_eq!(listed[1], stored, "oldest first");

    let other = other_org(&t.store).await;
    assert!(t.store.list_api_keys(other).await.unwrap().is_empty());
    assert_eq!(
        t.store.revoke_api_key(other, &record.id).await.unwrap(),
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
    assert_eq!(t.store.api_key(&record.id).await.unwrap(), Some(again));
    assert_eq!(t.store.api_key("0000000000000000").await.unwrap(), None);
}

async fn signing_secrets_are_stored_listed_and_kept_to_their_organization(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let a = t
        .store
        .insert_signing_secret(org, first, "a", "whsec_a")
        .await
        .unwrap();
    assert_eq!(
        (a.id, a.name.as_str(), a.secret.as_str()),
        (first, "a", "whsec_a")
    );
    assert_eq!(
        (
            a.previous_secret.clone(),
            a.previous_expires_at,
            a.rotated_at
        ),
        (None, None, None)
    );
    let b = t
        .store
        .insert_signing_secret(org, second, "b", "whsec_b")
        .await
        .unwrap();
    assert_eq!(
        t.store.signing_secret(org, first).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        t.store.list_signing_secrets(org).await.unwrap(),
        vec![b, a],
        "newest first"
    );

    let other = other_org(&t.store).await;
    assert_eq!(t.store.signing_secret(other, first).await.unwrap(), None);
    assert!(
        t.store
            .list_signing_secrets(other)
            .await
            .unwrap()
            .is_empty()
    );
    let window = Duration::from_secs(60);
    assert_eq!(
        t.store
            .rotate_signing_secret(other, first, "whsec_z", window)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .rotate_signing_secret(org, Uuid::now_v7(), "whsec_z", window)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .signing_secret(org, first)
            .await
            .unwrap()
            .unwrap()
            .secret,
        "whsec_a",
        "unchanged by another organization's rotation"
    );
}

/// After a rotation both values sign, the previous one until the window
/// ends by the store's clock; a second rotation retires the first value.
async fn a_rotated_secret_keeps_its_previous_value_until_the_window_ends(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let id = Uuid::now_v7();
    t.store
        .insert_signing_secret(org, id, "hook", "whsec_old")
        .await
        .unwrap();
    let before = now(&t.store).await;
    let rotated = t
        .store
        .rotate_signing_secret(org, id, "whsec_new", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the secret exists");
    let after = now(&t.store).await;
    assert_eq!(rotated.secret, "whsec_new");
    assert_eq!(rotated.previous_secret.as_deref(), Some("whsec_old"));
    let rotated_at = rotated.rotated_at.expect("rotated now");
    assert!(before <= rotated_at && rotated_at <= after, "{rotated_at}");
    let until = rotated.previous_expires_at.expect("a window");
    assert_eq!(
        millis_between(rotated_at, until),
        60_000,
        "the window starts at the rotation"
    );
    assert_eq!(
        t.store.signing_secret(org, id).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        rotated.signing_values(now(&t.store).await),
        ["whsec_new", "whsec_old"],
        "both sign within the window"
    );

    advance(&t.store, Duration::from_secs(59)).await;
    assert_eq!(
        rotated.signing_values(now(&t.store).await),
        ["whsec_new", "whsec_old"]
    );
    advance(&t.store, Duration::from_secs(2)).await;
    assert_eq!(
        rotated.signing_values(now(&t.store).await),
        ["whsec_new"],
        "the previous value stops signing when the window ends"
    );

    let again = t
        .store
        .rotate_signing_secret(org, id, "whsec_newer", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.previous_secret.as_deref(), Some("whsec_new"));
    assert_eq!(
        again.signing_values(now(&t.store).await),
        ["whsec_newer", "whsec_new"]
    );
    assert!(again.rotated_at.unwrap() > rotated_at);
}

async fn jobs_are_created_and_read_back(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let with = |name: &str, run_at| NewJob {
        payload: json!({"n": name}),
        run_at,
        ..pull("h")
    };
    let now = t
        .leases
        .create_job(org, with("now", RunAt::Now))
        .await
        .unwrap();
    assert_eq!(now.status, JobStatus::Queued);
    assert_eq!(now.payload, json!({"n": "now"}));
    assert_eq!(now.attempt, 0);
    assert_eq!(t.store.job(org, now.id).await.unwrap(), Some(now.clone()));

    let hour = Duration::from_secs(3600);
    let later = t
        .leases
        .create_job(org, with("later", RunAt::After(hour)))
        .await
        .unwrap();
    assert_eq!(later.status, JobStatus::Scheduled);
    let ahead = millis_between(later.created_at, later.run_at);
    assert!((ahead - 3_600_000).abs() < 1000, "{ahead} ms");

    let at = Timestamp::parse("2031-05-06T07:08:09.123Z").unwrap();
    let fixed = t
        .leases
        .create_job(org, with("at", RunAt::At(at)))
        .await
        .unwrap();
    assert_eq!(fixed.run_at, at);
    assert_eq!(fixed.status, JobStatus::Scheduled);

    let hook = NewJob {
        delivery: serde_json::from_value(
            json!({"type": "push", "http": {"url": "https://x.test/h", "headers": {"A": "b"}}}),
        )
        .unwrap(),
        ..push("push", "https://x.test/h")
    };
    let hook = t.leases.create_job(org, hook).await.unwrap();
    assert!(matches!(hook.delivery, Delivery::Push { .. }));
    assert_eq!(hook.handler, None);
    assert_eq!(t.store.job(org, hook.id).await.unwrap(), Some(hook));

    let other = other_org(&t.store).await;
    assert_eq!(t.store.job(other, now.id).await.unwrap(), None);
    assert_eq!(t.store.job(org, Uuid::now_v7()).await.unwrap(), None);
}

/// A key is held by one job of an organization: a second insert, alone or
/// later in the same batch, is refused naming the holder, and inserts
/// nothing; other organizations and jobs without a key are not affected.
async fn idempotency_conflicts_name_the_existing_job(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let keyed = |key: &str| NewJob {
        idempotency_key: Some(key.into()),
        ..pull("h")
    };
    let first = t.leases.create_job(org, keyed("k")).await.unwrap();
    match t.leases.create_job(org, keyed("k")).await {
        Err(StoreError::IdempotencyConflict { existing }) => assert_eq!(existing, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let batch = vec![keyed("b"), pull("h"), keyed("b"), keyed("k")];
    let ids: Vec<Uuid> = batch.iter().map(|j| j.id).collect();
    let answers = t.leases.create_jobs(org, batch).await.unwrap();
    assert_eq!(answers.len(), 4, "one answer per job, in order");
    assert!(matches!(&answers[0], Inserted::Created(j) if j.id == ids[0]));
    assert!(matches!(&answers[1], Inserted::Created(j) if j.id == ids[1]));
    assert_eq!(
        answers[2],
        Inserted::Conflict { existing: ids[0] },
        "the first of the batch keeps it"
    );
    assert_eq!(answers[3], Inserted::Conflict { existing: first.id });
    for refused in [ids[2], ids[3]] {
        assert_eq!(
            t.store.job(org, refused).await.unwrap(),
            None,
            "nothing inserted"
        );
    }
    let other = other_org(&t.store).await;
    t.leases.create_job(other, keyed("k")).await.unwrap();
    // Jobs without a key never conflict.
    t.leases.create_job(org, pull("h")).await.unwrap();
    t.leases.create_job(org, pull("h")).await.unwrap();
}

async fn lists_paginate_by_id_and_filter(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    for queue in ["even", "odd"] {
        chronos_test_support::make_queue(&t.store, org, queue).await;
    }
    let schedule_id = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..5 {
        let job = NewJob {
            queue: if i % 2 == 0 { "even" } else { "odd" }.into(),
            schedule_id: (i == 4).then_some(schedule_id),
            ..pull(if i < 3 { "a" } else { "b" })
        };
        ids.push(t.leases.create_job(org, job).await.unwrap().id);
    }
    let later = t
        .leases
        .create_job(org, later("a", Duration::from_secs(3600)))
        .await
        .unwrap();
    ids.push(later.id);
    ids.reverse();
    let list = |filter: JobFilter| {
        let store = t.store.clone();
        async move {
            all_pages(2, |page| {
                let (store, filter) = (store.clone(), filter.clone());
                async move { store.list_jobs(org, &filter, page).await.unwrap() }
            })
            .await
            .into_iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(JobFilter::default()).await,
        ids,
        "newest first, every page"
    );

    let of = |positions: &[usize]| positions.iter().map(|&i| ids[i]).collect::<Vec<_>>();
    // Newest first: later (a, default, scheduled), 4 (b, even, of the
    // schedule), 3 (b, odd), 2 (a, even), 1 (a, odd), 0 (a, even).
    let handler_a = JobFilter {
        handler: Some("a".into()),
        ..JobFilter::default()
    };
    assert_eq!(list(handler_a).await, of(&[0, 3, 4, 5]));
    let even = JobFilter {
        queue: Some("even".into()),
        ..JobFilter::default()
    };
    assert_eq!(list(even).await, of(&[1, 3, 5]));
    let one_off = JobFilter {
        schedule: ScheduleFilter::None,
        ..JobFilter::default()
    };
    assert_eq!(list(one_off).await, of(&[0, 2, 3, 4, 5]));
    let of_schedule = JobFilter {
        schedule: ScheduleFilter::Id(schedule_id),
        ..JobFilter::default()
    };
    assert_eq!(list(of_schedule).await, of(&[1]));
    let waiting = JobFilter {
        statuses: vec![JobStatus::Scheduled, JobStatus::Completed],
        ..JobFilter::default()
    };
    assert_eq!(list(waiting).await, of(&[0]));
    let combined = JobFilter {
        statuses: vec![JobStatus::Queued],
        handler: Some("a".into()),
        queue: Some("odd".into()),
        schedule: ScheduleFilter::None,
    };
    assert_eq!(list(combined).await, of(&[4]));

    let other = other_org(&t.store).await;
    let page = t
        .store
        .list_jobs(other, &JobFilter::default(), first(10))
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "{page:?}");
}

/// A job's attempts are listed newest first in keyset pages; another
/// organization's job, or none, gives `None`.
async fn executions_of_a_job_page_newest_first(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let created = t.leases.create_job(org, pull("h")).await.unwrap();
    assert_eq!(
        executions(&t.store, org, created.id).await,
        vec![],
        "none before a lease"
    );
    for _ in 0..2 {
        let l = lease_one(&t.leases, org, "h", Some("w")).await;
        let again = failure(true, Some(Duration::ZERO));
        done(t.leases.fail_job(org, l.lease.token, again).await.unwrap());
    }
    let l = lease_one(&t.leases, org, "h", Some("w")).await;
    done(t.leases.ack_job(org, l.lease.token, None).await.unwrap());

    let pages = all_pages(2, |page| {
        let store = t.store.clone();
        async move {
            store
                .executions(org, ExecutionsOf::Job(created.id), page)
                .await
                .unwrap()
                .expect("the job exists")
        }
    })
    .await;
    let attempts: Vec<u32> = pages.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [3, 2, 1], "newest first");
    assert!(pages.iter().all(|e| e.job_id == created.id));
    let statuses: Vec<ExecutionStatus> = pages.iter().map(|e| e.status).collect();
    use ExecutionStatus::{Completed, Failed};
    assert_eq!(statuses, [Completed, Failed, Failed]);

    let other = other_org(&t.store).await;
    let page = PageRequest {
        limit: 10,
        before: None,
    };
    assert_eq!(
        t.store
            .executions(other, ExecutionsOf::Job(created.id), page)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .executions(org, ExecutionsOf::Job(Uuid::now_v7()), page)
            .await
            .unwrap(),
        None
    );
}

/// A schedule's executions are those of every job it created, newest first,
/// in pages; not one-off jobs', not another schedule's; `None` for another
/// organization's schedule or none.
async fn executions_of_a_schedule_cover_every_job_it_created(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let at = now(&t.store).await;
    let schedule = t
        .store
        .insert_schedule(org, &every_minute("tick", at))
        .await
        .unwrap();
    let elsewhere = t
        .store
        .insert_schedule(org, &every_minute("tock", at))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for (schedule_id, handler) in [
        (Some(schedule.id), "tick"),
        (None, "tick"),
        (Some(elsewhere.id), "tock"),
        (Some(schedule.id), "tick"),
    ] {
        let job = NewJob {
            schedule_id,
            ..pull(handler)
        };
        let job = t.leases.create_job(org, job).await.unwrap();
        let l = lease_one(&t.leases, org, handler, None).await;
        assert_eq!(l.job.id, job.id);
        done(t.leases.ack_job(org, l.lease.token, None).await.unwrap());
        if schedule_id == Some(schedule.id) {
            expected.push(job.id);
        }
    }
    expected.reverse();
    let listed = all_pages(1, |page| {
        let store = t.store.clone();
        async move {
            store
                .executions(org, ExecutionsOf::Schedule(schedule.id), page)
                .await
                .unwrap()
                .expect("the schedule exists")
        }
    })
    .await;
    let jobs: Vec<Uuid> = listed.iter().map(|e| e.job_id).collect();
    assert_eq!(jobs, expected, "its jobs' attempts, newest first");

    let other = other_org(&t.store).await;
    let page = first(10);
    let of = ExecutionsOf::Schedule(schedule.id);
    assert_eq!(t.store.executions(other, of, page).await.unwrap(), None);
    let none = ExecutionsOf::Schedule(Uuid::now_v7());
    assert_eq!(t.store.executions(org, none, page).await.unwrap(), None);
}

/// Every method of every store trait is called somewhere in the suite: a
/// method added to a trait without a conformance test fails here. (It
/// reads the trait definitions and the suite's sources; a name is taken as
/// called where `.name(` appears.)
#[test]
fn every_store_trait_method_is_called_by_the_suite() {
    let traits = [
        include_str!("../src/store/database.rs"),
        include_str!("../src/store/accounts.rs"),
        include_str!("../src/store/people.rs"),
        include_str!("../src/store/signing_secrets.rs"),
        include_str!("../src/store/jobs.rs"),
        include_str!("../src/store/leases.rs"),
        include_str!("../src/store/schedules.rs"),
        include_str!("../src/store/workers.rs"),
        include_str!("../src/store/retention.rs"),
        include_str!("../src/store/queues.rs"),
        include_str!("../src/store/target_groups.rs"),
        include_str!("../src/store/endpoints.rs"),
        include_str!("../src/store/plans.rs"),
        include_str!("../src/store/domains.rs"),
    ];
    let suite = [
        include_str!("store.rs"),
        include_str!("lease.rs"),
        include_str!("store_guards.rs"),
        include_str!("store_schedules.rs"),
        include_str!("store_workers.rs"),
        include_str!("store_retention.rs"),
        include_str!("store_queues.rs"),
        include_str!("store_flow.rs"),
        include_str!("store_target_groups.rs"),
        include_str!("store_endpoints.rs"),
        include_str!("store_accounts.rs"),
        include_str!("store_plans.rs"),
        include_str!("store_domains.rs"),
        include_str!("common/conformance.rs"),
    ]
    .concat();
    let mut methods = Vec::new();
    for source in traits {
        let mut in_trait = false;
        for line in source.lines() {
            if line.starts_with("pub trait ") {
                in_trait = true;
            } else if line == "}" {
                in_trait = false;
            } else if in_trait {
                let line = line.trim_start();
                let Some(rest) = line.strip_prefix("async fn ").or(line.strip_prefix("fn ")) else {
                    continue;
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                methods.push(name);
            }
        }
    }
    assert!(methods.len() >= 46, "the traits were read: {methods:?}");
    let unique: HashSet<&String> = methods.iter().collect();
    assert_eq!(unique.len(), methods.len(), "one name per method");
    let missing: Vec<&String> = methods
        .iter()
        .filter(|m| !suite.contains(&format!(".{m}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "store methods no conformance test calls: {missing:?}"
    );
}
