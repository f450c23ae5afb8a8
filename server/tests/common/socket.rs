//! A worker's WebSocket, frame by frame, for the suites that speak the
//! worker protocol themselves (`worker_socket.rs`, `queue_sockets.rs`).

use super::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to `/v1/workers/connect` with `key`, before its hello.
pub async fn connect(s: &TestServer, key: &str) -> Socket {
    let url = s.url("/v1/workers/connect").replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

pub async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame, within 10 s.
pub async fn recv(ws: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("connection closed")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Asserts no frame arrives for a while.
pub async fn quiet(ws: &mut Socket, for_: Duration) {
    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(for_, ws.next()).await {
        panic!("unexpected frame: {t}");
    }
}
