//! Per-destination rate limits (token buckets) and `Retry-After` pauses.
//!
//! Each destination key (a Slack channel, a PagerDuty routing key, an SMTP relay, ...) has its
//! own bucket, so a slow or rate-limited destination never delays another one.
//!
//! The bucket is implemented as GCRA (the "virtual scheduling" form of a token bucket): one
//! time per key, the theoretical arrival time (TAT) of the next conforming request. It allows
//! the same bursts as a bucket of `capacity` tokens refilled at `capacity / per`, but with
//! integer arithmetic (no float drift) and a state that is obviously "full" once
//! `TAT <= now`, which is what lets idle keys be dropped to bound memory.
//!
//! Time is passed in as milliseconds on the injected [`crate::clock::Clock`], so the limiter
//! follows a manual clock in tests exactly as it follows the system clock in production.
//! Internally times are nanoseconds, so limits finer than a millisecond per send still work.

use std::collections::HashMap;
use std::time::Duration;

/// Rebuild the map without idle keys once it holds this many entries (and afterwards at twice
/// the surviving size), so a stream of one-off keys cannot grow memory without bound.
const MIN_SWEEP_LEN: usize = 1024;

/// A point in time: nanoseconds since the Unix epoch. `i128` so that no sum of a clock reading
/// and a configured period can overflow.
type Nanos = i128;

fn ms_to_nanos(ms: i64) -> Nanos {
    Nanos::from(ms) * 1_000_000
}

fn duration_nanos(d: Duration) -> Nanos {
    Nanos::try_from(d.as_nanos()).unwrap_or(Nanos::MAX / 4)
}

/// The wait from `now` until `until` (zero when `until` has passed).
fn wait_between(now: Nanos, until: Nanos) -> Duration {
    u64::try_from(until.saturating_sub(now).max(0)).map_or(Duration::MAX, Duration::from_nanos)
}

/// `capacity` sends per `per`, with bursts of up to `capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Limit {
    /// Burst size and sends per period. 0 is treated as 1: a limit that never allows anything
    /// would strand deliveries silently.
    pub capacity: u32,
    /// The period. Zero means unlimited (only pauses apply).
    pub per: Duration,
}

impl Limit {
    /// Slack: one message per second per channel (incoming webhooks and chat.postMessage).
    pub(crate) const SLACK_CHANNEL: Limit = Limit::new(1, Duration::from_secs(1));
    /// PagerDuty Events API v2: about 120 events per minute per routing key.
    pub(crate) const PAGERDUTY_ROUTING_KEY: Limit = Limit::new(120, Duration::from_secs(60));

    pub(crate) const fn new(capacity: u32, per: Duration) -> Limit {
        Limit { capacity, per }
    }

    /// Time between sends at the steady rate.
    fn interval(self) -> Nanos {
        duration_nanos(self.per) / Nanos::from(self.capacity.max(1))
    }

    /// How far ahead of `now` the TAT may run: `capacity` intervals. Computed from the
    /// (truncated) interval rather than taken as `per`, so a burst never exceeds `capacity`.
    fn burst(self) -> Nanos {
        self.interval()
            .saturating_mul(Nanos::from(self.capacity.max(1)))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Theoretical arrival time: the bucket is full when `tat <= now`.
    tat: Nanos,
    /// Set by a 429 `Retry-After`; nothing is allowed before it.
    paused_until: Option<Nanos>,
    /// The latest clock reading this bucket was updated at.
    seen: Nanos,
}

impl Bucket {
    /// The clock is the wall clock in production and may be set back (NTP, an operator). A
    /// bucket read at an earlier time than it was last updated at is moved back with it: the
    /// waits it imposes stay as long as they were, instead of growing by the step.
    fn follow_clock(&mut self, now: Nanos) {
        if now < self.seen {
            let back = self.seen - now;
            self.tat = self.tat.saturating_sub(back);
            self.paused_until = self.paused_until.map(|p| p.saturating_sub(back));
            self.seen = now;
        }
    }
}

/// Token buckets for any number of destination keys.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: HashMap<String, Bucket>,
    /// Configured overrides by key prefix (a full key is its own prefix); longest match wins.
    limits: Vec<(String, Limit)>,
    /// Sweep idle buckets when `buckets.len()` reaches this.
    sweep_at: usize,
}

