//! The shared test support (`tests/support`), and SDK clients for its servers.
#![allow(dead_code, unused_imports)]

pub use chronos_test_support::*;

/// SDK clients for a test server.
pub trait SdkClients {
    /// A client with the admin key.
    fn client(&self) -> chronos::Client;
    /// A client with a new key holding `scopes`.
    fn client_with_scopes(
        &self,
        scopes: &[&str],
    ) -> impl std::future::Future<Output = chronos::Client>;
}

impl SdkClients for TestServer {
    fn client(&self) -> chronos::Client {
        chronos::Client::new(&self.base, &self.admin_key).unwrap()
    }

    async fn client_with_scopes(&self, scopes: &[&str]) -> chronos::Client {
        chronos::Client::new(&self.base, self.key(scopes).await).unwrap()
    }
}

/// An HTTP stand-in for a server that does not exist yet (a newer one, or
/// one answering as a vector says): answers each request with `route(method,
/// path)`'s status and JSON, one connection at a time. Its base URL.
pub async fn http_stand_in(
    route: impl Fn(&str, &str) -> (u16, serde_json::Value) + Send + 'static,
) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tcp = BufReader::new(tcp);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                tcp.read_line(&mut line).await.unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            tcp.read_exact(&mut body).await.unwrap();
            let request_line = head.lines().next().unwrap_or_default().to_string();
            let mut parts = request_line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, answer) = route(method, path);
            let body = answer.to_string();
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tcp.get_mut().write_all(response.as_bytes()).await.unwrap();
            tcp.get_mut().shutdown().await.unwrap();
        }
    });
    url
}

/// A vector's value without its `added_later` fields, at every depth: what
/// a type that ignores unknown fields writes back.
#[allow(unused_imports)]
pub use chronos_proto::vectors::known;
