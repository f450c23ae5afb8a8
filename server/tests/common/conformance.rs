//! Helpers of the store conformance suite (`store.rs`, `lease.rs` and the
//! `store_*.rs` files): stores on the test clock, jobs to create, and short
//! ways to lease, fail and read back. Declared by each of those files with
//! `#[path = "common/conformance.rs"] mod conformance;`.
#![allow(dead_code)]

use crate::common::{StoreKind, TestStore};
use chronos_proto::{
    CatchUp, Delay, Delivery, Execution, LeasedJob, Overlap, ScheduleStatus, TimeUnit, Timestamp,
};
use chronos_server::account::OrgId;
use chronos_server::job::state::Failure;
use chronos_server::job::{NewJob, RunAt};
use chronos_server::schedule::{JobTemplate, ScheduleRecord, TimingSpec};
use chronos_server::store::sqlite::OpenMode;
use chronos_server::store::{
    Clock, DynLeases, DynStore, ExecutionsOf, LeaseOutcome, Opened, PageRequest, PushSlots,
};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// The grace for WebSocket workers that went away, as the sweeper passes it.
pub const GRACE: Duration = Duration::from_secs(15);

/// A fresh store on the test clock, and its default organization. Every
/// time-dependent rule is tested on one: the test moves the clock
/// (`t.store.advance_clock`) instead of waiting.
pub async fn clocked(kind: StoreKind) -> (TestStore, OrgId) {
    let t = TestStore::with_clock(kind, Clock::Test).await;
    let org = t.default_org().await;
    (t, org)
}

/// A fresh store on the database's own clock, and its default organization.
pub async fn plain(kind: StoreKind) -> (TestStore, OrgId) {
    let t = TestStore::new(kind).await;
    let org = t.default_org().await;
    (t, org)
}

/// Another handle on the same database, as a second server process would
/// open it (a second pool, or a second SQLite connection to the file).
pub fn reopen(t: &TestStore, clock: Clock) -> Opened {
    t.backing
        .config()
        .open(OpenMode::Command, clock)
        .expect("opening the store a second time")
}

/// Moves the test clock.
pub async fn advance(store: &DynStore, by: Duration) {
    store
        .advance_clock(by)
        .await
        .expect("moving the test clock");
}

/// The store's clock now.
pub async fn now(store: &DynStore) -> Timestamp {
    store.now().await.expect("reading the store's clock")
}

/// `at - from`, in milliseconds.
pub fn millis_between(from: Timestamp, at: Timestamp) -> i64 {
    (at.0 - from.0).num_milliseconds()
}

/// A second organization.
pub async fn other_org(store: &DynStore) -> OrgId {
    store
        .create_organization("other", "Other")
        .await
        .expect("creating another organization")
        .id
}

/// A pull job for `handler`, due now, with the API's defaults.
pub fn pull(handler: &str) -> NewJob {
    crate::common::pull_job(handler)
}

/// A push job called `name` for `url`, due now.
pub fn push(name: &str, url: &str) -> NewJob {
    NewJob {
        handler: None,
        delivery: serde_json::from_value(json!({"type": "push", "http": {"url": url}}))
            .expect("a push delivery"),
        ..crate::common::pull_job(name)
    }
}

/// A pull job for `handler`, due after `delay`.
pub fn later(handler: &str, delay: Duration) -> NewJob {
    NewJob {
        run_at: RunAt::After(delay),
        ..pull(handler)
    }
}

/// Whether `job` is delivered by push.
pub fn is_push(job: &NewJob) -> bool {
    matches!(job.delivery, Delivery::Push { .. })
}

/// The push dispatcher's free slots.
pub fn slots(max: u32, per_host: u32, busy: &[(&str, u32)]) -> PushSlots {
    PushSlots {
        max,
        per_host,
        busy: busy.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
        after: None,
        lease_margin: Duration::from_secs(5),
    }
}

