//! Message templates (minijinja), with per-deployment overrides from `routing.yaml`.
//!
//! Five outputs are rendered from a [`Notification`]: Slack text (mrkdwn), email subject, email
//! text, email HTML and the PagerDuty summary. Each has a built-in default covering every
//! [`NotificationKind`](super::NotificationKind); `routing.yaml` may replace any of them.
//!
//! Rules the renderer enforces whatever a template says:
//! - user data is escaped for its medium: HTML autoescape in `email_html`, Slack's `&`, `<`, `>`
//!   escaping in `slack_text` (so a title containing `<!channel>` cannot ping a whole channel);
//! - the email subject is one line and starts with `[SEVERITY]`;
//! - the PagerDuty summary is one line of at most 1024 bytes;
//! - rendering never panics or fails: an override that errors at runtime falls back to the
//!   default (with a warning), and a failing default falls back to the notification headline.
//!
//! Overrides are checked when the configuration loads: a syntax error, or an error while rendering
//! a fully populated sample notification of every kind (unknown variable, bad filter use), is a
//! [`TemplateError`] naming the template.
//!
//! # Template variables
//! Every [`Notification`] field, by its name: `kind` (`opened`, `severity_raised`, `escalation`,
//! `acknowledged`, `resolved`, `post_mortem`, `count_update`, `test`, `retriggered`), `incident_id`,
//! `dedup_key`, `severity`, `state`, `title`, `project`, `environment`, `level`, `culprit`,
//! `event_count`, `first_seen`, `last_seen`, `rule`, `sentry_rule`, `release`, `request`,
//! `top_frame`, `breadcrumbs` (list of `timestamp`, `category`, `level`, `message`), `metric`,
//! `sentry_url`, `incident_url`, `ack_url`, `acknowledged_by`, `acknowledged_at`, `resolved_by`,
//! `resolved_at`, `waited_minutes`, `reason` (why the message came early or again: an
//! escalation brought forward, an acknowledgement that expired, a regression), `seer_pr_url`,
//! `post_mortem` (`opened_at`, `acknowledged_at`, `resolved_at`,
//! `time_to_acknowledge`, `time_to_resolve`, `acknowledged_by`, `escalations_fired`,
//! `root_cause`, `seer_root_cause`, or none), `storm` (for a storm, an incident standing for many: `members`,
//! `events`, `projects`, `project_count`, `top` (list of `incident_id`, `title`, `project`,
//! `event_count`, `url`; the noisiest five), `more` (members not in `top`); none for an ordinary
//! incident). Absent values are `none` and print as nothing.
//!
//! Computed for convenience:
//! - `severity_upper` (`CRITICAL`), `headline` (`[CRITICAL] title (project)`),
//!   `kind_label` (`New incident`, `Escalation`, ...), `severity_color` (hex, for HTML);
//! - `is_open`: not yet acknowledged or resolved;
//! - `ack_link`: `ack_url` while the incident is open and the message is not itself an
//!   acknowledgement / resolution / post-mortem, otherwise none: use it for Acknowledge buttons;
//! - `event_count_text` (`1 event`, `12,345 events`; for a storm its members, `37 incidents`),
//!   `waited_text` (`15m 0s`, `1h 5m`);
//! - `show_details`: true for the kinds that describe the failure (opened, severity_raised,
//!   escalation, count_update, test);
//! - `storm_noisiest`: for a storm, its noisiest members on one line with their event counts
//!   and `and N more`, short enough for the PagerDuty summary (whole members only);
//! - `pm`: post-mortem figures, always present: `post_mortem` when given, otherwise derived
//!   from the top-level times (`opened_at`, `acknowledged_at`, `acknowledged_by`,
//!   `resolved_at`, `time_to_acknowledge`, `time_to_resolve`, `escalations_fired`,
//!   `root_cause`).
//!
//! Filters beyond minijinja's builtins: `datetime` (RFC 3339 → `2026-11-29 08:02:13 UTC`, or a
//! chrono format: `datetime("%H:%M:%S")`), `truncate(n)` (characters, marks the cut with `…`) and
//! `duration` (milliseconds → `4m 10s`, the spelling of every other span of time).
//! Templates may `{% include "default/slack_text" %}` (likewise `default/email_subject`,
//! `default/email_text`, `default/email_html`, `default/pagerduty_summary`).

