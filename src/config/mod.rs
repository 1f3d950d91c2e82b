//! `routing.yaml`: channels, environment aliases, rules, severity policies, digest schedule.
//!
//! Loading is two steps: a strict YAML parse (unknown keys and bad values are errors that name
//! the line), then semantic validation (rules naming a missing channel, severities without a
//! policy, ...), whose errors also name the line. `${ENV}` references are resolved last, so that
//! a missing secret leaves a channel unconfigured instead of failing start-up.

pub(crate) mod duration;
pub(crate) mod interpolate;
pub(crate) mod intervals;
pub(crate) mod live;
pub(crate) mod schedule;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

pub(crate) use duration::HumanDuration;
use interpolate::{Interpolated, interpolate};
pub use live::Live;
pub(crate) use schedule::DigestSchedule;

use crate::domain::Severity;
pub(crate) use crate::domain::{ChannelKind, DigestCadence, Policy};
use crate::templates::digest::{CompiledDigestTemplates, DigestTemplateOverrides};
use crate::templates::notify::{NotificationTemplates, TemplateOverrides};

/// A problem in a routing file, always naming the file and (where known) the line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

// ---------- the file as written ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    environments: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    severities: BTreeMap<String, Spanned<RawPolicy>>,
    digest: Option<RawDigest>,
    #[serde(default)]
    templates: RawTemplates,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    retention: RawRetention,
    /// Where resolution post-mortems go; default: every Slack channel.
    post_mortem_to: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    storm: RawStorm,
    /// Named time intervals (trading hours), used by rules (`during`, `not_during`), policies
    /// (`escalate_after_during`), `heartbeat.during` and `renotify_at_start`.
    #[serde(default)]
    time_intervals: BTreeMap<String, intervals::RawTimeInterval>,
    heartbeat: Option<RawHeartbeat>,
    canary: Option<RawCanary>,
    sentry_contract: Option<RawContract>,
}

/// `heartbeat:`: no webhook from Sentry within `expect_within` (while `during`, when set) raises
/// a Critical.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    expect_within: HumanDuration,
    during: Option<String>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

/// `canary:`: events tagged `canary: true` never page; none for `expect_every` pages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    expect_every: HumanDuration,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

/// `sentry_contract:`: Sentry unsubscribes a webhook after 1,000 answers slower than 1 s in a
/// day; more than `max_slow_or_failed` slow or 5xx answers `within` raise a Critical first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    #[serde(default = "default_contract_max")]
    max_slow_or_failed: u32,
    within: Option<HumanDuration>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

fn default_contract_max() -> u32 {
    500
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorm {
    enabled: Option<bool>,
    threshold: Option<u32>,
    window: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    #[serde(rename = "type")]
    kind: Spanned<ChannelKind>,
    channel: Option<String>,
    webhook_url: Option<String>,
    bot_token: Option<String>,
    routing_key: Option<String>,
    events_url: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    /// `type: sentry`: the organization's slug, the API token (an internal integration's, with
    /// `event:write`), the integration's installation UUID (for sidebar links, optional), the
    /// API's base URL (default `https://sentry.io`), and who our actor names are in Sentry.
    organization: Option<String>,
    api_token: Option<String>,
    installation_uuid: Option<String>,
    api_url: Option<String>,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    severity: Spanned<Severity>,
    #[serde(default)]
    when: RawWhen,
}

/// One value or a list of values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    environment: Option<Spanned<OneOrMany>>,
    level: Option<OneOrMany>,
    rule: Option<OneOrMany>,
    project: Option<OneOrMany>,
    resource: Option<OneOrMany>,
    action: Option<OneOrMany>,
    aggregate: Option<OneOrMany>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    rate: Option<RawRate>,
    transaction_duration_over: Option<HumanDuration>,
    apdex_below: Option<f64>,
    /// Only inside (`during`) or outside (`not_during`) these `time_intervals`.
    during: Option<OneOrMany>,
    not_during: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    more_than: u32,
    within: HumanDuration,
    #[serde(default)]
    per: RateGrouping,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    escalate_after: Option<HumanDuration>,
    #[serde(default)]
    escalate_to: Vec<Spanned<String>>,
    digest: Option<DigestCadence>,
    /// `escalate_after` while inside a time interval, e.g. `{ nyse-regular: 5m }`: the first
    /// interval (in name order) holding the moment an episode opens sets its window.
    #[serde(default)]
    escalate_after_during: BTreeMap<String, HumanDuration>,
    ack_timeout: Option<HumanDuration>,
    reack_on_rate: Option<f64>,
    confirm_within: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    schedule: Spanned<String>,
    #[serde(default = "default_timezone")]
    timezone: Spanned<String>,
    to: Vec<Spanned<String>>,
    weekly_schedule: Option<Spanned<String>>,
    #[serde(default = "default_true")]
    send_when_empty: bool,
    empty_note: Option<String>,
}

