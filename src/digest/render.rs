//! Digest mails from templates: defaults in `src/templates/digest/`, each replaceable from
//! `routing.yaml`'s `templates:` section, exactly like the notification templates.
//!
//! Six outputs: `daily_digest_subject`, `daily_digest_text`, `daily_digest_html`,
//! `weekly_summary_subject`, `weekly_summary_text`, `weekly_summary_html`. The `_html` ones are
//! HTML-autoescaped. An override may `{% include "default/<name>" %}` its default.
//!
//! Overrides are checked when the configuration loads: a syntax error, or an error while
//! rendering sample digests (full and empty, scheduled and sent by hand), is a
//! [`TemplateError`](crate::templates::digest::TemplateError) naming the template. At run time
//! rendering never fails: an override that errors falls back to the default (with a warning),
//! and a failing default to a plain note.
//!
//! # Template variables
//! Daily digest ([`DailyView`]): `heading`, `manual`, `period` (`Sat 28 Nov 08:00 – Sun 29 Nov
//! 2026 08:00 EST`), `summary` (`3 medium incidents in 2 projects`), `empty_note`, `groups` (list
//! of `project` and `incidents`: `id`, `title`, `metric`, `event_count`, `events_text`, `state`,
//! `last_seen`, `incident_url`, `sentry_url`).
//!
//! Weekly summary ([`WeeklyView`]): `heading`, `manual`, `period`, `summary` (the headline
//! figures, one sentence each), `totals` (`opened`, `opened_text`, `acknowledged`, `resolved`,
//! `mtta`, `mttr`, `escalations`, `escalations_text`, `escalated_incidents`, `worst_lateness`),
//! `severities` (`severity`, `opened`, `acknowledged`, `resolved`, `mtta`, `mttr`),
//! `escalations` (`severity`, `fired`, `incidents`, `worst_lateness`, `line`), `noisiest`
//! (`rank`, `id`, `event_count`, `title`, `project`, `severity`, `state`, `incident_url`,
//! `sentry_url`).
//!
//! Filters beyond minijinja's builtins (see `crate::templates`): `link(label)` (a link for
//! http(s) URLs only), `ljust(width)` and `rjust(width)`.

use std::fmt;

#[cfg(test)]
use chrono::{TimeZone as _, Utc};
use minijinja::Error;
use minijinja::value::{Serde, Value};

#[cfg(test)]
use super::report::{DailyDigest, Links, Period, WeeklySummary};
use super::report::{DailyView, RenderedMail, WeeklyView};
#[cfg(test)]
use crate::domain::IncidentId;
#[cfg(test)]
use crate::store::digests::{
    DigestIncident, EscalationTally, NoisyIncident, SeverityTally, StormTally,
};
use crate::templates::describe;
use crate::templates::digest::{CompiledDigestTemplates, Output};
#[cfg(test)]
use crate::templates::digest::{DigestTemplateOverrides, TemplateError};
use crate::text::html_escape;

/// Guards the mail server against a runaway override.
const BODY_MAX: usize = 1_000_000;
const SUBJECT_MAX: usize = 250;

/// The compiled templates (compiled once, with the routing file: see
/// [`CompiledDigestTemplates`]) and the rules this module enforces on what they render. Cheap
/// to clone.
#[derive(Clone, Default)]
pub(crate) struct DigestTemplates(CompiledDigestTemplates);

impl fmt::Debug for DigestTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DigestTemplates").field(&self.0).finish()
    }
}

impl From<CompiledDigestTemplates> for DigestTemplates {
    fn from(compiled: CompiledDigestTemplates) -> Self {
        Self(compiled)
    }
}

impl DigestTemplates {
    /// The built-in templates only.
    #[cfg(test)]
    pub(crate) fn defaults() -> Self {
        Self(CompiledDigestTemplates::defaults())
    }

    /// Compiles the defaults plus the overrides, validating each override against sample
    /// digests (see the module docs).
    #[cfg(test)]
    pub(crate) fn new(overrides: &DigestTemplateOverrides) -> Result<Self, TemplateError> {
        CompiledDigestTemplates::new(overrides).map(Self)
    }

    /// True when `routing.yaml` overrides this output (`daily_digest_html`, ...).
    #[cfg(test)]
    pub(crate) fn is_overridden(&self, name: &str) -> bool {
        self.0.is_overridden(name)
    }

    pub(crate) fn daily(&self, view: &DailyView) -> RenderedMail {
        let ctx = Value::from(Serde(view));
        RenderedMail {
            subject: self.subject(Output::DailySubject, &ctx, &view.heading, &view.period),
            text: self.body(Output::DailyText, &ctx, &view.heading, &view.period),
            html: self.body(Output::DailyHtml, &ctx, &view.heading, &view.period),
        }
    }

    pub(crate) fn weekly(&self, view: &WeeklyView) -> RenderedMail {
        let ctx = Value::from(Serde(view));
        RenderedMail {
            subject: self.subject(Output::WeeklySubject, &ctx, &view.heading, &view.period),
            text: self.body(Output::WeeklyText, &ctx, &view.heading, &view.period),
            html: self.body(Output::WeeklyHtml, &ctx, &view.heading, &view.period),
        }
    }

    /// One line (a mail header), at most [`SUBJECT_MAX`] bytes.
    fn subject(&self, output: Output, ctx: &Value, heading: &str, period: &str) -> String {
        let line = one_line(&self.render(output, ctx, heading, period));
        clip_bytes(&line, SUBJECT_MAX)
    }

