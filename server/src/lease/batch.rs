//! Group commit. Requests that arrive while the store is busy with earlier
//! ones are gathered and sent together as one batch: many workers' acks
//! cost one statement and one commit, many workers' lease requests one
//! statement. Nothing waits on purpose — a request that finds the store idle
//! goes at once, alone — so batching adds no latency on a quiet server and
//! grows by itself under load. Each caller is answered only after its
//! batch has committed.

use crate::store::{Result, StoreError};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

type Request<Req, Resp> = (Req, oneshot::Sender<Result<Resp>>);

pub struct Batcher<Req, Resp> {
    requests: mpsc::UnboundedSender<Request<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Starts `parallel` loops that each take up to `max` waiting requests
    /// and hand them to `run`, which answers them in order. With more than
    /// one loop, a batch can be gathered while another is committing. An
    /// answer whose caller has gone meanwhile (a client that hung up) goes
    /// to `unclaimed`, so that what was done for it can be undone.
    pub fn start<F, Fut, U>(max: usize, parallel: usize, run: F, unclaimed: U) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Resp>>> + Send + 'static,
        U: Fn(Resp) + Send + Sync + 'static,
    {
        let (requests, rx) = mpsc::unbounded_channel::<Request<Req, Resp>>();
        let rx = Arc::new(Mutex::new(rx));
        let run = Arc::new(run);
        let unclaimed = Arc::new(unclaimed);
        for _ in 0..parallel.max(1) {
            let rx = rx.clone();
            let run = run.clone();
            let unclaimed = unclaimed.clone();
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::new();
                    {
                        let mut rx = rx.lock().await;
                        match rx.recv().await {
                            Some(first) => batch.push(first),
                            // Every sender is gone: the engine was dropped.
                            None => return,
                        }
                        while batch.len() < max {
                            match rx.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                    }
                    let (reqs, answers): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
                    match run(reqs).await {
                        Ok(resps) => {
                            debug_assert_eq!(resps.len(), answers.len());
                            for (answer, resp) in answers.into_iter().zip(resps) {
                                if let Err(Ok(resp)) = answer.send(Ok(resp)) {
                                    unclaimed(resp);
                                }
                            }
                        }
                        Err(e) => {
                            let e = Arc::new(e);
                            for answer in answers {
                                let _ = answer.send(Err(StoreError::Shared(e.clone())));
                            }
                        }
                    }
                }
            });
        }
        Batcher { requests }
    }

    /// Sends one request with the next batch and waits for its answer.
    pub async fn call(&self, req: Req) -> Result<Resp> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send((req, answer))
            .map_err(|_| StoreError::Other("the server is shutting down".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Other("a batch was dropped unanswered".into()))?
    }
}
