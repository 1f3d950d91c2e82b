//! Named time intervals (`time_intervals:` in `routing.yaml`), e.g. exchange trading hours.
//!
//! An interval is a set of wall-clock ranges `[start, end)` in an IANA timezone, on chosen
//! weekdays, minus whole local days listed as holidays. Only the name is required: no
//! `timezone` means UTC (as for the digest), no (or empty) `weekdays` means every day, no (or
//! empty) `times` means the whole day. Weekday ranges may wrap (`sunday:thursday`), so a
//! Sunday-to-Thursday week is as easy to write as `monday:friday`. Overlapping or adjacent
//! `times` are merged: `09:00-12:00` and `12:00-13:00` are one range with one start.
//!
//! # DST policy
//!
//! A boundary `w` on local day `D` means one instant: the first at which the wall clock reads
//! `D w` or later. So, as for digest schedules (`schedule.rs`):
//! - a time that occurs twice (clocks go back) means its first occurrence, for starts and ends
//!   alike. A range containing the repeated hour stays inside through both passes: a window
//!   opening at 01:30 opens once, not again when the clock reads 01:30 a second time.
//! - a time that does not exist (clocks go forward) means the instant of the jump: a start in
//!   the skipped hour begins late, never lost; a range wholly inside it does not occur that day.
//!
//! The mapping is monotonic, so each day's ranges become ordered, disjoint instant ranges
//! ("pieces"), and `contains`, `next_start_after` and `end_after` are three views of the same
//! pieces. Pieces that touch, such as a range ending at 24:00 and the next day's range starting
//! at 00:00, form one stretch with one start.

use std::collections::{BTreeMap, BTreeSet};

use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, TimeDelta, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// Days searched for a start or an end: more than a year, so that an interval occurring once a
/// year (or after a long run of holidays) is found, and so that every query terminates.
const SEARCH_DAYS: usize = 400;
const MINUTES_PER_DAY: u16 = 24 * 60;
/// Bit `i` = `i` days after Monday.
const EVERY_DAY: u8 = 0x7f;
/// The one spelling accepted, Monday first: config says what it means in one way.
const DAY_NAMES: &str = "monday tuesday wednesday thursday friday saturday sunday";
const DAY_ABBREVIATIONS: &str = "MonTueWedThuFriSatSun";

/// An interval as written in `routing.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeInterval {
    /// IANA name; UTC when omitted.
    pub(crate) timezone: Option<String>,
    /// Day names (`monday`) or ranges (`monday:friday`).
    #[serde(default)]
    pub(crate) weekdays: Vec<String>,
    #[serde(default)]
    pub(crate) times: Vec<RawTimeRange>,
    /// Local dates `YYYY-MM-DD`, each wholly outside the interval.
    #[serde(default)]
    pub(crate) holidays: Vec<String>,
    /// At each start of the interval (the market open), the incidents of these severities still
    /// open are re-notified in one bundled message.
    #[serde(default)]
    pub(crate) renotify_at_start: Vec<crate::domain::Severity>,
}

/// `{ start: "HH:MM", end: "HH:MM" }`; `end` may be `24:00`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeRange {
    pub(crate) start: String,
    pub(crate) end: String,
}

/// Why an interval was rejected: the interval's name, then the value that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IntervalError {
    #[error("a time interval has an empty name")]
    EmptyName,
    #[error("time interval `{0}`: unknown timezone `{1}` (expected e.g. America/New_York)")]
    UnknownTimezone(String, String),
    #[error(
        "time interval `{0}`: weekday `{1}` is invalid (expected e.g. monday or monday:friday)"
    )]
    BadWeekday(String, String),
    #[error("time interval `{0}`: time `{1}` is invalid (expected HH:MM, 00:00 to 24:00)")]
    BadTime(String, String),
    /// Interval, start, end.
    #[error("time interval `{0}`: range {1}-{2} must start before it ends")]
    StartNotBeforeEnd(String, String, String),
    #[error("time interval `{0}`: holiday `{1}` is not a date (expected YYYY-MM-DD)")]
    BadHoliday(String, String),
}

