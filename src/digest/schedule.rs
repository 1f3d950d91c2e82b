//! When digests fire, and which period each one covers.
//!
//! A schedule is a cron expression evaluated on the wall clock of an IANA timezone ("08:00 in
//! New York" stays 08:00 local across DST). A digest sent at fire time `T` covers the half-open
//! period `[previous fire, T)`, so consecutive digests tile time with no gap and no overlap.
//!
//! # DST policy
//!
//! croner finds the matching *wall-clock* times; this module alone decides which instant each
//! one means (croner is run on a fake UTC clock so that its own DST handling never applies):
//! - a wall-clock time that occurs twice (the repeated hour when clocks go back) fires once,
//!   at its first occurrence. A daily digest must not go out twice; an every-N-minutes schedule
//!   simply has one longer period that night.
//! - a wall-clock time that does not exist (the skipped hour when clocks go forward) fires at
//!   the instant the clocks jump, like Vixie cron: the digest is late, never lost.
//!
//! This mapping from wall-clock matches to instants is monotonic, which is what makes
//! `next_fire_after` / `latest_fire_at_or_before` consistent with each other.

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike as _, Duration, NaiveDateTime, Offset as _, TimeZone as _, Timelike as _,
    Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Field names in the order of a six-field expression, for error messages.
const FIELD_NAMES: [&str; 6] = [
    "seconds",
    "minutes",
    "hours",
    "day-of-month",
    "month",
    "day-of-week",
];

/// Bound on wall-clock matches examined per query. Matches are skipped only inside a repeated
/// DST hour (at most 3,600 for an every-second schedule), so this is never reached in practice;
/// it only guarantees termination.
const MAX_STEPS: u32 = 10_000;

/// Why a schedule was rejected. Each variant names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "cron expression `{expression}` has {count} fields; expected 6 (seconds minutes hours \
         day-of-month month day-of-week) or 5 (without seconds)"
    )]
    FieldCount { expression: String, count: usize },
    #[error("cron {field} field `{value}` is invalid: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cron expression `{expression}` is invalid: {reason}")]
    Pattern { expression: String, reason: String },
    #[error("cron expression `{expression}` never fires")]
    NeverFires { expression: String },
    #[error("unknown timezone `{0}` (expected an IANA name such as America/New_York)")]
    UnknownTimezone(String),
}

/// A parsed digest schedule: cron expression + IANA timezone.
#[derive(Debug, Clone)]
pub struct DigestSchedule {
    cron: Cron,
    expression: String,
    tz: Tz,
}

