//! Sentry webhook payloads: the integration platform's resources (`event_alert`, `metric_alert`,
//! `issue`, `error`, `installation`, `comment`) and the legacy WebHooks plugin.
//!
//! Only the fields that classification and incidents need are read, into borrowing structs; the
//! raw body is stored as bytes beside them. Every field is optional because real payloads omit
//! or null most of them (see `../shared/fixtures/sentry/README.md`).

use serde::{Deserialize, Serialize};

use super::envelope::{self, MAX_DEPTH, Rejection};
use super::lenient::{Number, Tags, Text, TextList};

pub(crate) use super::envelope::Unreadable;

/// What a payload means for incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Something is wrong: classify it and open or update an incident.
    Alert,
    /// Sentry says the issue or metric alert is resolved.
    Resolved,
    /// Sentry reopened the issue.
    Unresolved,
    /// Somebody was assigned in Sentry.
    Assigned,
    /// Ignored / archived in Sentry: mute the incident.
    Muted,
    /// A comment on the issue: a timeline note.
    Comment,
    /// Installation lifecycle: recorded, nothing else.
    Installation,
    /// Sentry's Seer (Autofix) reported on an issue: root cause, solution, pull request.
    Seer,
    /// A resource or action we do not act on: stored for inspection.
    Unknown,
    /// Sentry's envelope around a `data` we cannot read (see [`AlertFacts::unreadable`]): stored
    /// and announced, never an incident.
    Unparsed,
}

impl Meaning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Resolved => "resolved",
            Self::Unresolved => "unresolved",
            Self::Assigned => "assigned",
            Self::Muted => "muted",
            Self::Comment => "comment",
            Self::Installation => "installation",
            Self::Seer => "seer",
            Self::Unknown => "unknown",
            Self::Unparsed => "unparsed",
        }
    }
}

/// `data.issue.substatus`: why an issue is in its status. Sentry sends it with `unresolved`
/// (`regressed`, `escalating`, `ongoing`, `new`) and `ignored` (the `archived_*` ones); older
/// payloads have none. See `../shared/fixtures/sentry/README.md` and the fixtures built from
/// Sentry's code (`tests/fixtures/sentry-lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Substatus {
    Regressed,
    Escalating,
    Ongoing,
    New,
    ArchivedUntilEscalating,
    ArchivedUntilConditionMet,
    ArchivedForever,
    /// A word Sentry added since: kept as "unresolved" / "archived" without a reason.
    Other,
}

impl Substatus {
    fn parse(word: &str) -> Self {
        match word {
            "regressed" => Self::Regressed,
            "escalating" => Self::Escalating,
            "ongoing" => Self::Ongoing,
            "new" => Self::New,
            "archived_until_escalating" => Self::ArchivedUntilEscalating,
            "archived_until_condition_met" => Self::ArchivedUntilConditionMet,
            "archived_forever" => Self::ArchivedForever,
            _ => Self::Other,
        }
    }
}

/// Which report of Seer's a `seer` webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeerStage {
    RootCause,
    Solution,
    Coding,
    PullRequest,
    /// `*_started` and stages we do not read: recorded on the timeline by name.
    Other,
}

/// What a `seer` webhook says about its issue (`data.group_id`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeerFacts {
    /// The webhook's action as sent, e.g. `root_cause_completed`.
    pub stage: String,
    pub root_cause: Option<String>,
    pub solution: Option<String>,
    pub pr_url: Option<String>,
}

impl SeerFacts {
    pub fn kind(&self) -> SeerStage {
        match self.stage.as_str() {
            "root_cause_completed" => SeerStage::RootCause,
            "solution_completed" => SeerStage::Solution,
            "coding_completed" => SeerStage::Coding,
            "pr_created" => SeerStage::PullRequest,
            _ => SeerStage::Other,
        }
    }
}

/// A metric alert's aggregate and measured value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricFacts {
    pub alert_rule_id: Option<String>,
    pub aggregate: Option<String>,
    /// From `description_text`, e.g. `2450.0 p95(transaction.duration) ...` -> 2450.0.
    pub value: Option<f64>,
    /// 0 = alert above threshold, 1 = below (apdex).
    pub threshold_type: Option<i64>,
}

