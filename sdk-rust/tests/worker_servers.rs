//! Rust workers across server restarts and replicas: a worker whose
//! connection drops reconnects and keeps its lease (both stores); a cancel
//! through one server reaches a worker connected to another. (Thousands of
//! jobs through two server processes: `server/tests/sdk_processes.rs`.)

mod common;

use chronos_test_support::both_stores;

use chronos::{JobError, JobStatus, NewJob, Worker};
use common::{SdkClients, StoreKind, TestServer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

both_stores!(a_worker_that_reconnects_keeps_its_lease);

async fn a_worker_that_reconnects_keeps_its_lease(kind: StoreKind) {
    let mut s = TestServer::start(kind).await;
    let client = s.client();
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("long", move |_job| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok::<_, JobError>(json!("finished"))
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let job = client
        .create_job(&NewJob::new("t", "long").timeout(120).build())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the handler never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The server goes away mid-job and comes back on the same address.
    s.restart().await;
    let client = s.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let j = client.get_job(job.id).await.unwrap();
        if j.status == JobStatus::Completed {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "job is {} after the restart",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.attempt, 1, "the same lease, acked after the reconnect");
    assert_eq!(done.result, Some(json!("finished")));
    assert_eq!(started.load(Ordering::SeqCst), 1, "never run twice");
    stop.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_another_server_reaches_the_handler() {
    let a = TestServer::start(StoreKind::Postgres).await;
    let b = a.another().await;
    let (started, saw) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (st, sw) = (started.clone(), saw.clone());
    // The worker is connected to B; the cancel goes through A.
    let worker = Worker::builder(&b.base, b.key(&["worker"]).await)
        .handle_signals(false)
        .handle("long", move |job| {
            let (started, saw) = (st.clone(), sw.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                job.cancelled().await;
                saw.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(JobError::permanent("cancelled"))
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let client = a.client();
    let job = client
        .create_job(&NewJob::new("t", "long").build())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the handler never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.cancel_job(job.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while saw.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the cancel never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(saw.load(Ordering::SeqCst), 1);
    stop.shutdown();
    running.await.unwrap().unwrap();
}
