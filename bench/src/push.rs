//! Push delivery: the server calls an HTTP endpoint — here one in this
//! process — instead of a worker leasing the job. Measured on one server:
//!
//! - latency: one job at a time on the idle server, create request sent →
//!   request received, and due → request received;
//! - scheduled: jobs due one at a time a second or more after they were
//!   created, due → request received: how promptly the sweeper promotes
//!   them and the dispatcher calls;
//! - deliveries: N jobs created by batch while the dispatcher delivers
//!   them, from the first create to the last request received;
//! - fan-out: N/10 messages published across a target group of 10
//!   endpoints (each its own host), from the first publish to the last
//!   request received: deliveries/s.
//!
//! Prints its figures; nothing is asserted, but a stall, a repeat or a
//! retry is reported.

use crate::measure::{Recorder, Res, enqueue, percentiles, rate, settled};
use crate::server::Server;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::serve::ListenerExt;
use chrono::{DateTime, TimeDelta, Utc};
use chronos::proto::signature::MESSAGE_ID_HEADER;
use chronos::{
    BatchItem, Client, CreateMember, CreateMessage, CreateTargetGroup, Delivery, HttpMethod,
    HttpTarget, JobStatus, ListJobs, NewJob,
};
use chronos_server::push::delivery::ATTEMPT_HEADER;
use chronos_server::push::dispatcher::PushConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

pub struct Push {
    pub jobs: usize,
    pub creators: usize,
    pub batch: usize,
    pub samples: usize,
    /// The server's limits, if the bench set them.
    pub concurrency: Option<u32>,
    pub per_host: Option<u32>,
}

/// Scheduled jobs fall due this far apart, so that each is delivered (a
/// few milliseconds) before the next is due: one at a time, as on an idle
/// server.
const SCHEDULED_SPACING: Duration = Duration::from_millis(20);
/// A delivery that makes no progress for this long is a stall, reported.
const STALL: Duration = Duration::from_secs(30);

/// One request the endpoint received.
struct Receipt {
    id: Uuid,
    at: Instant,
    /// The wall clock, to compare with a job's `run_at` (the store's clock,
    /// on the same machine).
    wall: DateTime<Utc>,
}

/// The push target: an HTTP endpoint in this process that answers every
/// request 200 with an empty body. Stops when dropped.
struct Hook {
    url: String,
    seen: Arc<Seen>,
    serving: tokio::task::JoinHandle<()>,
}

/// What the endpoint received, by job (`Chronos-Message-Id`).
struct Seen {
    ran: Recorder,
    /// Requests for an attempt after the first: an earlier one failed.
    retries: AtomicUsize,
    /// Requests without a job id: not counted as deliveries.
    malformed: AtomicUsize,
    /// Each request, for the latency runs; dropping the receiver stops it.
    receipts: mpsc::UnboundedSender<Receipt>,
}

impl Hook {
    async fn start() -> Res<(Hook, mpsc::UnboundedReceiver<Receipt>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        // The answer leaves at once, as the server's own sockets' do.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (receipts, rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Seen {
            ran: Recorder::default(),
            retries: AtomicUsize::new(0),
            malformed: AtomicUsize::new(0),
            receipts,
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(seen.clone());
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((Hook { url, seen, serving }, rx))
    }

    /// A push job to this endpoint, for `handler`.
    fn job(&self, handler: &str) -> NewJob {
        NewJob::new("bench", handler).delivery(Delivery::Push {
            http: HttpTarget {
                url: self.url.clone(),
                method: HttpMethod::Post,
                headers: Default::default(),
            },
            signing_secret_id: None,
        })
    }

    /// Requests received, repeats included.
    fn count(&self) -> usize {
        self.seen.ran.count()
    }

