//! The WebSocket worker protocol against a real server, on both stores:
//! hello and welcome, jobs within free slots, acks and their answers,
//! fencing, release, drain, cancel, and bad frames that leave the
//! connection standing.

mod common;

use chronos_test_support::both_stores;

use common::socket::{Socket, connect, quiet, recv, send};
use common::{StoreKind, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

both_stores!(
    a_job_runs_over_a_socket,
    slots_bound_what_the_server_sends,
    stale_tokens_and_bad_frames_get_answers,
    release_drain_and_cancel,
    hello_is_checked,
    a_reconnect_keeps_the_leases_it_names_and_ends_the_rest,
);

async fn hello(s: &TestServer, handlers: &[&str], max: u32) -> Socket {
    let key = s.key(&["worker"]).await;
    let mut ws = connect(s, &key).await;
    send(
        &mut ws,
        json!({"type": "hello", "worker_id": "w-1", "handlers": handlers,
               "max_in_flight": max, "sdk": "test/0", "protocol": 1}),
    )
    .await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert!(welcome["session_id"].is_string());
    assert!(welcome["heartbeat_interval_ms"].as_u64().unwrap() > 0);
    ws
}

async fn create(s: &TestServer, handler: &str) -> Value {
    let (status, job) = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": handler}),
        )
        .await;
    assert_eq!(status, 201);
    job
}

async fn a_job_runs_over_a_socket(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let mut ws = hello(&s, &["hello"], 4).await;
    let job = create(&s, "hello").await;
    let frame = recv(&mut ws).await;
    assert_eq!(frame["type"], "job");
    assert_eq!(frame["job"]["id"], job["id"]);
    assert_eq!(frame["job"]["status"], "running");
    let token = frame["lease"]["token"].clone();
    send(
        &mut ws,
        json!({"type": "extend", "token": token, "seconds": 60}),
    )
    .await;
    let extended = recv(&mut ws).await;
    assert_eq!(extended["type"], "accepted");
    assert_eq!(extended["action"], "extend");
    assert!(extended["expires_at"].is_string());
    send(&mut ws, json!({"type": "heartbeat"})).await;
    send(
        &mut ws,
        json!({"type": "ack", "token": token, "result": {"ok": true}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "accepted", "token": token, "action": "ack"})
    );
    let (_, done) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], json!({"ok": true}));

    // Connected workers are listed, with what they hold.
    create(&s, "hello").await;
    assert_eq!(recv(&mut ws).await["type"], "job");
    let reader = s.key(&["jobs:read"]).await;
    let (status, workers) = s.get(&reader, "/v1/workers").await;
    assert_eq!(status, 200, "{workers}");
    let w = &workers["data"][0];
    assert_eq!(w["worker_id"], "w-1");
    assert_eq!(w["handlers"], json!(["hello"]));
    assert_eq!(w["max_in_flight"], 4);
    assert_eq!(w["in_flight"], 1);
    assert_eq!(w["sdk"], "test/0");
    assert!(w["session_id"].is_string() && w["last_heartbeat_at"].is_string());
    let worker_key = s.key(&["worker"]).await;
    common::assert_error(
        &s.get(&worker_key, "/v1/workers").await,
        403,
        "forbidden",
        None,
    );
    // Gone once disconnected.
    drop(ws);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, workers) = s.get(&reader, "/v1/workers").await;
        if workers["data"] == json!([]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still listed: {workers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn slots_bound_what_the_server_sends(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let mut ws = hello(&s, &["h"], 2).await;
    for _ in 0..5 {
        create(&s, "h").await;
    }
    let a = recv(&mut ws).await;
    let b = recv(&mut ws).await;
    assert_eq!(
        (a["type"].as_str(), b["type"].as_str()),
        (Some("job"), Some("job"))
    );
    quiet(&mut ws, Duration::from_millis(500)).await;
    // Each ack frees a slot, and the next job follows.
    send(
        &mut ws,
        json!({"type": "ack", "token": a["lease"]["token"]}),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(recv(&mut ws).await);
    }
    let types: Vec<&str> = got.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"accepted") && types.contains(&"job"),
        "{types:?}"
    );
    quiet(&mut ws, Duration::from_millis(500)).await;
    // A failure frees one too.
    send(
        &mut ws,
        json!({"type": "fail", "token": b["lease"]["token"], "error": "x", "retryable": false}),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(recv(&mut ws).await["type"].as_str().unwrap().to_string());
    }
    got.sort();
    assert_eq!(got, ["accepted", "job"]);
}