impl MetricFacts {
    /// A duration statistic (`p95(transaction.duration)`, `avg(...)`, `percentile(..., 0.9)`),
    /// not a count that merely mentions the field (`count_if(transaction.duration,greater,500)`).
    pub fn is_transaction_duration(&self) -> bool {
        const DURATION_STATS: &[&str] = &[
            "p50",
            "p75",
            "p90",
            "p95",
            "p99",
            "p100",
            "percentile",
            "avg",
            "max",
            "min",
            "median",
        ];
        self.aggregate.as_deref().is_some_and(|a| {
            let a = a.trim();
            match a.split_once('(') {
                Some((function, args)) => {
                    DURATION_STATS.contains(&function.trim())
                        && args.trim_start().starts_with("transaction.duration")
                }
                None => false,
            }
        })
    }
    pub fn is_apdex(&self) -> bool {
        self.aggregate
            .as_deref()
            .is_some_and(|a| a.trim_start().starts_with("apdex"))
    }
}

/// What a metric alert measures, decided once from its aggregate (never from a rule's name) and
/// carried with the event's details: a score is shown as `0.62`, a duration in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// `apdex(...)`: a score in [0, 1], worse when lower.
    Apdex,
    /// A duration statistic of `transaction.duration`, in milliseconds.
    Duration,
    /// Anything else (counts, rates, failure ratios).
    Other,
}

impl MetricKind {
    /// The word stored in `events.details` (`apdex`, `duration`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apdex => "apdex",
            Self::Duration => "duration",
            Self::Other => "other",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Self::Apdex, Self::Duration, Self::Other]
            .into_iter()
            .find(|k| k.as_str() == word)
    }
}

impl MetricFacts {
    pub fn kind(&self) -> MetricKind {
        if self.is_apdex() {
            MetricKind::Apdex
        } else if self.is_transaction_duration() {
            MetricKind::Duration
        } else {
            MetricKind::Other
        }
    }
}

/// `AlertFacts::resource` of the alerts the pipeline watch raises (`crate::watch`).
pub(crate) const WATCH_RESOURCE: &str = "paiid-alerts-watch";

/// The normalized, owned summary of one webhook: all that classification and incidents read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertFacts {
    /// `event_alert`, `metric_alert`, `issue`, `error`, `installation`, `comment`, `legacy`, or the
    /// unknown resource name as sent.
    pub resource: String,
    pub action: String,
    pub meaning: Option<Meaning>,
    /// True for payloads that stand for one occurrence of an error (counted in rate windows).
    pub occurrence: bool,
    pub event_id: Option<String>,
    pub level: Option<String>,
    pub environment: Option<String>,
    pub project: Option<String>,
    pub title: String,
    pub culprit: Option<String>,
    pub sentry_rule: Option<String>,
    pub issue_id: Option<String>,
    pub web_url: Option<String>,
    pub release: Option<String>,
    pub tags: Vec<(String, String)>,
    pub transaction_duration_ms: Option<f64>,
    pub metric: Option<MetricFacts>,
    pub assignee: Option<String>,
    pub comment: Option<String>,
    pub actor: Option<String>,
    /// `data.issue.substatus` of an `issue` webhook.
    pub substatus: Option<Substatus>,
    /// The release `data.issue.statusDetails` names (`inRelease`), when there is one.
    pub status_release: Option<String>,
    /// Why Sentry archived the issue, in words (`ignored` / `archived`): its substatus and the
    /// condition from `statusDetails` (`ignoreCount`, `ignoreUntil`, ...).
    pub mute_reason: Option<String>,
    /// A `seer` webhook's findings.
    pub seer: Option<SeerFacts>,
    /// When the event happened (`event.timestamp`), epoch ms: a canary's latency is our receipt
    /// minus this.
    pub event_time_ms: Option<i64>,
    /// Set, with [`Meaning::Unparsed`], when the envelope is Sentry's but its content is not
    /// what the resource carries.
    pub unreadable: Option<Unreadable>,
}

impl AlertFacts {
    pub fn meaning(&self) -> Meaning {
        self.meaning.unwrap_or(Meaning::Unknown)
    }

