//! The digest templates, compiled: the six defaults under `digest/` plus the overrides from
//! `routing.yaml`, each override checked when the routing file loads by rendering it for sample
//! digests (full and empty, scheduled and sent by hand). Compiled once, in `config`, and rendered
//! by `digest::render` (which owns the variables: see there).
//!
//! The samples are the template contexts of `digest::render`'s sample digests, stored as JSON in
//! `digest/samples.json` so that this module needs nothing above it; a test in `digest::render`
//! fails when they drift from the digests.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Serde, Value};
use minijinja::{Environment, Error};

use super::describe;

pub(crate) const DAILY_SUBJECT: &str = include_str!("digest/daily_subject.txt.j2");
pub(crate) const DAILY_TEXT: &str = include_str!("digest/daily_text.txt.j2");
pub(crate) const DAILY_HTML: &str = include_str!("digest/daily_html.html.j2");
pub(crate) const WEEKLY_SUBJECT: &str = include_str!("digest/weekly_subject.txt.j2");
pub(crate) const WEEKLY_TEXT: &str = include_str!("digest/weekly_text.txt.j2");
pub(crate) const WEEKLY_HTML: &str = include_str!("digest/weekly_html.html.j2");

/// The contexts of the sample digests, by kind, in the order they are checked.
pub(crate) const SAMPLES_JSON: &str = include_str!("digest/samples.json");

/// Override sources from `routing.yaml`, by output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestTemplateOverrides {
    pub daily_digest_subject: Option<String>,
    pub daily_digest_text: Option<String>,
    pub daily_digest_html: Option<String>,
    pub weekly_summary_subject: Option<String>,
    pub weekly_summary_text: Option<String>,
    pub weekly_summary_html: Option<String>,
}

pub(crate) use super::TemplateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    DailySubject,
    DailyText,
    DailyHtml,
    WeeklySubject,
    WeeklyText,
    WeeklyHtml,
}

impl Output {
    pub const ALL: [Output; 6] = [
        Output::DailySubject,
        Output::DailyText,
        Output::DailyHtml,
        Output::WeeklySubject,
        Output::WeeklyText,
        Output::WeeklyHtml,
    ];

    /// The key in `routing.yaml`'s `templates:` section, and the override's template name.
    pub fn name(self) -> &'static str {
        match self {
            Output::DailySubject => "daily_digest_subject",
            Output::DailyText => "daily_digest_text",
            Output::DailyHtml => "daily_digest_html",
            Output::WeeklySubject => "weekly_summary_subject",
            Output::WeeklyText => "weekly_summary_text",
            Output::WeeklyHtml => "weekly_summary_html",
        }
    }

    pub fn default_name(self) -> &'static str {
        match self {
            Output::DailySubject => "default/daily_digest_subject",
            Output::DailyText => "default/daily_digest_text",
            Output::DailyHtml => "default/daily_digest_html",
            Output::WeeklySubject => "default/weekly_summary_subject",
            Output::WeeklyText => "default/weekly_summary_text",
            Output::WeeklyHtml => "default/weekly_summary_html",
        }
    }

    fn default_source(self) -> &'static str {
        match self {
            Output::DailySubject => DAILY_SUBJECT,
            Output::DailyText => DAILY_TEXT,
            Output::DailyHtml => DAILY_HTML,
            Output::WeeklySubject => WEEKLY_SUBJECT,
            Output::WeeklyText => WEEKLY_TEXT,
            Output::WeeklyHtml => WEEKLY_HTML,
        }
    }

    fn source(self, o: &DigestTemplateOverrides) -> Option<&String> {
        match self {
            Output::DailySubject => o.daily_digest_subject.as_ref(),
            Output::DailyText => o.daily_digest_text.as_ref(),
            Output::DailyHtml => o.daily_digest_html.as_ref(),
            Output::WeeklySubject => o.weekly_summary_subject.as_ref(),
            Output::WeeklyText => o.weekly_summary_text.as_ref(),
            Output::WeeklyHtml => o.weekly_summary_html.as_ref(),
        }
    }

    fn is_daily(self) -> bool {
        matches!(
            self,
            Output::DailySubject | Output::DailyText | Output::DailyHtml
        )
    }
}

