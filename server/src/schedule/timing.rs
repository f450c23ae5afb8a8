//! When a recurring schedule is next due: cron expressions and intervals,
//! evaluated in an IANA timezone with exact DST rules. Pure logic: callers
//! pass the instant to search from and get UTC instants back.
//!
//! # Cron
//!
//! Five fields, `minute hour day-of-month month day-of-week`, or six with
//! seconds first. A field is `*`, a value, a range `1-5`, a step `*/15`,
//! `10-50/20` or `5/15` (from 5 to the field's end), or a comma list of
//! these. Months take `JAN`–`DEC` and weekdays `SUN`–`SAT`, in any case;
//! weekdays 0 and 7 are both Sunday. Macros: `@yearly` (`@annually`),
//! `@monthly`, `@weekly` (Sunday 00:00), `@daily` (`@midnight`), `@hourly`.
//!
//! Day-of-month and day-of-week follow Vixie cron: when both are restricted
//! (neither is exactly `*`) a day matches if *either* does, so `0 0 1 * MON`
//! fires on the 1st of every month and on every Monday. When one is `*`, the
//! other alone decides.
//!
//! # Wall-clock times and DST
//!
//! Cron fields, and the time of day of day and week intervals, name local
//! wall-clock times in the schedule's timezone. One rule turns a local time
//! into an instant: it is due at the first instant the wall clock shows that
//! time or later. Hence:
//!
//! - A time skipped by a spring-forward gap is due once, at the first instant
//!   after the gap: 02:30 on New York's spring-forward day is due at 03:00
//!   EDT. Several matches inside one gap (`*/15 2 * * *`) all land on that
//!   instant, and it fires once.
//! - A time repeated by a fall-back is due once, at its first occurrence:
//!   01:30 EDT, not 01:30 EST. Applied uniformly, this means the repeated
//!   stretch runs only on its first pass: `30 * * * *` fires at 01:30 EDT
//!   and next at 02:30 EST, and even `* * * * *` is idle through the second
//!   pass of the repeated hour (it has already fired for those local times).
//!
//! Nothing assumes whole-hour shifts (Lord Howe moves its clocks by 30
//! minutes). The rule keeps due times in the order of the local times they
//! come from, which is what lets the searches below walk local times.
//!
//! # Intervals
//!
//! Seconds, minutes and hours are fixed durations: due at `anchor + k·d`,
//! k ≥ 1, in UTC. Days and weeks keep the anchor's local time of day: due at
//! `local(anchor) + k days` (7k for weeks), placed by the rule above. Either
//! way the sequence is anchored at the schedule's creation, not at the end of
//! the last run, so slow or late runs do not make a schedule drift.

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// How far a cron search looks before deciding an expression never matches
/// (`0 0 30 2 *`). Long enough for `0 0 29 2 *` across a century year that
/// is not a leap year (2096 → 2104).
const HORIZON_DAYS: u32 = 10 * 366;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;

/// A unit of an interval schedule: the wire's `second` … `week`.
pub use chronos_proto::TimeUnit as IntervalUnit;

/// When a schedule is due.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    tz: Tz,
    rule: Rule,
}

/// Why a schedule's timing was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimingError {
    /// What is wrong, naming the field: "minute field: 60 is out of range 0-59".
    #[error("Invalid cron expression: {0}")]
    InvalidCron(String),
    #[error("unknown timezone `{0}`: use an IANA name such as `Europe/London`")]
    UnknownTimezone(String),
    #[error("an interval must be at least one second")]
    IntervalTooShort,
    #[error(
        "unknown schedule `{0}`: use one of every_1m, every_5m, every_15m, every_30m, every_1h, every_6h, every_12h, every_1d"
    )]
    UnknownPreset(String),
}

/// Krafter's presets as (value, unit); `None` for another name.
pub fn preset_interval(name: &str) -> Option<(u64, IntervalUnit)> {
    Some(match name {
        "every_1m" => (1, IntervalUnit::Minute),
        "every_5m" => (5, IntervalUnit::Minute),
        "every_15m" => (15, IntervalUnit::Minute),
        "every_30m" => (30, IntervalUnit::Minute),
        "every_1h" => (1, IntervalUnit::Hour),
        "every_6h" => (6, IntervalUnit::Hour),
        "every_12h" => (12, IntervalUnit::Hour),
        "every_1d" => (1, IntervalUnit::Day),
        _ => return None,
    })
}

/// Parses an IANA name, such as `Europe/London` or `UTC`.
pub fn parse_timezone(name: &str) -> Result<Tz, TimingError> {
    name.parse()
        .map_err(|_| TimingError::UnknownTimezone(name.to_owned()))
}

impl Timing {
    /// A cron expression evaluated in `timezone` (an IANA name).
    pub fn cron(expr: &str, timezone: &str) -> Result<Timing, TimingError> {
        let cron = Cron::parse(expr).map_err(TimingError::InvalidCron)?;
        Ok(Timing {
            tz: parse_timezone(timezone)?,
            rule: Rule::Local(LocalRule::Cron(cron)),
        })
    }

    /// Every `value` `unit`s, counted from `anchor` (the schedule's creation
    /// time): due at anchor + k·interval, k ≥ 1.
    pub fn interval(
        value: u64,
        unit: IntervalUnit,
        timezone: &str,
        anchor: DateTime<Utc>,
    ) -> Result<Timing, TimingError> {
        let tz = parse_timezone(timezone)?;
        if value == 0 {
            return Err(TimingError::IntervalTooShort);
        }
        let fixed = |unit_seconds: i64| Rule::Fixed {
            anchor,
            // An interval too long to represent is never due again.
            step: i64::try_from(value)
                .ok()
                .and_then(|v| v.checked_mul(unit_seconds))
                .and_then(TimeDelta::try_seconds)
                .unwrap_or(TimeDelta::MAX),
        };
        let calendar = |days: u64| {
            Rule::Local(LocalRule::Calendar(Calendar {
                start: anchor.with_timezone(&tz).naive_local(),
                days,
            }))
        };
        let rule = match unit {
            IntervalUnit::Second => fixed(1),
            IntervalUnit::Minute => fixed(60),
            IntervalUnit::Hour => fixed(3600),
            IntervalUnit::Day => calendar(value),
            IntervalUnit::Week => calendar(value.saturating_mul(7)),
        };
        Ok(Timing { tz, rule })
    }