    /// An event the backend's SDK sends every few minutes to prove the pipeline works, tagged
    /// `canary: true`: recorded and watched, never paged.
    pub fn is_canary(&self) -> bool {
        self.meaning() == Meaning::Alert
            && self
                .tag("canary")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The incident this payload belongs to: one per Sentry issue, or per metric alert rule.
    pub fn incident_key(&self) -> Option<String> {
        if self.meaning() == Meaning::Unparsed {
            return None;
        }
        // The pipeline watch's own alerts: one incident per outage it raises.
        if self.resource == WATCH_RESOURCE {
            return self
                .issue_id
                .as_ref()
                .map(|at| format!("watch:{}:{at}", self.action));
        }
        if self.resource == "metric_alert" {
            let by_id = self
                .metric
                .as_ref()
                .and_then(|m| m.alert_rule_id.as_ref())
                .map(|id| format!("sentry-metric:{id}"));
            // Real payloads carry the rule id; without it, the rule's name still groups them.
            return by_id.or_else(|| {
                self.sentry_rule
                    .as_ref()
                    .map(|name| format!("sentry-metric-name:{name}"))
            });
        }
        if let Some(id) = &self.issue_id {
            return Some(format!("sentry-issue:{id}"));
        }
        if self.meaning() == Meaning::Alert {
            // No issue id anywhere: group on what people would call "the same error".
            let project = self.project.as_deref().unwrap_or("-");
            return Some(format!("fingerprint:{project}:{}", self.title));
        }
        None
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// serde reads a struct from a JSON array too; every Sentry payload is an object.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// Too deep, or without the envelope Sentry always sends.
    #[error(transparent)]
    NotSentry(#[from] Rejection),
}

impl From<envelope::CheckError> for ParseError {
    fn from(e: envelope::CheckError) -> Self {
        match e {
            envelope::CheckError::Json(e) => Self::Json(e),
            envelope::CheckError::Rejected(r) => Self::NotSentry(r),
        }
    }
}

// ---------- wire structs (borrowing) ----------

#[derive(Deserialize, Default)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    action: Text<'a>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(borrow, default)]
    actor: Option<Actor<'a>>,
}

#[derive(Deserialize, Default)]
struct Actor<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(borrow, default)]
    event: Option<Event<'a>>,
    #[serde(borrow, default)]
    error: Option<Event<'a>>,
    #[serde(borrow, default)]
    triggered_rule: Text<'a>,
    #[serde(borrow, default)]
    issue_alert: Option<IssueAlert<'a>>,
    #[serde(borrow, default)]
    metric_alert: Option<MetricAlert<'a>>,
    #[serde(borrow, default)]
    description_text: Text<'a>,
    #[serde(borrow, default)]
    description_title: Text<'a>,
    #[serde(borrow, default)]
    web_url: Text<'a>,
    #[serde(borrow, default)]
    issue: Option<Issue<'a>>,
    #[serde(borrow, default)]
    assignee: Option<Assignee<'a>>,
    #[serde(borrow, default)]
    comment: Text<'a>,
    #[serde(borrow, default)]
    issue_id: Text<'a>,
    #[serde(borrow, default)]
    group_id: Text<'a>,
    #[serde(borrow, default)]
    root_cause: Option<SeerReport<'a>>,
    #[serde(borrow, default)]
    solution: Option<SeerReport<'a>>,
    #[serde(borrow, default)]
    pull_requests: Option<Vec<SeerPullRequest<'a>>>,
}

/// Seer's root cause or solution: the documented shape has `description`; the newer Explorer
/// artifacts `one_line_description` (root cause) or `one_line_summary` (solution).
#[derive(Deserialize, Default)]
struct SeerReport<'a> {
    #[serde(borrow, default)]
    description: Text<'a>,
    #[serde(borrow, default)]
    one_line_description: Text<'a>,
    #[serde(borrow, default)]
    one_line_summary: Text<'a>,
}

impl SeerReport<'_> {
    fn summary(&self) -> Option<String> {
        self.description
            .owned()
            .or_else(|| self.one_line_description.owned())
            .or_else(|| self.one_line_summary.owned())
    }
}

#[derive(Deserialize, Default)]
struct SeerPullRequest<'a> {
    #[serde(borrow, default)]
    pull_request: Option<SeerPullRequestRef<'a>>,
}

