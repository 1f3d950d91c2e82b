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
//! `acknowledged`, `resolved`, `post_mortem`, `count_update`, `test`), `incident_id`,
//! `dedup_key`, `severity`, `state`, `title`, `project`, `environment`, `level`, `culprit`,
//! `event_count`, `first_seen`, `last_seen`, `rule`, `sentry_rule`, `release`, `request`,
//! `top_frame`, `breadcrumbs` (list of `timestamp`, `category`, `level`, `message`), `metric`,
//! `sentry_url`, `incident_url`, `ack_url`, `acknowledged_by`, `acknowledged_at`, `resolved_by`,
//! `resolved_at`, `waited_minutes`, `post_mortem` (`opened_at`, `acknowledged_at`, `resolved_at`,
//! `time_to_acknowledge`, `time_to_resolve`, `acknowledged_by`, `escalations_fired`,
//! `root_cause`, or none). Absent values are `none` and print as nothing.
//!
//! Computed for convenience:
//! - `severity_upper` (`CRITICAL`), `headline` (`[CRITICAL] title (project)`),
//!   `kind_label` (`New incident`, `Escalation`, ...), `severity_color` (hex, for HTML);
//! - `is_open`: not yet acknowledged or resolved;
//! - `ack_link`: `ack_url` while the incident is open and the message is not itself an
//!   acknowledgement / resolution / post-mortem, otherwise none: use it for Acknowledge buttons;
//! - `event_count_text` (`1 event`, `12,345 events`), `waited_text` (`15m 0s`, `1h 5m`);
//! - `show_details`: true for the kinds that describe the failure (opened, severity_raised,
//!   escalation, count_update, test);
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
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use serde::Serialize;

use super::message::{Breadcrumb, PostMortem};
use super::{Notification, NotificationKind};
use crate::text::{duration, html_escape, slack_escape, truncate_chars};

/// PagerDuty Events v2 rejects summaries longer than this.
pub const PAGERDUTY_SUMMARY_MAX: usize = 1024;
/// Slack truncates `text` at 40,000 characters; stay clear of it.
const SLACK_TEXT_MAX: usize = 39_000;
const EMAIL_SUBJECT_MAX: usize = 250;
/// Guards mail servers and the outbox against a runaway override.
const BODY_MAX: usize = 1_000_000;

const SLACK_ESCAPE: &str = "slack";

#[derive(Debug, Clone, Default)]
pub struct TemplateOverrides {
    pub slack_text: Option<String>,
    pub email_subject: Option<String>,
    pub email_text: Option<String>,
    pub email_html: Option<String>,
    pub pagerduty_summary: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

/// The five rendered outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    SlackText,
    EmailSubject,
    EmailText,
    EmailHtml,
    PagerDutySummary,
}

impl Output {
    const ALL: [Output; 5] = [
        Output::SlackText,
        Output::EmailSubject,
        Output::EmailText,
        Output::EmailHtml,
        Output::PagerDutySummary,
    ];

    /// The override's name, as the key in `routing.yaml`'s `templates:` section.
    fn name(self) -> &'static str {
        match self {
            Output::SlackText => "slack_text",
            Output::EmailSubject => "email_subject",
            Output::EmailText => "email_text",
            Output::EmailHtml => "email_html",
            Output::PagerDutySummary => "pagerduty_summary",
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            Output::SlackText => "default/slack_text",
            Output::EmailSubject => "default/email_subject",
            Output::EmailText => "default/email_text",
            Output::EmailHtml => "default/email_html",
            Output::PagerDutySummary => "default/pagerduty_summary",
        }
    }

    fn default_source(self) -> &'static str {
        match self {
            Output::SlackText => DEFAULT_SLACK_TEXT,
            Output::EmailSubject => DEFAULT_EMAIL_SUBJECT,
            Output::EmailText => DEFAULT_EMAIL_TEXT,
            Output::EmailHtml => DEFAULT_EMAIL_HTML,
            Output::PagerDutySummary => DEFAULT_PAGERDUTY_SUMMARY,
        }
    }

    fn index(self) -> usize {
        match self {
            Output::SlackText => 0,
            Output::EmailSubject => 1,
            Output::EmailText => 2,
            Output::EmailHtml => 3,
            Output::PagerDutySummary => 4,
        }
    }
}