    /// What went other than once per job, if anything.
    fn anomalies(&self) -> String {
        format!(
            "repeats {}  retries {}  without job id {}",
            self.seen.ran.repeats(),
            self.seen.retries.load(Ordering::Relaxed),
            self.seen.malformed.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// A request is received when its headers are read: the handler takes no
/// body (hyper reads and drops it).
async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> StatusCode {
    let (at, wall) = (Instant::now(), Utc::now());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(id) = header(MESSAGE_ID_HEADER).and_then(|s| Uuid::parse_str(s).ok()) else {
        seen.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    if header(ATTEMPT_HEADER).and_then(|s| s.parse::<u32>().ok()) > Some(1) {
        seen.retries.fetch_add(1, Ordering::Relaxed);
    }
    seen.ran.ran(id);
    let _ = seen.receipts.send(Receipt { id, at, wall });
    StatusCode::OK
}

pub async fn push(server: &Server, p: &Push) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    let defaults = PushConfig::default();
    let limit = |set: Option<u32>, default: u32| match set {
        Some(n) => n.to_string(),
        None => format!("{default} (default)"),
    };
    println!(
        "  endpoint in the bench's process answers 200, empty body; --push-concurrency {}, --push-per-host {}",
        limit(p.concurrency, defaults.max_in_flight),
        limit(p.per_host, defaults.per_host)
    );
    latency(&client, p.samples).await?;
    scheduled(&client, p).await?;
    deliveries(&client, p).await?;
    fan_out(server, p).await
}

/// Members of the fan-out run's target group.
const FAN_OUT_MEMBERS: usize = 10;

/// N/10 messages published across a group of 10 endpoints, each on its own
/// port (its own host, as delivery counts hosts), by `creators` clients at
/// once: from the first publish to the last request received.
async fn fan_out(server: &Server, p: &Push) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    let mut hooks = Vec::new();
    for _ in 0..FAN_OUT_MEMBERS {
        hooks.push(Hook::start().await?.0);
    }
    let group = client
        .create_target_group(&CreateTargetGroup {
            name: Some("bench".into()),
        })
        .await?
        .id;
    for hook in &hooks {
        let member = CreateMember {
            target_url: Some(hook.url.clone()),
            ..CreateMember::default()
        };
        client.add_member(group, &member).await?;
    }
    let publishes = (p.jobs / FAN_OUT_MEMBERS).max(1);
    let deliveries = publishes * FAN_OUT_MEMBERS;
    let creators = p.creators.clamp(1, publishes);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let message = CreateMessage {
        default_target_group_id: Some(group.to_string()),
        body: Some("{}".into()),
        ..CreateMessage::default()
    };
    for c in 0..creators {
        let (client, message) = (client.clone(), message.clone());
        let share = publishes / creators + usize::from(c < publishes % creators);
        tasks.spawn(async move {
            for _ in 0..share {
                client.send_message(&message).await?;
            }
            Ok::<_, chronos::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let published = started.elapsed();
    let received = || hooks.iter().map(Hook::count).sum::<usize>();
    let mut last = (received(), Instant::now());
    while received() < deliveries {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = received();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > STALL {
            return Err(format!("fan-out: {now} of {deliveries} deliveries, then a stall").into());
        }
    }
    let delivered = started.elapsed();
    let anomalies: Vec<String> = hooks
        .iter()
        .map(Hook::anomalies)
        .filter(|a| a != "repeats 0  retries 0  without job id 0")
        .collect();
    println!(
        "  {:<26}{}  {}",
        "fan-out deliveries",
        rate(deliveries, delivered),
        match anomalies.is_empty() {
            true => "repeats 0  retries 0".to_string(),
            false => anomalies.join("; "),
        }
    );
    println!(
        "  {:<26}({publishes} publishes to a group of {FAN_OUT_MEMBERS} endpoints by {creators} clients, all published after {published:.2?})",
        ""
    );
    Ok(())
}

/// One job at a time on the idle server: create request sent → request
/// received, and due → request received.
async fn latency(client: &Client, samples: usize) -> Res<()> {
    let (hook, mut receipts) = Hook::start().await?;
    let (mut request, mut due) = (Vec::new(), Vec::new());
    // One more than the samples: the first call opens the server's
    // connection to the endpoint, which later calls reuse.
    for i in 0..=samples {
        let sent = Instant::now();
        let job = client.create_job(&hook.job("push-latency").build()).await?;
        let r = receipt_of(&mut receipts, job.id, Duration::from_secs(10)).await?;
        if i > 0 {
            request.push(r.at.saturating_duration_since(sent));
            // `run_at` comes in whole milliseconds: this reads up to 1 ms
            // long, as the workers' latency run does.
            due.push((r.wall - job.run_at.0).to_std().unwrap_or_default());
        }
        // Let the completion commit: the server is idle again for the next.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  {:<26}{}", "create → request", percentiles(request));
    println!("  {:<26}{}", "due → request", percentiles(due));
    if hook.count() != samples + 1 {
        println!("  {:<26}{}", "unexpected", hook.anomalies());
    }
    Ok(())
}

/// Jobs scheduled a second or more ahead, due `SCHEDULED_SPACING` apart:
/// due → request received.
async fn scheduled(client: &Client, p: &Push) -> Res<()> {
    let (hook, mut receipts) = Hook::start().await?;
    // In whole milliseconds, as the server keeps them: `run_at` is exact.
    let first = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() + 1000)
        .ok_or("the clock is out of range")?;
    let spacing = TimeDelta::from_std(SCHEDULED_SPACING)?;
    let jobs: Vec<_> = (0..p.samples)
        .map(|i| {
            hook.job("push-scheduled")
                .scheduled_for(first + spacing * i as i32)
                .build()
        })
        .collect();
    let mut due_at = HashMap::new();
    for chunk in jobs.chunks(p.batch.max(1)) {
        for item in client.create_jobs(chunk).await? {
            match item {
                BatchItem::Job(job) => due_at.insert(job.id, job.run_at.0),
                BatchItem::Error(e) => {
                    return Err(format!("the server refused a job: {e:?}").into());
                }
            };
        }
    }
    let (mut late, mut early) = (Vec::new(), 0);
    // The last is due at `last`; 10 s after it, what has not come is late
    // beyond measuring.
    let last = first + spacing * p.samples as i32;
    let deadline = tokio::time::Instant::now()
        + (last - Utc::now()).to_std().unwrap_or_default()
        + Duration::from_secs(10);
    while late.len() + early < p.samples {
        let r = match tokio::time::timeout_at(deadline, receipts.recv()).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err("the push endpoint stopped".into()),
            Err(_) => {
                return Err(format!(
                    "scheduled: {} of {} jobs delivered 10 s after the last was due ({})",
                    late.len() + early,
                    p.samples,
                    hook.anomalies()
                )
                .into());
            }
        };
        let Some(run_at) = due_at.remove(&r.id) else {
            continue; // a repeat, counted by the hook
        };
        match (r.wall - run_at).to_std() {
            Ok(d) => late.push(d),
            Err(_) => early += 1,
        }
    }
    let early = match early {
        0 => String::new(),
        n => format!("  early {n}"),
    };
    println!(
        "  {:<26}{}{early}",
        "scheduled, due → request",
        percentiles(late)
    );
    if hook.count() != p.samples {
        println!("  {:<26}{}", "unexpected", hook.anomalies());
    }
    Ok(())
}

/// N jobs created by batch while the dispatcher delivers them: from the
/// first create to the last request received, and to the last job
/// completed.
async fn deliveries(client: &Client, p: &Push) -> Res<()> {
    // Counts only: with the receiver dropped, no receipt is kept.
    let (hook, _) = Hook::start().await?;
    let job = hook.job("push-flow").build();
    let started = Instant::now();
    let enqueued = enqueue(client, &job, p.jobs, p.creators, p.batch).await?;
    if let Err(e) = hook.seen.ran.wait_for_or_stall(p.jobs, STALL).await {
        let open = open_jobs(client, "push-flow").await?;
        return Err(format!("push deliveries {e}; {}; server: {open}", hook.anomalies()).into());
    }
    let delivered = started.elapsed();
    settled(client, "push-flow").await?;
    let completed = started.elapsed();
    println!(
        "  {:<26}{}  {}",
        "deliveries",
        rate(p.jobs, delivered),
        hook.anomalies()
    );
    println!(
        "  {:<26}({} clients enqueue by {} meanwhile at {:.0} jobs/s; all completed after {:.2?})",
        "",
        p.creators,
        p.batch,
        p.jobs as f64 / enqueued.as_secs_f64(),
        completed
    );
    if hook.seen.ran.distinct() != p.jobs {
        println!(
            "  {:<26}{} distinct jobs delivered of {}",
            "MISMATCH",
            hook.seen.ran.distinct(),
            p.jobs
        );
    }
    Ok(())
}

/// The request received for job `id`; requests for other jobs (repeats of
/// earlier ones) are passed over.
async fn receipt_of(
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    id: Uuid,
    within: Duration,
) -> Res<Receipt> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, receipts.recv()).await {
            Ok(Some(r)) if r.id == id => return Ok(r),
            Ok(Some(_)) => continue,
            Ok(None) => return Err("the push endpoint stopped".into()),
            Err(_) => return Err(format!("job {id} was not delivered within {within:.0?}").into()),
        }
    }
}

/// How many jobs of `handler` the server still holds open, by status (to
/// 100 each), for a stall's report.
async fn open_jobs(client: &Client, handler: &str) -> Res<String> {
    let mut counts = Vec::new();
    for status in [JobStatus::Scheduled, JobStatus::Queued, JobStatus::Running] {
        let page = client
            .list_jobs(&ListJobs::new().handler(handler).status(status).limit(100))
            .await?;
        counts.push(format!("{status} {}", page.data.len()));
    }
    Ok(counts.join(", ") + " (at most 100 counted each)")
}