#[derive(Deserialize, Default)]
struct SeerPullRequestRef<'a> {
    #[serde(borrow, default)]
    pr_url: Text<'a>,
}

#[derive(Deserialize, Default)]
struct IssueAlert<'a> {
    #[serde(borrow, default)]
    title: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Event<'a> {
    #[serde(borrow, default)]
    event_id: Text<'a>,
    #[serde(borrow, default)]
    level: Text<'a>,
    #[serde(borrow, default)]
    environment: Text<'a>,
    #[serde(borrow, default)]
    title: Text<'a>,
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(borrow, default)]
    culprit: Text<'a>,
    #[serde(borrow, default)]
    issue_id: Text<'a>,
    #[serde(borrow, default)]
    web_url: Text<'a>,
    #[serde(borrow, default)]
    issue_url: Text<'a>,
    #[serde(borrow, default)]
    url: Text<'a>,
    #[serde(borrow, default)]
    project: Text<'a>,
    #[serde(borrow, default)]
    release: Text<'a>,
    #[serde(borrow, default)]
    tags: Tags<'a>,
    #[serde(default)]
    timestamp: Number,
    #[serde(default)]
    start_timestamp: Number,
    #[serde(rename = "type", borrow, default)]
    kind: Text<'a>,
    #[serde(borrow, default)]
    transaction: Text<'a>,
}

#[derive(Deserialize, Default)]
struct MetricAlert<'a> {
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    title: Text<'a>,
    #[serde(borrow, default)]
    alert_rule: Option<AlertRule<'a>>,
    #[serde(borrow, default)]
    projects: TextList<'a>,
}

#[derive(Deserialize, Default)]
struct AlertRule<'a> {
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    aggregate: Text<'a>,
    #[serde(default)]
    threshold_type: Number,
    #[serde(borrow, default)]
    environment: Text<'a>,
    #[serde(borrow, default)]
    projects: TextList<'a>,
}

#[derive(Deserialize, Default)]
struct Issue<'a> {
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    title: Text<'a>,
    #[serde(borrow, default)]
    culprit: Text<'a>,
    #[serde(borrow, default)]
    level: Text<'a>,
    #[serde(borrow, default)]
    permalink: Text<'a>,
    #[serde(borrow, default)]
    project: Option<IssueProject<'a>>,
    #[serde(borrow, default)]
    substatus: Text<'a>,
    #[serde(rename = "statusDetails", borrow, default)]
    status_details: Option<StatusDetails<'a>>,
}

/// `data.issue.statusDetails`: empty for most substatuses; an archive "until a condition is
/// met" says which.
#[derive(Deserialize, Default)]
struct StatusDetails<'a> {
    #[serde(rename = "inRelease", borrow, default)]
    in_release: Text<'a>,
    #[serde(rename = "ignoreCount", default)]
    ignore_count: Number,
    #[serde(rename = "ignoreWindow", default)]
    ignore_window: Number,
    #[serde(rename = "ignoreUserCount", default)]
    ignore_user_count: Number,
    #[serde(rename = "ignoreUserWindow", default)]
    ignore_user_window: Number,
    #[serde(rename = "ignoreUntil", borrow, default)]
    ignore_until: Text<'a>,
}

#[derive(Deserialize, Default)]
struct IssueProject<'a> {
    #[serde(borrow, default)]
    slug: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Assignee<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    email: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Legacy<'a> {
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    project: Text<'a>,
    #[serde(borrow, default)]
    project_slug: Text<'a>,
    #[serde(borrow, default)]
    level: Text<'a>,
    #[serde(borrow, default)]
    culprit: Text<'a>,
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(borrow, default)]
    url: Text<'a>,
    #[serde(borrow, default)]
    triggering_rules: TextList<'a>,
    #[serde(borrow, default)]
    event: Option<Event<'a>>,
}

// ---------- normalization ----------

