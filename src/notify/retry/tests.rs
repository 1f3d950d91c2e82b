use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn no_jitter() -> RetryPolicy {
    RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

#[test]
fn default_schedule_without_jitter() {
    let p = no_jitter();
    let got: Vec<_> = (1..=8).map(|a| p.next_delay(a, None, 0.5)).collect();
    assert_eq!(
        got,
        vec![
            Some(secs(5)),
            Some(secs(30)),
            Some(secs(120)),
            Some(secs(600)),
            Some(secs(1800)),
            Some(secs(3600)),
            Some(secs(3600)),
            None,
        ]
    );
    assert_eq!(p.next_delay(9, None, 0.5), None);
    assert_eq!(p.next_delay(u32::MAX, None, 0.5), None);
    // Attempt 0 is treated as the first failure.
    assert_eq!(p.next_delay(0, None, 0.5), Some(secs(5)));
}

#[test]
fn jitter_bounds() {
    let p = RetryPolicy::default();
    assert_eq!(p.next_delay(2, None, 0.0), Some(secs(24)));
    assert_eq!(p.next_delay(2, None, 0.5), Some(secs(30)));
    assert_eq!(p.next_delay(2, None, 1.0), Some(secs(36)));
    // Out of range / NaN random numbers are clamped.
    assert_eq!(p.next_delay(2, None, -3.0), Some(secs(24)));
    assert_eq!(p.next_delay(2, None, 7.0), Some(secs(36)));
    assert_eq!(p.next_delay(2, None, f64::NAN), Some(secs(30)));
    // Jitter never pushes the schedule above the 1 h cap.
    assert_eq!(p.next_delay(6, None, 1.0), Some(MAX_DELAY));
    assert!(p.next_delay(6, None, 0.0).unwrap() >= secs(2880));
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..1000 {
        let d = p.next_delay(3, None, rng.f64()).unwrap();
        assert!(d >= secs(96) && d <= secs(144), "{d:?}");
    }
}

#[test]
fn retry_after_is_a_floor_and_jitter_only_adds() {
    let p = RetryPolicy::default();
    // Retry-After larger than the schedule: exactly it at rand 0, up to +20 % above.
    assert_eq!(p.next_delay(1, Some(secs(60)), 0.0), Some(secs(60)));
    assert_eq!(p.next_delay(1, Some(secs(60)), 1.0), Some(secs(72)));
    let mut rng = fastrand::Rng::with_seed(2);
    for _ in 0..1000 {
        let d = p.next_delay(1, Some(secs(60)), rng.f64()).unwrap();
        assert!(d >= secs(60) && d <= secs(72), "{d:?}");
    }
    // Retry-After smaller than the schedule: the schedule wins.
    assert_eq!(p.next_delay(4, Some(secs(1)), 0.5), Some(secs(600)));
    // Retry-After of zero does not shorten the schedule.
    assert_eq!(p.next_delay(1, Some(Duration::ZERO), 0.5), Some(secs(5)));
}

#[test]
fn retry_after_is_capped_once_at_the_channels_limit() {
    // One limit for the server's value, the channels' (transport) one: an hour.
    assert_eq!(MAX_RETRY_AFTER, secs(3600));
    let p = no_jitter();
    assert_eq!(p.next_delay(1, Some(secs(1800)), 0.5), Some(secs(1800)));
    assert_eq!(
        p.next_delay(1, Some(secs(7200)), 0.5),
        Some(MAX_RETRY_AFTER)
    );
    assert_eq!(
        p.next_delay(1, Some(secs(7 * 24 * 3600)), 0.5),
        Some(MAX_RETRY_AFTER)
    );
    assert_eq!(
        p.next_delay(1, Some(Duration::MAX), 0.5),
        Some(MAX_RETRY_AFTER)
    );
    // Jitter only adds on top of the capped value, as it does below the cap: at most +20 %.
    let p = RetryPolicy::default();
    assert_eq!(
        p.next_delay(1, Some(secs(30 * 3600)), 1.0),
        Some(secs(4320))
    );
    assert_eq!(p.next_delay(1, Some(secs(3600)), 0.0), Some(secs(3600)));
}

#[test]
fn default_policy_is_the_configuration_default() {
    // The repository's routing.yaml without its `delivery.retry_schedule` / `max_attempts`.
    let text: String = include_str!("../../../routing.yaml")
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("retry_schedule:") && !l.starts_with("max_attempts:")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg =
        crate::config::RoutingConfig::parse(std::path::Path::new("routing.yaml"), &text, &|_| None)
            .unwrap();
    let p = RetryPolicy::default();
    assert_eq!(p.schedule, cfg.delivery.retry_schedule);
    assert_eq!(p.max_attempts, cfg.delivery.max_attempts);
    assert_eq!(p.schedule, DEFAULT_RETRY_SCHEDULE.to_vec());
}

#[test]
fn retry_after_does_not_revive_a_dead_delivery() {
    let p = RetryPolicy::default();
    assert_eq!(p.next_delay(8, Some(secs(1)), 0.5), None);
}

#[test]
fn odd_policies_do_not_panic() {
    let empty = RetryPolicy {
        schedule: vec![],
        max_attempts: 3,
        jitter: 0.2,
    };
    assert_eq!(empty.next_delay(1, None, 0.5), Some(EMPTY_SCHEDULE_DELAY));
    let wild = RetryPolicy {
        schedule: vec![Duration::MAX],
        max_attempts: 3,
        jitter: f64::INFINITY,
    };
    assert_eq!(wild.next_delay(1, None, 1.0), Some(MAX_DELAY));
    assert!(wild.next_delay(1, Some(Duration::MAX), 1.0).is_some());
    let nan = RetryPolicy {
        schedule: vec![secs(10)],
        max_attempts: 3,
        jitter: f64::NAN,
    };
    assert_eq!(nan.next_delay(1, None, 1.0), Some(secs(10)));
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    assert_eq!(once.next_delay(1, None, 0.5), None);
    let zero = RetryPolicy {
        max_attempts: 0,
        ..RetryPolicy::default()
    };
    assert_eq!(zero.next_delay(1, None, 0.5), None);
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn parse_delta_seconds() {
    assert_eq!(parse_retry_after("120", now()), Some(secs(120)));
    assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("1", now()), Some(secs(1)));
    assert_eq!(
        parse_retry_after("99999999999999999999999", now()),
        Some(secs(u64::MAX))
    );
    for bad in ["", "  ", "-5", "1.5", "+3", "soon", "12s", "1e3"] {
        assert_eq!(parse_retry_after(bad, now()), None, "{bad:?}");
    }
}

#[test]
fn parse_http_dates() {
    // All three forms from RFC 9110 §5.6.7 name the same instant, 37 s after `now`.
    for value in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(parse_retry_after(value, now()), Some(secs(37)), "{value}");
    }
    // In the past: retry now.
    assert_eq!(
        parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now()),
        Some(Duration::ZERO)
    );
    // Not GMT, or garbage: ignored.
    for bad in [
        "Sun, 06 Nov 1994 08:49:37 +0100",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Nov 6 1994",
        "Sun, 06 Nov 1994 08:49:37",
    ] {
        assert_eq!(parse_retry_after(bad, now()), None, "{bad}");
    }
}
