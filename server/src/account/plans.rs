//! Plans: what an organization may use — jobs created a day and a month,
//! the shortest interval a schedule may fire at, the most retries a job may
//! have, whether the domains it pushes to must be verified. Every
//! organization is on [`UNLIMITED`] until the operator gives it another;
//! that plan limits nothing and its jobs touch no counter.
//!
//! Counts are per UTC day and calendar month, kept by the store in rows of
//! their own, raised in the transaction that creates the jobs, so two
//! servers can't both spend the last of a quota and a crash can't lose a
//! count.

use super::domains;
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use chronos_proto::Timestamp;
use std::collections::HashMap;

/// The plan every organization has until told otherwise.
pub const UNLIMITED: &str = "unlimited";

/// A plan's limits; `None` limits nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub messages_per_day: Option<u64>,
    pub messages_per_month: Option<u64>,
    pub min_interval_seconds: Option<u32>,
    pub max_retries: Option<u32>,
    pub verify_domains: bool,
}

impl Plan {
    /// The plan that limits nothing.
    pub fn unlimited() -> Self {
        Plan {
            name: UNLIMITED.into(),
            messages_per_day: None,
            messages_per_month: None,
            min_interval_seconds: None,
            max_retries: None,
            verify_domains: false,
        }
    }

    /// As the API shows it.
    pub fn to_wire(&self) -> chronos_proto::Plan {
        chronos_proto::Plan {
            name: self.name.clone(),
            messages_per_day: self.messages_per_day,
            messages_per_month: self.messages_per_month,
            min_interval_seconds: self.min_interval_seconds,
            max_retries: self.max_retries,
            verify_domains: self.verify_domains,
        }
    }

    /// Whether creating jobs is counted: the plan limits them, or the
    /// domains they push to.
    pub fn counts(&self) -> bool {
        self.messages_per_day.is_some() || self.messages_per_month.is_some() || self.verify_domains
    }

    /// `retries` as this plan allows them.
    pub fn cap_retries(&self, retries: u32) -> u32 {
        self.max_retries.map_or(retries, |max| retries.min(max))
    }

    /// How many of `n` new jobs fit in the room `used` leaves, and, when
    /// not all do, what refuses the rest (the window that runs out first).
    pub fn room(&self, usage: &Usage, n: u64) -> (u64, Option<QuotaExceeded>) {
        let mut fits = n;
        let mut refused = None;
        for (window, limit, used) in [
            (Window::Day, self.messages_per_day, usage.day),
            (Window::Month, self.messages_per_month, usage.month),
        ] {
            let Some(limit) = limit else { continue };
            let left = limit.saturating_sub(used);
            if left < fits {
                fits = left;
                let resets_at = window.resets_at(usage.at);
                let left = (resets_at.0 - usage.at.0).num_milliseconds().max(0) as u64;
                refused = Some(QuotaExceeded {
                    window,
                    limit,
                    // What the refused see: the window full, once those
                    // that fit are made.
                    used: limit,
                    resets_at,
                    seconds_left: left.div_ceil(1000).max(1),
                    domain: None,
                });
            }
        }
        (fits, refused)
    }
}

/// Jobs counted in the windows that hold `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub day: u64,
    pub month: u64,
    /// The moment the counts were read (the store's clock).
    pub at: Timestamp,
}

/// A quota's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The UTC day.
    Day,
    /// The calendar month, in UTC.
    Month,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    /// The first day of the window that holds `at`: the key of its counter.
    pub fn starts_on(self, at: Timestamp) -> NaiveDate {
        let day = at.0.date_naive();
        match self {
            Window::Day => day,
            Window::Month => day.with_day(1).expect("every month has a first"),
        }
    }

    /// When the window that holds `at` ends and the next begins.
    pub fn resets_at(self, at: Timestamp) -> Timestamp {
        let start = self.starts_on(at);
        let next = match self {
            Window::Day => start.succ_opt(),
            Window::Month => start
                .checked_add_months(chrono::Months::new(1))
                .map(|d| d.with_day(1).expect("every month has a first")),
        }
        .expect("a date after this one");
        Timestamp(Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight")))
    }
}

/// A quota spent: the window, its limit, what is used, when it resets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub window: Window,
    pub limit: u64,
    pub used: u64,
    pub resets_at: Timestamp,
    /// Whole seconds from the refusal until `resets_at` (at least 1), by
    /// the store's clock: `Retry-After`.
    pub seconds_left: u64,
    /// The unverified domain whose daily limit is spent, when that is the
    /// quota (its registrable name); `None` for the plan's own.
    pub domain: Option<String>,
}

