//! Endpoint health in the store ([`EndpointStore`] and the lease engine's
//! statements for it), on both stores, with the test clock: failures
//! counted per organization, an endpoint disabled once it has failed for
//! the threshold, its queued deliveries held (and only its organization's),
//! held deliveries never promoted, and released by an enable or by an
//! answer.
//!
//! [`EndpointStore`]: chronos_server::store::EndpointStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::JobStatus;
use chronos_server::account::OrgId;
use chronos_server::endpoint::{Enabled, EndpointKey, HealthPolicy, Tally};
use chronos_server::store::PageRequest;
use chronos_test_support::both_stores;
use common::{StoreKind, TestStore};
use conformance::*;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    failures_disable_an_endpoint_for_its_organization_alone,
    an_answer_releases_what_an_endpoint_held,
);

const URL: &str = "https://hooks.example/a";
const HOUR: Duration = Duration::from_secs(3600);
const POLICY: HealthPolicy = HealthPolicy {
    disable_after: Some(Duration::from_secs(24 * 3600)),
};

fn key() -> EndpointKey {
    EndpointKey::of(URL).unwrap()
}

fn failed(n: u32) -> Tally {
    Tally {
        answered: false,
        failures: n,
        last_error: Some("the target answered 503".into()),
    }
}

async fn record(t: &TestStore, org: OrgId, tally: Tally) -> chronos_server::store::HealthRecorded {
    t.leases
        .record_endpoint_health(vec![((org, key()), tally)], POLICY)
        .await
        .unwrap()
}

fn page() -> PageRequest {
    PageRequest {
        limit: 10,
        before: None,
    }
}

/// Failing for a day disables an endpoint; only its organization's queued
/// deliveries are held; promotion passes them over; an enable by another
/// organization finds nothing, by its own releases them.
async fn failures_disable_an_endpoint_for_its_organization_alone(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let other = other_org(&t.store).await;
    let store = &t.store;
    assert!(record(&t, org, failed(2)).await.disabled.is_empty());
    assert!(record(&t, other, failed(1)).await.disabled.is_empty());
    let ours = store.endpoints(org, page()).await.unwrap().items;
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].endpoint, key());
    assert_eq!(ours[0].health.failures, 2);
    let id = ours[0].id;

    advance(store, 24 * HOUR).await;
    let recorded = record(&t, org, failed(1)).await;
    assert_eq!(recorded.disabled, vec![(org, key())]);
    assert_eq!(
        store.disabled_endpoints().await.unwrap(),
        vec![(org, key())]
    );
    let theirs = store.endpoints(other, page()).await.unwrap().items;
    assert_eq!(theirs[0].health.disabled_at, None, "theirs is not disabled");

    let mine = t.leases.create_job(org, push("mine", URL)).await.unwrap();
    let elsewhere = t
        .leases
        .create_job(org, push("elsewhere", "https://other.example/"))
        .await
        .unwrap();
    let yours = t
        .leases
        .create_job(other, push("yours", URL))
        .await
        .unwrap();
    assert_eq!(t.leases.hold_for_disabled_endpoints(100).await.unwrap(), 1);
    let held = job(store, org, mine.id).await;
    assert_eq!(held.status, JobStatus::Scheduled);
    assert_eq!(held.held_reason.as_deref(), Some("endpoint_disabled"));
    assert_eq!(
        job(store, org, elsewhere.id).await.status,
        JobStatus::Queued
    );
    assert_eq!(job(store, other, yours.id).await.status, JobStatus::Queued);
    assert_eq!(store.endpoint(org, id).await.unwrap().unwrap().held, 1);

    // However long past its run_at, a held job is not promoted.
    advance(store, HOUR).await;
    t.leases.promote_due_jobs().await.unwrap();
    assert_eq!(job(store, org, mine.id).await.status, JobStatus::Scheduled);

    assert_eq!(store.endpoint(other, id).await.unwrap(), None);
    assert_eq!(
        t.leases.enable_endpoint(other, id).await.unwrap(),
        Enabled::NotFound
    );
    match t.leases.enable_endpoint(org, id).await.unwrap() {
        Enabled::Done(record, released) => {
            assert_eq!(released, 1);
            assert_eq!(record.health.failures, 0);
            assert_eq!(record.health.disabled_at, None);
            assert_eq!(record.held, 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(store.disabled_endpoints().await.unwrap().is_empty());
    t.leases.promote_due_jobs().await.unwrap();
    let released = job(store, org, mine.id).await;
    assert_eq!(released.status, JobStatus::Queued);
    assert_eq!(released.held_reason, None);
    assert_eq!(released.attempt, 0, "no attempt was spent");
    assert_eq!(
        t.leases.enable_endpoint(org, Uuid::now_v7()).await.unwrap(),
        Enabled::NotFound
    );
}

/// An answer (from a call in flight when the endpoint was disabled)
/// enables it again and releases what it held.
async fn an_answer_releases_what_an_endpoint_held(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    record(&t, org, failed(1)).await;
    advance(store, 25 * HOUR).await;
    assert_eq!(record(&t, org, failed(1)).await.disabled.len(), 1);
    let mine = t.leases.create_job(org, push("mine", URL)).await.unwrap();
    assert_eq!(t.leases.hold_for_disabled_endpoints(100).await.unwrap(), 1);
    let answered = Tally {
        answered: true,
        failures: 0,
        last_error: None,
    };
    let recorded = record(&t, org, answered).await;
    assert_eq!(recorded.released, 1);
    assert!(recorded.disabled.is_empty());
    assert!(store.disabled_endpoints().await.unwrap().is_empty());
    t.leases.promote_due_jobs().await.unwrap();
    assert_eq!(job(store, org, mine.id).await.status, JobStatus::Queued);
    let endpoint = &store.endpoints(org, page()).await.unwrap().items[0];
    assert_eq!(endpoint.health.failures, 0);
    assert!(endpoint.health.healthy_since.is_some());
}
