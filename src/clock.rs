//! Injected time. Production uses the system clock; tests use [`ManualClock`] so that 15- and
//! 60-minute windows pass in milliseconds. Everything that decides "is it due yet" asks a
//! `Clock`, never the system directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::Notify;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Fires when the clock jumps (manual clocks only), so sleepers re-check their deadlines.
    fn jumped(&self) -> Option<Arc<Notify>> {
        None
    }

    /// Whether this clock's time passes while its reader waits. A manual clock moves only when
    /// told to, so a short wait for it to reach a time (a rate limit's next token) is better
    /// handed back to the caller than spent holding resources.
    fn advances_by_itself(&self) -> bool {
        true
    }

    /// How much real time passes while this clock advances `clock_ms`. The same for a system
    /// clock; less for a [`ScaledClock`], whose sleepers must wake in scaled time.
    fn real_wait(&self, clock_ms: i64) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(clock_ms).unwrap_or(0))
    }

    fn now(&self) -> DateTime<Utc> {
        ms_to_datetime(self.now_ms())
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// A clock that runs `factor` times faster than real time from `start_ms` (the demo: 60 makes a
/// 15-minute escalation window pass in 15 seconds). Time keeps moving by itself, so the workers
/// behave as in production, only sooner.
#[derive(Debug)]
pub(crate) struct ScaledClock {
    start_ms: i64,
    started: std::time::Instant,
    factor: f64,
}

impl ScaledClock {
    /// `factor` below 1 (or not a number) is taken as 1: a slower clock has no use here.
    pub(crate) fn new(start_ms: i64, factor: f64) -> Self {
        Self {
            start_ms,
            started: std::time::Instant::now(),
            factor: if factor.is_finite() && factor >= 1.0 {
                factor
            } else {
                1.0
            },
        }
    }

    pub(crate) fn factor(&self) -> f64 {
        self.factor
    }

    fn at(&self, real_elapsed: std::time::Duration) -> i64 {
        let scaled = real_elapsed.as_secs_f64() * 1000.0 * self.factor;
        self.start_ms.saturating_add(scaled as i64)
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        self.at(self.started.elapsed())
    }
    fn real_wait(&self, clock_ms: i64) -> std::time::Duration {
        // Rounded up, so that a sleeper never wakes just before its deadline and spins.
        let real_ms = (clock_ms.max(0) as f64 / self.factor).ceil();
        std::time::Duration::from_millis(real_ms as u64)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
    notify: Arc<Notify>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self {
            ms: AtomicI64::new(start_ms),
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn set(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
    fn jumped(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }
    fn advances_by_itself(&self) -> bool {
        false
    }
}

pub(crate) fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Sleeps until `deadline_ms` on `clock`, or until `wake` fires, whichever is first. With a
/// manual clock, a jump re-evaluates the deadline. Real time is capped per sleep so that a
/// system clock change is noticed within a minute.
pub(crate) async fn sleep_until(
    clock: &dyn Clock,
    deadline_ms: Option<i64>,
    wake: &mut crate::signal::Waiter,
) {
    sleep_or(clock, deadline_ms, wake.wait()).await;
}

/// Sleeps until `deadline_ms` on `clock`, or until a manual clock jumps, or for as much real
/// time as the clock says is left (capped at a minute), whichever is first. Callers re-read
/// the clock afterwards: with a manual clock that did not move, the deadline has not come.
pub(crate) async fn sleep_on(clock: &dyn Clock, deadline_ms: i64) {
    sleep_or(clock, Some(deadline_ms), std::future::pending::<()>()).await;
}

async fn sleep_or(clock: &dyn Clock, deadline_ms: Option<i64>, wake: impl Future<Output = ()>) {
    // Listen for a jump *before* reading the clock: a jump in between would otherwise be missed
    // and the sleep would run its full real-time length.
    let jumped = clock.jumped();
    let notified = jumped.as_deref().map(Notify::notified);
    tokio::pin!(notified);
    if let Some(n) = notified.as_mut().as_pin_mut() {
        n.enable();
    }
    let cap = std::time::Duration::from_secs(60);
    let wait = match deadline_ms {
        Some(d) => {
            let ms = d.saturating_sub(clock.now_ms());
            if ms <= 0 {
                return;
            }
            clock.real_wait(ms).min(cap)
        }
        None => cap,
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = wake => {}
        _ = async {
            match notified.as_mut().as_pin_mut() {
                Some(n) => n.await,
                None => std::future::pending().await,
            }
        } => {}
    }
}

#[cfg(test)]
mod tests;
