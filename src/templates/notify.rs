//! The notification templates, compiled: the five defaults under `notify/` plus the overrides
//! from `routing.yaml`, each override checked when the routing file loads by rendering it for a
//! sample notification of every kind. Compiled once, in `config`, and rendered by
//! `notify::render` (which owns the variables: see there).
//!
//! The samples are the template contexts of `notify::render`'s sample notifications, stored as
//! JSON in `notify/samples.json` so that this module needs nothing above it; a test in
//! `notify::render` fails when they drift from the notifications.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::describe;
use crate::text::{html_escape, slack_escape, truncate_chars};

/// The context of a sample notification of each kind, in the order they are checked.
pub(crate) const SAMPLES_JSON: &str = include_str!("notify/samples.json");

const SLACK_ESCAPE: &str = "slack";

#[derive(Debug, Clone, Default)]
pub struct TemplateOverrides {
    pub slack_text: Option<String>,
    pub email_subject: Option<String>,
    pub email_text: Option<String>,
    pub email_html: Option<String>,
    pub pagerduty_summary: Option<String>,
}

pub(crate) use super::TemplateError;

/// The five rendered outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    SlackText,
    EmailSubject,
    EmailText,
    EmailHtml,
    PagerDutySummary,
}

impl Output {
    pub const ALL: [Output; 5] = [
        Output::SlackText,
        Output::EmailSubject,
        Output::EmailText,
        Output::EmailHtml,
        Output::PagerDutySummary,
    ];

    /// The override's name, as the key in `routing.yaml`'s `templates:` section.
    pub fn name(self) -> &'static str {
        match self {
            Output::SlackText => "slack_text",
            Output::EmailSubject => "email_subject",
            Output::EmailText => "email_text",
            Output::EmailHtml => "email_html",
            Output::PagerDutySummary => "pagerduty_summary",
        }
    }

    pub fn default_name(self) -> &'static str {
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

/// Compiled notification templates: the defaults plus any overrides, checked against sample
/// notifications. Cheap to clone.
#[derive(Clone)]
pub struct NotificationTemplates {
    env: Arc<Environment<'static>>,
    overridden: [bool; 5],
}

impl fmt::Debug for NotificationTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationTemplates")
            .field("overrides", &self.overridden_names())
            .finish()
    }
}

impl Default for NotificationTemplates {
    fn default() -> Self {
        Self::defaults()
    }
}

impl NotificationTemplates {
    /// Compiles the defaults plus the overrides, validating each override against the samples.
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
        if overridden.iter().any(|o| *o) {
            templates.check(&samples()?)?;
        }
        Ok(templates)
    }

    /// Renders each override for every sample notification: an unknown variable or a bad
    /// filter call is an error now rather than a fallback at 3 am.
    fn check(&self, samples: &[(String, Value)]) -> Result<(), TemplateError> {
        for output in Output::ALL {
            if !self.overridden[output.index()] {
                continue;
            }
            for (kind, ctx) in samples {
                let rendered = self
                    .try_render(output.name(), ctx)
                    .map_err(|e| TemplateError {
                        name: output.name().to_string(),
                        message: format!(
                            "fails on a sample `{kind}` notification: {}",
                            describe(&e)
                        ),
                    })?;
                if rendered.trim().is_empty() {
                    return Err(TemplateError {
                        name: output.name().to_string(),
                        message: format!("renders nothing for a sample `{kind}` notification"),
                    });
                }
            }
        }
        Ok(())
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

    /// The names of the outputs `routing.yaml` overrides.
    pub fn overridden_names(&self) -> Vec<&'static str> {
        Output::ALL
            .iter()
            .filter(|o| self.overridden[o.index()])
            .map(|o| o.name())
            .collect()
    }

    /// True when `routing.yaml` overrides `output`.
    pub fn overrides(&self, output: Output) -> bool {
        self.overridden[output.index()]
    }

    /// Renders the template `name` (an override's name or `default/...`) with `ctx`.
    pub fn try_render(&self, name: &str, ctx: &Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// The sample contexts of [`SAMPLES_JSON`]: `(kind, context)` pairs.
pub(crate) fn samples() -> Result<Vec<(String, Value)>, TemplateError> {
    let pairs: Vec<(String, serde_json::Value)> =
        serde_json::from_str(SAMPLES_JSON).map_err(|e| TemplateError {
            name: "notify/samples.json".to_string(),
            message: e.to_string(),
        })?;
    Ok(pairs
        .into_iter()
        .map(|(kind, ctx)| (kind, Value::from(Serde(&ctx))))
        .collect())
}

pub(crate) fn base_environment() -> Environment<'static> {
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
    env.add_filter("duration", super::duration_filter);
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

// Default templates, kept as files so that an operator can read them and copy one as the start of
// an override. Block tags sit on their own lines (trim_blocks/lstrip_blocks remove them); an
// inline `{% endif +%}` at the end of a line keeps that line's newline.

const DEFAULT_SLACK_TEXT: &str = include_str!("notify/slack_text.md.j2");

const DEFAULT_EMAIL_SUBJECT: &str = include_str!("notify/email_subject.txt.j2");

const DEFAULT_EMAIL_TEXT: &str = include_str!("notify/email_text.txt.j2");

const DEFAULT_EMAIL_HTML: &str = include_str!("notify/email_html.html.j2");

const DEFAULT_PAGERDUTY_SUMMARY: &str = include_str!("notify/pagerduty_summary.txt.j2");