use std::fmt::{self, Write as _};

#[cfg(test)]
use chrono::TimeZone;
use chrono::{DateTime, Utc};
use minijinja::Error;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::message::StormSummary;
#[cfg(test)]
use super::message::{Breadcrumb, PostMortem};
use super::{Notification, NotificationKind};
use crate::domain::{IncidentState, Severity};
use crate::templates::describe;
use crate::templates::notify::{NotificationTemplates, Output};
pub(crate) use crate::templates::notify::{TemplateError, TemplateOverrides};
use crate::text::{duration, html_escape, slack_escape, truncate_chars};

/// PagerDuty Events v2 rejects summaries longer than this.
pub(crate) const PAGERDUTY_SUMMARY_MAX: usize = 1024;
/// Slack truncates `text` at 40,000 characters; stay clear of it.
const SLACK_TEXT_MAX: usize = 39_000;
const EMAIL_SUBJECT_MAX: usize = 250;
/// A storm's noisiest members in the PagerDuty summary: what is left of its 1,024 bytes after
/// the longest prefix and title the default template writes.
const STORM_NOISIEST_MAX: usize = 800;
/// A member's title in that line.
const STORM_TITLE_CHARS: usize = 120;
/// Guards mail servers and the outbox against a runaway override.
const BODY_MAX: usize = 1_000_000;

/// The compiled templates (compiled once, with the routing file: see
/// [`NotificationTemplates`]) and the rules this module enforces on what they render. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct Templates(NotificationTemplates);

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("overrides", &self.0.overridden_names())
            .finish()
    }
}

impl From<NotificationTemplates> for Templates {
    fn from(compiled: NotificationTemplates) -> Self {
        Self(compiled)
    }
}

impl Templates {
    /// Compiles the defaults plus the overrides, validating each override (see module docs).
    pub fn new(overrides: &TemplateOverrides) -> Result<Self, TemplateError> {
        NotificationTemplates::new(overrides).map(Self)
    }

    /// The built-in templates only.
    pub fn defaults() -> Self {
        Self(NotificationTemplates::defaults())
    }

    /// True when `routing.yaml` overrides this output (`slack_text`, `email_subject`, ...).
    pub fn is_overridden(&self, name: &str) -> bool {
        self.0.is_overridden(name)
    }

    /// Slack mrkdwn text (user data escaped for Slack).
    pub fn slack_text(&self, n: &Notification) -> String {
        let s = self.render(Output::SlackText, n);
        clip_bytes(s.trim_end(), SLACK_TEXT_MAX)
    }

    /// One line, always starting with `[SEVERITY]`.
    pub fn email_subject(&self, n: &Notification) -> String {
        let rendered = one_line(&self.render(Output::EmailSubject, n));
        let prefix = format!("[{}]", severity_upper(n));
        let subject = if rendered.starts_with(&prefix) {
            rendered
        } else if rendered.is_empty() {
            format!("{prefix} {}", one_line(&n.title))
        } else {
            format!("{prefix} {rendered}")
        };
        clip_bytes(&subject, EMAIL_SUBJECT_MAX)
    }

    pub fn email_text(&self, n: &Notification) -> String {
        clip_bytes(&self.render(Output::EmailText, n), BODY_MAX)
    }

    /// HTML body; user data is autoescaped.
    pub fn email_html(&self, n: &Notification) -> String {
        clip_bytes(&self.render(Output::EmailHtml, n), BODY_MAX)
    }

    /// One line of at most [`PAGERDUTY_SUMMARY_MAX`] bytes.
    pub fn pagerduty_summary(&self, n: &Notification) -> String {
        let s = one_line(&self.render(Output::PagerDutySummary, n));
        let s = if s.is_empty() {
            one_line(&n.headline())
        } else {
            s
        };
        clip_bytes(&s, PAGERDUTY_SUMMARY_MAX)
    }