/// A validated interval. See the module docs for its meaning around DST.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeInterval {
    pub(crate) name: String,
    tz: Tz,
    /// Bit `i` set: allowed `i` days after Monday.
    weekdays: u8,
    /// Minutes after local midnight, `[start, end)`: sorted, merged, never empty.
    ranges: Vec<(u16, u16)>,
    holidays: BTreeSet<NaiveDate>,
    /// See [`RawTimeInterval::renotify_at_start`].
    pub(crate) renotify_at_start: Vec<crate::domain::Severity>,
}

/// Instants `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

impl TimeInterval {
    /// Validates one interval, `name` being its key under `time_intervals:`. The first bad
    /// value is reported, as written.
    pub(crate) fn from_raw(
        name: &str,
        raw: RawTimeInterval,
    ) -> Result<TimeInterval, IntervalError> {
        if name.trim().is_empty() {
            return Err(IntervalError::EmptyName);
        }
        let tz = raw.timezone.as_deref().unwrap_or("UTC");
        let tz: Tz = parse_or(
            name,
            tz,
            |tz| tz.parse().ok(),
            IntervalError::UnknownTimezone,
        )?;
        let mut weekdays = 0;
        for value in &raw.weekdays {
            weekdays |= parse_or(name, value, weekday_mask, IntervalError::BadWeekday)?;
        }
        let mut ranges = Vec::with_capacity(raw.times.len());
        for RawTimeRange { start, end } in &raw.times {
            let range = (
                parse_or(name, start, parse_time, IntervalError::BadTime)?,
                parse_or(name, end, parse_time, IntervalError::BadTime)?,
            );
            if range.0 >= range.1 {
                let (name, start, end) = (name.to_string(), start.clone(), end.clone());
                return Err(IntervalError::StartNotBeforeEnd(name, start, end));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            ranges.push((0, MINUTES_PER_DAY));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let holidays = (raw.holidays.iter())
            .map(|value| parse_or(name, value, parse_date, IntervalError::BadHoliday))
            .collect::<Result<_, _>>()?;
        Ok(TimeInterval {
            name: name.to_string(),
            tz,
            // Every entry sets a day, so no day set means no entry: every day.
            weekdays: if weekdays == 0 { EVERY_DAY } else { weekdays },
            ranges: merged,
            holidays,
            renotify_at_start: raw.renotify_at_start,
        })
    }

    /// Whether the instant `at_ms` (epoch milliseconds) is inside the interval.
    pub(crate) fn contains(&self, at_ms: i64) -> bool {
        let Some((at, day)) = self.locate(at_ms) else {
            return false;
        };
        // Day D's pieces lie between the first readings of D 00:00 and D+1 00:00; where clocks
        // go back over midnight the reading can be a day off, hence the neighbours.
        [day.pred_opt(), Some(day), day.succ_opt()]
            .into_iter()
            .flatten()
            .any(|d| self.pieces(d).any(|(start, end)| start <= at && at < end))
    }

    /// The first instant strictly after `after_ms` at which the interval begins (outside just
    /// before, inside from then on); `None` if there is none within [`SEARCH_DAYS`].
    pub(crate) fn next_start_after(&self, after_ms: i64) -> Option<i64> {
        let (after, day) = self.locate(after_ms)?;
        // The day before starts nothing after `after`; it is walked so that a stretch running
        // over midnight into `day` is seen whole rather than as starting at midnight.
        let mut starts = self.stretches(day.pred_opt()?).map(|(start, _)| start);
        starts
            .find(|&start| start > after)
            .map(|start| start.timestamp_millis())
    }

    /// When `contains(at_ms)`, the instant the current stretch ends (touching pieces included).
    /// `None` when outside, and also when the stretch does not end within [`SEARCH_DAYS`] (an
    /// interval of every whole day): a caller that knows it is inside reads `None` as "not soon".
    pub(crate) fn end_after(&self, at_ms: i64) -> Option<i64> {
        let (at, day) = self.locate(at_ms)?;
        let mut stretches = self
            .stretches(day.pred_opt()?)
            .take_while(|&(start, _)| start <= at);
        let (_, end) = stretches.find(|&(_, end)| end.is_none_or(|end| at < end))?;
        end.map(|end| end.timestamp_millis())
    }

    /// Short text for logs and pages, e.g. `Mon-Fri 09:30-16:00 America/New_York, 10 holidays`.
    pub(crate) fn describe(&self) -> String {
        let mut text = String::new();
        for (day, name) in (0..7).map(|d| (d, DAY_ABBREVIATIONS.get(3 * d..3 * d + 3))) {
            // Days are written at the start and at the end of each run of allowed days.
            match (self.on(day), day > 0 && self.on(day - 1), self.on(day + 1)) {
                (true, false, _) if !text.is_empty() => text.push(','),
                (true, true, false) => text.push('-'),
                (true, false, _) => {}
                _ => continue,
            }
            text.push_str(name.unwrap_or_default());
        }
        let hh_mm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        for (i, &(start, end)) in self.ranges.iter().enumerate() {
            text.push(if i == 0 { ' ' } else { ',' });
            text.push_str(&format!("{}-{}", hh_mm(start), hh_mm(end)));
        }
        match self.holidays.len() {
            0 => format!("{text} {}", self.tz.name()),
            1 => format!("{text} {}, 1 holiday", self.tz.name()),
            n => format!("{text} {}, {n} holidays", self.tz.name()),
        }
    }

    fn on(&self, day: usize) -> bool {
        day < 7 && self.weekdays & (1 << day) != 0
    }

    /// The instant and its local date, for instants well inside chrono's range (converting to
    /// local time panics near its ends).
    fn locate(&self, at_ms: i64) -> Option<(DateTime<Utc>, NaiveDate)> {
        let at = DateTime::<Utc>::from_timestamp_millis(at_ms)?;
        let year_ok = (1..=9999).contains(&at.year());
        year_ok.then(|| (at, at.with_timezone(&self.tz).date_naive()))
    }

    /// The non-empty pieces of `day`, in order; none on other weekdays and on holidays.
    fn pieces(&self, day: NaiveDate) -> impl Iterator<Item = Span> + '_ {
        let active =
            self.on(day.weekday().num_days_from_monday() as usize) && !self.holidays.contains(&day);
        (self.ranges.iter())
            .filter(move |_| active)
            .filter_map(move |&(start, end)| {
                let piece = (self.instant_of(day, start)?, self.instant_of(day, end)?);
                (piece.0 < piece.1).then_some(piece)
            })
    }

    /// The stretches (runs of touching pieces) of [`SEARCH_DAYS`] days from `first_day`, as
    /// (start, end); the end is `None` when the stretch runs to the end of the search.
    fn stretches(
        &self,
        first_day: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, Option<DateTime<Utc>>)> + '_ {
        let days = first_day.iter_days().take(SEARCH_DAYS);
        let mut pieces = days.flat_map(|day| self.pieces(day)).peekable();
        std::iter::from_fn(move || {
            let (start, mut end) = pieces.next()?;
            while let Some((_, next_end)) = pieces.next_if(|&(next_start, _)| next_start <= end) {
                end = next_end;
            }
            Some((start, pieces.peek().is_some().then_some(end)))
        })
    }

