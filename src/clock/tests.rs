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