/// Parses a webhook body. `resource` is the `Sentry-Hook-Resource` header; `None` means the
/// legacy WebHooks plugin (which sends no Sentry headers).
///
/// A body that is not Sentry's (too deep, no envelope) is an error. A Sentry envelope whose
/// content we cannot read is not: it comes back as [`Meaning::Unparsed`] facts.
pub fn parse(resource: Option<&str>, body: &[u8]) -> Result<AlertFacts, ParseError> {
    if envelope::exceeds_depth(body, MAX_DEPTH) {
        return Err(Rejection::TooDeep.into());
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => {}
        Some(b'[') => return Err(ParseError::NotAnObject("an array")),
        Some(_) => {
            // Let serde name what it found (a string, a number, a syntax error).
            serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
            return Err(ParseError::NotAnObject("a scalar"));
        }
    }
    let checked = envelope::check(resource, body)?;
    if checked.problem.is_some() {
        return Ok(unparsed(resource, body, checked.unreadable(None)));
    }
    let typed = match resource {
        None => parse_legacy(body),
        Some(r) => parse_integration(r, body),
    };
    let mut facts = match typed {
        Ok(facts) => facts,
        // The JSON is sound (the check read all of it): a field changed type under us.
        Err(e) => {
            let reason = format!("a field has an unexpected type: {e}");
            return Ok(unparsed(resource, body, checked.unreadable(Some(reason))));
        }
    };
    // The link ends up in Slack, mail and our pages: only http(s), never `javascript:`.
    facts.web_url = facts.web_url.filter(|u| is_http_url(u));
    Ok(facts)
}

#[derive(Deserialize, Default)]
struct ActionOnly<'a> {
    #[serde(borrow, default)]
    action: Text<'a>,
}

/// Facts for a payload we keep but cannot read: no incident key, not an occurrence.
fn unparsed(resource: Option<&str>, body: &[u8], unreadable: Unreadable) -> AlertFacts {
    let (resource, action) = match resource {
        Some(r) => (
            r.to_string(),
            serde_json::from_slice::<ActionOnly>(body)
                .ok()
                .and_then(|a| a.action.owned())
                .unwrap_or_default(),
        ),
        None => ("legacy".to_string(), "triggered".to_string()),
    };
    AlertFacts {
        title: format!("Sentry sent an `{resource}` we could not read"),
        resource,
        action,
        meaning: Some(Meaning::Unparsed),
        unreadable: Some(unreadable),
        ..AlertFacts::default()
    }
}

fn is_http_url(u: &str) -> bool {
    let u = u.trim_start().to_ascii_lowercase();
    u.starts_with("https://") || u.starts_with("http://")
}

fn parse_integration(resource: &str, body: &[u8]) -> Result<AlertFacts, ParseError> {
    let env: Envelope = serde_json::from_slice(body)?;
    let action = env.action.owned().unwrap_or_default();
    let data = env.data.unwrap_or_default();
    let mut facts = AlertFacts {
        resource: resource.to_string(),
        action: action.clone(),
        actor: env.actor.and_then(|a| a.name.owned()),
        ..AlertFacts::default()
    };
    match resource {
        "event_alert" | "error" => fill_event_alert(&mut facts, resource, data),
        "metric_alert" => fill_metric_alert(&mut facts, &action, data),
        "issue" => fill_issue(&mut facts, &action, data),
        "comment" => {
            facts.issue_id = data.issue_id.owned();
            facts.comment = data.comment.owned();
            facts.title = "comment".to_string();
            facts.meaning = Some(Meaning::Comment);
        }
        "installation" => {
            facts.title = format!("installation {action}");
            facts.meaning = Some(Meaning::Installation);
        }
        "seer" => fill_seer(&mut facts, &action, data),
        _ => {
            facts.title = format!("{resource} {action}").trim_end().to_string();
            facts.meaning = Some(Meaning::Unknown);
        }
    }
    if facts.title.is_empty() {
        facts.title = format!("Sentry {resource} {action}").trim_end().to_string();
    }
    Ok(facts)
}

/// `event_alert` (an issue alert rule fired) and `error`: one occurrence of an event.
fn fill_event_alert(facts: &mut AlertFacts, resource: &str, data: Data<'_>) {
    let event = if resource == "error" {
        data.error
    } else {
        data.event
    }
    .unwrap_or_default();
    fill_from_event(facts, &event);
    facts.sentry_rule = data
        .triggered_rule
        .owned()
        .or_else(|| data.issue_alert.and_then(|a| a.title.owned()));
    facts.occurrence = true;
    facts.meaning = Some(Meaning::Alert);
}