async fn stale_tokens_and_bad_frames_get_answers(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let mut ws = hello(&s, &["h"], 1).await;
    create(&s, "h").await;
    let job = recv(&mut ws).await;
    let token = job["lease"]["token"].clone();
    send(&mut ws, json!({"type": "ack", "token": token})).await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");
    send(&mut ws, json!({"type": "ack", "token": token})).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "lease_lost", "token": token, "action": "ack"})
    );
    let unknown = uuid::Uuid::new_v4();
    send(&mut ws, json!({"type": "fail", "token": unknown})).await;
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("not_found"))
    );
    for bad in [
        json!({"type": "ackk", "token": token}),
        json!({"type": "ack"}),
        json!({"type": "heartbeat", "at": 1}),
        json!({"type": "hello", "worker_id": "w", "handlers": ["h"], "max_in_flight": 1, "sdk": "x", "protocol": 1}),
        json!({"type": "extend", "token": token, "seconds": 0}),
    ] {
        send(&mut ws, bad.clone()).await;
        let e = recv(&mut ws).await;
        assert_eq!(e["type"], "error", "{bad} → {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    // Still standing: a new job arrives and is acked.
    create(&s, "h").await;
    let job = recv(&mut ws).await;
    assert_eq!(job["type"], "job");
    send(
        &mut ws,
        json!({"type": "ack", "token": job["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");
}

async fn release_drain_and_cancel(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let mut ws = hello(&s, &["h"], 1).await;
    let job = create(&s, "h").await;
    let id = job["id"].as_str().unwrap().to_string();
    let first = recv(&mut ws).await;
    send(
        &mut ws,
        json!({"type": "release", "token": first["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["action"], "release");
    // Released: queued again and, a slot being free, sent again.
    let again = recv(&mut ws).await;
    assert_eq!(again["job"]["id"], job["id"]);
    let (_, ex) = s
        .get(&s.admin_key, &format!("/v1/jobs/{id}/executions"))
        .await;
    assert_eq!(ex["data"][1]["status"], "released");

    // Cancel reaches the worker holding the job.
    let (status, _) = s
        .post_empty(&s.admin_key, &format!("/v1/jobs/{id}/cancel"))
        .await;
    assert_eq!(status, 200);
    let cancel = recv(&mut ws).await;
    assert_eq!(
        cancel,
        json!({"type": "cancel", "job_id": id, "token": again["lease"]["token"]})
    );
    send(
        &mut ws,
        json!({"type": "ack", "token": again["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "lease_lost");

    // Drain: no more jobs. (The slot the lost lease freed has the session
    // polling again; a drain stops that poll.)
    s.polls_waiting(1).await;
    send(&mut ws, json!({"type": "drain"})).await;
    common::wait_until("the drained session to stop polling", || {
        s.engine.waiting_polls() == 0
    })
    .await;
    let later = create(&s, "h").await;
    quiet(&mut ws, Duration::from_millis(300)).await;
    let (_, still) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", later["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(still["status"], "queued");
}

async fn hello_is_checked(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = s.key(&["worker"]).await;
    for (frame, code) in [
        (
            json!({"type": "hello", "worker_id": "w", "handlers": ["h"], "max_in_flight": 1, "sdk": "x", "protocol": 99}),
            "unsupported_protocol",
        ),
        (json!({"type": "heartbeat"}), "invalid_frame"),
        (
            json!({"type": "hello", "worker_id": "w", "handlers": [], "max_in_flight": 1, "sdk": "x", "protocol": 1}),
            "validation_failed",
        ),
        (
            json!({"type": "hello", "worker_id": "w", "handlers": ["h"], "max_in_flight": 0, "sdk": "x", "protocol": 1}),
            "validation_failed",
        ),
    ] {
        let mut ws = connect(&s, &key).await;
        send(&mut ws, frame).await;
        let e = recv(&mut ws).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{e}"
        );
        // Then the server closes.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    _ => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "not closed after a bad hello");
    }
    // The upgrade needs a worker key.
    let writer = s.key(&["jobs:write"]).await;
    let url = s.url("/v1/workers/connect").replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {writer}").parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // A plain GET is a JSON 400.
    let plain = common::decode(
        s.http
            .get(s.url("/v1/workers/connect"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    common::assert_error(&plain, 400, "validation_failed", None);
}

async fn a_reconnect_keeps_the_leases_it_names_and_ends_the_rest(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let key = s.key(&["worker"]).await;
    let hello = |holding: Vec<Value>| {
        json!({"type": "hello", "worker_id": "w-r", "handlers": ["h"], "max_in_flight": 1,
               "sdk": "test/0", "protocol": 1, "holding": holding})
    };
    let mut ws = connect(&s, &key).await;
    send(&mut ws, hello(vec![])).await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    let job = create(&s, "h").await;
    let first = recv(&mut ws).await;
    drop(ws);

    // Back, still holding it: the lease is kept (no new job, the slot is
    // taken) and its ack is accepted.
    let mut ws = connect(&s, &key).await;
    send(&mut ws, hello(vec![first["lease"]["token"].clone()])).await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    quiet(&mut ws, Duration::from_millis(300)).await;
    send(
        &mut ws,
        json!({"type": "ack", "token": first["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "accepted");

    // A job frame that never arrived: back without naming it, the lease is
    // ended at once and the job comes again as the next attempt.
    let job2 = create(&s, "h").await;
    let lost = recv(&mut ws).await;
    assert_eq!(lost["job"]["id"], job2["id"]);
    drop(ws);
    let mut ws = connect(&s, &key).await;
    send(&mut ws, hello(vec![])).await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    let again = recv(&mut ws).await;
    assert_eq!(again["job"]["id"], job2["id"]);
    assert_eq!(again["job"]["attempt"], 2);
    send(
        &mut ws,
        json!({"type": "ack", "token": lost["lease"]["token"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "lease_lost");
    let (_, done) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(done["status"], "completed");
}
