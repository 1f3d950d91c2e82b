//! "Which rule would this payload hit, and who would be paged?" (`paiid-alerts explain`,
//! `POST /api/explain`; Alertmanager's `amtool config routes test`). Pure: the caller parses the
//! payload and hands over the routing file, the recent occurrences for the rate windows and the
//! silences in force; nothing is stored or sent.
//!
//! The rules are tried exactly as [`super::Classifier::classify`] tries them (a unit test holds
//! the two to the same answer for every fixture), each condition with its value and result.

use serde::Serialize;

use super::{Severity, group_key, matches_static};
use crate::config::intervals::TimeInterval;
use crate::config::{Conditions, RoutingConfig, Rule};
use crate::domain::{DigestCadence, Silence, SilenceId, SilenceSubject};
use crate::intake::redact::{REDACTED, is_pii_key, is_secret_key, scrub_text};
use crate::intake::{AlertFacts, Meaning};

/// What the payload says, as classification reads it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Facts {
    pub resource: String,
    pub action: String,
    pub meaning: String,
    /// One occurrence of an error (counted in rate windows).
    pub occurrence: bool,
    pub incident_key: Option<String>,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub level: Option<String>,
    pub title: String,
    pub sentry_rule: Option<String>,
    pub issue_id: Option<String>,
    pub release: Option<String>,
    pub tags: Vec<(String, String)>,
    pub transaction_duration_ms: Option<f64>,
    pub metric: Option<Metric>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Metric {
    pub aggregate: Option<String>,
    /// `transaction_duration`, `apdex` or `other`.
    pub kind: &'static str,
    pub value: Option<f64>,
}

/// One condition of one rule, tried against the payload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConditionTrace {
    pub condition: String,
    /// What the rule asks for.
    pub expected: String,
    /// What the payload has (`-` when it has nothing there).
    pub actual: String,
    pub result: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleTrace {
    pub rule: String,
    pub severity: Severity,
    pub matched: bool,
    /// True for the first rule that matched: the one that decides.
    pub chosen: bool,
    pub conditions: Vec<ConditionTrace>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Escalation {
    pub after_ms: i64,
    pub after: String,
    pub to: Vec<String>,
}

/// A silence in force whose matchers hold for this alert.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SilenceMatch {
    pub id: SilenceId,
    pub matchers: String,
    pub ends_at: i64,
    pub author: String,
    pub comment: String,
    /// False when the silence lets this severity through (`let_through`): it pages anyway.
    pub holds: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "checked", rename_all = "snake_case")]