    /// The instant `minute` minutes after midnight of `day` means, per the DST policy.
    fn instant_of(&self, day: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let wall =
            NaiveDateTime::from(day).checked_add_signed(TimeDelta::minutes(minute.into()))?;
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => Some(dt.to_utc()),
            LocalResult::None => self.gap_end(wall),
        }
    }

    /// The instant the wall clock first reads `wall` or later, for a `wall` inside a DST gap:
    /// when the clocks jumped. Binary search over whole seconds, as in `schedule.rs`: offsets
    /// lie within -12 h..+14 h, which brackets the jump.
    fn gap_end(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let reads_at_least = |ts: i64| {
            DateTime::<Utc>::from_timestamp(ts, 0)
                .is_some_and(|dt| dt.with_timezone(&self.tz).naive_local() >= wall)
        };
        let center = wall.and_utc().timestamp();
        let (mut lo, mut hi) = (
            center.checked_sub(15 * 3600)?,
            center.checked_add(13 * 3600)?,
        );
        if reads_at_least(lo) || !reads_at_least(hi) {
            return None;
        }
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

/// Validates every interval of `time_intervals:`, keyed by name.
pub(crate) fn parse_all(
    raw: BTreeMap<String, RawTimeInterval>,
) -> Result<BTreeMap<String, TimeInterval>, IntervalError> {
    (raw.into_iter())
        .map(|(name, interval)| Ok((name.clone(), TimeInterval::from_raw(&name, interval)?)))
        .collect()
}

/// `parse(value)`, or the error `bad` naming the interval and the value as written.
fn parse_or<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    bad: fn(String, String) -> IntervalError,
) -> Result<T, IntervalError> {
    parse(value.trim()).ok_or_else(|| bad(name.to_string(), value.to_string()))
}

