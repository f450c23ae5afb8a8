//! `cargo run --release -p chronos-bench -- [--database-url postgres://…]`
//!
//! Starts a Chronos server in this process (the embedded store in a
//! temporary directory, or the PostgreSQL database given), then measures:
//!
//! 1. creation: N jobs over REST, from several concurrent clients;
//! 2. throughput: Rust SDK workers over WebSocket run and ack them all;
//! 3. pickup latency on an idle server: one job at a time, from the create
//!    request to the handler starting (p50, p99).
//!
//! It prints the figures and the machine they were measured on. Nothing
//! here is asserted: tests never time things, this command does.

use chronos::{Client, JobError, NewJob, Worker};
use chronos_server::config::StoreConfig;
use chronos_server::server::{prepare_store, run};
use chronos_server::store::sqlite::OpenMode;
use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Parser)]
#[command(about = "End-to-end figures for Chronos")]
struct Args {
    /// PostgreSQL URL of a database the benchmark may fill; default: the
    /// embedded store in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Jobs for the throughput run.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Worker processes' worth of SDK workers (each its own connection).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Concurrent REST clients creating jobs.
    #[arg(long, default_value_t = 16)]
    creators: usize,
    /// Samples for the pickup latency.
    #[arg(long, default_value_t = 300)]
    samples: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = match &args.database_url {
        Some(url) => StoreConfig::Postgres { url: url.clone() },
        None => StoreConfig::Sqlite {
            path: dir.path().join("chronos.db"),
        },
    };
    let (store, admin) = prepare_store(&config, OpenMode::Command).await?;
    let admin = admin.ok_or("the benchmark needs an empty database (no organization yet)")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, store, async {
        let _ = stopped.await;
    }));
    let client = Client::new(&base, &admin)?;

    print_machine(&config);

    // 1. Creation.
    let started = Instant::now();
    let mut creators = Vec::new();
    let per = args.jobs / args.creators;
    for _ in 0..args.creators {
        let client = client.clone();
        creators.push(tokio::spawn(async move {
            for _ in 0..per {
                client
                    .create_job(&NewJob::new("bench", "bench").build())
                    .await
                    .expect("create");
            }
        }));
    }
    for c in creators {
        c.await?;
    }
    let total = per * args.creators;
    let created_in = started.elapsed();
    println!(
        "create   {total} jobs over REST, {} clients: {:.0} jobs/s ({created_in:.2?})",
        args.creators,
        total as f64 / created_in.as_secs_f64()
    );

    // 2. Throughput: workers drain the backlog.
    let done = Arc::new(AtomicUsize::new(0));
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    let started = Instant::now();
    for i in 0..args.workers {
        let done = done.clone();
        let worker = Worker::builder(&base, &admin)
            .handle_signals(false)
            .worker_id(format!("bench-{i}"))
            .concurrency(args.concurrency)
            .handle("bench", move |_job| {
                let done = done.clone();
                async move {
                    done.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, JobError>(())
                }
            })
            .build()?;
        stops.push(worker.shutdown_handle());
        runs.push(tokio::spawn(worker.run()));
    }
    while done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ran_in = started.elapsed();
    for s in &stops {
        s.shutdown();
    }
    for r in runs {
        r.await??;
    }
    println!(
        "run      {total} jobs, {} workers × {} slots over WebSocket: {:.0} jobs/s ({ran_in:.2?})",
        args.workers,
        args.concurrency,
        total as f64 / ran_in.as_secs_f64()
    );
    println!(
        "overall  create + run: {:.0} jobs/s",
        total as f64 / (created_in + ran_in).as_secs_f64()
    );

    // 3. Pickup latency on an idle server.
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let worker = Worker::builder(&base, &admin)
        .handle_signals(false)
        .worker_id("bench-pickup")
        .handle("pickup", move |_job| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Instant::now());
                Ok::<_, JobError>(())
            }
        })
        .build()?;
    let stop_pickup = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let sent = Instant::now();
        client
            .create_job(&NewJob::new("bench", "pickup").build())
            .await?;
        let picked = rx.recv().await.ok_or("pickup worker stopped")?;
        samples.push(picked.saturating_duration_since(sent));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_pickup.shutdown();
    running.await??;
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "pickup   create request → handler start, idle server, {} samples: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn print_machine(config: &StoreConfig) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("unknown memory".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1_048_576.0)
        });
    println!(
        "machine  {cpu}, {cores} cores, {memory}, {}",
        std::env::consts::OS
    );
    println!("store    {}", config.describe());
    println!(
        "build    {}",
        if cfg!(debug_assertions) {
            "debug (use --release for real figures)"
        } else {
            "release"
        }
    );
}
