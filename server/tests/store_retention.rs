//! [`RetentionStore`] on both stores: which finished jobs are deleted and
//! when (by the test clock, which the tests move), what is never deleted,
//! batches, the settings, and what a store gets on migration — the
//! defaults when new, nothing deleted when it existed before retention.
//!
//! [`RetentionStore`]: chronos_server::store::RetentionStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::JobStatus;
use chronos_server::account::OrgId;
use chronos_server::job::NewJob;
use chronos_server::store::sqlite::OpenMode;
use chronos_server::store::{
    AttemptEnd, CancelOutcome, Clock, Cutoffs, DynStore, Outcome, RetentionPeriods,
};
use chronos_test_support::both_stores;
use common::{Backing, StoreKind, TestStore, before_retention, migrate_before_retention, upgrade};
use conformance::*;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    completed_jobs_go_with_their_executions_after_seven_days,
    failed_and_cancelled_jobs_stay_thirty_days,
    unfinished_jobs_are_never_deleted,
    a_schedules_last_hundred_jobs_stay,
    batches_delete_the_oldest_first_and_at_most_their_size,
    settings_round_trip_and_forever_keeps_everything,
    a_store_from_before_retention_keeps_everything_a_new_one_gets_the_defaults,
    an_unpublished_outcome_stays_and_fan_outs_go_after_their_deliveries,
);

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// Leases and acks every queued job of `handler`; returns their ids.
async fn complete_all(t: &TestStore, org: OrgId, handler: &str) -> Vec<Uuid> {
    let mut ids = Vec::new();
    loop {
        let leased = t
            .leases
            .lease_jobs(org, &[handler.to_string()], 100, None)
            .await
            .unwrap();
        if leased.is_empty() {
            return ids;
        }
        let acks = leased
            .iter()
            .map(|l| AttemptEnd {
                org,
                token: l.lease.token,
                outcome: Outcome::Ack(None),
                response: None,
                whole_job: false,
            })
            .collect();
        for outcome in t.leases.end_attempts(acks).await.unwrap() {
            done(outcome);
        }
        ids.extend(leased.iter().map(|l| l.job.id));
    }
}

/// A job of `handler`, created and completed now.
async fn completed(t: &TestStore, org: OrgId, handler: &str) -> Uuid {
    let id = t.leases.create_job(org, pull(handler)).await.unwrap().id;
    assert_eq!(complete_all(t, org, handler).await, [id]);
    id
}

async fn exists(t: &TestStore, org: OrgId, id: Uuid) -> bool {
    t.store.job(org, id).await.unwrap().is_some()
}

/// The rows `executions` holds for `job`, read past the store's traits
/// (which answer nothing for a job that is gone): none may outlive it.
async fn execution_rows(t: &TestStore, job: Uuid) -> i64 {
    match &t.backing {
        Backing::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("chronos.db")).unwrap();
            conn.query_row(
                "SELECT count(*) FROM executions WHERE job_id = ?1",
                [job.to_string()],
                |r| r.get(0),
            )
            .unwrap()
        }
        Backing::Postgres(db) => {
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query_one("SELECT count(*) FROM executions WHERE job_id = $1", &[&job])
                .await
                .unwrap()
                .get(0)
        }
        Backing::PostgresUrl(_) => unreachable!("the suite makes its own databases"),
    }
}

/// One deletion batch with the cutoffs of now, read as a retention pass
/// reads them (`chronos_server::retention::pass`).
async fn delete_expired(store: &DynStore, batch: u32) -> u64 {
    let periods = store.retention().await.unwrap().periods;
    match Cutoffs::at(store.now().await.unwrap(), &periods) {
        Some(cutoffs) => store.delete_expired(&cutoffs, batch).await.unwrap(),
        None => 0,
    }
}

/// A fresh store has the defaults: a completed job stays for 7 days after
/// it finished, then goes, and its executions with it; one finished later
/// stays.
async fn completed_jobs_go_with_their_executions_after_seven_days(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let old = completed(&t, org, "old").await;
    assert_eq!(execution_rows(&t, old).await, 1);
    advance(&t.store, 7 * DAY - MINUTE).await;
    assert_eq!(delete_expired(&t.store, 500).await, 0);
    let newer = completed(&t, org, "newer").await;
    advance(&t.store, 2 * MINUTE).await;

    assert_eq!(delete_expired(&t.store, 500).await, 1);
    assert!(!exists(&t, org, old).await, "7 days and a minute old");
    assert_eq!(execution_rows(&t, old).await, 0, "its executions went too");
    assert!(exists(&t, org, newer).await, "a minute old");
    assert_eq!(execution_rows(&t, newer).await, 1);
    assert_eq!(delete_expired(&t.store, 500).await, 0);
}

