//! The real `chronos` binary as a child process, for tests that restart,
//! signal or kill it. Every server started here is killed when its guard
//! drops, so a failing test leaves nothing running.

use super::{Backing, decode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chronos");
/// How long a server may take to answer `/healthz` after it is started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after a signal, or to fail at start.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a `chronos keys …` command may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a child wrote to one of its pipes, read by a thread of its own
/// so the child never blocks on a full pipe.
pub struct Captured {
    text: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Captured {
    pub fn new(pipe: impl Read + Send + 'static) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&line)),
                }
            }
        });
        Captured {
            text,
            reader: Some(reader),
        }
    }

    pub fn get(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits (bounded) until the child's end of the pipe is closed and
    /// everything it wrote has been read.
    pub async fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "the child's output pipe is still open 5 s after it exited"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("output reader thread panicked");
        }
    }
}

/// A free loopback port: bind port 0, read what the kernel gave, let it go.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A running `chronos serve`. Dropping it kills the process.
pub struct Serve {
    pub child: Child,
    pub base: String,
    pub stdout: Captured,
    pub stderr: Captured,
    pub exit: Option<ExitStatus>,
}

impl Serve {
    /// Spawns `chronos serve` on `port` without waiting for anything.
    pub fn spawn(backing: &Backing, port: u16) -> Self {
        Self::spawn_with(backing, port, &[])
    }

    /// [`Serve::spawn`] with more `serve` arguments.
    pub fn spawn_with(backing: &Backing, port: u16, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(backing.cli_args())
            .args(args)
            // Nothing from the environment may pick another store.
            .env_remove("CHRONOS_DATABASE_URL")
            .env_remove("CHRONOS_DATA_DIR")
            .env_remove("CHRONOS_LISTEN")
            .env("CHRONOS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = Captured::new(child.stdout.take().unwrap());
        let stderr = Captured::new(child.stderr.take().unwrap());
        Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            exit: None,
        }
    }

    /// Starts `chronos serve` on a free port and waits until `/healthz`
    /// answers. Another process may grab the port between our choosing it
    /// and the server binding it; then it tries another port. (The server
    /// binds before it touches the store, so a lost port costs no admin key.)
    pub async fn start(backing: &Backing) -> Self {
        Self::start_with(backing, &[]).await
    }

    /// [`Serve::start`] with more `serve` arguments.
    pub async fn start_with(backing: &Backing, args: &[&str]) -> Self {
        for _ in 0..5 {
            let mut serve = Serve::spawn_with(backing, free_port(), args);
            match serve.wait_ready().await {
                Ok(()) => return serve,
                Err(status) if serve.stderr.get().contains("cannot listen") => {
                    eprintln!(
                        "retrying on another port after: {status}: {}",
                        serve.stderr.get()
                    );
                }
                Err(status) => panic!(
                    "chronos serve exited at start ({status}).\nstdout:\n{}\nstderr:\n{}",
                    serve.stdout.get(),
                    serve.stderr.get()
                ),
            }
        }
        panic!("chronos serve could not listen on any of 5 free ports");
    }

