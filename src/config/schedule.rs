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
            // croner 4 refuses `5/15` (start/step) by default; croner 3 accepted it and existing
            // routing files use it.
            .sloppy_ranges(true)
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
mod tests;
