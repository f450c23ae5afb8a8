//! `--history N`: the fresh store filled with N finished jobs before the
//! measurement, as a store that has run for a while holds them — written
//! by SQL, not through the API, which would take longer than the run.
//!
//! Each job is `completed` after one attempt and has one `completed`
//! execution, shaped as the server writes them (`pull` delivery, a small
//! JSON payload, a lease token, a worker id, `result` NULL as an ack
//! without a result leaves it). `created_at` (= `run_at`) is spread evenly
//! over three days ending an hour ago, with jitter; the attempt starts 1–20
//! ms after it and lasts 2 ms to 2 s; the job's timeout is the default 30 s. Ids are UUIDv7 of `created_at` (jobs)
//! and `started_at` (executions), as the server makes them, so id order is
//! creation order. The jobs go to four handlers other than the bench's.
//!
//! The server is stopped while the store is filled, then started again
//! (`main.rs`): it made the schema and the organization, and plans its
//! statements on the filled store. PostgreSQL is then vacuumed and
//! analysed, as autovacuum would have done by now, and checkpointed;
//! SQLite is checkpointed only — the server never runs `ANALYZE` or
//! `VACUUM` on it, so a real embedded store has neither.

use crate::server::{Store, connect};
use chrono::{DateTime, TimeDelta, Utc};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Bytes a finished job with its execution takes, tables and indexes,
/// measured with this fill: on PostgreSQL 15, `pg_database_size` grew by
/// 707 B per job over `--history 200000` and 703 B over 2,000,000 (the
/// "~1 KB" first guessed); on SQLite, the store's files by 1,091 B per job
/// over 200,000 (ids and times are text there). Used only to refuse a fill
/// the disk cannot hold, with the margin of [`check_disk`].
const PG_BYTES_PER_JOB: u64 = 750;
const SQLITE_BYTES_PER_JOB: u64 = 1_100;

/// Jobs per `INSERT … SELECT` (PostgreSQL) or per transaction (SQLite).
const PG_CHUNK: u64 = 1_000_000;
const SQLITE_CHUNK: u64 = 100_000;

/// The history spans this long, ending [`SPAN_END`] before now.
const SPAN: TimeDelta = TimeDelta::hours(72);
const SPAN_END: TimeDelta = TimeDelta::hours(1);

const HANDLERS: [&str; 4] = [
    "send-email",
    "resize-image",
    "sync-account",
    "charge-invoice",
];

pub async fn fill(store: &Store, n: u64) -> Res<()> {
    if let Some(url) = store.postgres_url() {
        fill_postgres(&url, n).await
    } else {
        let (dir, file) = store.sqlite_paths().ok_or("no store")?;
        tokio::task::spawn_blocking(move || fill_sqlite(&dir, &file, n).map_err(|e| e.to_string()))
            .await?
            .map_err(Into::into)
    }
}

/// The start of the history, and the time between two jobs.
fn span(n: u64) -> (DateTime<Utc>, f64) {
    let start = Utc::now() - SPAN_END - SPAN;
    let step = SPAN.as_seconds_f64() / n as f64;
    (start, step)
}

/// Refuses a fill of `need` bytes into `dir` unless the disk holds it with
/// a margin: one and a half times the estimate, plus 2 GiB for the WAL
/// the fill and the vacuum write.
fn check_disk(what: &str, dir: &Path, n: u64, per_job: u64) -> Res<()> {
    let need = n * per_job;
    let Some(free) = free_bytes(dir) else {
        println!(
            "  history           cannot tell the free space of {what} {} (not on this machine?): not checked",
            dir.display()
        );
        return Ok(());
    };
    let want = need + need / 2 + (2 << 30);
    if free < want {
        return Err(format!(
            "--history {n}: {what} {} has {} free; {n} finished jobs take about {} \
             (~{per_job} B each with its execution), and the fill wants {} with a margin. \
             Free some space or ask for fewer jobs.",
            dir.display(),
            gib(free),
            gib(need),
            gib(want)
        )
        .into());
    }
    Ok(())
}