/// The compiled digest templates: defaults plus overrides, built and checked once when the
/// configuration loads. Cheap to clone.
#[derive(Clone)]
pub struct CompiledDigestTemplates {
    env: Arc<Environment<'static>>,
    overridden: Vec<Output>,
}

impl fmt::Debug for CompiledDigestTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides: Vec<&str> = self.overridden.iter().map(|o| o.name()).collect();
        f.debug_struct("CompiledDigestTemplates")
            .field("overrides", &overrides)
            .finish()
    }
}

impl Default for CompiledDigestTemplates {
    fn default() -> Self {
        Self::defaults()
    }
}

impl CompiledDigestTemplates {
    /// The built-in templates only.
    pub fn defaults() -> Self {
        Self {
            env: Arc::new(base_environment()),
            overridden: Vec::new(),
        }
    }

    /// Compiles the defaults plus the overrides, validating each override against sample
    /// digests (see the module docs).
    pub fn new(overrides: &DigestTemplateOverrides) -> Result<Self, TemplateError> {
        let mut env = base_environment();
        let mut overridden = Vec::new();
        for output in Output::ALL {
            let Some(source) = output.source(overrides) else {
                continue;
            };
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
            overridden.push(output);
        }
        let templates = Self {
            env: Arc::new(env),
            overridden,
        };
        if !templates.overridden.is_empty() {
            templates.check(&samples()?)?;
        }
        Ok(templates)
    }

    /// True when `routing.yaml` overrides this output (`daily_digest_html`, ...).
    pub fn is_overridden(&self, name: &str) -> bool {
        self.overridden.iter().any(|o| o.name() == name)
    }

    /// True when `routing.yaml` overrides `output`.
    pub fn overrides(&self, output: Output) -> bool {
        self.overridden.contains(&output)
    }

    /// Renders the template `name` (an override's name or `default/...`) with `ctx`.
    pub fn try_render(&self, name: &str, ctx: &Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(ctx.clone())
    }

    /// Renders each override against the sample digests of its kind: an unknown variable or a
    /// bad filter call is an error at load time, not a digest that silently falls back on the
    /// day.
    fn check(&self, samples: &Samples) -> Result<(), TemplateError> {
        for &output in &self.overridden {
            let of_kind = if output.is_daily() {
                &samples.daily
            } else {
                &samples.weekly
            };
            for (what, ctx) in of_kind {
                let err = |message: String| TemplateError {
                    name: output.name().to_string(),
                    message,
                };
                let rendered = self
                    .try_render(output.name(), ctx)
                    .map_err(|e| err(format!("fails on a sample {what}: {}", describe(&e))))?;
                if rendered.trim().is_empty() {
                    return Err(err(format!("renders nothing for a sample {what}")));
                }
            }
        }
        Ok(())
    }
}

/// The sample contexts of [`SAMPLES_JSON`]: `(what, context)` pairs of each kind.
pub(crate) struct Samples {
    pub daily: Vec<(String, Value)>,
    pub weekly: Vec<(String, Value)>,
}

pub(crate) fn samples() -> Result<Samples, TemplateError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        daily: Vec<(String, serde_json::Value)>,
        weekly: Vec<(String, serde_json::Value)>,
    }
    let stored: Stored = serde_json::from_str(SAMPLES_JSON).map_err(|e| TemplateError {
        name: "digest/samples.json".to_string(),
        message: e.to_string(),
    })?;
    let values = |pairs: Vec<(String, serde_json::Value)>| {
        pairs
            .into_iter()
            .map(|(what, ctx)| (what, Value::from(Serde(&ctx))))
            .collect()
    };
    Ok(Samples {
        daily: values(stored.daily),
        weekly: values(stored.weekly),
    })
}

pub(crate) fn base_environment() -> Environment<'static> {
    let mut env = super::environment();
    for output in Output::ALL {
        if let Err(e) = env.add_template(output.default_name(), output.default_source()) {
            // Compile-time constants; a failure is a bug caught by the tests, and rendering then
            // falls back to a plain note rather than taking the service down.
            tracing::error!(template = output.default_name(), error = %describe(&e), "default digest template does not compile");
        }
    }
    env
}
