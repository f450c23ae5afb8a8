//! `--sdk rust|node|python|python-sync`: the workers (or the producer) are
//! one process of their own, written with that SDK — `bench/workers/`
//! holds the Node and Python ones; the Rust one is this binary,
//! re-executed as `chronos-bench worker` (`role.rs`) — so that the SDKs
//! are compared process against process. The bench still starts the
//! server, enqueues, and keeps the clock.
//!
//! A worker process speaks a line protocol, the same in every SDK:
//!
//! - `work --url U --key K --handler H --workers W --concurrency C
//!   --every E --total T`: makes W workers of C slots each (one WebSocket
//!   each) with a no-op handler for H, prints `ready`, and waits for `go`
//!   on stdin; then starts them and prints `connected` once all are. Each
//!   run counts; at every E-th run, and at the T-th, it prints `ran N`. On
//!   `stop` (or the end of stdin) it stops its workers gracefully and
//!   prints `stopped N`, N the runs it counted.
//! - `create --url U --key K --handler H --jobs N --batch B`: prints
//!   `ready`, waits for `go`, then creates N jobs with the SDK's batch
//!   create, B at a time, one call after another, and prints `created N`.
//!
//! The bench reads the lines as they come and times them on its own clock:
//! the process's start-up (loading Node or Python and the binding) is not
//! measured; connecting is, as in the in-process run.

use crate::measure::{
    LatencyFigures, Res, Throughput, ThroughputFigures, bench_job, enqueue, per_second,
    percentiles, rate,
};
use crate::server::Server;
use chronos::{Client, NewJob};
use clap::ValueEnum;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Which SDK the worker (or producer) process is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sdk {
    /// The Rust SDK: this binary re-executed as `chronos-bench worker`.
    Rust,
    /// The Node SDK: `node bench/workers/worker.js`, async no-op handlers.
    Node,
    /// The Python SDK: `bench/workers/worker.py`, `async def` no-op
    /// handlers on the worker's event loop.
    Python,
    /// The Python SDK: plain `def` no-op handlers on the worker's thread
    /// pool; the synchronous `Client` for `--mode create`.
    PythonSync,
}

/// `bench/`, where the worker scripts and the bindings built for the
/// bench (`bench/sdk-setup`) are.
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `bench/sdk-setup` puts the bindings: `node/` (the Node package)
/// and `venv/` (a virtualenv with the Python package).
fn sdk_dir() -> PathBuf {
    std::env::var_os("CHRONOS_BENCH_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench_dir().join(".sdk"))
}

/// A job that makes no progress for this long is a stall, reported.
const STALL: Duration = Duration::from_secs(30);
/// How long a process may take to start, or to connect its workers.
const START: Duration = Duration::from_secs(60);

impl Sdk {
    pub fn name(self) -> &'static str {
        match self {
            Sdk::Rust => "rust",
            Sdk::Node => "node",
            Sdk::Python => "python",
            Sdk::PythonSync => "python-sync",
        }
    }

    /// What the handlers are, for the figures' header.
    fn handlers(self) -> &'static str {
        match self {
            Sdk::Rust => "async no-op handlers",
            Sdk::Node => "async no-op handlers",
            Sdk::Python => "`async def` no-op handlers",
            Sdk::PythonSync => "plain `def` no-op handlers on the SDK's thread pool",
        }
    }

    /// The batch create call, for the figures' header.
    fn batch_call(self) -> &'static str {
        match self {
            Sdk::Rust => "Client::create_jobs",
            Sdk::Node => "client.createJobs",
            Sdk::Python => "await AsyncClient.create_jobs",
            Sdk::PythonSync => "Client.create_jobs",
        }
    }

    /// Whether this SDK's process can start: its binding is built (if not,
    /// the error says how to build it).
    pub fn check(self) -> Res<()> {
        self.command().map(drop)
    }

    /// The command that starts this SDK's process, once its binding is
    /// known to be there; the role and its flags follow.
    fn command(self) -> Res<Command> {
        let workers = bench_dir().join("workers");
        match self {
            Sdk::Rust => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("worker");
                Ok(c)
            }
            Sdk::Node => {
                let package = sdk_dir().join("node");
                if !package.join("native.js").is_file() || !has_addon(&package) {
                    return Err(format!(
                        "--sdk node needs the Node binding built for the bench, and {} holds none.\n\
                         Build it (release; a few minutes from cold): bench/sdk-setup node",
                        package.display()
                    )
                    .into());
                }
                let mut c = Command::new("node");
                c.arg(workers.join("worker.js"))
                    .env("CHRONOS_BENCH_NODE_SDK", &package);
                Ok(c)
            }
            Sdk::Python | Sdk::PythonSync => {
                let python = sdk_dir().join("venv/bin/python");
                let imports = Command::new(&python)
                    .args(["-c", "import chronos._native"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !imports {
                    return Err(format!(
                        "--sdk {} needs the Python binding built for the bench, and {} cannot import it.\n\
                         Build it (release; a few minutes from cold): bench/sdk-setup python",
                        self.name(),
                        python.display()
                    )
                    .into());
                }
                let mut c = Command::new(python);
                c.arg(workers.join("worker.py"));
                Ok(c)
            }
        }
    }

    /// Flags every role of this SDK takes after its own.
    fn extra(self) -> &'static [&'static str] {
        match self {
            Sdk::PythonSync => &["--sync"],
            _ => &[],
        }
    }
}

