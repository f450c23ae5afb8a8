//! A worker's WebSocket session (protocol 1, `chronos_proto::worker`).
//!
//! After `hello`, a dispatcher leases jobs for the worker's handlers while it
//! has free slots (a semaphore of `max_in_flight` permits; every job sent
//! takes one, every ack, fail or release — or lost lease — gives it back)
//! and sends them as `job` frames. The reader applies the worker's frames
//! through the lease engine and answers each. Cancellations of jobs the
//! session holds are passed on as `cancel` frames.
//!
//! Liveness: a connection that sends nothing for three heartbeat intervals
//! is closed. Workers are recorded in the store (`workers`), so every server
//! process knows them: a worker that says hello again within that grace, to
//! any process, keeps the leases it holds; otherwise the sweeper ends each as
//! a failed attempt ("worker connection lost"), due again at once, so another
//! worker runs it long before its timeout.

use crate::account::OrgId;
use crate::job::rules::{self, Invalid};
use crate::job::state::Failure;
use crate::lease::liveness::{HEARTBEAT_INTERVAL, WORKER_GRACE};
use crate::lease::{Engine, Wanted};
use crate::store::{LeaseOutcome, WorkerRegistration};
use axum::extract::ws::{Message, WebSocket};
use chronos_proto::worker::{LeaseAction, PROTOCOL_VERSION, ServerMessage, WorkerMessage};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

/// How long a worker has to send `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one dispatcher poll waits before looking again.
const POLL_WAIT: Duration = Duration::from_secs(30);
pub const MAX_IN_FLIGHT: u32 = 1000;
/// The most jobs the dispatcher asks for at once (the rest of a worker's
/// free slots are filled by the next poll).
const MAX_LEASE_PER_POLL: u32 = 500;
/// The socket's buffers: larger frames still pass, the buffer grows for them.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;
pub use chronos_proto::worker::MAX_FRAME_BYTES;

/// The leases a session holds: token → job id.
type Held = Arc<Mutex<HashMap<Uuid, Uuid>>>;

struct Hello {
    worker_id: String,
    handlers: Vec<String>,
    max_in_flight: u32,
    sdk: String,
    holding: Vec<Uuid>,
}

