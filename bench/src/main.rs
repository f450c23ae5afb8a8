//! `cargo run --release -p chronos-bench -- [--store sqlite|postgres|both]
//! [--mode all|throughput|latency|memory|push|schedule]`
//!
//! Starts a real Chronos server process on a fresh store (the embedded one
//! in a temporary directory, or a new PostgreSQL database that is dropped
//! afterwards) and measures, with Rust SDK workers over WebSocket:
//!
//! - throughput: N jobs enqueued by batch, then drained by M workers with
//!   no-op handlers; and N more enqueued while the workers run (end to end),
//!   with the pickup latency (job due → handler start) under that load;
//! - latency: one job at a time on an idle server;
//! - memory: the server's resident memory per idle connected worker;
//! - push: push delivery to an HTTP endpoint in this process — deliveries
//!   per second, and create → request received and due → request received
//!   on an idle server;
//! - schedule: schedule precision, due time → job created and → leased.
//!
//! It prints the figures and the machine they were measured on. Tests never
//! time anything; this command does (see docs/benchmarks.md).

mod machine;
mod measure;
mod push;
mod schedule;
mod server;

use clap::{Parser, ValueEnum};
use server::{Server, Store};

#[derive(Parser)]
#[command(about = "End-to-end figures for Chronos")]
struct Args {
    /// Which store to measure.
    #[arg(long, value_enum, default_value_t = StoreChoice::Both)]
    store: StoreChoice,
    /// Which measurements to make.
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// A PostgreSQL URL on which the benchmark may create (and drop) a
    /// database of its own.
    #[arg(
        long,
        env = "CHRONOS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Jobs for each throughput run, and for push's deliveries run
    /// [default: 50000; 10000 for push].
    #[arg(long)]
    jobs: Option<usize>,
    /// SDK workers, each with its own WebSocket connection.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 512)]
    concurrency: u32,
    /// Clients enqueueing at once.
    #[arg(long, default_value_t = 4)]
    creators: usize,
    /// Jobs per `POST /v1/jobs/batch`.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Samples for each latency run (push: one at a time, and scheduled).
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Idle workers for the memory run.
    #[arg(long, default_value_t = 1000)]
    idle_workers: usize,
    /// The server's `--push-concurrency`: push calls in flight at most
    /// [default: the server's].
    #[arg(long)]
    push_concurrency: Option<u32>,
    /// The server's `--push-per-host`: push calls in flight at most to one
    /// host [default: the server's].
    #[arg(long)]
    push_per_host: Option<u32>,
}

impl Args {
    /// What `chronos serve` is started with besides its store.
    fn server_flags(&self, mode: Mode) -> Vec<String> {
        if mode != Mode::Push {
            return Vec::new();
        }
        // The push endpoint is on loopback, which the server refuses
        // without this.
        let mut flags = vec!["--allow-private-targets".to_string()];
        if let Some(n) = self.push_concurrency {
            flags.extend(["--push-concurrency".into(), n.to_string()]);
        }
        if let Some(n) = self.push_per_host {
            flags.extend(["--push-per-host".into(), n.to_string()]);
        }
        flags
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    All,
    Throughput,
    Latency,
    Memory,
    Push,
    Schedule,
}

fn main() -> std::process::ExitCode {
    // Re-executed as the server under test (see `server.rs`).
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return chronos_server::cli::main();
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    println!("machine  {}", machine::describe());
    let stores: &[StoreChoice] = match args.store {
        StoreChoice::Both => &[StoreChoice::Sqlite, StoreChoice::Postgres],
        StoreChoice::Sqlite => &[StoreChoice::Sqlite],
        StoreChoice::Postgres => &[StoreChoice::Postgres],
    };
    let modes: &[Mode] = match args.mode {
        Mode::All => &[
            Mode::Throughput,
            Mode::Latency,
            Mode::Memory,
            Mode::Push,
            Mode::Schedule,
        ],
        Mode::Throughput => &[Mode::Throughput],
        Mode::Latency => &[Mode::Latency],
        Mode::Memory => &[Mode::Memory],
        Mode::Push => &[Mode::Push],
        Mode::Schedule => &[Mode::Schedule],
    };
    for &choice in stores {
        for &mode in modes {
            // A fresh store and server for each measurement, so none
            // inherits another's rows or connections.
            let store = match choice {
                StoreChoice::Postgres => Store::postgres(&args.database_url)
                    .await
                    .map_err(|e| format!("PostgreSQL at {}: {e}", args.database_url))?,
                _ => Store::sqlite()?,
            };
            let result = measure(&args, &store, mode).await;
            store.drop_database().await;
            result?;
        }
    }
    Ok(())
}

async fn measure(args: &Args, store: &Store, mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(store, &args.server_flags(mode)).await?;
    let title = match mode {
        Mode::Throughput => "throughput",
        Mode::Latency => "latency, idle server",
        Mode::Memory => "memory",
        Mode::Push => "push delivery",
        Mode::Schedule => "schedule precision",
        Mode::All => unreachable!("expanded above"),
    };
    println!(
        "\n{} · {title} · {}",
        store.label(),
        machine::store(store).await
    );
    match mode {
        Mode::Throughput => {
            let t = measure::Throughput {
                jobs: args.jobs.unwrap_or(50_000),
                workers: args.workers,
                concurrency: args.concurrency,
                creators: args.creators,
                batch: args.batch,
            };
            measure::throughput(&server, &t).await
        }
        Mode::Latency => measure::latency(&server, args.samples).await,
        Mode::Memory => measure::memory(&server, args.idle_workers).await,
        Mode::Push => {
            let p = push::Push {
                jobs: args.jobs.unwrap_or(10_000),
                creators: args.creators,
                batch: args.batch,
                samples: args.samples,
                concurrency: args.push_concurrency,
                per_host: args.push_per_host,
            };
            push::push(&server, &p).await
        }
        Mode::Schedule => schedule::schedule(&server, args.samples).await,
        Mode::All => unreachable!("expanded above"),
    }
}
