//! When to try a failed delivery again, and when to give up.
//!
//! Pure: the caller passes the attempt count, the server's `Retry-After` and a random number,
//! so every delay is reproducible in tests.

use std::time::Duration;

#[cfg(test)]
use chrono::{DateTime, NaiveDateTime, Utc};

pub(crate) use super::transport::MAX_RETRY_AFTER;
use crate::config::{DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_SCHEDULE};

/// Longest delay the schedule alone produces. A page an hour late is already a failure; longer
/// only when the server explicitly asks for it.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Delay used if the schedule is configured empty: a cautious minute rather than a hot loop.
const EMPTY_SCHEDULE_DELAY: Duration = Duration::from_secs(60);

/// How failed deliveries are retried.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Delay after the 1st, 2nd, ... failed attempt; the last entry repeats.
    pub schedule: Vec<Duration>,
    /// Total attempts, including the first, before the delivery is dead.
    pub max_attempts: u32,
    /// Spread as a fraction of the delay (0.2 → ±20 %), so deliveries that failed together
    /// (an outage) do not all retry in the same second.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// The configuration's defaults ([`DEFAULT_RETRY_SCHEDULE`], [`DEFAULT_MAX_ATTEMPTS`]).
    fn default() -> Self {
        RetryPolicy {
            schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt, or `None` when the delivery is dead.
    ///
    /// - `attempt`: attempts made so far (≥ 1; 0 is treated as 1).
    /// - `retry_after`: the server's `Retry-After`, if any. It is a floor, honoured exactly:
    ///   jitter only ever adds to it (so a burst of 429s from one channel spreads out without
    ///   anyone retrying early). The server's value is capped at [`MAX_RETRY_AFTER`] (the
    ///   channels' parser caps it already; this keeps any other caller to the same limit).
    /// - `rand01`: uniform in `[0, 1]` (e.g. `fastrand::f64()`); out-of-range or NaN values are
    ///   clamped rather than trusted.
    ///
    /// Without `Retry-After` the result is `schedule[attempt-1]` ± jitter, at most
    /// [`MAX_DELAY`].
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rand01: f64,
    ) -> Option<Duration> {
        let attempt = attempt.max(1);
        if attempt >= self.max_attempts {
            return None;
        }
        let rand01 = if rand01.is_nan() {
            0.5
        } else {
            rand01.clamp(0.0, 1.0)
        };
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };

        let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
        let base = self
            .schedule
            .get(index)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(EMPTY_SCHEDULE_DELAY);
        // factor in [1 - jitter, 1 + jitter].
        let scheduled = scale(base, 1.0 + jitter * (2.0 * rand01 - 1.0)).min(MAX_DELAY);

        let Some(retry_after) = retry_after else {
            return Some(scheduled);
        };
        let floor = retry_after.min(MAX_RETRY_AFTER);
        // Only upward jitter on top of the server's value.
        let jittered_floor = floor.saturating_add(scale(floor, jitter * rand01));
        Some(scheduled.max(jittered_floor))
    }
}

/// `d * factor`, saturating on overflow, zero for NaN or negative factors.
/// (`Duration::mul_f64` panics on those.)
fn scale(d: Duration, factor: f64) -> Duration {
    if !factor.is_finite() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Parses a `Retry-After` header value: delta-seconds (`120`) or an HTTP-date (IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, plus the obsolete RFC 850 and asctime forms that RFC 9110
/// still requires recipients to accept). A date in the past means "now" (zero).
///
/// Returns `None` for anything else, so the caller falls back to its own schedule.
#[cfg(test)]
pub(crate) fn parse_retry_after(header: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = header.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurdly long number is still "a very long time"; next_delay caps it.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let when = parse_http_date(value)?;
    let delta = when.signed_duration_since(now);
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    // IMF-fixdate is a subset of RFC 2822, but insist on GMT as RFC 9110 does.
    if value.ends_with(" GMT")
        && let Ok(dt) = DateTime::parse_from_rfc2822(value)
    {
        return Some(dt.with_timezone(&Utc));
    }
    const OBSOLETE_FORMATS: [&str; 2] = [
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        "%A, %d-%b-%y %H:%M:%S GMT",
        // asctime: Sun Nov  6 08:49:37 1994
        "%a %b %e %H:%M:%S %Y",
    ];
    OBSOLETE_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests;
