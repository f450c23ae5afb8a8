//! Connected workers in the store ([`WorkerStore`]), on both stores: a
//! session is listed while it is heard from, a reconnect replaces it and
//! is told the leases it still holds, and a replaced session's heartbeats
//! and disconnects change nothing; a handler is served while a session or
//! a recent long-poll asks for it. Time passes on the test clock. What
//! becomes of a gone worker's leases is in `lease.rs`.
//!
//! [`WorkerStore`]: chronos_server::store::WorkerStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::worker::ConnectedWorker;
use chronos_server::job::NewJob;
use chronos_server::store::{HeldLease, WorkerRegistration};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    a_worker_is_listed_while_it_is_heard_from,
    a_reconnect_replaces_the_session_and_is_told_its_leases,
    a_replaced_sessions_heartbeats_and_disconnects_change_nothing,
    a_worker_first_seen_after_the_clock_moved_is_alive,
    a_handler_is_served_by_a_live_session_or_a_recent_poll,
);

fn registration(worker_id: &str, handlers: &[&str]) -> WorkerRegistration {
    WorkerRegistration {
        worker_id: worker_id.into(),
        session_id: Uuid::now_v7(),
        handlers: handlers.iter().map(|h| h.to_string()).collect(),
        max_in_flight: 8,
        sdk: "chronos-test/1.2.3".into(),
    }
}

/// The one listed worker called `worker_id`.
fn listed<'a>(workers: &'a [ConnectedWorker], worker_id: &str) -> &'a ConnectedWorker {
    let found: Vec<_> = workers
        .iter()
        .filter(|w| w.worker_id == worker_id)
        .collect();
    assert_eq!(found.len(), 1, "{worker_id} in {workers:?}");
    found[0]
}

/// A registered worker is listed with what it said and the jobs it runs,
/// oldest connection first, until it is silent for longer than `alive`;
/// a heartbeat lists it again; a disconnect unlists it at once.
async fn a_worker_is_listed_while_it_is_heard_from(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let w1 = registration("w1", &["a", "b"]);
    let before = now(store).await;
    store.register_worker(org, &w1).await.unwrap();
    let after = now(store).await;
    store
        .register_worker(org, &registration("w0", &["a"]))
        .await
        .unwrap();
    // w0 connects again 3 s later: its connection is now the newer one.
    advance(store, Duration::from_secs(3)).await;
    let w0 = registration("w0", &["a"]);
    store.register_worker(org, &w0).await.unwrap();
    for _ in 0..2 {
        t.leases.create_job(org, pull("a")).await.unwrap();
    }
    lease_one(&t.leases, org, "a", Some("w1")).await;
    let finished = lease_one(&t.leases, org, "a", Some("w1")).await;
    done(
        t.leases
            .ack_job(org, finished.lease.token, None)
            .await
            .unwrap(),
    );

    let workers = store.list_workers(org, GRACE).await.unwrap();
    let ids: Vec<&str> = workers.iter().map(|w| w.worker_id.as_str()).collect();
    assert_eq!(ids, ["w1", "w0"], "oldest connection first");
    let listed_w1 = listed(&workers, "w1");
    assert_eq!(listed_w1.session_id, w1.session_id);
    assert_eq!(listed_w1.handlers, ["a", "b"]);
    assert_eq!(
        (listed_w1.max_in_flight, listed_w1.sdk.as_str()),
        (8, "chronos-test/1.2.3")
    );
    assert_eq!(listed_w1.in_flight, 1, "running jobs only");
    let connected = listed_w1.connected_at;
    assert!(before <= connected && connected <= after, "{connected}");
    assert_eq!(listed_w1.last_heartbeat_at, connected);
    assert_eq!(listed(&workers, "w0").in_flight, 0);

    let other = other_org(store).await;
    assert!(store.list_workers(other, GRACE).await.unwrap().is_empty());

    // w1 silent for 16.5 s, w0 for 13.5 s.
    advance(store, GRACE - Duration::from_millis(1500)).await;
    let ids: Vec<String> = store
        .list_workers(org, GRACE)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.worker_id)
        .collect();
    assert_eq!(ids, ["w0"], "w1 silent for longer than alive");
    let heard = now(store).await;
    store
        .worker_heartbeat(org, "w1", w1.session_id)
        .await
        .unwrap();
    let workers = store.list_workers(org, GRACE).await.unwrap();
    let listed_w1 = listed(&workers, "w1");
    assert!(
        listed_w1.last_heartbeat_at >= heard,
        "{}",
        listed_w1.last_heartbeat_at
    );
    assert_eq!(
        listed_w1.connected_at, connected,
        "a heartbeat is no reconnect"
    );

    store
        .disconnect_worker(org, "w1", w1.session_id)
        .await
        .unwrap();
    let workers = store.list_workers(org, GRACE).await.unwrap();
    let ids: Vec<&str> = workers.iter().map(|w| w.worker_id.as_str()).collect();
    assert_eq!(ids, ["w0"], "a disconnected worker is not listed");
}

