//! Endpoint health: where an organization's push deliveries go — a scheme,
//! host and port — and whether they are worth trying. Consecutive failures
//! there (timeouts, connection errors, 5xx, 408 and 429 answers) are
//! counted per organization, so one organization's failures never hold
//! another's deliveries; when an endpoint has failed for longer than the
//! operator's threshold with no success, it is disabled and its
//! deliveries are held (`scheduled`, `held_reason: "endpoint_disabled"`)
//! without spending attempts, until it is enabled again.
//!
//! The push dispatcher reports each attempt ([`Report`]); reports are
//! tallied per endpoint and written about once a second ([`Tally`]); the
//! rules that turn a tally into the endpoint's next state are
//! [`Health::after`], here, with no I/O.

use chronos_proto::Timestamp;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

use crate::account::OrgId;

/// What a held delivery's `held_reason` says.
pub const HELD_ENDPOINT_DISABLED: &str = "endpoint_disabled";

/// The default threshold: failing for a day with no success.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Where deliveries go: the scheme, and the host and port as the push
/// dispatcher keys its slots (`host:port`, the jobs' `target_host`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    pub scheme: String,
    /// `host:port`, the host lowercased, the port explicit.
    pub target_host: String,
}

impl EndpointKey {
    /// The endpoint of a target URL; `None` for one without a host.
    pub fn of(url: &str) -> Option<Self> {
        Self::of_url(&url::Url::parse(url).ok()?)
    }

    /// [`EndpointKey::of`] a URL already parsed.
    pub fn of_url(url: &url::Url) -> Option<Self> {
        Some(EndpointKey {
            scheme: url.scheme().to_ascii_lowercase(),
            target_host: crate::job::host_port(url)?,
        })
    }

    /// `https://host:port`, as the API shows it.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.target_host)
    }

    /// The host alone (an IPv6 literal keeps its brackets).
    pub fn host(&self) -> &str {
        self.target_host
            .rsplit_once(':')
            .map_or(&self.target_host, |(h, _)| h)
    }

    pub fn port(&self) -> u16 {
        self.target_host
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0)
    }
}

/// What one attempt says of its endpoint's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The endpoint answered, with anything but 5xx, 408 or 429: it is up,
    /// whatever it thought of this request.
    Answered,
    /// A timeout, a connection error, or a 5xx, 408 or 429 answer.
    Failed(String),
}

impl Verdict {
    /// The verdict on an answer's status.
    pub fn of_status(status: u16, error: impl FnOnce() -> String) -> Self {
        match status {
            408 | 429 | 500..=599 => Verdict::Failed(error()),
            _ => Verdict::Answered,
        }
    }
}

/// One attempt's verdict on its endpoint, as the dispatcher reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub org: OrgId,
    pub endpoint: EndpointKey,
    pub verdict: Verdict,
}

/// Attempts at one endpoint since the last write, in the order they ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Some attempt got an answer: the failures before it don't count.
    pub answered: bool,
    /// Failures since the last answer (or since the last write).
    pub failures: u32,
    /// The last failure's error.
    pub last_error: Option<String>,
}

impl Tally {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Answered => {
                self.answered = true;
                self.failures = 0;
            }
            Verdict::Failed(error) => {
                self.failures += 1;
                self.last_error = Some(error);
            }
        }
    }
}

/// Reports gathered between writes, tallied per organization and endpoint.
#[derive(Default)]
pub struct Tallies(HashMap<(OrgId, EndpointKey), Tally>);

impl Tallies {
    pub fn add(&mut self, report: Report) {
        self.0
            .entry((report.org, report.endpoint))
            .or_default()
            .add(report.verdict);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tallies, sorted by organization and endpoint: the order the
    /// store locks their rows in, so two servers writing at once don't
    /// deadlock.
    pub fn take(&mut self) -> Vec<((OrgId, EndpointKey), Tally)> {
        let mut all: Vec<_> = std::mem::take(&mut self.0).into_iter().collect();
        all.sort_by(|a, b| (a.0.0.0, &a.0.1).cmp(&(b.0.0.0, &b.0.1)));
        all
    }
}

/// The operator's threshold (`chronos serve --endpoint-disable-after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Disable an endpoint that has failed for this long with no success;
    /// `None`: never.
    pub disable_after: Option<Duration>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            disable_after: Some(DEFAULT_DISABLE_AFTER),
        }
    }
}

/// An endpoint's health as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Consecutive failures, the last `failures` attempts.
    pub failures: u64,
    /// When the current run of failures began.
    pub failing_since: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// When it was disabled, and why.
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    /// Since when it has been healthy (first seen, recovered, or enabled).
    pub healthy_since: Option<Timestamp>,
}

/// What writing a tally did to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing that needs a write (an answer at a healthy endpoint).
    None,
    /// Its counts changed.
    Counted,
    /// It crossed the threshold: its deliveries are to be held.
    Disabled,
    /// An answer came (from an attempt in flight when it was disabled):
    /// its held deliveries are to be released.
    Recovered,
}

impl Health {
    /// An endpoint never seen before, as of `now`.
    pub fn new(now: Timestamp) -> Self {
        Health {
            failures: 0,
            failing_since: None,
            last_failure_at: None,
            last_error: None,
            disabled_at: None,
            disabled_reason: None,
            healthy_since: Some(now),
        }
    }