    fn render(&self, output: Output, n: &Notification) -> String {
        if self.0.overrides(output) {
            match self.try_render(output.name(), n) {
                Ok(s) if !s.trim().is_empty() => return s,
                Ok(_) => tracing::warn!(
                    template = output.name(),
                    incident_id = n.incident_id.get(),
                    kind = n.kind.as_str(),
                    "template override rendered nothing; using the default template"
                ),
                Err(e) => tracing::warn!(
                    template = output.name(),
                    incident_id = n.incident_id.get(),
                    kind = n.kind.as_str(),
                    error = %describe(&e),
                    "template override failed to render; using the default template"
                ),
            }
        }
        match self.try_render(output.default_name(), n) {
            Ok(s) if !s.trim().is_empty() => s,
            result => {
                // Only reachable through a bug in the defaults; tests render every kind.
                let error = result.err().map(|e| describe(&e)).unwrap_or_default();
                tracing::error!(
                    template = output.default_name(),
                    incident_id = n.incident_id.get(),
                    error = %error,
                    "default template failed; sending the bare headline"
                );
                plain_fallback(output, n)
            }
        }
    }

    fn try_render(&self, name: &str, n: &Notification) -> Result<String, Error> {
        self.0
            .try_render(name, &Value::from(Serde(&Context::new(n))))
    }
}

fn plain_fallback(output: Output, n: &Notification) -> String {
    match output {
        Output::EmailSubject | Output::PagerDutySummary => n.headline(),
        Output::SlackText => format!(
            "{}\n{}",
            slack_escape(&n.headline()),
            slack_escape(&n.incident_url)
        ),
        Output::EmailText => {
            let mut s = format!("{}\n\nIncident: {}\n", n.headline(), n.incident_url);
            if let Some(url) = &n.ack_url {
                let _ = writeln!(s, "Acknowledge: {url}");
            }
            s
        }
        Output::EmailHtml => format!(
            "<p>{}</p><p><a href=\"{}\">Incident</a></p>",
            html_escape(&n.headline()),
            html_escape(&n.incident_url)
        ),
    }
}

/// At most `max` bytes, cut on a char boundary, the cut marked with `…` (counted in the limit).
fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or(""))
}

/// Collapses all whitespace (including CR/LF, which would otherwise split a mail header) to
/// single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn severity_upper(n: &Notification) -> String {
    n.severity.as_str().to_uppercase()
}

fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Opened => "New incident",
        NotificationKind::SeverityRaised => "Severity raised",
        NotificationKind::Escalation => "Escalation",
        NotificationKind::Acknowledged => "Acknowledged",
        NotificationKind::Resolved => "Resolved",
        NotificationKind::PostMortem => "Post-mortem",
        NotificationKind::CountUpdate => "Update",
        NotificationKind::Test => "Test alert",
        NotificationKind::Retriggered => "Needs attention again",
    }
}

fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "#d1242f",
        Severity::High => "#e36209",
        Severity::Medium => "#bf8700",
        Severity::Low | Severity::Unclassified => "#6e7781",
    }
}

fn waited_text(minutes: i64) -> String {
    duration(minutes.saturating_mul(60_000))
}

fn span_text(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    duration((to - from).num_milliseconds())
}

/// `12,345 events`.
fn event_count_text(count: i64) -> String {
    counted(count, "event", "events")
}

/// `37 incidents`.
fn incident_count_text(count: i64) -> String {
    counted(count, "incident", "incidents")
}

/// The count with thousands separators and the noun that agrees with it.
fn counted(count: i64, one: &str, many: &str) -> String {
    let digits = count.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if count < 0 { "-" } else { "" };
    let noun = if count == 1 { one } else { many };
    format!("{sign}{grouped} {noun}")
}

