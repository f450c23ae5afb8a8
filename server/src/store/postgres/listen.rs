//! Following the jobs other server processes queue: a dedicated connection
//! that LISTENs on [`NOTIFY_CHANNEL`]. When it drops, it reconnects, and
//! everyone waiting is woken to look at the store again, since notifications
//! sent in the gap are lost.

use super::{NOTIFY_CHANNEL, parse_wake_payload};
use crate::store::WakeFn;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

pub(super) async fn run(
    mut config: tokio_postgres::Config,
    wake: WakeFn,
    mut shutdown: watch::Receiver<bool>,
) {
    config.application_name("chronos-listen");
    let mut retry = FIRST_RETRY;
    loop {
        match listen(&config, &wake, &mut shutdown, &mut retry).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "LISTEN connection lost; reconnecting"),
        }
        wake(None);
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = shutdown.changed() => return,
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One connection's life: Ok at shutdown, Err when the connection fails.
async fn listen(
    config: &tokio_postgres::Config,
    wake: &WakeFn,
    shutdown: &mut watch::Receiver<bool>,
    retry: &mut Duration,
) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    // The connection must be polled for the client to work; a task does
    // that and hands over the notifications.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(Ok(n.payload().to_string())).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                None => {
                    let _ = tx.send(Err("connection closed".to_string()));
                    return;
                }
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(|e| e.to_string())?;
        *retry = FIRST_RETRY;
        // Jobs queued before LISTEN took effect sent nobody a word.
        wake(None);
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(Ok(payload)) => wake(parse_wake_payload(&payload)),
                    Some(Err(e)) => return Err(e),
                    None => return Err("connection task ended".to_string()),
                },
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    result
}
