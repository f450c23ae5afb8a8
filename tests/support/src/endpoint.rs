//! A real HTTP endpoint on loopback for push delivery to call: it records
//! every request and answers as its path says.
//!
//! - `/ok` (or any other path): 200 with `{"ok":true}`
//! - `/status/{code}`: that status
//! - `/stop/{code}`: that status, with `Chronos-Retry: stop`
//! - `/flaky/{n}`: 503 for the first `n` requests to that path, then 200
//! - `/retry-after/{seconds}`: 429 with `Retry-After` the first time, then 200
//! - `/unavailable/{seconds}`: 503 with `Retry-After`, always
//! - `/slow`: answers after `slow_for` (default: never, within a test)
//! - `/hang-once`: the first request never gets an answer; later ones 200
//! - `/redirect`: 302 to this endpoint's `/secret`
//! - `/big/{bytes}`: 200 with a body of that many `x`
//! - `/text`: 200 with `OK` as text
//! - `/bytes`: 200 with the bytes `ff 00 80 61`, which are not UTF-8

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One request the endpoint received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    counts: Mutex<HashMap<String, u32>>,
    arrived: Notify,
    slow_for: Mutex<Option<Duration>>,
}

pub struct Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(answer)
            .with_state((shared.clone(), base.clone()));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Endpoint { base, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/slow` answers 200 after this long (by default it hangs for an hour).
    pub fn slow_for(&self, d: Duration) {
        *self.shared.slow_for.lock().unwrap() = Some(d);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Requests so far to `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `n` requests to `path` have arrived; panics after `within`.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let got = self.received_at(path);
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{} of {n} requests to {path} arrived within {within:?}",
                    got.len()
                );
            }
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State((shared, base)): State<(Arc<Shared>, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let seen = {
        let mut counts = shared.counts.lock().unwrap();
        let n = counts.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    shared.received.lock().unwrap().push(Received {
        method,
        path: path.clone(),
        headers,
        body,
        at: Instant::now(),
    });
    shared.arrived.notify_waiters();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts[0] {
        "status" => StatusCode::from_u16(number(1) as u16)
            .unwrap_or(StatusCode::IM_A_TEAPOT)
            .into_response(),
        "stop" => (
            StatusCode::from_u16(number(1) as u16).unwrap_or(StatusCode::IM_A_TEAPOT),
            [("chronos-retry", "stop")],
        )
            .into_response(),
        "flaky" if u64::from(seen) <= number(1) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not yet").into_response()
        }
        "retry-after" if seen == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, number(1).to_string())],
            "slow down",
        )
            .into_response(),
        "unavailable" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, number(1).to_string())],
            "down",
        )
            .into_response(),
        "slow" => {
            let wait = shared
                .slow_for
                .lock()
                .unwrap()
                .unwrap_or(Duration::from_secs(3600));
            tokio::time::sleep(wait).await;
            ok()
        }
        "hang-once" if seen == 1 => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ok()
        }
        "redirect" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{base}/secret"))],
        )
            .into_response(),
        "big" => "x".repeat(number(1) as usize).into_response(),
        "text" => "OK".into_response(),
        "bytes" => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            vec![0xff_u8, 0x00, 0x80, b'a'],
        )
            .into_response(),
        _ => ok(),
    }
}

fn ok() -> Response {
    axum::Json(serde_json::json!({"ok": true})).into_response()
}
