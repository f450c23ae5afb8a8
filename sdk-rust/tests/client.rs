//! The REST client against a real server, on both stores: jobs, lists and
//! their cursors, cancel and retry, executions, error mapping, a worker's
//! round trip over HTTP, queues, target groups, and a fan-out whose signed
//! callbacks a receiver verifies with the SDK's helper.

mod common;

use chronos_test_support::both_stores;

use chronos::{
    BatchItem, Callback, CallbackStatus, Client, CreateJob, CreateMember, CreateMessage,
    CreateQueue, CreateTargetGroup, Delay, Error, ExecutionStatus, FailRequest, FanOutStatus,
    HttpMethod, JobStatus, ListJobs, MessagePublished, NewJob, PollRequest, PublishMessage,
    QueuePublished, ScheduleFilter, TimeUnit, callback, signature,
};
use chronos_server::push::dispatcher::PushConfig;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use common::{Endpoint, SdkClients, StoreKind, TestServer};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a push delivery or a callback may take to arrive.
const WITHIN: Duration = Duration::from_secs(20);

both_stores!(
    creates_and_gets_jobs,
    creates_jobs_in_a_batch,
    lists_jobs_by_filter,
    pages_through_jobs_with_cursors,
    cancels_and_retries_jobs,
    lists_executions,
    maps_api_errors,
    a_worker_round_trip_over_http,
    long_polls_outlast_the_request_timeout,
    manages_queues_and_publishes_onto_one,
    manages_target_groups_and_their_members,
    a_fan_out_ends_in_signed_callbacks_the_receiver_verifies,
);

fn poll_request(handler: &str) -> PollRequest {
    PollRequest {
        handlers: vec![handler.into()],
        worker_id: Some("sdk-test".into()),
        ..PollRequest::default()
    }
}

async fn creates_jobs_in_a_batch(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    let jobs = vec![
        NewJob::new("one", "batch").idempotency_key("b-1").build(),
        // Fits the schema, but is more than ten years ahead: refused alone.
        NewJob::new("two", "batch")
            .delay(Delay {
                value: 100_000,
                unit: TimeUnit::Week,
            })
            .build(),
        NewJob::new("three", "batch").idempotency_key("b-1").build(),
    ];
    let items = c.create_jobs(&jobs).await.unwrap();
    assert_eq!(items.len(), 3);
    let BatchItem::Job(one) = &items[0] else {
        panic!("{:?}", items[0])
    };
    assert_eq!(one.name, "one");
    assert_eq!(c.get_job(one.id).await.unwrap(), **one);
    let BatchItem::Error(bad) = &items[1] else {
        panic!("{:?}", items[1])
    };
    assert_eq!(bad.code, "validation_failed");
    assert_eq!(bad.field.as_deref(), Some("delay.value"));
    let BatchItem::Error(taken) = &items[2] else {
        panic!("{:?}", items[2])
    };
    assert_eq!(taken.code, "idempotency_key_conflict");
    assert_eq!(taken.job_id, Some(one.id));
    // The batch as a whole can be refused: empty, or a job that breaks the
    // schema.
    let err = c.create_jobs(&[]).await.unwrap_err();
    assert_eq!(err.code(), Some("validation_failed"), "{err}");
    let err = c
        .create_jobs(&[NewJob::new("bad", "bad handler").build()])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert_eq!(err.field(), Some("jobs[0].handler"), "{err}");
}

