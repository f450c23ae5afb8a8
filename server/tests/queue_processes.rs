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

use common::process::{Serve, cli_create_key, http};
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
                let poll = json!({"handlers": [handler], "max_jobs": 2, "wait_seconds": 1,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_never_run_more_of_a_queue_than_its_concurrency() {
    let backing = Backing::Postgres(TestDb::create().await);
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = Serve::start(&backing).await;
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
    let backing = Backing::Postgres(TestDb::create().await);
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = Serve::start(&backing).await;
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
