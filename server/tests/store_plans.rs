//! Store conformance, plans (`PlanStore`, and the counting `LeaseStore`
//! does): every organization starts on `unlimited`, which counts nothing;
//! another plan's quota refuses what doesn't fit, each item of a batch on
//! its own, keeps idempotency answers, caps retries, and is exact across
//! two handles on one database racing for its last room; the day and the
//! month roll over by the store's clock; fan-outs are all or nothing;
//! plans in use are kept. On both stores, on the test clock.

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_server::account::OrgId;
use chronos_server::account::plans::{Plan, UNLIMITED, Window};
use chronos_server::job::NewJob;
use chronos_server::store::{DynStore, Inserted, PlanDeleted, StoreError};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::time::Duration;

both_stores!(
    every_organization_starts_unlimited_and_counts_nothing,
    a_quota_refuses_what_does_not_fit_and_keeps_idempotency,
    retries_are_capped_by_the_plan,
    the_day_and_the_month_roll_over_by_the_stores_clock,
    two_handles_racing_never_overshoot_the_quota,
    a_fan_out_past_the_quota_inserts_nothing,
    plans_are_kept_while_organizations_are_on_them,
);

fn limited(name: &str, per_day: Option<u64>, per_month: Option<u64>) -> Plan {
    Plan {
        name: name.into(),
        messages_per_day: per_day,
        messages_per_month: per_month,
        min_interval_seconds: None,
        max_retries: None,
        verify_domains: false,
    }
}

async fn on_plan(store: &DynStore, org: OrgId, plan: Plan) {
    store.put_plan(&plan).await.unwrap();
    assert!(store.set_organization_plan(org, &plan.name).await.unwrap());
}

fn created(outcomes: &[Inserted]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Inserted::Created(_)))
        .count()
}

async fn every_organization_starts_unlimited_and_counts_nothing(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    assert_eq!(
        t.store.organization_plan(org).await.unwrap().name,
        UNLIMITED
    );
    let names: Vec<String> = (t.store.list_plans().await.unwrap().into_iter())
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["business", "free", "pro", "starter", "unlimited"]);
    let free = t.store.plan("free").await.unwrap().unwrap();
    assert_eq!(
        (
            free.messages_per_day,
            free.messages_per_month,
            free.min_interval_seconds,
            free.max_retries,
            free.verify_domains
        ),
        (Some(500), Some(15_000), Some(900), Some(1), true)
    );
    let jobs: Vec<NewJob> = (0..20).map(|_| pull("h")).collect();
    let done = t.leases.create_jobs(org, jobs).await.unwrap();
    assert_eq!(created(&done), 20);
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!((usage.day, usage.month), (0, 0), "unlimited counts nothing");
}

async fn a_quota_refuses_what_does_not_fit_and_keeps_idempotency(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, limited("small", Some(3), Some(100))).await;
    let keyed = NewJob {
        idempotency_key: Some("k1".into()),
        ..pull("h")
    };
    let first = t.leases.create_job(org, keyed.clone()).await.unwrap();

    // Five more: two fit; the rest are refused, each with the window.
    let jobs: Vec<NewJob> = (0..5).map(|_| pull("h")).collect();
    let done = t.leases.create_jobs(org, jobs).await.unwrap();
    assert_eq!(created(&done), 2);
    for refused in &done[2..] {
        let Inserted::OverQuota(q) = refused else {
            panic!("expected a refusal, got {refused:?}")
        };
        assert_eq!((q.window, q.limit, q.used), (Window::Day, 3, 3));
        assert_eq!(q.message(), "Daily message limit reached");
        assert!(q.resets_at.0 > now(&t.store).await.0);
        assert!(q.seconds_left >= 1 && q.seconds_left <= 86_400);
    }
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!((usage.day, usage.month), (3, 3));

    // A retry of an accepted job still finds it, quota or not.
    let again = NewJob {
        id: uuid::Uuid::now_v7(),
        ..keyed
    };
    match t.leases.create_job(org, again).await {
        Err(StoreError::IdempotencyConflict { existing }) => assert_eq!(existing, first.id),
        other => panic!("expected the first job, got {other:?}"),
    }
    match t.leases.create_job(org, pull("h")).await {
        Err(StoreError::QuotaExceeded(q)) => assert_eq!(q.used, 3),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Another organization's quota is its own.
    let other = other_org(&t.store).await;
    let done = t.leases.create_jobs(other, vec![pull("h")]).await.unwrap();
    assert_eq!(created(&done), 1);
}

async fn retries_are_capped_by_the_plan(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let plan = Plan {
        max_retries: Some(1),
        ..limited("capped", None, None)
    };
    on_plan(&t.store, org, plan).await;
    let asked = NewJob {
        max_retries: Some(7),
        ..pull("h")
    };
    let job = t.leases.create_job(org, asked).await.unwrap();
    assert_eq!(job.max_retries, 1, "the value used is shown");
    // The queue's default (3) is capped too.
    let job = t.leases.create_job(org, pull("h")).await.unwrap();
    assert_eq!(job.max_retries, 1);
    let fewer = NewJob {
        max_retries: Some(0),
        ..pull("h")
    };
    assert_eq!(
        t.leases.create_job(org, fewer).await.unwrap().max_retries,
        0
    );
    // A plan that limits no count touches no counter.
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!((usage.day, usage.month), (0, 0));
}