fn default_timezone() -> Spanned<String> {
    Spanned::new(
        "UTC".to_string(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    slack_text: Option<String>,
    email_subject: Option<String>,
    email_text: Option<String>,
    email_html: Option<String>,
    pagerduty_summary: Option<String>,
    daily_digest_subject: Option<Spanned<String>>,
    daily_digest_text: Option<Spanned<String>>,
    daily_digest_html: Option<Spanned<String>>,
    weekly_summary_subject: Option<Spanned<String>>,
    weekly_summary_text: Option<Spanned<String>>,
    weekly_summary_html: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    retry_schedule: Option<Vec<HumanDuration>>,
    max_attempts: Option<u32>,
    slack_update_interval: Option<HumanDuration>,
    send_timeout: Option<HumanDuration>,
    #[serde(default)]
    include_pii: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    raw_payloads: Option<HumanDuration>,
}

// ---------- the validated configuration ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateGrouping {
    #[default]
    Project,
    Issue,
}

/// A channel after `${ENV}` interpolation. `missing_env` lists unset variables: such a channel
/// is delivered through the log channel instead.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    pub slack_channel: Option<String>,
    pub webhook_url: Option<String>,
    pub bot_token: Option<String>,
    pub routing_key: Option<String>,
    pub events_url: Option<String>,
    pub to: Vec<String>,
    /// `type: sentry` (see [`SentrySync`]).
    pub sentry: Option<SentrySync>,
    pub missing_env: Vec<String>,
}

/// A `type: sentry` channel: where and as whom to call Sentry's API.
#[derive(Clone, PartialEq, Eq)]
pub struct SentrySync {
    pub organization: String,
    pub api_token: String,
    pub installation_uuid: Option<String>,
    pub api_url: String,
    /// Our actor names (who acknowledged) -> Sentry's `assignedTo` (`user:ID`, a username or an
    /// email). An actor not listed is not assigned.
    pub users: BTreeMap<String, String>,
}

impl ChannelConfig {
    pub fn is_configured(&self) -> bool {
        self.missing_env.is_empty() && self.kind != ChannelKind::Log
    }
}

impl fmt::Debug for ChannelConfig {
    // Secrets (webhook URLs, tokens, routing keys) are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("slack_channel", &self.slack_channel)
            .field("to", &self.to)
            .field("missing_env", &self.missing_env)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub when: Conditions,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    /// Accepted environment names (aliases already expanded, lowercase).
    pub environments: Option<Vec<String>>,
    pub levels: Option<Vec<String>>,
    pub sentry_rules: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
    pub aggregates: Option<Vec<String>>,
    pub tags: BTreeMap<String, String>,
    pub rate: Option<RateCondition>,
    pub transaction_duration_over_ms: Option<f64>,
    pub apdex_below: Option<f64>,
    /// Matches only inside one of these intervals.
    pub during: Option<Vec<intervals::TimeInterval>>,
    /// Matches only outside all of these.
    pub not_during: Vec<intervals::TimeInterval>,
}

impl Conditions {
    /// The time conditions at `now`: inside one `during` interval, outside every `not_during`.
    pub fn in_time(&self, now_ms: i64) -> bool {
        self.during
            .as_ref()
            .is_none_or(|list| list.iter().any(|i| i.contains(now_ms)))
            && !self.not_during.iter().any(|i| i.contains(now_ms))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateCondition {
    pub more_than: u32,
    pub within: HumanDuration,
    pub per: RateGrouping,
}

#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// `digest.schedule` in `timezone`, parsed once at load.
    pub schedule: DigestSchedule,
    pub timezone: String,
    pub to: Vec<String>,
    /// `digest.weekly_schedule` in `timezone`, parsed once at load.
    pub weekly_schedule: Option<DigestSchedule>,
    pub send_when_empty: bool,
    pub empty_note: String,
}

/// Delay after the 1st, 2nd, ... failed delivery attempt when `delivery.retry_schedule` is not
/// set (the last entry repeats): with [`DEFAULT_MAX_ATTEMPTS`], the last attempt comes about
/// 2 h 43 min after the first failure, long enough to ride out a typical provider incident.
pub(crate) const DEFAULT_RETRY_SCHEDULE: [std::time::Duration; 6] = [
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(30),
    std::time::Duration::from_secs(2 * 60),
    std::time::Duration::from_secs(10 * 60),
    std::time::Duration::from_secs(30 * 60),
    std::time::Duration::from_secs(60 * 60),
];
/// Attempts, the first included, when `delivery.max_attempts` is not set.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_schedule: Vec<std::time::Duration>,
    pub max_attempts: u32,
    pub slack_update_interval: std::time::Duration,
    pub send_timeout: std::time::Duration,
    pub include_pii: bool,
}

/// `storm:`: when more than `threshold` incidents open on one severity within `window`, the
/// rest join one storm group that pages once for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormSettings {
    pub enabled: bool,
    pub threshold: u32,
    pub window: std::time::Duration,
}

impl Default for StormSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 5,
            window: std::time::Duration::from_secs(120),
        }
    }
}