/// `monday`, or `first:last` (wrapping past Sunday when `last` comes first), as a bitmask.
fn weekday_mask(value: &str) -> Option<u8> {
    let day = |name: &str| DAY_NAMES.split(' ').position(|d| d == name);
    let (first, last) = match value.split_once(':') {
        Some((first, last)) => (day(first)?, day(last)?),
        None => (day(value)?, day(value)?),
    };
    let length = (last + 7 - first) % 7 + 1;
    Some((first..first + length).fold(0, |mask, d| mask | 1 << (d % 7)))
}

/// Strict `HH:MM` (two digits each) as minutes after midnight, up to `24:00`.
fn parse_time(value: &str) -> Option<u16> {
    let (hours, minutes) = value.split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let (hours, minutes): (u16, u16) = match two_digits(hours) && two_digits(minutes) {
        true => (hours.parse().ok()?, minutes.parse().ok()?),
        false => return None,
    };
    (minutes < 60 && hours * 60 + minutes <= MINUTES_PER_DAY).then_some(hours * 60 + minutes)
}

/// Strict `YYYY-MM-DD` (chrono alone also takes `2026-1-1`).
fn parse_date(value: &str) -> Option<NaiveDate> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
    date.filter(|_| value.len() == 10)
}

#[cfg(test)]
mod tests {
    use super::IntervalError::*;
    use super::*;
    use serde_json::{Value, json};

    fn interval(value: Value) -> Result<TimeInterval, IntervalError> {
        let raw = serde_json::from_value(value).expect("raw interval");
        TimeInterval::from_raw("hours", raw)
    }

    fn new_york(start: &str, end: &str) -> TimeInterval {
        let times = [json!({ "start": start, "end": end })];
        interval(json!({ "timezone": "America/New_York", "times": times })).expect("valid")
    }

