//! PostgreSQL itself is SIGKILLed under load: every job the API acknowledged
//! is there after PostgreSQL recovers, requests during the outage get a JSON
//! 500 with an error id (never a false 201), `/readyz` says the store is
//! away, and the server serves again once PostgreSQL is back — without a
//! restart of its own.
//!
//! The test runs its own throwaway cluster (initdb + pg_ctl), so killing it
//! disturbs no other test. PostgreSQL's server binaries are required.

mod common;

use common::Backing;
use common::process::{Serve, free_port, get, http, post_job};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn pg_bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    if let Some(dir) = candidates.pop() {
        return dir;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output();
    if let Ok(out) = which
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        return path.parent().unwrap().to_path_buf();
    }
    panic!(
        "this test runs a throwaway PostgreSQL cluster and needs its server binaries \
         (initdb, pg_ctl); install them (Debian/Ubuntu: apt-get install -y postgresql)"
    );
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (initdb refuses root).
fn pg(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .output()
        .expect("running a PostgreSQL binary")
}

/// A private cluster in a temporary directory, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn create() -> Self {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("chronos-pgcrash")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let out = pg(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
        };
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        // Right after a SIGKILL the old backends may still be exiting;
        // pg_ctl then refuses, so try for a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.dir.path().join("log").display().to_string();
            let out = pg(
                &self.bin.join("pg_ctl"),
                &["-D", &self.data(), "-w", "-l", &log, "-o", &opts, "start"],
            );
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pg_ctl start: {}{}",
                String::from_utf8_lossy(&out.stdout),
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn sigkill_postmaster(&self) {
        let pidfile = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap();
        let pid: i32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // Wait until PostgreSQL no longer answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL still answers after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_survive_a_postgres_crash() {
    let cluster = Cluster::create();
    let backing = Backing::PostgresUrl(cluster.url());
    let serve = Arc::new(Serve::start(&backing).await);
    let key = serve.admin_key().await;
    let client = http();

    // Writers create jobs until told to stop, recording every 201 and every
    // other answer they get.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (serve, key, client) = (serve.clone(), key.clone(), client.clone());
        let (stop, acked, failures) = (stop.clone(), acked.clone(), failures.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"name": format!("w{w}-{n}"), "handler": "h"});
                let resp = client
                    .post(serve.url("/v1/jobs"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = resp else { continue };
                let (status, body) = common::decode(resp).await;
                if status == 201 {
                    acked
                        .lock()
                        .unwrap()
                        .push(body["id"].as_str().unwrap().to_string());
                } else {
                    failures
                        .lock()
                        .unwrap()
                        .push(json!({"status": status, "body": body}));
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = acked.lock().unwrap().len();
    cluster.sigkill_postmaster();
    // While PostgreSQL is down: writes fail as JSON 500s, readiness is 503.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ready = client.get(serve.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health = client.get(serve.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process itself is up");

    cluster.start();
    // The server recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get(serve.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready again after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    eprintln!(
        "{} jobs acknowledged ({before} before the kill), {} requests refused",
        acked.len(),
        failures.len()
    );
    assert!(
        before >= 20,
        "too few jobs before the kill to mean anything: {before}"
    );
    assert!(
        acked.len() > before,
        "no job was acknowledged after PostgreSQL recovered"
    );
    assert!(!failures.is_empty(), "no request saw the outage");
    for f in &failures {
        assert_eq!(f["status"], 500, "{f}");
        assert_eq!(f["body"]["error"]["code"], "internal_error", "{f}");
        let id = f["body"]["error"]["error_id"]
            .as_str()
            .expect("an error id");
        assert!(
            f["body"]["error"]["message"].as_str().unwrap().contains(id),
            "{f}"
        );
    }
    for id in &acked {
        let (status, job) = get(&client, &serve, &key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "acknowledged job {id} lost: {job}");
    }
    let (status, _) = post_job(
        &client,
        &serve,
        &key,
        &json!({"name": "after", "handler": "h"}),
    )
    .await;
    assert_eq!(status, 201);
}
