use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ny(cron: &str) -> DigestSchedule {
    DigestSchedule::parse(cron, "America/New_York").unwrap()
}

fn local(s: &DigestSchedule, t: DateTime<Utc>) -> String {
    t.with_timezone(&s.timezone())
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[test]
fn parses_six_and_five_fields() {
    let six = ny("0 0 8 * * *");
    let five = ny("0 8 * * *");
    let t = utc("2026-01-10T00:00:00Z");
    assert_eq!(six.next_fire_after(t), five.next_fire_after(t));
    assert_eq!(six.next_fire_after(t), Some(utc("2026-01-10T13:00:00Z")));
    assert_eq!(six.expression(), "0 0 8 * * *");
    assert_eq!(
        ny("  0 0 8 * * MON-FRI ").next_fire_after(utc("2026-01-10T00:00:00Z")),
        // 2026-01-10 is a Saturday.
        Some(utc("2026-01-12T13:00:00Z"))
    );
}

#[test]
fn errors_name_the_bad_part() {
    let err = DigestSchedule::parse("0 0 25 * * *", "UTC").unwrap_err();
    assert!(
        matches!(&err, ScheduleError::Field { field: "hours", value, .. } if value == "25"),
        "{err:?}"
    );
    assert!(err.to_string().contains("hours"), "{err}");

    let err = DigestSchedule::parse("0 61 8 * * *", "UTC").unwrap_err();
    assert!(
        matches!(
            &err,
            ScheduleError::Field {
                field: "minutes",
                ..
            }
        ),
        "{err:?}"
    );
    let err = DigestSchedule::parse("0 0 8 * 13 *", "UTC").unwrap_err();
    assert!(
        matches!(&err, ScheduleError::Field { field: "month", .. }),
        "{err:?}"
    );
    let err = DigestSchedule::parse("0 0 8 * * FUNDAY", "UTC").unwrap_err();
    assert!(
        matches!(
            &err,
            ScheduleError::Field {
                field: "day-of-week",
                ..
            }
        ),
        "{err:?}"
    );
    let err = DigestSchedule::parse("x 0 8 * * *", "UTC").unwrap_err();
    assert!(
        matches!(
            &err,
            ScheduleError::Field {
                field: "seconds",
                ..
            }
        ),
        "{err:?}"
    );
    let err = DigestSchedule::parse("0 8 32 * *", "UTC").unwrap_err();
    assert!(
        matches!(
            &err,
            ScheduleError::Field {
                field: "day-of-month",
                ..
            }
        ),
        "{err:?}"
    );

    for (cron, count) in [
        ("", 0),
        ("@daily", 1),
        ("0 8 * *", 4),
        ("0 0 8 * * * 2026", 7),
    ] {
        assert_eq!(
            DigestSchedule::parse(cron, "UTC").unwrap_err(),
            ScheduleError::FieldCount {
                expression: cron.to_string(),
                count
            }
        );
    }

    let err = DigestSchedule::parse("0 0 8 * * *", "America/Gotham").unwrap_err();
    assert_eq!(err, ScheduleError::UnknownTimezone("America/Gotham".into()));
    assert!(err.to_string().contains("America/Gotham"));
    assert!(DigestSchedule::parse("0 0 8 * * *", "").is_err());
}

#[test]
fn impossible_dates_never_fire() {
    for cron in ["0 0 0 30 2 *", "0 0 0 31 4 *"] {
        assert_eq!(
            DigestSchedule::parse(cron, "UTC").unwrap_err(),
            ScheduleError::NeverFires {
                expression: cron.to_string()
            }
        );
    }
    // Leap day is fine.
    let leap = DigestSchedule::parse("0 0 0 29 2 *", "UTC").unwrap();
    assert_eq!(
        leap.next_fire_after(utc("2026-01-01T00:00:00Z")),
        Some(utc("2028-02-29T00:00:00Z"))
    );
}

#[test]
fn next_is_strict_and_latest_is_inclusive() {
    let s = ny("0 0 8 * * *");
    let fire = utc("2026-01-10T13:00:00Z");
    assert_eq!(s.next_fire_after(fire), Some(utc("2026-01-11T13:00:00Z")));
    assert_eq!(
        s.next_fire_after(fire - Duration::nanoseconds(1)),
        Some(fire)
    );
    assert_eq!(s.latest_fire_at_or_before(fire), Some(fire));
    assert_eq!(
        s.latest_fire_at_or_before(fire - Duration::nanoseconds(1)),
        Some(utc("2026-01-09T13:00:00Z"))
    );
    assert_eq!(
        s.latest_fire_at_or_before(fire + Duration::milliseconds(500)),
        Some(fire)
    );
    assert_eq!(
        s.next_fire_after(fire + Duration::milliseconds(500)),
        Some(utc("2026-01-11T13:00:00Z"))
    );
}

#[test]
fn period_is_previous_fire_to_fire() {
    let s = ny("0 0 8 * * *");
    let fire = utc("2026-01-10T13:00:00Z");
    assert_eq!(
        s.period_ending_at(fire),
        (utc("2026-01-09T13:00:00Z"), fire)
    );
    // Weekdays only: Monday's digest covers the weekend.
    let weekdays = ny("0 0 8 * * MON-FRI");
    let monday = utc("2026-01-12T13:00:00Z");
    assert_eq!(
        weekdays.period_ending_at(monday),
        (utc("2026-01-09T13:00:00Z"), monday)
    );
}

#[test]
fn periods_tile_time() {
    let s = ny("0 0 8 * * *");
    let mut fire = s.next_fire_after(utc("2026-01-01T00:00:00Z")).unwrap();
    for _ in 0..400 {
        let next = s.next_fire_after(fire).unwrap();
        assert_eq!(s.period_ending_at(next), (fire, next));
        assert_eq!(s.latest_fire_at_or_before(next), Some(next));
        assert_eq!(
            s.latest_fire_at_or_before(next - Duration::seconds(1)),
            Some(fire)
        );
        fire = next;
    }
}

#[test]
fn eight_am_stays_eight_am_across_march_transition() {
    // DST starts in New York on Sunday 2026-03-08 at 02:00 EST → 03:00 EDT.
    let s = ny("0 0 8 * * *");
    let sat = s.next_fire_after(utc("2026-03-07T00:00:00Z")).unwrap();
    assert_eq!(sat, utc("2026-03-07T13:00:00Z"));
    let sun = s.next_fire_after(sat).unwrap();
    assert_eq!(sun, utc("2026-03-08T12:00:00Z"));
    let mon = s.next_fire_after(sun).unwrap();
    assert_eq!(mon, utc("2026-03-09T12:00:00Z"));
    for t in [sat, sun, mon] {
        assert!(local(&s, t).contains(" 08:00:00 "), "{}", local(&s, t));
    }
    // The period across the change is 23 hours long and starts at the previous fire.
    let (start, end) = s.period_ending_at(sun);
    assert_eq!((start, end), (sat, sun));
    assert_eq!(end - start, Duration::hours(23));
    assert_eq!(
        s.latest_fire_at_or_before(utc("2026-03-08T11:59:59Z")),
        Some(sat)
    );
    assert_eq!(
        s.latest_fire_at_or_before(utc("2026-03-08T12:00:00Z")),
        Some(sun)
    );
}

#[test]
fn eight_am_stays_eight_am_across_november_transition() {
    // DST ends in New York on Sunday 2026-11-01 at 02:00 EDT → 01:00 EST.
    let s = ny("0 0 8 * * *");
    let sat = s.next_fire_after(utc("2026-10-31T00:00:00Z")).unwrap();
    assert_eq!(sat, utc("2026-10-31T12:00:00Z"));
    let sun = s.next_fire_after(sat).unwrap();
    assert_eq!(sun, utc("2026-11-01T13:00:00Z"));
    let mon = s.next_fire_after(sun).unwrap();
    assert_eq!(mon, utc("2026-11-02T13:00:00Z"));
    for t in [sat, sun, mon] {
        assert!(local(&s, t).contains(" 08:00:00 "), "{}", local(&s, t));
    }
    let (start, end) = s.period_ending_at(sun);
    assert_eq!((start, end), (sat, sun));
    assert_eq!(end - start, Duration::hours(25));
    // Queries from inside the repeated hour (both passes) still see the same fires.
    for t in [
        utc("2026-11-01T05:30:00Z"), // 01:30 EDT
        utc("2026-11-01T06:30:00Z"), // 01:30 EST
    ] {
        assert_eq!(s.next_fire_after(t), Some(sun));
        assert_eq!(s.latest_fire_at_or_before(t), Some(sat));
    }
}

#[test]
fn nonexistent_time_fires_when_clocks_jump() {
    // 02:30 does not exist in New York on 2026-03-08.
    let s = ny("0 30 2 * * *");
    let before = s.next_fire_after(utc("2026-03-07T00:00:00Z")).unwrap();
    assert_eq!(before, utc("2026-03-07T07:30:00Z"));
    let jump = s.next_fire_after(before).unwrap();
    assert_eq!(jump, utc("2026-03-08T07:00:00Z"), "03:00 EDT");
    let after = s.next_fire_after(jump).unwrap();
    assert_eq!(after, utc("2026-03-09T06:30:00Z"), "02:30 EDT");
    assert_eq!(
        s.latest_fire_at_or_before(utc("2026-03-08T08:00:00Z")),
        Some(jump)
    );
    assert_eq!(s.period_ending_at(after), (jump, after));
    assert_eq!(s.period_ending_at(jump), (before, jump));
}

#[test]
fn repeated_time_fires_once() {
    // 01:30 happens twice in New York on 2026-11-01; the digest goes out at the first.
    let s = ny("0 30 1 * * *");
    let first = s.next_fire_after(utc("2026-11-01T00:00:00Z")).unwrap();
    assert_eq!(first, utc("2026-11-01T05:30:00Z"), "01:30 EDT");
    let next = s.next_fire_after(first).unwrap();
    assert_eq!(next, utc("2026-11-02T06:30:00Z"), "01:30 EST next day");
    // From the second pass (01:10 EST, 01:45 EST) nothing more fires that night.
    for t in [utc("2026-11-01T06:10:00Z"), utc("2026-11-01T06:45:00Z")] {
        assert_eq!(s.next_fire_after(t), Some(next));
        assert_eq!(s.latest_fire_at_or_before(t), Some(first));
    }
    assert_eq!(s.period_ending_at(next), (first, next));
}

#[test]
fn interval_schedule_through_the_repeated_hour() {
    let s = ny("0 */30 * * * *");
    let mut fires = vec![];
    let mut t = utc("2026-11-01T04:00:00Z"); // 00:00 EDT
    while t < utc("2026-11-01T08:00:00Z") {
        t = s.next_fire_after(t).unwrap();
        fires.push(t);
    }
    let expected: Vec<_> = [
        "2026-11-01T04:30:00Z", // 00:30 EDT
        "2026-11-01T05:00:00Z", // 01:00 EDT
        "2026-11-01T05:30:00Z", // 01:30 EDT
        "2026-11-01T07:00:00Z", // 02:00 EST (the 01:xx EST repeats are folded in)
        "2026-11-01T07:30:00Z",
        "2026-11-01T08:00:00Z",
    ]
    .iter()
    .map(|s| utc(s))
    .collect();
    assert_eq!(fires, expected);
    // Walking backwards gives the same sequence.
    for pair in expected.windows(2) {
        assert_eq!(s.period_ending_at(pair[1]), (pair[0], pair[1]));
    }
    assert_eq!(
        s.latest_fire_at_or_before(utc("2026-11-01T06:59:59Z")),
        Some(utc("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn interval_schedule_through_the_skipped_hour() {
    let s = ny("0 */30 * * * *");
    let mut fires = vec![];
    let mut t = utc("2026-03-08T06:00:00Z"); // 01:00 EST
    while t < utc("2026-03-08T08:00:00Z") {
        t = s.next_fire_after(t).unwrap();
        fires.push(t);
    }
    let expected: Vec<_> = [
        "2026-03-08T06:30:00Z", // 01:30 EST
        "2026-03-08T07:00:00Z", // 03:00 EDT (02:00 and 02:30 collapse onto the jump)
        "2026-03-08T07:30:00Z", // 03:30 EDT
        "2026-03-08T08:00:00Z",
    ]
    .iter()
    .map(|s| utc(s))
    .collect();
    assert_eq!(fires, expected);
    for pair in expected.windows(2) {
        assert_eq!(s.period_ending_at(pair[1]), (pair[0], pair[1]));
    }
}

#[test]
fn other_timezones() {
    let utc_s = DigestSchedule::parse("0 0 8 * * *", "UTC").unwrap();
    assert_eq!(
        utc_s.next_fire_after(utc("2026-03-08T07:00:00Z")),
        Some(utc("2026-03-08T08:00:00Z"))
    );
    // Southern hemisphere: Sydney leaves DST on 2026-04-05 (03:00 AEDT → 02:00 AEST).
    let syd = DigestSchedule::parse("0 0 8 * * *", "Australia/Sydney").unwrap();
    let a = syd.next_fire_after(utc("2026-04-03T12:00:00Z")).unwrap();
    assert_eq!(a, utc("2026-04-03T21:00:00Z"));
    let b = syd.next_fire_after(a).unwrap();
    assert_eq!(b, utc("2026-04-04T22:00:00Z"));
}

#[test]
fn forward_and_backward_agree_around_transitions() {
    // For any t: latest(t) <= t < next(t), and nothing fires strictly between them.
    let cases = [
        ("0 0 8 * * *", "America/New_York"),
        ("0 */15 * * * *", "America/New_York"),
        ("30 */7 1-3 * * *", "America/New_York"),
        ("0 0 9 * * MON-FRI", "Europe/London"),
        ("0 0,30 * * * *", "Australia/Lord_Howe"), // 30-minute DST shift
        ("0 0 0 L * *", "America/Sao_Paulo"),
    ];
    let windows = [
        utc("2026-03-07T00:00:00Z"),
        utc("2026-10-30T00:00:00Z"),
        utc("2026-03-28T00:00:00Z"),
        utc("2026-04-03T00:00:00Z"),
        utc("2026-10-02T00:00:00Z"),
    ];
    let mut rng = fastrand::Rng::with_seed(11);
    for (cron, tz) in cases {
        let s = DigestSchedule::parse(cron, tz).unwrap();
        for start in windows {
            for _ in 0..150 {
                let t = start + Duration::seconds(rng.i64(0..4 * 86_400));
                let next = s.next_fire_after(t).unwrap();
                let latest = s.latest_fire_at_or_before(t).unwrap();
                assert!(latest <= t && t < next, "{cron} {tz} {t}");
                assert_eq!(s.next_fire_after(latest), Some(next), "{cron} {tz} {t}");
                assert_eq!(s.latest_fire_at_or_before(next), Some(next));
                assert_eq!(s.period_ending_at(next), (latest, next), "{cron} {tz} {t}");
            }
        }
    }
}

#[test]
fn extreme_instants_do_not_panic() {
    let s = ny("0 0 8 * * *");
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let _ = s.next_fire_after(t);
        let _ = s.latest_fire_at_or_before(t);
        let _ = s.period_ending_at(t);
    }
    assert_eq!(s.next_fire_after(DateTime::<Utc>::MAX_UTC), None);
    assert_eq!(s.latest_fire_at_or_before(DateTime::<Utc>::MIN_UTC), None);
    let (start, end) = s.period_ending_at(DateTime::<Utc>::MIN_UTC);
    assert_eq!(start, end);
}

#[test]
fn weekly_schedule() {
    let s = ny("0 0 9 * * MON");
    let fire = s.next_fire_after(utc("2026-03-04T00:00:00Z")).unwrap();
    assert_eq!(fire, utc("2026-03-09T13:00:00Z"), "first Monday after DST");
    let (start, end) = s.period_ending_at(fire);
    assert_eq!(start, utc("2026-03-02T14:00:00Z"));
    assert_eq!(end - start, Duration::hours(7 * 24 - 1));
}

#[test]
fn start_slash_step_is_still_accepted() {
    // croner 4 refuses `5/15` unless asked to accept it; configs written for croner 3 use it.
    let s = ny("0 5/15 * * * *");
    let t = utc("2026-01-10T00:06:00Z");
    assert_eq!(s.next_fire_after(t), Some(utc("2026-01-10T00:20:00Z")));
    assert_eq!(
        s.next_fire_after(t),
        ny("0 5-59/15 * * * *").next_fire_after(t)
    );
}