/// Compiled templates: the defaults plus any overrides. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    overridden: [bool; 5],
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides: Vec<&str> = Output::ALL
            .iter()
            .filter(|o| self.overridden[o.index()])
            .map(|o| o.name())
            .collect();
        f.debug_struct("Templates")
            .field("overrides", &overrides)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Templates {
    /// Compiles the defaults plus the overrides, validating each override (see module docs).
    pub fn new(overrides: &TemplateOverrides) -> Result<Self, TemplateError> {
        let mut env = base_environment();
        let mut overridden = [false; 5];
        for output in Output::ALL {
            let source = match output {
                Output::SlackText => &overrides.slack_text,
                Output::EmailSubject => &overrides.email_subject,
                Output::EmailText => &overrides.email_text,
                Output::EmailHtml => &overrides.email_html,
                Output::PagerDutySummary => &overrides.pagerduty_summary,
            };
            let Some(source) = source else { continue };
            let err = |message: String| TemplateError {
                name: output.name().to_string(),
                message,
            };
            if source.trim().is_empty() {
                return Err(err(
                    "is empty; remove the key to use the default".to_string()
                ));
            }
            env.add_template_owned(output.name(), source.clone())
                .map_err(|e| err(describe(&e)))?;
            overridden[output.index()] = true;
        }
        let templates = Self {
            env: Arc::new(env),
            overridden,
        };
        for output in Output::ALL {
            if !templates.overridden[output.index()] {
                continue;
            }
            for kind in ALL_KINDS {
                let sample = sample_notification(kind);
                let rendered =
                    templates
                        .try_render(output.name(), &sample)
                        .map_err(|e| TemplateError {
                            name: output.name().to_string(),
                            message: format!(
                                "fails on a sample `{}` notification: {}",
                                kind.as_str(),
                                describe(&e)
                            ),
                        })?;
                if rendered.trim().is_empty() {
                    return Err(TemplateError {
                        name: output.name().to_string(),
                        message: format!(
                            "renders nothing for a sample `{}` notification",
                            kind.as_str()
                        ),
                    });
                }
            }
        }
        Ok(templates)
    }

    /// The built-in templates only.
    pub fn defaults() -> Self {
        Self {
            env: Arc::new(base_environment()),
            overridden: [false; 5],
        }
    }

    /// True when `routing.yaml` overrides this output (`slack_text`, `email_subject`, ...).
    pub fn is_overridden(&self, name: &str) -> bool {
        Output::ALL
            .iter()
            .any(|o| o.name() == name && self.overridden[o.index()])
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
        if self.overridden[output.index()] {
            match self.try_render(output.name(), n) {
                Ok(s) if !s.trim().is_empty() => return s,
                Ok(_) => tracing::warn!(
                    template = output.name(),
                    incident_id = n.incident_id,
                    kind = n.kind.as_str(),
                    "template override rendered nothing; using the default template"
                ),
                Err(e) => tracing::warn!(
                    template = output.name(),
                    incident_id = n.incident_id,
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
                    incident_id = n.incident_id,
                    error = %error,
                    "default template failed; sending the bare headline"
                );
                plain_fallback(output, n)
            }
        }
    }

    fn try_render(&self, name: &str, n: &Notification) -> Result<String, Error> {
        let ctx = Context::new(n);
        self.env
            .get_template(name)?
            .render(Value::from(Serde(&ctx)))
    }
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    s
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

fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    match SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        Ok(syntax) => env.set_syntax(syntax),
        // Only the delimiters can make the build fail and they are the defaults.
        Err(e) => tracing::error!(error = %describe(&e), "template syntax config"),
    }
    // Printing an unknown variable is an error (so an override's typo is caught at load time),
    // while `{% if maybe %}` on an unknown one stays false.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with("email_html") {
            AutoEscape::Html
        } else if name.ends_with("slack_text") {
            AutoEscape::Custom(SLACK_ESCAPE.into())
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.add_filter("datetime", datetime_filter);
    env.add_filter("truncate", truncate_filter);
    env.add_filter("duration", crate::templates::duration_filter);
    for output in Output::ALL {
        if let Err(e) = env.add_template(output.default_name(), output.default_source()) {
            // Compile-time constants; a failure is a bug caught by the tests, and rendering then
            // falls back to the headline rather than taking the service down.
            tracing::error!(template = output.default_name(), error = %describe(&e), "default template does not compile");
        }
    }
    env
}

fn format_value(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    // `none` prints as nothing: optional fields are common and "none" in a page is noise.
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let escape: fn(&str) -> String = match state.auto_escape() {
        AutoEscape::Custom(name) if name == SLACK_ESCAPE => slack_escape,
        // minijinja's HTML escaping also turns `/` into `&#x2f;`, which is not needed inside
        // quoted attributes or text and makes links in the raw mail unreadable.
        AutoEscape::Html => html_escape,
        _ => return minijinja::escape_formatter(out, state, value),
    };
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(Error::from);
    }
    out.write_str(&escape(&value.to_string()))
        .map_err(Error::from)
}

