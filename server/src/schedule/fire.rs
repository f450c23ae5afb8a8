//! What a scheduler pass makes of one due schedule: which due times get a
//! job now, and when it is due next.
//!
//! A scheduler fires a due time within moments. When a pass finds a
//! schedule's next due time more than [`LATE_AFTER`] in the past, no
//! scheduler ran then — an outage — and every due time since was missed:
//! the schedule's `catch_up` says what becomes of them. `skip` drops them
//! (the schedule fires next at its next future time), `one` fires once for
//! all of them, `all` fires each (the most recent [`MAX_CATCH_UP`]). A pass
//! late by less (a slow database, a restart) fires everything due. Then
//! `overlap` decides about a last job still unfinished: `allow` fires
//! anyway, `skip` drops the fires, `wait` holds one back until that job
//! ends.

use super::{Fire, FirePlan, ScheduleRecord};
use chronos_proto::schedule::MAX_CATCH_UP;
use chronos_proto::{CatchUp, Overlap, ScheduleStatus, Timestamp};
use std::time::Duration;

/// A schedule due this long ago when a pass sees it was in an outage.
pub const LATE_AFTER: Duration = Duration::from_secs(5);

/// More due times than this within [`LATE_AFTER`] would be a schedule
/// firing faster than every 0.5 ms; a bound all the same.
const ON_TIME_LIMIT: usize = 10_000;