/// `OperationalError (410 events); KeyError (3 events) · and 35 more`, at most `max` bytes:
/// whole members only (the rest are counted in "and N more"); none when not one fits.
fn noisiest_line(storm: &StormSummary, max: usize) -> Option<String> {
    // Room kept for the " · and N more" that the cut members need.
    const MORE_MAX: usize = 32;
    let mut parts: Vec<String> = Vec::new();
    let mut used = 0;
    for m in &storm.top {
        let part = format!(
            "{} ({})",
            truncate_chars(&m.title, STORM_TITLE_CHARS),
            event_count_text(m.event_count)
        );
        let sep = if parts.is_empty() { 0 } else { 2 };
        if used + sep + part.len() + MORE_MAX > max {
            break;
        }
        used += sep + part.len();
        parts.push(part);
    }
    if parts.is_empty() {
        return None;
    }
    let more = storm.members - i64::try_from(parts.len()).unwrap_or(i64::MAX);
    let mut line = parts.join("; ");
    if more > 0 {
        line.push_str(&format!(" · and {more} more"));
    }
    Some(line)
}

#[derive(Serialize)]
struct PmView {
    opened_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    time_to_acknowledge: Option<String>,
    time_to_resolve: Option<String>,
    escalations_fired: i64,
    root_cause: Option<String>,
    seer_root_cause: Option<String>,
}

