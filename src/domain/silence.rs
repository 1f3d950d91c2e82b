//! Silences: a time window during which alerts matching a set of matchers are stored and counted
//! but notify nobody and do not escalate. Pure data and matching; storing, expiring and the effect
//! on incidents live in `store::silences` and `incidents`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Severity;

/// `silences.id`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct SilenceId(pub i64);

impl SilenceId {
    pub(crate) fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SilenceId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim_start_matches('#').parse().map(Self)
    }
}

/// Longest `title_regex` accepted: a silence is typed by a person, and a bound keeps a pasted
/// blob from becoming an expensive automaton compiled on every restart.
const MAX_REGEX_LEN: usize = 1_000;
/// Compiled-size bound for `title_regex` (the `regex` crate's own default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Longest silence accepted: a year covers a noisy staging until its rules are fixed; anything
/// longer is a typo (`100000d`) or a job for `routing.yaml`, not a silence.
pub(crate) const MAX_SILENCE_DAYS: i64 = 365;
const MAX_SILENCE_MS: i64 = MAX_SILENCE_DAYS * 86_400_000;

/// Why a silence cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SilenceError {
    #[error(
        "a silence needs at least one matcher (project, environment, rule, severity, level, tags, title_regex): an empty one would silence everything"
    )]
    NoMatchers,
    #[error("title_regex `{pattern}` is not a valid regular expression: {reason}")]
    BadRegex { pattern: String, reason: String },
    #[error("matcher `{0}` is empty: leave it out to match any value")]
    EmptyMatcher(&'static str),
    #[error("ends_at ({ends_at}) must be after starts_at ({starts_at})")]
    EndsBeforeStart { starts_at: i64, ends_at: i64 },
    #[error("author is required (who to ask about this silence)")]
    NoAuthor,
    #[error(
        "ends_at ({ends_at}) is already past (now {now}): a silence wholly in the past can never hold anything"
    )]
    AlreadyOver { ends_at: i64, now: i64 },
    #[error(
        "severity `{0}` is both matched and in let_through: this silence would let through everything it matches"
    )]
    LetsThroughItsOwnSeverity(Severity),
    #[error(
        "a silence longer than {MAX_SILENCE_DAYS} days is refused (this one lasts {days} days): to stop paging for good, change routing.yaml"
    )]
    TooLong { days: i64 },
}

/// A compiled `title_regex`; serialised as its pattern. Searched, not anchored: `timeout` matches
/// `Upstream timeout in /orders`, which is what a person silencing by title means.
#[derive(Clone)]
pub(crate) struct TitleRegex(regex::Regex);

impl TitleRegex {
    pub(crate) fn new(pattern: &str) -> Result<Self, SilenceError> {
        let bad = |reason: String| SilenceError::BadRegex {
            pattern: pattern.to_string(),
            reason,
        };
        if pattern.is_empty() {
            return Err(SilenceError::EmptyMatcher("title_regex"));
        }
        if pattern.len() > MAX_REGEX_LEN {
            return Err(bad(format!("longer than {MAX_REGEX_LEN} bytes")));
        }
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Self)
            .map_err(|e| bad(e.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub(crate) fn is_match(&self, title: &str) -> bool {
        self.0.is_match(title)
    }
}

impl fmt::Debug for TitleRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TitleRegex").field(&self.as_str()).finish()
    }
}

impl PartialEq for TitleRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for TitleRegex {}

impl TryFrom<String> for TitleRegex {
    type Error = SilenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<TitleRegex> for String {
    fn from(r: TitleRegex) -> String {
        r.as_str().to_string()
    }
}

impl Serialize for TitleRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TitleRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// What a silence matches. Every matcher that is set must hold (AND); an unset one matches
/// anything. Values compare exactly, except `environment`, which reads like a rule's
/// (`routing.yaml` aliases, case ignored); `tags` must all be present with these values.
/// Unknown fields are refused so that a typo (`projet`) is an error, not a silence of everything
/// else's matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The `routing.yaml` rule that classified the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Sentry's event level (`error`, `warning`, `fatal`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_regex: Option<TitleRegex>,
}

impl Matchers {
    /// Refuses a set that would match everything and matchers given as empty strings (an empty
    /// string only matches a missing value, which is never what was meant).
    pub(crate) fn validate(&self) -> Result<(), SilenceError> {
        let texts: [(&'static str, &Option<String>); 4] = [
            ("project", &self.project),
            ("environment", &self.environment),
            ("rule", &self.rule),
            ("level", &self.level),
        ];
        for (name, value) in texts {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(SilenceError::EmptyMatcher(name));
            }
        }
        if self.tags.keys().any(|k| k.trim().is_empty()) {
            return Err(SilenceError::EmptyMatcher("tags"));
        }
        if self.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.project.is_none()
            && self.environment.is_none()
            && self.rule.is_none()
            && self.severity.is_none()
            && self.level.is_none()
            && self.tags.is_empty()
            && self.title_regex.is_none()
    }

