use super::*;

/// A clock reading (ms since the epoch), as the worker passes in.
const T0: i64 = 1_780_000_000_000;

/// A wait, as the limiter returns it.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A span of clock time in milliseconds.
fn secs(n: i64) -> i64 {
    n * 1000
}

#[test]
fn slack_one_per_second_per_channel() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::SLACK_CHANNEL;
    assert_eq!(rl.try_acquire("slack:#a", l, t0), Ok(()));
    assert_eq!(rl.try_acquire("slack:#a", l, t0), Err(ms(1000)));
    assert_eq!(rl.try_acquire("slack:#a", l, t0 + 400), Err(ms(600)));
    // Refused calls consume nothing: exactly at the returned wait it succeeds.
    assert_eq!(rl.try_acquire("slack:#a", l, t0 + 1000), Ok(()));
    assert_eq!(rl.try_acquire("slack:#a", l, t0 + 1000), Err(ms(1000)));
    // Idle time does not accumulate beyond the capacity of 1.
    assert_eq!(rl.try_acquire("slack:#a", l, t0 + 10_000), Ok(()));
    assert_eq!(rl.try_acquire("slack:#a", l, t0 + 10_000), Err(ms(1000)));
}

#[test]
fn keys_are_independent() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::SLACK_CHANNEL;
    assert_eq!(rl.try_acquire("slack:#a", l, t0), Ok(()));
    assert_eq!(rl.try_acquire("slack:#b", l, t0), Ok(()));
    assert_eq!(
        rl.try_acquire("pagerduty:k", Limit::PAGERDUTY_ROUTING_KEY, t0),
        Ok(())
    );
    rl.pause("slack:#a", t0, Duration::from_secs(30));
    assert!(rl.try_acquire("slack:#a", l, t0 + 1000).is_err());
    assert_eq!(rl.try_acquire("slack:#b", l, t0 + 1000), Ok(()));
    assert_eq!(
        rl.try_acquire("pagerduty:k", Limit::PAGERDUTY_ROUTING_KEY, t0 + 1000),
        Ok(())
    );
}

#[test]
fn pagerduty_burst_then_steady_rate() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::PAGERDUTY_ROUTING_KEY;
    for i in 0..120 {
        assert_eq!(rl.try_acquire("pd", l, t0), Ok(()), "burst {i}");
    }
    assert_eq!(rl.try_acquire("pd", l, t0), Err(ms(500)));
    assert_eq!(rl.try_acquire("pd", l, t0 + 499), Err(ms(1)));
    assert_eq!(rl.try_acquire("pd", l, t0 + 500), Ok(()));
    assert_eq!(rl.try_acquire("pd", l, t0 + 500), Err(ms(500)));

    // Over a long run the rate converges to 120/min.
    let mut rl = RateLimiter::new();
    let mut sent = 0;
    let mut t = t0;
    while t < t0 + secs(600) {
        if rl.try_acquire("pd", l, t).is_ok() {
            sent += 1;
        }
        t += 50;
    }
    // 120 initial burst + 2 per second for 600 s (give or take the last tick).
    assert!((1318..=1321).contains(&sent), "{sent}");
}

#[test]
fn configured_prefixes_override_default() {
    let t0 = T0;
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
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::new(10, Duration::from_secs(10));
    assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
    rl.pause("k", t0, Duration::from_secs(30));
    assert_eq!(rl.try_acquire("k", l, t0), Err(Duration::from_secs(30)));
    assert_eq!(
        rl.try_acquire("k", l, t0 + secs(25)),
        Err(Duration::from_secs(5))
    );
    // An earlier pause never shortens a later one.
    rl.pause("k", t0, Duration::from_secs(20));
    assert_eq!(
        rl.try_acquire("k", l, t0 + secs(25)),
        Err(Duration::from_secs(5))
    );
    // Pause over: one send now, a burst refills at the normal rate only.
    let end = t0 + secs(30);
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
    rl.pause("new", t0, ms(1500));
    assert_eq!(rl.try_acquire("new", l, t0), Err(ms(1500)));
    assert_eq!(rl.try_acquire("new", l, t0 + 1500), Ok(()));
}