fn storm_settings(raw: RawStorm) -> Result<StormSettings, Invalid> {
    let default = StormSettings::default();
    let settings = StormSettings {
        enabled: raw.enabled.unwrap_or(default.enabled),
        threshold: raw.threshold.unwrap_or(default.threshold),
        window: raw.window.map_or(default.window, |d| d.0),
    };
    if settings.enabled && settings.window.is_zero() {
        return Err(Invalid {
            line: None,
            message: "storm.window must be longer than zero (or set storm.enabled: false)".into(),
        });
    }
    Ok(settings)
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub path: PathBuf,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub rules: Vec<Rule>,
    pub policies: BTreeMap<Severity, Policy>,
    pub digest: Option<DigestConfig>,
    /// Notification templates (defaults plus overrides), compiled (and checked) at load.
    pub templates: NotificationTemplates,
    /// Daily digest and weekly summary templates, compiled (and checked) at load.
    pub digest_templates: CompiledDigestTemplates,
    pub delivery: DeliverySettings,
    pub raw_payload_retention: std::time::Duration,
    pub post_mortem_to: Option<Vec<String>>,
    /// `environments:` as written (name -> aliases), for [`RoutingConfig::environment_names`].
    pub environment_aliases: BTreeMap<String, Vec<String>>,
    pub storm: StormSettings,
    /// `time_intervals:`, by name.
    pub intervals: BTreeMap<String, intervals::TimeInterval>,
    /// `escalate_after_during` of each severity: (interval, window in ms), in name order.
    pub escalate_windows: BTreeMap<Severity, Vec<(String, i64)>>,
    /// The watched pipeline: `heartbeat`, `canary`, `sentry_contract`.
    pub watch: WatchSettings,
}

/// What the pipeline watch (`crate::watch`) looks for.
#[derive(Debug, Clone, Default)]
pub struct WatchSettings {
    pub heartbeat: Option<Heartbeat>,
    pub canary: Option<Canary>,
    pub contract: Option<ContractWatch>,
}

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub expect_within_ms: i64,
    /// Only while inside this interval (e.g. trading hours): a quiet weekend is no outage.
    pub during: Option<intervals::TimeInterval>,
    /// Channels told instead of the critical policy's `notify` (empty: the policy's).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Canary {
    pub expect_every_ms: i64,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ContractWatch {
    pub max_slow_or_failed: u32,
    pub within_ms: i64,
    pub notify: Vec<String>,
}

impl RoutingConfig {
    /// The environment names a rule with `environment: name` accepts (aliases expanded,
    /// lowercase): what a silence's `environment` matcher means too.
    pub fn environment_names(&self, name: &str) -> Vec<String> {
        expand_environments(vec![name.to_string()], &self.environment_aliases)
    }

