//! Rust SDK workers against real `chronos serve` processes: two servers on
//! one PostgreSQL, workers connected to both, thousands of jobs, each run
//! and completed exactly once.

mod common;

use chronos::{JobError, JobStatus, ListJobs, NewJob, Worker};
use common::process::{Serve, cli_create_key};
use common::{Backing, TestDb};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_rust_workers_every_job_completes_once() {
    let backing = Backing::Postgres(TestDb::create().await);
    let a = Serve::start(&backing).await;
    let b = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let key = cli_create_key(&backing, "workers", "worker").await;
    let calls: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    for (i, base) in [a.url(""), b.url(""), a.url(""), b.url("")]
        .into_iter()
        .enumerate()
    {
        let calls = calls.clone();
        let worker = Worker::builder(base, &key)
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
        let base = if c % 2 == 0 { a.url("") } else { b.url("") };
        let client = chronos::Client::new(base, &admin).unwrap();
        creators.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..JOBS / 8 {
                let job = client
                    .create_job(&NewJob::new("n", "count").build())
                    .await
                    .unwrap();
                ids.push(job.id);
            }
            ids
        }));
    }
    let mut created = Vec::new();
    for c in creators {
        created.extend(c.await.unwrap());
    }
    let client = chronos::Client::new(a.url(""), &admin).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let completed = count(&client, JobStatus::Completed).await;
        if completed == JOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {completed} of {JOBS} completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{JOBS} jobs created and completed in {:?} through two server processes",
        started.elapsed()
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), JOBS);
    assert!(
        created.iter().all(|id| calls.get(id) == Some(&1)),
        "a job ran twice or never"
    );
    for s in stops {
        s.shutdown();
    }
    for r in runs {
        tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .expect("workers stop")
            .unwrap()
            .unwrap();
    }
}

/// Jobs in `status`, every one at attempt 1.
async fn count(client: &chronos::Client, status: JobStatus) -> usize {
    let mut query = ListJobs::new().status(status).limit(100);
    let mut n = 0;
    loop {
        let page = client.list_jobs(&query).await.unwrap();
        n += page.data.len();
        assert!(
            page.data.iter().all(|j| j.attempt == 1),
            "a job needed a second attempt"
        );
        match page.next_cursor {
            Some(c) => query = query.cursor(c),
            None => return n,
        }
    }
}