/// Free bytes on the file system of `dir`, for an unprivileged user (`df`).
fn free_bytes(dir: &Path) -> Option<u64> {
    if !dir.exists() {
        return None;
    }
    let out = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kb: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// UUIDv7 of a time, in SQL: a random (v4) UUID with its first 48 bits
/// replaced by the time in milliseconds and its version bits set to 7.
/// PostgreSQL 15 has no `uuidv7()`; this one lives for the session only.
const PG_UUID7: &str = "
CREATE FUNCTION pg_temp.uuid7(t timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send(floor(extract(epoch FROM t) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$";

/// Jobs `$2 ≤ i < $3` of the history and their executions, in one
/// statement: `$1` the organization, `$4` the seconds between two jobs,
/// `$5` the start of the history.
const PG_FILL: &str = "
WITH timed AS MATERIALIZED (
    SELECT i, created, started,
           started + make_interval(secs => 0.002 + 2 * random() * random()) AS finished,
           pg_temp.uuid7(created) AS job_id, pg_temp.uuid7(started) AS execution_id,
           gen_random_uuid() AS token,
           (ARRAY['send-email', 'resize-image', 'sync-account', 'charge-invoice'])[1 + i % 4]
               AS handler,
           'worker-' || (i % 8) AS worker
    FROM (SELECT i, created, created + make_interval(secs => 0.001 + 0.019 * random()) AS started
          FROM (SELECT i, $5::timestamptz + make_interval(secs => $4::float8 * (i + 0.9 * random()))
                           AS created
                FROM generate_series($2::bigint, $3::bigint - 1) AS i) g) s
), jobs_in AS (
    INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority, status,
                      delivery_type, delivery, run_at, attempt, attempt_base, max_retries,
                      timeout_seconds, lease_token, worker_id, created_at, updated_at,
                      finished_at)
    SELECT job_id, $1, handler, handler,
           jsonb_build_object('account', i % 50000, 'ref', md5(i::text)), 'default', 0,
           'completed', 'pull', '{\"type\": \"pull\"}', created, 1, 0, 3, 30, token, worker,
           created, finished, finished
    FROM timed ORDER BY i
)
INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id, started_at,
                        finished_at)
SELECT execution_id, job_id, 1, 'completed', token, worker, started, finished
FROM timed ORDER BY i";

async fn fill_postgres(url: &str, n: u64) -> Res<()> {
    let client = connect(url).await?;
    match client.query_one("SHOW data_directory", &[]).await {
        Ok(row) => {
            let dir: String = row.get(0);
            check_disk(
                "PostgreSQL's data directory",
                Path::new(&dir),
                n,
                PG_BYTES_PER_JOB,
            )?;
        }
        Err(e) => println!(
            "  history           cannot read PostgreSQL's data_directory ({e}): free space not checked"
        ),
    }
    let size = async || -> Res<u64> {
        let row = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    };
    let before = size().await?;
    let org: Uuid = client
        .query_one(
            "SELECT id FROM organizations ORDER BY created_at LIMIT 1",
            &[],
        )
        .await?
        .get(0);
    client.batch_execute(PG_UUID7).await?;
    let (start, step) = span(n);
    let started = Instant::now();
    let fill = client.prepare(PG_FILL).await?;
    for from in (0..n).step_by(PG_CHUNK as usize) {
        let to = (from + PG_CHUNK).min(n);
        client
            .execute(&fill, &[&org, &(from as i64), &(to as i64), &step, &start])
            .await?;
        if n > PG_CHUNK {
            println!(
                "  history           {to} of {n} jobs after {:.1?}",
                started.elapsed()
            );
        }
    }
    let filled = started.elapsed();
    let started = Instant::now();
    // One statement a call: VACUUM cannot run inside a transaction, which
    // several statements of one simple query are.
    client.batch_execute("VACUUM (ANALYZE) jobs").await?;
    client.batch_execute("VACUUM (ANALYZE) executions").await?;
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        println!("  history           CHECKPOINT refused ({e}); measuring anyway");
    }
    let vacuumed = started.elapsed();
    let after = size().await?;
    let tables: (i64, i64) = {
        let row = client
            .query_one(
                "SELECT pg_total_relation_size('jobs'), pg_total_relation_size('executions')",
                &[],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    report(n, filled, "VACUUM (ANALYZE), CHECKPOINT", vacuumed);
    println!(
        "  store after fill  database {} (jobs {}, executions {}, with indexes): {:.0} B per job",
        mib(after),
        mib(tables.0 as u64),
        mib(tables.1 as u64),
        after.saturating_sub(before) as f64 / n as f64
    );
    Ok(())
}

fn report(n: u64, filled: Duration, then: &str, took: Duration) {
    println!(
        "  history           {n} finished jobs written by SQL in {filled:.1?} ({:.0} jobs/s); {then} {took:.1?}",
        n as f64 / filled.as_secs_f64()
    );
}

/// A small, fast generator for the jitter: the fill wants spread, not
/// quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn uuid7(t: DateTime<Utc>) -> Uuid {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        t.timestamp() as u64,
        t.timestamp_subsec_nanos(),
    );
    Uuid::new_v7(ts)
}

fn files_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn fill_sqlite(dir: &Path, file: &Path, n: u64) -> Res<()> {
    check_disk("the store's directory", dir, n, SQLITE_BYTES_PER_JOB)?;
    let before = files_size(dir);
    let mut conn = rusqlite::Connection::open(file)?;
    // This connection only: the server's own keeps synchronous = FULL.
    conn.pragma_update(None, "synchronous", "OFF")?;
    let org: String = conn.query_row(
        "SELECT id FROM organizations ORDER BY created_at LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let (start, step) = span(n);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let ms = |secs: f64| TimeDelta::microseconds((secs * 1e6) as i64);
    let started = Instant::now();
    for from in (0..n).step_by(SQLITE_CHUNK as usize) {
        let tx = conn.transaction()?;
        {
            let mut job = tx.prepare_cached(
                "INSERT INTO jobs (id, organization_id, name, handler, payload, queue, priority,
                     status, delivery_type, delivery, run_at, attempt, attempt_base, max_retries,
                     timeout_seconds, lease_token, worker_id, created_at, updated_at, finished_at)
                 VALUES (?1, ?2, ?3, ?3, ?4, 'default', 0, 'completed', 'pull',
                     '{\"type\":\"pull\"}', ?5, 1, 0, 3, 30, ?6, ?7, ?5, ?8, ?8)",
            )?;
            let mut execution = tx.prepare_cached(
                "INSERT INTO executions (id, job_id, attempt, status, lease_token, worker_id,
                     started_at, finished_at)
                 VALUES (?1, ?2, 1, 'completed', ?3, ?4, ?5, ?6)",
            )?;
            for i in from..(from + SQLITE_CHUNK).min(n) {
                let created = start + ms(step * (i as f64 + 0.9 * rng.unit()));
                let begun = created + ms(0.001 + 0.019 * rng.unit());
                let finished = begun + ms(0.002 + 2.0 * rng.unit() * rng.unit());
                let id = uuid7(created).to_string();
                let execution_id = uuid7(begun).to_string();
                let random = (u128::from(rng.next()) << 64 | u128::from(rng.next())).to_le_bytes();
                let token = uuid::Builder::from_random_bytes(random)
                    .into_uuid()
                    .to_string();
                let worker = format!("worker-{}", i % 8);
                let payload = format!(
                    "{{\"account\":{},\"ref\":\"{:016x}{:016x}\"}}",
                    i % 50_000,
                    rng.next(),
                    rng.next()
                );
                let (created, begun, finished) = (
                    sqlite_time(created),
                    sqlite_time(begun),
                    sqlite_time(finished),
                );
                job.execute(rusqlite::params![
                    id,
                    org,
                    HANDLERS[(i % 4) as usize],
                    payload,
                    created,
                    token,
                    worker,
                    finished
                ])?;
                execution.execute(rusqlite::params![
                    execution_id,
                    id,
                    token,
                    worker,
                    begun,
                    finished
                ])?;
            }
        }
        tx.commit()?;
    }
    let filled = started.elapsed();
    let started = Instant::now();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    report(n, filled, "WAL checkpoint", started.elapsed());
    let after = files_size(dir);
    println!(
        "  store after fill  {} in {}: {:.0} B per job",
        mib(after),
        dir.display(),
        after.saturating_sub(before) as f64 / n as f64
    );
    Ok(())
}