/// Whether `dir` holds a compiled Node addon (`*.node`).
fn has_addon(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "node"))
    })
}

/// One SDK process, its stdout read line by line (each line timed as it
/// arrives) and its stdin the bench's commands. Killed when dropped.
pub struct Process {
    label: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<(Instant, String)>,
    /// The last `ran N` seen, whatever was waited for.
    runs: usize,
}

impl Process {
    pub fn spawn(sdk: Sdk, role: &str, flags: &[String]) -> Res<Process> {
        let mut child = sdk
            .command()?
            .arg(role)
            .args(flags)
            .args(sdk.extra())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {} process: {e}", sdk.name()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Process {
            label: format!("{} {role}", sdk.name()),
            child,
            stdin,
            lines,
            runs: 0,
        })
    }

    /// The next line that starts with `word`, and when it arrived; the
    /// rest of the line is returned. `ran N` and `connected` lines met on
    /// the way are noted (workers run jobs as soon as the first of them
    /// connects); other lines are shown, on stderr.
    pub async fn next(&mut self, word: &str, within: Duration) -> Res<(Instant, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => {
                    return Err(
                        format!("{}: no `{word}` line within {within:.0?}", self.label).into(),
                    );
                }
                Ok(None) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    return Err(format!(
                        "{}: the process ended before `{word}` ({})",
                        self.label,
                        status.unwrap_or_else(|e| e.to_string())
                    )
                    .into());
                }
                Ok(Some((at, line))) => {
                    let (first, rest) = line.split_once(' ').unwrap_or((&line, ""));
                    if first == "ran" {
                        self.runs = rest.trim().parse()?;
                    }
                    if first == word {
                        return Ok((at, rest.trim().to_string()));
                    }
                    if first != "ran" && first != "connected" {
                        eprintln!("  [{}] {line}", self.label);
                    }
                }
            }
        }
    }

    pub fn send(&mut self, command: &str) -> Res<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Waits for `ran N` with N ≥ `total`; fails if no line comes for
    /// [`STALL`].
    pub async fn ran(&mut self, total: usize) -> Res<()> {
        while self.runs < total {
            self.next("ran", STALL).await?;
        }
        Ok(())
    }

    /// Stops the workers gracefully; returns the runs they counted.
    pub async fn stop(mut self) -> Res<usize> {
        self.send("stop")?;
        let (_, n) = self.next("stopped", START).await?;
        self.exit().await?;
        Ok(n.parse()?)
    }

    /// Waits for the process to exit by itself, and for a clean exit.
    pub async fn exit(&mut self) -> Res<()> {
        let deadline = Instant::now() + START;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    return Err(format!("{}: the process ended with {status}", self.label).into());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{}: the process did not exit", self.label).into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The flags of a `work` process.
fn work(
    server: &Server,
    handler: &str,
    workers: usize,
    concurrency: u32,
    every: usize,
    total: usize,
) -> Vec<String> {
    [
        ("--url", server.base.clone()),
        ("--key", server.admin_key.clone()),
        ("--handler", handler.to_string()),
        ("--workers", workers.to_string()),
        ("--concurrency", concurrency.to_string()),
        ("--every", every.to_string()),
        ("--total", total.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// Runs reported by a worker process, and how many of them were repeats.
fn repeats(runs: usize, jobs: usize) -> usize {
    // Every job completed (checked by `settled`) ran at least once, so runs
    // beyond one per job are repeats.
    runs.saturating_sub(jobs)
}

/// `--mode throughput` with the workers in one `sdk` process: the same
/// phases as the in-process run (`measure::throughput`).
pub async fn throughput(server: &Server, t: &Throughput, sdk: Sdk) -> Res<ThroughputFigures> {
    let client = Client::new(&server.base, &server.admin_key)?;
    println!(
        "  1 {} process: {} workers × {} slots over WebSocket, {}; \
         the bench's {} clients enqueue by {}",
        sdk.name(),
        t.workers,
        t.concurrency,
        sdk.handlers(),
        t.creators,
        t.batch
    );
    const EVERY: usize = 1000;

    // Enqueue a backlog with no worker connected, then drain it: the clock
    // starts at `go`, so it counts connecting, not loading the runtime.
    let took = enqueue(&client, &bench_job("drain"), t.jobs, t.creators, t.batch).await?;
    println!("  enqueue           {}", rate(t.jobs, took));
    let mut figures = ThroughputFigures {
        enqueue: per_second(t.jobs, took),
        ..Default::default()
    };
    let flags = work(server, "drain", t.workers, t.concurrency, EVERY, t.jobs);
    let mut worker = Process::spawn(sdk, "work", &flags)?;
    worker.next("ready", START).await?;
    let started = Instant::now();
    worker.send("go")?;
    worker.ran(t.jobs).await?;
    server.settled("drain").await?;
    let took = started.elapsed();
    figures.drain = per_second(t.jobs, took);
    let runs = worker.stop().await?;
    println!(
        "  drain backlog     {}  repeats {}",
        rate(t.jobs, took),
        repeats(runs, t.jobs)
    );

    // End to end: workers connected, jobs enqueued while they run.
    let flags = work(server, "flow", t.workers, t.concurrency, EVERY, t.jobs);
    let mut worker = Process::spawn(sdk, "work", &flags)?;
    worker.next("ready", START).await?;
    worker.send("go")?;
    worker.next("connected", START).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let enqueued = enqueue(&client, &bench_job("flow"), t.jobs, t.creators, t.batch).await?;
    worker.ran(t.jobs).await?;
    server.settled("flow").await?;
    let took = started.elapsed();
    figures.end_to_end = per_second(t.jobs, took);
    let runs = worker.stop().await?;
    println!(
        "  end to end        {}  repeats {}  (enqueue meanwhile {:.0} jobs/s)",
        rate(t.jobs, took),
        repeats(runs, t.jobs),
        per_second(t.jobs, enqueued)
    );
    // The handler's start is in another process (and Node's and Python's
    // jobs carry no `run_at`): the store's lease time stands for it.
    let leased = server.probe.leased_after_due("flow").await?;
    println!(
        "  pickup under load {}  (due → leased)",
        percentiles(leased)
    );
    Ok(figures)
}

/// `--mode latency` with one worker in an `sdk` process: one job at a
/// time on an idle server; the handler prints a line, and the bench times
/// its arrival.
pub async fn latency(server: &Server, samples: usize, sdk: Sdk) -> Res<LatencyFigures> {
    let client = Client::new(&server.base, &server.admin_key)?;
    println!(
        "  1 {} process: 1 worker × {} slots, {}",
        sdk.name(),
        chronos::worker::DEFAULT_CONCURRENCY,
        sdk.handlers()
    );
    let flags = work(
        server,
        "latency",
        1,
        chronos::worker::DEFAULT_CONCURRENCY,
        1,
        samples,
    );
    let mut worker = Process::spawn(sdk, "work", &flags)?;
    worker.next("ready", START).await?;
    worker.send("go")?;
    worker.next("connected", START).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut request = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = Instant::now();
        client
            .create_job(&NewJob::new("bench", "latency").build())
            .await?;
        let (started, _) = worker.next("ran", Duration::from_secs(5)).await?;
        request.push(started.saturating_duration_since(sent));
        // Let the ack commit: the server is idle again for the next one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs = worker.stop().await?;
    if runs != samples {
        println!("  UNEXPECTED        {runs} runs for {samples} jobs");
    }
    // No due → handler: Node's and Python's jobs carry no `run_at`, and
    // due → leased is 0 here, each job being handed to the waiting worker
    // as it is inserted.
    println!(
        "  create → handler  {}  (the handler's line read by the bench)",
        percentiles(request.clone())
    );
    Ok(LatencyFigures::of(request))
}

/// `--mode create`: one `sdk` process creates `jobs` jobs with the SDK's
/// batch create, `batch` per call, one call at a time.
pub async fn create(server: &Server, jobs: usize, batch: usize, sdk: Sdk) -> Res<f64> {
    println!(
        "  1 {} process, {} of {} jobs, one call at a time",
        sdk.name(),
        sdk.batch_call(),
        batch
    );
    let flags: Vec<String> = [
        ("--url", server.base.clone()),
        ("--key", server.admin_key.clone()),
        ("--handler", "create".to_string()),
        ("--jobs", jobs.to_string()),
        ("--batch", batch.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    let mut producer = Process::spawn(sdk, "create", &flags)?;
    producer.next("ready", START).await?;
    let started = Instant::now();
    producer.send("go")?;
    let (done, _) = producer.next("created", Duration::from_secs(3600)).await?;
    producer.exit().await?;
    let took = done.saturating_duration_since(started);
    println!("  create            {}", rate(jobs, took));
    Ok(per_second(jobs, took))
}
