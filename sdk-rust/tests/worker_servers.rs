//! Rust workers across server restarts and replicas: a worker whose
//! connection drops reconnects and keeps its lease (both stores); two
//! servers on one PostgreSQL, workers on both, thousands of jobs, each
//! completed exactly once.

mod common;

use chronos_test_support::both_stores;

use chronos::{Client, JobError, JobStatus, ListJobs, NewJob, Worker};
use common::{SdkClients, StoreKind, TestServer};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

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
async fn two_servers_workers_on_both_every_job_completes_once() {
    let a = TestServer::start(StoreKind::Postgres).await;
    let b = a.another().await;
    let key = a.key(&["worker"]).await;
    // Every handler call, by job id.
    let calls: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let calls = calls.clone();
        let worker = Worker::builder(&server.base, &key)
            .handle_signals(false)
            .worker_id(format!("w{i}"))
            .concurrency(16)
            .handle("count", move |job| {
                let calls = calls.clone();
                async move {
                    *calls.lock().unwrap().entry(job.id).or_default() += 1;
                    Ok::<_, JobError>(())
                }
            })
            .build()
            .unwrap();
        stops.push(worker.shutdown_handle());
        runs.push(tokio::spawn(worker.run()));
    }
    const JOBS: usize = 2000;
    let started = Instant::now();
    let mut creators = Vec::new();
    for c in 0..8 {
        let client: Client = if c % 2 == 0 { a.client() } else { b.client() };
        creators.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..JOBS / 8 {
                ids.push(
                    client
                        .create_job(&NewJob::new("n", "count").build())
                        .await
                        .unwrap()
                        .id,
                );
            }
            ids
        }));
    }
    let mut created = Vec::new();
    for c in creators {
        created.extend(c.await.unwrap());
    }
    let client = a.client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = calls.lock().unwrap().len();
        if done == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {JOBS} jobs ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{JOBS} jobs created and run in {:?} through two servers",
        started.elapsed()
    );
    // Let the last acks land, then count.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut completed = 0;
    while Instant::now() < deadline {
        completed = count_completed(&client).await;
        if completed == JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(completed, JOBS);
    let calls = calls.lock().unwrap().clone();
    assert!(calls.values().all(|&n| n == 1), "a job ran twice");
    assert_eq!(calls.len(), created.len());
    for id in &created {
        assert_eq!(calls.get(id), Some(&1));
    }
    for s in stops {
        s.shutdown();
    }
    for r in runs {
        r.await.unwrap().unwrap();
    }
}

async fn count_completed(client: &Client) -> usize {
    let mut query = ListJobs::new().status(JobStatus::Completed).limit(100);
    let mut n = 0;
    loop {
        let page = client.list_jobs(&query).await.unwrap();
        n += page.data.len();
        assert!(page.data.iter().all(|j| j.attempt == 1));
        match page.next_cursor {
            Some(c) => query = query.cursor(c),
            None => return n,
        }
    }
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
