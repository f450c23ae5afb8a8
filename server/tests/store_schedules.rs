//! Schedules in the store, on both stores: definitions stored, read, listed,
//! updated and deleted within their organization ([`ScheduleStore`]), and
//! scheduler passes ([`LeaseStore::fire_schedules`]): a due schedule fires
//! once per due time — across concurrent passes and processes, and when a
//! due time already has its job — a fire held back (`overlap: wait`) fires
//! when the last job ends, and each pass says when the next is due. Time
//! passes on the test clock. Over HTTP and with the real binary:
//! `schedules.rs`.
//!
//! [`ScheduleStore`]: chronos_server::store::ScheduleStore
//! [`LeaseStore::fire_schedules`]: chronos_server::store::LeaseStore::fire_schedules

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::{CatchUp, Delay, JobStatus, Overlap, ScheduleStatus, TimeUnit, Timestamp};
use chronos_server::job::NewJob;
use chronos_server::schedule::{Fire, FirePlan, ScheduleRecord, TimingSpec, fire};
use chronos_server::store::{Clock, ExecutionsOf, JobFilter, ScheduleFilter};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    schedules_are_stored_read_and_kept_to_their_organization,
    schedule_lists_page_newest_first_and_filter_by_status,
    an_update_rewrites_the_definition_but_not_the_last_run,
    a_run_recorded_by_hand_is_the_last_run,
    deleting_a_schedule_keeps_its_jobs,
    a_due_schedule_fires_once_per_due_time,
    concurrent_passes_fire_each_due_time_once,
    a_due_time_that_has_its_job_is_not_fired_again,
    a_plan_firing_one_due_time_twice_makes_one_job,
    a_waiting_fire_fires_when_the_last_job_ends,
    only_active_schedules_fire_each_in_its_organization,
);

const MINUTE: Duration = Duration::from_secs(60);

/// A schedule unlike [`every_minute`] in every field it can be.
fn cron_push(name: &str, anchor: Timestamp) -> ScheduleRecord {
    let base = every_minute(name, anchor);
    ScheduleRecord {
        status: ScheduleStatus::Paused,
        timing: TimingSpec::Cron {
            expr: "30 9 * * 1-5".into(),
        },
        timezone: "Europe/Paris".into(),
        template: chronos_server::schedule::JobTemplate {
            handler: None,
            payload: json!({"text": "hello"}),
            delivery: serde_json::from_value(json!({
                "type": "push",
                "http": {"url": "https://x.test/hook", "method": "PUT", "headers": {"X-A": "b"}}
            }))
            .unwrap(),
            queue: "hooks".into(),
            concurrency_key: Some("customer-42".into()),
            priority: -3,
            max_retries: 7,
            timeout_seconds: 90,
        },
        catch_up: CatchUp::One,
        overlap: Overlap::Wait,
        failure_notify: true,
        next_run_at: None,
        ..base
    }
}

async fn schedules_are_stored_read_and_kept_to_their_organization(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let at = now(&t.store).await;
    for record in [every_minute("tick", at), cron_push("hook", at)] {
        let stored = t.store.insert_schedule(org, &record).await.unwrap();
        assert_eq!(stored, record, "read back as written");
        assert_eq!(
            t.store.schedule(org, record.id).await.unwrap(),
            Some(record)
        );
    }
    let mine = every_minute("mine", at);
    t.store.insert_schedule(org, &mine).await.unwrap();
    let other = other_org(&t.store).await;
    assert_eq!(t.store.schedule(other, mine.id).await.unwrap(), None);
    let renamed = ScheduleRecord {
        name: "taken".into(),
        ..mine.clone()
    };
    assert_eq!(
        t.store.update_schedule(other, &renamed).await.unwrap(),
        None
    );
    assert!(!t.store.delete_schedule(other, mine.id).await.unwrap());
    assert_eq!(
        t.store.schedule(org, mine.id).await.unwrap(),
        Some(mine),
        "untouched by another organization"
    );
    let never = every_minute("never", at);
    assert_eq!(t.store.update_schedule(org, &never).await.unwrap(), None);
    assert_eq!(t.store.schedule(org, never.id).await.unwrap(), None);
}

