//! Per-destination rate limits (token buckets) and `Retry-After` pauses.
//!
//! Each destination key (a Slack channel, a PagerDuty routing key, an SMTP relay, ...) has its
//! own bucket, so a slow or rate-limited destination never delays another one.
//!
//! The bucket is implemented as GCRA (the "virtual scheduling" form of a token bucket): one
//! `Instant` per key, the theoretical arrival time (TAT) of the next conforming request. It
//! allows the same bursts as a bucket of `capacity` tokens refilled at `capacity / per`, but
//! with integer `Duration` arithmetic (no float drift) and a state that is obviously "full"
//! once `TAT <= now`, which is what lets idle keys be dropped to bound memory.
//!
//! Time is passed in (`now: Instant`), so tests drive it with synthetic instants.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Rebuild the map without idle keys once it holds this many entries (and afterwards at twice
/// the surviving size), so a stream of one-off keys cannot grow memory without bound.
const MIN_SWEEP_LEN: usize = 1024;

/// `capacity` sends per `per`, with bursts of up to `capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Burst size and sends per period. 0 is treated as 1: a limit that never allows anything
    /// would strand deliveries silently.
    pub capacity: u32,
    /// The period. Zero means unlimited (only pauses apply).
    pub per: Duration,
}

impl Limit {
    /// Slack: one message per second per channel (incoming webhooks and chat.postMessage).
    pub const SLACK_CHANNEL: Limit = Limit::new(1, Duration::from_secs(1));
    /// PagerDuty Events API v2: about 120 events per minute per routing key.
    pub const PAGERDUTY_ROUTING_KEY: Limit = Limit::new(120, Duration::from_secs(60));

    pub const fn new(capacity: u32, per: Duration) -> Limit {
        Limit { capacity, per }
    }

    /// Time between sends at the steady rate.
    fn interval(self) -> Duration {
        self.per / self.capacity.max(1)
    }