/// Runs one session to its end; with `queues`, it leases only jobs of those
/// (its key is limited to them).
pub async fn run(socket: WebSocket, engine: Arc<Engine>, org: OrgId, queues: Option<Vec<String>>) {
    let (mut sink, mut stream) = socket.split();
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => parse_hello(&text),
        Ok(Some(Ok(_))) => Err((
            "invalid_frame",
            "the first frame must be a JSON text `hello`".to_string(),
        )),
        Ok(_) => return,
        Err(_) => Err((
            "hello_timeout",
            format!("no hello within {HELLO_TIMEOUT:?}"),
        )),
    };
    let hello = match hello {
        Ok(h) => h,
        Err((code, message)) => {
            let _ = sink.send(frame(&error(code, message, None))).await;
            let _ = sink.close().await;
            return;
        }
    };
    let session_id = Uuid::now_v7();
    let registration = WorkerRegistration {
        worker_id: hello.worker_id.clone(),
        session_id,
        handlers: hello.handlers.clone(),
        max_in_flight: hello.max_in_flight,
        sdk: hello.sdk.clone(),
    };
    // A reconnecting worker keeps the leases it says it holds; the others
    // the server has for it never reached it or were lost with it.
    let held: Held = match engine.store().register_worker(org, &registration).await {
        Ok(leases) => {
            let (kept, lost): (Vec<_>, Vec<_>) = leases
                .into_iter()
                .partition(|l| hello.holding.contains(&l.token));
            for l in lost {
                if let Err(e) = engine
                    .fail(org, l.token, Failure::worker_lost(), false)
                    .await
                {
                    tracing::warn!(error = %e, token = %l.token, "ending a lost lease failed");
                }
            }
            Arc::new(Mutex::new(
                kept.into_iter().map(|l| (l.token, l.job_id)).collect(),
            ))
        }
        Err(e) => {
            let id = Uuid::now_v7();
            tracing::error!(error_id = %id, error = %e, "registering a worker failed");
            let _ = sink
                .send(frame(&error(
                    "internal_error",
                    format!("internal error (id {id})"),
                    None,
                )))
                .await;
            let _ = sink.close().await;
            return;
        }
    };
    let welcome = ServerMessage::Welcome {
        session_id,
        heartbeat_interval_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
    };
    if sink.send(frame(&welcome)).await.is_err() {
        return;
    }
    tracing::info!(%session_id, worker_id = %hello.worker_id, handlers = ?hello.handlers, "worker connected");

    let in_hand = held.lock().unwrap_or_else(|p| p.into_inner()).len() as u32;
    let slots = Arc::new(Semaphore::new(
        hello.max_in_flight.saturating_sub(in_hand) as usize
    ));

    let (out, mut out_rx) = mpsc::channel::<ServerMessage>(256);
    let writer = tokio::spawn(async move {
        // Frames ready together go out in one write.
        'writing: while let Some(message) = out_rx.recv().await {
            if sink.feed(frame(&message)).await.is_err() {
                break;
            }
            while let Ok(message) = out_rx.try_recv() {
                if sink.feed(frame(&message)).await.is_err() {
                    break 'writing;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // False once the worker drains or the connection ends.
    let (dispatching, dispatch_rx) = watch::channel(true);
    let dispatcher = tokio::spawn(dispatch(
        engine.clone(),
        org,
        hello.worker_id.clone(),
        Wanted {
            handlers: hello.handlers.clone(),
            queues,
        },
        held.clone(),
        slots.clone(),
        out.clone(),
        dispatch_rx,
    ));
    let canceller = tokio::spawn(pass_on_cancels(engine.clone(), held.clone(), out.clone()));

    let mut shutdown = engine.shutdown();
    let mut last_seen_recorded = tokio::time::Instant::now();
    let mut closed_cleanly = false;
    // Acks, fails, releases and extends in progress. They run side by side,
    // so that a worker's outcomes join other workers' in one commit instead
    // of waiting for each other; each is answered when it has committed.
    let mut applying = JoinSet::new();
    loop {
        while applying.try_join_next().is_some() {}
        let next = tokio::select! {
            next = tokio::time::timeout(WORKER_GRACE, stream.next()) => next,
            // The worker reconnects elsewhere; its leases stay valid there.
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let message = match next {
            Err(_) => {
                tracing::info!(%session_id, "worker silent for three heartbeat intervals; closing");
                break;
            }
            Ok(Some(Ok(Message::Close(_)))) => {
                closed_cleanly = true;
                break;
            }
            Ok(None | Some(Err(_))) => break,
            Ok(Some(Ok(message))) => message,
        };
        // Any frame is a sign of life; the store hears of it once an interval.
        if last_seen_recorded.elapsed() >= HEARTBEAT_INTERVAL {
            last_seen_recorded = tokio::time::Instant::now();
            if let Err(e) = engine
                .store()
                .worker_heartbeat(org, &hello.worker_id, session_id)
                .await
            {
                tracing::warn!(error = %e, "recording a worker heartbeat failed");
            }
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let _ = out
                    .send(error(
                        "invalid_frame",
                        "frames are JSON text, not binary".into(),
                        None,
                    ))
                    .await;
                continue;
            }
            // Pings and pongs count as signs of life; axum answers pings.
            _ => continue,
        };
        let reply = match serde_json::from_str::<WorkerMessage>(&text) {
            Err(e) => Some(error(
                "invalid_frame",
                format!("cannot read this frame: {e}"),
                None,
            )),
            Ok(WorkerMessage::Hello { .. }) => Some(error(
                "invalid_frame",
                "hello was already sent".into(),
                None,
            )),
            Ok(WorkerMessage::Heartbeat {}) => None,
            Ok(WorkerMessage::Drain {}) => {
                let _ = dispatching.send(false);
                None
            }
            Ok(message) => {
                let (engine, held, slots, out) =
                    (engine.clone(), held.clone(), slots.clone(), out.clone());
                applying.spawn(async move {
                    if let Some(reply) = apply(&engine, org, &held, &slots, message).await {
                        let _ = out.send(reply).await;
                    }
                });
                None
            }
        };
        if let Some(reply) = reply
            && out.send(reply).await.is_err()
        {
            break;
        }
    }

    // Whether the worker asked to drain (before the teardown stops dispatch).
    let drained = !*dispatching.borrow() && !*shutdown.borrow();
    let _ = dispatching.send(false);
    let _ = dispatcher.await;
    while applying.join_next().await.is_some() {}
    canceller.abort();
    drop(out);
    let _ = writer.await;
    // A worker that drained and then closed has acked or released all it
    // knew of: what it still holds here was on its way to it. Back it goes.
    if closed_cleanly && drained {
        let tokens: Vec<Uuid> = held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        for token in tokens {
            if let Err(e) = engine.release(org, token).await {
                tracing::warn!(error = %e, %token, "handing back a drained worker's job failed");
            }
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&token);
        }
    }
    let holding = held.lock().unwrap_or_else(|p| p.into_inner()).len();
    tracing::info!(%session_id, worker_id = %hello.worker_id, holding, "worker disconnected");
    // From now the grace runs: the sweeper ends what it holds unless it
    // comes back.
    if let Err(e) = engine
        .store()
        .disconnect_worker(org, &hello.worker_id, session_id)
        .await
    {
        tracing::warn!(error = %e, "recording a worker's disconnect failed");
    }
}

fn parse_hello(text: &str) -> Result<Hello, (&'static str, String)> {
    let message: WorkerMessage = serde_json::from_str(text)
        .map_err(|e| ("invalid_frame", format!("cannot read this frame: {e}")))?;
    let WorkerMessage::Hello {
        worker_id,
        handlers,
        max_in_flight,
        sdk,
        protocol,
        holding,
    } = message
    else {
        return Err(("invalid_frame", "the first frame must be `hello`".into()));
    };
    if protocol != PROTOCOL_VERSION {
        return Err((
            "unsupported_protocol",
            format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
        ));
    }
    if worker_id.is_empty()
        || worker_id.chars().count() > 255
        || worker_id.chars().any(char::is_control)
    {
        return Err((
            "validation_failed",
            "worker_id must be 1 to 255 printable characters".into(),
        ));
    }
    if handlers.is_empty() || handlers.len() > 100 {
        return Err((
            "validation_failed",
            "handlers must list 1 to 100 handler names".into(),
        ));
    }
    for (i, h) in handlers.iter().enumerate() {
        rules::validate_handler(&format!("handlers[{i}]"), h)
            .map_err(|e| ("validation_failed", e.to_string()))?;
    }
    if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
        return Err((
            "validation_failed",
            format!("max_in_flight must be between 1 and {MAX_IN_FLIGHT}"),
        ));
    }
    if sdk.chars().count() > 255 {
        return Err((
            "validation_failed",
            "sdk may be at most 255 characters".into(),
        ));
    }
    Ok(Hello {
        worker_id,
        handlers,
        max_in_flight,
        sdk,
        holding,
    })
}

/// Applies an ack, fail, release or extend; returns the answer.
async fn apply(
    engine: &Engine,
    org: OrgId,
    held: &Held,
    slots: &Semaphore,
    message: WorkerMessage,
) -> Option<ServerMessage> {
    // A lease that ends, however, frees its slot.
    let ended = |token: Uuid| {
        if held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token)
            .is_some()
        {
            slots.add_permits(1);
        }
    };
    let (token, action, outcome) = match message {
        // Answered by the session itself.
        WorkerMessage::Hello { .. } | WorkerMessage::Heartbeat {} | WorkerMessage::Drain {} => {
            return None;
        }
        WorkerMessage::Ack { token, result } => {
            if let Err(e) = rules::result(&result) {
                return Some(refused(&e, token));
            }
            (
                token,
                LeaseAction::Ack,
                engine
                    .ack(org, token, result, false)
                    .await
                    .map(|o| o.map(|_| None)),
            )
        }
        WorkerMessage::Fail {
            token,
            error: message,
            retryable,
            retry_in,
        } => {
            let failure = match rules::failure(message, retryable, retry_in) {
                Ok(f) => f,
                Err(e) => return Some(refused(&e, token)),
            };
            (
                token,
                LeaseAction::Fail,
                engine
                    .fail(org, token, failure, false)
                    .await
                    .map(|o| o.map(|_| None)),
            )
        }
        WorkerMessage::Release { token } => (
            token,
            LeaseAction::Release,
            engine.release(org, token).await.map(|o| o.map(|_| None)),
        ),
        WorkerMessage::Extend { token, seconds } => {
            let by = match rules::extension(seconds) {
                Ok(by) => by,
                Err(e) => return Some(refused(&e, token)),
            };
            let outcome = engine
                .extend(org, token, by)
                .await
                .map(|o| o.map(|l| Some(l.expires_at)));
            (token, LeaseAction::Extend, outcome)
        }
    };
    match outcome {
        Ok(LeaseOutcome::Done(expires_at)) => {
            if action != LeaseAction::Extend {
                ended(token);
            }
            Some(ServerMessage::Accepted {
                token,
                action,
                expires_at,
            })
        }
        Ok(LeaseOutcome::Lost) => {
            ended(token);
            Some(ServerMessage::LeaseLost { token, action })
        }
        Ok(LeaseOutcome::Unknown) => Some(error(
            "not_found",
            "no lease with this token in this organization".into(),
            Some(token),
        )),
        Err(e) => {
            let id = Uuid::now_v7();
            tracing::error!(error_id = %id, error = %e, "applying a worker frame failed");
            Some(error(
                "internal_error",
                format!("internal error (id {id})"),
                Some(token),
            ))
        }
    }
}

