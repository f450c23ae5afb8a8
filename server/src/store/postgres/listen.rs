//! Following what other server processes do: a dedicated connection that
//! LISTENs on [`NOTIFY_CHANNEL`] (jobs queued), [`CANCEL_CHANNEL`] (jobs
//! cancelled) and [`CLOCK_CHANNEL`] (the test clock moved). When it drops,
//! it reconnects, and everyone waiting is woken to look at the store again,
//! since notifications sent in the gap are lost. (A cancel sent in the gap
//! reaches its worker only as a refused ack.)

use super::{CANCEL_CHANNEL, CLOCK_CHANNEL, NOTIFY_CHANNEL, parse_wake_payload};
use crate::store::{Change, ChangeFn};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

pub(super) async fn run(
    mut config: tokio_postgres::Config,
    on_change: ChangeFn,
    mut shutdown: watch::Receiver<bool>,
) {
    config.application_name("chronos-listen");
    let mut retry = FIRST_RETRY;
    loop {
        match listen(&config, &on_change, &mut shutdown, &mut retry).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "LISTEN connection lost; reconnecting"),
        }
        on_change(Change::Queued(None));
        on_change(Change::ClockMoved);
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
    on_change: &ChangeFn,
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
                    let change = match n.channel() {
                        CANCEL_CHANNEL => uuid::Uuid::parse_str(n.payload())
                            .ok()
                            .map(Change::Cancelled),
                        CLOCK_CHANNEL => Some(Change::ClockMoved),
                        _ => Some(Change::Queued(parse_wake_payload(n.payload()))),
                    };
                    let Some(change) = change else { continue };
                    if tx.send(Ok(change)).is_err() {
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
            .batch_execute(&format!(
                "LISTEN {NOTIFY_CHANNEL}; LISTEN {CANCEL_CHANNEL}; LISTEN {CLOCK_CHANNEL}"
            ))
            .await
            .map_err(|e| e.to_string())?;
        *retry = FIRST_RETRY;
        // Jobs queued before LISTEN took effect sent nobody a word.
        on_change(Change::Queued(None));
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(Ok(change)) => on_change(change),
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