    /// The endpoint's health after `tally`, at `now` (the store's clock),
    /// and what changed. The one place the rules are written.
    pub fn after(&self, tally: &Tally, now: Timestamp, policy: HealthPolicy) -> (Health, Change) {
        let mut next = self.clone();
        let mut recovered = false;
        if tally.answered {
            recovered = next.disabled_at.is_some();
            if next.failures > 0 || recovered {
                next.healthy_since = Some(now);
            }
            next.failures = 0;
            next.failing_since = None;
            next.disabled_at = None;
            next.disabled_reason = None;
        }
        if tally.failures > 0 {
            next.failures += u64::from(tally.failures);
            next.failing_since.get_or_insert(now);
            next.healthy_since = None;
            next.last_failure_at = Some(now);
            next.last_error = tally.last_error.clone();
        }
        let due = match (policy.disable_after, next.failing_since) {
            (Some(after), Some(since)) => {
                (now.0 - since.0).to_std().unwrap_or(Duration::ZERO) >= after
            }
            _ => false,
        };
        let disabled = next.disabled_at.is_none() && tally.failures > 0 && due;
        if disabled {
            next.disabled_at = Some(now);
            next.disabled_reason = Some(format!(
                "{} consecutive failures since {} with no success; the last: {}",
                next.failures,
                next.failing_since
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                next.last_error.as_deref().unwrap_or("unknown")
            ));
        }
        let change = if disabled {
            Change::Disabled
        } else if recovered {
            Change::Recovered
        } else if next != *self {
            Change::Counted
        } else {
            Change::None
        };
        (next, change)
    }

    /// `healthy`, `failing` or `disabled`.
    pub fn status(&self) -> chronos_proto::EndpointStatus {
        use chronos_proto::EndpointStatus;
        if self.disabled_at.is_some() {
            EndpointStatus::Disabled
        } else if self.failures > 0 {
            EndpointStatus::Failing
        } else {
            EndpointStatus::Healthy
        }
    }
}

/// An endpoint as stored, with how many of its deliveries are held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRecord {
    pub id: Uuid,
    pub endpoint: EndpointKey,
    pub health: Health,
    pub held: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What enabling an endpoint did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enabled {
    /// Enabled (or already healthy), and this many held deliveries released.
    Done(Box<EndpointRecord>, u64),
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(hours: i64) -> Timestamp {
        Timestamp(Utc.timestamp_opt(1_800_000_000 + hours * 3600, 0).unwrap())
    }

    fn failed(n: u32) -> Tally {
        Tally {
            answered: false,
            failures: n,
            last_error: Some("the target answered 503".into()),
        }
    }

    const DAY: HealthPolicy = HealthPolicy {
        disable_after: Some(DEFAULT_DISABLE_AFTER),
    };

    #[test]
    fn a_day_of_failures_with_no_success_disables() {
        let (h, c) = Health::new(at(0)).after(&failed(1), at(0), DAY);
        assert_eq!(
            (h.failures, h.failing_since, c),
            (1, Some(at(0)), Change::Counted)
        );
        let (h, c) = h.after(&failed(3), at(23), DAY);
        assert_eq!((h.failures, c), (4, Change::Counted), "23 h is not a day");
        let (h, c) = h.after(&failed(1), at(24), DAY);
        assert_eq!(c, Change::Disabled);
        assert_eq!(h.status(), chronos_proto::EndpointStatus::Disabled);
        assert!(
            h.disabled_reason
                .unwrap()
                .contains("5 consecutive failures")
        );
    }

    #[test]
    fn an_answer_restarts_the_count() {
        let (h, _) = Health::new(at(0)).after(&failed(2), at(0), DAY);
        let answered_then_failed = Tally {
            answered: true,
            ..failed(1)
        };
        // The tally says the failure came after the answer: the run
        // begins again now.
        let (h, c) = h.after(&answered_then_failed, at(30), DAY);
        assert_eq!(
            (h.failures, h.failing_since, c),
            (1, Some(at(30)), Change::Counted)
        );
        let answered = Tally {
            answered: true,
            failures: 0,
            last_error: None,
        };
        let (h, c) = h.after(&answered, at(31), DAY);
        assert_eq!(
            (h.failures, h.healthy_since, c),
            (0, Some(at(31)), Change::Counted)
        );
        assert_eq!(h.after(&answered, at(32), DAY).1, Change::None, "no write");
    }

    #[test]
    fn an_answer_at_a_disabled_endpoint_recovers_it() {
        let (h, c) =
            Health::new(at(0))
                .after(&failed(1), at(0), DAY)
                .0
                .after(&failed(1), at(25), DAY);
        assert_eq!(c, Change::Disabled);
        let answered = Tally {
            answered: true,
            failures: 0,
            last_error: None,
        };
        let (h, c) = h.after(&answered, at(26), DAY);
        assert_eq!((c, h.disabled_at), (Change::Recovered, None));
        // Failing again while disabled changes counts, not the state.
        let never = HealthPolicy {
            disable_after: None,
        };
        let (h, c) = h.after(&failed(1), at(100), never);
        assert_eq!((h.failures, c), (1, Change::Counted), "never disables");
    }

    #[test]
    fn tallies_keep_only_failures_after_the_last_answer() {
        let org = OrgId(Uuid::nil());
        let key = EndpointKey::of("https://Example.com/hook").unwrap();
        assert_eq!(key.target_host, "example.com:443");
        assert_eq!((key.host(), key.port()), ("example.com", 443));
        let mut t = Tallies::default();
        for verdict in [
            Verdict::Failed("a".into()),
            Verdict::Answered,
            Verdict::Failed("b".into()),
            Verdict::Failed("c".into()),
        ] {
            t.add(Report {
                org,
                endpoint: key.clone(),
                verdict,
            });
        }
        let all = t.take();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].1,
            Tally {
                answered: true,
                failures: 2,
                last_error: Some("c".into())
            }
        );
        assert!(t.is_empty());
    }
}