/// Leases jobs while the worker has free slots and is not draining.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    engine: Arc<Engine>,
    org: OrgId,
    worker_id: String,
    wants: Wanted,
    held: Held,
    slots: Arc<Semaphore>,
    out: mpsc::Sender<ServerMessage>,
    mut dispatching: watch::Receiver<bool>,
) {
    loop {
        // Wait for a free slot, then take every free one.
        let first = tokio::select! {
            permit = slots.acquire() => permit,
            _ = dispatching.wait_for(|d| !*d) => return,
        };
        let Ok(first) = first else { return };
        first.forget();
        let mut free = 1u32;
        while let Ok(p) = slots.try_acquire() {
            p.forget();
            free += 1;
        }
        let mut stop = dispatching.clone();
        let stopped = async move {
            let _ = stop.wait_for(|d| !*d).await;
        };
        let leased = engine
            .poll(
                org,
                &wants,
                free.min(MAX_LEASE_PER_POLL),
                POLL_WAIT,
                Some(&worker_id),
                stopped,
            )
            .await;
        let leased = match leased {
            Ok(leased) => leased,
            Err(e) => {
                tracing::warn!(error = %e, "leasing for a worker failed; retrying");
                slots.add_permits(free as usize);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        slots.add_permits((free as usize).saturating_sub(leased.len()));
        for job in leased {
            let token = job.lease.token;
            if !*dispatching.borrow() {
                // Drained or gone while this poll ran: hand it straight back.
                let _ = engine.release(org, token).await;
                slots.add_permits(1);
                continue;
            }
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(token, job.job.id);
            let frame = ServerMessage::Job {
                job: Box::new(job.job),
                lease: job.lease,
            };
            if out.send(frame).await.is_err() {
                return;
            }
        }
    }
}

/// Tells the worker when a job it holds is cancelled.
async fn pass_on_cancels(engine: Arc<Engine>, held: Held, out: mpsc::Sender<ServerMessage>) {
    let mut cancelled = engine.cancellations();
    // A cancel may be heard twice (locally and by notification): tell once.
    let mut told = std::collections::HashSet::<Uuid>::new();
    loop {
        let job_id = match cancelled.recv().await {
            Ok(id) => id,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let token = held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, j)| **j == job_id)
            .map(|(t, _)| *t);
        if let Some(token) = token
            && told.insert(token)
            && out
                .send(ServerMessage::Cancel { job_id, token })
                .await
                .is_err()
        {
            return;
        }
    }
}

/// The error frame for a frame that breaks a rule.
fn refused(e: &Invalid, token: Uuid) -> ServerMessage {
    error("validation_failed", e.to_string(), Some(token))
}

fn error(code: &str, message: String, token: Option<Uuid>) -> ServerMessage {
    ServerMessage::Error {
        code: code.to_string(),
        message,
        token,
    }
}

fn frame(message: &ServerMessage) -> Message {
    Message::Text(
        serde_json::to_string(message)
            .expect("server frames serialize")
            .into(),
    )
}
