//! Leasing across real `chronos serve` processes on PostgreSQL: two servers
//! sharing one database hand out every job exactly once; a SIGKILL while jobs
//! are created and leased loses none of the acknowledged ones (leases the
//! dead server handed out time out and run again); and long polls keep
//! waking for jobs queued through another server after their LISTEN
//! connection is killed under them.
//!
//! Every server started here is killed when its guard drops, and every wait
//! is bounded, so a failing test leaves nothing running and never hangs.
//! Speeds are printed, never asserted.

mod common;

use common::process::{
    EXIT_TIMEOUT, Serve, cli_create_key, get, http, list_all_jobs, list_jobs_matching, post_job,
};
use common::{Backing, TestDb, admin_pg_url};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The handler every job here runs.
const HANDLER: &str = "h";

fn job_id(job: &Value) -> String {
    job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a job without an id: {job}"))
        .to_string()
}

/// A client for long polls: its timeout outlasts the longest wait (60 s).
fn long_poll_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(75))
        .build()
        .unwrap()
}

/// A failed request: whether it surely never reached the server (the
/// connection could not be made), or may have (sent, but no full answer).
#[derive(Debug)]
struct SendError {
    surely_unsent: bool,
    message: String,
}

/// POSTs `body` to `base` + `path`; the status and JSON answer, or why there
/// is none. Never panics, for load that runs while servers die.
async fn post_json(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), SendError> {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .map_err(|e| SendError {
            surely_unsent: e.is_connect(),
            message: format!("POST {path}: {e}"),
        })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| SendError {
        surely_unsent: false,
        message: format!("POST {path}: answer {status} cut short: {e}"),
    })?;
    let value = serde_json::from_str(&text).map_err(|e| SendError {
        surely_unsent: false,
        message: format!("POST {path}: answer {status} is not JSON ({e}): {text:?}"),
    })?;
    Ok((status, value))
}

/// The `data` of a poll's answer.
fn leased_jobs(answer: &Value) -> Vec<Value> {
    answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a poll answer without data: {answer}"))
        .clone()
}