    /// Polls `/healthz` until it answers 200, or the process exits (its
    /// status is the error), or [`READY_TIMEOUT`] passes (a panic).
    pub async fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                self.stdout.finish().await;
                self.stderr.finish().await;
                return Err(status);
            }
            if let Ok(resp) = http.get(self.url("/healthz")).send().await
                && resp.status() == 200
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "chronos serve did not answer {} within {READY_TIMEOUT:?}.\nstdout:\n{}\nstderr:\n{}",
                    self.url("/healthz"),
                    self.stdout.get(),
                    self.stderr.get()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("checking on the child");
        }
        self.exit
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, signal).unwrap_or_else(|e| panic!("sending {signal} to chronos serve: {e}"));
    }

    /// Waits for the process to exit, then for all its output. Panics after
    /// `timeout`, with what the process said.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.try_wait() {
                break status;
            }
            if started.elapsed() > timeout {
                panic!(
                    "chronos serve still runs {timeout:?} after it was told to stop.\nstderr:\n{}",
                    self.stderr.get()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.stdout.finish().await;
        self.stderr.finish().await;
        status
    }

    /// SIGTERM, then asserts a clean exit (status 0) within [`EXIT_TIMEOUT`].
    pub async fn stop_gracefully(&mut self) {
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit(EXIT_TIMEOUT).await;
        assert!(
            status.success(),
            "chronos serve exited with {status} after SIGTERM, not 0.\nstderr:\n{}",
            self.stderr.get()
        );
    }

    /// The admin key printed on first start. The server prints it before it
    /// listens, so once `/healthz` answers it is on its way through the pipe.
    pub async fn admin_key(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(key) = find_key(&self.stdout.get()) {
                return key;
            }
            assert!(
                Instant::now() < deadline,
                "a first start on an empty store printed no admin key.\nstdout:\n{}\nstderr:\n{}",
                self.stdout.get(),
                self.stderr.get()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `chrns_<16 hex>_<64 hex>`.
pub fn is_key(word: &str) -> bool {
    let Some((id, secret)) = word
        .strip_prefix("chrns_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return false;
    };
    id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == 64
        && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first API key in `text`, if any.
pub fn find_key(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| is_key(w))
        .map(str::to_string)
}

/// Runs `chronos ARGS… <store args>` to completion (bounded).
pub async fn cli(args: &[&str], backing: &Backing) -> Output {
    let run = tokio::process::Command::new(BIN)
        .args(args)
        .args(backing.cli_args())
        .env_remove("CHRONOS_DATABASE_URL")
        .env_remove("CHRONOS_DATA_DIR")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(CLI_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`chronos {}` still runs after {CLI_TIMEOUT:?}",
                args.join(" ")
            )
        })
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// Like [`cli`], and asserts it succeeded; returns its stdout.
pub async fn cli_ok(args: &[&str], backing: &Backing) -> String {
    let out = cli(args, backing).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`chronos {}` failed with {}.\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `chronos keys create`: returns the key, the last line of stdout.
pub async fn cli_create_key(backing: &Backing, name: &str, scope: &str) -> String {
    let stdout = cli_ok(
        &["keys", "create", "--name", name, "--scope", scope],
        backing,
    )
    .await;
    let key = stdout.lines().last().unwrap_or("").trim().to_string();
    assert!(
        is_key(&key),
        "`keys create` printed no key as its last line:\n{stdout}"
    );
    key
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn post_job(
    http: &reqwest::Client,
    serve: &Serve,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = http
        .post(serve.url("/v1/jobs"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /v1/jobs: {e}"));
    decode(resp).await
}

pub async fn get(http: &reqwest::Client, serve: &Serve, key: &str, path: &str) -> (u16, Value) {
    let resp = http
        .get(serve.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    decode(resp).await
}

/// Every job of the key's organization, following `next_cursor` to the end.
pub async fn list_all_jobs(http: &reqwest::Client, serve: &Serve, key: &str) -> Vec<Value> {
    list_jobs_matching(http, serve, key, "").await
}

/// Every job of the key's organization that `filter` selects (query
/// parameters of `GET /v1/jobs` such as `status=completed&handler=h`; empty
/// for all), following `next_cursor` to the end.
pub async fn list_jobs_matching(
    http: &reqwest::Client,
    serve: &Serve,
    key: &str,
    filter: &str,
) -> Vec<Value> {
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!("&{filter}")
    };
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            None => format!("/v1/jobs?limit=100{filter}"),
            Some(c) => format!("/v1/jobs?limit=100{filter}&cursor={c}"),
        };
        let (status, body) = get(http, serve, key, &path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let page = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no data: {body}"));
        jobs.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return jobs,
        }
    }
    panic!("listing jobs did not end after 10 000 pages");
}