/// Failed and cancelled jobs stay 30 days by default, while a completed job
/// of the same age is gone.
async fn failed_and_cancelled_jobs_stay_thirty_days(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    t.leases.create_job(org, pull("fails")).await.unwrap();
    let leased = lease_one(&t.leases, org, "fails", None).await;
    let failed = done(
        t.leases
            .fail_job(org, leased.lease.token, failure(false, None))
            .await
            .unwrap(),
    );
    assert_eq!(failed.status, JobStatus::Failed);
    let queued = t.leases.create_job(org, pull("cancelled")).await.unwrap();
    let cancelled = t.leases.cancel_job(org, queued.id).await.unwrap();
    assert!(
        matches!(cancelled, CancelOutcome::Cancelled(..)),
        "{cancelled:?}"
    );
    let done_id = completed(&t, org, "completed").await;

    advance(&t.store, 30 * DAY - MINUTE).await;
    assert_eq!(delete_expired(&t.store, 500).await, 1);
    assert!(!exists(&t, org, done_id).await);
    assert!(exists(&t, org, failed.id).await, "failed: 30 days");
    assert!(exists(&t, org, queued.id).await, "cancelled: 30 days");

    advance(&t.store, 2 * MINUTE).await;
    assert_eq!(delete_expired(&t.store, 500).await, 2);
    assert!(!exists(&t, org, failed.id).await);
    assert!(!exists(&t, org, queued.id).await);
}

/// Scheduled, queued and running jobs stay however old they are.
async fn unfinished_jobs_are_never_deleted(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let scheduled = t
        .leases
        .create_job(org, later("later", 1000 * DAY))
        .await
        .unwrap();
    let queued = t.leases.create_job(org, pull("queued")).await.unwrap();
    t.leases.create_job(org, pull("running")).await.unwrap();
    let running = lease_one(&t.leases, org, "running", None).await.job;
    // Every period as short as it may be.
    let minute = Some(MINUTE);
    t.store
        .set_retention(RetentionPeriods {
            completed: minute,
            failed: minute,
            cancelled: minute,
        })
        .await
        .unwrap();

    advance(&t.store, 400 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 0);
    for (id, status) in [
        (scheduled.id, JobStatus::Scheduled),
        (queued.id, JobStatus::Queued),
        (running.id, JobStatus::Running),
    ] {
        assert_eq!(job(&t.store, org, id).await.status, status);
    }
}

/// However old, the 100 newest jobs of a schedule stay, so its history and
/// its last run can be read; older ones go, as one-off jobs do.
async fn a_schedules_last_hundred_jobs_stay(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let tick = every_minute("tick", now(&t.store).await);
    let tock = every_minute("tock", now(&t.store).await);
    for schedule in [&tick, &tock] {
        t.store.insert_schedule(org, schedule).await.unwrap();
    }
    let runs = |schedule: &chronos_server::schedule::ScheduleRecord, n: usize| -> Vec<NewJob> {
        (0..n)
            .map(|_| NewJob {
                schedule_id: Some(schedule.id),
                ..pull(&schedule.name)
            })
            .collect()
    };
    t.leases.create_jobs(org, runs(&tick, 105)).await.unwrap();
    t.leases.create_jobs(org, runs(&tock, 3)).await.unwrap();
    let mut ticks = complete_all(&t, org, "tick").await;
    ticks.sort();
    let tocks = complete_all(&t, org, "tock").await;
    let one_off = completed(&t, org, "one-off").await;

    advance(&t.store, 8 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 6);
    for &id in &ticks[..5] {
        assert!(!exists(&t, org, id).await, "one of the 5 oldest ticks");
    }
    for &id in ticks[5..].iter().chain(&tocks) {
        assert!(exists(&t, org, id).await, "one of a schedule's 100 newest");
    }
    assert!(!exists(&t, org, one_off).await);
    assert_eq!(delete_expired(&t.store, 500).await, 0);
}

/// A batch deletes at most its size, oldest first; a short batch says
/// nothing is left.
async fn batches_delete_the_oldest_first_and_at_most_their_size(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let jobs: Vec<NewJob> = (0..5).map(|_| pull("h")).collect();
    t.leases.create_jobs(org, jobs).await.unwrap();
    let mut ids = complete_all(&t, org, "h").await;
    ids.sort();
    advance(&t.store, 8 * DAY).await;

    assert_eq!(delete_expired(&t.store, 2).await, 2);
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(exists(&t, org, id).await, i >= 2, "job {i}");
    }
    assert_eq!(delete_expired(&t.store, 2).await, 2);
    assert_eq!(delete_expired(&t.store, 2).await, 1);
    assert_eq!(delete_expired(&t.store, 2).await, 0);
}