impl QuotaExceeded {
    /// The refusal of a job for `domain`, unverified, whose day's `limit`
    /// is spent, at `at` by the store's clock.
    pub fn unverified_domain(domain: &str, limit: u64, at: Timestamp) -> Self {
        let resets_at = Window::Day.resets_at(at);
        let left = (resets_at.0 - at.0).num_milliseconds().max(0) as u64;
        QuotaExceeded {
            window: Window::Day,
            limit,
            used: limit,
            resets_at,
            seconds_left: left.div_ceil(1000).max(1),
            domain: Some(domain.to_string()),
        }
    }

    /// The error's code: `quota_exceeded`, or `unverified_domain_limit`.
    pub fn code(&self) -> &'static str {
        match self.domain {
            None => "quota_exceeded",
            Some(_) => "unverified_domain_limit",
        }
    }

    /// Seed 004's message.
    pub fn message(&self) -> String {
        match (&self.domain, self.window) {
            (Some(domain), _) => format!(
                "Daily limit for unverified domain {domain} reached ({} a day): verify it with POST /v1/domains to send more",
                self.limit
            ),
            (None, Window::Day) => "Daily message limit reached".into(),
            (None, Window::Month) => "Monthly message limit reached".into(),
        }
    }

    /// The error a refused create answers with and a skipped schedule fire
    /// records: `quota_exceeded`, with the window's figures.
    pub fn to_detail(&self) -> chronos_proto::ErrorDetail {
        chronos_proto::ErrorDetail {
            window: Some(self.window.as_str().into()),
            limit: Some(self.limit),
            used: Some(self.used),
            resets_at: Some(self.resets_at),
            domain: self.domain.clone(),
            ..chronos_proto::ErrorDetail::new(self.code(), self.message())
        }
    }

    /// `RateLimit-Policy` and `RateLimit` (the IETF's structured fields):
    /// the window's quota and length, and nothing left until it resets.
    pub fn rate_limit_headers(&self) -> [(&'static str, String); 2] {
        let name = self.window.as_str();
        let length = match self.window {
            Window::Day => 86_400,
            // The month that ends at `resets_at`.
            Window::Month => {
                let last_day = Timestamp(self.resets_at.0 - chrono::Duration::days(1));
                (self.resets_at.0.date_naive() - self.window.starts_on(last_day)).num_seconds()
            }
        };
        [
            (
                "ratelimit-policy",
                format!("\"{name}\";q={};w={length}", self.limit),
            ),
            (
                "ratelimit",
                format!("\"{name}\";r=0;t={}", self.seconds_left),
            ),
        ]
    }
}

/// What one transaction spends of an organization's plan: the counts it
/// read (and locked, on PostgreSQL), what it has added, and the days of
/// the unverified domains it pushed to. The stores read and write the
/// counts; this decides what fits, the same way for both.
#[derive(Clone, Debug)]
pub struct Tally {
    pub plan: Plan,
    usage: Usage,
    spent: u64,
    /// The organization's verified domains (read when the plan requires
    /// verification).
    verified: Vec<String>,
    /// By registrable name: today's count as read, and what was added.
    unverified: HashMap<String, (u64, u64)>,
}

impl Tally {
    /// A plan that counts nothing ([`Plan::counts`]): no counts were read.
    pub fn uncounted(plan: Plan) -> Self {
        let usage = Usage {
            day: 0,
            month: 0,
            at: Timestamp::now(),
        };
        Tally::new(plan, usage, Vec::new())
    }

    pub fn new(plan: Plan, usage: Usage, verified: Vec<String>) -> Self {
        Tally {
            plan,
            usage,
            spent: 0,
            verified,
            unverified: HashMap::new(),
        }
    }

    /// The unverified domain a job pushing to `host` counts against, when
    /// the plan requires verification.
    fn domain_of(&self, host: Option<&str>) -> Option<String> {
        let host = host.filter(|_| self.plan.verify_domains)?;
        domains::unverified_key(&self.verified, host)
    }

    /// The domain whose day must be read before [`Tally::room`] can answer
    /// for `host`, if it has not been read yet.
    pub fn unread_domain(&self, host: Option<&str>) -> Option<String> {
        self.domain_of(host)
            .filter(|key| !self.unverified.contains_key(key))
    }

