//! Every template the service renders, and the minijinja set-up that pages and digests share.
//!
//! - `notify/`: notification defaults (Slack, email, PagerDuty), loaded by `notify::render`;
//! - `pages/`: the web pages of `http::pages` and `http::ack` (a base layout, one template per
//!   page, macros for the incident summary and the action forms), not overridable;
//! - `digest/`: the daily digest and weekly summary defaults, loaded by `digest::render` and
//!   overridable from `routing.yaml`.
//!
//! The files are embedded with `include_str!`, so the binary needs no template files at run time;
//! they stay files so that an operator can read a default and copy it as the start of an override.
//!
//! In the shared set-up ([`environment`]) a template whose name ends in `.html` or `_html` is
//! HTML-autoescaped, `none` prints as nothing, and printing an unknown variable is an error (so
//! an override's typo fails at load time), while `{% if unknown %}` stays false.

use std::fmt::Write as _;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, State, UndefinedBehavior};

use crate::text::html_escape;

/// The page templates, by name. Pages `{% extends "pages/base.html" %}` and import their
/// macros from `pages/macros.html`. A slice, so that adding a page is one line.
pub(crate) const PAGES: &[(&str, &str)] = &[
    ("pages/base.html", include_str!("pages/base.html.j2")),
    ("pages/macros.html", include_str!("pages/macros.html.j2")),
    ("pages/message.html", include_str!("pages/message.html.j2")),
    ("pages/index.html", include_str!("pages/index.html.j2")),
    (
        "pages/overview.html",
        include_str!("pages/overview.html.j2"),
    ),
    (
        "pages/incident.html",
        include_str!("pages/incident.html.j2"),
    ),
    (
        "pages/ack_result.html",
        include_str!("pages/ack_result.html.j2"),
    ),
    (
        "pages/ack_confirm.html",
        include_str!("pages/ack_confirm.html.j2"),
    ),
    (
        "pages/stale_link.html",
        include_str!("pages/stale_link.html.j2"),
    ),
    (
        "pages/deliveries.html",
        include_str!("pages/deliveries.html.j2"),
    ),
    (
        "pages/silences.html",
        include_str!("pages/silences.html.j2"),
    ),
];

/// A template (a default or a `routing.yaml` override) that does not compile or render, by name.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

pub(crate) mod digest;
pub(crate) mod notify;

/// An environment with the shared settings, filters and formatter, and no templates yet.
///
/// Filters beyond minijinja's builtins:
/// - `link(label)`: an `<a href>` for an http(s) URL, with `label` as its text (default: the
///   URL). Any other scheme (`javascript:`, `data:`, from a webhook body) is shown as text,
///   never as a clickable link; `none` prints nothing;
/// - `ljust(width)` / `rjust(width)`: pads to `width` characters, for aligned plain-text tables;
/// - `duration`: milliseconds as people read them (`4m 10s`), the one spelling of
///   [`crate::text::duration`].
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Block tags on their own lines leave no blank line behind.
    match SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        Ok(syntax) => env.set_syntax(syntax),
        // Only custom delimiters can fail to build; none are set.
        Err(e) => tracing::error!(error = %describe(&e), "template syntax settings rejected"),
    }
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") || name.ends_with("_html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.add_filter("link", link_filter);
    env.add_filter("ljust", ljust_filter);
    env.add_filter("rjust", rjust_filter);
    env.add_filter("duration", duration_filter);
    env
}

/// The error with its causes, on one line: what an operator needs to fix an override.
pub(crate) fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    s
}

fn format_value(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    // `none` prints as nothing: optional fields are common and "none" on a page is noise.
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    if !matches!(state.auto_escape(), AutoEscape::Html) {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(Error::from);
    }
    // minijinja's own HTML escaping also turns `/` into `&#x2f;`, which text and quoted
    // attributes do not need and which makes URLs in a mail's source unreadable.
    out.write_str(&html_escape(&value.to_string()))
        .map_err(Error::from)
}

fn link_filter(url: &Value, label: Option<String>) -> Value {
    if url.is_none() || url.is_undefined() {
        return Value::from("");
    }
    let url = url.to_string();
    let lower = url.trim().to_ascii_lowercase();
    let html = if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{}\">{}</a>",
            html_escape(url.trim()),
            html_escape(label.as_deref().unwrap_or(&url))
        )
    } else {
        match label {
            Some(label) => format!("{}: {}", html_escape(&label), html_escape(&url)),
            None => html_escape(&url),
        }
    };
    Value::from_safe_string(html)
}

/// Registered for notification templates too (`notify::render`), so that every template spells
/// a span of time the way messages and digests do.
pub(crate) fn duration_filter(ms: i64) -> String {
    crate::text::duration(ms)
}

fn pad(value: &Value, width: usize) -> (String, String) {
    let s = if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        value.to_string()
    };
    let fill = " ".repeat(width.saturating_sub(s.chars().count()));
    (s, fill)
}

fn ljust_filter(value: &Value, width: usize) -> String {
    let (s, fill) = pad(value, width);
    s + &fill
}

fn rjust_filter(value: &Value, width: usize) -> String {
    let (s, fill) = pad(value, width);
    fill + &s
}

#[cfg(test)]
mod tests;