/// `metric_alert`: the rule, its aggregate and the value read from the description.
fn fill_metric_alert(facts: &mut AlertFacts, action: &str, data: Data<'_>) {
    let ma = data.metric_alert.unwrap_or_default();
    let rule = ma.alert_rule.unwrap_or_default();
    let description = data.description_text.as_deref().unwrap_or("");
    let aggregate = rule
        .aggregate
        .owned()
        .or_else(|| aggregate_from_description(description));
    facts.metric = Some(MetricFacts {
        alert_rule_id: rule.id.owned().or_else(|| ma.id.owned()),
        aggregate,
        value: value_from_description(description),
        threshold_type: rule.threshold_type.0.map(|v| v as i64),
    });
    facts.sentry_rule = rule.name.owned();
    facts.title = data
        .description_title
        .owned()
        .or_else(|| rule.name.owned())
        .or_else(|| ma.title.owned())
        .unwrap_or_else(|| "Sentry metric alert".to_string());
    facts.environment = rule.environment.owned();
    facts.project = rule
        .projects
        .0
        .first()
        .or(ma.projects.0.first())
        .map(|p| p.to_string());
    facts.web_url = data.web_url.owned();
    facts.culprit = data.description_text.owned();
    facts.meaning = Some(match action {
        "critical" | "warning" | "open" => Meaning::Alert,
        "resolved" => Meaning::Resolved,
        _ => Meaning::Unknown,
    });
}

/// `issue`: a change of an issue's state (created, resolved, assigned, ...).
fn fill_issue(facts: &mut AlertFacts, action: &str, data: Data<'_>) {
    let issue = data.issue.unwrap_or_default();
    facts.issue_id = issue.id.owned();
    facts.title = issue.title.owned().unwrap_or_default();
    facts.culprit = issue.culprit.owned();
    facts.level = issue.level.owned().map(|l| l.to_lowercase());
    facts.web_url = issue.permalink.owned();
    facts.project = issue.project.and_then(|p| p.slug.owned());
    facts.assignee = data
        .assignee
        .and_then(|a| a.name.owned().or_else(|| a.email.owned()));
    facts.substatus = issue.substatus.as_deref().map(Substatus::parse);
    let details = issue.status_details.unwrap_or_default();
    facts.status_release = details.in_release.owned();
    facts.meaning = Some(match action {
        "created" => Meaning::Alert,
        "resolved" => Meaning::Resolved,
        "unresolved" => Meaning::Unresolved,
        "assigned" => Meaning::Assigned,
        // Sentry sends `ignored`; apps subscribed before the rename get `archived`.
        "ignored" | "archived" => {
            facts.mute_reason = Some(mute_reason(facts.substatus, &details));
            Meaning::Muted
        }
        _ => Meaning::Unknown,
    });
}

