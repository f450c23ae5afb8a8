//! Store conformance, domains (`DomainStore`, and the counting `LeaseStore`
//! does for them) and skipped schedule runs: a domain is added once;
//! checks verify it, note failures, and lapse it after a week of them by
//! the store's clock; daily re-checks are claimed once; on a plan that
//! requires verification, an unverified domain takes ten jobs a day,
//! counted per registrable domain, while a verified registrable domain
//! covers its subdomains; a schedule's runs past the quota are skipped
//! runs. On both stores, on the test clock.

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::DomainStatus;
use chronos_server::account::OrgId;
use chronos_server::account::domains::UNVERIFIED_PER_DAY;
use chronos_server::account::plans::Plan;
use chronos_server::schedule::fire;
use chronos_server::store::domains::CheckResult;
use chronos_server::store::{DynStore, Inserted};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::time::Duration;

both_stores!(
    a_domain_is_added_once_and_verified_by_a_passing_check,
    a_verified_domain_failing_for_a_week_lapses,
    daily_rechecks_are_claimed_once,
    unverified_domains_take_ten_jobs_a_day,
    a_run_past_the_quota_is_a_skipped_run,
);

const DAY: Duration = Duration::from_secs(86_400);
const MINUTE: Duration = Duration::from_secs(60);

async fn on_plan(store: &DynStore, org: OrgId, per_day: Option<u64>, verify: bool) {
    let plan = Plan {
        name: "tenant".into(),
        messages_per_day: per_day,
        messages_per_month: None,
        min_interval_seconds: None,
        max_retries: None,
        verify_domains: verify,
    };
    store.put_plan(&plan).await.unwrap();
    assert!(store.set_organization_plan(org, "tenant").await.unwrap());
}

async fn a_domain_is_added_once_and_verified_by_a_passing_check(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (added, made) = t
        .store
        .add_domain(org, "api.example.com", "t1")
        .await
        .unwrap();
    assert!(made);
    assert_eq!(added.status, DomainStatus::Pending);
    assert_eq!(
        (added.domain.as_str(), added.token.as_str()),
        ("api.example.com", "t1")
    );
    let (again, made) = t
        .store
        .add_domain(org, "api.example.com", "t2")
        .await
        .unwrap();
    assert!(!made);
    assert_eq!(again, added, "the first token stays");
    let (apex, _) = t.store.add_domain(org, "example.com", "t3").await.unwrap();

    assert_eq!(
        t.store.domain(org, added.id).await.unwrap(),
        Some(added.clone())
    );
    assert_eq!(
        t.store.domain_named(org, "example.com").await.unwrap(),
        Some(apex.clone())
    );
    let other = other_org(&t.store).await;
    assert_eq!(t.store.domain(other, added.id).await.unwrap(), None);
    let listed = all_pages(1, |page| {
        let store = t.store.clone();
        async move { store.list_domains(org, page).await.unwrap() }
    })
    .await;
    let names: Vec<&str> = listed.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["example.com", "api.example.com"], "newest first");

    let failed = CheckResult::Failed("dns: no TXT record".into());
    let noted = t
        .store
        .record_check(org, added.id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(noted.status, DomainStatus::Pending);
    assert_eq!(noted.last_error.as_deref(), Some("dns: no TXT record"));
    assert!(noted.checked_at.is_some() && noted.failing_since.is_some());
    assert!(t.store.verified_domains(org).await.unwrap().is_empty());

    let passed = CheckResult::Passed("dns_txt");
    let verified = t
        .store
        .record_check(org, added.id, &passed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.status, DomainStatus::Verified);
    assert_eq!(verified.method.as_deref(), Some("dns_txt"));
    assert!(verified.verified_at.is_some());
    assert_eq!((verified.last_error, verified.failing_since), (None, None));
    assert_eq!(
        t.store.verified_domains(org).await.unwrap(),
        ["api.example.com"]
    );
    assert_eq!(
        t.store
            .record_check(other, added.id, &passed)
            .await
            .unwrap(),
        None
    );

    assert!(t.store.delete_domain(org, added.id).await.unwrap());
    assert!(!t.store.delete_domain(org, added.id).await.unwrap());
    assert!(t.store.verified_domains(org).await.unwrap().is_empty());
}

