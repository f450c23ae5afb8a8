//! Test support shared by the Chronos test suites: a fresh store of either
//! kind per test, and real servers in front of it.
//!
//! PostgreSQL tests use the server at `CHRONOS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and create their own
//! database, dropped when the test ends, so tests run in parallel. There is
//! no skipping: without PostgreSQL these tests fail and say why.

pub mod dns;
pub mod endpoint;
pub mod people;
pub mod smtp;
pub mod tls;

pub use dns::DnsServer;
pub use endpoint::Endpoint;
pub use people::{Answer, Person};
pub use smtp::SmtpServer;
pub use tls::{HttpsServer, TestCa};

use chronos_server::account::OrgId;
use chronos_server::config::StoreConfig;
use chronos_server::job::{NewJob, RunAt};
use chronos_server::lease::Engine;
use chronos_server::server::{ServeOptions, prepare_store};
use chronos_server::store::sqlite::OpenMode;
use chronos_server::store::{Clock, DynLeases, DynStore, Opened};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
                    super::$name($crate::StoreKind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::StoreKind::Postgres).await
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
        let name = format!("chronos_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for this test and does not answer at {admin}: {e}. \
                     Start it, set CHRONOS_TEST_DATABASE_URL, or run the test command from the \
                     README, which starts a throwaway cluster."
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
    /// A database the test manages itself (e.g. on a cluster of its own).
    PostgresUrl(String),
}

impl Backing {
    pub async fn new(kind: StoreKind) -> Self {
        match kind {
            StoreKind::Sqlite => Backing::Sqlite(tempfile::tempdir().unwrap()),
            StoreKind::Postgres => Backing::Postgres(TestDb::create().await),
        }
    }

    pub fn config(&self) -> StoreConfig {
        match self {
            Backing::Sqlite(dir) => StoreConfig::Sqlite {
                path: dir.path().join("chronos.db"),
            },
            Backing::Postgres(db) => StoreConfig::Postgres {
                url: db.url.clone(),
            },
            Backing::PostgresUrl(url) => StoreConfig::Postgres { url: url.clone() },
        }
    }

    /// `--database-url` / `--data-dir` arguments for the `chronos` binary.
    pub fn cli_args(&self) -> Vec<String> {
        match self {
            Backing::Sqlite(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            Backing::Postgres(db) => vec!["--database-url".into(), db.url.clone()],
            Backing::PostgresUrl(url) => vec!["--database-url".into(), url.clone()],
        }
    }

    /// The store as servers started on it with `--test-clock` read it
    /// (one of them must have started: it makes the clock's table), to read
    /// that clock and move it.
    pub fn test_clock(&self) -> DynStore {
        self.config()
            .open(OpenMode::Command, Clock::Test)
            .expect("opening the store on the test clock")
            .store
    }

    /// Moves the test clock of servers started on this store with
    /// `--test-clock`; they hear of it (through NOTIFY on PostgreSQL, by
    /// looking on SQLite).
    pub async fn advance_clock(&self, by: Duration) {
        self.test_clock()
            .advance_clock(by)
            .await
            .expect("moving the test clock");
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        match self {
            Backing::Sqlite(dir) => Some(dir.path().to_path_buf()),
            Backing::Postgres(_) | Backing::PostgresUrl(_) => None,
        }
    }
}

/// A pull job for `handler`, due now, with the API's defaults.
pub fn pull_job(handler: &str) -> NewJob {
    NewJob {
        id: uuid::Uuid::now_v7(),
        name: handler.to_string(),
        handler: Some(handler.into()),
        payload: Value::Null,
        queue: "default".into(),
        concurrency_key: None,
        priority: 0,
        delivery: chronos_proto::Delivery::Pull,
        run_at: RunAt::Now,
        max_retries: Some(3),
        timeout_seconds: 30,
        schedule_id: None,
        idempotency_key: None,
        follow: Default::default(),
    }
}

/// A migrated store with its default organization, and the admin key.
pub struct TestStore {
    pub store: DynStore,
    /// The lease statements, which a server hands to its engine; tests of
    /// the store call them directly.
    pub leases: DynLeases,
    pub admin_key: String,
    pub backing: Backing,
}

impl TestStore {
    pub async fn new(kind: StoreKind) -> Self {
        Self::with_clock(kind, Clock::Database).await
    }

