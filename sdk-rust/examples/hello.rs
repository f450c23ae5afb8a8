//! A worker in 15 lines. Run a server, then:
//! `CHRONOS_API_KEY=chrns_… cargo run -p chronos-sdk --example hello`
use chronos::{JobError, Worker};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), chronos::Error> {
    let url = std::env::var("CHRONOS_URL").unwrap_or("http://127.0.0.1:7070".into());
    let key =
        std::env::var("CHRONOS_API_KEY").expect("CHRONOS_API_KEY: a key with the worker scope");
    Worker::builder(url, key)
        .concurrency(8)
        .handle("hello", |job| async move {
            let name = job.payload["name"].as_str().unwrap_or("world").to_string();
            println!("Hello, {name}! (job {}, attempt {})", job.id, job.attempt);
            Ok::<_, JobError>(json!({ "greeted": name }))
        })
        .run()
        .await
}
