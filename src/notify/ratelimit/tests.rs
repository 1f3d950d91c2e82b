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