async fn creates_and_gets_jobs(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    s.make_queue("mail").await;
    let job = c
        .create_job(
            &NewJob::new("Send follow-up", "send-email")
                .payload(json!({"to": "ada@example.com"}))
                .delay(Delay {
                    value: 2,
                    unit: TimeUnit::Hour,
                })
                .idempotency_key("follow-up-1")
                .queue("mail")
                .concurrency_key("customer-42")
                .priority(5)
                .timeout(60)
                .max_retries(1)
                .build(),
        )
        .await
        .unwrap();
    assert_eq!(job.name, "Send follow-up");
    assert_eq!(job.handler.as_deref(), Some("send-email"));
    assert_eq!(job.payload, json!({"to": "ada@example.com"}));
    assert_eq!(job.status, JobStatus::Scheduled);
    assert_eq!(job.queue, "mail");
    assert_eq!(job.concurrency_key.as_deref(), Some("customer-42"));
    assert_eq!(job.priority, 5);
    assert_eq!(job.timeout, 60);
    assert_eq!(job.max_retries, 1);
    assert_eq!(job.idempotency_key.as_deref(), Some("follow-up-1"));
    let ahead = job.run_at.0 - job.created_at.0;
    assert!(
        (7_199..=7_201).contains(&ahead.num_seconds()),
        "run_at {ahead:?} after creation"
    );
    assert_eq!(c.get_job(job.id).await.unwrap(), job);

    // Only what is required; server defaults for the rest.
    let plain = c.create_job(&NewJob::new("n", "h").into()).await.unwrap();
    assert_eq!(plain.status, JobStatus::Queued);
    assert_eq!(plain.queue, "default");
    assert_eq!(plain.concurrency_key, None);
    assert_eq!(plain.payload, json!(null));

    // A key of 1 to 255 characters.
    let err = c
        .create_job(&NewJob::new("n", "h").concurrency_key("").build())
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("concurrency_key"), "{err}");
}