impl DigestSchedule {
    /// Parses a six-field (seconds first, e.g. `0 0 8 * * *`) or five-field (`0 8 * * *`) cron
    /// expression and an IANA timezone name.
    ///
    /// Nicknames (`@daily`) and a year field are refused: config should say what it means in
    /// the one format the docs describe.
    pub fn parse(cron: &str, timezone: &str) -> Result<DigestSchedule, ScheduleError> {
        let expression = cron.trim().to_string();
        let mut fields: Vec<&str> = expression.split_whitespace().collect();
        match fields.len() {
            6 => {}
            5 => fields.insert(0, "0"),
            count => {
                return Err(ScheduleError::FieldCount { expression, count });
            }
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build();
        let parsed = parser
            .parse(&fields.join(" "))
            .map_err(|e| field_error(&parser, &fields, &expression, &e))?;

        let tz: Tz = timezone
            .trim()
            .parse()
            .map_err(|_| ScheduleError::UnknownTimezone(timezone.to_string()))?;

        let schedule = DigestSchedule {
            cron: parsed,
            expression,
            tz,
        };
        // Catch expressions like `0 0 0 30 2 *` (30 February) at config time rather than as a
        // digest that silently never arrives. The reference instant is fixed so parsing stays
        // deterministic; 2000-01-01 precedes 29 February 2000, so leap-day schedules pass.
        let reference = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
        if schedule.next_fire_after(reference).is_none() {
            return Err(ScheduleError::NeverFires {
                expression: schedule.expression,
            });
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The timezone the expression is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `t`.
    pub fn next_fire_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !in_supported_range(t) {
            return None;
        }
        // Every wall-clock time at or before t's own reading maps to an instant <= t (the
        // mapping is monotonic), so the search starts there; matches are skipped only when t is
        // in the second pass of a repeated hour and the match's first occurrence was earlier.
        let mut naive = truncate_to_second(t.with_timezone(&self.tz).naive_local());
        for _ in 0..MAX_STEPS {
            naive = self.next_naive_after(naive)?;
            let fire = self.instant_of(naive)?;
            if fire > t {
                return Some(fire);
            }
        }
        None
    }

    /// The last fire time at or before `t` (the fire whose digest is due, or already sent, at
    /// `t`). Used at start-up to send a digest missed while the service was down.
    pub fn latest_fire_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !in_supported_range(t) {
            return None;
        }
        let local = t.with_timezone(&self.tz);
        // In the second pass of a repeated hour the wall clock reads lower than it did an hour
        // ago, and matches up to the end of that hour (first occurrence) are already in the
        // past. Reading t with the first pass's offset gives an upper bound that covers them.
        let upper = match self.tz.from_local_datetime(&local.naive_local()) {
            LocalResult::Ambiguous(earliest, _) => {
                let offset =
                    Duration::seconds(i64::from(earliest.offset().fix().local_minus_utc()));
                t.naive_utc()
                    .checked_add_signed(offset)
                    .unwrap_or(local.naive_local())
            }
            _ => local.naive_local(),
        };
        let mut naive = truncate_to_second(upper);
        let mut inclusive = true;
        for _ in 0..MAX_STEPS {
            naive = self.prev_naive(naive, inclusive)?;
            inclusive = false;
            let fire = self.instant_of(naive)?;
            if fire <= t {
                return Some(fire);
            }
        }
        None
    }

    /// The period `[start, fire)` covered by the digest sent at `fire`: `start` is the last fire
    /// strictly before `fire`.
    ///
    /// If no earlier fire exists (only conceivable at the edge of the representable calendar)
    /// the period is empty (`start == fire`) rather than unbounded: an unbounded start would not
    /// survive being stored or compared as text.
    pub fn period_ending_at(&self, fire: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = fire
            .checked_sub_signed(Duration::nanoseconds(1))
            .and_then(|just_before| self.latest_fire_at_or_before(just_before))
            .unwrap_or(fire);
        (start, fire)
    }

    /// Next wall-clock match strictly after `naive`. croner runs on a UTC clock here, where
    /// every wall-clock time exists exactly once, so no DST logic of its own applies.
    fn next_naive_after(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        let fake = Utc.from_utc_datetime(&naive);
        self.cron
            .find_next_occurrence(&fake, false)
            .ok()
            .map(|dt| dt.naive_utc())
    }

    /// Previous wall-clock match at or before (`inclusive`) / strictly before `naive`.
    fn prev_naive(&self, naive: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        let fake = Utc.from_utc_datetime(&naive);
        self.cron
            .find_previous_occurrence(&fake, inclusive)
            .ok()
            .map(|dt| dt.naive_utc())
    }

    /// The instant a wall-clock match fires at, per the DST policy in the module docs.
    fn instant_of(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => Some(dt.with_timezone(&Utc)),
            LocalResult::Ambiguous(earliest, _) => Some(earliest.with_timezone(&Utc)),
            LocalResult::None => self.gap_end(naive),
        }
    }

    /// The instant the wall clock first reads `naive` or later, for a `naive` inside a DST gap:
    /// the moment the clocks jumped over it.
    ///
    /// Binary search over whole seconds. Real UTC offsets lie within -12 h..+14 h, so the wall
    /// clock reads before `naive` 15 h earlier (in UTC terms) and after it 13 h later.
    fn gap_end(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        let reads_at_least = |ts: i64| -> bool {
            DateTime::<Utc>::from_timestamp(ts, 0)
                .is_some_and(|dt| dt.with_timezone(&self.tz).naive_local() >= naive)
        };
        let center = naive.and_utc().timestamp();
        let mut lo = center.checked_sub(15 * 3600)?;
        let mut hi = center.checked_add(13 * 3600)?;
        if reads_at_least(lo) || !reads_at_least(hi) {
            return None;
        }
        // Invariant: reads_at_least(lo) is false and reads_at_least(hi) is true.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reads_at_least(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::<Utc>::from_timestamp(hi, 0)
    }
}

/// croner searches years 1..=5000, and chrono panics converting instants at the very ends of
/// its range to local time; staying a year inside croner's range avoids both.
fn in_supported_range(t: DateTime<Utc>) -> bool {
    (2..=4999).contains(&t.year())
}

fn truncate_to_second(naive: NaiveDateTime) -> NaiveDateTime {
    naive.with_nanosecond(0).unwrap_or(naive)
}

/// Names the field croner rejected, by parsing each field alone with wildcards elsewhere.
fn field_error(
    parser: &CronParser,
    fields: &[&str],
    expression: &str,
    whole: &croner::errors::CronError,
) -> ScheduleError {
    for (index, (value, field)) in fields.iter().zip(FIELD_NAMES).enumerate() {
        let mut probe = ["*"; 6];
        if let Some(slot) = probe.get_mut(index) {
            *slot = value;
        }
        if let Err(e) = parser.parse(&probe.join(" ")) {
            return ScheduleError::Field {
                field,
                value: (*value).to_string(),
                reason: e.to_string(),
            };
        }
    }
    ScheduleError::Pattern {
        expression: expression.to_string(),
        reason: whole.to_string(),
    }
}

#[cfg(test)]
mod tests {
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
}