/// A worker's report of a failed attempt.
pub fn failure(retryable: bool, retry_in: Option<Duration>) -> Failure {
    Failure {
        error: "it broke".into(),
        retryable,
        retry_in,
    }
}

/// The value of a `Done` answer; anything else fails the test.
pub fn done<T: std::fmt::Debug>(outcome: LeaseOutcome<T>) -> T {
    match outcome {
        LeaseOutcome::Done(v) => v,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// Leases the one queued job of `handler` as worker `worker`.
pub async fn lease_one(
    leases: &DynLeases,
    org: OrgId,
    handler: &str,
    worker: Option<&str>,
) -> LeasedJob {
    let mut got = leases
        .lease_jobs(org, &[handler.to_string()], 1, worker)
        .await
        .expect("leasing");
    assert_eq!(got.len(), 1, "expected one job of {handler}");
    got.remove(0)
}

/// The first page of up to `limit` rows.
pub fn first(limit: u32) -> PageRequest {
    PageRequest {
        limit,
        before: None,
    }
}

/// Every execution of a job, newest first.
pub async fn executions(store: &DynStore, org: OrgId, job: Uuid) -> Vec<Execution> {
    store
        .executions(org, ExecutionsOf::Job(job), first(1000))
        .await
        .expect("listing executions")
        .expect("the job exists")
        .items
}

/// A job as the store has it now.
pub async fn job(store: &DynStore, org: OrgId, id: Uuid) -> chronos_proto::Job {
    store
        .job(org, id)
        .await
        .expect("reading the job")
        .expect("the job exists")
}

/// Follows keyset pages of `limit` to the end, collecting every item.
pub async fn all_pages<T, F, Fut>(limit: u32, mut page: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = chronos_server::store::Page<T>>,
{
    let mut items = Vec::new();
    let mut before = None;
    loop {
        let got = page(PageRequest { limit, before }).await;
        assert!(
            got.items.len() <= limit as usize,
            "a page holds at most its limit"
        );
        items.extend(got.items);
        match got.next {
            Some(next) => before = Some(next),
            None => return items,
        }
    }
}

/// `t` to the whole second below: a time both stores keep exactly (SQLite
/// keeps milliseconds, PostgreSQL microseconds).
pub fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp(chrono::DateTime::from_timestamp(t.0.timestamp(), 0).expect("a representable time"))
}

/// `t` plus `by`.
pub fn plus(t: Timestamp, by: Duration) -> Timestamp {
    Timestamp(t.0 + chrono::TimeDelta::from_std(by).expect("a short duration"))
}

/// An active schedule due every minute from `anchor` (first at anchor +
/// 1 min), whose jobs are pull jobs of handler `name`; catch-up `all`,
/// overlap `allow`. Its times are whole seconds, so it reads back equal.
pub fn every_minute(name: &str, anchor: Timestamp) -> ScheduleRecord {
    let anchor = whole_second(anchor);
    ScheduleRecord {
        id: Uuid::now_v7(),
        name: name.to_string(),
        status: ScheduleStatus::Active,
        timing: TimingSpec::Interval {
            interval: Delay {
                value: 1,
                unit: TimeUnit::Minute,
            },
            preset: None,
        },
        timezone: "UTC".into(),
        template: JobTemplate {
            handler: Some(name.to_string()),
            payload: json!({"from": name}),
            delivery: Delivery::Pull,
            queue: "default".into(),
            concurrency_key: None,
            priority: 0,
            max_retries: 0,
            timeout_seconds: 30,
        },
        catch_up: CatchUp::All,
        overlap: Overlap::Allow,
        failure_notify: false,
        anchor_at: anchor,
        next_run_at: Some(plus(anchor, Duration::from_secs(60))),
        waiting_fire_at: None,
        last_run_at: None,
        last_job_id: None,
        last_status: None,
        // What the store keeps on insert: the anchor (the API's "now").
        created_at: anchor,
        updated_at: anchor,
    }
}