async fn schedule_lists_page_newest_first_and_filter_by_status(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let at = now(&t.store).await;
    use ScheduleStatus::{Active, Archived, Paused};
    let mut ids = Vec::new();
    for (i, status) in [Active, Paused, Active, Archived, Paused]
        .into_iter()
        .enumerate()
    {
        let record = ScheduleRecord {
            status,
            ..every_minute(&format!("s{i}"), at)
        };
        ids.push(t.store.insert_schedule(org, &record).await.unwrap().id);
    }
    let list = |status: Option<ScheduleStatus>, limit| {
        let store = t.store.clone();
        async move {
            all_pages(limit, |page| {
                let store = store.clone();
                async move { store.list_schedules(org, status, page).await.unwrap() }
            })
            .await
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    assert_eq!(list(None, 2).await, newest_first);
    assert_eq!(list(Some(Paused), 1).await, vec![ids[4], ids[1]]);
    assert_eq!(list(Some(Active), 10).await, vec![ids[2], ids[0]]);
    assert_eq!(list(Some(Archived), 10).await, vec![ids[3]]);
    let other = other_org(&t.store).await;
    let page = t
        .store
        .list_schedules(other, None, first(10))
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "{page:?}");
}

/// An update writes the definition, status, next run and waiting fire as
/// given, stamps `updated_at` by the store's clock, and keeps the last run
/// (which only fires and triggers change) and the creation time.
async fn an_update_rewrites_the_definition_but_not_the_last_run(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let at = now(&t.store).await;
    let record = every_minute("tick", at);
    t.store.insert_schedule(org, &record).await.unwrap();
    let triggered = NewJob {
        schedule_id: Some(record.id),
        ..pull("tick")
    };
    let triggered = t.leases.create_job(org, triggered).await.unwrap();
    t.store
        .record_schedule_run(org, record.id, triggered.id)
        .await
        .unwrap();
    let ran = t.store.schedule(org, record.id).await.unwrap().unwrap();

    advance(&t.store, Duration::from_secs(10)).await;
    let different = cron_push("renamed", at);
    let waiting = plus(record.anchor_at, 2 * MINUTE);
    let changed = ScheduleRecord {
        id: record.id,
        anchor_at: plus(record.anchor_at, Duration::from_secs(3600)),
        next_run_at: Some(plus(record.anchor_at, 3 * MINUTE)),
        waiting_fire_at: Some(waiting),
        last_run_at: None,
        last_job_id: None,
        last_status: None,
        created_at: ran.created_at,
        updated_at: ran.updated_at,
        ..different
    };
    let before = now(&t.store).await;
    let updated = t
        .store
        .update_schedule(org, &changed)
        .await
        .unwrap()
        .expect("the schedule exists");
    let after = now(&t.store).await;
    assert!(
        before <= updated.updated_at && updated.updated_at <= after,
        "updated_at {} by the store's clock",
        updated.updated_at
    );
    let expected = ScheduleRecord {
        last_run_at: ran.last_run_at,
        last_job_id: Some(triggered.id),
        last_status: Some(JobStatus::Queued),
        updated_at: updated.updated_at,
        ..changed
    };
    assert_eq!(updated, expected);
    assert_eq!(
        t.store.schedule(org, record.id).await.unwrap(),
        Some(expected)
    );
}

/// A job made for a schedule outside its timing (a trigger) is recorded as
/// its last run, at the store's clock; the schedule reads its last job's
/// status as it changes.
async fn a_run_recorded_by_hand_is_the_last_run(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    advance(&t.store, Duration::from_secs(5)).await;
    let triggered = NewJob {
        schedule_id: Some(record.id),
        ..pull("tick")
    };
    let triggered = t.leases.create_job(org, triggered).await.unwrap();
    let other = other_org(&t.store).await;
    t.store
        .record_schedule_run(other, record.id, triggered.id)
        .await
        .unwrap();
    assert_eq!(
        t.store.schedule(org, record.id).await.unwrap(),
        Some(record.clone()),
        "another organization records nothing"
    );
    let before = now(&t.store).await;
    t.store
        .record_schedule_run(org, record.id, triggered.id)
        .await
        .unwrap();
    let after = now(&t.store).await;
    let ran = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(ran.last_job_id, Some(triggered.id));
    let last_run = ran.last_run_at.expect("a last run");
    assert!(before <= last_run && last_run <= after, "{last_run}");
    assert_eq!(ran.last_status, Some(JobStatus::Queued));
    assert_eq!(
        ran.next_run_at, record.next_run_at,
        "the timing is untouched"
    );

    let l = lease_one(&t.leases, org, "tick", None).await;
    let last_status = async || {
        let ran = t.store.schedule(org, record.id).await.unwrap().unwrap();
        ran.last_status
    };
    assert_eq!(last_status().await, Some(JobStatus::Running));
    done(t.leases.ack_job(org, l.lease.token, None).await.unwrap());
    assert_eq!(last_status().await, Some(JobStatus::Completed));
}

async fn deleting_a_schedule_keeps_its_jobs(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    let made = NewJob {
        schedule_id: Some(record.id),
        ..pull("tick")
    };
    let made = t.leases.create_job(org, made).await.unwrap();
    assert!(t.store.delete_schedule(org, record.id).await.unwrap());
    assert_eq!(t.store.schedule(org, record.id).await.unwrap(), None);
    assert!(
        !t.store.delete_schedule(org, record.id).await.unwrap(),
        "gone already"
    );
    assert!(
        t.store
            .list_schedules(org, None, first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        job(&t.store, org, made.id).await,
        made,
        "its job stays as it was"
    );
    let of = ExecutionsOf::Schedule(record.id);
    assert_eq!(t.store.executions(org, of, first(10)).await.unwrap(), None);
}

/// Before its due time a schedule is not looked at; once due (by the store's
/// clock) one pass makes its job, for that due time, and moves it to the
/// next; the next pass makes nothing. Each pass says when the next is due.
async fn a_due_schedule_fires_once_per_due_time(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let mut record = every_minute("tick", now(&t.store).await);
    record.template.concurrency_key = Some("customer-42".into());
    t.store.insert_schedule(org, &record).await.unwrap();
    let due = record.next_run_at.unwrap();

    let early = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!((early.jobs.len(), early.schedules), (0, 0));
    let wait = early.next_due_in.expect("an active schedule");
    assert!(wait > Duration::from_secs(55) && wait <= MINUTE, "{wait:?}");

    advance(&t.store, MINUTE + Duration::from_secs(1)).await;
    let fired = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(fired.schedules, 1);
    assert_eq!(fired.jobs.len(), 1);
    let (job_org, made) = &fired.jobs[0];
    assert_eq!(*job_org, org);
    assert_eq!(made.fire_at, Some(due), "the job is for its due time");
    assert_eq!(made.schedule_id, Some(record.id));
    assert_eq!(made.status, JobStatus::Queued);
    assert_eq!(
        (made.name.as_str(), made.handler.as_deref(), &made.payload),
        ("tick", Some("tick"), &json!({"from": "tick"}))
    );
    assert_eq!((made.max_retries, made.timeout), (0, 30));
    assert_eq!(made.concurrency_key.as_deref(), Some("customer-42"));
    assert_eq!(job(&t.store, org, made.id).await, *made);
    let wait = fired.next_due_in.expect("due again");
    assert!(wait > Duration::from_secs(55) && wait < MINUTE, "{wait:?}");

    let moved = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(moved.next_run_at, Some(plus(due, MINUTE)));
    assert_eq!(moved.last_job_id, Some(made.id));
    assert!(moved.last_run_at.is_some());
    assert_eq!(moved.last_status, Some(JobStatus::Queued));
    assert_eq!(moved.waiting_fire_at, None);

    let again = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!((again.jobs.len(), again.schedules), (0, 0), "fired already");
}

/// Two passes at once, on two handles of the database (two server
/// processes), after five due times were missed: each due time gets one
/// job.
async fn concurrent_passes_fire_each_due_time_once(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let second = reopen(&t, Clock::Test);
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    advance(&t.store, 5 * MINUTE + Duration::from_secs(1)).await;
    let (a, b) = tokio::join!(
        t.leases.fire_schedules(fire::plan),
        second.leases.fire_schedules(fire::plan)
    );
    let mut fire_ats: Vec<Timestamp> = [a.unwrap().jobs, b.unwrap().jobs]
        .concat()
        .into_iter()
        .map(|(_, j)| j.fire_at.expect("a fire's job"))
        .collect();
    fire_ats.sort();
    let expected: Vec<Timestamp> = (1..=5)
        .map(|k| plus(record.anchor_at, k * MINUTE))
        .collect();
    assert_eq!(fire_ats, expected, "one job per due time (catch-up all)");
    let of_schedule = JobFilter {
        schedule: ScheduleFilter::Id(record.id),
        ..JobFilter::default()
    };
    let stored = t
        .store
        .list_jobs(org, &of_schedule, first(100))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 5);
    for leases in [&t.leases, &second.leases] {
        assert!(
            leases
                .fire_schedules(fire::plan)
                .await
                .unwrap()
                .jobs
                .is_empty()
        );
    }
}

/// A due time that has its job already (a pass that died after inserting,
/// a next run moved back) is skipped; the schedule still moves on.
async fn a_due_time_that_has_its_job_is_not_fired_again(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    let due = record.next_run_at.unwrap();
    advance(&t.store, MINUTE + Duration::from_secs(1)).await;
    let fired = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(fired.jobs.len(), 1);
    let first_job = fired.jobs[0].1.id;

    let fired_once = t.store.schedule(org, record.id).await.unwrap().unwrap();
    let rewound = ScheduleRecord {
        next_run_at: Some(due),
        ..fired_once
    };
    t.store
        .update_schedule(org, &rewound)
        .await
        .unwrap()
        .unwrap();
    let again = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(again.schedules, 1, "due again, so looked at");
    assert!(again.jobs.is_empty(), "{:?}", again.jobs);
    let of_schedule = JobFilter {
        schedule: ScheduleFilter::Id(record.id),
        ..JobFilter::default()
    };
    let stored = t
        .store
        .list_jobs(org, &of_schedule, first(100))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    let after = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(after.next_run_at, Some(plus(due, MINUTE)), "moved on");
    assert_eq!(
        after.last_job_id,
        Some(first_job),
        "its last job is still the first"
    );
}

/// A test plan: fires the store's `now` (to the second) twice, and is due
/// again an hour later.
fn the_same_due_time_twice(schedule: &ScheduleRecord, now: Timestamp) -> FirePlan {
    let fire_at = whole_second(now);
    let fire = || Fire {
        fire_at,
        job: schedule.template.job(&schedule.name, schedule.id),
    };
    FirePlan {
        fires: vec![fire(), fire()],
        next_run_at: Some(plus(fire_at, Duration::from_secs(3600))),
        waiting_fire_at: None,
    }
}

/// The plan is asked at the store's clock; two fires of one due time in a
/// pass make one job.
async fn a_plan_firing_one_due_time_twice_makes_one_job(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let record = every_minute("tick", now(&t.store).await);
    t.store.insert_schedule(org, &record).await.unwrap();
    advance(&t.store, Duration::from_secs(3600)).await;
    let before = whole_second(now(&t.store).await);
    let fired = t
        .leases
        .fire_schedules(the_same_due_time_twice)
        .await
        .unwrap();
    let after = whole_second(now(&t.store).await);
    assert_eq!(fired.jobs.len(), 1, "{:?}", fired.jobs);
    let fire_at = fired.jobs[0].1.fire_at.unwrap();
    assert!(
        before <= fire_at && fire_at <= after,
        "the plan saw the store's clock: {fire_at} not in [{before}, {after}]"
    );
    let moved = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(
        moved.next_run_at,
        Some(plus(fire_at, Duration::from_secs(3600)))
    );
}

/// `overlap: wait`: a due time that comes while the last job runs is held
/// (`waiting_fire_at`), the schedule is not looked at again while it runs,
/// and the held time fires as soon as the last job ends.
async fn a_waiting_fire_fires_when_the_last_job_ends(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let record = ScheduleRecord {
        overlap: Overlap::Wait,
        ..every_minute("tick", now(&t.store).await)
    };
    t.store.insert_schedule(org, &record).await.unwrap();
    let at = |k: u32| plus(record.anchor_at, k * MINUTE);
    advance(&t.store, MINUTE + Duration::from_secs(1)).await;
    let first_fire = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(first_fire.jobs.len(), 1);

    advance(&t.store, MINUTE).await;
    let held = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!((held.jobs.len(), held.schedules), (0, 1), "held back");
    let waiting = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(waiting.waiting_fire_at, Some(at(2)));
    assert_eq!(waiting.next_run_at, Some(at(3)));
    let idle = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(
        (idle.jobs.len(), idle.schedules),
        (0, 0),
        "its last job still runs"
    );

    let l = lease_one(&t.leases, org, "tick", None).await;
    assert_eq!(l.job.id, first_fire.jobs[0].1.id);
    done(t.leases.ack_job(org, l.lease.token, None).await.unwrap());
    let released = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(released.jobs.len(), 1, "the held time fires");
    let made = &released.jobs[0].1;
    assert_eq!(made.fire_at, Some(at(2)));
    let after = t.store.schedule(org, record.id).await.unwrap().unwrap();
    assert_eq!(after.waiting_fire_at, None);
    assert_eq!(after.next_run_at, Some(at(3)));
    assert_eq!(after.last_job_id, Some(made.id));
}

/// Paused and archived schedules never fire; an active one fires its job in
/// its own organization.
async fn only_active_schedules_fire_each_in_its_organization(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let other = other_org(&t.store).await;
    let at = now(&t.store).await;
    let mine = every_minute("mine", at);
    let theirs = every_minute("theirs", at);
    t.store.insert_schedule(org, &mine).await.unwrap();
    t.store.insert_schedule(other, &theirs).await.unwrap();
    for status in [ScheduleStatus::Paused, ScheduleStatus::Archived] {
        let idle = ScheduleRecord {
            status,
            ..every_minute("idle", at)
        };
        t.store.insert_schedule(org, &idle).await.unwrap();
    }
    let fast = ScheduleRecord {
        timing: TimingSpec::Interval {
            interval: Delay {
                value: 1,
                unit: TimeUnit::Hour,
            },
            preset: None,
        },
        next_run_at: Some(plus(whole_second(at), Duration::from_secs(3600))),
        ..every_minute("hourly", at)
    };
    t.store.insert_schedule(org, &fast).await.unwrap();
    advance(&t.store, MINUTE + Duration::from_secs(1)).await;
    let fired = t.leases.fire_schedules(fire::plan).await.unwrap();
    assert_eq!(fired.schedules, 2, "the two due active ones");
    let mut made: Vec<(bool, String, Option<Uuid>)> = fired
        .jobs
        .iter()
        .map(|(o, j)| (*o == org, j.name.clone(), j.schedule_id))
        .collect();
    made.sort();
    assert_eq!(
        made,
        vec![
            (false, "theirs".to_string(), Some(theirs.id)),
            (true, "mine".to_string(), Some(mine.id)),
        ]
    );
    let wait = fired.next_due_in.unwrap();
    assert!(wait > Duration::from_secs(55) && wait < MINUTE, "{wait:?}");
}
