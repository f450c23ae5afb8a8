//! Test support: a real Chronos server, in-process on a loopback port, over a
//! fresh store of either kind per test, the way the server's own tests do it.
//!
//! PostgreSQL tests use the server at `CHRONOS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and create their own
//! database, dropped when the test ends, so tests run in parallel. There is
//! no skipping: without PostgreSQL these tests fail and say why.
#![allow(dead_code)]

use chronos_server::config::StoreConfig;
use chronos_server::server::prepare_store;
use chronos_server::store::sqlite::OpenMode;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// Runs each named async test function once per store kind:
/// `both_stores!(creates_jobs)` makes `sqlite::creates_jobs` and
/// `postgres::creates_jobs`, each calling `creates_jobs(StoreKind::…)`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::StoreKind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::StoreKind::Postgres).await
                }
            )*
        }
    };
}

pub fn admin_pg_url() -> String {
    std::env::var("CHRONOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = admin_pg_url();
        let name = format!("chronos_sdk_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for this test and does not answer at {admin}: {e}. \
                     Start it, or set CHRONOS_TEST_DATABASE_URL."
                )
            });
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating the test database");
        let mut url = url::Url::parse(&admin).expect("CHRONOS_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = admin_pg_url();
        let name = self.name.clone();
        // Drop runs outside async; a thread of its own with a small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}

/// Where a test's data lives; keeps it alive for the test's duration.
pub enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

impl Backing {
    async fn new(kind: StoreKind) -> Self {
        match kind {
            StoreKind::Sqlite => Backing::Sqlite(tempfile::tempdir().unwrap()),
            StoreKind::Postgres => Backing::Postgres(TestDb::create().await),
        }
    }

    fn config(&self) -> StoreConfig {
        match self {
            Backing::Sqlite(dir) => StoreConfig::Sqlite {
                path: dir.path().join("chronos.db"),
            },
            Backing::Postgres(db) => StoreConfig::Postgres {
                url: db.url.clone(),
            },
        }
    }
}

/// A real server on 127.0.0.1:<free port>, in this test's runtime, stopped
/// when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The admin key of the default organization.
    pub admin_key: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    // Last: the server stops before its data goes away.
    backing: std::sync::Arc<Backing>,
}

impl TestServer {
    pub async fn start(kind: StoreKind) -> Self {
        let backing = std::sync::Arc::new(Backing::new(kind).await);
        let (store, key) = prepare_store(&backing.config(), OpenMode::Command)
            .await
            .expect("preparing the test store");
        let admin_key = key.expect("a fresh store gives an admin key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, store, admin_key, backing)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        store: chronos_server::store::DynStore,
        admin_key: String,
        backing: std::sync::Arc<Backing>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            chronos_server::server::run(listener, store, async {
                let _ = stopped.await;
            })
            .await
            .expect("server failed")
        });
        TestServer {
            base: format!("http://{addr}"),
            admin_key,
            addr,
            stop: Some(stop),
            task: Some(task),
            backing,
        }
    }

    /// A second server on the same store (as a second replica would be).
    pub async fn another(&self) -> TestServer {
        let (store, _) = prepare_store(&self.backing.config(), OpenMode::Command)
            .await
            .expect("opening the store again");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            listener,
            store,
            self.admin_key.clone(),
            self.backing.clone(),
        )
    }

    /// Stops this server (its connections drop), then starts it again on the
    /// same address and store.
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("the server did not stop")
                .unwrap();
        }
        let (store, _) = prepare_store(&self.backing.config(), OpenMode::Command)
            .await
            .expect("opening the store again");
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        *self = Self::serve(
            listener,
            store,
            self.admin_key.clone(),
            self.backing.clone(),
        );
    }

    /// A client with the admin key.
    pub fn client(&self) -> chronos::Client {
        chronos::Client::new(&self.base, &self.admin_key).unwrap()
    }

    /// A new key holding `scopes`, made through the REST API (the SDK has no
    /// key management).
    pub async fn key(&self, scopes: &[&str]) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/api-keys", self.base))
            .bearer_auth(&self.admin_key)
            .json(&serde_json::json!({"name": "test", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: serde_json::Value = resp.json().await.unwrap();
        body["key"].as_str().unwrap().to_string()
    }

    /// A client with a new key holding `scopes`.
    pub async fn client_with_scopes(&self, scopes: &[&str]) -> chronos::Client {
        chronos::Client::new(&self.base, self.key(scopes).await).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