    /// A store reading `clock`: [`Clock::Test`] for tests that move time.
    pub async fn with_clock(kind: StoreKind, clock: Clock) -> Self {
        let backing = Backing::new(kind).await;
        let (opened, key) = prepare_store(&backing.config(), OpenMode::Command, clock)
            .await
            .expect("preparing the test store");
        TestStore {
            store: opened.store,
            leases: opened.leases,
            admin_key: key.expect("a fresh store prints an admin key"),
            backing,
        }
    }

    /// Both handles, as a server takes them.
    pub fn opened(&self) -> Opened {
        Opened {
            store: self.store.clone(),
            leases: self.leases.clone(),
        }
    }

    /// The default organization, which every fresh store has.
    pub async fn default_org(&self) -> OrgId {
        self.store
            .organization_by_slug("default")
            .await
            .expect("reading the default organization")
            .expect("a fresh store has the default organization")
            .id
    }
}

/// Makes a queue `name` with no limit in the organization `org`, as a
/// test's jobs need before they can name it.
pub async fn make_queue(store: &DynStore, org: OrgId, name: &str) {
    store
        .create_queue(
            org,
            uuid::Uuid::now_v7(),
            name,
            &chronos_server::queue::QueueSettings::unlimited(),
        )
        .await
        .expect("creating a queue")
        .expect("a queue name not taken yet");
}

/// A real server on 127.0.0.1:<free port>, in this test's runtime, stopped
/// when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The admin key of the default organization.
    pub admin_key: String,
    pub store: DynStore,
    /// The server's lease engine, to watch (how many polls wait).
    pub engine: Arc<Engine>,
    pub http: reqwest::Client,
    addr: std::net::SocketAddr,
    options: ServeOptions,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    // Last: the server stops before its data goes away.
    backing: Arc<Backing>,
}

impl TestServer {
    pub async fn start(kind: StoreKind) -> Self {
        Self::start_with(kind, ServeOptions::default()).await
    }

    /// Makes a queue with no limit in the default organization.
    pub async fn make_queue(&self, name: &str) {
        let org = self
            .store
            .organization_by_slug("default")
            .await
            .expect("reading the default organization")
            .expect("the default organization")
            .id;
        make_queue(&self.store, org, name).await;
    }

    /// A server with these options (say, push targets on loopback allowed).
    pub async fn start_with(kind: StoreKind, options: ServeOptions) -> Self {
        Self::start_clocked(kind, options, Clock::Database).await
    }

    /// A server whose store reads the test clock, which
    /// [`TestServer::advance_clock`] moves.
    pub async fn start_with_test_clock(kind: StoreKind, options: ServeOptions) -> Self {
        Self::start_clocked(kind, options, Clock::Test).await
    }