/// The periods read back as written, stamped by the store's clock; with
/// every period forever, nothing is deleted, however old.
async fn settings_round_trip_and_forever_keeps_everything(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let fresh = t.store.retention().await.unwrap();
    assert_eq!(fresh.periods, RetentionPeriods::DEFAULT);
    assert_eq!(fresh.set_at, None, "no operator chose them");

    let before = now(&t.store).await;
    let set = t
        .store
        .set_retention(RetentionPeriods::FOREVER)
        .await
        .unwrap();
    assert_eq!(set.periods, RetentionPeriods::FOREVER);
    let set_at = set.set_at.expect("stamped");
    assert!(
        millis_between(before, set_at).abs() < 5_000,
        "{before} {set_at}"
    );
    assert_eq!(t.store.retention().await.unwrap(), set);

    let id = completed(&t, org, "kept").await;
    advance(&t.store, 1000 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 0);
    assert!(exists(&t, org, id).await);

    let mixed = RetentionPeriods {
        completed: Some(Duration::from_secs(90)),
        failed: None,
        cancelled: Some(400 * DAY),
    };
    assert_eq!(t.store.set_retention(mixed).await.unwrap().periods, mixed);
    assert_eq!(t.store.retention().await.unwrap().periods, mixed);
    assert_eq!(delete_expired(&t.store, 500).await, 1);
    assert!(!exists(&t, org, id).await);
}

/// A store an older Chronos made keeps every job after the upgrade, until
/// an operator sets periods; a store created with retention gets the
/// defaults, whether one process migrates it or two race.
async fn a_store_from_before_retention_keeps_everything_a_new_one_gets_the_defaults(
    kind: StoreKind,
) {
    let old = Backing::new(kind).await;
    migrate_before_retention(&old, kind).await;
    let store = upgrade(&old, before_retention(kind) + 1).await;
    let upgraded = store.retention().await.unwrap();
    assert_eq!(upgraded.periods, RetentionPeriods::FOREVER);
    assert_eq!(upgraded.set_at, None);
    assert_eq!(delete_expired(&store, 500).await, 0);

    let new = Backing::new(kind).await;
    let open = || {
        new.config()
            .open(OpenMode::Command, Clock::Database)
            .unwrap()
            .store
    };
    let (a, b) = (open(), open());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    for store in [a, b] {
        let created = store.retention().await.unwrap();
        assert_eq!(created.periods, RetentionPeriods::DEFAULT);
        assert_eq!(created.set_at, None);
    }
}

/// A delivery whose outcome (a callback, its fan-out's count) is still to
/// publish stays past its period; published, it goes. A fan-out goes once
/// the longest period has passed since its last delivery ended.
async fn an_unpublished_outcome_stays_and_fan_outs_go_after_their_deliveries(kind: StoreKind) {
    use chronos_server::job::Follow;
    use chronos_server::store::FanOutCreated;
    use chronos_server::target_group::NewFanOut;

    let (t, org) = clocked(kind).await;
    let fan_out = NewFanOut {
        id: Uuid::now_v7(),
        group_id: Uuid::now_v7(),
        queue: "default".into(),
        callback_queue_id: None,
    };
    let job = NewJob {
        follow: Follow {
            fan_out_id: Some(fan_out.id),
            callback_queue_id: None,
            every_attempt: false,
        },
        ..push("member", "https://a.example.test/hook")
    };
    let FanOutCreated::Created(jobs) = t
        .leases
        .create_fan_out(org, fan_out.clone(), vec![job])
        .await
        .unwrap()
    else {
        panic!("not created");
    };
    let leased = t.leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    done(
        t.leases
            .ack_job(org, leased[0].1.lease.token, None)
            .await
            .unwrap(),
    );
    advance(&t.store, 8 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 0, "not yet published");
    assert!(exists(&t, org, jobs[0].id).await);
    assert_eq!(t.leases.publish_outcomes(100).await.unwrap().taken, 1);
    assert_eq!(delete_expired(&t.store, 500).await, 1, "the delivery");
    assert!(!exists(&t, org, jobs[0].id).await);
    assert!(t.store.fan_out(org, fan_out.id).await.unwrap().is_some());
    // Failed deliveries stay 30 days: so does the fan-out, from when it was
    // counted to its end (when its outcome was published).
    advance(&t.store, 29 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 0);
    advance(&t.store, 2 * DAY).await;
    assert_eq!(delete_expired(&t.store, 500).await, 1, "the fan-out");
    assert!(t.store.fan_out(org, fan_out.id).await.unwrap().is_none());
}