/// `--expire-history`: every finished job is past its period from now on
/// (periods of one minute, the shortest), so the server's retention
/// service deletes the filled history while the measurement runs. Written
/// with the server stopped; the server reads the periods at each batch.
pub async fn expire(store: &Store) -> Res<()> {
    const SET: &str = "UPDATE retention SET completed_seconds = 60, failed_seconds = 60, \
                       cancelled_seconds = 60";
    if let Some(url) = store.postgres_url() {
        connect(&url).await?.batch_execute(SET).await?;
    } else {
        let (_, file) = store.sqlite_paths().ok_or("no store")?;
        rusqlite::Connection::open(file)?.execute_batch(SET)?;
    }
    Ok(())
}

/// The history's jobs the store still holds (the measurement's own jobs
/// have other handlers), counted beside the running server (on SQLite, a
/// reader in WAL mode, which never waits on its writer).
async fn count(store: &Store) -> Res<u64> {
    let handlers = HANDLERS.map(|h| format!("'{h}'")).join(", ");
    let count = format!("SELECT count(*) FROM jobs WHERE handler IN ({handlers})");
    let n: i64 = if let Some(url) = store.postgres_url() {
        connect(&url).await?.query_one(&count, &[]).await?.get(0)
    } else {
        let (_, file) = store.sqlite_paths().ok_or("no store")?;
        let conn = rusqlite::Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.query_row(&count, [], |r| r.get(0))?
    };
    Ok(n as u64)
}

/// The server's retention deleting the history (`--expire-history`).
pub struct Deletion {
    left: u64,
    since: Instant,
}

impl Deletion {
    /// Waits (up to a minute) until the retention service has begun
    /// deleting the `filled` history — its first pass comes
    /// `retention::EVERY` after the server starts — then prints its pace
    /// on its own, over ten seconds.
    pub async fn begun(store: &Store, filled: u64) -> Res<Self> {
        let started = Instant::now();
        let first = loop {
            let left = count(store).await?;
            if left < filled {
                break left;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("--expire-history: the server deleted nothing within a minute".into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let since = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let left = count(store).await?;
        println!(
            "  retention         deleting the history, nothing else running: {:.0} jobs/s",
            first.saturating_sub(left) as f64 / since.elapsed().as_secs_f64()
        );
        Ok(Deletion {
            left,
            since: Instant::now(),
        })
    }

    /// Prints how much of the history was deleted since [`Deletion::begun`].
    pub async fn report(self, store: &Store) -> Res<()> {
        let after = count(store).await?;
        let took = self.since.elapsed().as_secs_f64();
        let deleted = self.left.saturating_sub(after);
        println!(
            "  retention         meanwhile, {deleted} of the history's jobs deleted in {took:.1} s \
             ({:.0} jobs/s), {after} left",
            deleted as f64 / took
        );
        Ok(())
    }
}