impl PmView {
    fn new(n: &Notification) -> Self {
        if let Some(pm) = &n.post_mortem {
            return Self {
                opened_at: pm.opened_at,
                acknowledged_at: pm.acknowledged_at,
                acknowledged_by: pm.acknowledged_by.clone(),
                resolved_at: Some(pm.resolved_at),
                time_to_acknowledge: pm.time_to_acknowledge.clone(),
                time_to_resolve: Some(pm.time_to_resolve.clone()),
                escalations_fired: pm.escalations_fired,
                root_cause: pm.root_cause.clone(),
                seer_root_cause: pm.seer_root_cause.clone(),
            };
        }
        let opened = n.first_seen;
        Self {
            opened_at: opened,
            acknowledged_at: n.acknowledged_at,
            acknowledged_by: n.acknowledged_by.clone(),
            resolved_at: n.resolved_at,
            time_to_acknowledge: n.acknowledged_at.map(|t| span_text(opened, t)),
            time_to_resolve: n.resolved_at.map(|t| span_text(opened, t)),
            escalations_fired: 0,
            root_cause: None,
            seer_root_cause: None,
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    #[serde(flatten)]
    n: &'a Notification,
    severity_upper: String,
    headline: String,
    kind_label: &'static str,
    severity_color: &'static str,
    is_open: bool,
    ack_link: Option<&'a str>,
    event_count_text: String,
    waited_text: Option<String>,
    show_details: bool,
    pm: PmView,
    storm_noisiest: Option<String>,
}

impl<'a> Context<'a> {
    fn new(n: &'a Notification) -> Self {
        let is_open = n.acknowledged_at.is_none()
            && n.resolved_at.is_none()
            && !matches!(
                n.state,
                IncidentState::Acknowledged | IncidentState::Resolved
            );
        let closing_kind = matches!(
            n.kind,
            NotificationKind::Acknowledged
                | NotificationKind::Resolved
                | NotificationKind::PostMortem
        );
        let ack_link = n
            .ack_url
            .as_deref()
            .filter(|u| is_open && !closing_kind && !u.trim().is_empty());
        Self {
            severity_upper: severity_upper(n),
            headline: n.headline(),
            kind_label: kind_label(n.kind),
            severity_color: severity_color(n.severity),
            is_open,
            ack_link,
            event_count_text: match &n.storm {
                // A storm's count is of its incidents; their events are `storm.events`.
                Some(storm) => incident_count_text(storm.members),
                None => event_count_text(n.event_count),
            },
            waited_text: n.waited_minutes.map(waited_text),
            show_details: matches!(
                n.kind,
                NotificationKind::Opened
                    | NotificationKind::SeverityRaised
                    | NotificationKind::Escalation
                    | NotificationKind::CountUpdate
                    | NotificationKind::Test
                    | NotificationKind::Retriggered
            ),
            pm: PmView::new(n),
            storm_noisiest: n
                .storm
                .as_ref()
                .and_then(|s| noisiest_line(s, STORM_NOISIEST_MAX)),
            n,
        }
    }
}

#[cfg(test)]
const ALL_KINDS: [NotificationKind; 9] = [
    NotificationKind::Opened,
    NotificationKind::SeverityRaised,
    NotificationKind::Escalation,
    NotificationKind::Acknowledged,
    NotificationKind::Resolved,
    NotificationKind::PostMortem,
    NotificationKind::CountUpdate,
    NotificationKind::Test,
    NotificationKind::Retriggered,
];

/// A notification with every optional field set: its context for each kind is the sample that
/// overrides are checked against at load time (`templates/notify/samples.json`).
#[cfg(test)]
fn sample_notification(kind: NotificationKind) -> Notification {
    let at = |h: u32, m: u32, s: u32| {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s)
            .single()
            .unwrap_or_else(Utc::now)
    };
    Notification {
        kind,
        incident_id: crate::domain::IncidentId(42),
        dedup_key: "paiid-alerts-42-1".to_string(),
        severity: Severity::Critical,
        state: IncidentState::Triggered,
        title: "ZeroDivisionError: division by zero".to_string(),
        project: Some("paiid-backend".to_string()),
        environment: Some("production".to_string()),
        level: Some("error".to_string()),
        culprit: Some("app.routers.orders in place_order".to_string()),
        event_count: 1234,
        first_seen: at(8, 0, 0),
        last_seen: at(8, 4, 10),
        rule: Some("critical-production-errors".to_string()),
        sentry_rule: Some("Errors in production".to_string()),
        release: Some("paiid-backend@1.4.2".to_string()),
        request: Some("POST https://api.paiid.ai/orders".to_string()),
        top_frame: Some("app/routers/orders.py in place_order at line 42".to_string()),
        breadcrumbs: vec![Breadcrumb {
            timestamp: Some("2026-11-29T08:00:00.000Z".to_string()),
            category: Some("trading".to_string()),
            level: Some("info".to_string()),
            message: "order submitted (symbol=AAPL, qty=100)".to_string(),
        }],
        metric: Some("2450 ms".to_string()),
        sentry_url: Some("https://sentry.io/organizations/paiid/issues/1/".to_string()),
        incident_url: "https://alerts.paiid.ai/incidents/42".to_string(),
        ack_url: Some("https://alerts.paiid.ai/ack/token".to_string()),
        acknowledged_by: Some("alice".to_string()),
        acknowledged_at: Some(at(8, 4, 10)),
        resolved_by: Some("bob".to_string()),
        resolved_at: Some(at(8, 30, 0)),
        waited_minutes: Some(15),
        reason: (kind == NotificationKind::Retriggered).then(|| {
            "acknowledgement by alice expired after 30m 0s: the incident is still open".to_string()
        }),
        seer_pr_url: Some("https://github.com/paiid/backend/pull/77".to_string()),
        post_mortem: Some(PostMortem {
            opened_at: at(8, 0, 0),
            acknowledged_at: Some(at(8, 4, 10)),
            resolved_at: at(8, 30, 0),
            time_to_acknowledge: Some("4m 10s".to_string()),
            time_to_resolve: "30m 0s".to_string(),
            acknowledged_by: Some("alice".to_string()),
            escalations_fired: 1,
            root_cause: Some("Broker API returned zero quantity".to_string()),
            seer_root_cause: Some("The broker client reads `qty` as a string".to_string()),
        }),
        storm: None,
        delivery: None,
    }
}

/// The sample of a storm's message of each kind: the full sample standing for 37 incidents, so
/// that an override printing `storm.top[0].title` is checked at load time too.
#[cfg(test)]
fn sample_storm_notification(kind: NotificationKind) -> Notification {
    use super::message::{StormMember, StormSummary};
    let mut n = sample_notification(kind);
    let member = |id: i64, title: &str, events: i64| StormMember {
        incident_id: crate::domain::IncidentId(id),
        title: title.to_string(),
        project: Some("paiid-backend".to_string()),
        event_count: events,
        url: format!("https://alerts.paiid.ai/incidents/{id}"),
    };
    n.set_storm(StormSummary {
        members: 37,
        events: 2480,
        projects: vec!["paiid-backend".to_string()],
        project_count: 1,
        top: vec![
            member(43, "OperationalError: could not connect to server", 410),
            member(44, "InterfaceError: connection already closed", 220),
        ],
        more: 35,
    });
    n
}

#[cfg(test)]
mod tests;