    /// Reads and validates `path`, resolving `${ENV}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read the routing file: {e}"),
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Reads `text` as a routing file named `path`, in named steps: YAML, channels, rules,
    /// severity policies, digest, post-mortem channels, templates, delivery settings. Each step
    /// reports the first problem it finds, with its line where known.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let in_file = |e: Invalid| ConfigError {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        };
        let raw = read_yaml(text).map_err(in_file)?;
        Self::from_raw(path, raw, env).map_err(in_file)
    }

    fn from_raw(
        path: &Path,
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Invalid> {
        let channels = resolve_channels(raw.channels, env)?;
        let intervals = intervals::parse_all(raw.time_intervals)
            .map_err(|e| Invalid::at(None, e.to_string()))?;
        let rules = resolve_rules(raw.rules, &raw.severities, &raw.environments, &intervals)?;
        let escalate_windows = resolve_escalate_windows(&raw.severities, &intervals)?;
        let policies = resolve_policies(raw.severities, &channels)?;
        let watch = resolve_watch(
            raw.heartbeat,
            raw.canary,
            raw.sentry_contract,
            &intervals,
            &channels,
        )?;
        let digest = raw
            .digest
            .map(|d| resolve_digest(d, &channels))
            .transpose()?;
        require_digest_section(digest.as_ref(), &policies)?;
        let post_mortem_to = raw
            .post_mortem_to
            .map(|list| channel_refs(&channels, &list, "post_mortem_to"))
            .transpose()?;
        let (templates, digest_templates) = compile_templates(raw.templates)?;
        let delivery = delivery_settings(raw.delivery)?;
        let storm = storm_settings(raw.storm)?;
        Ok(Self {
            path: path.to_path_buf(),
            channels,
            rules,
            policies,
            digest,
            templates,
            digest_templates,
            delivery,
            raw_payload_retention: raw
                .retention
                .raw_payloads
                .map(|d| d.0)
                .unwrap_or(std::time::Duration::from_secs(30 * 86_400)),
            post_mortem_to,
            environment_aliases: raw.environments,
            storm,
            intervals,
            escalate_windows,
            watch,
        })
    }

    pub fn policy(&self, severity: Severity) -> Policy {
        self.policies.get(&severity).cloned().unwrap_or_default()
    }

    /// The policy an episode opening at `now` freezes: `escalate_after_during` of the first
    /// interval holding `now`, else `escalate_after`.
    pub fn policy_at(&self, severity: Severity, now: i64) -> Policy {
        let mut policy = self.policy(severity);
        if let Some((_, window)) = self.escalation_window_at(severity, now)
            && policy.escalate_after_ms.is_some()
        {
            policy.escalate_after_ms = Some(window);
        }
        policy
    }

    /// What `check-config` prints beyond channels and rules: the time intervals, the watched
    /// pipeline and the Sentry sync, one line each.
    pub fn feature_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .intervals
            .values()
            .map(|i| {
                let renotify = if i.renotify_at_start.is_empty() {
                    String::new()
                } else {
                    let words: Vec<&str> = i.renotify_at_start.iter().map(|s| s.as_str()).collect();
                    format!("; re-notifies open {} at its start", words.join(", "))
                };
                format!("time interval {}: {}{renotify}", i.name, i.describe())
            })
            .collect();
        if let Some(h) = &self.watch.heartbeat {
            out.push(format!(
                "heartbeat: a Critical after {} without a webhook{}",
                crate::text::duration(h.expect_within_ms),
                h.during
                    .as_ref()
                    .map(|i| format!(" during {}", i.name))
                    .unwrap_or_default()
            ));
        }
        if let Some(c) = &self.watch.canary {
            out.push(format!(
                "canary: a Critical after {} without one",
                crate::text::duration(c.expect_every_ms)
            ));
        }
        if let Some(k) = &self.watch.contract {
            out.push(format!(
                "sentry_contract: a Critical above {} slow or failed answers in {}",
                k.max_slow_or_failed,
                crate::text::duration(k.within_ms)
            ));
        }
        for c in self
            .channels
            .values()
            .filter(|c| c.kind == ChannelKind::Sentry)
        {
            out.push(match &c.sentry {
                Some(s) => format!(
                    "Sentry sync {}: on (organization {})",
                    c.name, s.organization
                ),
                None => format!(
                    "Sentry sync {}: off ({} not set)",
                    c.name,
                    c.missing_env.join(", ")
                ),
            });
        }
        out
    }

    /// The interval of `escalate_after_during` that holds `now` for `severity`, if any (for
    /// `explain`).
    pub fn escalation_interval_at(&self, severity: Severity, now: i64) -> Option<&str> {
        self.escalation_window_at(severity, now)
            .map(|(name, _)| name)
    }

    /// The first `escalate_after_during` entry of `severity` whose interval holds `now`:
    /// (interval, window in ms).
    fn escalation_window_at(&self, severity: Severity, now: i64) -> Option<(&str, i64)> {
        self.escalate_windows
            .get(&severity)?
            .iter()
            .find(|(name, _)| self.intervals.get(name).is_some_and(|i| i.contains(now)))
            .map(|(name, ms)| (name.as_str(), *ms))
    }

    /// Channels whose secrets are unset, with the variables to set.
    pub fn unconfigured_channels(&self) -> Vec<(&str, &[String])> {
        self.channels
            .values()
            .filter(|c| !c.missing_env.is_empty())
            .map(|c| (c.name.as_str(), c.missing_env.as_slice()))
            .collect()
    }
}

/// A problem found by one step of [`RoutingConfig::parse`], before the file name is added.
#[derive(Debug)]
struct Invalid {
    line: Option<u64>,
    message: String,
}

impl Invalid {
    fn at(line: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl From<(Option<u64>, String)> for Invalid {
    fn from((line, message): (Option<u64>, String)) -> Self {
        Self { line, message }
    }
}

/// The strict YAML read: an unknown key or a bad value names its line.
fn read_yaml(text: &str) -> Result<RawConfig, Invalid> {
    serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        Invalid::at(line, first_line(&e.to_string()))
    })
}

