//! `--mode compare`: Chronos and its peers in one run, on the same machine
//! and PostgreSQL, with the same job count, batch size and samples.
//! Chronos's throughput and latency on PostgreSQL first (with `--sdk`'s
//! workers if given), then `bench/peers/run --only graphile`, and `--only
//! bullmq` if Redis answers; the peers' `RESULT {json}` lines are read and
//! each figure is set beside Chronos's:
//!
//! ```text
//! drain       Chronos 26,900 jobs/s / Graphile Worker 20,600 jobs/s = 1.31x
//! ```
//!
//! enqueue (batches of --batch, Chronos from --creators clients, the peers
//! one batch at a time), drain (a backlog of --jobs, no-op handlers), and
//! pickup p50 / p99 on an idle system (Chronos: create request sent →
//! handler started; the peers: add call → handler started).

use crate::measure::{LatencyFigures, Res, ThroughputFigures};
use crate::{Args, Mode, Outcome, StoreChoice, fresh, sdk};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A peer's figures, by metric: `enqueue`/`drain` → jobs/s,
/// `pickup` → p50 and p99 in ms.
#[derive(Default)]
struct PeerFigures {
    name: String,
    rates: HashMap<String, f64>,
    latencies: HashMap<String, (f64, f64)>,
}

pub async fn compare(args: &Args) -> Res<()> {
    let jobs = args.jobs.unwrap_or(50_000);
    let throughput = match fresh(args, StoreChoice::Postgres, Mode::Throughput).await? {
        Outcome::Throughput(f) => f,
        _ => unreachable!("throughput measures throughput"),
    };
    let latency = match fresh(args, StoreChoice::Postgres, Mode::Latency).await? {
        Outcome::Latency(f) => f,
        _ => unreachable!("latency measures latency"),
    };

    let mut peers = Vec::new();
    let pg = server_url(&args.database_url);
    for peer in ["graphile", "bullmq"] {
        if peer == "bullmq" && !redis_answers() {
            println!(
                "\nBullMQ: Redis does not answer on {}: skipped",
                redis_addr()
            );
            continue;
        }
        println!("\npeers · {peer} · bench/peers/run --only {peer} --jobs {jobs}");
        match run_peer(peer, jobs, args, &pg) {
            Ok(f) if !f.rates.is_empty() => peers.push(f),
            Ok(_) => println!("  {peer}: no figures (skipped or failed; see above)"),
            Err(e) => println!("  {peer}: {e}"),
        }
    }

    let chronos = match args.sdk {
        Some(sdk) => format!("Chronos ({} workers)", sdk.name()),
        None => "Chronos".to_string(),
    };
    println!(
        "\ncompare · Chronos on PostgreSQL · {jobs} jobs, batches of {}, {} pickup samples",
        args.batch, args.samples
    );
    for (i, peer) in peers.iter().enumerate() {
        if i > 0 {
            println!();
        }
        ratios(&chronos, &throughput, &latency, peer);
    }
    Ok(())
}

fn ratios(chronos: &str, t: &ThroughputFigures, l: &LatencyFigures, peer: &PeerFigures) {
    let rate = |what: &str, ours: f64| {
        if let Some(&theirs) = peer.rates.get(what) {
            println!(
                "  {what:<11} {chronos} {} jobs/s / {} {} jobs/s = {:.2}x",
                thousands(ours),
                peer.name,
                thousands(theirs),
                ours / theirs
            );
        }
    };
    rate("enqueue", t.enqueue);
    rate("drain", t.drain);
    if let Some(&(p50, p99)) = peer.latencies.get("pickup") {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for (what, ours, theirs) in [
            ("pickup p50", ms(l.p50), p50),
            ("pickup p99", ms(l.p99), p99),
        ] {
            println!(
                "  {what:<11} {chronos} {ours:.2} ms / {} {theirs:.2} ms = {:.2}x (lower is sooner)",
                peer.name,
                ours / theirs
            );
        }
    }
}

/// 26900.4 → "26,900".
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `postgres://user@host:port/db?x` → `postgres://user@host:port`: the
/// peers add the database name themselves.
fn server_url(url: &str) -> String {
    let without_query = url.split('?').next().unwrap_or(url);
    match without_query.rsplit_once('/') {
        Some((base, _)) if !base.ends_with('/') => base.to_string(),
        _ => without_query.trim_end_matches('/').to_string(),
    }
}

fn redis_addr() -> String {
    let host = std::env::var("PEERS_REDIS_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PEERS_REDIS_PORT").unwrap_or_else(|_| "6379".into());
    format!("{host}:{port}")
}

fn redis_answers() -> bool {
    use std::net::ToSocketAddrs;
    redis_addr()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// Runs one peer, its lines shown as they come; reads its `RESULT` lines.
fn run_peer(peer: &str, jobs: usize, args: &Args, pg: &str) -> Res<PeerFigures> {
    let script = sdk::bench_dir().join("peers/run");
    let mut child = Command::new(&script)
        .args(["--only", peer])
        .args(["--jobs", &jobs.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--samples", &args.samples.to_string()])
        .env("PEERS_PG_URL", pg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let mut figures = PeerFigures::default();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Some(json) = line.strip_prefix("RESULT ") else {
            println!("  {line}");
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(json)?;
        let (Some(name), Some(metric)) = (v["peer"].as_str(), v["metric"].as_str()) else {
            continue;
        };
        if metric == "drain" {
            figures.name = match name {
                "graphile-worker" => "Graphile Worker".into(),
                "bullmq" => "BullMQ".into(),
                other => other.into(),
            };
        }
        if let Some(rate) = v["jobs_per_s"].as_f64() {
            figures.rates.insert(metric.to_string(), rate);
        }
        if let (Some(p50), Some(p99)) = (v["p50_ms"].as_f64(), v["p99_ms"].as_f64()) {
            figures.latencies.insert(metric.to_string(), (p50, p99));
        }
    }
    let status = child.wait()?;
    if !status.success() && figures.rates.is_empty() {
        return Err(format!("bench/peers/run --only {peer} ended with {status}").into());
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(26_900.4), "26,900");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn server_url_drops_the_database() {
        assert_eq!(
            server_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(
            server_url("postgres://u@h:1/db?sslmode=disable"),
            "postgres://u@h:1"
        );
        assert_eq!(server_url("postgres://u@h:1"), "postgres://u@h:1");
    }
}
