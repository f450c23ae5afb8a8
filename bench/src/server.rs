//! The server under test: a real `chronos serve` process of its own (this
//! binary, re-executed with `serve`), so that its figures — and its
//! resident memory — are the server's alone, not the workers'.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
fn database_url(admin_url: &str, name: &str) -> String {
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

/// A running server process; killed when dropped.
pub struct Server {
    pub base: String,
    pub admin_key: String,
    child: Child,
}

impl Server {
    /// Starts `chronos serve` on `store`, with `flags` added to its command
    /// line.
    pub async fn start(
        store: &Store,
        flags: &[String],
    ) -> Result<Self, Box<dyn std::error::Error>> {
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
        let admin_key = tokio::time::timeout(Duration::from_secs(30), key_rx)
            .await
            .map_err(|_| "the server printed no admin key within 30 s")?
            .map_err(|_| "the server exited without printing an admin key")?;
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
            child,
        })
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