async fn a_verified_domain_failing_for_a_week_lapses(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (d, _) = t.store.add_domain(org, "example.com", "t").await.unwrap();
    let passed = CheckResult::Passed("well_known");
    let d = t
        .store
        .record_check(org, d.id, &passed)
        .await
        .unwrap()
        .unwrap();
    let failed = CheckResult::Failed("well-known: 404".into());
    let first = t
        .store
        .record_check(org, d.id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, DomainStatus::Verified, "one failure is noted");
    advance(&t.store, DAY * 7 - Duration::from_secs(60)).await;
    let almost = t
        .store
        .record_check(org, d.id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(almost.status, DomainStatus::Verified);
    assert_eq!(almost.failing_since, first.failing_since);
    advance(&t.store, Duration::from_secs(61)).await;
    let lapsed = t
        .store
        .record_check(org, d.id, &failed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lapsed.status, DomainStatus::Lapsed, "a week of failures");
    assert!(t.store.verified_domains(org).await.unwrap().is_empty());
    let back = t
        .store
        .record_check(org, d.id, &passed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, DomainStatus::Verified);
    assert!(back.verified_at > d.verified_at, "verified again, now");
}

async fn daily_rechecks_are_claimed_once(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (pending, _) = t
        .store
        .add_domain(org, "pending.example.com", "t")
        .await
        .unwrap();
    let (d, _) = t.store.add_domain(org, "example.com", "t").await.unwrap();
    t.store
        .record_check(org, d.id, &CheckResult::Passed("dns_txt"))
        .await
        .unwrap();
    assert!(
        t.store.claim_rechecks(10).await.unwrap().is_empty(),
        "checked now"
    );
    advance(&t.store, DAY + Duration::from_secs(1)).await;
    let claimed = t.store.claim_rechecks(10).await.unwrap();
    assert_eq!(claimed.len(), 1, "a pending domain is not re-checked");
    assert_eq!((claimed[0].0, claimed[0].1.id), (org, d.id));
    assert!(
        t.store.claim_rechecks(10).await.unwrap().is_empty(),
        "claimed"
    );
    assert_ne!(pending.id, d.id);
}

async fn unverified_domains_take_ten_jobs_a_day(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, None, true).await;
    // Ten to example.com's names, one by one and in a batch.
    let url = |host: &str| format!("https://{host}/hook");
    for _ in 0..4 {
        let done = t
            .leases
            .create_jobs(org, vec![push("p", &url("a.example.com"))])
            .await
            .unwrap();
        assert!(matches!(done[0], Inserted::Created(_)));
    }
    let batch: Vec<_> = (0..8)
        .map(|i| {
            push(
                "p",
                &url(if i % 2 == 0 {
                    "b.example.com"
                } else {
                    "example.com"
                }),
            )
        })
        .chain([pull("not-a-push"), push("p", &url("other.net"))])
        .collect();
    let done = t.leases.create_jobs(org, batch).await.unwrap();
    let refused: Vec<_> = done
        .iter()
        .map(|d| match d {
            Inserted::OverQuota(q) => q.domain.clone(),
            _ => None,
        })
        .collect();
    let example = Some("example.com".to_string());
    assert_eq!(
        refused,
        [
            None,
            None,
            None,
            None,
            None,
            None,
            example.clone(),
            example.clone(),
            None,
            None
        ],
        "the seventh and eighth are past example.com's ten"
    );
    let Inserted::OverQuota(q) = &done[6] else {
        unreachable!()
    };
    assert_eq!((q.limit, q.used), (UNVERIFIED_PER_DAY, UNVERIFIED_PER_DAY));
    assert_eq!(
        t.store.unverified_usage(org, "example.com").await.unwrap(),
        10
    );
    assert_eq!(t.store.unverified_usage(org, "other.net").await.unwrap(), 1);

    // Verifying the registrable domain covers its names.
    let (d, _) = t.store.add_domain(org, "example.com", "t").await.unwrap();
    t.store
        .record_check(org, d.id, &CheckResult::Passed("dns_txt"))
        .await
        .unwrap();
    let done = t
        .leases
        .create_jobs(
            org,
            (0..3)
                .map(|_| push("p", &url("deep.a.example.com")))
                .collect(),
        )
        .await
        .unwrap();
    assert!(
        done.iter().all(|d| matches!(d, Inserted::Created(_))),
        "{done:?}"
    );
    assert_eq!(
        t.store.unverified_usage(org, "example.com").await.unwrap(),
        10
    );
    // A verified subdomain covers itself only.
    let (sub, _) = t.store.add_domain(org, "api.other.net", "t").await.unwrap();
    t.store
        .record_check(org, sub.id, &CheckResult::Passed("well_known"))
        .await
        .unwrap();
    let done = t
        .leases
        .create_jobs(org, vec![push("p", &url("api.other.net"))])
        .await
        .unwrap();
    assert!(matches!(done[0], Inserted::Created(_)));
    assert_eq!(t.store.unverified_usage(org, "other.net").await.unwrap(), 1);

    // The next UTC day has ten again.
    advance(&t.store, DAY).await;
    assert_eq!(
        t.store.unverified_usage(org, "example.com").await.unwrap(),
        0
    );
}

async fn a_run_past_the_quota_is_a_skipped_run(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    on_plan(&t.store, org, Some(1), false).await;
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    let none = t
        .store
        .skipped_runs(org, record.id, first(10))
        .await
        .unwrap();
    assert_eq!(none.map(|p| p.items.len()), Some(0));

    // Two due times: the first fits the day's one job, the second is
    // skipped with why.
    advance(&t.store, Duration::from_secs(121)).await;
    let fired = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!((fired.jobs.len(), fired.skipped), (1, 1));
    let skipped = t
        .store
        .skipped_runs(org, record.id, first(10))
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].schedule_id, record.id);
    assert_eq!(
        skipped[0].fire_at,
        plus(record.next_run_at.unwrap(), MINUTE)
    );
    assert_eq!(skipped[0].error.code, "quota_exceeded");
    assert_eq!(
        (skipped[0].error.limit, skipped[0].error.used),
        (Some(1), Some(1))
    );
    assert_eq!(t.store.usage(org).await.unwrap().day, 1);

    let other = other_org(&t.store).await;
    assert_eq!(
        t.store
            .skipped_runs(other, record.id, first(10))
            .await
            .unwrap(),
        None
    );
}