    /// The example of the routing.yaml docs.
    fn nyse() -> TimeInterval {
        interval(json!({
            "timezone": "America/New_York",
            "weekdays": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "times": [{ "start": "09:30", "end": "16:00" }],
            "holidays": ["2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25",
                         "2026-06-19", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25"],
        }))
        .expect("valid")
    }

    /// One case a line, all UTC: `<date> <HH:MM[:SS[.fff]]> <expected>  # comment`, expected
    /// being `in` / `out` (contains), `next <date> <HH:MM>` (next_start_after) or
    /// `end <date> <HH:MM>` (end_after), `next none` / `end none` for `None`.
    fn check(interval: &TimeInterval, cases: &str) {
        let show = |ms: Option<i64>| match ms.and_then(DateTime::<Utc>::from_timestamp_millis) {
            Some(t) => t.format("%F %R").to_string(),
            None => "none".to_string(),
        };
        for case in cases.lines().filter_map(|l| l.split('#').next()) {
            let words: Vec<&str> = case.split_whitespace().collect();
            let [date, time, expected @ ..] = words.as_slice() else {
                continue;
            };
            let text = format!("{date} {time}");
            let parse = |format| NaiveDateTime::parse_from_str(&text, format);
            let at = parse("%F %T%.f")
                .or_else(|_| parse("%F %R"))
                .expect("UTC time");
            let at = at.and_utc().timestamp_millis();
            let got = match expected.first() {
                Some(&"next") => format!("next {}", show(interval.next_start_after(at))),
                Some(&"end") => format!("end {}", show(interval.end_after(at))),
                _ => (if interval.contains(at) { "in" } else { "out" }).to_string(),
            };
            assert_eq!(got, expected.join(" "), "{} at {text}", interval.describe());
        }
    }

    #[test]
    fn nyse_sessions_holidays_and_next_open() {
        check(
            &nyse(),
            "
            2026-01-15 14:29:59      out  # Thursday, EST (UTC-5)
            2026-01-15 14:30         in
            2026-01-15 20:59:59.999  in
            2026-01-15 21:00         out
            2026-01-15 15:00         end 2026-01-15 21:00
            2026-01-15 21:00         end none
            2026-07-15 13:29:59      out  # Wednesday, EDT (UTC-4)
            2026-07-15 13:30         in
            2026-07-15 19:59:59      in
            2026-07-15 20:00         out
            2026-01-17 15:00         out  # Saturday
            2026-11-26 15:00         out  # Thanksgiving
            2026-11-27 15:00         in
            2026-01-23 22:00         next 2026-01-26 14:30  # Friday evening: Monday
            2026-01-16 22:00         next 2026-01-20 14:30  # Martin Luther King day skipped
            2026-11-25 21:00         next 2026-11-27 14:30  # Thanksgiving skipped
            2026-03-06 21:00         next 2026-03-09 13:30  # clocks go forward on Sunday
            2026-01-15 14:29:59.999  next 2026-01-15 14:30
            2026-01-15 14:30         next 2026-01-16 14:30  # strictly after
        ",
        );
    }

    #[test]
    fn dst_changes_in_new_york() {
        // 8 March 2026: 02:00 EST becomes 03:00 EDT at 07:00Z; 01:30-03:00 lasts 30 minutes.
        check(
            &new_york("01:30", "03:00"),
            "
            2026-03-07 08:00     next 2026-03-08 06:30
            2026-03-08 06:59:59  in
            2026-03-08 07:00     out
            2026-03-08 06:45     end 2026-03-08 07:00
            2026-03-08 06:30     next 2026-03-09 05:30  # EDT from now on
        ",
        );
        // A start that does not exist begins when the clocks jump; a range wholly inside the
        // skipped hour does not occur that day.
        check(
            &new_york("02:30", "04:00"),
            "
            2026-03-08 00:00     next 2026-03-08 07:00
            2026-03-08 06:59:59  out
            2026-03-08 07:00     end 2026-03-08 08:00
        ",
        );
        check(
            &new_york("02:00", "02:30"),
            "2026-03-07 08:00 next 2026-03-09 06:00",
        );
        // 1 November 2026: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:30 is 05:30Z and 06:30Z.
        check(
            &new_york("01:30", "03:00"),
            "
            2026-10-31 07:00     next 2026-11-01 05:30
            2026-11-01 06:15     in                     # 01:15 EST, the second pass
            2026-11-01 06:15     end 2026-11-01 08:00
            2026-11-01 08:00     out                    # 03:00 EST
            2026-11-01 05:30     next 2026-11-02 06:30  # none at the second 01:30
        ",
        );
    }

    #[test]
    fn touching_ranges_form_one_stretch() {
        let times = json!([{"start": "12:00", "end": "13:00"}, {"start": "09:00", "end": "12:00"}]);
        let day = interval(json!({ "times": times })).expect("valid");
        assert_eq!(day.describe(), "Mon-Sun 09:00-13:00 UTC");
        check(
            &day,
            "
            2026-01-15 12:00  in
            2026-01-15 08:00  next 2026-01-15 09:00
            2026-01-15 11:00  next 2026-01-16 09:00
            2026-01-15 10:00  end 2026-01-15 13:00
        ",
        );
        let times = json!([{"start": "22:00", "end": "24:00"}, {"start": "00:00", "end": "02:00"}]);
        check(
            &interval(json!({ "times": times })).expect("valid"),
            "
            2026-01-16 00:00  in
            2026-01-15 23:00  next 2026-01-16 22:00
            2026-01-15 23:30  end 2026-01-16 02:00
        ",
        );
        check(
            &interval(json!({ "weekdays": ["saturday:sunday"] })).expect("valid"),
            "
            2026-01-16 12:00  next 2026-01-17 00:00
            2026-01-17 00:00  next 2026-01-24 00:00
            2026-01-17 12:00  end 2026-01-19 00:00
        ",
        );
    }

    #[test]
    fn searches_are_bounded() {
        // Every Monday for 60 weeks is a holiday: no start within the 400 days searched.
        let first = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let mondays: Vec<String> = first.iter_weeks().take(60).map(|d| d.to_string()).collect();
        let never = interval(json!({ "weekdays": ["monday"], "holidays": mondays }));
        check(&never.expect("valid"), "2026-01-01 00:00 next none");
        // Always inside: no start, and no end within the search.
        let always = interval(json!({})).expect("valid");
        check(
            &always,
            "2026-01-01 00:00 next none \n 2026-01-01 00:00 end none",
        );
        assert!(!always.contains(i64::MAX));
        assert_eq!(nyse().next_start_after(i64::MIN), None);
    }

    #[test]
    fn weekday_forms_and_describe() {
        let days = |days: Value| interval(json!({ "weekdays": days })).expect("valid");
        let listed = json!(["monday", "tuesday", "wednesday", "thursday", "friday"]);
        assert_eq!(days(json!(["monday:friday"])), days(listed));
        let wrapped = days(json!(["sunday:thursday"]));
        assert_eq!(wrapped, days(json!(["monday:thursday", "sunday"])));
        assert_eq!(wrapped.describe(), "Mon-Thu,Sun 00:00-24:00 UTC");
        let expected = "Mon-Fri 09:30-16:00 America/New_York, 10 holidays";
        assert_eq!(nyse().describe(), expected);
        let times = json!([{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "24:00"}]);
        let split = interval(json!({ "weekdays": ["monday", "wednesday"], "times": times,
            "timezone": "Europe/London", "holidays": ["2026-12-25"] }));
        let expected = "Mon,Wed 08:00-12:00,13:00-24:00 Europe/London, 1 holiday";
        assert_eq!(split.expect("valid").describe(), expected);
        assert_eq!(days(json!([])).describe(), "Mon-Sun 00:00-24:00 UTC");
    }

    #[test]
    fn parse_all_keys_by_name() {
        let raw = json!({ "nyse-regular": { "timezone": "America/New_York" }, "any": {} });
        let all = parse_all(serde_json::from_value(raw).expect("raw")).expect("valid");
        let names: Vec<&str> = all.values().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["any", "nyse-regular"]);
        let empty = serde_json::from_value(json!({ " ": {} })).expect("raw");
        assert_eq!(parse_all(empty), Err(EmptyName));
    }