/// A worker registering again under its id replaces its session (and what
/// it said), and is told the leases it still holds: running, within their
/// deadline, its own.
async fn a_reconnect_replaces_the_session_and_is_told_its_leases(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let old = registration("w", &["h"]);
    assert!(store.register_worker(org, &old).await.unwrap().is_empty());
    let short = NewJob {
        timeout_seconds: 30,
        ..pull("short")
    };
    t.leases.create_job(org, short).await.unwrap();
    let expiring = lease_one(&t.leases, org, "short", Some("w")).await;
    for _ in 0..4 {
        let long = NewJob {
            timeout_seconds: 3600,
            ..pull("h")
        };
        t.leases.create_job(org, long).await.unwrap();
    }
    let held = lease_one(&t.leases, org, "h", Some("w")).await;
    let acked = lease_one(&t.leases, org, "h", Some("w")).await;
    done(
        t.leases
            .ack_job(org, acked.lease.token, None)
            .await
            .unwrap(),
    );
    let cancelled = lease_one(&t.leases, org, "h", Some("w")).await;
    t.leases.cancel_job(org, cancelled.job.id).await.unwrap();
    lease_one(&t.leases, org, "h", Some("someone-else")).await;
    // The short lease's deadline passes, unswept.
    advance(store, Duration::from_secs(31)).await;
    assert_eq!(
        job(store, org, expiring.job.id).await.status,
        chronos_proto::JobStatus::Running
    );

    let new = WorkerRegistration {
        handlers: vec!["h".into(), "g".into()],
        max_in_flight: 2,
        ..registration("w", &[])
    };
    let told = store.register_worker(org, &new).await.unwrap();
    assert_eq!(
        told,
        vec![HeldLease {
            token: held.lease.token,
            job_id: held.job.id
        }]
    );
    let workers = store.list_workers(org, GRACE).await.unwrap();
    assert_eq!(workers.len(), 1, "one row per worker id");
    let w = &workers[0];
    assert_eq!(w.session_id, new.session_id);
    assert_eq!(
        (w.handlers.clone(), w.max_in_flight),
        (vec!["h".to_string(), "g".into()], 2)
    );
    assert_eq!(
        w.in_flight, 2,
        "the held lease, and the expired one not yet swept"
    );
    let other = other_org(store).await;
    assert!(
        store.register_worker(other, &new).await.unwrap().is_empty(),
        "not another's leases"
    );
}

