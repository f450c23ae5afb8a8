//! What flow control costs (issue 17): a queue with per-key limits drained
//! beside the unlimited `default` queue (`keys`), and how soon a queue that
//! runs one job at a time starts its next job (`strict`). Each prints its
//! figures and its checks; nothing is asserted.

use crate::measure::{Pool, Recorder, Res, enqueue_each, per_second, percentiles, rate};
use crate::server::Server;
use chrono::{DateTime, Utc};
use chronos::{Client, CreateQueue, JobError, NewJob};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// No run for this long is a stall, reported rather than waited out.
const QUIET: Duration = Duration::from_secs(60);

pub struct Keys {
    pub jobs: usize,
    pub keys: usize,
    pub workers: usize,
    pub concurrency: u32,
    pub creators: usize,
    pub batch: usize,
}

/// A started job, as its handler saw it: its key and its due time.
type Start = (Option<String>, DateTime<Utc>);

/// How many of `starts` (in the order their handlers started) started
/// after a job of the same key that was due later. The API gives `run_at`
/// to the millisecond, and the store orders by it to the microsecond
/// (PostgreSQL), then by id: jobs of one key due in the same millisecond
/// (from batches inserted side by side) can't be told apart, and are not
/// counted.
fn order_breaks(starts: &[Start]) -> usize {
    let mut last: HashMap<&Option<String>, DateTime<Utc>> = HashMap::new();
    let mut breaks = 0;
    for (key, run_at) in starts {
        if let Some(prev) = last.insert(key, *run_at)
            && prev > *run_at
        {
            breaks += 1;
        }
    }
    breaks
}

/// `n` jobs of `handler` in `queue` (`default` if `None`), job `i` with the
/// key `i mod keys` (none if `keys` is 0), enqueued with no worker
/// connected, then drained by the pool; checked to have run exactly once.
/// Returns the drain rate in jobs/s.
async fn drain(
    server: &Server,
    client: &Client,
    k: &Keys,
    handler: &'static str,
    queue: Option<&'static str>,
) -> Res<f64> {
    let keys = if queue.is_some() { k.keys } else { 0 };
    let took = enqueue_each(client, k.jobs, k.creators, k.batch, move |i| {
        let mut job = NewJob::new("bench", handler);
        if let Some(q) = queue {
            job = job.queue(q);
        }
        if keys > 0 {
            job = job.concurrency_key(format!("key-{:04}", i % keys));
        }
        job.build()
    })
    .await?;
    let label = queue.unwrap_or("default");
    println!("  enqueue, {label:<9} {}", rate(k.jobs, took));
    let recorder = Arc::new(Recorder::default());
    let starts: Arc<Mutex<Vec<Start>>> = Arc::new(Mutex::new(Vec::with_capacity(k.jobs)));
    let started = Instant::now();
    let pool = {
        let (recorder, starts) = (recorder.clone(), starts.clone());
        Pool::start_with(server, handler, k.workers, k.concurrency, move |ctx| {
            starts
                .lock()
                .unwrap()
                .push((ctx.concurrency_key.clone(), ctx.run_at.0));
            recorder.record(&ctx);
            async { Ok::<_, JobError>(()) }
        })?
    };
    recorder.wait_for_or_stall(k.jobs, QUIET).await?;
    server.settled(handler).await?;
    let took = started.elapsed();
    pool.stop().await?;
    let (jobs, completed, attempts) = server.probe.finished(handler).await?;
    let breaks = order_breaks(&starts.lock().unwrap());
    println!(
        "  drain, {label:<11} {}  repeats {}  completed {completed} of {jobs}, {attempts} attempts{}",
        rate(k.jobs, took),
        recorder.repeats(),
        if keys > 0 {
            format!(", key order breaks {breaks}")
        } else {
            String::new()
        }
    );
    if recorder.distinct() != k.jobs || completed != k.jobs as i64 || attempts != jobs {
        println!("  ANOMALY: not every job completed exactly once");
    }
    Ok(per_second(k.jobs, took))
}