async fn lists_jobs_by_filter(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    s.make_queue("q2").await;
    let later = Delay {
        value: 1,
        unit: TimeUnit::Day,
    };
    let a = c
        .create_job(&NewJob::new("a", "alpha").build())
        .await
        .unwrap();
    let b = c
        .create_job(&NewJob::new("b", "beta").queue("q2").build())
        .await
        .unwrap();
    let d = c
        .create_job(&NewJob::new("d", "alpha").delay(later).build())
        .await
        .unwrap();
    let ids = |page: chronos::List<chronos::Job>| -> Vec<Uuid> {
        assert_eq!(page.next_cursor, None);
        page.data.into_iter().map(|j| j.id).collect()
    };
    // Newest first.
    assert_eq!(
        ids(c.list_jobs(&ListJobs::new()).await.unwrap()),
        [d.id, b.id, a.id]
    );
    assert_eq!(
        ids(c
            .list_jobs(&ListJobs::new().status(JobStatus::Scheduled))
            .await
            .unwrap()),
        [d.id]
    );
    // Several statuses travel comma-separated.
    assert_eq!(
        ids(c
            .list_jobs(
                &ListJobs::new()
                    .status(JobStatus::Scheduled)
                    .status(JobStatus::Queued)
            )
            .await
            .unwrap()),
        [d.id, b.id, a.id]
    );
    assert!(
        c.list_jobs(&ListJobs::new().status(JobStatus::Completed))
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(
        ids(c
            .list_jobs(&ListJobs::new().handler("alpha"))
            .await
            .unwrap()),
        [d.id, a.id]
    );
    assert_eq!(
        ids(c.list_jobs(&ListJobs::new().queue("q2")).await.unwrap()),
        [b.id]
    );
    assert_eq!(
        ids(c
            .list_jobs(&ListJobs::new().handler("alpha").status(JobStatus::Queued))
            .await
            .unwrap()),
        [a.id]
    );
    // These jobs are all one-off: none belongs to a schedule.
    assert_eq!(
        ids(c
            .list_jobs(&ListJobs::new().schedule(ScheduleFilter::OneOff))
            .await
            .unwrap()),
        [d.id, b.id, a.id]
    );
    assert!(
        c.list_jobs(&ListJobs::new().schedule(ScheduleFilter::Id(Uuid::now_v7())))
            .await
            .unwrap()
            .data
            .is_empty()
    );
    // Fields set directly work like the builder.
    let mut query = ListJobs::default();
    query.queue = Some("default".into());
    query.status = vec![JobStatus::Queued];
    assert_eq!(ids(c.list_jobs(&query).await.unwrap()), [a.id]);
}

async fn pages_through_jobs_with_cursors(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    let mut created = Vec::new();
    for i in 0..5 {
        let job = c
            .create_job(&NewJob::new(format!("job {i}"), "h").build())
            .await
            .unwrap();
        created.push(job.id);
    }
    created.reverse(); // newest first, as lists come
    let mut query = ListJobs::new().limit(2);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = c.list_jobs(&query).await.unwrap();
        sizes.push(page.data.len());
        seen.extend(page.data.iter().map(|j| j.id));
        match page.next_cursor {
            Some(cursor) => query = query.cursor(cursor),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, created);
}

async fn cancels_and_retries_jobs(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    let job = c.create_job(&NewJob::new("n", "h").build()).await.unwrap();
    let cancelled = c.cancel_job(job.id).await.unwrap();
    assert_eq!(cancelled.id, job.id);
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    let err = c.cancel_job(job.id).await.unwrap_err();
    assert_eq!(err.code(), Some("job_finished"), "{err}");
    assert_eq!(err.status(), Some(409));

    let retried = c.retry_job(job.id).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(c.get_job(job.id).await.unwrap().status, JobStatus::Queued);
    let err = c.retry_job(job.id).await.unwrap_err();
    assert_eq!(err.code(), Some("job_not_retryable"), "{err}");
    assert_eq!(err.status(), Some(409));

    for err in [
        c.cancel_job(Uuid::now_v7()).await.unwrap_err(),
        c.retry_job(Uuid::now_v7()).await.unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
    }
}

async fn lists_executions(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    let job = c
        .create_job(&NewJob::new("n", "exec").build())
        .await
        .unwrap();
    assert!(
        c.list_executions(job.id, None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );

    // Attempt 1 fails for good; a retry by hand; attempt 2 completes.
    let leased = c.poll(&poll_request("exec")).await.unwrap();
    let failed = c
        .fail(&FailRequest {
            token: leased[0].lease.token,
            error: Some("smtp down".into()),
            retryable: Some(false),
            retry_in: None,
        })
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("smtp down"));
    c.retry_job(job.id).await.unwrap();
    let leased = c.poll(&poll_request("exec")).await.unwrap();
    assert_eq!(leased[0].job.attempt, 2);
    c.ack(leased[0].lease.token, None).await.unwrap();

    let all = c.list_executions(job.id, None, None).await.unwrap();
    assert_eq!(all.next_cursor, None);
    let got: Vec<_> = all.data.iter().map(|e| (e.attempt, e.status)).collect();
    assert_eq!(
        got,
        [
            (2, ExecutionStatus::Completed),
            (1, ExecutionStatus::Failed)
        ]
    );
    assert!(all.data.iter().all(|e| e.job_id == job.id));
    assert_eq!(all.data[1].error.as_deref(), Some("smtp down"));
    assert_eq!(all.data[0].worker_id.as_deref(), Some("sdk-test"));

    // One at a time, through the cursor.
    let first = c.list_executions(job.id, Some(1), None).await.unwrap();
    assert_eq!(first.data, all.data[..1]);
    let cursor = first.next_cursor.expect("a second page");
    let second = c
        .list_executions(job.id, Some(1), Some(&cursor))
        .await
        .unwrap();
    assert_eq!(second.data, all.data[1..]);
    assert_eq!(second.next_cursor, None);

    let err = c
        .list_executions(Uuid::now_v7(), None, None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

async fn maps_api_errors(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();

    // 404.
    let missing = Uuid::now_v7();
    let err = c.get_job(missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("not_found"));
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    assert_eq!(err.is_idempotency_conflict(), None);

    // 409 with the job that holds the key.
    let first = c
        .create_job(&NewJob::new("n", "h").idempotency_key("once").build())
        .await
        .unwrap();
    let err = c
        .create_job(&NewJob::new("again", "h").idempotency_key("once").build())
        .await
        .unwrap_err();
    assert_eq!(err.is_idempotency_conflict(), Some(first.id), "{err}");
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.code(), Some("idempotency_key_conflict"));
    match &err {
        Error::Api { job_id, .. } => assert_eq!(*job_id, Some(first.id)),
        other => panic!("not an API error: {other:?}"),
    }

    // 400 naming the field.
    for (job, field) in [
        (NewJob::new("n", "h").queue("no spaces").build(), "queue"),
        (NewJob::new("n", "h").timeout(0).build(), "timeout"),
        (NewJob::new("n", "a,b").build(), "handler"),
        (
            CreateJob {
                handler: Some("h".into()),
                ..CreateJob::default()
            },
            "name",
        ),
    ] {
        let err = c.create_job(&job).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        assert_eq!(err.code(), Some("validation_failed"), "{err}");
        assert_eq!(err.field(), Some(field), "{err}");
        match err {
            Error::Api {
                field: f, message, ..
            } => {
                assert_eq!(f.as_deref(), Some(field));
                assert!(!message.is_empty());
            }
            other => panic!("not an API error: {other:?}"),
        }
    }
    let err = c.list_jobs(&ListJobs::new().limit(0)).await.unwrap_err();
    assert_eq!(err.field(), Some("limit"), "{err}");
    let err = c
        .list_jobs(&ListJobs::new().cursor("not-a-cursor"))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("cursor"), "{err}");

    // 401: a key the server does not know.
    let stranger = Client::new(&s.base, "chrns_nosuchkey_nosuchsecret").unwrap();
    let err = stranger.get_job(first.id).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(err.code(), Some("unauthorized"));

    // 403: a worker key may not create jobs.
    let worker = s.client_with_scopes(&["worker"]).await;
    let err = worker
        .create_job(&NewJob::new("n", "h").build())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.code(), Some("forbidden"));

    // No server at all: a transport error, without a status.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere = Client::new(format!("http://{closed}"), &s.admin_key).unwrap();
    let err = nowhere.get_job(first.id).await.unwrap_err();
    assert!(matches!(err, Error::Http(_)), "{err:?}");
    assert_eq!(err.status(), None);
    assert_eq!(err.code(), None);
}