    async fn start_clocked(kind: StoreKind, options: ServeOptions, clock: Clock) -> Self {
        let test_store = TestStore::with_clock(kind, clock).await;
        let opened = test_store.opened();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backing = Arc::new(test_store.backing);
        Self::serve(
            listener,
            opened,
            test_store.admin_key,
            backing,
            options,
            clock,
        )
        .await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        opened: Opened,
        admin_key: String,
        backing: Arc<Backing>,
        options: ServeOptions,
        clock: Clock,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (started, engine) = oneshot::channel();
        let store = opened.store.clone();
        let kept = options.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            chronos_server::server::run_with(listener, opened, options, shutdown, |engine| {
                let _ = started.send(engine);
            })
            .await
            .expect("server failed")
        });
        TestServer {
            base: format!("http://{addr}"),
            admin_key,
            store,
            engine: engine.await.expect("the server started its engine"),
            http: reqwest::Client::new(),
            addr,
            options: kept,
            clock,
            stop: Some(stop),
            task: Some(task),
            backing,
        }
    }

    /// A second server on the same store, as a second replica would be.
    pub async fn another(&self) -> TestServer {
        let (opened, _) = prepare_store(&self.backing.config(), OpenMode::Command, self.clock)
            .await
            .expect("opening the store again");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            listener,
            opened,
            self.admin_key.clone(),
            self.backing.clone(),
            self.options.clone(),
            self.clock,
        )
        .await
    }

    /// Moves the store's test clock forward (the server must have been
    /// started with [`TestServer::start_with_test_clock`]); every server on
    /// the store hears of it and looks at its timers again.
    pub async fn advance_clock(&self, by: Duration) {
        self.store
            .advance_clock(by)
            .await
            .expect("moving the test clock");
    }

    /// Moves the test clock by `by`, then waits until the scheduler and the
    /// sweeper have each made a whole pass on the moved clock: whatever
    /// became due by then has been fired, promoted or expired.
    pub async fn advance_clock_and_settle(&self, by: Duration) {
        self.advance_clock(by).await;
        self.settle().await;
    }

    /// Waits until the scheduler and the sweeper have each begun and
    /// finished a pass after this call. Twice, each time waking them: a
    /// pass under way at the first wake may have read the store before it.
    pub async fn settle(&self) {
        for _ in 0..2 {
            let scheduler = self.engine.scheduler_passes();
            let sweeper = self.engine.sweeper_passes();
            self.engine.clock_moved();
            wait_until("a scheduler and a sweeper pass", || {
                self.engine.scheduler_passes() > scheduler && self.engine.sweeper_passes() > sweeper
            })
            .await;
        }
    }

    /// Waits until at least `n` polls (HTTP long-polls, worker sessions'
    /// dispatchers) wait for jobs on this server: what a test that creates
    /// a job for a waiting poll must wait for, instead of sleeping.
    pub async fn polls_waiting(&self, n: usize) {
        wait_until(&format!("{n} polls waiting"), || {
            self.engine.waiting_polls() >= n
        })
        .await;
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
        let (opened, _) = prepare_store(&self.backing.config(), OpenMode::Command, self.clock)
            .await
            .expect("opening the store again");
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        *self = Self::serve(
            listener,
            opened,
            self.admin_key.clone(),
            self.backing.clone(),
            self.options.clone(),
            self.clock,
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a key with `scopes` in the default organization.
    pub async fn key(&self, scopes: &[&str]) -> String {
        let (status, body) = self
            .post(
                &self.admin_key,
                "/v1/api-keys",
                serde_json::json!({"name": "test", "scopes": scopes}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().unwrap().to_string()
    }

    /// Creates another organization and an admin key for it.
    pub async fn other_org_key(&self, slug: &str) -> String {
        let org = self.store.create_organization(slug, slug).await.unwrap();
        let (record, key) = chronos_server::account::keys::new_api_key(
            org.id,
            "other",
            vec![chronos_proto::Scope::Admin],
        );
        self.store.insert_api_key(record).await.unwrap();
        key
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        decode(resp).await
    }

    pub async fn post_empty(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        decode(resp).await
    }

    /// Any method, with a JSON body or none.
    pub async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        decode(request.send().await.unwrap()).await
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        decode(resp).await
    }

    /// GETs `path` (a 200) until `ready` holds of its body, for at most 20
    /// seconds; the body. For what a test can only observe by asking.
    pub async fn get_until(&self, key: &str, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(key, path).await;
            assert_eq!(status, 200, "{path}: {body}");
            if ready(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never got there: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits until `ready` holds, looking every few milliseconds, for at most
/// 20 seconds (then fails, naming `what`). For conditions a test can only
/// observe by looking; never a fixed sleep.
pub async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Status and JSON body. Every answer of ours is JSON, errors included.
pub async fn decode(resp: reqwest::Response) -> (u16, Value) {
    let answer = people::answer(resp).await;
    let ct = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct:?} for {}",
        answer.body
    );
    assert!(
        !answer.body.is_null(),
        "answer {} has no body",
        answer.status
    );
    answer.pair()
}

/// Asserts an error answer's status, code and (if given) field.
pub fn assert_error(answer: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}