    /// Krafter's presets: every_1m, every_5m, every_15m, every_30m,
    /// every_1h, every_6h, every_12h, every_1d — the same as
    /// [`Timing::interval`] with that value and unit.
    pub fn preset(
        name: &str,
        timezone: &str,
        anchor: DateTime<Utc>,
    ) -> Result<Timing, TimingError> {
        let (value, unit) =
            preset_interval(name).ok_or_else(|| TimingError::UnknownPreset(name.to_owned()))?;
        Timing::interval(value, unit, timezone, anchor)
    }

    /// The timezone the schedule is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first due time strictly after `after`; None if there is none
    /// (a cron expression that never matches within ten years, or a time
    /// beyond what chrono can represent).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Fixed { anchor, step } => {
                let elapsed = nanos(after.signed_duration_since(*anchor));
                let k = if elapsed < 0 {
                    1
                } else {
                    elapsed / nanos(*step) + 1
                };
                fixed_at(*anchor, *step, k)
            }
            Rule::Local(rule) => {
                // Local times up to `after`'s own are due at or before it; of
                // the later ones, only those repeated by a fall-back can be.
                let local = after.with_timezone(&self.tz).naive_local();
                let mut candidate = rule.first_after(local)?;
                loop {
                    let due = resolve(self.tz, candidate)?;
                    if due > after {
                        return Some(due);
                    }
                    candidate = rule.first_after(candidate)?;
                }
            }
        }
    }

    /// Up to `count` due times strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut due = Vec::new();
        let mut cursor = after;
        while due.len() < count {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            due.push(next);
            cursor = next;
        }
        due
    }

    /// The shortest time between two of the first `samples` due times
    /// after `after`; `None` if it is due fewer than twice. A cron
    /// expression's fields repeat within each hour they match, so a few
    /// hundred samples see its shortest gap.
    pub fn shortest_gap(&self, after: DateTime<Utc>, samples: usize) -> Option<TimeDelta> {
        let due = self.upcoming(after, samples);
        due.windows(2).map(|w| w[1] - w[0]).min()
    }

    /// The due times in (from, to], oldest first, at most `limit`: the most
    /// recent ones if there are more (for catch-up after downtime).
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        // Walk back from `to`, so a long downtime costs `limit` steps rather
        // than one per missed run.
        let mut due = Vec::new();
        let mut bound = to.checked_add_signed(TimeDelta::nanoseconds(1));
        while due.len() < limit {
            match bound.and_then(|b| self.last_before(b)) {
                Some(t) if t > from => {
                    due.push(t);
                    bound = Some(t);
                }
                _ => break,
            }
        }
        due.reverse();
        due
    }

    /// The last due time strictly before `before`.
    fn last_before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Fixed { anchor, step } => {
                // The largest k with k·step < elapsed.
                let elapsed = nanos(before.signed_duration_since(*anchor));
                let k = (elapsed - 1).div_euclid(nanos(*step));
                (k >= 1).then(|| fixed_at(*anchor, *step, k)).flatten()
            }
            Rule::Local(rule) => {
                // Local times up to the wall clock just before `before` are
                // due before it; later ones only if a fall-back repeats them.
                let local = before
                    .checked_sub_signed(TimeDelta::nanoseconds(1))?
                    .with_timezone(&self.tz)
                    .naive_local();
                let mut last = rule
                    .last_at_or_before(local)
                    .and_then(|c| resolve(self.tz, c));
                let mut candidate = rule.first_after(local);
                while let Some(c) = candidate {
                    match resolve(self.tz, c) {
                        Some(due) if due < before => {
                            last = Some(due);
                            candidate = rule.first_after(c);
                        }
                        _ => break,
                    }
                }
                last
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Rule {
    /// Due at `anchor + k·step`, k ≥ 1: UTC arithmetic.
    Fixed {
        anchor: DateTime<Utc>,
        step: TimeDelta,
    },
    /// Due at local wall-clock times, placed by the DST rule.
    Local(LocalRule),
}

/// A rising sequence of local wall-clock times.
#[derive(Clone, Debug, PartialEq)]
enum LocalRule {
    Cron(Cron),
    Calendar(Calendar),
}

impl LocalRule {
    /// The first time in the sequence strictly after `local`.
    fn first_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            LocalRule::Cron(cron) => cron.first_after(local),
            LocalRule::Calendar(calendar) => calendar.first_after(local),
        }
    }

    /// The last time in the sequence at or before `local`.
    fn last_at_or_before(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            LocalRule::Cron(cron) => cron.last_at_or_before(local),
            LocalRule::Calendar(calendar) => calendar.last_at_or_before(local),
        }
    }
}

/// `anchor + k·step`, if representable.
fn fixed_at(anchor: DateTime<Utc>, step: TimeDelta, k: i128) -> Option<DateTime<Utc>> {
    let offset = k.checked_mul(nanos(step))?;
    let seconds = i64::try_from(offset.div_euclid(NANOS_PER_SECOND)).ok()?;
    let subsec = u32::try_from(offset.rem_euclid(NANOS_PER_SECOND)).ok()?;
    anchor.checked_add_signed(TimeDelta::new(seconds, subsec)?)
}

fn nanos(delta: TimeDelta) -> i128 {
    i128::from(delta.num_seconds()) * NANOS_PER_SECOND + i128::from(delta.subsec_nanos())
}

/// The instant a local wall-clock time is due: the first instant the clock
/// shows that time or later. That is the time itself if it occurs once, its
/// first occurrence if a fall-back repeats it, and the end of the gap if a
/// spring-forward skips it.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        MappedLocalTime::None => gap_end(tz, local),
    }
}

