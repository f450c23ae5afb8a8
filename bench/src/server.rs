//! The server under test: a real `chronos serve` process of its own (this
//! binary, re-executed with `serve`), so that its figures — and its
//! resident memory — are the server's alone, not the workers'.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Where the server keeps its data for one run.
pub enum Store {
    /// The embedded store in a fresh temporary directory.
    Sqlite(tempfile::TempDir),
    /// A fresh PostgreSQL database, dropped afterwards.
    Postgres { admin_url: String, name: String },
}

impl Store {
    pub fn sqlite() -> std::io::Result<Self> {
        Ok(Store::Sqlite(tempfile::tempdir()?))
    }

    /// Creates an empty database next to `admin_url`'s.
    pub async fn postgres(admin_url: &str) -> Result<Self, tokio_postgres::Error> {
        let name = format!("chronos_bench_{}", uuid::Uuid::new_v4().simple());
        let client = connect(admin_url).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(Store::Postgres {
            admin_url: admin_url.to_string(),
            name,
        })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres { .. } => "postgres",
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Store::Sqlite(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            Store::Postgres { admin_url, name } => {
                vec!["--database-url".into(), database_url(admin_url, name)]
            }
        }
    }

    /// The bench's own database on PostgreSQL (not the admin one).
    pub fn postgres_url(&self) -> Option<String> {
        match self {
            Store::Postgres { admin_url, name } => Some(database_url(admin_url, name)),
            Store::Sqlite(_) => None,
        }
    }

    /// The embedded store's directory and database file (`chronos.db`).
    pub fn sqlite_paths(&self) -> Option<(PathBuf, PathBuf)> {
        match self {
            Store::Sqlite(dir) => Some((
                dir.path().to_path_buf(),
                dir.path().join(chronos_server::config::SQLITE_FILE),
            )),
            Store::Postgres { .. } => None,
        }
    }

    pub async fn drop_database(&self) {
        if let Store::Postgres { admin_url, name } = self
            && let Ok(client) = connect(admin_url).await
        {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// `admin_url` with its database name replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((base, last)) if !base.ends_with('/') => {
            let query = last.split_once('?').map(|(_, q)| format!("?{q}"));
            format!("{base}/{name}{}", query.unwrap_or_default())
        }
        _ => format!("{}/{name}", admin_url.trim_end_matches('/')),
    }
}

pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The bench's own connection to the store, for what the API cannot tell
/// cheaply: whether a handler's jobs are all finished, and when each was
/// leased.
pub enum Probe {
    Postgres {
        client: tokio_postgres::Client,
        open: tokio_postgres::Statement,
    },
    /// Read-only, beside the server's connection (WAL mode).
    Sqlite(Mutex<rusqlite::Connection>),
}

/// Whether a job of a handler is still queued, running or scheduled: one
/// look per partial index that holds such jobs, so the answer stays cheap
/// however many finished jobs the store holds. (`GET /v1/jobs?status=…`
/// walks the organization's jobs newest first when none matches: every
/// finished job, with `--history`.)
fn open_jobs_sql(handler: &str) -> String {
    [
        "status = 'queued' AND delivery_type = 'pull'",
        "status = 'queued' AND delivery_type = 'push'",
        "status = 'running'",
        "status = 'scheduled'",
    ]
    .map(|w| format!("EXISTS (SELECT 1 FROM jobs WHERE {w} AND handler = {handler})"))
    .join(" OR ")
}

