//! The Chronos SDK for Rust: the one implementation of the Chronos client,
//! which the Node and Python SDKs wrap.
//!
//! [`Client`] speaks the REST API: create, read, list, cancel and retry jobs,
//! list their executions, schedules, queues (create, change, pause, publish
//! onto one …), target groups and their members, fan-outs, the worker
//! endpoints over HTTP (poll, ack, fail, extend), and what admin tooling
//! needs: organizations, API keys, members, invites and verified domains.
//! Request and response bodies are the wire types of `chronos-proto`,
//! re-exported here (all of them under [`proto`]).
//!
//! ```no_run
//! use chronos::{Client, Delay, JobStatus, ListJobs, NewJob, PollRequest, TimeUnit};
//! use serde_json::json;
//!
//! # async fn example() -> Result<(), chronos::Error> {
//! let client = Client::new("http://localhost:8080", "chrns_…")?;
//!
//! // Create a job that runs in two hours.
//! let job = client
//!     .create_job(
//!         &NewJob::new("Send follow-up", "send-email")
//!             .payload(json!({"to": "ada@example.com"}))
//!             .delay(Delay { value: 2, unit: TimeUnit::Hour })
//!             .idempotency_key("follow-up-42")
//!             .build(),
//!     )
//!     .await?;
//! assert_eq!(job.status, JobStatus::Scheduled);
//!
//! // Page through what is waiting.
//! let mut query = ListJobs::new().status(JobStatus::Queued).limit(100);
//! loop {
//!     let page = client.list_jobs(&query).await?;
//!     for job in &page.data {
//!         println!("{} {}", job.id, job.name);
//!     }
//!     match page.next_cursor {
//!         Some(cursor) => query = query.cursor(cursor),
//!         None => break,
//!     }
//! }
//!
//! // Run jobs by hand over HTTP (a key with the `worker` scope).
//! let leased = client
//!     .poll(&PollRequest {
//!         handlers: vec!["send-email".into()],
//!         wait_seconds: Some(30),
//!         ..PollRequest::default()
//!     })
//!     .await?;
//! for l in leased {
//!     match client.ack(l.lease.token, Some(json!({"sent": true}))).await {
//!         Ok(done) => assert_eq!(done.status, JobStatus::Completed),
//!         // Too late: the lease expired or the job was cancelled.
//!         Err(e) if e.is_lease_lost() => {}
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules:
//! - [`client`]: [`Client`] and its [`ClientBuilder`] (timeout, user agent).
//! - [`job`]: [`NewJob`], a builder of the create body, and [`ListJobs`], the
//!   filters and page of a list.
//! - [`error`]: [`Error`], with the server's error code and helpers such as
//!   [`Error::is_lease_lost`].
//! - [`worker`]: [`Worker`], a long-running worker over the WebSocket
//!   protocol: register handlers, and it receives jobs as they become due,
//!   acks, fails and extends their leases, reconnects and drains itself.
//! - [`hosted`]: [`hosted::HostedWorker`], the worker for a foreign runtime:
//!   what the Node and Python SDKs are built on.
//! - [`callback`]: for the endpoint a callback queue delivers to: verify a
//!   callback's signature and read it as a [`Callback`].
//!
//! `sdk-rust/manifest.json` lists the client's methods and every SDK's
//! defaults; the Node and Python SDKs' tests hold them to it.

pub mod callback;
pub mod client;
pub mod error;
pub mod hosted;
pub mod job;
pub mod worker;

pub use chronos_proto as proto;
/// Verifying the signature on a push request Chronos sent:
/// [`signature::verify`].
pub use chronos_proto::signature;

pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use job::{ListJobs, NewJob, ScheduleFilter};
pub use worker::{
    JobContext, JobError, Outcome, ShutdownHandle, Worker, WorkerBuilder, WorkerSettings,
};

pub use chronos_proto::{
    AcceptInvite, ApiKey, BatchItem, Callback, CallbackEvent, CallbackStatus, CatchUp,
    CreateApiKey, CreateInvite, CreateJob, CreateMember, CreateMessage, CreateOrganization,
    CreateQueue, CreateSchedule, CreateTargetGroup, CreatedApiKey, CreatedInvite,
    CreatedOrganization, Delay, Delivery, DnsTxtChallenge, Domain, DomainRequest, DomainStatus,
    DomainVerification, ErrorBody, ErrorDetail, Execution, ExecutionStatus, FailRequest,
    FailureMode, FanOut, FanOutAccepted, FanOutResult, FanOutStatus, GroupCallbackEvent,
    HttpMethod, HttpTarget, Invite, InviteAccepted, InviteStatus, Job, JobStatus, Lease, LeasedJob,
    List, Member, Membership, MessageAccepted, MessagePublished, Organization, Overlap, Plan,
    PollRequest, PublishMessage, Queue, QueueMessageAccepted, QueueOrdering, QueuePublished,
    QueueState, QueueStats, Role, Schedule, ScheduleStatus, ScheduleType, Scope, SkippedRun,
    TargetGroup, TimeUnit, Timestamp, UpdateOrganization, UpdateQueue, Usage, UsageWindow, User,
    WellKnownChallenge,
};
