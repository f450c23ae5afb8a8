//! The Rust worker against a real server, on both stores: it runs jobs,
//! respects its concurrency, reports every kind of outcome (panics
//! included), passes on cancellation, extends leases, and drains. The
//! `hello` and `slow` examples run as real processes: as written, and
//! killed with SIGKILL mid-job.

mod common;

use chronos_test_support::both_stores;

use chronos::{Client, Job, JobError, JobStatus, NewJob, Worker};
use common::{SdkClients, StoreKind, TestServer};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

both_stores!(
    runs_jobs_and_stores_their_results,
    a_result_too_large_for_a_frame_fails_the_job,
    a_shutdown_before_run_stops_it_once_connected,
    never_runs_more_than_its_concurrency,
    reports_failures_permanent_errors_delays_and_panics,
    cancel_reaches_the_handler,
    extend_outlives_the_timeout,
    drain_finishes_jobs_in_hand_then_hands_back_the_rest,
    the_hello_example_runs_jobs_as_written,
    a_killed_worker_process_job_runs_again_before_its_timeout,
);

/// Waits (bounded) until the job reaches `status`.
async fn wait_for(client: &Client, id: Uuid, status: JobStatus, within: Duration) -> Job {
    let started = Instant::now();
    loop {
        let job = client.get_job(id).await.unwrap();
        if job.status == status {
            return job;
        }
        assert!(
            started.elapsed() < within,
            "job {id} is {} after {within:?}, not {status}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn create(client: &Client, handler: &str, payload: serde_json::Value) -> Job {
    client
        .create_job(&NewJob::new("test", handler).payload(payload).build())
        .await
        .unwrap()
}

async fn runs_jobs_and_stores_their_results(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("greet", |job| async move {
            Ok::<_, JobError>(json!({"hi": job.payload["name"]}))
        })
        .handle("quiet", |_job| async move { Ok::<_, JobError>(()) })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let a = create(&client, "greet", json!({"name": "ada"})).await;
    let b = create(&client, "quiet", json!(null)).await;
    let a = wait_for(&client, a.id, JobStatus::Completed, Duration::from_secs(10)).await;
    assert_eq!(a.result, Some(json!({"hi": "ada"})));
    let b = wait_for(&client, b.id, JobStatus::Completed, Duration::from_secs(10)).await;
    assert_eq!(b.result, None);
    stop.shutdown();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn a_result_too_large_for_a_frame_fails_the_job(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("huge", |_job| async move {
            Ok::<_, JobError>(json!({"blob": "x".repeat(2 * 1024 * 1024)}))
        })
        .handle("small", |_job| async move { Ok::<_, JobError>(json!(1)) })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let huge = create(&client, "huge", json!(null)).await;
    let small = create(&client, "small", json!(null)).await;
    let huge = wait_for(&client, huge.id, JobStatus::Failed, Duration::from_secs(10)).await;
    assert!(
        huge.last_error.as_deref().unwrap().contains("the limit is"),
        "{huge:?}"
    );
    assert_eq!(huge.attempt, 1, "a result too large is not retried");
    // The connection stayed up: the next job runs on it.
    wait_for(
        &client,
        small.id,
        JobStatus::Completed,
        Duration::from_secs(10),
    )
    .await;
    stop.shutdown();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn a_shutdown_before_run_stops_it_once_connected(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("idle", |_job| async move { Ok::<_, JobError>(()) })
        .build()
        .unwrap();
    // Asked to stop before it ever ran: it must not stay connected.
    worker.shutdown_handle().shutdown();
    tokio::time::timeout(Duration::from_secs(10), worker.run())
        .await
        .expect("a worker told to stop before it ran returns")
        .unwrap();
}

async fn never_runs_more_than_its_concurrency(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), most.clone());
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .concurrency(3)
        .handle("work", move |_job| {
            let (now, most) = (n.clone(), m.clone());
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(create(&client, "work", json!(null)).await.id);
    }
    for id in ids {
        wait_for(&client, id, JobStatus::Completed, Duration::from_secs(20)).await;
    }
    assert_eq!(most.load(Ordering::SeqCst), 3, "overlapping handler calls");
    stop.shutdown();
    running.await.unwrap().unwrap();
}

async fn reports_failures_permanent_errors_delays_and_panics(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("outcome", |job| async move {
            match job.payload["kind"].as_str().unwrap() {
                "io" => Err(std::io::Error::other("disk on fire"))?,
                "permanent" => Err(JobError::permanent("no such customer")),
                "later" => Err(JobError::retry_in(120, "rate limited")),
                "panic" => panic!("boom"),
                _ => Ok(()),
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());

    let io = create(&client, "outcome", json!({"kind": "io"})).await;
    let io = wait_for(
        &client,
        io.id,
        JobStatus::Scheduled,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(io.last_error.as_deref(), Some("disk on fire"));

    let permanent = create(&client, "outcome", json!({"kind": "permanent"})).await;
    let permanent = wait_for(
        &client,
        permanent.id,
        JobStatus::Failed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(permanent.attempt, 1, "no retry");
    assert_eq!(permanent.last_error.as_deref(), Some("no such customer"));

    let later = create(&client, "outcome", json!({"kind": "later"})).await;
    let later = wait_for(
        &client,
        later.id,
        JobStatus::Scheduled,
        Duration::from_secs(10),
    )
    .await;
    let wait = later.run_at.0 - chrono_now();
    assert!(wait.num_seconds() > 100, "retry_in honoured: {wait}");

    let panicky = client
        .create_job(
            &NewJob::new("t", "outcome")
                .payload(json!({"kind": "panic"}))
                .max_retries(0)
                .build(),
        )
        .await
        .unwrap();
    let panicky = wait_for(
        &client,
        panicky.id,
        JobStatus::Failed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        panicky.last_error.as_deref(),
        Some("handler panicked: boom")
    );
    stop.shutdown();
    running.await.unwrap().unwrap();
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

async fn cancel_reaches_the_handler(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let (started, saw) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (st, sw) = (started.clone(), saw.clone());
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("long", move |job| {
            let (started, saw) = (st.clone(), sw.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                tokio::select! {
                    _ = job.cancelled() => { saw.store(true, Ordering::SeqCst); Err(JobError::permanent("cancelled")) }
                    _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(()),
                }
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let job = create(&client, "long", json!(null)).await;
    wait_for(&client, job.id, JobStatus::Running, Duration::from_secs(10)).await;
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.cancel_job(job.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !saw.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the handler never heard of the cancel"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        client.get_job(job.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    stop.shutdown();
    running.await.unwrap().unwrap();
}

async fn extend_outlives_the_timeout(kind: StoreKind) {
    let s = TestServer::start_with_test_clock(kind, Default::default()).await;
    let client = s.client();
    // The handler extends, says so, and ends when the test lets it: after
    // the job's own timeout has passed on the test clock.
    let extended = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let (told, go) = (extended.clone(), finish.clone());
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .handle("long", move |job| {
            let (told, go) = (told.clone(), go.clone());
            async move {
                job.extend(30)
                    .await
                    .map_err(|e| JobError::retry(e.to_string()))?;
                told.notify_one();
                go.notified().await;
                Ok::<_, JobError>(json!("done"))
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let job = client
        .create_job(&NewJob::new("t", "long").timeout(1).build())
        .await
        .unwrap();
    extended.notified().await;
    s.advance_clock_and_settle(Duration::from_secs(5)).await;
    finish.notify_one();
    let job = wait_for(
        &client,
        job.id,
        JobStatus::Completed,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(job.attempt, 1, "never timed out");
    assert_eq!(job.result, Some(json!("done")));
    stop.shutdown();
    running.await.unwrap().unwrap();
}

async fn drain_finishes_jobs_in_hand_then_hands_back_the_rest(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let worker = Worker::builder(&s.base, s.key(&["worker"]).await)
        .handle_signals(false)
        .concurrency(2)
        .shutdown_grace(Duration::from_millis(1500))
        .handle("nap", move |job| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let ms = job.payload["ms"].as_u64().unwrap();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok::<_, JobError>(()),
                    _ = job.cancelled() => Err(JobError::retry("stopped")),
                }
            }
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let short = create(&client, "nap", json!({"ms": 500})).await;
    let long = create(&client, "nap", json!({"ms": 60_000})).await;
    // Both handlers run in the worker (not only leased on the server).
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "handlers never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = create(&client, "nap", json!({"ms": 1})).await;
    stop.shutdown();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("drain ended")
        .unwrap()
        .unwrap();
    assert_eq!(
        client.get_job(short.id).await.unwrap().status,
        JobStatus::Completed,
        "finished within the grace"
    );
    let long = client.get_job(long.id).await.unwrap();
    assert_eq!(
        long.status,
        JobStatus::Queued,
        "handed back after the grace"
    );
    let ex = client.list_executions(long.id, None, None).await.unwrap();
    assert_eq!(ex.data[0].status, chronos::ExecutionStatus::Released);
    assert_eq!(
        client.get_job(waiting.id).await.unwrap().status,
        JobStatus::Queued,
        "no new jobs while draining"
    );
}

fn example(name: &str) -> std::path::PathBuf {
    // Tests run from target/<profile>/deps; examples are built beside it.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "example {} not built (cargo builds examples with the tests)",
        path.display()
    );
    path
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_example(name: &str, base: &str, key: &str, worker_id: Option<&str>) -> Killed {
    let mut cmd = Command::new(example(name));
    cmd.env("CHRONOS_URL", base)
        .env("CHRONOS_API_KEY", key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(id) = worker_id {
        cmd.env("CHRONOS_WORKER_ID", id);
    }
    Killed(cmd.spawn().unwrap())
}

async fn the_hello_example_runs_jobs_as_written(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let _worker = spawn_example("hello", &s.base, &s.key(&["worker"]).await, None);
    let job = create(&client, "hello", json!({"name": "Grace"})).await;
    let job = wait_for(
        &client,
        job.id,
        JobStatus::Completed,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job.result, Some(json!({"greeted": "Grace"})));
}

async fn a_killed_worker_process_job_runs_again_before_its_timeout(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let client = s.client();
    let key = s.key(&["worker"]).await;
    let victim = spawn_example("slow", &s.base, &key, Some("victim"));
    let job = client
        .create_job(
            &NewJob::new("t", "slow")
                .payload(json!({"seconds": 3600}))
                .timeout(3600)
                .build(),
        )
        .await
        .unwrap();
    wait_for(&client, job.id, JobStatus::Running, Duration::from_secs(20)).await;
    let pid = nix::unistd::Pid::from_raw(victim.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    // Another worker picks it up once the server gives up on the first
    // (three heartbeat intervals), not after the hour-long timeout.
    let worker = Worker::builder(&s.base, key)
        .handle_signals(false)
        .handle(
            "slow",
            |_job| async move { Ok::<_, JobError>(json!("rescued")) },
        )
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let done = wait_for(
        &client,
        job.id,
        JobStatus::Completed,
        Duration::from_secs(60),
    )
    .await;
    eprintln!("rerun completed {:?} after the kill", killed_at.elapsed());
    assert_eq!(done.attempt, 2);
    assert_eq!(done.result, Some(json!("rescued")));
    let ex = client.list_executions(job.id, None, None).await.unwrap();
    assert_eq!(ex.data[1].error.as_deref(), Some("worker connection lost"));
    stop.shutdown();
    running.await.unwrap().unwrap();
}
