//! The worker protocol over WebSocket (`/v1/workers/connect`): JSON text
//! frames, each with a `type`. `docs/workers.md` specifies it for users;
//! `proto/vectors/worker.json` holds an example of every frame, which every
//! SDK checks it reads and writes alike.
//!
//! A session: the worker sends [`WorkerMessage::Hello`]; the server answers
//! [`ServerMessage::Welcome`] (or an error and a close). The server then
//! sends [`ServerMessage::Job`] frames, never more than the worker's free
//! slots (`max_in_flight` minus jobs in hand; every ack, fail or release
//! frees one). The worker answers each job with ack, fail or release, may
//! extend a lease, sends heartbeats, and may drain.

use crate::{Job, Lease};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame a worker may send, in bytes: room for an ack whose
/// result is as large as an HTTP request body may be (1 MiB). A server
/// closes a connection that sends a larger one.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// What a worker sends. Unknown fields are refused: the server answers a
/// frame holding one with an `invalid_frame` error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkerMessage {
    /// The first frame: who the worker is and what it runs.
    Hello {
        /// Stable across reconnects of the same worker process.
        worker_id: String,
        handlers: Vec<String>,
        /// How many jobs it runs at once.
        max_in_flight: u32,
        /// `name/version` of the SDK.
        sdk: String,
        protocol: u32,
        /// On a reconnect: the lease tokens of the jobs this worker still has
        /// in hand (running, or finished with the outcome not yet sent). It
        /// keeps those leases; any other lease the server has for this
        /// worker id never reached it, or was lost with it, and is ended as a
        /// failed attempt, due again at once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        holding: Vec<Uuid>,
    },
    /// The attempt succeeded; `result` is stored on the job.
    Ack {
        token: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
    },
    /// The attempt failed (same fields as `POST /v1/leases/fail`).
    Fail {
        token: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retryable: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in: Option<u32>,
    },
    /// The attempt may run `seconds` more from now.
    Extend { token: Uuid, seconds: u32 },
    /// Hand a job back unstarted: it is queued again without using an attempt.
    Release { token: Uuid },
    /// I am alive (any frame counts; this one says nothing else).
    Heartbeat {},
    /// Send me no more jobs; I finish what I hold.
    Drain {},
}

/// What an ack, fail, extend or release answer refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    Ack,
    Fail,
    Extend,
    Release,
}

/// What the server sends. Unknown fields are ignored, at every depth, so
/// that a newer server may add some without breaking a worker in the field
/// (the server refuses unknown fields in what a worker sends:
/// [`WorkerMessage`] is strict).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome {
        session_id: Uuid,
        /// Send something at least this often; three intervals of silence
        /// and the connection is taken for dead.
        heartbeat_interval_ms: u64,
    },
    /// A job to run, with its lease (as in the long-poll answer).
    Job { job: Box<Job>, lease: Lease },
    /// An ack, fail, extend or release was applied. For `extend`,
    /// `expires_at` is the new deadline.
    Accepted {
        token: Uuid,
        action: LeaseAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<crate::Timestamp>,
    },
    /// The token is not the job's current lease any more; nothing changed.
    LeaseLost { token: Uuid, action: LeaseAction },
    /// The job was cancelled: stop working on it. Its ack will be refused.
    Cancel { job_id: Uuid, token: Uuid },
    /// A frame could not be used. `code` is a stable machine code (as in
    /// REST errors); the connection stays open unless the server closes it.
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Uuid>,
    },
}

/// A worker as `GET /v1/workers` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectedWorker {
    pub worker_id: String,
    pub session_id: Uuid,
    pub handlers: Vec<String>,
    pub max_in_flight: u32,
    /// Jobs it holds now.
    pub in_flight: u32,
    pub sdk: String,
    pub connected_at: crate::Timestamp,
    pub last_heartbeat_at: crate::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example in the shared vectors reads as its type and writes back
    /// to the same JSON.
    #[test]
    fn vectors_round_trip() {
        let vectors: Value = serde_json::from_str(include_str!("../vectors/worker.json")).unwrap();
        for v in vectors["worker"].as_array().unwrap() {
            let m: WorkerMessage = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&m).unwrap(), *v);
        }
        for v in vectors["server"].as_array().unwrap() {
            let m: ServerMessage = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&m).unwrap(), *v);
        }
        for bad in vectors["invalid_worker"].as_array().unwrap() {
            assert!(
                serde_json::from_value::<WorkerMessage>(bad["frame"].clone()).is_err(),
                "{bad}"
            );
        }
    }
}
