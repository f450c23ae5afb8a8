//! `chronos-bench worker work|create …`: the Rust SDK's worker (or
//! producer) process for `--sdk rust`, speaking the line protocol of
//! `sdk.rs` — as `bench/workers/worker.js` and `worker.py` do for Node and
//! Python.

use chronos::{BatchItem, Client, JobError, NewJob, Worker};
use clap::Parser;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    name = "chronos-bench worker",
    about = "A Rust SDK process for --sdk rust"
)]
enum Role {
    /// Workers with a no-op handler.
    Work {
        #[command(flatten)]
        server: Server,
        #[arg(long)]
        workers: usize,
        #[arg(long)]
        concurrency: u32,
        /// Print `ran N` at every this many runs.
        #[arg(long)]
        every: usize,
        /// …and at this one.
        #[arg(long)]
        total: usize,
    },
    /// A producer: batch creates, one at a time.
    Create {
        #[command(flatten)]
        server: Server,
        #[arg(long)]
        jobs: usize,
        #[arg(long)]
        batch: usize,
    },
}

/// Where both roles find the server, and the handler they use.
#[derive(clap::Args)]
struct Server {
    #[arg(long)]
    url: String,
    #[arg(long)]
    key: String,
    #[arg(long)]
    handler: String,
}

/// `args` is the command line after `chronos-bench`: `worker <role> …`.
pub fn main(args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let role = Role::parse_from(args);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(role)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chronos-bench worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The bench's commands, one a line; `None` once stdin ends.
fn commands() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line.trim().to_string()).is_err() {
                break;
            }
        }
    });
    rx
}

async fn expect(commands: &mut mpsc::UnboundedReceiver<String>, word: &str) -> Res<()> {
    match commands.recv().await {
        Some(line) if line == word => Ok(()),
        Some(line) => Err(format!("expected `{word}`, got `{line}`").into()),
        None => Err(format!("stdin ended before `{word}`").into()),
    }
}

async fn run(role: Role) -> Res<()> {
    let mut commands = commands();
    match role {
        Role::Work {
            server: Server { url, key, handler },
            workers,
            concurrency,
            every,
            total,
        } => {
            let count = Arc::new(AtomicUsize::new(0));
            let mut built = Vec::new();
            for i in 0..workers {
                let count = count.clone();
                let worker = Worker::builder(&url, &key)
                    .handle_signals(false)
                    .worker_id(format!("bench-rust-{handler}-{i}"))
                    .concurrency(concurrency)
                    .handle(&handler, move |_job| {
                        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_multiple_of(every) || n == total {
                            println!("ran {n}");
                        }
                        async { Ok::<_, JobError>(()) }
                    })
                    .build()?;
                built.push(worker);
            }
            println!("ready");
            expect(&mut commands, "go").await?;
            let mut stops = Vec::new();
            let mut connections = Vec::new();
            let mut runs = Vec::new();
            for worker in built {
                stops.push(worker.shutdown_handle());
                connections.push(worker.connection());
                runs.push(tokio::spawn(worker.run()));
            }
            for mut c in connections {
                c.wait_for(|&up| up)
                    .await
                    .map_err(|_| "a worker stopped before it connected")?;
            }
            println!("connected");
            while let Some(line) = commands.recv().await {
                if line == "stop" {
                    break;
                }
            }
            for s in &stops {
                s.shutdown();
            }
            for r in runs {
                r.await??;
            }
            println!("stopped {}", count.load(Ordering::Relaxed));
        }
        Role::Create {
            server: Server { url, key, handler },
            jobs,
            batch,
        } => {
            let client = Client::new(&url, &key)?;
            let job = NewJob::new("bench", &handler).build();
            println!("ready");
            expect(&mut commands, "go").await?;
            for from in (0..jobs).step_by(batch.max(1)) {
                let n = batch.min(jobs - from);
                let items = client.create_jobs(&vec![job.clone(); n]).await?;
                if let Some(BatchItem::Error(e)) =
                    items.iter().find(|i| matches!(i, BatchItem::Error(_)))
                {
                    return Err(format!("the server refused a bench job: {e:?}").into());
                }
            }
            println!("created {jobs}");
        }
    }
    Ok(())
}