fn datetime_filter(value: &Value, format: Option<String>) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(String::new());
    }
    let raw = value.to_string();
    let Ok(dt) = DateTime::parse_from_rfc3339(&raw) else {
        return Ok(raw);
    };
    let dt = dt.with_timezone(&Utc);
    let mut out = String::new();
    let fmt = format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S UTC");
    // `write!` reports an invalid format as an error; `to_string()` would panic.
    write!(out, "{}", dt.format(fmt)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("invalid datetime format {fmt:?}"),
        )
    })?;
    Ok(out)
}

fn truncate_filter(value: &Value, length: Option<usize>) -> String {
    if value.is_none() || value.is_undefined() {
        return String::new();
    }
    truncate_chars(&value.to_string(), length.unwrap_or(255))
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
    let s = n.severity.trim();
    if s.is_empty() {
        "UNCLASSIFIED".to_string()
    } else {
        one_line(s).to_uppercase()
    }
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
    }
}

fn severity_color(severity: &str) -> &'static str {
    match severity.trim().to_ascii_lowercase().as_str() {
        "critical" => "#d1242f",
        "high" => "#e36209",
        "medium" => "#bf8700",
        _ => "#6e7781",
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
    let digits = count.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if count < 0 { "-" } else { "" };
    let noun = if count == 1 { "event" } else { "events" };
    format!("{sign}{grouped} {noun}")
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
}

impl<'a> Context<'a> {
    fn new(n: &'a Notification) -> Self {
        let state = n.state.to_ascii_lowercase();
        let is_open = n.acknowledged_at.is_none()
            && n.resolved_at.is_none()
            && state != "acknowledged"
            && state != "resolved";
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
            severity_color: severity_color(&n.severity),
            is_open,
            ack_link,
            event_count_text: event_count_text(n.event_count),
            waited_text: n.waited_minutes.map(waited_text),
            show_details: matches!(
                n.kind,
                NotificationKind::Opened
                    | NotificationKind::SeverityRaised
                    | NotificationKind::Escalation
                    | NotificationKind::CountUpdate
                    | NotificationKind::Test
            ),
            pm: PmView::new(n),
            n,
        }
    }
}

const ALL_KINDS: [NotificationKind; 8] = [
    NotificationKind::Opened,
    NotificationKind::SeverityRaised,
    NotificationKind::Escalation,
    NotificationKind::Acknowledged,
    NotificationKind::Resolved,
    NotificationKind::PostMortem,
    NotificationKind::CountUpdate,
    NotificationKind::Test,
];

/// A notification with every optional field set, used to validate overrides at load time.
fn sample_notification(kind: NotificationKind) -> Notification {
    let at = |h: u32, m: u32, s: u32| {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s)
            .single()
            .unwrap_or_else(Utc::now)
    };
    Notification {
        kind,
        incident_id: 42,
        dedup_key: "paiid-alerts-42-1".to_string(),
        severity: "critical".to_string(),
        state: "triggered".to_string(),
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
        post_mortem: Some(PostMortem {
            opened_at: at(8, 0, 0),
            acknowledged_at: Some(at(8, 4, 10)),
            resolved_at: at(8, 30, 0),
            time_to_acknowledge: Some("4m 10s".to_string()),
            time_to_resolve: "30m 0s".to_string(),
            acknowledged_by: Some("alice".to_string()),
            escalations_fired: 1,
            root_cause: Some("Broker API returned zero quantity".to_string()),
        }),
        delivery: None,
    }
}

// Default templates, kept as files so that an operator can read them and copy one as the start of
// an override. Block tags sit on their own lines (trim_blocks/lstrip_blocks remove them); an
// inline `{% endif +%}` at the end of a line keeps that line's newline.

const DEFAULT_SLACK_TEXT: &str = include_str!("../templates/notify/slack_text.md.j2");

const DEFAULT_EMAIL_SUBJECT: &str = include_str!("../templates/notify/email_subject.txt.j2");

const DEFAULT_EMAIL_TEXT: &str = include_str!("../templates/notify/email_text.txt.j2");

const DEFAULT_EMAIL_HTML: &str = include_str!("../templates/notify/email_html.html.j2");

const DEFAULT_PAGERDUTY_SUMMARY: &str =
    include_str!("../templates/notify/pagerduty_summary.txt.j2");

#[cfg(test)]
mod tests;
