//! The hosted worker (`chronos::hosted`, what the Node and Python SDKs run
//! on) against a real server: jobs reach the host and its outcomes are
//! read; extend by job id; a cancellation reaches the host; a stop before
//! start; what is refused once started. The host here is a channel, as a
//! binding's event loop would be.

mod common;

use chronos::hosted::{Host, HostedJob, HostedWorker};
use chronos::{Error, JobStatus, NewJob, Outcome, Worker};
use common::{SdkClients, StoreKind, TestServer};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Jobs go to the test's channel with a way to settle them; cancellations
/// to another.
struct ChannelHost {
    jobs: mpsc::UnboundedSender<(HostedJob, oneshot::Sender<Outcome>)>,
    cancels: mpsc::UnboundedSender<Uuid>,
}

impl Host for ChannelHost {
    fn run(&self, job: HostedJob) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let (settle, settled) = oneshot::channel();
        let _ = self.jobs.send((job, settle));
        Box::pin(async move {
            settled
                .await
                .unwrap_or_else(|_| Outcome::retry("the host dropped the job"))
        })
    }

    fn cancel(&self, job: &HostedJob) {
        let _ = self.cancels.send(job.id());
    }
}

type Jobs = mpsc::UnboundedReceiver<(HostedJob, oneshot::Sender<Outcome>)>;

fn host() -> (ChannelHost, Jobs, mpsc::UnboundedReceiver<Uuid>) {
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let (cancels, cancels_rx) = mpsc::unbounded_channel();
    (ChannelHost { jobs, cancels }, jobs_rx, cancels_rx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("within 15 s")
        .expect("the channel is open")
}

async fn finished(client: &chronos::Client, id: Uuid) -> chronos::Job {
    let started = Instant::now();
    loop {
        let job = client.get_job(id).await.unwrap();
        if job.status.is_finished() {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{job:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_reach_the_host_and_its_outcomes_are_read() {
    let s = TestServer::start(StoreKind::Sqlite).await;
    let client = s.client();
    let hosted = HostedWorker::new(Worker::builder(&s.base, s.key(&["worker"]).await));
    for name in ["ok", "permanent", "unreadable"] {
        hosted.handle(name).unwrap();
    }
    let (host, mut jobs, _) = host();
    let running = tokio::spawn(hosted.start(host).unwrap());
    assert!(hosted.connected().await);

    let ok = client
        .create_job(&NewJob::new("a", "ok").payload(json!({"n": 1})).build())
        .await
        .unwrap();
    let (job, settle) = next(&mut jobs).await;
    assert_eq!((job.id(), job.handler()), (ok.id, "ok"));
    assert_eq!(job.job().payload, json!({"n": 1}));
    settle
        .send(Outcome::parse(json!({"ok": {"doubled": 2}})))
        .unwrap();
    let done = finished(&client, ok.id).await;
    assert_eq!(
        (done.status, done.result),
        (JobStatus::Completed, Some(json!({"doubled": 2})))
    );

    let doomed = client
        .create_job(&NewJob::new("p", "permanent").max_retries(3).build())
        .await
        .unwrap();
    let (_, settle) = next(&mut jobs).await;
    settle
        .send(Outcome::from_json(
            r#"{"error": {"message": "declined", "permanent": true}}"#,
        ))
        .unwrap();
    let done = finished(&client, doomed.id).await;
    assert_eq!(
        (done.status, done.attempt, done.last_error.as_deref()),
        (JobStatus::Failed, 1, Some("declined"))
    );

    // An outcome the binding garbled is a retryable failure.
    let odd = client
        .create_job(&NewJob::new("u", "unreadable").max_retries(0).build())
        .await
        .unwrap();
    let (_, settle) = next(&mut jobs).await;
    settle.send(Outcome::from_json("{\"okay\": 1}")).unwrap();
    let done = finished(&client, odd.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(
        done.last_error
            .unwrap()
            .starts_with("an unreadable outcome"),
        "the error names the cause"
    );

    hosted.stop();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!*hosted.connection().unwrap().borrow(), "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_by_id_and_cancel_reach_the_running_job() {
    let s = TestServer::start_with_test_clock(StoreKind::Sqlite, Default::default()).await;
    let client = s.client();
    let hosted = HostedWorker::new(Worker::builder(&s.base, s.key(&["worker"]).await));
    hosted.handle("long").unwrap();
    let (host, mut jobs, mut cancels) = host();
    let running = tokio::spawn(hosted.start(host).unwrap());

    let job = client
        .create_job(&NewJob::new("l", "long").timeout(1).max_retries(0).build())
        .await
        .unwrap();
    let (held, settle) = next(&mut jobs).await;
    let id = held.id().to_string();
    hosted.extend(&id, 30).await.unwrap();
    assert!(!hosted.job(&id).unwrap().is_cancelled());
    // Past the job's own timeout of 1 s (on the test clock), still
    // running: the extend held.
    s.advance_clock_and_settle(Duration::from_secs(5)).await;
    assert_eq!(
        client.get_job(job.id).await.unwrap().status,
        JobStatus::Running
    );

    client.cancel_job(job.id).await.unwrap();
    assert_eq!(next(&mut cancels).await, job.id);
    assert!(hosted.job(&id).unwrap().is_cancelled());
    settle.send(Outcome::Ok(json!("stopped"))).unwrap();

    // Once settled, the job is no longer here.
    let started = Instant::now();
    while hosted.job(&id).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::task::yield_now().await;
    }
    for not_here in [id.as_str(), "not-a-uuid"] {
        let err = hosted.extend(not_here, 10).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert_eq!(err.code_or_kind(), "invalid_argument");
        assert!(err.to_string().contains("is not running here"), "{err}");
    }

    hosted.stop();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_before_start_stops_it_once_connected_and_a_started_worker_is_closed_to_changes() {
    let s = TestServer::start(StoreKind::Sqlite).await;
    let hosted = HostedWorker::new(Worker::builder(&s.base, s.key(&["worker"]).await));
    assert!(!hosted.connected().await, "not started");
    hosted.handle("h").unwrap();
    hosted.stop();
    let (host, _jobs, _) = host();
    let running = hosted.start(host).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("a worker stopped before start ends by itself")
        .unwrap();

    let err = hosted.handle("late").unwrap_err();
    assert!(err.to_string().contains("has started"), "{err}");
    let (host, _jobs, _) = self::host();
    let err = hosted.start(host).err().unwrap();
    assert!(err.to_string().contains("already started"), "{err}");

    // Bad settings are refused at start, as the builder refuses them.
    let empty = HostedWorker::new(Worker::builder(&s.base, "chrns_x"));
    let (host, _jobs, _) = self::host();
    let err = empty.start(host).err().unwrap();
    assert!(err.to_string().contains("at least one handler"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_ends_the_run_with_the_servers_error() {
    let s = TestServer::start(StoreKind::Sqlite).await;
    let hosted = HostedWorker::new(Worker::builder(&s.base, "chrns_0000000000000000_00"));
    hosted.handle("h").unwrap();
    let (host, _jobs, _) = host();
    let err = tokio::time::timeout(Duration::from_secs(10), hosted.start(host).unwrap())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (err.code(), err.status()),
        (Some("unauthorized"), Some(401))
    );
}