/// The plan for `schedule` at `now` (the database's clock).
pub fn plan(schedule: &ScheduleRecord, now: Timestamp) -> FirePlan {
    let mut plan = FirePlan {
        fires: Vec::new(),
        next_run_at: schedule.next_run_at,
        waiting_fire_at: schedule.waiting_fire_at,
    };
    if schedule.status != ScheduleStatus::Active {
        return plan;
    }
    let timing = match schedule
        .timing
        .timing(&schedule.timezone, schedule.anchor_at)
    {
        Ok(timing) => timing,
        Err(e) => {
            // Validated when saved; only a change of rules (a timezone
            // dropped from the database) gets here. Stop rather than spin.
            tracing::error!(schedule_id = %schedule.id, error = %e, "schedule cannot be evaluated; it will not fire");
            plan.next_run_at = None;
            return plan;
        }
    };
    let unfinished = schedule.last_status.is_some_and(|s| !s.is_finished());

    let mut due: Vec<Timestamp> = Vec::new();
    // A fire held back until the last job ended: its turn now.
    if let Some(waiting) = schedule.waiting_fire_at
        && !unfinished
    {
        due.push(waiting);
        plan.waiting_fire_at = None;
    }
    if let Some(next) = schedule.next_run_at
        && next <= now
    {
        // Due times in [next, now]. Fired within moments as a rule; if the
        // oldest is more than LATE_AFTER behind, no scheduler ran then (an
        // outage), and all of them were missed.
        let outage = now.0 - next.0 > chrono::Duration::from_std(LATE_AFTER).unwrap_or_default();
        let limit = if outage { MAX_CATCH_UP } else { ON_TIME_LIMIT };
        let mut times = timing.between(next.0, now.0, limit);
        if times.len() < limit {
            times.insert(0, next.0);
        }
        let (missed, on_time) = if outage {
            (times, Vec::new())
        } else {
            (Vec::new(), times)
        };
        match schedule.catch_up {
            CatchUp::Skip => {}
            CatchUp::One => due.extend(missed.last().copied().map(Timestamp)),
            CatchUp::All => due.extend(missed.into_iter().map(Timestamp)),
        }
        due.extend(on_time.into_iter().map(Timestamp));
        plan.next_run_at = timing.next_after(now.0).map(Timestamp);

        if unfinished {
            match schedule.overlap {
                Overlap::Allow => {}
                Overlap::Skip => due.clear(),
                Overlap::Wait => {
                    // One fire waits, however many came due meanwhile.
                    if plan.waiting_fire_at.is_none() {
                        plan.waiting_fire_at = due.last().copied();
                    }
                    due.clear();
                }
            }
        }
    }
    plan.fires = due
        .into_iter()
        .map(|fire_at| Fire {
            fire_at,
            job: schedule.template.job(&schedule.name, schedule.id),
        })
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{JobTemplate, TimingSpec};
    use chronos_proto::{Delay, Delivery, JobStatus, TimeUnit};
    use uuid::Uuid;

    fn at(s: &str) -> Timestamp {
        Timestamp(s.parse().unwrap())
    }

    /// Every second from 10:00:00, next due at `next`.
    fn every_second(next: &str) -> ScheduleRecord {
        ScheduleRecord {
            id: Uuid::now_v7(),
            name: "tick".into(),
            status: ScheduleStatus::Active,
            timing: TimingSpec::Interval {
                interval: Delay {
                    value: 1,
                    unit: TimeUnit::Second,
                },
                preset: None,
            },
            timezone: "UTC".into(),
            template: JobTemplate {
                handler: Some("tick".into()),
                payload: serde_json::Value::Null,
                delivery: Delivery::Pull,
                queue: "default".into(),
                concurrency_key: None,
                priority: 0,
                max_retries: 0,
                timeout_seconds: 30,
            },
            catch_up: CatchUp::Skip,
            overlap: Overlap::Allow,
            failure_notify: false,
            anchor_at: at("2026-01-01T10:00:00Z"),
            next_run_at: Some(at(next)),
            waiting_fire_at: None,
            last_run_at: None,
            last_job_id: None,
            last_status: None,
            created_at: at("2026-01-01T10:00:00Z"),
            updated_at: at("2026-01-01T10:00:00Z"),
        }
    }

    fn fired(plan: &FirePlan) -> Vec<String> {
        plan.fires.iter().map(|f| f.fire_at.to_string()).collect()
    }

    #[test]
    fn on_time_fires_once_and_moves_on() {
        let s = every_second("2026-01-01T10:00:05Z");
        let plan = plan(&s, at("2026-01-01T10:00:05.002Z"));
        assert_eq!(fired(&plan), ["2026-01-01T10:00:05.000Z"]);
        assert_eq!(plan.next_run_at, Some(at("2026-01-01T10:00:06Z")));
        // Not due yet: nothing.
        let early = super::plan(&s, at("2026-01-01T10:00:04.999Z"));
        assert!(early.fires.is_empty());
        assert_eq!(early.next_run_at, s.next_run_at);
    }

    #[test]
    fn a_late_pass_still_fires_everything_due() {
        // Three seconds late, whatever the catch-up: not an outage.
        let mut s = every_second("2026-01-01T10:00:05Z");
        s.catch_up = CatchUp::Skip;
        let plan = plan(&s, at("2026-01-01T10:00:07.5Z"));
        assert_eq!(plan.fires.len(), 3);
        assert_eq!(plan.next_run_at, Some(at("2026-01-01T10:00:08Z")));
    }

    #[test]
    fn catch_up_decides_about_missed_times() {
        // Down from 10:00:05 to 10:01:00.5: 56 due times missed.
        let now = at("2026-01-01T10:01:00.5Z");
        let mut s = every_second("2026-01-01T10:00:05Z");
        let skip = plan(&s, now);
        assert!(skip.fires.is_empty(), "skip fires none");
        assert_eq!(skip.next_run_at, Some(at("2026-01-01T10:01:01Z")));
        s.catch_up = CatchUp::One;
        let one = plan(&s, now);
        assert_eq!(
            fired(&one),
            ["2026-01-01T10:01:00.000Z"],
            "one, for the latest"
        );
        s.catch_up = CatchUp::All;
        let all = plan(&s, now);
        assert_eq!(all.fires.len(), 56);
        assert_eq!(fired(&all)[0], "2026-01-01T10:00:05.000Z");
        // A long outage: at most MAX_CATCH_UP, the most recent.
        let all = plan(&s, at("2026-01-01T12:00:00Z"));
        assert_eq!(all.fires.len(), MAX_CATCH_UP);
        assert_eq!(fired(&all)[0], "2026-01-01T11:58:21.000Z");
        assert_eq!(all.next_run_at, Some(at("2026-01-01T12:00:01Z")));
    }

    #[test]
    fn overlap_decides_while_the_last_job_runs() {
        let now = at("2026-01-01T10:00:05.1Z");
        let mut s = every_second("2026-01-01T10:00:05Z");
        s.last_status = Some(JobStatus::Running);
        assert_eq!(plan(&s, now).fires.len(), 1, "allow");
        s.overlap = Overlap::Skip;
        let skip = plan(&s, now);
        assert!(skip.fires.is_empty());
        assert_eq!(skip.next_run_at, Some(at("2026-01-01T10:00:06Z")));
        s.overlap = Overlap::Wait;
        let wait = plan(&s, now);
        assert!(wait.fires.is_empty());
        assert_eq!(wait.waiting_fire_at, Some(at("2026-01-01T10:00:05Z")));
        // Still running at the next due time: still one waiting fire.
        s.waiting_fire_at = wait.waiting_fire_at;
        s.next_run_at = wait.next_run_at;
        let again = plan(&s, at("2026-01-01T10:00:06.1Z"));
        assert!(again.fires.is_empty());
        assert_eq!(again.waiting_fire_at, Some(at("2026-01-01T10:00:05Z")));
        // The job ended: the waiting fire goes, before the next due time.
        s.last_status = Some(JobStatus::Completed);
        s.next_run_at = Some(at("2026-01-01T10:00:07Z"));
        let released = plan(&s, at("2026-01-01T10:00:06.5Z"));
        assert_eq!(fired(&released), ["2026-01-01T10:00:05.000Z"]);
        assert_eq!(released.waiting_fire_at, None);
        assert_eq!(released.next_run_at, Some(at("2026-01-01T10:00:07Z")));
    }

    #[test]
    fn only_active_schedules_fire() {
        let mut s = every_second("2026-01-01T10:00:05Z");
        s.status = ScheduleStatus::Paused;
        assert!(plan(&s, at("2026-01-01T10:00:06Z")).fires.is_empty());
    }
}