    /// Today's count of `key`, as read.
    pub fn read_domain(&mut self, key: String, used: u64) {
        self.unverified.entry(key).or_insert((used, 0));
    }

    /// How many of `n` more jobs, pushing to `host` if they push, fit, and
    /// what refuses the rest if not all do. The host's domain must have
    /// been read ([`Tally::unread_domain`]).
    pub fn room(&self, host: Option<&str>, n: u64) -> (u64, Option<QuotaExceeded>) {
        if !self.plan.counts() {
            return (n, None);
        }
        let usage = Usage {
            day: self.usage.day + self.spent,
            month: self.usage.month + self.spent,
            at: self.usage.at,
        };
        let (mut fits, mut refusal) = self.plan.room(&usage, n);
        if let Some(key) = self.domain_of(host) {
            let (used, spent) = self.unverified.get(&key).copied().unwrap_or_default();
            let left = domains::UNVERIFIED_PER_DAY.saturating_sub(used + spent);
            if left < fits {
                fits = left;
                refusal = Some(QuotaExceeded::unverified_domain(
                    &key,
                    domains::UNVERIFIED_PER_DAY,
                    usage.at,
                ));
            }
        }
        (fits, refusal)
    }

    /// `n` jobs pushing to `host` (if they push) were made; negative gives
    /// back room taken and not used.
    pub fn spend(&mut self, host: Option<&str>, n: i64) {
        self.spent = self.spent.saturating_add_signed(n);
        if let Some(key) = self.domain_of(host) {
            let count = self.unverified.entry(key).or_default();
            count.1 = count.1.saturating_add_signed(n);
        }
    }

    /// Jobs made, to add to the day's and the month's counts.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// The unverified domains jobs were made for, and how many each.
    pub fn domains_spent(&self) -> impl Iterator<Item = (&str, u64)> {
        self.unverified
            .iter()
            .filter(|(_, (_, spent))| *spent > 0)
            .map(|(key, (_, spent))| (key.as_str(), *spent))
    }

    /// When the counts were read, by the store's clock: what day and
    /// month they are of.
    pub fn at(&self) -> Timestamp {
        self.usage.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(per_day: Option<u64>, verify_domains: bool) -> Plan {
        Plan {
            name: "p".into(),
            messages_per_day: per_day,
            messages_per_month: None,
            min_interval_seconds: None,
            max_retries: None,
            verify_domains,
        }
    }

    fn at() -> Timestamp {
        Timestamp("2026-12-07T12:00:00Z".parse().unwrap())
    }

    #[test]
    fn a_tally_gives_the_room_of_the_plan_and_of_each_unverified_domain() {
        let usage = Usage {
            day: 3,
            month: 3,
            at: at(),
        };
        let mut tally = Tally::new(plan(Some(20), true), usage, vec!["example.com".into()]);
        // A verified domain and a pull job count against the plan only.
        assert_eq!(tally.unread_domain(Some("a.example.com:443")), None);
        assert_eq!(tally.room(None, 30).0, 17);
        // An unverified one must be read first, then has its ten.
        let host = Some("hooks.other.net:443");
        assert_eq!(tally.unread_domain(host).as_deref(), Some("other.net"));
        tally.read_domain("other.net".into(), 8);
        assert_eq!(tally.unread_domain(host), None);
        let (fits, refusal) = tally.room(host, 5);
        assert_eq!(fits, 2);
        let refusal = refusal.unwrap();
        assert_eq!(refusal.domain.as_deref(), Some("other.net"));
        assert_eq!((refusal.limit, refusal.used), (10, 10));
        tally.spend(host, 2);
        assert_eq!(tally.room(host, 1).0, 0);
        // Room taken and not used is given back.
        tally.spend(host, -1);
        assert_eq!(tally.room(host, 1).0, 1);
        assert_eq!(tally.spent(), 1);
        assert_eq!(
            tally.domains_spent().collect::<Vec<_>>(),
            [("other.net", 1)]
        );
    }

    #[test]
    fn an_uncounted_plan_gives_all_room() {
        let tally = Tally::uncounted(plan(None, false));
        assert_eq!(tally.room(Some("x.example.com"), 1000), (1000, None));
        assert_eq!(tally.unread_domain(Some("x.example.com")), None);
    }
}