async fn the_day_and_the_month_roll_over_by_the_stores_clock(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, limited("rolling", Some(2), Some(3))).await;
    // To the first moment of a month, so the test knows where it is.
    let at = now(&t.store).await;
    let next_month = Window::Month.resets_at(at);
    advance(&t.store, (next_month.0 - at.0).to_std().unwrap()).await;

    let two: Vec<NewJob> = (0..3).map(|_| pull("h")).collect();
    assert_eq!(created(&t.leases.create_jobs(org, two).await.unwrap()), 2);
    // The next day: one more fits the month.
    advance(&t.store, Duration::from_secs(86_400)).await;
    let done = t
        .leases
        .create_jobs(org, (0..2).map(|_| pull("h")).collect())
        .await
        .unwrap();
    assert_eq!(created(&done), 1);
    let Inserted::OverQuota(q) = &done[1] else {
        panic!("expected a refusal, got {:?}", done[1])
    };
    assert_eq!((q.window, q.limit, q.used), (Window::Month, 3, 3));
    assert_eq!(q.message(), "Monthly message limit reached");
    assert_eq!(q.resets_at, Window::Month.resets_at(now(&t.store).await));
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!((usage.day, usage.month), (1, 3));
    // The next month starts from nothing.
    advance(&t.store, Duration::from_secs(31 * 86_400)).await;
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!((usage.day, usage.month), (0, 0));
    assert!(t.leases.create_job(org, pull("h")).await.is_ok());
}

async fn two_handles_racing_never_overshoot_the_quota(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, limited("race", Some(25), None)).await;
    let second = reopen(&t, chronos_server::store::Clock::Test);
    let handles = [t.leases.clone(), second.leases.clone()];
    let mut racing = Vec::new();
    for i in 0..20 {
        let leases = handles[i % 2].clone();
        racing.push(tokio::spawn(async move {
            let jobs: Vec<NewJob> = (0..3).map(|_| pull("h")).collect();
            leases.create_jobs(org, jobs).await.unwrap()
        }));
    }
    let mut made = 0;
    for r in racing {
        made += created(&r.await.unwrap());
    }
    assert_eq!(made, 25, "exactly the quota, no more and none lost");
    assert_eq!(t.store.usage(org).await.unwrap().day, 25);
}

async fn a_fan_out_past_the_quota_inserts_nothing(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, limited("fans", Some(2), None)).await;
    let group = t
        .store
        .create_target_group(org, uuid::Uuid::now_v7(), "g")
        .await
        .unwrap()
        .expect("a new name");
    let fan_out = chronos_server::target_group::NewFanOut {
        id: uuid::Uuid::now_v7(),
        group_id: group.id,
        queue: "default".into(),
        callback_queue_id: None,
    };
    let deliveries: Vec<NewJob> = (0..3)
        .map(|i| NewJob {
            follow: chronos_server::job::Follow {
                fan_out_id: Some(fan_out.id),
                ..Default::default()
            },
            ..push(&format!("d{i}"), "https://example.com/hook")
        })
        .collect();
    match t.leases.create_fan_out(org, fan_out, deliveries).await {
        Ok(chronos_server::store::FanOutCreated::OverQuota(q)) => assert_eq!(q.limit, 2),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let usage = t.store.usage(org).await.unwrap();
    assert_eq!(usage.day, 0, "nothing counted for what was not created");
}

async fn plans_are_kept_while_organizations_are_on_them(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, limited("team", Some(10), None)).await;
    assert_eq!(
        t.store.delete_plan("team").await.unwrap(),
        PlanDeleted::InUse(1)
    );
    assert!(matches!(
        t.store.delete_plan(UNLIMITED).await.unwrap(),
        PlanDeleted::InUse(_)
    ));
    assert_eq!(
        t.store.delete_plan("nope").await.unwrap(),
        PlanDeleted::NotFound
    );
    assert!(!t.store.set_organization_plan(org, "nope").await.unwrap());
    assert_eq!(t.store.organization_plan(org).await.unwrap().name, "team");
    // Limits replaced in place apply at once.
    t.store
        .put_plan(&limited("team", Some(1), None))
        .await
        .unwrap();
    assert_eq!(
        t.store
            .organization_plan(org)
            .await
            .unwrap()
            .messages_per_day,
        Some(1)
    );
    assert!(t.store.set_organization_plan(org, UNLIMITED).await.unwrap());
    assert_eq!(
        t.store.delete_plan("team").await.unwrap(),
        PlanDeleted::Deleted
    );
    let org_row = t.store.organization(org).await.unwrap().unwrap();
    assert_eq!(org_row.plan, UNLIMITED);
}
