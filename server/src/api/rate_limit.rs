//! Rate limits on logins and sign-ups, per account and per client address:
//! what slows down guessing passwords and mass sign-ups.
//!
//! The counts are in memory, per server process: each replica counts its
//! own, so behind a load balancer over N replicas a client may get up to N
//! times a quota. That still bounds guessing, and needs no store round trip
//! on the login path. Limiters are GCRA buckets ([`governor`]): a quota of
//! 10 per 15 minutes with a burst of 10 allows 10 at once, then one more
//! every 90 seconds.
//!
//! Every key ever checked holds a small entry until [`RateLimits::prune`]
//! drops those whose bucket is full again; the server calls it every minute
//! so memory stays bounded by the keys seen within about a quota's period.

use super::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// `count` events per `per`, of which up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `count` per `per`, all of them at once if need be.
    pub const fn new(count: NonZeroU32, per: Duration) -> Self {
        Rate {
            count,
            per,
            burst: count,
        }
    }

    fn quota(&self, name: &'static str) -> Result<Quota, RateLimitError> {
        Quota::with_period(self.per / self.count.get())
            .map(|quota| quota.allow_burst(self.burst))
            .ok_or(RateLimitError::ZeroPeriod(name))
    }
}

const TEN: NonZeroU32 = NonZeroU32::new(10).expect("10 is not zero");
const THIRTY: NonZeroU32 = NonZeroU32::new(30).expect("30 is not zero");

/// The quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Login attempts naming one account, from anywhere: what stops a
    /// distributed guess at one password. Default 10 per 15 minutes.
    pub login_per_account: Rate,
    /// Login attempts from one client address, for any accounts: what stops
    /// one client trying one password on many accounts. Default 30 per 15
    /// minutes.
    pub login_per_address: Rate,
    /// Sign-ups from one client address. Default 10 per hour.
    pub signup_per_address: Rate,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            login_per_account: Rate::new(TEN, Duration::from_secs(15 * 60)),
            login_per_address: Rate::new(THIRTY, Duration::from_secs(15 * 60)),
            signup_per_address: Rate::new(TEN, Duration::from_secs(60 * 60)),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit {0}: the period must be longer than zero")]
    ZeroPeriod(&'static str),
}

/// Which limit to count against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    LoginPerAccount,
    LoginPerAddress,
    SignupPerAddress,
}

/// Refused: try again after this long (whole seconds, at least one, as a
/// `Retry-After` header says it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    fn rounded_up(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        RetryAfter(Duration::from_secs(secs.max(1)))
    }

    /// For the `Retry-After` header.
    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
}

type Limiter<C> =
    RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The server's limiters. Generic over the clock so tests can move time.
pub struct RateLimits<C: Clock = DefaultClock> {
    login_per_account: Limiter<C>,
    login_per_address: Limiter<C>,
    signup_per_address: Limiter<C>,
    clock: C,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Limiters reading `clock` (all three share it).
    pub fn with_clock(config: &RateLimitConfig, clock: C) -> Result<Self, RateLimitError> {
        let limiter = |rate: &Rate, name| -> Result<Limiter<C>, RateLimitError> {
            Ok(RateLimiter::new(
                rate.quota(name)?,
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ))
        };
        Ok(RateLimits {
            login_per_account: limiter(&config.login_per_account, "login_per_account")?,
            login_per_address: limiter(&config.login_per_address, "login_per_address")?,
            signup_per_address: limiter(&config.signup_per_address, "signup_per_address")?,
            clock,
        })
    }
}

impl<C: Clock> RateLimits<C> {
    fn limiter(&self, limit: Limit) -> &Limiter<C> {
        match limit {
            Limit::LoginPerAccount => &self.login_per_account,
            Limit::LoginPerAddress => &self.login_per_address,
            Limit::SignupPerAddress => &self.signup_per_address,
        }
    }