#[test]
fn pause_applies_even_to_unlimited_keys() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let unlimited = Limit::new(1, Duration::ZERO);
    for _ in 0..100 {
        assert_eq!(rl.try_acquire("log", unlimited, t0), Ok(()));
    }
    rl.pause("log", t0, ms(100));
    assert_eq!(rl.try_acquire("log", unlimited, t0), Err(ms(100)));
    assert_eq!(rl.try_acquire("log", unlimited, t0 + 100), Ok(()));
}

#[test]
fn zero_capacity_is_treated_as_one() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::new(0, Duration::from_secs(1));
    assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
    assert_eq!(rl.try_acquire("k", l, t0), Err(Duration::from_secs(1)));
}

#[test]
fn memory_is_bounded_by_dropping_full_buckets() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    let l = Limit::SLACK_CHANNEL;
    // 100k one-off keys, each used once and then idle.
    for i in 0..100_000i64 {
        let now = t0 + i * 10;
        assert_eq!(rl.try_acquire(&format!("k{i}"), l, now), Ok(()));
    }
    // Only keys touched within the last second (100 of them) can be non-full; the sweep
    // threshold bounds the rest.
    assert!(rl.len() <= 2 * MIN_SWEEP_LEN, "{}", rl.len());
    rl.prune(t0 + 100_000 * 10);
    assert!(rl.len() <= 100, "{}", rl.len());
    rl.prune(t0 + secs(10_000));
    assert!(rl.is_empty());
}

#[test]
fn pruning_keeps_active_pauses() {
    let t0 = T0;
    let mut rl = RateLimiter::new();
    rl.pause("k", t0, Duration::from_secs(60));
    rl.prune(t0 + secs(30));
    assert_eq!(
        rl.try_acquire("k", Limit::SLACK_CHANNEL, t0 + secs(30)),
        Err(Duration::from_secs(30))
    );
}

#[test]
fn time_going_backwards_neither_panics_nor_stretches_the_wait() {
    // The clock is the wall clock in production: a step back must not add its size to the wait.
    let t0 = T0 + secs(100);
    let mut rl = RateLimiter::new();
    let l = Limit::SLACK_CHANNEL;
    assert_eq!(rl.try_acquire("k", l, t0), Ok(()));
    let earlier = t0 - secs(50);
    assert_eq!(rl.try_acquire("k", l, earlier), Err(ms(1000)));
    assert_eq!(rl.try_acquire("k", l, earlier + 1000), Ok(()));
    rl.pause("k", earlier, Duration::ZERO);
    assert_eq!(rl.try_acquire("k", l, t0 + 1000), Ok(()));

    // A pause set back with the clock keeps its remaining length.
    rl.pause("k", t0 + 2000, Duration::from_secs(30));
    assert_eq!(
        rl.try_acquire("k", l, t0 + 2000 - secs(3600)),
        Err(Duration::from_secs(30))
    );
}

#[test]
fn limits_finer_than_a_millisecond_still_count() {
    // 5000/s is 0.2 ms per send: the clock's milliseconds must not round it to "unlimited".
    let mut rl = RateLimiter::new();
    let l = Limit::new(5000, Duration::from_secs(1));
    let mut sent = 0;
    for ms in 0..3000 {
        while rl.try_acquire("k", l, T0 + ms).is_ok() {
            sent += 1;
        }
    }
    // The burst of 5000, then 5 per millisecond for 2999 ms.
    assert_eq!(sent, 5000 + 5 * 2999);
}

#[test]
fn extreme_clock_readings_and_periods_do_not_panic() {
    let mut rl = RateLimiter::new();
    let huge = Limit::new(u32::MAX, Duration::MAX);
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let _ = rl.try_acquire("huge", huge, now);
        let _ = rl.try_acquire("slack", Limit::SLACK_CHANNEL, now);
        rl.pause("slack", now, Duration::MAX);
        rl.prune(now);
    }
    rl.pause("k", i64::MAX, Duration::MAX);
    assert!(rl.try_acquire("k", Limit::SLACK_CHANNEL, i64::MIN).is_err());
}