    #[test]
    fn bad_input_is_named() {
        let s = |value: &str| value.to_string();
        let e = interval(json!({ "timezone": "America/New_Yrok" })).expect_err("invalid");
        assert_eq!(e, UnknownTimezone(s("hours"), s("America/New_Yrok")));
        let text = e.to_string();
        assert!(
            text.contains("`hours`: unknown timezone `America/New_Yrok`"),
            "{text}"
        );
        for day in ["Monday", "mon", "monday:fri", "monday:tuesday:friday", ""] {
            let e = BadWeekday(s("hours"), s(day));
            assert_eq!(interval(json!({ "weekdays": [day] })), Err(e));
        }
        for time in [
            "9:30", "24:30", "12:60", "25:00", "noon", "09:30:00", "+9:30",
        ] {
            let times = [json!({ "start": time, "end": "24:00" })];
            let e = BadTime(s("hours"), s(time));
            assert_eq!(interval(json!({ "times": times })), Err(e));
        }
        for (start, end) in [("16:00", "09:30"), ("10:00", "10:00"), ("24:00", "24:00")] {
            let times = [json!({ "start": start, "end": end })];
            let e = StartNotBeforeEnd(s("hours"), s(start), s(end));
            assert_eq!(interval(json!({ "times": times })), Err(e));
        }
        for date in ["2026-02-30", "2026-1-1", "01/01/2026", "2026-13-01"] {
            let e = BadHoliday(s("hours"), s(date));
            assert_eq!(interval(json!({ "holidays": [date] })), Err(e));
        }
        let raw = serde_json::from_value::<RawTimeInterval>;
        assert!(raw(json!({ "timezones": "UTC" })).is_err());
        assert!(raw(json!({ "times": [{ "start": "09:00", "stop": "10:00" }] })).is_err());
    }
}