impl RateLimiter {
    pub(crate) fn new() -> RateLimiter {
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
    #[cfg(test)]
    pub(crate) fn configure(&mut self, key_prefix_or_key: impl Into<String>, limit: Limit) {
        let prefix = key_prefix_or_key.into();
        match self.limits.iter_mut().find(|(p, _)| *p == prefix) {
            Some(entry) => entry.1 = limit,
            None => self.limits.push((prefix, limit)),
        }
    }

    /// The limit that applies to `key`: the longest configured prefix, else `default`.
    pub(crate) fn limit_for(&self, key: &str, default: Limit) -> Limit {
        self.limits
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(default, |(_, limit)| *limit)
    }

    /// Takes a token for `key` if one is available at `now_ms` (the injected clock's
    /// milliseconds); otherwise returns how long until one is (or until a pause ends). A refused
    /// call consumes nothing, so retrying after the returned wait succeeds unless someone else
    /// took the token first.
    pub(crate) fn try_acquire(
        &mut self,
        key: &str,
        limit: Limit,
        now_ms: i64,
    ) -> Result<(), Duration> {
        let now = ms_to_nanos(now_ms);
        let limit = self.limit_for(key, limit);
        let existing = self.buckets.get_mut(key).map(|b| {
            b.follow_clock(now);
            *b
        });

        if let Some(until) = existing.and_then(|b| b.paused_until)
            && until > now
        {
            return Err(wait_between(now, until));
        }
        if limit.per.is_zero() {
            return Ok(());
        }

        let tat = existing.map_or(now, |b| b.tat.max(now));
        let new_tat = tat.saturating_add(limit.interval());
        // The request conforms when new_tat - burst <= now.
        let allowed_at = new_tat.saturating_sub(limit.burst());
        if allowed_at > now {
            return Err(wait_between(now, allowed_at));
        }

        if existing.is_none() {
            self.maybe_sweep(now);
        }
        self.buckets.insert(
            key.to_string(),
            Bucket {
                tat: new_tat,
                paused_until: None,
                seen: existing.map_or(now, |b| b.seen.max(now)),
            },
        );
        Ok(())
    }

    /// Stops all sends to `key` for `length` from `now_ms` (a 429's `Retry-After`). Later
    /// pauses extend, earlier ones never shorten. When the pause ends the bucket starts empty
    /// and refills at the normal rate, so the destination is not hit with a full burst the
    /// moment it allows traffic again.
    pub(crate) fn pause(&mut self, key: &str, now_ms: i64, length: Duration) {
        let now = ms_to_nanos(now_ms);
        let until = now.saturating_add(duration_nanos(length));
        match self.buckets.get_mut(key) {
            Some(bucket) => {
                bucket.follow_clock(now);
                bucket.paused_until = Some(bucket.paused_until.map_or(until, |p| p.max(until)));
                bucket.tat = bucket.tat.max(until);
                bucket.seen = bucket.seen.max(now);
            }
            None => {
                self.buckets.insert(
                    key.to_string(),
                    Bucket {
                        tat: until,
                        paused_until: Some(until),
                        seen: now,
                    },
                );
            }
        }
    }

    /// Drops buckets that are full again (their state equals a fresh bucket's).
    #[cfg(test)]
    pub(crate) fn prune(&mut self, now_ms: i64) {
        self.prune_at(ms_to_nanos(now_ms));
    }

    fn prune_at(&mut self, now: Nanos) {
        // A pause always moves `tat` to at least its end, so `tat > now` covers active pauses.
        self.buckets.retain(|_, bucket| bucket.tat > now);
    }

    /// Number of keys currently tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn maybe_sweep(&mut self, now: Nanos) {
        if self.buckets.len() < self.sweep_at {
            return;
        }
        self.prune_at(now);
        // Doubling keeps sweeps amortised O(1) per insert even when most keys are active.
        self.sweep_at = self.buckets.len().saturating_mul(2).max(MIN_SWEEP_LEN);
    }
}

#[cfg(test)]
mod tests;
