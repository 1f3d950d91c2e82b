//! Whether the database can be written, as last seen by any write path (intake batches, the
//! escalation scheduler, the outbox, and a small periodic probe). `/readyz` answers from it, so
//! a full disk or a read-only file system takes the service out of rotation, and the probe puts
//! it back as soon as a write succeeds again, without a restart.
//!
//! State changes are logged once each; repeats of the same failure are not (a stuck disk would
//! otherwise log once a second per worker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Store;
use crate::clock::SharedClock;

/// How often the probe writes while writes succeed, and while they fail.
const PROBE_EVERY_WHILE_OK: Duration = Duration::from_secs(5);
const PROBE_EVERY_WHILE_FAILING: Duration = Duration::from_secs(1);

/// The last write failure, while it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteFailure {
    /// Which write path saw it: `intake`, `scheduler`, `outbox`, `probe`, ...
    pub source: &'static str,
    pub reason: String,
    pub since_ms: i64,
}

#[derive(Default)]
struct Inner {
    failing: Mutex<Option<WriteFailure>>,
    /// When the last outage ended, on the monotonic clock that connection ages are measured
    /// with.
    recovered_at: Mutex<Option<Instant>>,
    failures_total: AtomicU64,
}

/// Shared by every clone of `Store`.
#[derive(Clone, Default)]
pub struct WriteHealth(Arc<Inner>);

impl std::fmt::Debug for WriteHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WriteHealth").field(&self.failing()).finish()
    }
}

impl WriteHealth {
    /// A write committed: the database is writable.
    pub fn succeeded(&self, now_ms: i64) {
        let Ok(mut failing) = self.0.failing.lock() else {
            return;
        };
        if let Some(was) = failing.take() {
            if let Ok(mut at) = self.0.recovered_at.lock() {
                *at = Some(Instant::now());
            }
            tracing::warn!(
                failed_for_s = (now_ms - was.since_ms).max(0) / 1000,
                "database writable again; intake and workers resume"
            );
        }
    }

    /// A write failed. Logged only when the database was writable before.
    pub fn failed(&self, source: &'static str, error: &dyn std::fmt::Display, now_ms: i64) {
        self.0.failures_total.fetch_add(1, Ordering::Relaxed);
        let Ok(mut failing) = self.0.failing.lock() else {
            return;
        };
        let reason = error.to_string();
        match failing.as_mut() {
            Some(f) => {
                tracing::debug!(source, error = %reason, "database still cannot be written");
                f.source = source;
                f.reason = reason;
            }
            None => {
                tracing::error!(
                    source,
                    error = %reason,
                    "database cannot be written: intake answers 503 and /readyz fails until a write succeeds"
                );
                crate::telemetry::report(
                    crate::telemetry::Failure::StorageFailing,
                    &format!("database cannot be written ({source}): {reason}"),
                    &[("source", source)],
                );
                *failing = Some(WriteFailure {
                    source,
                    reason,
                    since_ms: now_ms,
                });
            }
        }
    }

    /// Whether a read connection of this age predates the end of the last outage; readers
    /// opened before it may still look at the file system that failed.
    pub fn predates_recovery(&self, age: Duration) -> bool {
        let ended = self.0.recovered_at.lock().ok().and_then(|at| *at);
        ended.is_some_and(|t| t.elapsed() < age)
    }

    pub fn is_failing(&self) -> bool {
        self.0.failing.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    pub fn failing(&self) -> Option<WriteFailure> {
        self.0.failing.lock().ok().and_then(|f| f.clone())
    }

    pub fn failures_total(&self) -> u64 {
        self.0.failures_total.load(Ordering::Relaxed)
    }

    /// Reports `result` of a write on behalf of `source`, and hands it back.
    pub fn observe<T, E: std::fmt::Display>(
        &self,
        source: &'static str,
        now_ms: i64,
        result: Result<T, E>,
    ) -> Result<T, E> {
        match &result {
            Ok(_) => self.succeeded(now_ms),
            Err(e) => self.failed(source, e, now_ms),
        }
        result
    }
}

/// Writes one small row every few seconds (every second while writes fail), so readiness
/// follows the disk even when no webhook arrives, and comes back by itself once space returns.
pub(crate) fn spawn_probe(
    store: Store,
    clock: SharedClock,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = clock.now_ms();
            let _ = store
                .health
                .observe("probe", now, store.probe_write(now).await);
            let every = if store.health.is_failing() {
                PROBE_EVERY_WHILE_FAILING
            } else {
                PROBE_EVERY_WHILE_OK
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = cancel.cancelled() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_success_and_keeps_its_start() {
        let h = WriteHealth::default();
        assert_eq!(h.failing(), None);
        h.failed("intake", &"database or disk is full", 1_000);
        h.failed("scheduler", &"disk I/O error", 2_000);
        let f = h.failing().expect("failing");
        assert_eq!(
            f.since_ms, 1_000,
            "the outage started with the first failure"
        );
        assert_eq!(
            (f.source, f.reason.as_str()),
            ("scheduler", "disk I/O error")
        );
        assert_eq!(h.failures_total(), 2);
        assert!(!h.predates_recovery(Duration::from_secs(3600)));
        h.succeeded(3_000);
        assert_eq!(h.failing(), None);
        assert!(h.predates_recovery(Duration::from_secs(3600)));
        assert!(!h.predates_recovery(Duration::ZERO));
        assert_eq!(h.failures_total(), 2, "the counter only grows");
    }
}