/// The instant the clock jumps over `local`, which falls in a gap.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // The offsets in force a day either side of the gap: transitions are
    // months apart, so these are the ones just before and after the jump.
    let offset_at = |utc: NaiveDateTime| tz.offset_from_utc_datetime(&utc).fix();
    let before = offset_at(local.checked_sub_days(Days::new(1))?);
    let after = offset_at(local.checked_add_days(Days::new(1))?);
    // Read with the later offset, `local` names an instant before the jump;
    // read with the earlier one, an instant at or after it. Bisect between
    // them by whole seconds: transitions fall on whole seconds.
    let early = local.checked_sub_offset(after)?.and_utc();
    let late = local.checked_sub_offset(before)?.and_utc();
    let shows_later = |secs: i64| {
        DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&tz).naive_local() > local)
    };
    let mut lo = early.timestamp();
    let mut hi = late.timestamp() + i64::from(late.timestamp_subsec_nanos() > 0);
    if shows_later(lo) != Some(false) || shows_later(hi) != Some(true) {
        // Not a single jump between the two offsets (no zone does this
        // today): shift by the gap's length, as most libraries do.
        return Some(late);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if shows_later(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// A day or week interval: `start + k·days` local, k ≥ 1.
#[derive(Clone, Debug, PartialEq)]
struct Calendar {
    start: NaiveDateTime,
    days: u64,
}

impl Calendar {
    fn first_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        self.at((self.steps_to(local) + 1).max(1))
    }

    fn last_at_or_before(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let k = self.steps_to(local);
        if k >= 1 { self.at(k) } else { None }
    }

    /// The largest k with `start + k·days` at or before `local`.
    fn steps_to(&self, local: NaiveDateTime) -> i128 {
        let step = i128::from(self.days) * NANOS_PER_DAY;
        nanos(local.signed_duration_since(self.start)).div_euclid(step)
    }

    fn at(&self, k: i128) -> Option<NaiveDateTime> {
        let days = u64::try_from(k.checked_mul(i128::from(self.days))?).ok()?;
        self.start.checked_add_days(Days::new(days))
    }
}

/// A parsed cron expression: one bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq)]
struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 is Sunday; a 7 in the expression is folded into it.
    days_of_week: u64,
    /// Both day fields are restricted, so a day matches if either does.
    either_day: bool,
}

/// The syntax of one cron field.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, …
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl Field {
    /// The bitset of values a field's text allows.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut set = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(self.step(step)?)),
                None => (item, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((lo, hi)) = range.split_once('-') {
                (self.value(lo)?, self.value(hi)?)
            } else {
                let value = self.value(range)?;
                // `5/15` runs from 5 to the field's end.
                (value, if step.is_some() { self.max } else { value })
            };
            if lo > hi {
                return Err(format!(
                    "{} field: range `{range}` runs backwards",
                    self.name
                ));
            }
            for value in (lo..=hi).step_by(step.unwrap_or(1)) {
                set |= 1 << value;
            }
        }
        Ok(set)
    }

    fn value(&self, text: &str) -> Result<u32, String> {
        if text.is_empty() {
            return Err(format!("{} field: a value is missing", self.name));
        }
        if let Ok(value) = text.parse::<u32>() {
            return if (self.min..=self.max).contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "{} field: {value} is out of range {}-{}",
                    self.name, self.min, self.max
                ))
            };
        }
        match self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            Some(i) => Ok(self.min + i as u32),
            None => Err(format!(
                "{} field: `{text}` is not a valid value",
                self.name
            )),
        }
    }

    fn step(&self, text: &str) -> Result<usize, String> {
        match text.parse::<usize>() {
            Ok(0) => Err(format!("{} field: a step must be at least 1", self.name)),
            Ok(step) => Ok(step),
            Err(_) => Err(format!(
                "{} field: step `{text}` is not a number",
                self.name
            )),
        }
    }
}