pub(crate) enum Silences {
    /// The silences in force were read; `matching` may be empty.
    Checked { matching: Vec<SilenceMatch> },
    /// Why they were not (the CLI without a database).
    NotChecked { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Explanation {
    pub facts: Facts,
    /// Why the rules were not tried (a resolution, an assignment...), when they were not.
    pub not_classified_because: Option<String>,
    pub rules: Vec<RuleTrace>,
    pub rule: Option<String>,
    pub severity: Severity,
    /// Channels notified when the incident opens.
    pub notify: Vec<String>,
    pub escalation: Option<Escalation>,
    pub digest: Option<DigestCadence>,
    pub silences: Silences,
    /// The time interval whose `escalate_after_during` sets the escalation window now.
    pub escalation_interval: Option<String>,
    /// What Sentry's lifecycle does with this payload (regressed, escalating, archived, Seer,
    /// the echo of our resolve), or the canary watch.
    pub lifecycle: Option<String>,
    /// One line: what would happen.
    pub summary: String,
}

/// An occurrence already stored, for the rate windows: its facts and when it arrived.
pub(crate) type Occurrence = (AlertFacts, i64);

/// Explains `facts` against `cfg` at `now_ms`. `recent`: stored occurrences (any age; those
/// outside a window are not counted). `silences`: `None` when they could not be read, with why.
pub(crate) fn explain(
    cfg: &RoutingConfig,
    facts: &AlertFacts,
    recent: &[Occurrence],
    silences: Result<&[Silence], String>,
    now_ms: i64,
) -> Explanation {
    let is_alert = facts.meaning() == Meaning::Alert && !facts.is_canary();
    let mut rules = Vec::new();
    let mut chosen: Option<&Rule> = None;
    if is_alert {
        for rule in &cfg.rules {
            let conditions = trace(&rule.when, facts, recent, now_ms, cfg.delivery.include_pii);
            let matched = conditions.iter().all(|c| c.result);
            let first = matched && chosen.is_none();
            if first {
                chosen = Some(rule);
            }
            rules.push(RuleTrace {
                rule: rule.name.clone(),
                severity: rule.severity,
                matched,
                chosen: first,
                conditions,
            });
        }
    }
    let severity = chosen.map_or(Severity::Unclassified, |r| r.severity);
    let policy = cfg.policy_at(severity, now_ms);
    let escalation_interval = cfg
        .escalation_interval_at(severity, now_ms)
        .filter(|_| is_alert && policy.escalate_after_ms.is_some())
        .map(str::to_string);
    let lifecycle = lifecycle_rule(facts);
    let escalation = policy.escalate_after_ms.map(|ms| Escalation {
        after_ms: ms,
        after: human_ms(ms),
        to: policy.escalate_to.clone(),
    });
    let subject = SilenceSubject {
        project: facts.project.as_deref(),
        environment: facts.environment.as_deref(),
        environments: cfg,
        rule: chosen.map(|r| r.name.as_str()),
        severity,
        level: facts.level.as_deref(),
        tags: &facts.tags,
        title: &facts.title,
    };
    let silences = match silences {
        Ok(list) => Silences::Checked {
            matching: list
                .iter()
                .filter(|s| s.matches(&subject, now_ms))
                .map(|s| SilenceMatch {
                    id: s.id,
                    matchers: s.matchers.describe(),
                    ends_at: s.effective_end(),
                    author: s.author.clone(),
                    comment: s.comment.clone(),
                    holds: s.holds(&subject, now_ms),
                })
                .collect(),
        },
        Err(reason) => Silences::NotChecked { reason },
    };
    let not_classified_because = (!is_alert).then(|| match &lifecycle {
        Some(rule) if facts.is_canary() => rule.clone(),
        _ => format!(
            "a `{}` payload ({}) changes an incident that exists; only alerts are classified",
            facts.resource,
            meaning_word(facts.meaning())
        ),
    });
    let mut summary = summarize(
        is_alert,
        severity,
        chosen,
        &policy.notify,
        escalation.as_ref(),
        policy.digest,
        &silences,
    );
    if let Some(interval) = &escalation_interval {
        summary.push_str(&format!(" (window of {interval}, which holds now)"));
    }
    if let Some(rule) = lifecycle.as_ref().filter(|_| !is_alert) {
        summary = format!("{summary}; {rule}");
    }
    Explanation {
        facts: facts_of(facts, cfg.delivery.include_pii),
        not_classified_because,
        rules,
        rule: chosen.map(|r| r.name.clone()),
        severity,
        notify: if is_alert { policy.notify } else { Vec::new() },
        escalation: escalation.filter(|_| is_alert),
        digest: policy.digest.filter(|_| is_alert),
        silences,
        escalation_interval,
        lifecycle,
        summary,
    }
}

fn summarize(
    is_alert: bool,
    severity: Severity,
    rule: Option<&Rule>,
    notify: &[String],
    escalation: Option<&Escalation>,
    digest: Option<DigestCadence>,
    silences: &Silences,
) -> String {
    if !is_alert {
        return "not an alert: no rule is tried and nobody is paged".into();
    }
    let Some(rule) = rule else {
        return "unclassified: stored and listed, nobody is paged".into();
    };
    let mut out = format!("{severity} by rule `{}`", rule.name);
    if notify.is_empty() {
        out.push_str("; notifies nobody at once");
    } else {
        out.push_str(&format!("; notifies {}", notify.join(", ")));
    }
    if let Some(e) = escalation {
        out.push_str(&format!(
            "; unacknowledged after {} escalates to {}",
            e.after,
            e.to.join(", ")
        ));
    }
    if let Some(d) = digest.filter(|d| *d != DigestCadence::None) {
        out.push_str(&format!("; in the {} digest", cadence_word(d)));
    }
    if let Silences::Checked { matching } = silences {
        if let Some(s) = matching.iter().find(|s| s.holds) {
            out.push_str(&format!(
                "; HELD by silence #{}: nothing is sent and it does not escalate",
                s.id
            ));
        } else if let Some(s) = matching.first() {
            out.push_str(&format!(
                "; silence #{} matches but lets {severity} through",
                s.id
            ));
        }
    }
    out
}

fn cadence_word(d: DigestCadence) -> &'static str {
    match d {
        DigestCadence::Daily => "daily",
        DigestCadence::Weekly => "weekly",
        DigestCadence::None => "no",
    }
}

fn meaning_word(m: Meaning) -> String {
    format!("{m:?}").to_lowercase()
}

/// The facts as shown: scrubbed as messages and pages scrub them (`delivery.include_pii`), while
/// the rules and silences were tried on the real values.
fn facts_of(f: &AlertFacts, include_pii: bool) -> Facts {
    Facts {
        resource: f.resource.clone(),
        action: f.action.clone(),
        meaning: meaning_word(f.meaning()),
        occurrence: f.occurrence,
        incident_key: f.incident_key(),
        project: f.project.clone(),
        environment: f.environment.clone(),
        level: f.level.clone(),
        title: scrub_text(&f.title, include_pii),
        sentry_rule: f.sentry_rule.clone(),
        issue_id: f.issue_id.clone(),
        release: f.release.as_deref().map(|r| scrub_text(r, include_pii)),
        tags: f
            .tags
            .iter()
            .filter(|(k, _)| include_pii || !is_pii_key(k))
            .map(|(k, v)| (k.clone(), shown_tag(k, Some(v), include_pii)))
            .collect(),
        transaction_duration_ms: f.transaction_duration_ms,
        metric: f.metric.as_ref().map(|m| Metric {
            aggregate: m.aggregate.clone(),
            kind: if m.is_transaction_duration() {
                "transaction_duration"
            } else if m.is_apdex() {
                "apdex"
            } else {
                "other"
            },
            value: m.value,
        }),
    }
}

/// A tag's value as `intake::details` stores it for messages: a secret key's value redacted, a
/// PII key's value withheld unless `include_pii`, any other text scrubbed (emails and IP
/// addresses masked unless `include_pii`).
fn shown_tag(key: &str, value: Option<&str>, include_pii: bool) -> String {
    match value {
        None => "-".to_string(),
        Some(_) if is_secret_key(key) => REDACTED.to_string(),
        Some(_) if !include_pii && is_pii_key(key) => "[PII]".to_string(),
        Some(v) => scrub_text(v, include_pii),
    }
}

fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_string(), str::to_string)
}

fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v}"))
}

/// `list` as the rule writes it: `a | b | c`.
fn any_of(list: &[String]) -> String {
    list.join(" | ")
}

fn in_list(list: &[String], value: Option<&str>, case_insensitive: bool) -> bool {
    match value {
        None => false,
        Some(v) if case_insensitive => list.iter().any(|x| x.eq_ignore_ascii_case(v)),
        Some(v) => list.iter().any(|x| x == v),
    }
}

/// A condition that names accepted values: its name, the rule's list (if it sets one), the
/// payload's value, and whether case is ignored.
type ListCondition<'a> = (&'static str, &'a Option<Vec<String>>, Option<&'a str>, bool);

/// Every condition the rule sets, in the order `matches_static` checks them, then the rate.
fn trace(
    when: &Conditions,
    f: &AlertFacts,
    recent: &[Occurrence],
    now_ms: i64,
    include_pii: bool,
) -> Vec<ConditionTrace> {
    let mut out = list_conditions(when, f);
    out.extend(aggregate_condition(when, f));
    out.extend(tag_conditions(when, f, include_pii));
    out.extend(duration_condition(when, f));
    out.extend(apdex_condition(when, f));
    out.extend(rate_condition(when, f, recent, now_ms));
    out.extend(time_conditions(when, now_ms));
    out
}