fn resolve_channels(
    raw: BTreeMap<String, RawChannel>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, ChannelConfig>, Invalid> {
    raw.into_iter()
        .map(|(name, ch)| {
            let resolved = resolve_channel(&name, ch, env).map_err(|m| Invalid::at(None, m))?;
            Ok((name, resolved))
        })
        .collect()
}

/// Rules in file order: named, named once, with a severity that has a policy.
fn resolve_rules(
    raw: Vec<RawRule>,
    severities: &BTreeMap<String, Spanned<RawPolicy>>,
    environments: &BTreeMap<String, Vec<String>>,
    intervals: &BTreeMap<String, intervals::TimeInterval>,
) -> Result<Vec<Rule>, Invalid> {
    let mut rules = Vec::with_capacity(raw.len());
    for rule in raw {
        let line = line_of(&rule.name);
        if rule.name.value.trim().is_empty() {
            return Err(Invalid::at(line, "a rule needs a non-empty `name`"));
        }
        if rules.iter().any(|r: &Rule| r.name == rule.name.value) {
            return Err(Invalid::at(
                line,
                format!("rule `{}` is defined twice", rule.name.value),
            ));
        }
        if !severities.contains_key(rule.severity.value.as_str()) {
            return Err(Invalid::at(
                line_of(&rule.severity),
                format!(
                    "rule `{}` has severity `{}` but `severities:` has no policy for it",
                    rule.name.value,
                    rule.severity.value.as_str()
                ),
            ));
        }
        let when = resolve_when(rule.when, environments, intervals).map_err(|(line, m)| {
            Invalid::at(
                line.or(line_of(&rule.name)),
                format!("rule `{}`: {m}", rule.name.value),
            )
        })?;
        rules.push(Rule {
            name: rule.name.value,
            severity: rule.severity.value,
            when,
        });
    }
    Ok(rules)
}

/// The channel `r` names, if it is defined; `ctx` says who names it.
fn channel_ref(
    channels: &BTreeMap<String, ChannelConfig>,
    r: &Spanned<String>,
    ctx: &str,
) -> Result<String, Invalid> {
    if channels.contains_key(&r.value) {
        return Ok(r.value.clone());
    }
    Err(Invalid::at(
        line_of(r),
        format!(
            "{ctx} names channel `{}`, which is not defined under `channels:` (defined: {})",
            r.value,
            channels.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    ))
}

fn channel_refs(
    channels: &BTreeMap<String, ChannelConfig>,
    refs: &[Spanned<String>],
    ctx: &str,
) -> Result<Vec<String>, Invalid> {
    refs.iter().map(|r| channel_ref(channels, r, ctx)).collect()
}

/// [`channel_refs`] for the channels that page people: a `type: sentry` channel talks to
/// Sentry's API and pages nobody, so naming it there would be a page that never happens.
fn paging_refs(
    channels: &BTreeMap<String, ChannelConfig>,
    refs: &[Spanned<String>],
    ctx: &str,
) -> Result<Vec<String>, Invalid> {
    let names = channel_refs(channels, refs, ctx)?;
    if let Some((r, _)) = refs.iter().zip(&names).find(|(_, n)| {
        channels
            .get(*n)
            .is_some_and(|c| c.kind == ChannelKind::Sentry)
    }) {
        return Err(Invalid::at(
            line_of(r),
            format!(
                "{ctx} names `{}`, a `type: sentry` channel: it syncs with Sentry and pages nobody",
                r.value
            ),
        ));
    }
    Ok(names)
}

/// One policy per severity: known channels, and an escalation window exactly when there are
/// channels to escalate to.
fn resolve_policies(
    raw: BTreeMap<String, Spanned<RawPolicy>>,
    channels: &BTreeMap<String, ChannelConfig>,
) -> Result<BTreeMap<Severity, Policy>, Invalid> {
    let mut policies = BTreeMap::new();
    for (sev_name, policy) in raw {
        let line = line_of(&policy);
        let severity = Severity::parse(&sev_name).ok_or_else(|| {
            Invalid::at(
                line,
                format!(
                    "unknown severity `{sev_name}` (expected critical, high, medium, low or unclassified)"
                ),
            )
        })?;
        let p = policy.value;
        let ctx = format!("severity `{sev_name}`");
        let notify = paging_refs(channels, &p.notify, &ctx)?;
        let escalate_to = paging_refs(channels, &p.escalate_to, &ctx)?;
        match (&p.escalate_after, escalate_to.is_empty()) {
            (Some(_), true) => {
                return Err(Invalid::at(
                    line,
                    format!("{ctx} has `escalate_after` but no `escalate_to` channels"),
                ));
            }
            (None, false) => {
                return Err(Invalid::at(
                    line,
                    format!("{ctx} has `escalate_to` but no `escalate_after` window"),
                ));
            }
            (Some(d), false) if d.0.is_zero() => {
                return Err(Invalid::at(
                    line,
                    format!("{ctx} has a zero `escalate_after` window"),
                ));
            }
            _ => {}
        }
        check_lifecycle_settings(&p, escalate_to.is_empty(), notify.is_empty())
            .map_err(|m| Invalid::at(line, format!("{ctx} {m}")))?;
        policies.insert(
            severity,
            Policy {
                notify,
                escalate_after_ms: p.escalate_after.map(|d| d.as_millis_i64()),
                escalate_to,
                digest: p.digest,
                ack_timeout_ms: p.ack_timeout.map(|d| d.as_millis_i64()),
                reack_on_rate: p.reack_on_rate,
                confirm_within_ms: p.confirm_within.map(|d| d.as_millis_i64()),
            },
        );
    }
    Ok(policies)
}

/// `ack_timeout`, `reack_on_rate` and `confirm_within` must be able to do what they say: a
/// zero window would expire or fail over at once, a rate factor of 1 or less would re-page on
/// an unchanged rate, and a fail-over needs somewhere to fail over to.
fn check_lifecycle_settings(
    p: &RawPolicy,
    no_escalation: bool,
    no_notify: bool,
) -> Result<(), String> {
    if p.ack_timeout.is_some_and(|d| d.0.is_zero()) {
        return Err("has a zero `ack_timeout`".into());
    }
    if let Some(r) = p.reack_on_rate
        && !(r.is_finite() && r > 1.0)
    {
        return Err(format!(
            "has `reack_on_rate: {r}`: it must be a factor above 1 (e.g. 3: three times the rate before the acknowledgement)"
        ));
    }
    match p.confirm_within {
        Some(d) if d.0.is_zero() => Err("has a zero `confirm_within`".into()),
        Some(_) if no_escalation => {
            Err("has `confirm_within` but no `escalate_to` channels to fail over to".into())
        }
        Some(_) if no_notify => Err(
            "has `confirm_within` but no `notify` channels whose delivery it could confirm".into(),
        ),
        _ => Ok(()),
    }
}

/// The `digest:` section: schedules that parse, and email (or log) channels to send to.
fn resolve_digest(
    d: RawDigest,
    channels: &BTreeMap<String, ChannelConfig>,
) -> Result<DigestConfig, Invalid> {
    let schedule = DigestSchedule::parse(&d.schedule.value, &d.timezone.value).map_err(|e| {
        Invalid::at(
            line_of(&d.schedule).or(line_of(&d.timezone)),
            format!("digest: {e}"),
        )
    })?;
    let weekly_schedule = d
        .weekly_schedule
        .as_ref()
        .map(|w| {
            DigestSchedule::parse(&w.value, &d.timezone.value)
                .map_err(|e| Invalid::at(line_of(w), format!("digest.weekly_schedule: {e}")))
        })
        .transpose()?;
    if d.to.is_empty() {
        return Err(Invalid::at(
            line_of(&d.schedule),
            "digest.to is empty: name the email channel(s) the digest goes to, or remove the \
             `digest:` section",
        ));
    }
    let to = channel_refs(channels, &d.to, "digest")?;
    for (r, name) in d.to.iter().zip(&to) {
        if !matches!(channels[name].kind, ChannelKind::Email | ChannelKind::Log) {
            return Err(Invalid::at(
                line_of(r),
                format!("digest goes by email, but `{name}` is not an email channel"),
            ));
        }
    }
    Ok(DigestConfig {
        schedule,
        timezone: d.timezone.value,
        to,
        weekly_schedule,
        send_when_empty: d.send_when_empty,
        empty_note: d
            .empty_note
            .unwrap_or_else(|| "No medium incidents in this period.".to_string()),
    })
}

/// A severity that asks for a digest needs a `digest:` section to send it.
fn require_digest_section(
    digest: Option<&DigestConfig>,
    policies: &BTreeMap<Severity, Policy>,
) -> Result<(), Invalid> {
    let wants_digest = policies
        .values()
        .any(|p| matches!(p.digest, Some(DigestCadence::Daily | DigestCadence::Weekly)));
    if digest.is_none() && wants_digest {
        return Err(Invalid::at(
            None,
            "a severity asks for a digest but there is no `digest:` section",
        ));
    }
    Ok(())
}

/// Compiles the notification and digest templates once, checking every override against
/// sample messages (see `templates::notify` and `templates::digest`).
fn compile_templates(
    raw: RawTemplates,
) -> Result<(NotificationTemplates, CompiledDigestTemplates), Invalid> {
    let digest_templates = digest_templates(&raw)?;
    let overrides = TemplateOverrides {
        slack_text: raw.slack_text,
        email_subject: raw.email_subject,
        email_text: raw.email_text,
        email_html: raw.email_html,
        pagerduty_summary: raw.pagerduty_summary,
    };
    let templates = NotificationTemplates::new(&overrides)
        .map_err(|e| Invalid::at(None, format!("templates: {e}")))?;
    Ok((templates, digest_templates))
}

/// `delivery:` with its defaults; the retry schedule must have at least one step.
fn delivery_settings(raw: RawDelivery) -> Result<DeliverySettings, Invalid> {
    let retry_schedule = raw
        .retry_schedule
        .map(|v| v.into_iter().map(|d| d.0).collect::<Vec<_>>())
        .unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.to_vec());
    if retry_schedule.is_empty() {
        return Err(Invalid::at(
            None,
            "delivery.retry_schedule must not be empty",
        ));
    }
    Ok(DeliverySettings {
        retry_schedule,
        max_attempts: raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1),
        slack_update_interval: raw
            .slack_update_interval
            .map(|d| d.0)
            .unwrap_or(std::time::Duration::from_secs(30)),
        send_timeout: raw
            .send_timeout
            .map(|d| d.0)
            .unwrap_or(std::time::Duration::from_secs(10)),
        include_pii: raw.include_pii,
    })
}

