//! Queue limits over the WebSocket worker protocol, on both stores: a
//! worker whose connection dies while it holds the only slot of a queue of
//! one holds it until its lease ends, then the queue moves on; a worker
//! that reconnects keeps the slot it names, and a lease it doesn't name is
//! ended and comes back first; jobs handed to a waiting worker as they are
//! created keep the queue's limit; a key limited to some queues leases
//! only their jobs, by socket, by poll and by hand-off.
//!
//! A connection dropped without a close frame is what the server sees of a
//! SIGKILLed worker: the kernel closes the process's socket.

mod common;

use chronos_test_support::both_stores;
use common::socket::{Socket, connect, quiet, recv, send};
use common::{StoreKind, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

both_stores!(
    a_dead_holder_of_a_strict_queue_frees_it_when_its_lease_ends,
    a_reconnecting_worker_keeps_a_strict_queues_order,
    jobs_handed_to_a_waiting_socket_keep_the_queues_limit,
    a_worker_key_limited_to_queues_leases_only_their_jobs,
);

/// A worker `id` for handler `h` with `max` slots, welcomed; `holding`:
/// the lease tokens it names on a reconnect.
async fn worker(s: &TestServer, key: &str, id: &str, max: u32, holding: Vec<Value>) -> Socket {
    let mut ws = connect(s, key).await;
    send(
        &mut ws,
        json!({"type": "hello", "worker_id": id, "handlers": ["h"], "max_in_flight": max,
               "sdk": "test/0", "protocol": 1, "holding": holding}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    ws
}

async fn queue(s: &TestServer, name: &str, concurrency: u32) {
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": name, "concurrency": concurrency}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn create(s: &TestServer, body: Value) -> String {
    let (status, job) = s.post(&s.admin_key, "/v1/jobs", body).await;
    assert_eq!(status, 201, "{job}");
    job["id"].as_str().unwrap().to_string()
}

async fn a_dead_holder_of_a_strict_queue_frees_it_when_its_lease_ends(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = s.key(&["worker"]).await;
    queue(&s, "one", 1).await;
    let first = create(
        &s,
        json!({"name": "first", "handler": "h", "queue": "one", "timeout": 1, "max_retries": 0}),
    )
    .await;
    let second = create(
        &s,
        json!({"name": "second", "handler": "h", "queue": "one"}),
    )
    .await;

    let mut doomed = worker(&s, &key, "doomed", 5, vec![]).await;
    let held = recv(&mut doomed).await;
    assert_eq!(held["job"]["id"], first.as_str());
    quiet(&mut doomed, Duration::from_millis(200)).await;
    // Killed: its socket closes without a word.
    drop(doomed);

    let mut next = worker(&s, &key, "next", 5, vec![]).await;
    let got = recv(&mut next).await;
    assert_eq!(
        got["job"]["id"],
        second.as_str(),
        "the queue moved on once the lost lease ended: {got}"
    );
    let (_, dead) = s.get(&s.admin_key, &format!("/v1/jobs/{first}")).await;
    assert_eq!(dead["status"], "failed", "{dead}");
}

async fn a_reconnecting_worker_keeps_a_strict_queues_order(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = s.key(&["worker"]).await;
    queue(&s, "one", 1).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(create(&s, json!({"name": name, "handler": "h", "queue": "one"})).await);
    }
    let mut ws = worker(&s, &key, "w", 5, vec![]).await;
    let a = recv(&mut ws).await;
    assert_eq!(a["job"]["id"], ids[0].as_str());
    quiet(&mut ws, Duration::from_millis(200)).await;
    drop(ws);

    // Back, naming its lease: the slot is still its own; nothing else starts.
    let mut ws = worker(&s, &key, "w", 5, vec![a["lease"]["token"].clone()]).await;
    quiet(&mut ws, Duration::from_millis(300)).await;
    send(
        &mut ws,
        json!({"type": "ack", "token": a["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");
    let b = recv(&mut ws).await;
    assert_eq!(b["job"]["id"], ids[1].as_str(), "then the next, in order");
    drop(ws);

    // Back without naming it: that attempt is ended, and the job, waiting
    // for its retry at the head of the queue, comes again before the next.
    let mut ws = worker(&s, &key, "w", 5, vec![]).await;
    let again = recv(&mut ws).await;
    assert_eq!(again["job"]["id"], ids[1].as_str(), "{again}");
    // Its next attempt (or a later one: the old session's poll may have
    // leased it once more and handed it back, unstarted, as it closed).
    assert!(again["job"]["attempt"].as_u64().unwrap() >= 2, "{again}");
    quiet(&mut ws, Duration::from_millis(200)).await;
    send(
        &mut ws,
        json!({"type": "ack", "token": again["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");
    assert_eq!(recv(&mut ws).await["job"]["id"], ids[2].as_str());
}

async fn jobs_handed_to_a_waiting_socket_keep_the_queues_limit(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = s.key(&["worker"]).await;
    queue(&s, "two", 2).await;
    let mut ws = worker(&s, &key, "w", 10, vec![]).await;
    quiet(&mut ws, Duration::from_millis(100)).await;
    // Created one by one while the worker waits: each may be handed to it
    // as it is inserted, but never a third while two run.
    for i in 0..3 {
        create(
            &s,
            json!({"name": format!("j{i}"), "handler": "h", "queue": "two"}),
        )
        .await;
    }
    let one = recv(&mut ws).await;
    let two = recv(&mut ws).await;
    assert_eq!(
        (one["type"].as_str(), two["type"].as_str()),
        (Some("job"), Some("job"))
    );
    quiet(&mut ws, Duration::from_millis(300)).await;
    send(
        &mut ws,
        json!({"type": "ack", "token": one["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");
    let three = recv(&mut ws).await;
    assert_eq!(three["job"]["name"], "j2", "{three}");
    quiet(&mut ws, Duration::from_millis(200)).await;
}

async fn a_worker_key_limited_to_queues_leases_only_their_jobs(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    queue(&s, "emails", 10).await;
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "emails worker", "scopes": ["worker"], "queues": ["emails"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let limited = body["key"].as_str().unwrap().to_string();
    let poll = |wait: u32| {
        let (s, limited) = (&s, &limited);
        async move {
            let (status, body) = s
                .post(
                    limited,
                    "/v1/workers/poll",
                    json!({"handlers": ["h"], "max_jobs": 10, "wait_seconds": wait}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let ids: Vec<String> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["job"]["id"].as_str().unwrap().to_string())
                .collect();
            ids
        }
    };

    // By poll: of what is queued, the emails job only.
    let mut theirs = vec![create(&s, json!({"name": "a", "handler": "h", "priority": 9})).await];
    let email = create(&s, json!({"name": "b", "handler": "h", "queue": "emails"})).await;
    assert_eq!(poll(0).await, [email]);

    // By hand-off: a job of another queue, created while the poll waits,
    // is not handed to it; the next emails job is.
    let others = async {
        s.polls_waiting(1).await;
        let theirs = create(&s, json!({"name": "c", "handler": "h"})).await;
        let email = create(&s, json!({"name": "d", "handler": "h", "queue": "emails"})).await;
        (theirs, email)
    };
    let (handed, (other, email)) = tokio::join!(poll(20), others);
    theirs.push(other);
    assert_eq!(handed, [email.as_str()]);

    // By socket.
    let mut ws = worker(&s, &limited, "emails-1", 5, vec![]).await;
    theirs.push(create(&s, json!({"name": "e", "handler": "h"})).await);
    let email = create(&s, json!({"name": "f", "handler": "h", "queue": "emails"})).await;
    let got = recv(&mut ws).await;
    assert_eq!(got["job"]["id"], email.as_str(), "{got}");
    quiet(&mut ws, Duration::from_millis(300)).await;

    // Every other job is still there for an unlimited key.
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/workers/poll",
            json!({"handlers": ["h"], "max_jobs": 10}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut rest: Vec<String> = (body["data"].as_array().unwrap().iter())
        .map(|l| l["job"]["id"].as_str().unwrap().to_string())
        .collect();
    rest.sort();
    theirs.sort();
    assert_eq!(rest, theirs);
}