impl Cron {
    fn parse(expr: &str) -> Result<Cron, String> {
        let expr = expr.trim();
        let text = match expr.strip_prefix('@') {
            Some(name) => match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => {
                    return Err(format!(
                        "unknown macro `{expr}`: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                    ));
                }
            },
            None => expr,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(format!("expected 5 or 6 fields, got {n}")),
        };
        let mut days_of_week = DAY_OF_WEEK.parse(rest[4])?;
        if days_of_week & 1 << 7 != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(Cron {
            seconds: SECOND.parse(seconds)?,
            minutes: MINUTE.parse(rest[0])?,
            hours: HOUR.parse(rest[1])?,
            days_of_month: DAY_OF_MONTH.parse(rest[2])?,
            months: MONTH.parse(rest[3])?,
            days_of_week,
            either_day: rest[2] != "*" && rest[4] != "*",
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let has = |set: u64, value: u32| set & 1 << value != 0;
        let day_of_month = has(self.days_of_month, date.day());
        let day_of_week = has(self.days_of_week, date.weekday().num_days_from_sunday());
        has(self.months, date.month())
            && if self.either_day {
                day_of_month || day_of_week
            } else {
                day_of_month && day_of_week
            }
    }

    fn first_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = local
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::seconds(1))?;
        let mut date = start.date();
        let mut from = start.time();
        for _ in 0..=HORIZON_DAYS {
            if self.day_matches(date)
                && let Some(time) = self.time_at_or_after(from)
            {
                return Some(date.and_time(time));
            }
            date = date.succ_opt()?;
            from = NaiveTime::MIN;
        }
        None
    }

    fn last_at_or_before(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let end = local.with_nanosecond(0)?;
        let mut date = end.date();
        let mut upto = end.time();
        for _ in 0..=HORIZON_DAYS {
            if self.day_matches(date)
                && let Some(time) = self.time_at_or_before(upto)
            {
                return Some(date.and_time(time));
            }
            date = date.pred_opt()?;
            upto = NaiveTime::from_hms_opt(23, 59, 59)?;
        }
        None
    }

    /// The first matching time of day at or after `from`.
    fn time_at_or_after(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        for h in up_from(self.hours, h0) {
            for m in up_from(self.minutes, if h == h0 { m0 } else { 0 }) {
                let s_from = if (h, m) == (h0, m0) { s0 } else { 0 };
                if let Some(s) = up_from(self.seconds, s_from).next() {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    /// The last matching time of day at or before `upto`.
    fn time_at_or_before(&self, upto: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (upto.hour(), upto.minute(), upto.second());
        for h in down_from(self.hours, h0) {
            for m in down_from(self.minutes, if h == h0 { m0 } else { 59 }) {
                let s_upto = if (h, m) == (h0, m0) { s0 } else { 59 };
                if let Some(s) = down_from(self.seconds, s_upto).next() {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }
}

/// The values in `set` from `from` upwards.
fn up_from(set: u64, from: u32) -> impl Iterator<Item = u32> {
    let mut rest = if from >= 64 {
        0
    } else {
        set & (u64::MAX << from)
    };
    std::iter::from_fn(move || {
        let value = (rest != 0).then(|| rest.trailing_zeros())?;
        rest &= rest - 1;
        Some(value)
    })
}

/// The values in `set` from `upto` downwards.
fn down_from(set: u64, upto: u32) -> impl Iterator<Item = u32> {
    let mut rest = if upto >= 63 {
        set
    } else {
        set & ((1 << (upto + 1)) - 1)
    };
    std::iter::from_fn(move || {
        let value = (rest != 0).then(|| 63 - rest.leading_zeros())?;
        rest &= !(1 << value);
        Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn cron(expr: &str, timezone: &str) -> Timing {
        Timing::cron(expr, timezone).unwrap()
    }

    fn show(times: Vec<DateTime<Utc>>) -> Vec<String> {
        times
            .iter()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .collect()
    }

    /// The first `count` due times after `after`, as RFC 3339 UTC strings.
    fn fires(timing: &Timing, after: &str, count: usize) -> Vec<String> {
        show(timing.upcoming(at(after), count))
    }

    /// `between` (which walks backwards) agrees with walking forwards.
    fn assert_between_walks_forward(timing: &Timing, from: &str, to: &str) {
        let (from, to) = (at(from), at(to));
        let mut forward = Vec::new();
        let mut cursor = from;
        while let Some(next) = timing.next_after(cursor).filter(|t| *t <= to) {
            forward.push(next);
            cursor = next;
        }
        assert_eq!(show(timing.between(from, to, usize::MAX)), show(forward));
    }

    fn cron_error(expr: &str) -> String {
        Timing::cron(expr, "UTC").unwrap_err().to_string()
    }

    // --- cron fields ---

    #[test]
    fn weekdays_skip_the_weekend_and_search_strictly_after() {
        let t = cron("0 9 * * 1-5", "UTC");
        // 2026-05-29 is a Friday.
        assert_eq!(
            fires(&t, "2026-05-29T10:00:00Z", 1),
            ["2026-06-01T09:00:00Z"]
        );
        // 2026-06-01 is a Monday: its own 09:00 is not after itself.
        assert_eq!(
            fires(&t, "2026-06-01T09:00:00Z", 1),
            ["2026-06-02T09:00:00Z"]
        );
        assert_eq!(
            fires(&t, "2026-06-01T08:59:59Z", 1),
            ["2026-06-01T09:00:00Z"]
        );
    }

    #[test]
    fn sunday_is_0_or_7_or_sun() {
        // 2026-01-01 is a Thursday; 2026-01-04 a Sunday.
        for expr in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun"] {
            assert_eq!(
                fires(&cron(expr, "UTC"), "2026-01-01T00:00:00Z", 2),
                ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
                "{expr}"
            );
        }
        assert_eq!(cron("0 0 * * 0", "UTC"), cron("0 0 * * 7", "UTC"));
        // 5-7 is Friday, Saturday and Sunday.
        assert_eq!(cron("0 0 * * 5-7", "UTC"), cron("0 0 * * 0,5,6", "UTC"));
    }

    #[test]
    fn restricted_day_fields_match_either() {
        // Vixie's OR rule: the 1st of the month, and every Monday.
        // 2026-06-01 is both; 06-08 … 06-29 are Mondays; 07-01 is a
        // Wednesday (the 1st); 07-06 is a Monday.
        assert_eq!(
            fires(&cron("0 0 1 * MON", "UTC"), "2026-05-31T00:00:00Z", 7),
            [
                "2026-06-01T00:00:00Z",
                "2026-06-08T00:00:00Z",
                "2026-06-15T00:00:00Z",
                "2026-06-22T00:00:00Z",
                "2026-06-29T00:00:00Z",
                "2026-07-01T00:00:00Z",
                "2026-07-06T00:00:00Z",
            ]
        );
    }

    #[test]
    fn an_unrestricted_day_field_leaves_the_other_alone() {
        assert_eq!(
            fires(&cron("0 0 1 * *", "UTC"), "2026-05-31T00:00:00Z", 2),
            ["2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"]
        );
        assert_eq!(
            fires(&cron("0 0 * * MON", "UTC"), "2026-06-01T00:00:00Z", 2),
            ["2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z"]
        );
    }

    #[test]
    fn february_29_waits_for_a_leap_year() {
        let t = cron("0 0 29 2 *", "UTC");
        assert_eq!(
            fires(&t, "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
        // 2100 is not a leap year: eight years pass, within the horizon.
        assert_eq!(
            fires(&t, "2096-03-01T00:00:00Z", 1),
            ["2104-02-29T00:00:00Z"]
        );
    }

    #[test]
    fn day_31_skips_shorter_months() {
        assert_eq!(
            fires(&cron("0 0 31 * *", "UTC"), "2026-04-01T00:00:00Z", 5),
            [
                "2026-05-31T00:00:00Z",
                "2026-07-31T00:00:00Z",
                "2026-08-31T00:00:00Z",
                "2026-10-31T00:00:00Z",
                "2026-12-31T00:00:00Z",
            ]
        );
    }

    #[test]
    fn an_expression_that_never_matches_is_never_due() {
        for expr in ["0 0 30 2 *", "0 0 31 4 *"] {
            let t = cron(expr, "UTC");
            assert_eq!(t.next_after(at("2026-01-01T00:00:00Z")), None, "{expr}");
            assert!(t.upcoming(at("2026-01-01T00:00:00Z"), 3).is_empty());
            assert!(
                t.between(at("2026-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"), 3)
                    .is_empty()
            );
        }
    }

    #[test]
    fn seed_examples() {
        assert_eq!(
            fires(&cron("*/5 * * * *", "UTC"), "2026-01-01T10:02:30Z", 3),
            [
                "2026-01-01T10:05:00Z",
                "2026-01-01T10:10:00Z",
                "2026-01-01T10:15:00Z"
            ]
        );
        assert_eq!(
            fires(&cron("0 */6 * * *", "UTC"), "2026-01-01T01:00:00Z", 4),
            [
                "2026-01-01T06:00:00Z",
                "2026-01-01T12:00:00Z",
                "2026-01-01T18:00:00Z",
                "2026-01-02T00:00:00Z",
            ]
        );
        assert_eq!(
            fires(&cron("0 3 * * *", "UTC"), "2026-01-01T03:00:00Z", 2),
            ["2026-01-02T03:00:00Z", "2026-01-03T03:00:00Z"]
        );
    }

    #[test]
    fn ranges_with_steps() {
        assert_eq!(
            fires(&cron("10-50/20 * * * *", "UTC"), "2026-01-01T10:00:00Z", 4),
            [
                "2026-01-01T10:10:00Z",
                "2026-01-01T10:30:00Z",
                "2026-01-01T10:50:00Z",
                "2026-01-01T11:10:00Z",
            ]
        );
        // `5/20` runs from 5 to the end of the field.
        assert_eq!(cron("5/20 * * * *", "UTC"), cron("5,25,45 * * * *", "UTC"));
    }

    #[test]
    fn macros() {
        let cases = [
            ("@hourly", "2026-01-01T10:30:00Z", "2026-01-01T11:00:00Z"),
            ("@daily", "2026-01-01T10:30:00Z", "2026-01-02T00:00:00Z"),
            ("@midnight", "2026-01-01T10:30:00Z", "2026-01-02T00:00:00Z"),
            // 2026-01-01 is a Thursday: the next Sunday is 01-04.
            ("@weekly", "2026-01-01T10:30:00Z", "2026-01-04T00:00:00Z"),
            ("@monthly", "2026-01-15T10:30:00Z", "2026-02-01T00:00:00Z"),
            ("@yearly", "2026-01-15T10:30:00Z", "2027-01-01T00:00:00Z"),
            ("@annually", "2026-01-15T10:30:00Z", "2027-01-01T00:00:00Z"),
            ("@DAILY", "2026-01-01T10:30:00Z", "2026-01-02T00:00:00Z"),
        ];
        for (expr, after, next) in cases {
            assert_eq!(fires(&cron(expr, "UTC"), after, 1), [next], "{expr}");
        }
        assert_eq!(cron("@weekly", "UTC"), cron("0 0 * * 0", "UTC"));
    }

    #[test]
    fn six_fields_put_seconds_first() {
        assert_eq!(
            fires(&cron("*/10 * * * * *", "UTC"), "2026-01-01T10:00:00Z", 3),
            [
                "2026-01-01T10:00:10Z",
                "2026-01-01T10:00:20Z",
                "2026-01-01T10:00:30Z"
            ]
        );
        assert_eq!(
            fires(&cron("30 15 10 * * *", "UTC"), "2026-01-01T10:00:00Z", 2),
            ["2026-01-01T10:15:30Z", "2026-01-02T10:15:30Z"]
        );
        // Five fields mean second 0.
        assert_eq!(cron("0 0 9 * * *", "UTC"), cron("0 9 * * *", "UTC"));
    }

    #[test]
    fn month_and_weekday_names() {
        let t = cron("0 12 * JAN,JUL MON-FRI", "UTC");
        assert_eq!(t, cron("0 12 * 1,7 1-5", "UTC"));
        assert_eq!(t, cron("0 12 * jan,Jul mon-FRI", "UTC"));
        // 2026-01-30 is a Friday, the last weekday of January; July starts
        // on a Wednesday.
        assert_eq!(
            fires(&t, "2026-01-30T12:00:00Z", 4),
            [
                "2026-07-01T12:00:00Z",
                "2026-07-02T12:00:00Z",
                "2026-07-03T12:00:00Z",
                "2026-07-06T12:00:00Z",
            ]
        );
    }

    #[test]
    fn fields_name_local_times() {
        // Tokyo has no DST: 09:00 JST is 00:00 UTC.
        assert_eq!(
            fires(&cron("0 9 * * *", "Asia/Tokyo"), "2026-01-01T00:00:00Z", 2),
            ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
        );
        // Weekdays are local too: Monday 08:00 in Auckland (NZDT, +13) is
        // Sunday 19:00 UTC. 2026-01-05 is a Monday.
        assert_eq!(
            fires(
                &cron("0 8 * * MON", "Pacific/Auckland"),
                "2026-01-01T00:00:00Z",
                1
            ),
            ["2026-01-04T19:00:00Z"]
        );
    }

    // --- DST: America/New_York (spring 2026-03-08 02:00 EST → 03:00 EDT at
    // 07:00Z; fall 2026-11-01 02:00 EDT → 01:00 EST at 06:00Z) ---

    #[test]
    fn new_york_spring_forward_fires_a_skipped_time_once_after_the_gap() {
        // 02:30 EST on 03-07 is 07:30Z; 02:30 does not exist on 03-08, so it
        // fires at 03:00 EDT = 07:00Z; 02:30 EDT on 03-09 is 06:30Z.
        assert_eq!(
            fires(
                &cron("30 2 * * *", "America/New_York"),
                "2026-03-06T12:00:00Z",
                3
            ),
            [
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z"
            ]
        );
    }

    #[test]
    fn new_york_spring_forward_collapses_matches_inside_the_gap() {
        // 02:00, 02:15, 02:30 and 02:45 are all skipped on 03-08: one fire
        // at 03:00 EDT (07:00Z). 03-09 02:00 EDT is 06:00Z.
        let t = cron("*/15 2 * * *", "America/New_York");
        assert_eq!(
            fires(&t, "2026-03-08T00:00:00Z", 3),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:00:00Z",
                "2026-03-09T06:15:00Z"
            ]
        );
        assert_eq!(
            show(t.between(at("2026-03-08T00:00:00Z"), at("2026-03-08T12:00:00Z"), 10)),
            ["2026-03-08T07:00:00Z"]
        );
        // Every minute: 01:59 EST (06:59Z), then the whole 02:xx hour and
        // 03:00 land on 07:00Z together, then 03:01 EDT.
        assert_eq!(
            fires(
                &cron("* * * * *", "America/New_York"),
                "2026-03-08T06:58:00Z",
                3
            ),
            [
                "2026-03-08T06:59:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T07:01:00Z"
            ]
        );
    }

    #[test]
    fn new_york_fall_back_fires_a_repeated_time_at_its_first_occurrence() {
        // 01:30 EDT (05:30Z) on 10-31 and 11-01; never 01:30 EST (06:30Z) on
        // 11-01; 01:30 EST on 11-02 is 06:30Z.
        let t = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            fires(&t, "2026-10-30T12:00:00Z", 3),
            [
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z"
            ]
        );
        // From inside the repeated hour too.
        assert_eq!(
            fires(&t, "2026-11-01T05:30:00Z", 1),
            ["2026-11-02T06:30:00Z"]
        );
        assert_eq!(
            fires(&t, "2026-11-01T06:10:00Z", 1),
            ["2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn new_york_fall_back_runs_the_repeated_hour_once() {
        // 00:30 EDT (04:30Z), 01:30 EDT (05:30Z), [01:30 EST = 06:30Z is the
        // second pass: skipped], 02:30 EST (07:30Z), 03:30 EST (08:30Z).
        let t = cron("30 * * * *", "America/New_York");
        assert_eq!(
            fires(&t, "2026-11-01T04:00:00Z", 4),
            [
                "2026-11-01T04:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-01T07:30:00Z",
                "2026-11-01T08:30:00Z",
            ]
        );
        // Searching from inside the second pass (01:00 EST, 01:30 EST).
        assert_eq!(
            fires(&t, "2026-11-01T06:00:00Z", 1),
            ["2026-11-01T07:30:00Z"]
        );
        assert_eq!(
            fires(&t, "2026-11-01T06:30:00Z", 1),
            ["2026-11-01T07:30:00Z"]
        );
        // Every minute too: after 01:59 EDT (05:59Z) comes 02:00 EST (07:00Z).
        assert_eq!(
            fires(
                &cron("* * * * *", "America/New_York"),
                "2026-11-01T05:58:00Z",
                2
            ),
            ["2026-11-01T05:59:00Z", "2026-11-01T07:00:00Z"]
        );
    }

    // --- DST: Europe/London (spring 2026-03-29 01:00 GMT → 02:00 BST; fall
    // 2026-10-25 02:00 BST → 01:00 GMT) ---

    #[test]
    fn london_both_changes() {
        let t = cron("30 1 * * *", "Europe/London");
        // 01:30 GMT = 01:30Z; 01:30 is skipped on 03-29, so 02:00 BST =
        // 01:00Z; 01:30 BST = 00:30Z.
        assert_eq!(
            fires(&t, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        // 01:30 BST = 00:30Z on 10-24 and (first occurrence) 10-25; the
        // second, 01:30 GMT = 01:30Z on 10-25, does not fire; 10-26 01:30
        // GMT = 01:30Z.
        assert_eq!(
            fires(&t, "2026-10-23T12:00:00Z", 3),
            [
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z"
            ]
        );
    }

    // --- DST: Australia/Lord_Howe, a 30-minute shift (+10:30 standard,
    // +11:00 summer). Spring 2026-10-04 02:00 → 02:30 at 2026-10-03T15:30Z;
    // fall 2026-04-05 02:00 → 01:30 at 2026-04-04T15:00Z ---

    #[test]
    fn lord_howe_spring_forward_by_half_an_hour() {
        // 10-03 02:15 +10:30 = 10-02T15:45Z; 02:15 is skipped on 10-04, so
        // 02:30 +11 = 10-03T15:30Z; 10-05 02:15 +11 = 10-04T15:15Z.
        assert_eq!(
            fires(
                &cron("15 2 * * *", "Australia/Lord_Howe"),
                "2026-10-02T00:00:00Z",
                3
            ),
            [
                "2026-10-02T15:45:00Z",
                "2026-10-03T15:30:00Z",
                "2026-10-04T15:15:00Z"
            ]
        );
    }

    #[test]
    fn lord_howe_fall_back_by_half_an_hour() {
        // 04-04 01:45 +11 = 04-03T14:45Z; on 04-05 01:45 comes first at +11
        // (04-04T14:45Z) and again at +10:30 (04-04T15:15Z, skipped);
        // 04-06 01:45 +10:30 = 04-05T15:15Z.
        assert_eq!(
            fires(
                &cron("45 1 * * *", "Australia/Lord_Howe"),
                "2026-04-03T00:00:00Z",
                3
            ),
            [
                "2026-04-03T14:45:00Z",
                "2026-04-04T14:45:00Z",
                "2026-04-05T15:15:00Z"
            ]
        );
        // Every quarter hour: 01:15, 01:30, 01:45 at +11 (14:15Z–14:45Z),
        // then 01:30–01:59 repeat at +10:30 (15:00Z–15:29Z, skipped), and
        // 02:00 +10:30 is 15:30Z.
        assert_eq!(
            fires(
                &cron("*/15 * * * *", "Australia/Lord_Howe"),
                "2026-04-04T14:00:00Z",
                4
            ),
            [
                "2026-04-04T14:15:00Z",
                "2026-04-04T14:30:00Z",
                "2026-04-04T14:45:00Z",
                "2026-04-04T15:30:00Z",
            ]
        );
    }

    #[test]
    fn a_whole_skipped_day_fires_once() {
        // Samoa skipped 2011-12-30 (23:59:59 on the 29th at -10 was followed
        // by 00:00 on the 31st at +14, at 2011-12-30T10:00Z): that day's 09:00
        // fires at the end of the gap. 12-29 09:00 -10 = 19:00Z; 12-31 09:00
        // +14 = 12-30T19:00Z.
        assert_eq!(
            fires(
                &cron("0 9 * * *", "Pacific/Apia"),
                "2011-12-29T00:00:00Z",
                3
            ),
            [
                "2011-12-29T19:00:00Z",
                "2011-12-30T10:00:00Z",
                "2011-12-30T19:00:00Z"
            ]
        );
    }

    // --- intervals ---

    #[test]
    fn every_ten_minutes_from_the_anchor() {
        let t = Timing::interval(10, IntervalUnit::Minute, "UTC", at("2026-01-01T10:00:00Z"));
        assert_eq!(
            fires(&t.unwrap(), "2026-01-01T10:00:00Z", 3),
            [
                "2026-01-01T10:10:00Z",
                "2026-01-01T10:20:00Z",
                "2026-01-01T10:30:00Z"
            ]
        );
    }

    #[test]
    fn every_5m_preset_is_due_five_minutes_after_creation() {
        // Seed 002: created 10:00, next_run_at 10:05.
        let t = Timing::preset("every_5m", "UTC", at("2026-01-01T10:00:00Z")).unwrap();
        assert_eq!(
            fires(&t, "2026-01-01T10:00:00Z", 1),
            ["2026-01-01T10:05:00Z"]
        );
    }

    #[test]
    fn presets_are_intervals() {
        let anchor = at("2026-01-01T10:00:00Z");
        let cases = [
            ("every_1m", 1, IntervalUnit::Minute),
            ("every_5m", 5, IntervalUnit::Minute),
            ("every_15m", 15, IntervalUnit::Minute),
            ("every_30m", 30, IntervalUnit::Minute),
            ("every_1h", 1, IntervalUnit::Hour),
            ("every_6h", 6, IntervalUnit::Hour),
            ("every_12h", 12, IntervalUnit::Hour),
            ("every_1d", 1, IntervalUnit::Day),
        ];
        for (name, value, unit) in cases {
            assert_eq!(
                Timing::preset(name, "Europe/London", anchor),
                Timing::interval(value, unit, "Europe/London", anchor),
                "{name}"
            );
        }
    }

    #[test]
    fn intervals_count_from_the_anchor() {
        let t =
            Timing::interval(10, IntervalUnit::Second, "UTC", at("2026-01-01T10:00:00Z")).unwrap();
        assert_eq!(
            fires(&t, "2026-01-01T10:00:25Z", 1),
            ["2026-01-01T10:00:30Z"]
        );
        assert_eq!(
            fires(&t, "2026-01-01T10:00:30Z", 1),
            ["2026-01-01T10:00:40Z"]
        );
        // Never before anchor + one interval.
        assert_eq!(
            fires(&t, "2025-12-31T00:00:00Z", 1),
            ["2026-01-01T10:00:10Z"]
        );
        // Sub-second anchors keep their fraction.
        let t =
            Timing::interval(1, IntervalUnit::Hour, "UTC", at("2026-01-01T10:00:00.25Z")).unwrap();
        assert_eq!(
            fires(&t, "2026-01-01T12:00:00Z", 1),
            ["2026-01-01T12:00:00.250Z"]
        );
    }

    #[test]
    fn daily_intervals_keep_the_local_time_of_day() {
        // Anchored at 12:00 EST (17:00Z) on 2026-03-06: noon stays noon, so
        // after spring forward it is 16:00Z.
        let anchor = at("2026-03-06T17:00:00Z");
        let daily = Timing::interval(1, IntervalUnit::Day, "America/New_York", anchor).unwrap();
        assert_eq!(
            fires(&daily, "2026-03-06T17:00:00Z", 3),
            [
                "2026-03-07T17:00:00Z",
                "2026-03-08T16:00:00Z",
                "2026-03-09T16:00:00Z"
            ]
        );
        // 24 hours is a fixed duration instead.
        let hours = Timing::interval(24, IntervalUnit::Hour, "America/New_York", anchor).unwrap();
        assert_eq!(
            fires(&hours, "2026-03-06T17:00:00Z", 2),
            ["2026-03-07T17:00:00Z", "2026-03-08T17:00:00Z"]
        );
    }

    #[test]
    fn daily_intervals_follow_the_dst_rules() {
        // Anchored at 02:30 EST (07:30Z) on 03-07: 02:30 is skipped on 03-08,
        // so 03:00 EDT (07:00Z); 02:30 EDT on 03-09 is 06:30Z.
        let t = Timing::interval(
            1,
            IntervalUnit::Day,
            "America/New_York",
            at("2026-03-07T07:30:00Z"),
        )
        .unwrap();
        assert_eq!(
            fires(&t, "2026-03-07T07:30:00Z", 2),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
        // Anchored at 01:30 EDT (05:30Z) on 10-31: the repeated 01:30 on 11-01
        // fires once, at its first occurrence.
        let t = Timing::interval(
            1,
            IntervalUnit::Day,
            "America/New_York",
            at("2026-10-31T05:30:00Z"),
        )
        .unwrap();
        assert_eq!(
            fires(&t, "2026-10-31T05:30:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        assert_eq!(
            fires(&t, "2026-11-01T06:00:00Z", 1),
            ["2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn weekly_intervals() {
        // Sunday 12:00 EST (17:00Z) on 03-01; a week later it is EDT.
        let t = Timing::interval(
            1,
            IntervalUnit::Week,
            "America/New_York",
            at("2026-03-01T17:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            fires(&t, "2026-03-01T17:00:00Z", 2),
            ["2026-03-08T16:00:00Z", "2026-03-15T16:00:00Z"]
        );
        let t = Timing::interval(2, IntervalUnit::Week, "UTC", at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            fires(&t, "2026-01-10T00:00:00Z", 2),
            ["2026-01-15T00:00:00Z", "2026-01-29T00:00:00Z"]
        );
    }

    #[test]
    fn a_zero_interval_is_refused() {
        let anchor = at("2026-01-01T00:00:00Z");
        for unit in [
            IntervalUnit::Second,
            IntervalUnit::Minute,
            IntervalUnit::Hour,
            IntervalUnit::Day,
            IntervalUnit::Week,
        ] {
            assert_eq!(
                Timing::interval(0, unit, "UTC", anchor),
                Err(TimingError::IntervalTooShort),
                "{unit:?}"
            );
        }
    }

    #[test]
    fn an_unrepresentably_long_interval_is_never_due() {
        let anchor = at("2026-01-01T00:00:00Z");
        for unit in [IntervalUnit::Hour, IntervalUnit::Week] {
            let t = Timing::interval(u64::MAX, unit, "UTC", anchor).unwrap();
            assert_eq!(t.next_after(anchor), None, "{unit:?}");
        }
    }

    #[test]
    fn interval_units_serialize_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&IntervalUnit::Week).unwrap(),
            "\"week\""
        );
        assert_eq!(
            serde_json::from_str::<IntervalUnit>("\"minute\"").unwrap(),
            IntervalUnit::Minute
        );
    }

    // --- between ---

    #[test]
    fn between_lists_the_window_oldest_first() {
        let t =
            Timing::interval(1, IntervalUnit::Second, "UTC", at("2026-01-01T10:00:00Z")).unwrap();
        let (from, to) = (at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:10Z"));
        let all = t.between(from, to, 100);
        assert_eq!(all.len(), 10);
        assert_eq!(all.first(), Some(&at("2026-01-01T10:00:01Z")));
        assert_eq!(all.last(), Some(&to));
        // The limit keeps the most recent.
        assert_eq!(
            show(t.between(from, to, 3)),
            [
                "2026-01-01T10:00:08Z",
                "2026-01-01T10:00:09Z",
                "2026-01-01T10:00:10Z"
            ]
        );
        assert!(t.between(from, to, 0).is_empty());
        assert!(t.between(to, to, 10).is_empty());
        assert!(t.between(to, from, 10).is_empty());
    }

    #[test]
    fn between_after_a_long_downtime_costs_only_the_limit() {
        // A year of every-second cron: walked backwards, so this is quick.
        let t = cron("* * * * * *", "Europe/London");
        assert_eq!(
            show(t.between(at("2025-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"), 2)),
            ["2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn between_agrees_with_next_after_across_dst() {
        let cases = [
            (
                cron("30 * * * *", "America/New_York"),
                "2026-11-01T03:00:00Z",
                "2026-11-01T10:00:00Z",
            ),
            (
                cron("* * * * *", "America/New_York"),
                "2026-11-01T05:00:00Z",
                "2026-11-01T07:30:00Z",
            ),
            (
                cron("*/15 2 * * *", "America/New_York"),
                "2026-03-07T00:00:00Z",
                "2026-03-10T00:00:00Z",
            ),
            (
                cron("* * * * *", "America/New_York"),
                "2026-03-08T06:30:00Z",
                "2026-03-08T07:30:00Z",
            ),
            (
                cron("*/15 * * * *", "Australia/Lord_Howe"),
                "2026-04-04T12:00:00Z",
                "2026-04-04T18:00:00Z",
            ),
            (
                cron("15 2 * * *", "Australia/Lord_Howe"),
                "2026-10-01T00:00:00Z",
                "2026-10-06T00:00:00Z",
            ),
            (
                cron("0 0 1 * MON", "UTC"),
                "2026-05-01T00:00:00Z",
                "2026-08-01T00:00:00Z",
            ),
            (
                cron("0 9 * * *", "Pacific/Apia"),
                "2011-12-28T00:00:00Z",
                "2012-01-02T00:00:00Z",
            ),
            (
                Timing::interval(
                    1,
                    IntervalUnit::Day,
                    "America/New_York",
                    at("2026-10-31T05:30:00Z"),
                )
                .unwrap(),
                "2026-10-30T00:00:00Z",
                "2026-11-05T00:00:00Z",
            ),
            (
                Timing::interval(
                    1,
                    IntervalUnit::Day,
                    "America/New_York",
                    at("2026-03-07T07:30:00Z"),
                )
                .unwrap(),
                "2026-03-01T00:00:00Z",
                "2026-03-12T00:00:00Z",
            ),
            (
                Timing::interval(7, IntervalUnit::Minute, "UTC", at("2026-01-01T00:00:00.5Z"))
                    .unwrap(),
                "2025-12-31T23:00:00Z",
                "2026-01-01T02:00:00Z",
            ),
        ];
        for (timing, from, to) in &cases {
            assert_between_walks_forward(timing, from, to);
        }
    }

    // --- errors ---

    #[test]
    fn invalid_cron_expressions_say_what_is_wrong() {
        let cases = [
            ("60 * * * *", "minute field: 60 is out of range 0-59"),
            ("* * *", "expected 5 or 6 fields, got 3"),
            ("0 0 32 * *", "day-of-month field: 32 is out of range 1-31"),
            ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
            ("foo", "expected 5 or 6 fields, got 1"),
            ("", "expected 5 or 6 fields, got 0"),
            ("* * * * * * *", "expected 5 or 6 fields, got 7"),
            ("0 24 * * *", "hour field: 24 is out of range 0-23"),
            ("60 * * * * *", "second field: 60 is out of range 0-59"),
            ("*/0 * * * *", "minute field: a step must be at least 1"),
            ("*/x * * * *", "minute field: step `x` is not a number"),
            (
                "50-10 * * * *",
                "minute field: range `50-10` runs backwards",
            ),
            ("1,,2 * * * *", "minute field: a value is missing"),
            (
                "0 0 * * FOO",
                "day-of-week field: `FOO` is not a valid value",
            ),
            ("0 0 * MON *", "month field: `MON` is not a valid value"),
        ];
        for (expr, message) in cases {
            assert_eq!(
                cron_error(expr),
                format!("Invalid cron expression: {message}"),
                "{expr}"
            );
        }
        assert_eq!(
            Timing::cron("@often", "UTC"),
            Err(TimingError::InvalidCron(
                "unknown macro `@often`: use @yearly, @annually, @monthly, @weekly, @daily, \
                 @midnight or @hourly"
                    .into()
            ))
        );
    }

    #[test]
    fn unknown_timezones_are_refused() {
        let anchor = at("2026-01-01T00:00:00Z");
        let unknown = Err(TimingError::UnknownTimezone("Mars/Olympus".into()));
        assert_eq!(Timing::cron("0 * * * *", "Mars/Olympus"), unknown);
        assert_eq!(
            Timing::interval(1, IntervalUnit::Day, "Mars/Olympus", anchor),
            unknown
        );
        assert_eq!(Timing::preset("every_1h", "Mars/Olympus", anchor), unknown);
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err().to_string(),
            "unknown timezone `Mars/Olympus`: use an IANA name such as `Europe/London`"
        );
        assert_eq!(
            parse_timezone("Europe/London"),
            Ok(chrono_tz::Europe::London)
        );
        assert_eq!(parse_timezone("UTC"), Ok(chrono_tz::UTC));
    }

    #[test]
    fn unknown_presets_are_refused() {
        assert_eq!(
            Timing::preset("every_2m", "UTC", at("2026-01-01T00:00:00Z")),
            Err(TimingError::UnknownPreset("every_2m".into()))
        );
    }
}