/// Compiles the digest templates with the overrides given; an error names the template and,
/// where known, the line of its key.
fn digest_templates(raw: &RawTemplates) -> Result<CompiledDigestTemplates, (Option<u64>, String)> {
    let value = |t: &Option<Spanned<String>>| t.as_ref().map(|t| t.value.clone());
    let overrides = DigestTemplateOverrides {
        daily_digest_subject: value(&raw.daily_digest_subject),
        daily_digest_text: value(&raw.daily_digest_text),
        daily_digest_html: value(&raw.daily_digest_html),
        weekly_summary_subject: value(&raw.weekly_summary_subject),
        weekly_summary_text: value(&raw.weekly_summary_text),
        weekly_summary_html: value(&raw.weekly_summary_html),
    };
    CompiledDigestTemplates::new(&overrides).map_err(|e| {
        let key = match e.name.as_str() {
            "daily_digest_subject" => &raw.daily_digest_subject,
            "daily_digest_text" => &raw.daily_digest_text,
            "daily_digest_html" => &raw.daily_digest_html,
            "weekly_summary_subject" => &raw.weekly_summary_subject,
            "weekly_summary_text" => &raw.weekly_summary_text,
            _ => &raw.weekly_summary_html,
        };
        (key.as_ref().and_then(line_of), format!("templates: {e}"))
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    Some(s.referenced.line()).filter(|l| *l > 0)
}

fn resolve_channel(
    name: &str,
    raw: RawChannel,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ChannelConfig, String> {
    let kind = raw.kind.value;
    let mut missing = Vec::new();
    let mut resolve = |v: Option<String>| -> Result<Option<String>, String> {
        match v {
            None => Ok(None),
            Some(v) => match interpolate(&v, env).map_err(|e| format!("channel `{name}`: {e}"))? {
                Interpolated::Value(s) => Ok(Some(s)),
                Interpolated::Missing(vars) => {
                    missing.extend(vars);
                    Ok(None)
                }
            },
        }
    };
    let webhook_url = resolve(raw.webhook_url)?;
    let bot_token = resolve(raw.bot_token)?;
    let routing_key = resolve(raw.routing_key)?;
    let events_url = resolve(raw.events_url)?;
    let slack_channel = resolve(raw.channel)?;
    let organization = resolve(raw.organization)?;
    let api_token = resolve(raw.api_token)?;
    // Optional: without it the sync still resolves and assigns, only the sidebar link is off.
    let installation_uuid = match raw.installation_uuid {
        Some(v) => match interpolate(&v, env).map_err(|e| format!("channel `{name}`: {e}"))? {
            Interpolated::Value(s) => Some(s),
            Interpolated::Missing(_) => None,
        },
        None => None,
    };
    let api_url = resolve(raw.api_url)?;
    let mut to = Vec::new();
    for addr in raw.to {
        if let Some(a) = resolve(Some(addr))? {
            to.push(a);
        }
    }
    match kind {
        ChannelKind::Slack => {
            if slack_channel.is_none() && missing.is_empty() {
                return Err(format!(
                    "slack channel `{name}` needs `channel` (e.g. \"#paiid-alerts\")"
                ));
            }
            if webhook_url.is_none() && bot_token.is_none() && missing.is_empty() {
                return Err(format!(
                    "slack channel `{name}` needs `webhook_url` or `bot_token`"
                ));
            }
            // With both modes written, either secret is enough: the bot token is preferred.
            if webhook_url.is_some() || bot_token.is_some() {
                missing.clear();
            }
        }
        ChannelKind::Pagerduty => {
            if routing_key.is_none() && missing.is_empty() {
                return Err(format!("pagerduty channel `{name}` needs `routing_key`"));
            }
        }
        ChannelKind::Email => {
            if to.is_empty() && missing.is_empty() {
                return Err(format!(
                    "email channel `{name}` needs at least one address in `to`"
                ));
            }
            if let Some(bad) = to.iter().find(|a| !looks_like_email(a)) {
                return Err(format!(
                    "email channel `{name}`: `{bad}` is not an email address"
                ));
            }
        }
        ChannelKind::Log => {}
        ChannelKind::Sentry => {
            if (organization.is_none() || api_token.is_none()) && missing.is_empty() {
                return Err(format!(
                    "sentry channel `{name}` needs `organization` and `api_token`"
                ));
            }
        }
    }
    // Every variable it names must be set: an unset `api_url` must not send a self-hosted
    // installation's token to sentry.io.
    let sentry = match (kind, organization, api_token) {
        (ChannelKind::Sentry, Some(organization), Some(api_token)) if missing.is_empty() => {
            Some(SentrySync {
                organization,
                api_token,
                installation_uuid,
                api_url: api_url
                    .unwrap_or_else(|| "https://sentry.io".to_string())
                    .trim_end_matches('/')
                    .to_string(),
                users: raw.users,
            })
        }
        _ => None,
    };
    Ok(ChannelConfig {
        name: name.to_string(),
        kind,
        slack_channel,
        webhook_url,
        bot_token,
        routing_key,
        events_url,
        to,
        sentry,
        missing_env: missing,
    })
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn lower(v: Option<OneOrMany>) -> Option<Vec<String>> {
    v.map(|v| v.into_vec().into_iter().map(|s| s.to_lowercase()).collect())
}

/// The environment names a condition `environment: [names]` accepts: each name, plus its
/// aliases from `environments:`, lowercase (compared ignoring case). Rules and silences both
/// read an environment through this, so they agree on what `production` means.
fn expand_environments(names: Vec<String>, aliases: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for e in names {
        match aliases.get(&e) {
            Some(more) => {
                out.push(e.to_lowercase());
                out.extend(more.iter().map(|a| a.to_lowercase()));
            }
            None => out.push(e.to_lowercase()),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The intervals `names` refers to, each defined under `time_intervals:`.
fn interval_refs(
    names: Option<OneOrMany>,
    intervals: &BTreeMap<String, intervals::TimeInterval>,
    key: &str,
) -> Result<Option<Vec<intervals::TimeInterval>>, (Option<u64>, String)> {
    names
        .map(|n| {
            n.into_vec()
                .into_iter()
                .map(|name| {
                    intervals.get(&name).cloned().ok_or_else(|| {
                        (
                            None,
                            format!("`{key}: {name}` names no interval under `time_intervals:`"),
                        )
                    })
                })
                .collect()
        })
        .transpose()
}

/// `escalate_after_during` of each severity, its intervals defined.
fn resolve_escalate_windows(
    severities: &BTreeMap<String, Spanned<RawPolicy>>,
    intervals: &BTreeMap<String, intervals::TimeInterval>,
) -> Result<BTreeMap<Severity, Vec<(String, i64)>>, Invalid> {
    let mut out = BTreeMap::new();
    for (name, policy) in severities {
        let Some(severity) = Severity::parse(name) else {
            continue; // reported by resolve_policies
        };
        let mut windows = Vec::new();
        for (interval, after) in &policy.value.escalate_after_during {
            if !intervals.contains_key(interval) {
                return Err(Invalid::at(
                    line_of(policy),
                    format!(
                        "severity `{name}`: `escalate_after_during` names `{interval}`, which is not under `time_intervals:`"
                    ),
                ));
            }
            if after.0.is_zero() {
                return Err(Invalid::at(
                    line_of(policy),
                    format!("severity `{name}` has a zero `escalate_after_during.{interval}`"),
                ));
            }
            windows.push((interval.clone(), after.as_millis_i64()));
        }
        if !windows.is_empty() {
            out.insert(severity, windows);
        }
    }
    Ok(out)
}

/// `heartbeat`, `canary` and `sentry_contract`: windows above zero, known channels and intervals.
fn resolve_watch(
    heartbeat: Option<RawHeartbeat>,
    canary: Option<RawCanary>,
    contract: Option<RawContract>,
    intervals: &BTreeMap<String, intervals::TimeInterval>,
    channels: &BTreeMap<String, ChannelConfig>,
) -> Result<WatchSettings, Invalid> {
    let positive = |d: HumanDuration, what: &str| {
        if d.0.is_zero() {
            Err(Invalid::at(
                None,
                format!("`{what}` must be longer than zero"),
            ))
        } else {
            Ok(d.as_millis_i64())
        }
    };
    let heartbeat = heartbeat
        .map(|h| {
            let during = match &h.during {
                Some(name) => Some(intervals.get(name).cloned().ok_or_else(|| {
                    Invalid::at(
                        None,
                        format!(
                            "`heartbeat.during: {name}` names no interval under `time_intervals:`"
                        ),
                    )
                })?),
                None => None,
            };
            Ok::<_, Invalid>(Heartbeat {
                expect_within_ms: positive(h.expect_within, "heartbeat.expect_within")?,
                during,
                notify: paging_refs(channels, &h.notify, "heartbeat")?,
            })
        })
        .transpose()?;
    let canary = canary
        .map(|c| {
            Ok::<_, Invalid>(Canary {
                expect_every_ms: positive(c.expect_every, "canary.expect_every")?,
                notify: paging_refs(channels, &c.notify, "canary")?,
            })
        })
        .transpose()?;
    let contract = contract
        .map(|c| {
            let within = c
                .within
                .unwrap_or(HumanDuration(std::time::Duration::from_secs(86_400)));
            if c.max_slow_or_failed == 0 {
                return Err(Invalid::at(
                    None,
                    "`sentry_contract.max_slow_or_failed` must be above zero",
                ));
            }
            Ok(ContractWatch {
                max_slow_or_failed: c.max_slow_or_failed,
                within_ms: positive(within, "sentry_contract.within")?,
                notify: paging_refs(channels, &c.notify, "sentry_contract")?,
            })
        })
        .transpose()?;
    Ok(WatchSettings {
        heartbeat,
        canary,
        contract,
    })
}

fn resolve_when(
    w: RawWhen,
    environments: &BTreeMap<String, Vec<String>>,
    intervals: &BTreeMap<String, intervals::TimeInterval>,
) -> Result<Conditions, (Option<u64>, String)> {
    let environments = w
        .environment
        .map(|spanned| expand_environments(spanned.value.into_vec(), environments));
    if let Some(rate) = &w.rate
        && rate.within.0.is_zero()
    {
        return Err((None, "`rate.within` must be longer than zero".into()));
    }
    if let Some(a) = w.apdex_below
        && !(0.0..=1.0).contains(&a)
    {
        return Err((None, format!("`apdex_below: {a}` must be between 0 and 1")));
    }
    Ok(Conditions {
        environments,
        levels: lower(w.level),
        sentry_rules: w.rule.map(OneOrMany::into_vec),
        projects: w.project.map(OneOrMany::into_vec),
        resources: lower(w.resource),
        actions: lower(w.action),
        aggregates: w.aggregate.map(OneOrMany::into_vec),
        tags: w.tags,
        rate: w.rate.map(|r| RateCondition {
            more_than: r.more_than,
            within: r.within,
            per: r.per,
        }),
        transaction_duration_over_ms: w
            .transaction_duration_over
            .map(|d| d.0.as_secs_f64() * 1000.0),
        apdex_below: w.apdex_below,
        during: interval_refs(w.during, intervals, "during")?,
        not_during: interval_refs(w.not_during, intervals, "not_during")?.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
