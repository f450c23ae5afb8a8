//! A worker whose `slow` handler takes `payload.seconds` to finish (and stops
//! early when the job is cancelled): for trying drain, cancel and crashes.
//! `CHRONOS_API_KEY=chrns_… cargo run -p chronos-sdk --example slow`
use chronos::{JobError, Worker};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), chronos::Error> {
    let url = std::env::var("CHRONOS_URL").unwrap_or("http://127.0.0.1:7070".into());
    let key =
        std::env::var("CHRONOS_API_KEY").expect("CHRONOS_API_KEY: a key with the worker scope");
    let mut worker = Worker::builder(url, key).concurrency(4);
    if let Ok(id) = std::env::var("CHRONOS_WORKER_ID") {
        worker = worker.worker_id(id);
    }
    worker
        .handle("slow", |job| async move {
            let seconds = job.payload["seconds"].as_f64().unwrap_or(1.0);
            println!("started {}", job.id);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => Ok(()),
                _ = job.cancelled() => Err(JobError::permanent("cancelled")),
            }
        })
        .run()
        .await
}