/// The last lines of a server's log, for failure messages.
fn log_tail(serve: &Serve) -> String {
    let log = serve.stderr.get();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------
// Two servers, one database: every job completes exactly once.
// ---------------------------------------------------------------------------

/// What the workers of the two-server test saw.
#[derive(Default)]
struct SharedLedger {
    /// Job id → (worker, attempt) of every lease handed out.
    leases: HashMap<String, Vec<(usize, u64)>>,
    /// Job id → the workers whose ack was accepted (200).
    accepted: HashMap<String, Vec<usize>>,
    /// Anything else: 409s, errors, odd answers.
    problems: Vec<String>,
    /// Per server: polls answered, polls that leased nothing, jobs leased.
    polls: [u64; 2],
    empty_polls: [u64; 2],
    leased: [u64; 2],
    /// Per server: acks accepted.
    acks: [u64; 2],
}

/// Two servers on one PostgreSQL database, jobs created through both and
/// leased and acked by workers that alternate between them: each job is
/// leased once and acked once, and the completed list is exactly the jobs
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_one_database_every_job_completes_exactly_once() {
    const JOBS: usize = 2000;
    const CREATORS: usize = 8;
    const WORKERS: usize = 6;
    const DEADLINE: Duration = Duration::from_secs(120);

    let backing = Backing::Postgres(TestDb::create().await);
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = Serve::start(&backing).await;
    let worker_key = cli_create_key(&backing, "w", "worker").await;
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let client = http();

    let ledger = Arc::new(Mutex::new(SharedLedger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // Workers first, so they wait in long polls while the jobs come in.
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (client, bases, ledger, stop, key) = (
            client.clone(),
            bases.clone(),
            ledger.clone(),
            stop.clone(),
            worker_key.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let server = (w + round) % 2;
                let poll = json!({
                    "handlers": [HANDLER],
                    "max_jobs": 10 + (w * 7 + round) % 11,
                    "wait_seconds": 1 + round % 2,
                    "worker_id": format!("w{w}"),
                });
                let answer =
                    post_json(&client, &bases[server], "/v1/workers/poll", &key, &poll).await;
                let jobs = match answer {
                    Ok((200, body)) => leased_jobs(&body),
                    Ok((status, body)) => {
                        ledger
                            .lock()
                            .unwrap()
                            .problems
                            .push(format!("poll on server {server}: {status} {body}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => {
                        ledger
                            .lock()
                            .unwrap()
                            .problems
                            .push(format!("poll on server {server}: {}", e.message));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                {
                    let mut l = ledger.lock().unwrap();
                    l.polls[server] += 1;
                    l.leased[server] += jobs.len() as u64;
                    if jobs.is_empty() {
                        l.empty_polls[server] += 1;
                    }
                    for leased in &jobs {
                        let attempt = leased["job"]["attempt"].as_u64().unwrap_or(0);
                        l.leases
                            .entry(job_id(&leased["job"]))
                            .or_default()
                            .push((w, attempt));
                    }
                }
                // Every third round acks through the other server: a lease
                // is the database's, not the server's that handed it out.
                let ack_server = if round.is_multiple_of(3) {
                    1 - server
                } else {
                    server
                };
                for leased in jobs {
                    let id = job_id(&leased["job"]);
                    let ack = json!({"token": leased["lease"]["token"], "result": {"worker": w}});
                    let answer =
                        post_json(&client, &bases[ack_server], "/v1/leases/ack", &key, &ack).await;
                    let mut l = ledger.lock().unwrap();
                    match answer {
                        Ok((200, job)) if job["status"] == "completed" && job_id(&job) == id => {
                            l.accepted.entry(id).or_default().push(w);
                            l.acks[ack_server] += 1;
                        }
                        Ok((status, body)) => l.problems.push(format!(
                            "ack of {id} on server {ack_server}: {status} {body}"
                        )),
                        Err(e) => l
                            .problems
                            .push(format!("ack of {id} on server {ack_server}: {}", e.message)),
                    }
                }
            }
        }));
    }

    // Creators: job i goes through server i % 2.
    let mut creators = Vec::new();
    for t in 0..CREATORS {
        let (client, bases, admin) = (client.clone(), bases.clone(), admin.clone());
        creators.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (t..JOBS).step_by(CREATORS) {
                let body =
                    json!({"name": format!("shared-{i}"), "handler": HANDLER, "payload": {"i": i}});
                let answer = post_json(&client, &bases[i % 2], "/v1/jobs", &admin, &body).await;
                match answer {
                    // Running: handed at once to a poll waiting on that server.
                    Ok((201, job)) if job["status"] == "queued" || job["status"] == "running" => {
                        ids.push(job_id(&job))
                    }
                    Ok((status, body)) => {
                        panic!("creating job {i} on server {}: {status} {body}", i % 2)
                    }
                    Err(e) => panic!("creating job {i} on server {}: {}", i % 2, e.message),
                }
            }
            ids
        }));
    }
    let mut created = Vec::new();
    for creator in creators {
        let ids = tokio::time::timeout(DEADLINE, creator)
            .await
            .expect("creating the jobs took longer than the whole test may")
            .expect("a creator task failed");
        created.extend(ids);
    }
    let creating_took = started.elapsed();
    let created_set: HashSet<String> = created.iter().cloned().collect();
    assert_eq!(
        created_set.len(),
        JOBS,
        "the servers gave out a job id twice"
    );

    // Wait until every job has an accepted ack.
    let all_acked = loop {
        let acked = ledger.lock().unwrap().accepted.len();
        if acked >= JOBS {
            break started.elapsed();
        }
        if started.elapsed() > DEADLINE {
            stop.store(true, Ordering::Relaxed);
            let l = std::mem::take(&mut *ledger.lock().unwrap());
            let missing: Vec<&String> = created
                .iter()
                .filter(|id| !l.accepted.contains_key(*id))
                .take(5)
                .collect();
            let mut states = Vec::new();
            for id in &missing {
                let (_, job) = get(&client, &a, &admin, &format!("/v1/jobs/{id}")).await;
                states.push(format!(
                    "{id}: {} attempt {}",
                    job["status"], job["attempt"]
                ));
            }
            panic!(
                "after {DEADLINE:?} only {acked} of {JOBS} jobs had an accepted ack; e.g. {states:#?}\n\
                 problems ({}): {:#?}\nserver A log:\n{}\nserver B log:\n{}",
                l.problems.len(),
                &l.problems[..l.problems.len().min(10)],
                log_tail(&a),
                log_tail(&b)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(40), worker)
            .await
            .expect("a worker did not stop within 40 s of being told")
            .expect("a worker task panicked");
    }

    let l = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        l.problems.is_empty(),
        "{} polls or acks went wrong (no lease may be lost with a 30 s timeout), e.g. {:#?}",
        l.problems.len(),
        &l.problems[..l.problems.len().min(10)]
    );
    let unknown: Vec<&String> = l
        .accepted
        .keys()
        .filter(|id| !created_set.contains(*id))
        .collect();
    assert!(
        unknown.is_empty(),
        "acks accepted for jobs never created: {unknown:?}"
    );
    let twice: Vec<(&String, &Vec<usize>)> =
        l.accepted.iter().filter(|(_, w)| w.len() != 1).collect();
    assert!(
        twice.is_empty(),
        "{} jobs had more than one accepted ack, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    let released: Vec<(&String, &Vec<(usize, u64)>)> = l
        .leases
        .iter()
        .filter(|(_, leases)| leases.len() != 1 || leases[0].1 != 1)
        .collect();
    assert!(
        released.is_empty(),
        "{} jobs were leased more than once or not at attempt 1, e.g. {:?}",
        released.len(),
        &released[..released.len().min(5)]
    );
    assert_eq!(l.leases.len(), JOBS, "not every job was leased");

    let completed = list_jobs_matching(&client, &b, &admin, "status=completed").await;
    let completed_ids: HashSet<String> = completed.iter().map(job_id).collect();
    assert_eq!(
        completed.len(),
        completed_ids.len(),
        "the completed list repeats jobs"
    );
    assert!(
        completed_ids == created_set,
        "the completed list is not the jobs created: {} listed, {} created, {} created but not listed, {} listed but not created",
        completed_ids.len(),
        created_set.len(),
        created_set.difference(&completed_ids).count(),
        completed_ids.difference(&created_set).count()
    );
    for job in &completed {
        let id = job_id(job);
        let worker = l.accepted[&id][0];
        assert_eq!(job["attempt"], 1, "job {id} ran more than once: {job}");
        assert_eq!(
            job["result"],
            json!({"worker": worker}),
            "job {id} does not hold the result of the ack that was accepted: {job}"
        );
    }

    let polls = l.polls[0] + l.polls[1];
    println!(
        "two servers, {JOBS} jobs, {CREATORS} creators, {WORKERS} workers:\n  \
         created in {creating_took:.2?} ({:.0} jobs/s)\n  \
         all acked {all_acked:.2?} after the first create ({:.0} jobs/s end to end)\n  \
         polls A/B: {}/{} ({} / {} empty), leased through A/B: {}/{}, {:.1} jobs per poll\n  \
         acks accepted through A/B: {}/{}",
        rate(JOBS, creating_took),
        rate(JOBS, all_acked),
        l.polls[0],
        l.polls[1],
        l.empty_polls[0],
        l.empty_polls[1],
        l.leased[0],
        l.leased[1],
        JOBS as f64 / polls.max(1) as f64,
        l.acks[0],
        l.acks[1],
    );
}

// ---------------------------------------------------------------------------
// SIGKILL while creating and leasing.
// ---------------------------------------------------------------------------

/// Which server the load goes to: a generation number (1 before the kill, 2
/// after the restart) and its base URL.
#[derive(Clone)]
struct Target {
    generation: u32,
    base: String,
}

/// What the load of the SIGKILL test saw.
#[derive(Default)]
struct KillLedger {
    /// Ids of jobs created with 201, in order.
    created: Vec<String>,
    /// Creates answered with anything but 201.
    refused: Vec<String>,
    create_errors: u64,
    /// Job id → (generation, attempt) of every lease a worker received.
    leases: HashMap<String, Vec<(u32, u64)>>,
    /// Job id → (generation, attempt) of every accepted ack.
    accepted: HashMap<String, Vec<(u32, u64)>>,
    /// Job id → generation, for acks answered 409 `lease_lost`.
    lost: Vec<(String, u32)>,
    /// Jobs whose ack may have reached the server without its answer
    /// reaching us: it may or may not have been accepted.
    ack_unsure: HashSet<String>,
    /// Jobs whose ack could not even connect.
    ack_unsent: HashSet<String>,
    poll_errors: u64,
    /// Anything else odd.
    problems: Vec<String>,
}

/// One server on PostgreSQL, creating and leasing flat out with a 2 s lease
/// timeout; SIGKILL it and start another on the same database. Every job
/// created with 201 ends completed; leases the dead server handed out and
/// nobody acked time out and run again (attempt ≥ 2); no ack is accepted
/// twice for one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_creating_and_leasing_loses_nothing() {
    const CREATORS: usize = 3;
    const WORKERS: usize = 4;
    const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

    let backing = Backing::Postgres(TestDb::create().await);
    let mut first = Serve::start(&backing).await;
    let admin = first.admin_key().await;
    let worker_key = cli_create_key(&backing, "w", "worker").await;
    let target = Arc::new(Mutex::new(Target {
        generation: 1,
        base: first.base.clone(),
    }));
    let ledger = Arc::new(Mutex::new(KillLedger::default()));
    let stop_creating = Arc::new(AtomicBool::new(false));
    let stop_working = Arc::new(AtomicBool::new(false));
    let load = http();

    let mut creators = Vec::new();
    for t in 0..CREATORS {
        let (load, target, ledger, stop, admin) = (
            load.clone(),
            target.clone(),
            ledger.clone(),
            stop_creating.clone(),
            admin.clone(),
        );
        creators.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let Target { generation, base } = target.lock().unwrap().clone();
                let body = json!({
                    "name": format!("kill-{t}-{i}"),
                    "handler": HANDLER,
                    "payload": {"task": t, "i": i},
                    "timeout": 2,
                });
                match post_json(&load, &base, "/v1/jobs", &admin, &body).await {
                    Ok((201, job)) => ledger.lock().unwrap().created.push(job_id(&job)),
                    Ok((status, body)) => ledger
                        .lock()
                        .unwrap()
                        .refused
                        .push(format!("generation {generation}: {status} {body}")),
                    Err(_) => {
                        // The server is gone (or going): not acknowledged.
                        ledger.lock().unwrap().create_errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (load, target, ledger, stop, key) = (
            load.clone(),
            target.clone(),
            ledger.clone(),
            stop_working.clone(),
            worker_key.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let Target { generation, base } = target.lock().unwrap().clone();
                let poll = json!({
                    "handlers": [HANDLER],
                    "max_jobs": 5 + (w + round) % 6,
                    "wait_seconds": 1,
                    "worker_id": format!("w{w}"),
                });
                let jobs = match post_json(&load, &base, "/v1/workers/poll", &key, &poll).await {
                    Ok((200, body)) => leased_jobs(&body),
                    Ok((status, body)) => {
                        ledger
                            .lock()
                            .unwrap()
                            .problems
                            .push(format!("poll, generation {generation}: {status} {body}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(_) => {
                        ledger.lock().unwrap().poll_errors += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                {
                    let mut l = ledger.lock().unwrap();
                    for leased in &jobs {
                        let attempt = leased["job"]["attempt"].as_u64().unwrap_or(0);
                        l.leases
                            .entry(job_id(&leased["job"]))
                            .or_default()
                            .push((generation, attempt));
                    }
                }
                if !jobs.is_empty() {
                    // "Work" a little, so leases are held when the kill comes.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Acks go to the server that handed out the lease.
                for leased in jobs {
                    let id = job_id(&leased["job"]);
                    let attempt = leased["job"]["attempt"].as_u64().unwrap_or(0);
                    let ack = json!({"token": leased["lease"]["token"], "result": {"worker": w}});
                    let answer = post_json(&load, &base, "/v1/leases/ack", &key, &ack).await;
                    let mut l = ledger.lock().unwrap();
                    match answer {
                        Ok((200, job)) if job["status"] == "completed" && job_id(&job) == id => {
                            l.accepted
                                .entry(id)
                                .or_default()
                                .push((generation, attempt));
                        }
                        Ok((409, body)) if body["error"]["code"] == "lease_lost" => {
                            l.lost.push((id, generation))
                        }
                        Ok((status, body)) => l.problems.push(format!(
                            "ack of {id}, generation {generation}: {status} {body}"
                        )),
                        Err(e) if e.surely_unsent => {
                            l.ack_unsent.insert(id);
                        }
                        Err(_) => {
                            l.ack_unsure.insert(id);
                        }
                    }
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (created_at_kill, accepted_at_kill) = {
        let l = ledger.lock().unwrap();
        (l.created.len(), l.accepted.len())
    };
    let killed_at = Instant::now();
    first.signal(Signal::SIGKILL);
    let status = first.wait_exit(EXIT_TIMEOUT).await;
    assert!(!status.success(), "SIGKILL gave exit status {status}");

    // The new server reads the test clock: the dead server's leases run
    // out when the test moves it, not seconds later.
    let second = Serve::start_with(&backing, &["--test-clock"]).await;
    let restart_took = killed_at.elapsed();
    let clock = backing.test_clock();
    // Past every deadline the killed server handed out (2 s), before any
    // load reaches the new server.
    clock.advance_clock(Duration::from_secs(3)).await.unwrap();
    *target.lock().unwrap() = Target {
        generation: 2,
        base: second.base.clone(),
    };
    // Creating goes on against the new server for a moment, then stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_creating.store(true, Ordering::Relaxed);
    for creator in creators {
        tokio::time::timeout(Duration::from_secs(40), creator)
            .await
            .expect("a creator did not stop within 40 s of being told")
            .expect("a creator task panicked");
    }
    let created: Vec<String> = ledger.lock().unwrap().created.clone();
    let created_set: HashSet<String> = created.iter().cloned().collect();
    assert_eq!(
        created_set.len(),
        created.len(),
        "a job id was given out twice"
    );
    assert!(
        created_at_kill >= 20,
        "only {created_at_kill} jobs were created in 1.5 s: too few for this test to mean anything"
    );

    // Drain: the workers (now all on the new server) finish everything; the
    // dead server's leases time out and come back after a backoff.
    let drain_started = Instant::now();
    let client = http();
    let mut pending: Vec<String> = created.clone();
    loop {
        {
            let l = ledger.lock().unwrap();
            pending.retain(|id| !l.accepted.contains_key(id));
        }
        // Jobs acked without our hearing of it are done too: ask the server.
        let checked = pending.len().min(200);
        let mut still = Vec::new();
        for id in &pending[..checked] {
            let (status, job) = get(&client, &second, &admin, &format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "job {id}: {job}");
            if job["status"] != "completed" {
                still.push(id.clone());
            }
        }
        still.extend_from_slice(&pending[checked..]);
        pending = still;
        if pending.is_empty() {
            break;
        }
        if drain_started.elapsed() > DRAIN_DEADLINE {
            stop_working.store(true, Ordering::Relaxed);
            let mut states = Vec::new();
            for id in pending.iter().take(5) {
                let (_, job) = get(&client, &second, &admin, &format!("/v1/jobs/{id}")).await;
                states.push(format!(
                    "{id}: {} attempt {} last_error {}",
                    job["status"], job["attempt"], job["last_error"]
                ));
            }
            panic!(
                "{} of {} acknowledged jobs are not completed {DRAIN_DEADLINE:?} after the restart, e.g. {states:#?}\n\
                 new server log:\n{}",
                pending.len(),
                created.len(),
                log_tail(&second)
            );
        }
        // Past the backoff of the jobs whose leases ran out (at most
        // 1.2 s): they are due again. (A lease of the new server that this
        // ends is a lost ack and a rerun: the checks below allow it.)
        clock.advance_clock(Duration::from_secs(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_took = drain_started.elapsed();
    stop_working.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(40), worker)
            .await
            .expect("a worker did not stop within 40 s of being told")
            .expect("a worker task panicked");
    }

    let l = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        l.refused.is_empty(),
        "{} creates were answered with something other than 201, e.g. {}",
        l.refused.len(),
        l.refused[0]
    );
    assert!(
        l.problems.is_empty(),
        "{} polls or acks got odd answers, e.g. {:#?}",
        l.problems.len(),
        &l.problems[..l.problems.len().min(10)]
    );
    let twice: Vec<(&String, &Vec<(u32, u64)>)> =
        l.accepted.iter().filter(|(_, a)| a.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{} jobs had more than one accepted ack, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );

    let stored: HashMap<String, Value> = list_all_jobs(&client, &second, &admin)
        .await
        .into_iter()
        .map(|j| (job_id(&j), j))
        .collect();
    let not_completed: Vec<String> = created
        .iter()
        .filter(|id| stored.get(*id).is_none_or(|j| j["status"] != "completed"))
        .map(|id| format!("{id}: {:?}", stored.get(id).map(|j| &j["status"])))
        .collect();
    assert!(
        not_completed.is_empty(),
        "{} of {} acknowledged jobs are missing or not completed, e.g. {:?}",
        not_completed.len(),
        created.len(),
        &not_completed[..not_completed.len().min(5)]
    );
    // An accepted ack is final: the job holds that attempt and that result.
    for (id, acks) in &l.accepted {
        let job = stored
            .get(id)
            .unwrap_or_else(|| panic!("job {id}, acked, is not stored"));
        assert_eq!(job["status"], "completed", "job {id}: {job}");
        assert_eq!(
            job["attempt"].as_u64(),
            Some(acks[0].1),
            "job {id}: its accepted ack was of attempt {}, it now says: {job}",
            acks[0].1
        );
    }
    // Leases the killed server handed out that were never acked ran again.
    let orphaned: Vec<&String> = l
        .leases
        .iter()
        .filter(|(id, leases)| {
            leases.iter().any(|(generation, _)| *generation == 1)
                && !l
                    .accepted
                    .get(*id)
                    .is_some_and(|acks| acks.iter().any(|(generation, _)| *generation == 1))
                && !l.ack_unsure.contains(*id)
        })
        .map(|(id, _)| id)
        .collect();
    for id in &orphaned {
        let job = &stored[*id];
        assert_eq!(job["status"], "completed", "orphaned job {id}: {job}");
        assert!(
            job["attempt"].as_u64().is_some_and(|a| a >= 2),
            "job {id} was leased by the killed server and never acked, yet it completed at attempt {}: {job}",
            job["attempt"]
        );
        // One execution per attempt: the last completed, every earlier one
        // timed out (nobody failed these jobs).
        let (status, executions) = get(
            &client,
            &second,
            &admin,
            &format!("/v1/jobs/{id}/executions"),
        )
        .await;
        assert_eq!(status, 200, "executions of {id}: {executions}");
        let mut executions = executions["data"].as_array().unwrap().clone();
        executions.sort_by_key(|e| e["attempt"].as_u64());
        let outcomes: Vec<(u64, &str)> = executions
            .iter()
            .map(|e| {
                (
                    e["attempt"].as_u64().unwrap(),
                    e["status"].as_str().unwrap(),
                )
            })
            .collect();
        let attempts = job["attempt"].as_u64().unwrap();
        let expected: Vec<(u64, &str)> = (1..=attempts)
            .map(|a| {
                (
                    a,
                    if a == attempts {
                        "completed"
                    } else {
                        "timed_out"
                    },
                )
            })
            .collect();
        assert_eq!(outcomes, expected, "executions of orphaned job {id}");
    }
    let rerun = stored
        .values()
        .filter(|j| j["attempt"].as_u64().is_some_and(|a| a >= 2))
        .count();
    // Reruns whose first lease never reached a worker: the poll's answer
    // died with the server.
    let first_lease_unseen = stored
        .values()
        .filter(|j| j["attempt"].as_u64().is_some_and(|a| a >= 2))
        .filter(|j| {
            !l.leases
                .get(&job_id(j))
                .is_some_and(|leases| leases.iter().any(|(_, attempt)| *attempt == 1))
        })
        .count();
    let lost_by_generation = |g: u32| l.lost.iter().filter(|(_, lg)| *lg == g).count();
    let unacknowledged_stored = stored
        .keys()
        .filter(|id| !created_set.contains(*id))
        .count();
    println!(
        "SIGKILL under load: {created_at_kill} jobs created and {accepted_at_kill} acked before the kill, \
         {} created in all ({} create errors), restart took {restart_took:.2?}\n  \
         drain took {drain_took:.2?}; {} acks accepted ({} by the killed server)\n  \
         {} jobs leased by the killed server and never acked: all completed at attempt >= 2\n  \
         {} acks that may or may not have landed, {} that could not connect, \
         409 lease_lost: {} before / {} after the kill\n  \
         {rerun} jobs ran more than once in all ({first_lease_unseen} of them leased first in a poll \
         whose answer never arrived); {unacknowledged_stored} stored jobs whose 201 never arrived; \
         {} poll errors",
        created.len(),
        l.create_errors,
        l.accepted.len(),
        l.accepted.values().filter(|a| a[0].0 == 1).count(),
        orphaned.len(),
        l.ack_unsure.len(),
        l.ack_unsent.len(),
        lost_by_generation(1),
        lost_by_generation(2),
        l.poll_errors,
    );
}

// ---------------------------------------------------------------------------
// Wake-ups across servers survive a killed LISTEN connection.
// ---------------------------------------------------------------------------

/// The listener connection's `application_name` (server/src/store/postgres/listen.rs).
const LISTEN_APP: &str = "chronos-listen";

/// A connection to the test database's PostgreSQL server, as its superuser.
async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&admin_pg_url(), tokio_postgres::NoTls)
        .await
        .expect("connecting to PostgreSQL as its administrator");
    tokio::spawn(conn);
    client
}

/// How many LISTEN connections are open to database `db`.
async fn listeners(pg: &tokio_postgres::Client, db: &str) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
        &[&LISTEN_APP, &db],
    )
    .await
    .expect("counting LISTEN connections")
    .get(0)
}

/// Waits (bounded) until `n` LISTEN connections are open to `db`; how long
/// that took.
async fn wait_for_listeners(pg: &tokio_postgres::Client, db: &str, n: i64) -> Duration {
    let started = Instant::now();
    loop {
        let open = listeners(pg, db).await;
        if open == n {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{open} LISTEN connections to {db} after 15 s, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Terminates every LISTEN connection to `db`; how many it terminated.
async fn terminate_listeners(pg: &tokio_postgres::Client, db: &str) -> usize {
    pg.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND datname = $2",
        &[&LISTEN_APP, &db],
    )
    .await
    .expect("terminating LISTEN connections")
    .iter()
    .filter(|row| row.get::<_, bool>(0))
    .count()
}

/// Two servers on one database, and a way into that database's PostgreSQL.
struct ServerPair {
    a: Serve,
    b: Serve,
    admin: String,
    worker_key: String,
    pg: tokio_postgres::Client,
    db: String,
}

impl ServerPair {
    /// A 30 s long poll on B must return a job created on A well before its
    /// wait ends. With `kill_listeners: Some(pause)`, every LISTEN
    /// connection of the database is terminated while the poll waits, `pause`
    /// before the job is created. Returns how long after the create the poll
    /// answered.
    async fn poll_on_b_wakes_for_job_on_a(
        &self,
        round: &str,
        kill_listeners: Option<Duration>,
    ) -> Duration {
        const WAIT: u64 = 30;
        let poll = {
            let (client, base, key) = (
                long_poll_client(),
                self.b.base.clone(),
                self.worker_key.clone(),
            );
            tokio::spawn(async move {
                let body = json!({"handlers": [HANDLER], "max_jobs": 1, "wait_seconds": WAIT, "worker_id": "listen-test"});
                let answer = post_json(&client, &base, "/v1/workers/poll", &key, &body).await;
                (answer.map_err(|e| e.message), Instant::now())
            })
        };
        // Let the poll find nothing and start waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !poll.is_finished(),
            "{round}: the poll answered before any job was created: {:?}",
            poll.await
        );
        if let Some(pause) = kill_listeners {
            let terminated = terminate_listeners(&self.pg, &self.db).await;
            // Both servers' connections were open (the caller waited for
            // them): both must go, B's among them.
            assert_eq!(
                terminated, 2,
                "{round}: terminated {terminated} LISTEN connections, not both servers'"
            );
            println!("{round}: terminated {terminated} LISTEN connections");
            tokio::time::sleep(pause).await;
            assert!(
                !poll.is_finished(),
                "{round}: the poll answered when its LISTEN connection was killed, before any job was created: {:?}",
                poll.await
            );
        }

        let http = http();
        let (status, job) = post_job(
            &http,
            &self.a,
            &self.admin,
            &json!({"name": round, "handler": HANDLER}),
        )
        .await;
        assert_eq!(status, 201, "{round}: {job}");
        let created_at = Instant::now();
        let id = job_id(&job);

        let (answer, answered_at) = tokio::time::timeout(Duration::from_secs(WAIT + 15), poll)
            .await
            .unwrap_or_else(|_| panic!("{round}: the poll did not answer within {} s", WAIT + 15))
            .expect("the poll task panicked");
        let woke_after = answered_at.saturating_duration_since(created_at);
        let (status, body) = answer.unwrap_or_else(|e| panic!("{round}: {e}"));
        assert_eq!(status, 200, "{round}: {body}");
        let leased = leased_jobs(&body);
        assert!(
            leased.len() == 1 && job_id(&leased[0]["job"]) == id,
            "{round}: the poll on B answered {woke_after:.2?} after job {id} was created on A, \
             without it: {body}\nB's log:\n{}",
            log_tail(&self.b)
        );
        assert!(
            woke_after < Duration::from_secs(10),
            "{round}: the poll on B returned job {id} only {woke_after:.2?} after it was created \
             on A (its wait is {WAIT} s): the wake-up did not arrive\nB's log:\n{}",
            log_tail(&self.b)
        );
        let ack = json!({"token": leased[0]["lease"]["token"], "result": {"round": round}});
        let (status, done) = post_json(
            &http,
            &self.a.base,
            "/v1/leases/ack",
            &self.worker_key,
            &ack,
        )
        .await
        .unwrap_or_else(|e| panic!("{round}: {}", e.message));
        assert_eq!(status, 200, "{round}: ack: {done}");
        woke_after
    }
}

/// Servers A and B on one database: a long poll on B wakes for a job created
/// on A, and still does after every LISTEN connection has been terminated
/// under it: twice, so reconnecting is not a one-off, and once more with the
/// job created at once, while the connections are down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_still_wake_after_the_listen_connection_is_killed() {
    let db = TestDb::create().await;
    let db_name = db.name.clone();
    let backing = Backing::Postgres(db);
    let a = Serve::start(&backing).await;
    let admin = a.admin_key().await;
    let b = Serve::start(&backing).await;
    let worker_key = cli_create_key(&backing, "w", "worker").await;
    let pair = ServerPair {
        a,
        b,
        admin,
        worker_key,
        pg: pg_admin().await,
        db: db_name,
    };
    let took = wait_for_listeners(&pair.pg, &pair.db, 2).await;
    println!("both servers listening {took:.2?} after the second one answered");

    let plain = pair.poll_on_b_wakes_for_job_on_a("plain", None).await;
    println!("plain: the poll on B answered {plain:.2?} after the job was created on A");

    // Half a second after the kill the connections are back; with no pause
    // the job is queued while they are down, and only the wake-up everyone
    // gets on reconnecting can tell B's poll.
    let rounds = [
        ("after-kill-1", Duration::from_millis(500)),
        ("after-kill-2", Duration::from_millis(500)),
        ("kill-then-create-at-once", Duration::ZERO),
    ];
    for (round, pause) in rounds {
        let woke = pair.poll_on_b_wakes_for_job_on_a(round, Some(pause)).await;
        let back = wait_for_listeners(&pair.pg, &pair.db, 2).await;
        println!(
            "{round}: the poll on B answered {woke:.2?} after the job was created on A; \
             both LISTEN connections open again ({back:.2?} after that)"
        );
    }
}