impl Probe {
    async fn open(store: &Store) -> Res<Probe> {
        if let Some(url) = store.postgres_url() {
            let client = connect(&url).await?;
            let open = client
                .prepare(&format!("SELECT {}", open_jobs_sql("$1")))
                .await?;
            return Ok(Probe::Postgres { client, open });
        }
        let (_, file) = store.sqlite_paths().ok_or("no store")?;
        let conn = rusqlite::Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Probe::Sqlite(Mutex::new(conn)))
    }

    /// Whether any job of `handler` is queued, running or scheduled.
    pub async fn open_jobs(&self, handler: &str) -> Res<bool> {
        match self {
            Probe::Postgres { client, open } => {
                Ok(client.query_one(open, &[&handler]).await?.get(0))
            }
            Probe::Sqlite(conn) => {
                let conn = conn.lock().unwrap();
                let mut stmt = conn.prepare_cached(&format!("SELECT {}", open_jobs_sql("?1")))?;
                Ok(stmt.query_row([handler], |r| r.get(0))?)
            }
        }
    }

    /// What the store holds of `handler`'s jobs: how many, how many
    /// completed, and how many attempts (executions) they had — each job
    /// run exactly once is `(n, n, n)`.
    pub async fn finished(&self, handler: &str) -> Res<(i64, i64, i64)> {
        const SQL: &str = "SELECT count(*), count(*) FILTER (WHERE status = 'completed'),
                                  (SELECT count(*) FROM executions e JOIN jobs j ON j.id = e.job_id
                                   WHERE j.handler = $1)
                           FROM jobs WHERE handler = $1";
        match self {
            Probe::Postgres { client, .. } => {
                let row = client.query_one(SQL, &[&handler]).await?;
                Ok((row.get(0), row.get(1), row.get(2)))
            }
            Probe::Sqlite(conn) => {
                let conn = conn.lock().unwrap();
                let mut stmt = conn.prepare(&SQL.replace("$1", "?1"))?;
                Ok(stmt.query_row([handler], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)
            }
        }
    }

    /// Due → leased of every job of `handler`: each first execution's
    /// `started_at` minus the job's `run_at`, both the store's clock.
    pub async fn leased_after_due(&self, handler: &str) -> Res<Vec<Duration>> {
        let ms: Vec<f64> = match self {
            Probe::Postgres { client, .. } => client
                .query(
                    "SELECT (EXTRACT(EPOCH FROM e.started_at - j.run_at) * 1000)::float8
                     FROM jobs j JOIN executions e ON e.job_id = j.id AND e.attempt = 1
                     WHERE j.handler = $1",
                    &[&handler],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Probe::Sqlite(conn) => {
                let conn = conn.lock().unwrap();
                let mut stmt = conn.prepare(
                    "SELECT (julianday(e.started_at) - julianday(j.run_at)) * 86400000.0
                     FROM jobs j JOIN executions e ON e.job_id = j.id AND e.attempt = 1
                     WHERE j.handler = ?1",
                )?;
                stmt.query_map([handler], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(ms
            .into_iter()
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
            .collect())
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    pub base: String,
    pub admin_key: String,
    pub probe: Probe,
    child: Child,
}

impl Server {
    /// Starts `chronos serve` on `store`, with `flags` added to its command
    /// line.
    pub async fn start(store: &Store, flags: &[String]) -> Res<Self> {
        Self::launch(store, flags, None).await
    }

    /// Starts `chronos serve` again on a store it made before: the admin
    /// key is printed only when the store is new, so it is passed in.
    pub async fn restart(store: &Store, flags: &[String], admin_key: String) -> Res<Self> {
        Self::launch(store, flags, Some(admin_key)).await
    }

    async fn launch(store: &Store, flags: &[String], known_key: Option<String>) -> Res<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(store.args())
            .args(flags)
            .env("CHRONOS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        // The admin key is printed once, on stdout, when the store is new.
        // The pipe is read to its end, so the server never writes to a
        // closed one.
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (key_tx, key_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut key_tx = Some(key_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim();
                if line.starts_with("chrns_")
                    && let Some(tx) = key_tx.take()
                {
                    let _ = tx.send(line.to_string());
                }
            }
        });
        let admin_key = match known_key {
            Some(key) => key,
            None => tokio::time::timeout(Duration::from_secs(30), key_rx)
                .await
                .map_err(|_| "the server printed no admin key within 30 s")?
                .map_err(|_| "the server exited without printing an admin key")?,
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err("the server did not answer /healthz within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Server {
            base,
            admin_key,
            probe: Probe::open(store).await?,
            child,
        })
    }

    /// Stops the server as an operator would (SIGTERM), waiting up to 30 s
    /// before killing it; returns its admin key for [`Server::restart`].
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::mem::take(&mut self.admin_key)
        // Drop kills it if it is still running.
    }

    /// The server's resident memory, in bytes (Linux).
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb * 1024)
    }

    /// Waits until the server has no job of `handler` queued, running or
    /// scheduled, i.e. every ack has committed.
    pub async fn settled(&self, handler: &str) -> Res<()> {
        while self.probe.open_jobs(handler).await? {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