    /// True when every set matcher holds for `subject` (time and `let_through` aside).
    pub(crate) fn matches(&self, subject: &SilenceSubject<'_>) -> bool {
        fn eq(want: &Option<String>, got: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| got == Some(w))
        }
        eq(&self.project, subject.project)
            && self
                .environment
                .as_deref()
                .is_none_or(|w| subject.environments.environment_is(w, subject.environment))
            && eq(&self.rule, subject.rule)
            && eq(&self.level, subject.level)
            && self.severity.is_none_or(|s| s == subject.severity)
            && self
                .tags
                .iter()
                .all(|(k, v)| subject.tags.iter().any(|(sk, sv)| sk == k && sv == v))
            && self
                .title_regex
                .as_ref()
                .is_none_or(|r| r.is_match(subject.title))
    }

    /// One line for people: `project=api environment=production title~/timeout/`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        };
        push("project", &self.project);
        push("environment", &self.environment);
        push("rule", &self.rule);
        push("level", &self.level);
        if let Some(s) = self.severity {
            parts.push(format!("severity={s}"));
        }
        for (k, v) in &self.tags {
            parts.push(format!("tags.{k}={v}"));
        }
        if let Some(r) = &self.title_regex {
            parts.push(format!("title~/{}/", r.as_str()));
        }
        parts.join(" ")
    }
}

/// How a silence's `environment` matcher reads an alert's environment. The routing file decides
/// (its `environments:` aliases, case ignored), so that a silence for `production` holds exactly
/// the alerts a rule with `environment: production` matches; the domain cannot read the routing
/// file, so whoever matches passes it in (`impl EnvironmentNames for RoutingConfig`).
pub(crate) trait EnvironmentNames: fmt::Debug {
    /// True when an alert in `environment` is in `wanted` as a rule would read it.
    fn environment_is(&self, wanted: &str, environment: Option<&str>) -> bool;
}

/// What a silence is matched against: one alert as classified. Borrowed, so the writer and
/// `explain` build it from what they already hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SilenceSubject<'a> {
    pub project: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// What `environment` names mean: the routing file in force.
    pub environments: &'a dyn EnvironmentNames,
    /// The `routing.yaml` rule that matched, `None` when unclassified.
    pub rule: Option<&'a str>,
    /// The incident's severity after this alert (the worse of before and now).
    pub severity: Severity,
    pub level: Option<&'a str>,
    pub tags: &'a [(String, String)],
    pub title: &'a str,
}

/// Where a silence is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SilenceState {
    /// `starts_at` is still ahead.
    Pending,
    Active,
    /// Its end passed or it was expired by hand.
    Expired,
}

impl SilenceState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl fmt::Display for SilenceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A silence as asked for, before it has an id. Times in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewSilence {
    pub matchers: Matchers,
    pub starts_at: i64,
    pub ends_at: i64,
    pub author: String,
    pub comment: String,
    /// Severities that page anyway: an incident silenced at High that rises to Critical pages
    /// when `critical` is listed.
    pub let_through: Vec<Severity>,
}

impl NewSilence {
    /// Refused rather than stored with a warning: a window already over or a severity it lets
    /// through itself can never hold an alert, whatever the routing file says.
    pub(crate) fn validate(&self, now_ms: i64) -> Result<(), SilenceError> {
        self.matchers.validate()?;
        if self.ends_at <= self.starts_at {
            return Err(SilenceError::EndsBeforeStart {
                starts_at: self.starts_at,
                ends_at: self.ends_at,
            });
        }
        if self.ends_at.saturating_sub(self.starts_at) > MAX_SILENCE_MS {
            return Err(SilenceError::TooLong {
                days: self.ends_at.saturating_sub(self.starts_at) / 86_400_000,
            });
        }
        if self.ends_at <= now_ms {
            return Err(SilenceError::AlreadyOver {
                ends_at: self.ends_at,
                now: now_ms,
            });
        }
        if let Some(s) = self.matchers.severity
            && self.let_through.contains(&s)
        {
            return Err(SilenceError::LetsThroughItsOwnSeverity(s));
        }
        if self.author.trim().is_empty() {
            return Err(SilenceError::NoAuthor);
        }
        Ok(())
    }
}

/// A stored silence. Times in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Silence {
    pub id: SilenceId,
    pub matchers: Matchers,
    pub starts_at: i64,
    pub ends_at: i64,
    pub author: String,
    pub comment: String,
    pub let_through: Vec<Severity>,
    /// Set when expired by hand (`DELETE /api/silences/{id}`) before `ends_at`.
    pub expired_at: Option<i64>,
    pub created_at: i64,
}

impl Silence {
    /// When it stops holding alerts: `ends_at`, or earlier when expired by hand.
    pub(crate) fn effective_end(&self) -> i64 {
        self.expired_at
            .map_or(self.ends_at, |at| at.min(self.ends_at))
    }

    pub(crate) fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms >= self.effective_end() {
            SilenceState::Expired
        } else if now_ms < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    pub(crate) fn is_active(&self, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active
    }

    /// True when the silence is active at `now_ms` and its matchers hold for `subject`. It says
    /// nothing of `let_through`: `explain` reports a matching silence that lets the alert
    /// through; [`Silence::holds`] is what decides whether the alert is held.
    pub(crate) fn matches(&self, subject: &SilenceSubject<'_>, now_ms: i64) -> bool {
        self.is_active(now_ms) && self.matchers.matches(subject)
    }

    /// True when this severity pages despite the silence.
    pub(crate) fn lets_through(&self, severity: Severity) -> bool {
        self.let_through.contains(&severity)
    }

    /// True when the alert is held: the silence matches and does not let its severity through.
    pub(crate) fn holds(&self, subject: &SilenceSubject<'_>, now_ms: i64) -> bool {
        self.matches(subject, now_ms) && !self.lets_through(subject.severity)
    }
}

/// The first silence (lowest id) that holds `subject` at `now_ms`.
pub(crate) fn holding<'s>(
    silences: &'s [Silence],
    subject: &SilenceSubject<'_>,
    now_ms: i64,
) -> Option<&'s Silence> {
    silences
        .iter()
        .filter(|s| s.holds(subject, now_ms))
        .min_by_key(|s| s.id)
}

#[cfg(test)]
mod tests;
