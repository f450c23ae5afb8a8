//! Verified domains and schedules' skipped runs, against a real server on
//! both stores. No challenge is served here: verifying fails, saying so.

mod common;

use chronos::{CreateSchedule, Delay, DomainStatus, TimeUnit};
use chronos_test_support::both_stores;
use common::{SdkClients, StoreKind, TestServer};
use uuid::Uuid;

both_stores!(adds_lists_verifies_and_deletes_a_domain, lists_skipped_runs);

async fn adds_lists_verifies_and_deletes_a_domain(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();

    // A URL is normalized to its host; the answer holds both challenges.
    let added = client
        .add_domain("https://API.Example.test/hook")
        .await
        .unwrap();
    assert_eq!(
        (added.domain.as_str(), added.status),
        ("api.example.test", DomainStatus::Pending)
    );
    let v = &added.verification;
    assert_eq!(
        v.well_known.url,
        "https://api.example.test/.well-known/chronos-verification.txt"
    );
    assert_eq!(v.dns_txt.name, "_chronos-verification.api.example.test");
    assert_eq!(v.dns_txt.record_type, "TXT");
    assert_eq!(v.dns_txt.value, v.well_known.content);
    assert_eq!((added.method.as_ref(), added.verified_at), (None, None));

    assert_eq!(
        client.list_domains().await.unwrap(),
        std::slice::from_ref(&added)
    );
    assert_eq!(client.get_domain(added.id).await.unwrap(), added);

    let err = client.verify_domain("api.example.test").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("verification_failed")),
        "{err}"
    );
    let err = client
        .verify_domain("other.example.test")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client.add_domain("").await.unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (Some("validation_failed"), Some("domain"))
    );

    client.delete_domain(added.id).await.unwrap();
    assert!(client.list_domains().await.unwrap().is_empty());
    let err = client.get_domain(added.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client.delete_domain(added.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

async fn lists_skipped_runs(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let schedule = client
        .create_schedule(&CreateSchedule {
            name: Some("report".into()),
            handler: Some("report".into()),
            interval: Some(Delay {
                value: 1,
                unit: TimeUnit::Day,
            }),
            ..CreateSchedule::default()
        })
        .await
        .unwrap();
    // On the plan that limits nothing, no warning and nothing skipped.
    assert_eq!(schedule.warning, None);
    let page = client
        .list_skipped_runs(schedule.id, Some(10), None)
        .await
        .unwrap();
    assert!(
        page.data.is_empty() && page.next_cursor.is_none(),
        "{page:?}"
    );

    let err = client
        .list_skipped_runs(Uuid::now_v7(), None, None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
