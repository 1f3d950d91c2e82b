//! HTTP helpers shared by the webhook-style channels (Slack, PagerDuty, Sentry): `Retry-After`,
//! what a status means, and what a request that got no response means for the outbox.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::SendOutcome;

/// Longest `Retry-After` honoured, the one limit for every channel: it bounds both the retry of
/// the delivery (`retry::RetryPolicy::next_delay` adds at most its jitter on top) and the pause
/// of the destination's rate limit. A bogus or hostile `Retry-After` (days) must not park
/// deliveries that long; a page an hour late is already a failure.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` as delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value)
                .ok()?
                .with_timezone(&Utc);
            (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// An HTTP answer by its status alone, `snippet` (the body, truncated) kept as the response or
/// the reason: 2xx delivered; 429, 408 and 5xx retried; any other status never, since the same
/// request would get the same answer (a Slack webhook's `invalid_payload`, Sentry's 401/404).
pub(crate) fn classify_status(
    status: u16,
    snippet: String,
    retry_after: Option<Duration>,
) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Delivered {
            status: Some(status),
            response: snippet,
            remote: None,
        },
        429 | 408 | 500..=599 => SendOutcome::Retry {
            status: Some(status),
            reason: format!("{snippet} (HTTP {status})"),
            retry_after,
        },
        _ => SendOutcome::Permanent {
            status: Some(status),
            reason: format!("{snippet} (HTTP {status})"),
        },
    }
}

/// A request that got no HTTP response. Builder errors (a malformed URL in config) will not fix
/// themselves; everything else (connect, reset, timeout) is worth retrying. The URL is stripped:
/// for a Slack webhook it is the secret.
pub(crate) fn transport_failure(err: reqwest::Error, timeout: Duration) -> SendOutcome {
    let err = err.without_url();
    if err.is_builder() {
        return SendOutcome::Permanent {
            status: None,
            reason: format!("invalid request: {}", error_chain(&err)),
        };
    }
    let reason = if err.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else {
        error_chain(&err)
    };
    SendOutcome::Retry {
        status: None,
        reason,
        retry_after: None,
    }
}

/// `outer: inner: root` so that "connection refused" is not hidden behind "error sending request".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, reqwest::header::HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("999999"),
        );
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
