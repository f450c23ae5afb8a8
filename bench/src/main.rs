//! `cargo run --release -p chronos-bench -- [--store sqlite|postgres|both]
//! [--mode all|throughput|latency|memory|push|schedule|create|compare|keys|strict]
//! [--sdk rust|node|python|python-sync] [--history N [--expire-history]]`
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
//! - schedule: schedule precision, due time → job created and → leased;
//! - create: one producer process of an SDK creating jobs by batch;
//! - keys: the drain of a queue with per-key limits (`key_concurrency` 1
//!   over 1,000 keys, no queue-wide limit) beside the unlimited drain;
//! - strict: a queue of `concurrency` 1, previous job's end → next job's
//!   start.
//!
//! `--mode all` makes every measurement but create, compare and keys.
//!
//! `--sdk` runs the workers (throughput, latency) in one process written
//! with that SDK instead of this one (`sdk.rs`); `--history N` fills the
//! store with N finished jobs first (`history.rs`); `--mode compare` runs
//! throughput and latency on PostgreSQL, then the peers of `bench/peers`,
//! and prints the ratios (`compare.rs`).
//!
//! It prints the figures and the machine they were measured on. Tests never
//! time anything; this command does (see docs/benchmarks.md).

mod compare;
mod history;
mod machine;
mod measure;
mod push;
mod queues;
mod role;
mod schedule;
mod sdk;
mod server;

use clap::{Parser, ValueEnum};
use measure::{LatencyFigures, Res, ThroughputFigures};
use sdk::Sdk;
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
    /// Jobs for each throughput run, push's deliveries run, and each of
    /// keys' two drains [default: 50000; 10000 for push].
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
    /// Samples for each latency run (push: one at a time, and scheduled;
    /// strict: one job more than this).
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Concurrency keys the keys run spreads its jobs over.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
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
    /// Run the workers (throughput, latency) or the producer (create) in
    /// one process written with this SDK, with the same --workers and
    /// --concurrency [default: throughput and latency run Rust workers in
    /// the bench's own process; create runs a Rust process]. Node and
    /// Python need `bench/sdk-setup` first.
    #[arg(long, value_enum)]
    sdk: Option<Sdk>,
    /// Fill the fresh store with this many finished jobs (one execution
    /// each, spread over the last three days), by SQL, before measuring.
    #[arg(long, default_value_t = 0)]
    history: u64,
    /// Make the --history jobs past their retention period, so that the
    /// server deletes them while the measurement runs (it starts once the
    /// deletion has); prints how many it deleted meanwhile.
    #[arg(long, requires = "history")]
    expire_history: bool,
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

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum StoreChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Mode {
    All,
    Throughput,
    Latency,
    Memory,
    Push,
    Schedule,
    /// One producer creating --jobs jobs with an SDK's batch create,
    /// --batch per call (the Rust SDK unless --sdk says otherwise).
    Create,
    /// Throughput and latency on PostgreSQL, then `bench/peers/run` with
    /// the same --jobs, --batch and --samples: Graphile Worker, and BullMQ
    /// if Redis answers; prints Chronos's figure over each peer's.
    Compare,
    /// --jobs drained from the `default` queue, then --jobs spread over
    /// --keys keys of a queue with `key_concurrency` 1 and no queue-wide
    /// limit, by the throughput run's workers; prints the ratio.
    Keys,
    /// --samples + 1 jobs in a queue of `concurrency` 1, run by one worker
    /// of --concurrency slots: previous handler's end → next handler's
    /// start.
    Strict,
}

/// What a measurement hands back, for `--mode compare`.
enum Outcome {
    Printed,
    Throughput(ThroughputFigures),
    Latency(LatencyFigures),
}

fn main() -> std::process::ExitCode {
    match std::env::args().nth(1).as_deref() {
        // Re-executed as the server under test (see `server.rs`)…
        Some("serve") => return chronos_server::cli::main(),
        // …or as a Rust SDK process for `--sdk rust` (see `sdk.rs`).
        Some("worker") => return role::main(std::env::args().skip(1)),
        _ => {}
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

async fn run(args: Args) -> Res<()> {
    println!("machine  {}", machine::describe());
    if args.sdk.is_some()
        && !matches!(
            args.mode,
            Mode::Throughput | Mode::Latency | Mode::Create | Mode::Compare
        )
    {
        return Err("--sdk applies to --mode throughput, latency, create and compare".into());
    }
    if let Some(sdk) = args.sdk {
        // Before any store is made: a missing binding is said at once.
        sdk.check()?;
    }
    if args.mode == Mode::Compare {
        return compare::compare(&args).await;
    }
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
            // Not `keys`: its keyed drain alone takes 20–40 s a store.
            Mode::Strict,
        ],
        Mode::Throughput => &[Mode::Throughput],
        Mode::Latency => &[Mode::Latency],
        Mode::Memory => &[Mode::Memory],
        Mode::Push => &[Mode::Push],
        Mode::Schedule => &[Mode::Schedule],
        Mode::Create => &[Mode::Create],
        Mode::Keys => &[Mode::Keys],
        Mode::Strict => &[Mode::Strict],
        Mode::Compare => unreachable!("handled above"),
    };
    for &choice in stores {
        for &mode in modes {
            fresh(&args, choice, mode).await?;
        }
    }
    Ok(())
}

