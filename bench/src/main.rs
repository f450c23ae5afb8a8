//! `cargo run --release -p chronos-bench -- [--store sqlite|postgres|both]
//! [--mode all|throughput|latency|memory]`
//!
//! Starts a real Chronos server process on a fresh store (the embedded one
//! in a temporary directory, or a new PostgreSQL database that is dropped
//! afterwards) and measures, with Rust SDK workers over WebSocket:
//!
//! - throughput: N jobs enqueued by batch, then drained by M workers with
//!   no-op handlers; and N more enqueued while the workers run (end to end),
//!   with the pickup latency (job due → handler start) under that load;
//! - latency: one job at a time on an idle server;
//! - memory: the server's resident memory per idle connected worker.
//!
//! It prints the figures and the machine they were measured on. Tests never
//! time anything; this command does (see docs/benchmarks.md).

mod machine;
mod measure;
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
    /// Jobs for each throughput run.
    #[arg(long, default_value_t = 50_000)]
    jobs: usize,
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
    /// Samples for the latency run.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Idle workers for the memory run.
    #[arg(long, default_value_t = 1000)]
    idle_workers: usize,
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
        Mode::All => &[Mode::Throughput, Mode::Latency, Mode::Memory],
        Mode::Throughput => &[Mode::Throughput],
        Mode::Latency => &[Mode::Latency],
        Mode::Memory => &[Mode::Memory],
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
    let server = Server::start(store).await?;
    let title = match mode {
        Mode::Throughput => "throughput",
        Mode::Latency => "latency, idle server",
        Mode::Memory => "memory",
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
                jobs: args.jobs,
                workers: args.workers,
                concurrency: args.concurrency,
                creators: args.creators,
                batch: args.batch,
            };
            measure::throughput(&server, &t).await
        }
        Mode::Latency => measure::latency(&server, args.samples).await,
        Mode::Memory => measure::memory(&server, args.idle_workers).await,
        Mode::All => unreachable!("expanded above"),
    }
}