    /// Counts one event for `key` against `limit`, or refuses it (and then
    /// does not count it). Keys are compared as given: the caller
    /// normalizes them (an e-mail lowercased, an address in one form).
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        self.limiter(limit)
            .check_key(&key.to_string())
            .map_err(|not_until| RetryAfter::rounded_up(not_until.wait_time_from(self.clock.now())))
    }

    /// [`RateLimits::check`], refused as the API answers it: 429
    /// `rate_limited` saying `too many {what}`, with `Retry-After`.
    pub fn enforce(&self, limit: Limit, key: &str, what: &str) -> Result<(), ApiError> {
        self.check(limit, key)
            .map_err(|wait| ApiError::TooManyRequests {
                message: format!("too many {what}; try again in {} s", wait.as_secs()),
                retry_after: wait,
            })
    }

    /// Forgets keys whose buckets have refilled (they would act as new
    /// ones), and gives the memory back. Call it every minute or so.
    pub fn prune(&self) {
        for limiter in [
            &self.login_per_account,
            &self.login_per_address,
            &self.signup_per_address,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many keys `limit` holds now.
    pub fn len(&self, limit: Limit) -> usize {
        self.limiter(limit).len()
    }

    pub fn is_empty(&self) -> bool {
        self.login_per_account.is_empty()
            && self.login_per_address.is_empty()
            && self.signup_per_address.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits() -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&RateLimitConfig::default(), clock.clone()).unwrap();
        (limits, clock)
    }

    #[test]
    fn the_eleventh_login_for_one_account_waits() {
        let (limits, clock) = limits();
        for attempt in 1..=10 {
            assert_eq!(
                limits.check(Limit::LoginPerAccount, "ada@example.com"),
                Ok(()),
                "attempt {attempt}"
            );
        }
        let RetryAfter(wait) = limits
            .check(Limit::LoginPerAccount, "ada@example.com")
            .unwrap_err();
        // One attempt comes back every 15 minutes / 10.
        assert_eq!(wait, Duration::from_secs(90));

        // Other accounts, and the other limits, are unaffected.
        assert_eq!(
            limits.check(Limit::LoginPerAccount, "bob@example.com"),
            Ok(())
        );
        assert_eq!(
            limits.check(Limit::LoginPerAddress, "ada@example.com"),
            Ok(())
        );

        // Part of the wait later, the rest of it, rounded up.
        clock.advance(Duration::from_millis(30_500));
        assert_eq!(
            limits.check(Limit::LoginPerAccount, "ada@example.com"),
            Err(RetryAfter(Duration::from_secs(60)))
        );
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            limits.check(Limit::LoginPerAccount, "ada@example.com"),
            Ok(())
        );
        assert!(
            limits
                .check(Limit::LoginPerAccount, "ada@example.com")
                .is_err()
        );
    }

    #[test]
    fn each_limit_has_its_quota() {
        let (limits, _) = limits();
        let allowed = |limit, key| {
            (0..100)
                .take_while(|_| limits.check(limit, key).is_ok())
                .count()
        };
        assert_eq!(allowed(Limit::LoginPerAccount, "k"), 10);
        assert_eq!(allowed(Limit::LoginPerAddress, "k"), 30);
        assert_eq!(allowed(Limit::SignupPerAddress, "k"), 10);
        let RetryAfter(wait) = limits.check(Limit::SignupPerAddress, "k").unwrap_err();
        assert_eq!(wait, Duration::from_secs(6 * 60));
    }

    #[test]
    fn quotas_are_configurable() {
        let config = RateLimitConfig {
            login_per_account: Rate {
                count: NonZeroU32::new(2).unwrap(),
                per: Duration::from_secs(10),
                burst: NonZeroU32::new(1).unwrap(),
            },
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(&config).unwrap();
        assert_eq!(limits.check(Limit::LoginPerAccount, "k"), Ok(()));
        assert_eq!(
            limits.check(Limit::LoginPerAccount, "k"),
            Err(RetryAfter(Duration::from_secs(5)))
        );

        let zero = RateLimitConfig {
            signup_per_address: Rate::new(TEN, Duration::ZERO),
            ..RateLimitConfig::default()
        };
        assert_eq!(
            RateLimits::new(&zero).err(),
            Some(RateLimitError::ZeroPeriod("signup_per_address"))
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(RetryAfter::rounded_up(Duration::ZERO).as_secs(), 1);
        assert_eq!(
            RetryAfter::rounded_up(Duration::from_millis(1)).as_secs(),
            1
        );
        assert_eq!(RetryAfter::rounded_up(Duration::from_secs(2)).as_secs(), 2);
        assert_eq!(
            RetryAfter::rounded_up(Duration::from_millis(2001)).as_secs(),
            3
        );
    }

    #[test]
    fn prune_forgets_refilled_keys() {
        let (limits, clock) = limits();
        for i in 0..1000 {
            let key = format!("10.0.{}.{}", i / 256, i % 256);
            assert_eq!(limits.check(Limit::LoginPerAddress, &key), Ok(()));
        }
        for _ in 0..10 {
            assert_eq!(
                limits.check(Limit::LoginPerAccount, "ada@example.com"),
                Ok(())
            );
        }
        assert_eq!(limits.len(Limit::LoginPerAddress), 1000);

        // Too soon: every bucket still differs from a full one.
        limits.prune();
        assert_eq!(limits.len(Limit::LoginPerAddress), 1000);

        // governor keeps a key one interval past its refill: an address's
        // one attempt refills in 30 s, so it goes after 60 s; the exhausted
        // account (15 minutes to refill, 90 s interval) stays.
        clock.advance(Duration::from_secs(61));
        limits.prune();
        assert_eq!(limits.len(Limit::LoginPerAddress), 0);
        assert_eq!(limits.len(Limit::LoginPerAccount), 1);
        // Pruned or not, the exhausted account is still limited.
        assert!(
            limits
                .check(Limit::LoginPerAccount, "ada@example.com")
                .is_err()
        );

        clock.advance(Duration::from_secs(16 * 60));
        limits.prune();
        assert!(limits.is_empty());
    }
}
