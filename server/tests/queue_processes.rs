//! Queue limits across real `chronos serve` processes on one PostgreSQL
//! database: workers long-poll both servers at once, and each records when
//! it held every job (from the lease's answer to just before its ack). No
//! instant has more of a queue's jobs held than its `concurrency`; a queue
//! of one runs its jobs one after the other in creation order. The
//! database's slots are a superset of what a worker sees: a lease commits
//! before its answer leaves, an ack after it is sent.
//!
//! Every server started here is killed when its guard drops, and every wait
//! is bounded.

mod common;

use common::process::{Serve, cli_create_key, get, http};
use common::{Backing, TestDb};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One job as a worker held it.
#[derive(Clone, Debug)]
struct Held {
    id: String,
    from: Instant,
    to: Instant,
}

/// The most intervals of `held` open at one instant.
fn most_at_once(held: &[Held]) -> usize {
    let mut edges: Vec<(Instant, i32)> = held
        .iter()
        .flat_map(|h| [(h.from, 1), (h.to, -1)])
        .collect();
    // An end before a start at the same instant: touching is not overlapping.
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Workers polling both servers for `handler` until `jobs` are acked, each
/// holding a job for a few milliseconds; what they held.
async fn run_workers(
    bases: Arc<[String; 2]>,
    key: String,
    handler: &'static str,
    jobs: usize,
    workers: usize,
) -> Vec<Held> {
    run_workers_waiting(bases, key, handler, jobs, workers, 1).await
}

/// [`run_workers`] whose polls wait up to `wait_seconds` for a job.
async fn run_workers_waiting(
    bases: Arc<[String; 2]>,
    key: String,
    handler: &'static str,
    jobs: usize,
    workers: usize,
    wait_seconds: u32,
) -> Vec<Held> {
    let held = Arc::new(Mutex::new(Vec::<Held>::new()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (bases, key, held) = (bases.clone(), key.clone(), held.clone());
        tasks.push(tokio::spawn(async move {
            let client = http();
            let mut round = 0usize;
            while held.lock().unwrap().len() < jobs && Instant::now() < deadline {
                round += 1;
                let base = &bases[(w + round) % 2];
                let poll = json!({"handlers": [handler], "max_jobs": 2, "wait_seconds": wait_seconds,
                                  "worker_id": format!("{handler}-{w}")});
                let (status, answer) = post(&client, base, "/v1/workers/poll", &key, &poll).await;
                assert_eq!(status, 200, "{answer}");
                for leased in answer["data"].as_array().cloned().unwrap_or_default() {
                    let from = Instant::now();
                    tokio::time::sleep(Duration::from_millis(2 + (round % 5) as u64)).await;
                    let to = Instant::now();
                    let ack = json!({"token": leased["lease"]["token"]});
                    // Acked through either server: a slot is the database's.
                    let base = &bases[(w + round + 1) % 2];
                    let (status, body) = post(&client, base, "/v1/leases/ack", &key, &ack).await;
                    assert_eq!(status, 200, "ack: {body}");
                    let id = leased["job"]["id"].as_str().unwrap().to_string();
                    held.lock().unwrap().push(Held { id, from, to });
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    held.lock().unwrap().clone()
}

/// Two server processes on one new PostgreSQL database, and the admin key
/// the first one made. (Bind the database first: it outlives the servers.)
async fn two_servers() -> (Backing, Serve, Serve, String) {
    let backing = Backing::Postgres(TestDb::create().await);
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = Serve::start(&backing).await;
    (backing, a, b, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_never_run_more_of_a_queue_than_its_concurrency() {
    let (backing, a, b, admin) = two_servers().await;
    let worker = cli_create_key(&backing, "w", "worker").await;
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let client = http();

    for (name, concurrency) in [("three", 3), ("serial", 1)] {
        let body = json!({"name": name, "concurrency": concurrency});
        let (status, queue) = post(&client, &a.base, "/v1/queues", &admin, &body).await;
        assert_eq!(status, 201, "{queue}");
    }
    // Created through both servers, in batches; the serial queue's in one
    // batch, in order.
    const WIDE: usize = 120;
    const SERIAL: usize = 30;
    let mut serial_ids = Vec::new();
    for (queue, handler, n) in [("three", "wide", WIDE), ("serial", "step", SERIAL)] {
        for chunk in 0..n.div_ceil(30) {
            let jobs: Vec<Value> = (0..30.min(n - chunk * 30))
                .map(|i| json!({"name": format!("{queue}-{}", chunk * 30 + i), "handler": handler, "queue": queue}))
                .collect();
            let base = &bases[chunk % 2];
            let (status, answer) = post(
                &client,
                base,
                "/v1/jobs/batch",
                &admin,
                &json!({"jobs": jobs}),
            )
            .await;
            assert_eq!(status, 200, "{answer}");
            for item in answer["data"].as_array().unwrap() {
                let id = item["job"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{item}"));
                if queue == "serial" {
                    serial_ids.push(id.to_string());
                }
            }
        }
    }

    let (wide, serial) = tokio::join!(
        run_workers(bases.clone(), worker.clone(), "wide", WIDE, 6),
        run_workers(bases.clone(), worker.clone(), "step", SERIAL, 4),
    );
    assert_eq!(wide.len(), WIDE, "every job of the wide queue ran once");
    let most = most_at_once(&wide);
    println!(
        "queue of three: at most {most} held at once, over {} jobs",
        wide.len()
    );
    assert!(most <= 3, "{most} jobs of a queue of three held at once");
    assert!(
        most >= 2,
        "six workers kept the queue busy ({most} at most)"
    );

    assert_eq!(serial.len(), SERIAL);
    assert_eq!(
        most_at_once(&serial),
        1,
        "a queue of one ran two jobs at once"
    );
    let mut by_start = serial.clone();
    by_start.sort_by_key(|h| h.from);
    let order: Vec<String> = by_start.into_iter().map(|h| h.id).collect();
    assert_eq!(
        order, serial_ids,
        "a queue of one runs its jobs in creation order"
    );
}

/// A worker that leases the only slot of a queue of one and is never heard
/// from again (killed): the slot comes back when its lease's deadline
/// passes, and the queue moves on — through the other server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_holder_of_the_only_slot_frees_it_at_its_deadline() {
    let (backing, a, b, admin) = two_servers().await;
    let worker = cli_create_key(&backing, "w", "worker").await;
    let client = http();
    let (status, _) = post(
        &client,
        &a.base,
        "/v1/queues",
        &admin,
        &json!({"name": "one"}),
    )
    .await;
    assert_eq!(status, 201);
    let jobs = json!({"jobs": [
        {"name": "first", "handler": "h", "queue": "one", "timeout": 1, "max_retries": 0},
        {"name": "second", "handler": "h", "queue": "one"},
    ]});
    let (status, created) = post(&client, &a.base, "/v1/jobs/batch", &admin, &jobs).await;
    assert_eq!(status, 200, "{created}");
    let second = created["data"][1]["job"]["id"].clone();

    let poll =
        |id: &str| json!({"handlers": ["h"], "max_jobs": 5, "wait_seconds": 10, "worker_id": id});
    let (_, held) = post(&client, &a.base, "/v1/workers/poll", &worker, &poll("lost")).await;
    assert_eq!(held["data"].as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held["data"][0]["job"]["name"], "first");
    // The holder is gone. A worker on the other server waits for the slot.
    let started = Instant::now();
    let (status, next) = post(
        &client,
        &b.base,
        "/v1/workers/poll",
        &worker,
        &poll("alive"),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{next}");
    let data = next["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{next}");
    assert_eq!(data[0]["job"]["id"], second, "the queue moved on");
    println!("the slot came back after {waited:?} (deadline 1 s)");
    assert!(
        waited < Duration::from_secs(9),
        "woken when the slot came back, not at the poll's end"
    );
}

/// When each job's first attempt started, by the database's clock (its
/// execution's `started_at`: the moment the lease that counted it
/// committed), in order.
async fn starts(serve: &Serve, key: &str, ids: &[String]) -> Vec<chrono::DateTime<chrono::Utc>> {
    let client = http();
    let mut starts = Vec::new();
    for id in ids {
        let (status, page) = get(&client, serve, key, &format!("/v1/jobs/{id}/executions")).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "one attempt each: {page}");
        let at = data[0]["started_at"].as_str().unwrap();
        starts.push(chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc());
    }
    starts.sort();
    starts
}

/// Creates `jobs` (request bodies) through `base` in batches of at most
/// 1,000; their ids.
async fn create_all(base: &str, key: &str, jobs: Vec<Value>) -> Vec<String> {
    let client = http();
    let mut ids = Vec::new();
    for chunk in jobs.chunks(1000) {
        let body = json!({"jobs": chunk});
        let (status, answer) = post(&client, base, "/v1/jobs/batch", key, &body).await;
        assert_eq!(status, 200, "{answer}");
        for item in answer["data"].as_array().unwrap() {
            ids.push(
                item["job"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{item}"))
                    .to_string(),
            );
        }
    }
    ids
}

/// A queue limited to 4 starts in any 2 seconds, leased by workers on two
/// servers whose polls wait 10 s: the database's record of the starts has
/// no window of 2 s with more than 4, and each start held by the limit came
/// within moments of its window freeing (the servers' timers woke the
/// polls: nothing else would before they ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_never_start_more_than_the_rate_in_any_window() {
    let (backing, a, b, admin) = two_servers().await;
    let worker = cli_create_key(&backing, "w", "worker").await;
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let body = json!({"name": "mail", "concurrency": null, "rate_limit": 4,
                      "rate_period_seconds": 2});
    let (status, queue) = post(&http(), &a.base, "/v1/queues", &admin, &body).await;
    assert_eq!(status, 201, "{queue}");
    const JOBS: usize = 16;
    let jobs = (0..JOBS)
        .map(|i| json!({"name": format!("mail-{i}"), "handler": "send", "queue": "mail"}))
        .collect();
    let ids = create_all(&a.base, &admin, jobs).await;

    let held = run_workers_waiting(bases, worker, "send", JOBS, 6, 10).await;
    assert_eq!(held.len(), JOBS, "every job ran once");
    let starts = starts(&a, &admin, &ids).await;
    let period = chrono::Duration::seconds(2);
    let mut late = chrono::Duration::zero();
    for i in 4..starts.len() {
        // Shown to the millisecond: a start exactly a period after another
        // may read a millisecond short.
        let apart = starts[i] - starts[i - 4];
        assert!(
            apart >= period - chrono::Duration::milliseconds(1),
            "five starts within {apart} (starts {} to {i})",
            i - 4
        );
        late = late.max(apart - period);
    }
    println!("the latest start held by the rate came {late} after its window freed");
    assert!(
        late < chrono::Duration::seconds(1),
        "woken when the window freed, not at the poll's end ({late})"
    );
}

/// 1,000 keys with one job each at `key_concurrency` 1, and a hot key whose
/// ten jobs are older than all of them but may start only twice a minute:
/// every other key's job runs at once, the hot key's two, and no more.
async fn a_thousand_keys_progress_and_a_rate_held_key_delays_no_other(backing: Backing) {
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = match &backing {
        Backing::Sqlite(_) => None,
        _ => Some(Serve::start(&backing).await),
    };
    let bases = Arc::new([
        a.base.clone(),
        b.as_ref().map_or(a.base.clone(), |b| b.base.clone()),
    ]);
    let body = json!({"name": "tenants", "concurrency": null, "key_concurrency": 1,
                      "key_rate_limit": 2, "key_rate_period_seconds": 60});
    let (status, queue) = post(&http(), &a.base, "/v1/queues", &admin, &body).await;
    assert_eq!(status, 201, "{queue}");
    let job = |key: String| {
        json!({"name": key, "handler": "bill", "queue": "tenants",
                                   "concurrency_key": key})
    };
    let hot = create_all(
        &a.base,
        &admin,
        (0..10).map(|_| job("hot".into())).collect(),
    )
    .await;
    let keys: Vec<Value> = (0..1000).map(|i| job(format!("k{i:04}"))).collect();
    let others = create_all(&a.base, &admin, keys).await;

    let held = run_workers(bases, admin.clone(), "bill", 1000 + 2, 6).await;
    assert_eq!(held.len(), 1002, "every key's job and the hot key's two");
    let ran: std::collections::HashSet<&str> = held.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ran.len(), held.len(), "each job ran once");
    assert!(
        others.iter().all(|id| ran.contains(id.as_str())),
        "every key progressed"
    );
    assert_eq!(hot.iter().filter(|id| ran.contains(id.as_str())).count(), 2);
    let hot_in_order: Vec<&str> = held
        .iter()
        .filter(|h| hot.contains(&h.id))
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(
        hot_in_order,
        [hot[0].as_str(), hot[1].as_str()],
        "a key's jobs in order"
    );

    let (status, keys) = get(&http(), &a, &admin, "/v1/queues/tenants/keys?limit=2").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(
        keys["data"],
        json!([{"key": "hot", "running": 0, "waiting": 8}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_keys_progress_on_two_postgres_servers() {
    a_thousand_keys_progress_and_a_rate_held_key_delays_no_other(Backing::Postgres(
        TestDb::create().await,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_keys_progress_on_sqlite() {
    a_thousand_keys_progress_and_a_rate_held_key_delays_no_other(
        Backing::new(common::StoreKind::Sqlite).await,
    )
    .await;
}

/// A worker long-polling one server for a paused queue's job gets it as soon
/// as the queue is resumed through the other server: the change wakes the
/// polls of every server, not only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_queue_through_one_server_wakes_the_polls_of_another() {
    let (backing, a, b, admin) = two_servers().await;
    let worker = cli_create_key(&backing, "w", "worker").await;
    let client = http();
    let (status, _) = post(
        &client,
        &a.base,
        "/v1/queues",
        &admin,
        &json!({"name": "held"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &client,
        &a.base,
        "/v1/queues/held/pause",
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let job = json!({"name": "waiting", "handler": "h", "queue": "held"});
    let (status, _) = post(&client, &a.base, "/v1/jobs", &admin, &job).await;
    assert_eq!(status, 201);

    let base = b.base.clone();
    let poll = tokio::spawn(async move {
        let body = json!({"handlers": ["h"], "max_jobs": 1, "wait_seconds": 20, "worker_id": "b"});
        let started = Instant::now();
        let (status, answer) = post(&http(), &base, "/v1/workers/poll", &worker, &body).await;
        (status, answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = post(
        &client,
        &a.base,
        "/v1/queues/held/resume",
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer, waited) = poll.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"].as_array().unwrap().len(), 1, "{answer}");
    println!("leased {waited:?} after the poll began (resumed at 500 ms)");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the resume, not at the poll's end ({waited:?})"
    );
}