/// `during` and `not_during`: which interval holds `now`, and until when.
fn time_conditions(when: &Conditions, now_ms: i64) -> Vec<ConditionTrace> {
    let at = |i: &TimeInterval| {
        if i.contains(now_ms) {
            match i.end_after(now_ms) {
                Some(end) => format!("inside {} until {}", i.name, utc(end)),
                None => format!("inside {}", i.name),
            }
        } else {
            match i.next_start_after(now_ms) {
                Some(start) => format!("outside {} (next start {})", i.name, utc(start)),
                None => format!("outside {}", i.name),
            }
        }
    };
    let describe = |list: &[TimeInterval]| {
        list.iter()
            .map(|i| format!("{} ({})", i.name, i.describe()))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = Vec::new();
    if let Some(list) = &when.during {
        out.push(ConditionTrace {
            condition: "during".into(),
            expected: describe(list),
            actual: list.iter().map(at).collect::<Vec<_>>().join("; "),
            result: list.iter().any(|i| i.contains(now_ms)),
        });
    }
    if !when.not_during.is_empty() {
        out.push(ConditionTrace {
            condition: "not_during".into(),
            expected: describe(&when.not_during),
            actual: when
                .not_during
                .iter()
                .map(at)
                .collect::<Vec<_>>()
                .join("; "),
            result: !when.not_during.iter().any(|i| i.contains(now_ms)),
        });
    }
    out
}

fn utc(ms: i64) -> String {
    crate::clock::ms_to_datetime(ms)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// What Sentry's lifecycle (or the canary watch) does with a payload that is not classified.
fn lifecycle_rule(f: &AlertFacts) -> Option<String> {
    use crate::intake::sentry::Substatus;
    if f.is_canary() {
        return Some(
            "canary (tag canary: true): recorded for the pipeline watch, never paged".into(),
        );
    }
    Some(match f.meaning() {
        Meaning::Unresolved => match f.substatus {
            Some(Substatus::Regressed) => "regressed: a resolved or muted incident reopens as a new episode and pages, saying regressed; an acknowledged one pages again at once".into(),
            Some(Substatus::Escalating) => "escalating: a resolved or muted incident (archived until escalating) reopens and pages; a triggered one escalates now; an acknowledged one pages again and escalates now".into(),
            _ => "unresolved: a resolved or muted incident reopens as a new episode".into(),
        },
        Meaning::Muted => format!(
            "{}: the incident is muted (no notifications, escalation stopped)",
            f.mute_reason.as_deref().unwrap_or("archived in Sentry")
        ),
        Meaning::Resolved => "resolved: the incident resolves with a post-mortem, unless it is the echo of our own resolve sent to Sentry".into(),
        Meaning::Seer => "Seer: its findings go on the timeline, its root cause into the post-mortem, its pull request onto the incident".into(),
        _ => return None,
    })
}

/// The conditions that name accepted values (environment, level, ...), those the rule sets.
fn list_conditions(when: &Conditions, f: &AlertFacts) -> Vec<ConditionTrace> {
    let lists: [ListCondition<'_>; 6] = [
        (
            "environment",
            &when.environments,
            f.environment.as_deref(),
            true,
        ),
        ("level", &when.levels, f.level.as_deref(), true),
        (
            "sentry_rule",
            &when.sentry_rules,
            f.sentry_rule.as_deref(),
            false,
        ),
        ("project", &when.projects, f.project.as_deref(), false),
        ("resource", &when.resources, Some(f.resource.as_str()), true),
        ("action", &when.actions, Some(f.action.as_str()), true),
    ];
    lists
        .into_iter()
        .filter_map(|(name, list, value, ci)| {
            let list = list.as_ref()?;
            Some(ConditionTrace {
                condition: name.into(),
                expected: any_of(list),
                actual: shown(value),
                result: in_list(list, value, ci),
            })
        })
        .collect()
}

/// `aggregates`: the metric alert's aggregate contains one of the listed words.
fn aggregate_condition(when: &Conditions, f: &AlertFacts) -> Option<ConditionTrace> {
    let aggs = when.aggregates.as_ref()?;
    let agg = f.metric.as_ref().and_then(|m| m.aggregate.as_deref());
    Some(ConditionTrace {
        condition: "aggregate".into(),
        expected: format!("contains {}", any_of(aggs)),
        actual: shown(agg),
        result: agg.is_some_and(|a| aggs.iter().any(|x| a.contains(x.as_str()))),
    })
}

/// `tags`: one condition per tag the rule requires, tried on the real value and showing it
/// scrubbed.
fn tag_conditions(when: &Conditions, f: &AlertFacts, include_pii: bool) -> Vec<ConditionTrace> {
    when.tags
        .iter()
        .map(|(k, v)| {
            let actual = f.tag(k);
            ConditionTrace {
                condition: format!("tag {k}"),
                expected: v.clone(),
                actual: shown_tag(k, actual, include_pii),
                result: actual == Some(v.as_str()),
            }
        })
        .collect()
}

/// `transaction_duration_over`: the event's duration, or a duration metric's value.
fn duration_condition(when: &Conditions, f: &AlertFacts) -> Option<ConditionTrace> {
    let limit = when.transaction_duration_over_ms?;
    let metric_duration = f
        .metric
        .as_ref()
        .filter(|m| m.is_transaction_duration())
        .and_then(|m| m.value);
    let d = f.transaction_duration_ms.or(metric_duration);
    Some(ConditionTrace {
        condition: "transaction_duration_over".into(),
        expected: format!("> {limit} ms"),
        actual: d.map_or_else(|| "-".to_string(), |d| format!("{d} ms")),
        result: d.is_some_and(|d| d > limit),
    })
}

/// `apdex_below`: an Apdex metric's value.
fn apdex_condition(when: &Conditions, f: &AlertFacts) -> Option<ConditionTrace> {
    let limit = when.apdex_below?;
    let a = f
        .metric
        .as_ref()
        .filter(|m| m.is_apdex())
        .and_then(|m| m.value);
    Some(ConditionTrace {
        condition: "apdex_below".into(),
        expected: format!("< {limit}"),
        actual: number(a),
        result: a.is_some_and(|a| a < limit),
    })
}

/// `rate`: counted as the classifier counts.
fn rate_condition(
    when: &Conditions,
    f: &AlertFacts,
    recent: &[Occurrence],
    now_ms: i64,
) -> Option<ConditionTrace> {
    let rate = when.rate.as_ref()?;
    let within = rate.within.as_millis_i64();
    let key = group_key(rate.per, f);
    // As the classifier counts: this occurrence plus the stored ones of the same group that
    // meet the rule's other conditions, inside the window.
    let before = recent
        .iter()
        .filter(|(o, at)| {
            *at > now_ms - within
                && o.occurrence
                && matches_static(when, o)
                && group_key(rate.per, o) == key
        })
        .count();
    let count = before + usize::from(f.occurrence);
    let per = match rate.per {
        crate::config::RateGrouping::Project => "project",
        crate::config::RateGrouping::Issue => "issue",
    };
    Some(ConditionTrace {
        condition: "rate".into(),
        expected: format!(
            "more than {} within {} per {per}",
            rate.more_than, rate.within
        ),
        actual: if f.occurrence {
            format!("{count} in the window, this one included")
        } else {
            "not an occurrence (not counted)".to_string()
        },
        result: f.occurrence && count > rate.more_than as usize,
    })
}

/// `15m`, `1h`, `1h 30m`, `45s`.
fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

impl Explanation {
    /// The CLI's text form.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        self.payload_text(&mut line);
        line(String::new());
        self.rules_text(&mut line);
        line(String::new());
        self.routing_text(&mut line);
        self.silences_text(&mut line);
        line(String::new());
        line(format!("=> {}", self.summary));
        out
    }

    /// What the payload says, as the rules see it.
    fn payload_text(&self, line: &mut impl FnMut(String)) {
        let f = &self.facts;
        line("Payload".into());
        line(format!("  resource     {} ({})", f.resource, f.action));
        line(format!("  meaning      {}", f.meaning));
        line(format!("  title        {}", f.title));
        line(format!("  project      {}", shown(f.project.as_deref())));
        line(format!(
            "  environment  {}",
            shown(f.environment.as_deref())
        ));
        line(format!("  level        {}", shown(f.level.as_deref())));
        if let Some(r) = &f.sentry_rule {
            line(format!("  sentry rule  {r}"));
        }
        if let Some(r) = &f.release {
            line(format!("  release      {r}"));
        }
        if let Some(k) = &f.incident_key {
            line(format!("  incident     {k}"));
        }
        if let Some(d) = f.transaction_duration_ms {
            line(format!("  duration     {d} ms"));
        }
        if let Some(m) = &f.metric {
            line(format!(
                "  metric       {} = {} ({})",
                shown(m.aggregate.as_deref()),
                number(m.value),
                m.kind
            ));
        }
        if !f.tags.is_empty() {
            let tags: Vec<String> = f.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line(format!("  tags         {}", tags.join(", ")));
        }
    }

    /// Each rule tried, with each of its conditions.
    fn rules_text(&self, line: &mut impl FnMut(String)) {
        match &self.not_classified_because {
            Some(why) => line(format!("Rules: not tried: {why}")),
            None => {
                line("Rules (in order; the first match decides)".into());
                for r in &self.rules {
                    let mark = if r.chosen {
                        "MATCH"
                    } else if r.matched {
                        "match (later)"
                    } else {
                        "no"
                    };
                    line(format!("  [{mark}] {} -> {}", r.rule, r.severity));
                    if r.conditions.is_empty() {
                        line("      (no conditions: matches every alert)".into());
                    }
                    for c in &r.conditions {
                        line(format!(
                            "      {} {}: wants {}, payload has {}",
                            if c.result { "yes" } else { "NO " },
                            c.condition,
                            c.expected,
                            c.actual
                        ));
                    }
                }
                if self.rules.is_empty() {
                    line("  (routing.yaml has no rules)".into());
                }
            }
        }
    }

    /// Severity, who is notified, escalation and digest.
    fn routing_text(&self, line: &mut impl FnMut(String)) {
        line(format!("Severity     {}", self.severity));
        line(format!(
            "Notifies     {}",
            if self.notify.is_empty() {
                "nobody at once".to_string()
            } else {
                self.notify.join(", ")
            }
        ));
        match (&self.escalation, &self.escalation_interval) {
            (Some(e), Some(interval)) => line(format!(
                "Escalates    after {} unacknowledged (the window of {interval}, which holds now), to {}",
                e.after,
                e.to.join(", ")
            )),
            (Some(e), None) => line(format!(
                "Escalates    after {} unacknowledged, to {}",
                e.after,
                e.to.join(", ")
            )),
            (None, _) => line("Escalates    never".into()),
        }
        if let Some(rule) = &self.lifecycle {
            line(format!("Lifecycle    {rule}"));
        }
        line(format!(
            "Digest       {}",
            self.digest.map_or("none", cadence_word)
        ));
    }

    /// The silences in force that match, or why none were checked.
    fn silences_text(&self, line: &mut impl FnMut(String)) {
        match &self.silences {
            Silences::NotChecked { reason } => line(format!("Silences     {reason}")),
            Silences::Checked { matching } if matching.is_empty() => {
                line("Silences     none in force matches".into())
            }
            Silences::Checked { matching } => {
                for s in matching {
                    line(format!(
                        "Silence #{}  {} (by {}{}){}",
                        s.id,
                        s.matchers,
                        s.author,
                        if s.comment.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", s.comment)
                        },
                        if s.holds {
                            ": HOLDS this alert"
                        } else {
                            ": lets this severity through"
                        }
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