/// `--mode keys`: the unlimited drain (the `default` queue), then the same
/// jobs in a queue without a queue-wide limit (`concurrency: null`) but
/// `key_concurrency: 1`, spread over `keys` keys, on the same server.
pub async fn keys(server: &Server, k: &Keys) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    println!(
        "  {} workers × {} slots over WebSocket, no-op handlers; {} clients enqueue by {}; \
         {} jobs each; queue `keyed`: concurrency null, key_concurrency 1, {} keys",
        k.workers, k.concurrency, k.creators, k.batch, k.jobs, k.keys
    );
    let unlimited = drain(server, &client, k, "unlimited", None).await?;
    let queue = client
        .create_queue(&CreateQueue {
            name: Some("keyed".into()),
            concurrency: Some(None),
            key_concurrency: Some(1),
            ..Default::default()
        })
        .await?;
    if queue.concurrency.is_some() || queue.key_concurrency != Some(1) {
        return Err(format!(
            "the keyed queue was made with concurrency {:?}, key_concurrency {:?}",
            queue.concurrency, queue.key_concurrency
        )
        .into());
    }
    let keyed = drain(server, &client, k, "keyed", Some("keyed")).await?;
    println!("  keyed / unlimited {:.2}", keyed / unlimited);
    Ok(())
}

/// `--mode strict`: `jobs` jobs in a queue of `concurrency: 1`, enqueued
/// with no worker connected, then run by one worker of `slots` slots: for
/// each job after the first, the previous job's handler returning (the SDK
/// sends its ack then) → this job's handler starting.
pub async fn strict(server: &Server, jobs: usize, slots: u32, batch: usize) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    println!(
        "  1 worker × {slots} slots over WebSocket, no-op handler; {jobs} jobs in a queue of \
         concurrency 1"
    );
    let queue = client
        .create_queue(&CreateQueue {
            name: Some("strict".into()),
            concurrency: Some(Some(1)),
            ..Default::default()
        })
        .await?;
    if queue.concurrency != Some(1) {
        return Err(format!("the strict queue has concurrency {:?}", queue.concurrency).into());
    }
    let took = enqueue_each(&client, jobs, 1, batch, |_| {
        NewJob::new("bench", "strict").queue("strict").build()
    })
    .await?;
    println!("  enqueue           {}", rate(jobs, took));
    // Each run: handler start, handler end, and its place in fifo order
    // (`run_at`, then id: enqueued one batch after another, so a later
    // batch is due later and has the greater ids, to the millisecond too).
    type Run = (Instant, Instant, DateTime<Utc>, Uuid);
    let runs: Arc<Mutex<Vec<Run>>> = Arc::new(Mutex::new(Vec::with_capacity(jobs)));
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();
    let pool = {
        let (recorder, runs) = (recorder.clone(), runs.clone());
        Pool::start_with(server, "strict", 1, slots, move |ctx| {
            let start = Instant::now();
            let (run_at, id) = (ctx.run_at.0, ctx.id);
            let (recorder, runs) = (recorder.clone(), runs.clone());
            async move {
                runs.lock()
                    .unwrap()
                    .push((start, Instant::now(), run_at, id));
                recorder.ran(id);
                Ok::<_, JobError>(())
            }
        })?
    };
    recorder.wait_for_or_stall(jobs, QUIET).await?;
    server.settled("strict").await?;
    let took = started.elapsed();
    pool.stop().await?;
    let mut runs = std::mem::take(&mut *runs.lock().unwrap());
    runs.sort_by_key(|r| r.0);
    let (mut gaps, mut overlaps, mut out_of_order) = (Vec::new(), 0, 0);
    for pair in runs.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if next.0 < prev.1 {
            overlaps += 1;
        }
        if (next.2, next.3) < (prev.2, prev.3) {
            out_of_order += 1;
        }
        gaps.push(next.0.saturating_duration_since(prev.1));
    }
    let (n, completed, attempts) = server.probe.finished("strict").await?;
    println!(
        "  run               {}  repeats {}  completed {completed} of {n}, {attempts} attempts, \
         overlaps {overlaps}, out of order {out_of_order}",
        rate(jobs, took),
        recorder.repeats()
    );
    println!("  end → next start  {}", percentiles(gaps));
    if recorder.distinct() != jobs || completed != jobs as i64 || attempts != n {
        println!("  ANOMALY: not every job completed exactly once");
    }
    Ok(())
}