/// "archived in Sentry until it escalates", "... until 100 more events in 60 min", ...
fn mute_reason(substatus: Option<Substatus>, d: &StatusDetails<'_>) -> String {
    let until = match substatus {
        Some(Substatus::ArchivedUntilEscalating) => "until it escalates".to_string(),
        Some(Substatus::ArchivedForever) => "forever".to_string(),
        _ => {
            let count = |n: &Number, what: &str, window: &Number| {
                n.0.map(|n| {
                    let within = window
                        .0
                        .map_or(String::new(), |w| format!(" within {w} min"));
                    format!("{n} more {what}{within}")
                })
            };
            let conditions: Vec<String> = [
                count(&d.ignore_count, "events", &d.ignore_window),
                count(&d.ignore_user_count, "users", &d.ignore_user_window),
                d.ignore_until.owned(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if conditions.is_empty() {
                "until a condition is met".to_string()
            } else {
                format!("until {}", conditions.join(" or "))
            }
        }
    };
    format!("archived in Sentry {until}")
}

/// `seer`: Seer's report on the issue `data.group_id` (a number; the issue webhooks send the
/// same id as a string).
fn fill_seer(facts: &mut AlertFacts, action: &str, data: Data<'_>) {
    facts.issue_id = data.group_id.owned();
    let pr_url = data
        .pull_requests
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.pull_request.and_then(|r| r.pr_url.owned()))
        .find(|u| is_http_url(u));
    facts.seer = Some(SeerFacts {
        stage: action.to_string(),
        root_cause: data.root_cause.and_then(|r| r.summary()),
        solution: data.solution.and_then(|r| r.summary()),
        pr_url,
    });
    facts.title = format!("Seer {action}");
    facts.meaning = Some(Meaning::Seer);
}

fn parse_legacy(body: &[u8]) -> Result<AlertFacts, ParseError> {
    let l: Legacy = serde_json::from_slice(body)?;
    let mut facts = AlertFacts {
        resource: "legacy".to_string(),
        action: "triggered".to_string(),
        meaning: Some(Meaning::Alert),
        occurrence: true,
        ..AlertFacts::default()
    };
    let event = l.event.unwrap_or_default();
    fill_from_event(&mut facts, &event);
    facts.level = facts
        .level
        .or_else(|| l.level.owned().map(|s| s.to_lowercase()));
    facts.culprit = facts.culprit.or_else(|| l.culprit.owned());
    if facts.title.is_empty() {
        facts.title = l
            .message
            .owned()
            .unwrap_or_else(|| "Sentry alert".to_string());
    }
    facts.web_url = l.url.owned().or(facts.web_url);
    facts.issue_id =
        l.id.owned()
            .or(facts.issue_id)
            .or_else(|| facts.web_url.as_deref().and_then(issue_id_from_url));
    facts.project = l.project_slug.owned().or_else(|| l.project.owned());
    facts.sentry_rule = l.triggering_rules.0.first().map(|r| r.to_string());
    Ok(facts)
}

fn fill_from_event(facts: &mut AlertFacts, e: &Event<'_>) {
    facts.event_id = e.event_id.owned();
    facts.level = e.level.owned().map(|l| l.to_lowercase());
    facts.environment = e.environment.owned();
    facts.title = e
        .title
        .owned()
        .or_else(|| e.message.owned())
        .unwrap_or_default();
    facts.culprit = e.culprit.owned().or_else(|| e.transaction.owned());
    facts.web_url = e.web_url.owned();
    facts.issue_id = e
        .issue_id
        .owned()
        .or_else(|| e.web_url.as_deref().and_then(issue_id_from_url))
        .or_else(|| e.issue_url.as_deref().and_then(issue_id_from_url));
    // The numeric project id is all the event has; the slug hides in the API URL.
    facts.project = e
        .url
        .as_deref()
        .and_then(project_slug_from_url)
        .or_else(|| e.project.owned());
    facts.release = e.release.owned();
    facts.event_time_ms = e
        .timestamp
        .0
        .map(|s| s * 1000.0)
        .filter(|ms| ms.is_finite() && ms.abs() < 1e15)
        .map(|ms| ms as i64);
    facts.tags = e
        .tags
        .0
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if facts.environment.is_none() {
        facts.environment = facts.tag("environment").map(str::to_string);
    }
    if facts.level.is_none() {
        facts.level = facts.tag("level").map(str::to_lowercase);
    }
    if e.kind.as_deref() == Some("transaction")
        && let (Some(end), Some(start)) = (e.timestamp.0, e.start_timestamp.0)
        && end >= start
        // Timestamps like `-1e308` or `"inf"` are valid JSON (found by fuzzing): an infinite
        // duration would match every "slower than" rule, and NaN none.
        && let ms = (end - start) * 1000.0
        && ms.is_finite()
    {
        facts.transaction_duration_ms = Some(ms);
    }
}

/// `.../issues/1170820242/...` -> `1170820242`.
pub fn issue_id_from_url(url: &str) -> Option<String> {
    let rest = &url[url.find("/issues/")? + "/issues/".len()..];
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

/// `https://sentry.io/api/0/projects/{org}/{project}/events/...` -> `{project}`.
fn project_slug_from_url(url: &str) -> Option<String> {
    let rest = &url[url.find("/projects/")? + "/projects/".len()..];
    let mut parts = rest.split('/');
    let _org = parts.next()?;
    parts.next().filter(|p| !p.is_empty()).map(str::to_string)
}

/// `"2450.0 p95(transaction.duration) in the last 10 minutes"` -> 2450.0.
pub fn value_from_description(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

fn aggregate_from_description(text: &str) -> Option<String> {
    let token = text.split_whitespace().nth(1)?;
    token.contains('(').then(|| token.to_string())
}

#[cfg(test)]
mod tests;