/// After a reconnect the old session is no one: its heartbeat does not
/// keep the worker alive, and its disconnect does not end the new session.
async fn a_replaced_sessions_heartbeats_and_disconnects_change_nothing(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let old = registration("w", &["h"]);
    store.register_worker(org, &old).await.unwrap();
    let new = registration("w", &["h"]);
    store.register_worker(org, &new).await.unwrap();
    let since = listed(&store.list_workers(org, GRACE).await.unwrap(), "w").last_heartbeat_at;

    store
        .disconnect_worker(org, "w", old.session_id)
        .await
        .unwrap();
    advance(store, Duration::from_secs(10)).await;
    store
        .worker_heartbeat(org, "w", old.session_id)
        .await
        .unwrap();
    let workers = store.list_workers(org, GRACE).await.unwrap();
    let w = listed(&workers, "w");
    assert_eq!(w.session_id, new.session_id, "still connected");
    assert_eq!(
        w.last_heartbeat_at, since,
        "the old session's heartbeat is ignored"
    );

    store
        .worker_heartbeat(org, "w", new.session_id)
        .await
        .unwrap();
    let w = listed(&store.list_workers(org, GRACE).await.unwrap(), "w").clone();
    assert!(millis_between(since, w.last_heartbeat_at) >= 10_000);
    let other = other_org(store).await;
    store
        .disconnect_worker(other, "w", new.session_id)
        .await
        .unwrap();
    store
        .worker_heartbeat(other, "w", new.session_id)
        .await
        .unwrap();
    assert_eq!(
        listed(&store.list_workers(org, GRACE).await.unwrap(), "w"),
        &w
    );
}

/// A worker that first connects after the test clock moved is stamped by
/// the moved clock like everything else: listed, and its leases kept.
async fn a_worker_first_seen_after_the_clock_moved_is_alive(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    advance(store, Duration::from_secs(3600)).await;
    let w = registration("late", &["h"]);
    let before = now(store).await;
    store.register_worker(org, &w).await.unwrap();
    let workers = store.list_workers(org, GRACE).await.unwrap();
    assert_eq!(
        workers.len(),
        1,
        "connected just now, by the store's clock: {workers:?}"
    );
    assert!(
        workers[0].connected_at >= before,
        "{}",
        workers[0].connected_at
    );
    let long = NewJob {
        timeout_seconds: 3600,
        ..pull("h")
    };
    t.leases.create_job(org, long).await.unwrap();
    let held = lease_one(&t.leases, org, "h", Some("late")).await;
    let ended = t.leases.expire_leases(GRACE).await.unwrap().ended;
    assert!(
        ended.is_empty(),
        "a connected worker's lease ended: {ended:?}"
    );
    assert_eq!(
        job(store, org, held.job.id).await.status,
        chronos_proto::JobStatus::Running
    );
}

/// `handler_served`: by a registered session's handlers while it is heard
/// from and connected, or by a long-poll for it within `polled`; in its own
/// organization only.
async fn a_handler_is_served_by_a_live_session_or_a_recent_poll(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let polled = Duration::from_secs(90);
    let served = |handler: &'static str| async move {
        store
            .handler_served(org, handler, GRACE, polled)
            .await
            .unwrap()
    };
    assert!(!served("a").await, "nobody yet");

    let w = registration("w", &["a", "b"]);
    store.register_worker(org, &w).await.unwrap();
    assert!(served("a").await && served("b").await && !served("c").await);
    store
        .disconnect_worker(org, "w", w.session_id)
        .await
        .unwrap();
    assert!(!served("a").await, "disconnected");

    let handlers = ["c".to_string(), "d".to_string()];
    store.record_polls(org, &handlers).await.unwrap();
    assert!(served("c").await && served("d").await && !served("a").await);
    let other = other_org(store).await;
    assert!(
        !store
            .handler_served(other, "c", GRACE, polled)
            .await
            .unwrap(),
        "another organization's poll"
    );
    advance(store, Duration::from_secs(60)).await;
    // Polled again for `c` only: recorded anew, not added twice.
    store.record_polls(org, &handlers[..1]).await.unwrap();
    advance(store, Duration::from_secs(31)).await;
    assert!(served("c").await, "polled 31 s ago");
    assert!(!served("d").await, "polled 91 s ago");
}