    fn body(&self, output: Output, ctx: &Value, heading: &str, period: &str) -> String {
        clip_bytes(&self.render(output, ctx, heading, period), BODY_MAX)
    }

    /// The override, else the default, else a plain note: a digest is always sent.
    fn render(&self, output: Output, ctx: &Value, heading: &str, period: &str) -> String {
        if self.0.overrides(output) {
            match self.try_render(output.name(), ctx) {
                Ok(s) if !s.trim().is_empty() => return s,
                Ok(_) => tracing::warn!(
                    template = output.name(),
                    "digest template override rendered nothing; using the default template"
                ),
                Err(e) => tracing::warn!(
                    template = output.name(),
                    error = %describe(&e),
                    "digest template override failed to render; using the default template"
                ),
            }
        }
        match self.try_render(output.default_name(), ctx) {
            Ok(s) if !s.trim().is_empty() => s,
            result => {
                // Only reachable through a bug in the defaults; tests render every output.
                let error = result.err().map(|e| describe(&e)).unwrap_or_default();
                tracing::error!(
                    template = output.default_name(),
                    error = %error,
                    "default digest template failed; sending a plain note"
                );
                plain_fallback(output, heading, period)
            }
        }
    }

    fn try_render(&self, name: &str, ctx: &Value) -> Result<String, Error> {
        self.0.try_render(name, ctx)
    }
}

fn plain_fallback(output: Output, heading: &str, period: &str) -> String {
    let note =
        "The digest template failed (see the service log); the figures are on the on-call page.";
    match output {
        Output::DailySubject | Output::WeeklySubject => format!("{heading} ({period})"),
        Output::DailyText | Output::WeeklyText => format!("{heading}\n{period}\n\n{note}\n"),
        Output::DailyHtml | Output::WeeklyHtml => format!(
            "<p>{}</p><p>{}</p><p>{}</p>",
            html_escape(heading),
            html_escape(period),
            html_escape(note)
        ),
    }
}

/// Collapses all whitespace (including CR/LF, which would otherwise split a mail header).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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

// ---------- sample digests: their contexts are what overrides are checked against at load
// time (`templates/digest/samples.json`) ----------

#[cfg(test)]
fn sample_period() -> Period {
    let at = |d: u32| {
        Utc.with_ymd_and_hms(2026, 11, d, 8, 0, 0)
            .single()
            .unwrap_or_else(Utc::now)
    };
    Period {
        start: at(28),
        end: at(29),
        tz: chrono_tz::UTC,
    }
}

#[cfg(test)]
fn samples_daily() -> Vec<(&'static str, DailyDigest)> {
    let incident = |id: IncidentId, project: Option<&str>, sentry: bool| DigestIncident {
        id,
        title: "Apdex below 0.8 on POST /orders".to_string(),
        project: project.map(str::to_string),
        state: "triggered".to_string(),
        rule: Some("apdex-regression".to_string()),
        metric_value: Some(0.61),
        metric_kind: Some("apdex".to_string()),
        event_count: 14,
        first_seen: 1_795_000_000_000,
        last_seen: 1_795_000_000_000,
        sentry_url: sentry.then(|| format!("https://sentry.io/organizations/paiid/issues/{id}/")),
    };
    let full = DailyDigest {
        period: sample_period(),
        manual: false,
        incidents: vec![
            incident(IncidentId(1), Some("paiid-backend"), true),
            incident(IncidentId(2), None, false),
        ],
    };
    let empty = DailyDigest {
        incidents: Vec::new(),
        ..full.clone()
    };
    let manual = DailyDigest {
        manual: true,
        ..full.clone()
    };
    vec![
        ("daily digest", full),
        ("empty daily digest", empty),
        ("daily digest sent by hand", manual),
    ]
}

#[cfg(test)]
fn samples_weekly() -> Vec<(&'static str, WeeklySummary)> {
    let full = WeeklySummary::new(
        sample_period(),
        false,
        vec![SeverityTally {
            severity: "critical".to_string(),
            opened: 2,
            acknowledged: 2,
            ack_ms_total: 1_800_000,
            resolved: 1,
            resolve_ms_total: 4_200_000,
        }],
        vec![EscalationTally {
            severity: "critical".to_string(),
            fired: 1,
            incidents: 1,
            max_lateness_ms: 250,
        }],
        vec![
            NoisyIncident {
                id: IncidentId(3),
                title: "Error storm".to_string(),
                project: Some("paiid-backend".to_string()),
                severity: "high".to_string(),
                state: "resolved".to_string(),
                event_count: 10_000,
                sentry_url: Some("https://sentry.io/organizations/paiid/issues/3/".to_string()),
            },
            NoisyIncident {
                id: IncidentId(4),
                title: "Quotes 500s".to_string(),
                project: None,
                severity: "medium".to_string(),
                state: "triggered".to_string(),
                event_count: 7,
                sentry_url: None,
            },
        ],
    );
    let full = WeeklySummary {
        storms: StormTally {
            storms: 1,
            members: 37,
        },
        ..full
    };
    let empty = WeeklySummary::new(sample_period(), false, vec![], vec![], vec![]);
    let manual = WeeklySummary {
        manual: true,
        ..full.clone()
    };
    vec![
        ("weekly summary", full),
        ("empty weekly summary", empty),
        ("weekly summary sent by hand", manual),
    ]
}

#[cfg(test)]
mod tests;