    /// How far ahead of `now` the TAT may run: `capacity` intervals. Computed from the
    /// (truncated) interval rather than taken as `per`, so a burst never exceeds `capacity`.
    fn burst(self) -> Duration {
        self.interval().saturating_mul(self.capacity.max(1))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Theoretical arrival time: the bucket is full when `tat <= now`.
    tat: Instant,
    /// Set by a 429 `Retry-After`; nothing is allowed before it.
    paused_until: Option<Instant>,
}

/// Token buckets for any number of destination keys.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<String, Bucket>,
    /// Configured overrides by key prefix (a full key is its own prefix); longest match wins.
    limits: Vec<(String, Limit)>,
    /// Sweep idle buckets when `buckets.len()` reaches this.
    sweep_at: usize,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter {
            buckets: HashMap::new(),
            limits: Vec::new(),
            sweep_at: MIN_SWEEP_LEN,
        }
    }

    /// Sets the limit for every key starting with `key_prefix_or_key` (e.g. `slack:` for all
    /// Slack channels, each with its own bucket, or `slack:#paiid-alerts` for one channel).
    /// The longest matching prefix wins; configuring the same prefix again replaces it.
    /// Configured limits take precedence over the `limit` passed to [`Self::try_acquire`],
    /// which is the channel's built-in default.
    pub fn configure(&mut self, key_prefix_or_key: impl Into<String>, limit: Limit) {
        let prefix = key_prefix_or_key.into();
        match self.limits.iter_mut().find(|(p, _)| *p == prefix) {
            Some(entry) => entry.1 = limit,
            None => self.limits.push((prefix, limit)),
        }
    }

    /// The limit that applies to `key`: the longest configured prefix, else `default`.
    pub fn limit_for(&self, key: &str, default: Limit) -> Limit {
        self.limits
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(default, |(_, limit)| *limit)
    }

    /// Takes a token for `key` if one is available at `now`; otherwise returns how long until
    /// one is (or until a pause ends). A refused call consumes nothing, so retrying after the
    /// returned wait succeeds unless someone else took the token first.
    pub fn try_acquire(&mut self, key: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        let limit = self.limit_for(key, limit);
        let existing = self.buckets.get(key).copied();

        if let Some(until) = existing.and_then(|b| b.paused_until)
            && until > now
        {
            return Err(until.saturating_duration_since(now));
        }
        if limit.per.is_zero() {
            return Ok(());
        }

        let tat = existing.map_or(now, |b| b.tat.max(now));
        // Instant overflow would need a TAT centuries ahead; refuse for one period rather than
        // panic.
        let Some(new_tat) = tat.checked_add(limit.interval()) else {
            return Err(limit.per);
        };
        // The request conforms when new_tat - burst <= now. If the subtraction underflows the
        // earliest representable Instant, it is certainly in the past.
        if let Some(allowed_at) = new_tat.checked_sub(limit.burst())
            && allowed_at > now
        {
            return Err(allowed_at.saturating_duration_since(now));
        }

        if existing.is_none() {
            self.maybe_sweep(now);
        }
        self.buckets.insert(
            key.to_string(),
            Bucket {
                tat: new_tat,
                paused_until: None,
            },
        );
        Ok(())
    }

    /// Stops all sends to `key` until `until` (a 429's `Retry-After`). Later pauses extend,
    /// earlier ones never shorten. When the pause ends the bucket starts empty and refills at
    /// the normal rate, so the destination is not hit with a full burst the moment it allows
    /// traffic again.
    pub fn pause_until(&mut self, key: &str, until: Instant) {
        match self.buckets.get_mut(key) {
            Some(bucket) => {
                bucket.paused_until = Some(bucket.paused_until.map_or(until, |p| p.max(until)));
                bucket.tat = bucket.tat.max(until);
            }
            None => {
                self.buckets.insert(
                    key.to_string(),
                    Bucket {
                        tat: until,
                        paused_until: Some(until),
                    },
                );
            }
        }
    }

    /// Drops buckets that are full again (their state equals a fresh bucket's).
    pub fn prune(&mut self, now: Instant) {
        // A pause always moves `tat` to at least its end, so `tat > now` covers active pauses.
        self.buckets.retain(|_, bucket| bucket.tat > now);
    }

    /// Number of keys currently tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn maybe_sweep(&mut self, now: Instant) {
        if self.buckets.len() < self.sweep_at {
            return;
        }
        self.prune(now);
        // Doubling keeps sweeps amortised O(1) per insert even when most keys are active.
        self.sweep_at = self.buckets.len().saturating_mul(2).max(MIN_SWEEP_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn slack_one_per_second_per_channel() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::SLACK_CHANNEL;
        assert_eq!(rl.try_acquire("slack:#a", l, t0), Ok(()));
        assert_eq!(rl.try_acquire("slack:#a", l, t0), Err(ms(1000)));
        assert_eq!(rl.try_acquire("slack:#a", l, t0 + ms(400)), Err(ms(600)));
        // Refused calls consume nothing: exactly at the returned wait it succeeds.
        assert_eq!(rl.try_acquire("slack:#a", l, t0 + ms(1000)), Ok(()));
        assert_eq!(rl.try_acquire("slack:#a", l, t0 + ms(1000)), Err(ms(1000)));
        // Idle time does not accumulate beyond the capacity of 1.
        assert_eq!(rl.try_acquire("slack:#a", l, t0 + ms(10_000)), Ok(()));
        assert_eq!(
            rl.try_acquire("slack:#a", l, t0 + ms(10_000)),
            Err(ms(1000))
        );
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::SLACK_CHANNEL;
        assert_eq!(rl.try_acquire("slack:#a", l, t0), Ok(()));
        assert_eq!(rl.try_acquire("slack:#b", l, t0), Ok(()));
        assert_eq!(
            rl.try_acquire("pagerduty:k", Limit::PAGERDUTY_ROUTING_KEY, t0),
            Ok(())
        );
        rl.pause_until("slack:#a", t0 + Duration::from_secs(30));
        assert!(rl.try_acquire("slack:#a", l, t0 + ms(1000)).is_err());
        assert_eq!(rl.try_acquire("slack:#b", l, t0 + ms(1000)), Ok(()));
        assert_eq!(
            rl.try_acquire("pagerduty:k", Limit::PAGERDUTY_ROUTING_KEY, t0 + ms(1000)),
            Ok(())
        );
    }

    #[test]
    fn pagerduty_burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::PAGERDUTY_ROUTING_KEY;
        for i in 0..120 {
            assert_eq!(rl.try_acquire("pd", l, t0), Ok(()), "burst {i}");
        }
        assert_eq!(rl.try_acquire("pd", l, t0), Err(ms(500)));
        assert_eq!(rl.try_acquire("pd", l, t0 + ms(499)), Err(ms(1)));
        assert_eq!(rl.try_acquire("pd", l, t0 + ms(500)), Ok(()));
        assert_eq!(rl.try_acquire("pd", l, t0 + ms(500)), Err(ms(500)));

        // Over a long run the rate converges to 120/min.
        let mut rl = RateLimiter::new();
        let mut sent = 0;
        let mut t = t0;
        while t < t0 + Duration::from_secs(600) {
            if rl.try_acquire("pd", l, t).is_ok() {
                sent += 1;
            }
            t += ms(50);
        }
        // 120 initial burst + 2 per second for 600 s (give or take the last tick).
        assert!((1318..=1321).contains(&sent), "{sent}");
    }

    #[test]
    fn configured_prefixes_override_default() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        rl.configure("slack:", Limit::new(2, Duration::from_secs(1)));
        rl.configure("slack:#quiet", Limit::new(1, Duration::from_secs(10)));
        let default = Limit::SLACK_CHANNEL;
        assert_eq!(
            rl.limit_for("slack:#x", default),
            Limit::new(2, Duration::from_secs(1))
        );
        assert_eq!(
            rl.limit_for("slack:#quiet", default),
            Limit::new(1, Duration::from_secs(10))
        );
        assert_eq!(rl.limit_for("email:relay", default), default);

        assert_eq!(rl.try_acquire("slack:#x", default, t0), Ok(()));
        assert_eq!(rl.try_acquire("slack:#x", default, t0), Ok(()));
        assert_eq!(rl.try_acquire("slack:#x", default, t0), Err(ms(500)));
        assert_eq!(rl.try_acquire("slack:#quiet", default, t0), Ok(()));
        assert_eq!(
            rl.try_acquire("slack:#quiet", default, t0),
            Err(Duration::from_secs(10))
        );

        // Reconfiguring replaces.
        rl.configure("slack:", Limit::new(5, Duration::from_secs(1)));
        assert_eq!(
            rl.limit_for("slack:#x", default),
            Limit::new(5, Duration::from_secs(1))
        );
    }

    #[test]
    fn pause_returns_remaining_wait_and_refills_gently() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::new(10, Duration::from_secs(10));
        assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
        rl.pause_until("k", t0 + Duration::from_secs(30));
        assert_eq!(rl.try_acquire("k", l, t0), Err(Duration::from_secs(30)));
        assert_eq!(
            rl.try_acquire("k", l, t0 + Duration::from_secs(25)),
            Err(Duration::from_secs(5))
        );
        // An earlier pause never shortens a later one.
        rl.pause_until("k", t0 + Duration::from_secs(20));
        assert_eq!(
            rl.try_acquire("k", l, t0 + Duration::from_secs(25)),
            Err(Duration::from_secs(5))
        );
        // Pause over: one send now, a burst refills at the normal rate only.
        let end = t0 + Duration::from_secs(30);
        assert_eq!(rl.try_acquire("k", l, end), Ok(()));
        let mut burst = 1;
        while rl.try_acquire("k", l, end).is_ok() {
            burst += 1;
        }
        assert_eq!(
            burst, 10,
            "bucket may still spend its capacity, but no more"
        );

        // Pausing an unknown key works too.
        rl.pause_until("new", t0 + ms(1500));
        assert_eq!(rl.try_acquire("new", l, t0), Err(ms(1500)));
        assert_eq!(rl.try_acquire("new", l, t0 + ms(1500)), Ok(()));
    }

    #[test]
    fn pause_applies_even_to_unlimited_keys() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let unlimited = Limit::new(1, Duration::ZERO);
        for _ in 0..100 {
            assert_eq!(rl.try_acquire("log", unlimited, t0), Ok(()));
        }
        rl.pause_until("log", t0 + ms(100));
        assert_eq!(rl.try_acquire("log", unlimited, t0), Err(ms(100)));
        assert_eq!(rl.try_acquire("log", unlimited, t0 + ms(100)), Ok(()));
    }

    #[test]
    fn zero_capacity_is_treated_as_one() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::new(0, Duration::from_secs(1));
        assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
        assert_eq!(rl.try_acquire("k", l, t0), Err(Duration::from_secs(1)));
    }

    #[test]
    fn memory_is_bounded_by_dropping_full_buckets() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let l = Limit::SLACK_CHANNEL;
        // 100k one-off keys, each used once and then idle.
        for i in 0..100_000u64 {
            let now = t0 + ms(i * 10);
            assert_eq!(rl.try_acquire(&format!("k{i}"), l, now), Ok(()));
        }
        // Only keys touched within the last second (100 of them) can be non-full; the sweep
        // threshold bounds the rest.
        assert!(rl.len() <= 2 * MIN_SWEEP_LEN, "{}", rl.len());
        rl.prune(t0 + ms(100_000 * 10));
        assert!(rl.len() <= 100, "{}", rl.len());
        rl.prune(t0 + Duration::from_secs(10_000));
        assert!(rl.is_empty());
    }

    #[test]
    fn pruning_keeps_active_pauses() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        rl.pause_until("k", t0 + Duration::from_secs(60));
        rl.prune(t0 + Duration::from_secs(30));
        assert_eq!(
            rl.try_acquire("k", Limit::SLACK_CHANNEL, t0 + Duration::from_secs(30)),
            Err(Duration::from_secs(30))
        );
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut rl = RateLimiter::new();
        let l = Limit::SLACK_CHANNEL;
        assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
        let earlier = t0 - Duration::from_secs(50);
        assert_eq!(
            rl.try_acquire("k", l, earlier),
            Err(Duration::from_secs(51))
        );
        rl.pause_until("k", earlier);
        assert_eq!(rl.try_acquire("k", l, t0 + ms(1000)), Ok(()));
    }
}
