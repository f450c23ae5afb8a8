//! Forward compatibility (`proto/vectors/forward.json`): the SDK reads what
//! a newer server sends — fields it does not know, at any depth, and frames
//! of a kind it does not know — and the real server still refuses unknown
//! fields in what clients send.
//!
//! A newer server does not exist yet, so it is played by stand-ins that
//! send the vectors as a server would: a WebSocket that speaks the worker
//! protocol, and an HTTP endpoint that answers REST calls.

mod common;

use chronos::{Client, JobError, ListJobs, PollRequest, Worker};
use common::{StoreKind, TestServer, assert_error, http_stand_in, known};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../proto/vectors/forward.json")).unwrap()
}

fn frame(v: &Value, kind: &str, action: Option<&str>) -> Value {
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == kind && action.is_none_or(|a| f["action"] == a))
        .unwrap_or_else(|| panic!("no {kind} frame in the vectors"))
        .clone()
}

/// The next text frame from the worker, as JSON.
async fn next<S>(ws: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame from the worker within 10 s")
            .expect("the worker kept the connection")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn the_worker_runs_a_job_frame_holding_fields_it_does_not_know() {
    let v = vectors();
    let job_frame = frame(&v, "job", None);
    let token = job_frame["lease"]["token"].clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());

    let worker = Worker::builder(url, "chrns_test")
        .handle_signals(false)
        .handle("send-email", |job| async move {
            // The extend's answer holds unknown fields too.
            job.extend(120)
                .await
                .map_err(|e| JobError::permanent(e.to_string()))?;
            Ok::<_, JobError>(json!({"to": job.payload["userId"]}))
        })
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());

    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["handlers"], json!(["send-email"]));
    let send = |f: Value| Message::Text(f.to_string().into());
    ws.send(send(frame(&v, "welcome", None))).await.unwrap();
    // A kind of frame this SDK does not know is skipped, not a failure.
    for unknown in v["unknown_frames"].as_array().unwrap() {
        ws.send(send(unknown.clone())).await.unwrap();
    }
    ws.send(send(job_frame.clone())).await.unwrap();

    let extend = next(&mut ws).await;
    assert_eq!(
        extend,
        json!({"type": "extend", "token": token, "seconds": 120})
    );
    ws.send(send(frame(&v, "accepted", Some("extend"))))
        .await
        .unwrap();
    let ack = next(&mut ws).await;
    assert_eq!(
        ack,
        json!({"type": "ack", "token": token, "result": {"to": "usr_123"}})
    );

    stop.shutdown();
    assert_eq!(next(&mut ws).await, json!({"type": "drain"}));
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_client_reads_answers_holding_fields_it_does_not_know() {
    let v = vectors();
    let answers = v["answers"].clone();
    let routes = answers.clone();
    let url = http_stand_in(move |method, path| match (method, path) {
        ("GET", p) if p.starts_with("/v1/jobs?") => (200, routes["jobs"].clone()),
        ("GET", p) if p.ends_with("/executions") => (200, routes["executions"].clone()),
        ("GET", p) if p == format!("/v1/jobs/{}", routes["job"]["id"].as_str().unwrap()) => {
            (200, routes["job"].clone())
        }
        ("POST", "/v1/workers/poll") => (200, routes["leased"].clone()),
        _ => (404, routes["error"].clone()),
    })
    .await;
    let client = Client::new(url, "chrns_test").unwrap();

    let id = answers["job"]["id"].as_str().unwrap().parse().unwrap();
    let job = client.get_job(id).await.unwrap();
    assert_eq!(serde_json::to_value(&job).unwrap(), known(&answers["job"]));
    let page = client.list_jobs(&ListJobs::new().limit(2)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&page).unwrap(),
        known(&answers["jobs"])
    );
    let runs = client.list_executions(id, None, None).await.unwrap();
    assert_eq!(
        serde_json::to_value(&runs).unwrap(),
        known(&answers["executions"])
    );
    let leased = client
        .poll(&PollRequest {
            handlers: vec!["send-email".into()],
            ..PollRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&leased).unwrap(),
        known(&answers["leased"]["data"])
    );
    let err = client.get_job(uuid::Uuid::now_v7()).await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some("not_found"), Some(404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_unknown_fields_in_what_clients_send() {
    let v = vectors();
    let s = TestServer::start(StoreKind::Sqlite).await;
    let requests = v["requests"].as_array().unwrap();
    assert!(requests.len() >= 5);
    for r in requests {
        let answer = s
            .post(&s.admin_key, r["path"].as_str().unwrap(), r["body"].clone())
            .await;
        assert_error(&answer, 400, "unknown_field", r["field"].as_str());
    }
}
