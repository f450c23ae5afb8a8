//! Schedule precision: how close to its due time a schedule's job is
//! there. Several schedules fire every second for a while, their jobs
//! leased by a worker long-polling over HTTP as they come:
//!
//! - due → job created: the job's `created_at` (the store's clock) minus its
//!   `fire_at` (the due time it was made for);
//! - due → leased: when the waiting worker got it (this machine's clock,
//!   which the store shares) minus `fire_at`.
//!
//! Prints its figures; a due time without exactly one job is reported.

use crate::measure::{Res, percentiles};
use crate::server::Server;
use chrono::Utc;
use chronos::{
    Client, CreateSchedule, Delay, JobStatus, ListJobs, PollRequest, ScheduleFilter, TimeUnit,
};
use std::collections::HashSet;
use std::time::Duration;

/// Schedules firing side by side.
const SCHEDULES: usize = 10;
const HANDLER: &str = "bench-schedule";

pub async fn schedule(server: &Server, samples: usize) -> Res<()> {
    let client = Client::new(&server.base, &server.admin_key)?;
    let seconds = samples.div_ceil(SCHEDULES).max(2);
    println!(
        "  {SCHEDULES} schedules every second for {seconds} s; a worker long-polls for their jobs"
    );
    let mut ids = Vec::new();
    for i in 0..SCHEDULES {
        let schedule = client
            .create_schedule(&CreateSchedule {
                name: Some(format!("bench {i}")),
                handler: Some(HANDLER.into()),
                interval: Some(Delay {
                    value: 1,
                    unit: TimeUnit::Second,
                }),
                ..CreateSchedule::default()
            })
            .await?;
        ids.push(schedule.id);
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds as u64);
    let (mut leased, mut seen) = (Vec::new(), HashSet::new());
    let poll = PollRequest {
        handlers: vec![HANDLER.into()],
        max_jobs: Some(100),
        wait_seconds: Some(1),
        worker_id: Some("bench".into()),
    };
    while tokio::time::Instant::now() < until {
        let jobs = client.poll(&poll).await?;
        let now = Utc::now();
        for job in jobs {
            if let Some(fire_at) = job.job.fire_at {
                leased.push((now - fire_at.0).to_std().unwrap_or_default());
            }
            seen.insert(job.job.id);
            client.ack(job.lease.token, None).await?;
        }
    }
    for &id in &ids {
        client.pause_schedule(id).await?;
    }
    let (mut created, mut fires) = (Vec::new(), 0);
    let mut anomalies = 0;
    for &id in &ids {
        let mut due = HashSet::new();
        let mut cursor = None;
        loop {
            let mut query = ListJobs::new().schedule(ScheduleFilter::Id(id)).limit(100);
            if let Some(c) = &cursor {
                query = query.cursor(c);
            }
            let page = client.list_jobs(&query).await?;
            for job in &page.data {
                let Some(fire_at) = job.fire_at else { continue };
                fires += 1;
                if !due.insert(fire_at) || job.status == JobStatus::Failed {
                    anomalies += 1;
                }
                created.push((job.created_at.0 - fire_at.0).to_std().unwrap_or_default());
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    println!("  {:<26}{}", "due → job created", percentiles(created));
    println!(
        "  {:<26}{}",
        "due → leased (long poll)",
        percentiles(leased)
    );
    println!(
        "  {:<26}{fires} jobs for {SCHEDULES} schedules, {} leased; repeated due times {anomalies}",
        "fires",
        seen.len()
    );
    Ok(())
}