async fn a_worker_round_trip_over_http(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = s.client();
    let worker = s.client_with_scopes(&["worker"]).await;
    let job = c
        .create_job(
            &NewJob::new("n", "hello")
                .payload(json!({"to": "you"}))
                .build(),
        )
        .await
        .unwrap();

    let leased = worker.poll(&poll_request("hello")).await.unwrap();
    assert_eq!(leased.len(), 1);
    let l = &leased[0];
    assert_eq!(l.job.id, job.id);
    assert_eq!(l.job.status, JobStatus::Running);
    assert_eq!(l.job.attempt, 1);
    assert_eq!(l.job.payload, json!({"to": "you"}));

    let extended = worker.extend(l.lease.token, 600).await.unwrap();
    assert_eq!(extended.token, l.lease.token);
    assert!(extended.expires_at > l.lease.expires_at);

    let done = worker
        .ack(l.lease.token, Some(json!({"sent": true})))
        .await
        .unwrap();
    assert_eq!(done.id, job.id);
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.result, Some(json!({"sent": true})));
    assert_eq!(
        c.get_job(job.id).await.unwrap().status,
        JobStatus::Completed
    );

    // The token is spent: ack, fail and extend are all refused, changing nothing.
    let err = worker.ack(l.lease.token, None).await.unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(err.status(), Some(409));
    let err = worker
        .fail(&FailRequest {
            token: l.lease.token,
            error: Some("late".into()),
            retryable: None,
            retry_in: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    let err = worker.extend(l.lease.token, 10).await.unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(
        c.get_job(job.id).await.unwrap().status,
        JobStatus::Completed
    );

    // A token no lease ever had.
    let err = worker.ack(Uuid::new_v4(), None).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!err.is_lease_lost());

    // A cancelled running job: its worker's ack is lease_lost.
    let job = c
        .create_job(&NewJob::new("n", "hello").build())
        .await
        .unwrap();
    let leased = worker.poll(&poll_request("hello")).await.unwrap();
    assert_eq!(leased[0].job.id, job.id);
    c.cancel_job(job.id).await.unwrap();
    let err = worker.ack(leased[0].lease.token, None).await.unwrap_err();
    assert!(err.is_lease_lost(), "{err}");

    // A retryable failure with a short retry: scheduled again.
    let job = c
        .create_job(&NewJob::new("n", "hello").build())
        .await
        .unwrap();
    let leased = worker.poll(&poll_request("hello")).await.unwrap();
    let failed = worker
        .fail(&FailRequest {
            token: leased[0].lease.token,
            error: Some("try later".into()),
            retryable: Some(true),
            retry_in: Some(3600),
        })
        .await
        .unwrap();
    assert_eq!(failed.id, job.id);
    assert_eq!(failed.status, JobStatus::Scheduled);
    assert_eq!(failed.last_error.as_deref(), Some("try later"));

    // Nothing due is left; bad input names its field.
    assert!(
        worker
            .poll(&poll_request("hello"))
            .await
            .unwrap()
            .is_empty()
    );
    let err = worker.poll(&PollRequest::default()).await.unwrap_err();
    assert_eq!(err.field(), Some("handlers"), "{err}");
}

