use std::time::Duration;

use super::*;

#[tokio::test]
async fn sleep_on_returns_at_once_for_a_deadline_that_has_passed() {
    let clock = ManualClock::new(10_000);
    tokio::time::timeout(Duration::from_millis(500), sleep_on(&clock, 10_000))
        .await
        .expect("no wait for the present");
    tokio::time::timeout(Duration::from_millis(500), sleep_on(&clock, 0))
        .await
        .expect("no wait for the past");
}

#[tokio::test]
async fn sleep_on_a_manual_clock_wakes_when_it_is_advanced() {
    let clock = Arc::new(ManualClock::new(0));
    let sleeper = tokio::spawn({
        let clock = clock.clone();
        // A minute on the clock: only the jump can end this sleep within the timeout below.
        async move { sleep_on(&*clock, 60_000).await }
    });
    tokio::task::yield_now().await;
    // Advancing before the sleeper listens is not lost either: it reads the clock first.
    clock.advance(Duration::from_secs(60));
    tokio::time::timeout(Duration::from_secs(5), sleeper)
        .await
        .expect("woken by the jump")
        .expect("join");
}

#[tokio::test]
async fn sleep_on_the_system_clock_waits_the_real_time() {
    let clock = SystemClock;
    let started = std::time::Instant::now();
    sleep_on(&clock, clock.now_ms() + 50).await;
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn only_the_system_clock_advances_by_itself() {
    assert!(SystemClock.advances_by_itself());
    assert!(!ManualClock::new(0).advances_by_itself());
}

#[test]
fn a_scaled_clock_runs_factor_times_faster_and_converts_waits_back() {
    let c = ScaledClock::new(1_000_000, 60.0);
    // 1 s of real time is a minute of clock time.
    assert_eq!(c.at(Duration::from_secs(1)), 1_000_000 + 60_000);
    assert_eq!(c.at(Duration::from_millis(250)), 1_000_000 + 15_000);
    // 15 minutes on the clock are 15 s of real waiting; a part of a real ms rounds up.
    assert_eq!(c.real_wait(15 * 60_000), Duration::from_secs(15));
    assert_eq!(c.real_wait(1), Duration::from_millis(1));
    assert_eq!(c.real_wait(-5), Duration::ZERO);
    assert!(c.advances_by_itself());
    // The system clock waits what it is asked.
    assert_eq!(SystemClock.real_wait(1500), Duration::from_millis(1500));
    // Nonsense factors are 1.
    assert_eq!(ScaledClock::new(0, 0.5).factor(), 1.0);
    assert_eq!(ScaledClock::new(0, f64::NAN).factor(), 1.0);
}

#[tokio::test]
async fn sleep_on_a_scaled_clock_wakes_in_scaled_time() {
    let c = ScaledClock::new(0, 600.0);
    let start = std::time::Instant::now();
    // A minute of clock time: a tenth of a second of real time (not a minute).
    sleep_on(&c, c.now_ms() + 60_000).await;
    let waited = start.elapsed();
    assert!(c.now_ms() >= 60_000);
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}
