//! What the end of a delivery publishes: its callback (one message onto its
//! callback queue, with its outcome), and, for the last delivery of a
//! fan-out, the group callback. Callback messages are plain messages of the
//! callback queue: delivered, retried and limited as the queue says, and
//! never followed by callbacks of their own, so no queue can loop.

use super::{Delivered, MemberRecord};
use crate::job::{Follow, NewJob, RunAt};
use crate::queue::QueueRecord;
use chronos_proto::{
    CallbackEvent, CallbackStatus, Delivery, FanOutResult, FanOutStatus, GroupCallbackEvent,
    HttpMethod, HttpTarget, JobStatus,
};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A callback message's timeout, as any message's.
pub const CALLBACK_TIMEOUT_SECONDS: u32 = 30;

/// The callback of a delivery that ended (completed or failed); `None` for
/// one that was cancelled, which is no delivery outcome. For an attempt
/// with retries to follow (`callback_on: "every_attempt"`), `delivered` is
/// that attempt, `failed`, and the callback is not `final`.
pub fn event(
    delivered: &Delivered,
    fan_out_id: Option<Uuid>,
    is_final: bool,
) -> Option<CallbackEvent> {
    let status = match delivered.status {
        JobStatus::Completed => CallbackStatus::Succeeded,
        JobStatus::Failed => CallbackStatus::Failed,
        _ => return None,
    };
    Some(CallbackEvent {
        message_id: delivered.job_id,
        fan_out_id,
        status,
        http_status: delivered.http_status,
        response_body: delivered.response_body.clone(),
        response_body_encoding: delivered.response_body_encoding.as_str().into(),
        response_truncated: delivered.response_truncated,
        attempts: delivered.attempts,
        error: match status {
            CallbackStatus::Succeeded => None,
            CallbackStatus::Failed => delivered.error.clone(),
        },
        url: delivered.target_url.clone(),
        method: delivered.method,
        created_at: delivered.created_at,
        finished_at: delivered.finished_at,
        is_final,
    })
}

/// A delivery's status as a fan-out's results show it.
pub fn result_status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Completed => "succeeded",
        other => other.as_str(),
    }
}

/// One delivery as a fan-out's results show it.
pub fn result(delivered: &Delivered) -> FanOutResult {
    FanOutResult {
        message_id: delivered.job_id,
        target_url: delivered.target_url.clone(),
        status: result_status(delivered.status).into(),
        http_status: delivered.http_status,
    }
}

/// The group callback of a fan-out whose deliveries have all ended.
pub fn group_event(fan_out_id: Uuid, deliveries: &[Delivered]) -> GroupCallbackEvent {
    let succeeded = deliveries
        .iter()
        .filter(|d| d.status == JobStatus::Completed)
        .count() as u32;
    GroupCallbackEvent {
        fan_out_id,
        status: FanOutStatus::of(succeeded, deliveries.len() as u32),
        results: deliveries.iter().map(result).collect(),
    }
}

/// The target group whose members a callback onto `queue` goes to: its
/// default group, when it has no default URL (which [`messages`] prefers).
pub fn group_of(queue: &QueueRecord) -> Option<Uuid> {
    match queue.settings.default_target_url {
        Some(_) => None,
        None => queue.settings.default_target_group_id,
    }
}

/// The messages that publish `body` onto the callback queue `queue`: one to
/// its default target URL, or one per member of its default target group
/// (`members`). None when it has neither any more.
pub fn messages(
    queue: &QueueRecord,
    members: &[MemberRecord],
    name: &str,
    body: &impl serde::Serialize,
) -> Vec<NewJob> {
    let body = serde_json::to_string(body).expect("a callback serializes");
    let targets: Vec<HttpTarget> = match (&queue.settings.default_target_url, members) {
        (Some(url), _) => vec![HttpTarget {
            url: url.clone(),
            method: HttpMethod::Post,
            headers: BTreeMap::new(),
        }],
        (None, members) => members
            .iter()
            .map(|m| HttpTarget {
                url: m.target_url.clone(),
                method: m.method,
                headers: m.headers.clone(),
            })
            .collect(),
    };
    targets
        .into_iter()
        .map(|http| NewJob {
            id: Uuid::now_v7(),
            name: format!("{name} → {} {}", http.method.as_str(), http.url),
            handler: None,
            payload: Value::String(body.clone()),
            queue: queue.name.clone(),
            concurrency_key: None,
            priority: 0,
            delivery: Delivery::Push {
                http,
                signing_secret_id: queue.settings.signing_secret_id,
            },
            run_at: RunAt::Now,
            // The queue's retries.
            max_retries: None,
            timeout_seconds: CALLBACK_TIMEOUT_SECONDS,
            schedule_id: None,
            idempotency_key: None,
            // A callback is never followed by one.
            follow: Follow::default(),
        })
        .collect()
}