async fn long_polls_outlast_the_request_timeout(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let c = Client::builder(&s.base, &s.admin_key)
        .timeout(Duration::from_secs(1))
        .user_agent("chronos-sdk-test/1")
        .build()
        .unwrap();
    // The server holds the poll for 2 s; the client's 1 s timeout stretches.
    let started = Instant::now();
    let got = c
        .poll(&PollRequest {
            wait_seconds: Some(2),
            ..poll_request("nothing-here")
        })
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1_900));

    // A long poll is handed a job created while it waits.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move {
            c.poll(&PollRequest {
                wait_seconds: Some(20),
                ..poll_request("soon")
            })
            .await
        })
    };
    s.polls_waiting(1).await;
    let job = c
        .create_job(&NewJob::new("n", "soon").build())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the poll was not woken")
        .unwrap()
        .unwrap();
    let ids: HashSet<Uuid> = got.iter().map(|l| l.job.id).collect();
    assert_eq!(ids, HashSet::from([job.id]));
}

async fn manages_queues_and_publishes_onto_one(kind: StoreKind) {
    use chronos::{QueueOrdering, QueueState, UpdateQueue};
    let s = TestServer::start(kind).await;
    let c = s.client();
    let created = c
        .create_queue(&CreateQueue {
            name: Some("email-sends".into()),
            concurrency: Some(Some(5)),
            default_target_url: Some("https://api.example.com/send".into()),
            ..CreateQueue::default()
        })
        .await
        .unwrap();
    assert_eq!(created.name, "email-sends");
    assert_eq!(created.concurrency, Some(5));
    assert_eq!(created.max_retries, 3);
    assert_eq!(created.ordering, QueueOrdering::Fifo);
    assert_eq!(created.status, QueueState::Active);
    assert_eq!(created.stats, None);
    let names: Vec<String> = c
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["default", "email-sends"]);
    let err = c
        .create_queue(&CreateQueue {
            name: Some("email-sends".into()),
            ..CreateQueue::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("queue_exists"), "{err}");

    // Only what a patch gives changes; `Some(None)` removes a limit.
    let changed = c
        .update_queue(
            "email-sends",
            &UpdateQueue {
                retries: Some(7),
                ..UpdateQueue::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((changed.concurrency, changed.max_retries), (Some(5), 7));
    let unlimited = c
        .update_queue(
            "email-sends",
            &UpdateQueue {
                concurrency: Some(None),
                ..UpdateQueue::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unlimited.concurrency, None);
    assert_eq!(unlimited.max_retries, 7);
    assert_eq!(
        c.pause_queue("email-sends").await.unwrap().status,
        QueueState::Paused
    );
    assert_eq!(
        c.resume_queue("email-sends").await.unwrap().status,
        QueueState::Active
    );
    assert!(!c.unblock_queue("email-sends").await.unwrap().blocked);

    // A message goes to the queue's default target, with its retries.
    let published = c
        .publish(
            "email-sends",
            &PublishMessage {
                body: Some("hello".into()),
                delay: Some(3600),
                concurrency_key: Some("customer-7".into()),
                ..PublishMessage::default()
            },
        )
        .await
        .unwrap();
    let QueuePublished::Message(accepted) = published else {
        panic!("one message, not a fan-out: {published:?}")
    };
    assert_eq!(accepted.queue, "email-sends");
    let job = c.get_job(accepted.message_id).await.unwrap();
    assert_eq!((job.queue.as_str(), job.max_retries), ("email-sends", 7));
    assert_eq!(job.concurrency_key.as_deref(), Some("customer-7"));
    assert_eq!(job.run_at, accepted.scheduled_at);
    let got = c.get_queue("email-sends").await.unwrap();
    let stats = got.stats.expect("GET one answers with stats");
    assert_eq!((stats.queued, stats.running, stats.scheduled), (0, 0, 1));

    // A pull job in the queue, with a concurrency key.
    let keyed = c
        .create_job(
            &NewJob::new("keyed", "send")
                .queue("email-sends")
                .concurrency_key("customer-42")
                .build(),
        )
        .await
        .unwrap();
    assert_eq!(keyed.queue, "email-sends");
    assert_eq!(keyed.concurrency_key.as_deref(), Some("customer-42"));
    assert_eq!(c.get_job(keyed.id).await.unwrap(), keyed);

    // Names that don't exist, or can't be in a URL.
    let err = c
        .create_job(&NewJob::new("n", "h").queue("typo").build())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("queue_not_found"), "{err}");
    let err = c.get_queue("typo").await.unwrap_err();
    assert_eq!(err.code(), Some("queue_not_found"), "{err}");
    let err = c.pause_queue("a/b").await.unwrap_err();
    assert_eq!(err.code(), Some("queue_not_found"), "{err}");
    let err = c.get_queue("..").await.unwrap_err();
    assert_eq!(err.code_or_kind(), "invalid_argument", "{err}");

    // Delete: refused while it holds jobs, unless forced.
    let err = c.delete_queue("email-sends", false).await.unwrap_err();
    assert_eq!(err.code(), Some("queue_not_empty"), "{err}");
    c.delete_queue("email-sends", true).await.unwrap();
    let err = c.get_queue("email-sends").await.unwrap_err();
    assert_eq!(err.code(), Some("queue_not_found"), "{err}");
    assert_eq!(
        c.get_job(keyed.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    let err = c.delete_queue("default", true).await.unwrap_err();
    assert_eq!(err.code(), Some("default_queue"), "{err}");
}

/// A server that may push to loopback, where the tests' endpoints listen.
fn local() -> ServeOptions {
    ServeOptions {
        targets: TargetPolicy {
            allow_private: true,
        },
        push: PushConfig::default(),
        ..Default::default()
    }
}

fn member(url: String) -> CreateMember {
    CreateMember {
        target_url: Some(url),
        ..CreateMember::default()
    }
}

async fn manages_target_groups_and_their_members(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let c = s.client();
    let group = c
        .create_target_group(&CreateTargetGroup {
            name: Some("regional-webhooks".into()),
        })
        .await
        .unwrap();
    assert_eq!(group.name, "regional-webhooks");
    assert_eq!(c.get_target_group(group.id).await.unwrap(), group);
    let err = c
        .create_target_group(&CreateTargetGroup {
            name: Some("regional-webhooks".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("target_group_exists"), "{err}");
    let renamed = c.rename_target_group(group.id, "regions").await.unwrap();
    assert_eq!((renamed.id, renamed.name.as_str()), (group.id, "regions"));
    let other = c
        .create_target_group(&CreateTargetGroup {
            name: Some("other".into()),
        })
        .await
        .unwrap();
    let listed: Vec<_> = c
        .list_target_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(listed, [group.id, other.id]);

    // Members: their credentials are not shown back.
    let eu = c
        .add_member(
            group.id,
            &CreateMember {
                target_url: Some(endpoint.url("/eu")),
                method: Some(HttpMethod::Put),
                headers: Some([("Authorization".to_string(), "Bearer eu".to_string())].into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(eu.method, HttpMethod::Put);
    assert_eq!(eu.headers["Authorization"], "***redacted***");
    let us = c
        .add_member(group.id, &member(endpoint.url("/us")))
        .await
        .unwrap();
    let members = c.list_members(group.id).await.unwrap();
    assert_eq!(members, [eu.clone(), us.clone()]);
    c.remove_member(group.id, us.id).await.unwrap();
    assert_eq!(c.list_members(group.id).await.unwrap(), [eu]);
    let err = c.remove_member(group.id, us.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");

    // A queue whose default it is holds it; a publish there fans out.
    c.create_queue(&CreateQueue {
        name: Some("regional".into()),
        concurrency: Some(None),
        default_target_group_id: Some(group.id.to_string()),
        ..CreateQueue::default()
    })
    .await
    .unwrap();
    let published = c
        .publish("regional", &PublishMessage::default())
        .await
        .unwrap();
    let QueuePublished::FanOut(fan_out) = published else {
        panic!("a fan-out: {published:?}")
    };
    assert_eq!((fan_out.count, fan_out.queue.as_str()), (1, "regional"));
    let got = endpoint.wait_for("/eu", 1, WITHIN).await;
    assert_eq!(got[0].method, reqwest::Method::PUT);
    assert_eq!(got[0].header("authorization"), Some("Bearer eu"));
    let err = c.delete_target_group(group.id).await.unwrap_err();
    assert_eq!(err.code(), Some("target_group_in_use"), "{err}");
    c.delete_queue("regional", true).await.unwrap();
    c.delete_target_group(group.id).await.unwrap();
    let err = c.get_target_group(group.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = c.get_fan_out(Uuid::now_v7()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

async fn a_fan_out_ends_in_signed_callbacks_the_receiver_verifies(kind: StoreKind) {
    let endpoint = Endpoint::start().await;
    let receiver = Endpoint::start().await;
    let s = TestServer::start_with(kind, local()).await;
    let c = s.client();
    // The callback queue signs what it delivers to the receiver.
    let (status, secret) = s
        .post(
            &s.admin_key,
            "/v1/signing-secrets",
            json!({"name": "callbacks"}),
        )
        .await;
    assert_eq!(status, 201, "{secret}");
    let value = secret["secret"].as_str().unwrap();
    c.create_queue(&CreateQueue {
        name: Some("outcomes".into()),
        concurrency: Some(None),
        signing_secret_id: Some(secret["id"].as_str().unwrap().parse().unwrap()),
        default_target_url: Some(receiver.url("/callbacks")),
        ..CreateQueue::default()
    })
    .await
    .unwrap();
    let group = c
        .create_target_group(&CreateTargetGroup {
            name: Some("pair".into()),
        })
        .await
        .unwrap();
    let ok = c
        .add_member(group.id, &member(endpoint.url("/ok")))
        .await
        .unwrap();
    let down = c
        .add_member(group.id, &member(endpoint.url("/status/500")))
        .await
        .unwrap();

    let published = c
        .send_message(&CreateMessage {
            default_target_group_id: Some(group.id.to_string()),
            body: Some(r#"{"event":"price.changed"}"#.into()),
            callback_queue_id: Some("outcomes".into()),
            ..CreateMessage::default()
        })
        .await
        .unwrap();
    let MessagePublished::FanOut(accepted) = published else {
        panic!("a fan-out: {published:?}")
    };
    assert!(accepted.fan_out);
    assert_eq!((accepted.count, accepted.message_ids.len()), (2, 2));

    // Its status, read until its last delivery ended.
    let deadline = Instant::now() + WITHIN;
    let fan_out = loop {
        let fan_out = c.get_fan_out(accepted.fan_out_id).await.unwrap();
        if fan_out.status != FanOutStatus::Running {
            break fan_out;
        }
        assert!(Instant::now() < deadline, "still running: {fan_out:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(fan_out.status, FanOutStatus::Partial);
    assert_eq!((fan_out.succeeded, fan_out.failed), (1, 1));
    assert_eq!(fan_out.target_group_id, group.id);
    let results: Vec<(&str, &str, Option<u16>)> = fan_out
        .results
        .iter()
        .map(|r| (r.target_url.as_str(), r.status.as_str(), r.http_status))
        .collect();
    assert_eq!(
        results,
        [
            (ok.target_url.as_str(), "succeeded", Some(200)),
            (down.target_url.as_str(), "failed", Some(500)),
        ]
    );

    // Two member callbacks and the group callback, each signed: the
    // receiver verifies and reads them with the SDK's helper.
    let got = receiver.wait_for("/callbacks", 3, WITHIN).await;
    let mut deliveries = Vec::new();
    let mut groups = Vec::new();
    for request in &got {
        assert!(request.header(signature::SIGNATURE_HEADER).is_some());
        match callback::parse(&request.headers, &request.body, &[value]).unwrap() {
            Callback::Delivery(event) => deliveries.push(event),
            Callback::Group(event) => groups.push(event),
        }
        // Another secret's receiver, or a changed body, refuses it.
        let err = callback::parse(&request.headers, &request.body, &["whsec_other"]).unwrap_err();
        assert!(matches!(err, Error::InvalidSignature(_)), "{err}");
        let mut changed = request.body.to_vec();
        changed.push(b' ');
        let err = callback::parse(&request.headers, &changed, &[value]).unwrap_err();
        assert_eq!(err.code_or_kind(), "invalid_signature", "{err}");
    }
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let to = |url: &str| {
        deliveries
            .iter()
            .find(|e| e.url == url)
            .unwrap_or_else(|| panic!("no callback for {url}: {deliveries:?}"))
    };
    let (succeeded, failed) = (to(&ok.target_url), to(&down.target_url));
    assert_eq!(succeeded.status, CallbackStatus::Succeeded);
    assert_eq!(succeeded.http_status, Some(200));
    assert_eq!(succeeded.response_body.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(succeeded.fan_out_id, Some(accepted.fan_out_id));
    assert_eq!(failed.status, CallbackStatus::Failed);
    assert_eq!((failed.http_status, failed.attempts), (Some(500), 1));
    assert!(failed.error.is_some(), "{failed:?}");
    let mut ids = vec![succeeded.message_id, failed.message_id];
    ids.sort();
    let mut sent = accepted.message_ids.clone();
    sent.sort();
    assert_eq!(ids, sent);
    let [group_event] = &groups[..] else {
        panic!("one group callback: {groups:?}")
    };
    assert_eq!(group_event.fan_out_id, accepted.fan_out_id);
    assert_eq!(group_event.status, FanOutStatus::Partial);
    assert_eq!(group_event.results, fan_out.results);
}