/// One measurement on a fresh store and server, so that none inherits
/// another's rows or connections.
async fn fresh(args: &Args, choice: StoreChoice, mode: Mode) -> Res<Outcome> {
    let store = match choice {
        StoreChoice::Postgres => Store::postgres(&args.database_url)
            .await
            .map_err(|e| format!("PostgreSQL at {}: {e}", args.database_url))?,
        _ => Store::sqlite()?,
    };
    let result = measure(args, &store, mode).await;
    store.drop_database().await;
    result
}

async fn measure(args: &Args, store: &Store, mode: Mode) -> Res<Outcome> {
    let flags = args.server_flags(mode);
    let mut server = Server::start(store, &flags).await?;
    let title = match mode {
        Mode::Throughput => "throughput",
        Mode::Latency => "latency, idle server",
        Mode::Memory => "memory",
        Mode::Push => "push delivery",
        Mode::Schedule => "schedule precision",
        Mode::Create => "batch create, one producer",
        Mode::Keys => "per-key limits",
        Mode::Strict => "strict order",
        Mode::All | Mode::Compare => unreachable!("expanded above"),
    };
    let sdk = match (mode, args.sdk) {
        (Mode::Throughput | Mode::Latency, Some(sdk)) => format!(" · {} SDK process", sdk.name()),
        (Mode::Create, sdk) => format!(" · {} SDK", sdk.unwrap_or(Sdk::Rust).name()),
        _ => String::new(),
    };
    println!(
        "\n{} · {title}{sdk} · {}",
        store.label(),
        machine::store(store).await
    );
    if args.history > 0 {
        // Filled with the server stopped; started again on the full store.
        let key = server.stop().await;
        history::fill(store, args.history).await?;
        if args.expire_history {
            history::expire(store).await?;
        }
        server = Server::restart(store, &flags, key).await?;
    }
    let deleting = if args.expire_history {
        Some(history::Deletion::begun(store, args.history).await?)
    } else {
        None
    };
    let outcome = run_mode(args, &server, mode).await?;
    if let Some(deletion) = deleting {
        deletion.report(store).await?;
    }
    Ok(outcome)
}

async fn run_mode(args: &Args, server: &Server, mode: Mode) -> Res<Outcome> {
    match mode {
        Mode::Throughput => {
            let t = measure::Throughput {
                jobs: args.jobs.unwrap_or(50_000),
                workers: args.workers,
                concurrency: args.concurrency,
                creators: args.creators,
                batch: args.batch,
            };
            let figures = match args.sdk {
                Some(sdk) => sdk::throughput(server, &t, sdk).await?,
                None => measure::throughput(server, &t).await?,
            };
            Ok(Outcome::Throughput(figures))
        }
        Mode::Latency => {
            let figures = match args.sdk {
                Some(sdk) => sdk::latency(server, args.samples, sdk).await?,
                None => measure::latency(server, args.samples).await?,
            };
            Ok(Outcome::Latency(figures))
        }
        Mode::Create => {
            let sdk = args.sdk.unwrap_or(Sdk::Rust);
            let jobs = args.jobs.unwrap_or(50_000);
            sdk::create(server, jobs, args.batch, sdk).await?;
            Ok(Outcome::Printed)
        }
        Mode::Memory => measure::memory(server, args.idle_workers)
            .await
            .map(|()| Outcome::Printed),
        Mode::Push => {
            let p = push::Push {
                jobs: args.jobs.unwrap_or(10_000),
                creators: args.creators,
                batch: args.batch,
                samples: args.samples,
                concurrency: args.push_concurrency,
                per_host: args.push_per_host,
            };
            push::push(server, &p).await.map(|()| Outcome::Printed)
        }
        Mode::Schedule => schedule::schedule(server, args.samples)
            .await
            .map(|()| Outcome::Printed),
        Mode::Keys => {
            let k = queues::Keys {
                jobs: args.jobs.unwrap_or(50_000),
                keys: args.keys,
                workers: args.workers,
                concurrency: args.concurrency,
                creators: args.creators,
                batch: args.batch,
            };
            queues::keys(server, &k).await.map(|()| Outcome::Printed)
        }
        Mode::Strict => queues::strict(server, args.samples + 1, args.concurrency, args.batch)
            .await
            .map(|()| Outcome::Printed),
        Mode::All | Mode::Compare => unreachable!("expanded above"),
    }
}
