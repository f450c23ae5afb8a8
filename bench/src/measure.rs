//! The measurements with workers: throughput, latency alone, memory per
//! worker (push delivery's are in `push.rs`). Each prints its figures;
//! nothing is asserted.

use crate::server::Server;
use chronos::{Client, CreateJob, JobContext, JobError, NewJob, Worker};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub struct Throughput {
    pub jobs: usize,
    pub workers: usize,
    pub concurrency: u32,
    pub creators: usize,
    pub batch: usize,
}

/// What the workers' handlers (or the push endpoint) saw: which jobs ran,
/// how often, and how long after it was due each started.
#[derive(Default)]
pub struct Recorder {
    ran: Mutex<HashSet<Uuid>>,
    repeats: AtomicUsize,
    count: AtomicUsize,
    pickups: Mutex<Vec<Duration>>,
    changed: Notify,
}

impl Recorder {
    pub fn record(&self, ctx: &JobContext) {
        // Due (the store's clock, the same machine) → handler start.
        let late = (chrono::Utc::now() - ctx.run_at.0)
            .to_std()
            .unwrap_or_default();
        self.pickups.lock().unwrap().push(late);
        self.ran(ctx.id);
    }

    /// Job `id` ran (again, if it did before).
    pub fn ran(&self, id: Uuid) {
        if !self.ran.lock().unwrap().insert(id) {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Runs seen, repeats included.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Runs of a job that had run before.
    pub fn repeats(&self) -> usize {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Distinct jobs that ran.
    pub fn distinct(&self) -> usize {
        self.ran.lock().unwrap().len()
    }

    async fn wait_for(&self, n: usize) {
        while self.count() < n {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
        }
    }

    /// Waits for `n` runs, or fails if none comes for `quiet`: a stall is
    /// reported, not waited out.
    pub async fn wait_for_or_stall(&self, n: usize, quiet: Duration) -> Res<()> {
        let (mut last, mut since) = (self.count(), Instant::now());
        while self.count() < n {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
            let now = self.count();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > quiet {
                return Err(format!("stalled: {now} of {n} runs, none for {quiet:.0?}").into());
            }
        }
        Ok(())
    }
}

/// `workers` SDK workers, each its own WebSocket connection, running
/// no-op handlers for `handler`.
pub struct Pool {
    stops: Vec<chronos::ShutdownHandle>,
    runs: Vec<tokio::task::JoinHandle<Result<(), chronos::Error>>>,
}

impl Pool {
    fn start(
        server: &Server,
        handler: &str,
        workers: usize,
        concurrency: u32,
        recorder: &Arc<Recorder>,
    ) -> Res<Pool> {
        let recorder = recorder.clone();
        Pool::start_with(server, handler, workers, concurrency, move |ctx| {
            recorder.record(&ctx);
            async { Ok::<_, JobError>(()) }
        })
    }

    /// [`Pool::start`] with `run` as every worker's handler.
    pub fn start_with<F, Fut>(
        server: &Server,
        handler: &str,
        workers: usize,
        concurrency: u32,
        run: F,
    ) -> Res<Pool>
    where
        F: Fn(JobContext) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let mut pool = Pool {
            stops: Vec::new(),
            runs: Vec::new(),
        };
        for i in 0..workers {
            let worker = Worker::builder(&server.base, &server.admin_key)
                .handle_signals(false)
                .worker_id(format!("bench-{handler}-{i}"))
                .concurrency(concurrency)
                .handle(handler, run.clone())
                .build()?;
            pool.stops.push(worker.shutdown_handle());
            pool.runs.push(tokio::spawn(worker.run()));
        }
        Ok(pool)
    }

    pub async fn stop(self) -> Res<()> {
        for s in &self.stops {
            s.shutdown();
        }
        for r in self.runs {
            r.await??;
        }
        Ok(())
    }
}

/// Creates `n` copies of `job` in batches of `batch`, from `creators`
/// clients at once; returns how long it took.
pub async fn enqueue(
    client: &Client,
    job: &CreateJob,
    n: usize,
    creators: usize,
    batch: usize,
) -> Res<Duration> {
    let job = job.clone();
    enqueue_each(client, n, creators, batch, move |_| job.clone()).await
}

/// [`enqueue`] of `make(0)` … `make(n - 1)`.
pub async fn enqueue_each<F>(
    client: &Client,
    n: usize,
    creators: usize,
    batch: usize,
    make: F,
) -> Res<Duration>
where
    F: Fn(usize) -> CreateJob + Send + Sync + 'static,
{
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for _ in 0..creators {
        let (client, next, make) = (client.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= n {
                    return Ok::<_, chronos::Error>(());
                }
                let jobs: Vec<CreateJob> = (from..(from + batch).min(n)).map(|i| make(i)).collect();
                let items = client.create_jobs(&jobs).await?;
                if let Some(chronos::BatchItem::Error(e)) = items
                    .iter()
                    .find(|i| matches!(i, chronos::BatchItem::Error(_)))
                {
                    panic!("the server refused a bench job: {e:?}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

/// Waits until the server has no job of `handler` queued or running, i.e.
/// every ack has committed, by asking the API (push delivery's check;
/// throughput asks the store: [`Server::settled`]).
pub async fn settled(client: &Client, handler: &str) -> Res<()> {
    loop {
        let open = client
            .list_jobs(
                &chronos::ListJobs::new()
                    .handler(handler)
                    .status(chronos::JobStatus::Queued)
                    .status(chronos::JobStatus::Running)
                    .status(chronos::JobStatus::Scheduled)
                    .limit(1),
            )
            .await?;
        if open.data.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>7.0} jobs/s  ({n} in {:.2?})",
        n as f64 / d.as_secs_f64(),
        d
    )
}

/// The `q` quantile of sorted `samples`: index round((n-1)·q), the rule
/// of `percentiles` and of the peers' harness.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort();
    let at = |q: f64| quantile(&samples, q);
    format!(
        "p50 {:.2?}  p99 {:.2?}  max {:.2?}  ({} samples)",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}

/// A no-op job for the workers' `handler`.
pub fn bench_job(handler: &str) -> CreateJob {
    NewJob::new("bench", handler).build()
}

/// What a throughput run measured, in jobs per second (for `--mode
/// compare`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ThroughputFigures {
    pub enqueue: f64,
    pub drain: f64,
    pub end_to_end: f64,
}

/// What a latency run measured: create request sent → handler started.
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencyFigures {
    pub p50: Duration,
    pub p99: Duration,
}

impl LatencyFigures {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        if samples.is_empty() {
            return Self::default();
        }
        LatencyFigures {
            p50: quantile(&samples, 0.50),
            p99: quantile(&samples, 0.99),
        }
    }
}

pub fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

pub async fn throughput(server: &Server, t: &Throughput) -> Res<ThroughputFigures> {
    let client = Client::new(&server.base, &server.admin_key)?;
    println!(
        "  {} workers × {} slots over WebSocket, no-op handlers; {} clients enqueue by {}",
        t.workers, t.concurrency, t.creators, t.batch
    );

    // Enqueue a backlog with no worker connected, then drain it.
    let took = enqueue(&client, &bench_job("drain"), t.jobs, t.creators, t.batch).await?;
    println!("  enqueue           {}", rate(t.jobs, took));
    let mut figures = ThroughputFigures {
        enqueue: per_second(t.jobs, took),
        ..Default::default()
    };
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();
    let pool = Pool::start(server, "drain", t.workers, t.concurrency, &recorder)?;
    recorder.wait_for(t.jobs).await;
    server.settled("drain").await?;
    let took = started.elapsed();
    figures.drain = per_second(t.jobs, took);
    pool.stop().await?;
    println!(
        "  drain backlog     {}  repeats {}",
        rate(t.jobs, took),
        recorder.repeats()
    );

    // End to end: workers connected, jobs enqueued while they run.
    let recorder = Arc::new(Recorder::default());
    let pool = Pool::start(server, "flow", t.workers, t.concurrency, &recorder)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let enqueued = enqueue(&client, &bench_job("flow"), t.jobs, t.creators, t.batch).await?;
    recorder.wait_for(t.jobs).await;
    server.settled("flow").await?;
    let took = started.elapsed();
    figures.end_to_end = per_second(t.jobs, took);
    pool.stop().await?;
    println!(
        "  end to end        {}  repeats {}  (enqueue meanwhile {:.0} jobs/s)",
        rate(t.jobs, took),
        recorder.repeats(),
        t.jobs as f64 / enqueued.as_secs_f64()
    );
    let pickups = std::mem::take(&mut *recorder.pickups.lock().unwrap());
    println!("  pickup under load {}", percentiles(pickups));
    Ok(figures)
}

/// One job at a time on an otherwise idle server: due → handler start, and
/// create request sent → handler start.
pub async fn latency(server: &Server, samples: usize) -> Res<LatencyFigures> {
    let client = Client::new(&server.base, &server.admin_key)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Duration)>();
    let worker = Worker::builder(&server.base, &server.admin_key)
        .handle_signals(false)
        .worker_id("bench-latency")
        .handle("latency", move |ctx| {
            let late = (chrono::Utc::now() - ctx.run_at.0)
                .to_std()
                .unwrap_or_default();
            let _ = tx.send((Instant::now(), late));
            async { Ok::<_, JobError>(()) }
        })
        .build()?;
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut due, mut request) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let sent = Instant::now();
        client
            .create_job(&NewJob::new("bench", "latency").build())
            .await?;
        let (started, late) = rx.recv().await.ok_or("the latency worker stopped")?;
        due.push(late);
        request.push(started.saturating_duration_since(sent));
        // Let the ack commit: the server is idle again for the next one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.shutdown();
    running.await??;
    println!("  due → handler     {}", percentiles(due));
    println!("  create → handler  {}", percentiles(request.clone()));
    Ok(LatencyFigures::of(request))
}

/// The server's resident memory with `n` idle workers connected.
pub async fn memory(server: &Server, n: usize) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    // Warm up: one worker connected and gone, so that what the first
    // connection allocates once is not counted per worker.
    let warm = Arc::new(Recorder::default());
    Pool::start(server, "idle", 1, 1, &warm)?.stop().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server
        .resident_bytes()
        .ok_or("cannot read the server's memory")?;
    let recorder = Arc::new(Recorder::default());
    let pool = Pool::start(server, "idle", n, 1, &recorder)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = workers_connected(&client).await?;
        if connected >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {connected} of {n} workers connected within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A heartbeat round, so each session has done what an idle one does.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = server
        .resident_bytes()
        .ok_or("cannot read the server's memory")?;
    pool.stop().await?;
    let per = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "  {n} idle workers  server RSS {:.1} MiB → {:.1} MiB: {:.1} KiB per worker",
        before as f64 / 1_048_576.0,
        after as f64 / 1_048_576.0,
        per / 1024.0
    );
    Ok(())
}

async fn workers_connected(client: &Client) -> Res<usize> {
    Ok(client.list_workers().await?.len())
}
