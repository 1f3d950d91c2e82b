//! The details of a Sentry event that a message shows (request line, top in-app frame, last
//! breadcrumbs, release, tags, metric kind and value), extracted once when the webhook arrives
//! and stored with the event (`events.details`), so that deliveries never parse Sentry JSON.
//!
//! Redaction happens here, at extraction, not at send: the stored details must not keep what
//! redaction would remove (they sit in the database and in backups beside far fewer guards than
//! Sentry's), and scrubbing needs the raw structure (a breadcrumb's `data` keys, a query
//! string's pairs) that the stored, composed lines no longer have. Secrets are always removed;
//! PII as `delivery.include_pii` says at intake, recorded in [`EventDetails::pii_included`] so
//! that a later, stricter setting is still honoured at send ([`EventDetails::for_delivery`]).
//!
//! Nothing here panics on odd shapes: every accessor tolerates missing keys, wrong types, `null`
//! and legacy `sentry.interfaces.*` spellings.

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::redact::{REDACTED, is_pii_key, is_secret_key, scrub_text, scrubbed};
use super::sentry::{self, AlertFacts, MetricKind};
use crate::domain::EventId;
use crate::store::{CorruptRows, StoreError, incidents as sql};
use crate::text::truncate_chars;

/// How many breadcrumbs a message shows.
pub(crate) const MAX_BREADCRUMBS: usize = 5;

const MAX_REQUEST_CHARS: usize = 500;
const MAX_FRAME_CHARS: usize = 300;
const MAX_BREADCRUMB_CHARS: usize = 300;
const MAX_DATA_VALUE_CHARS: usize = 80;
const MAX_DATA_FIELDS: usize = 8;
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 64;
const MAX_TAG_VALUE_CHARS: usize = 200;
/// Rows filled in per transaction by [`backfill`].
const BACKFILL_BATCH: i64 = 256;

/// One breadcrumb as a message shows it, scrubbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breadcrumb {
    pub timestamp: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub message: String,
}

/// A metric alert's kind and measured value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricDetails {
    pub kind: MetricKind,
    pub value: Option<f64>,
}

/// What a message shows about the failing event, scrubbed. Stored as JSON in `events.details`;
/// fields added later default when an older row lacks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventDetails {
    /// `GET https://…` (method omitted when Sentry has none), query string included and scrubbed.
    pub request: Option<String>,
    /// Innermost in-app frame, `file in function at line N`; when no frame is marked in-app, the
    /// innermost frame of the most recent exception (better than nothing for the reader).
    pub top_frame: Option<String>,
    /// Last [`MAX_BREADCRUMBS`] breadcrumbs, oldest first.
    pub breadcrumbs: Vec<Breadcrumb>,
    pub release: Option<String>,
    /// The event's tags, in Sentry's order; secret values redacted, PII tags dropped unless
    /// PII was included.
    pub tags: Vec<(String, String)>,
    /// For metric alerts.
    pub metric: Option<MetricDetails>,
    /// Whether PII was kept when these were scrubbed (`delivery.include_pii` at intake).
    pub pii_included: bool,
}

impl EventDetails {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// These details as a delivery with `include_pii` may show them. Stored with PII while PII
    /// is now excluded (the setting changed since intake), every text is scrubbed of PII again
    /// and PII tags are dropped; the other way round nothing changes (masked PII is gone).
    pub fn for_delivery(mut self, include_pii: bool) -> Self {
        if include_pii || !self.pii_included {
            return self;
        }
        let strict = |s: &mut String| *s = scrub_text(s, false);
        for s in [&mut self.request, &mut self.top_frame, &mut self.release]
            .into_iter()
            .flatten()
        {
            strict(s);
        }
        for c in &mut self.breadcrumbs {
            strict(&mut c.message);
            if let Some(category) = &mut c.category {
                strict(category);
            }
        }
        self.tags.retain(|(k, _)| !is_pii_key(k));
        for (_, v) in &mut self.tags {
            strict(v);
        }
        self.pii_included = false;
        self
    }
}

/// Everything a message will show about one webhook, extracted once when it arrives: the event
/// part from the raw body (issue and metric alerts have none), tags and metric from the facts
/// the intake parser read. Scrubbed of secrets, and of PII unless `include_pii`.
pub(crate) fn extract(facts: &AlertFacts, body: &[u8], include_pii: bool) -> EventDetails {
    let mut details = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|payload| find_event(&payload).map(|e| event_details(e, include_pii)))
        .unwrap_or_default();
    details.tags = tags(&facts.tags, include_pii);
    details.metric = facts.metric.as_ref().map(|m| MetricDetails {
        kind: m.kind(),
        value: m.value,
    });
    details.pii_included = include_pii;
    details
}

/// Fills in `events.details` for rows stored before intake extracted them (migration 0005), from
/// their kept raw body, a batch per transaction. The writer runs it at start, before it takes
/// webhooks, so that no delivery meets an old event without details while its body is kept.
/// Returns how many rows were filled in.
pub(crate) async fn backfill(
    conn: &mut crate::store::WriteTx,
    corrupt: &CorruptRows,
    include_pii: bool,
) -> Result<u64, StoreError> {
    let mut after = EventId(0);
    let mut filled = 0;
    loop {
        let rows = sql::events_without_details(conn, corrupt, after, BACKFILL_BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(filled);
        };
        after = last.0;
        let mut updates = Vec::with_capacity(rows.len());
        for (id, resource, body) in &rows {
            // Logged and counted as a corrupt row by the read; left without details.
            let Ok(body) = body else { continue };
            let resource = (resource != "legacy").then_some(resource.as_str());
            // A body the parser refuses still gets its event part, like it would have at send.
            let facts = sentry::parse(resource, body).unwrap_or_default();
            match extract(&facts, body, include_pii).to_json() {
                Ok(json) => updates.push((*id, json)),
                Err(e) => tracing::error!(event = id.get(), error = %e, "event details not stored"),
            }
        }
        sql::set_event_details(conn, &updates).await?;
        filled += updates.len() as u64;
    }
}

/// Tags as stored: secret values redacted, PII tags dropped unless `include_pii`, texts scrubbed.
fn tags(tags: &[(String, String)], include_pii: bool) -> Vec<(String, String)> {
    tags.iter()
        .filter(|(k, _)| include_pii || !is_pii_key(k))
        .take(MAX_TAGS)
        .map(|(k, v)| {
            let value = if is_secret_key(k) {
                REDACTED.to_string()
            } else {
                truncate_chars(&scrub_text(v, include_pii), MAX_TAG_VALUE_CHARS)
            };
            (truncate_chars(k, MAX_TAG_KEY_CHARS), value)
        })
        .collect()
}

/// The event object inside a Sentry webhook body: `data.event` (event_alert), `data.error`
/// (error.created) or `event` (legacy WebHooks plugin). `None` for issue and metric alerts.
pub(crate) fn find_event(payload: &Value) -> Option<&Value> {
    let data = payload.get("data");
    data.and_then(|d| d.get("event"))
        .or_else(|| data.and_then(|d| d.get("error")))
        .or_else(|| payload.get("event"))
        .filter(|e| e.is_object())
}

/// Extracts the request line, top frame, breadcrumbs and release from a raw Sentry event object,
/// scrubbed of secrets (and of PII unless `include_pii`). Never panics; unknown shapes yield
/// `None` / empty.
pub fn event_details(event: &Value, include_pii: bool) -> EventDetails {
    if !event.is_object() {
        return EventDetails::default();
    }
    EventDetails {
        request: request_line(event, include_pii),
        top_frame: top_frame(event, include_pii),
        breadcrumbs: breadcrumbs(event, include_pii),
        release: release(event, include_pii),
        pii_included: include_pii,
        ..EventDetails::default()
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The first of several legacy/modern spellings of an interface that is an object.
fn interface<'a>(event: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .filter_map(|n| event.get(*n))
        .find(|v| v.is_object() || v.is_array())
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn request_line(event: &Value, include_pii: bool) -> Option<String> {
    let req = interface(event, &["request", "sentry.interfaces.Http"])?;
    let url = non_empty_str(req.get("url"));
    let method = non_empty_str(req.get("method")).map(str::to_ascii_uppercase);
    if url.is_none() && method.is_none() {
        return None;
    }
    let mut target = url.unwrap_or("").to_string();
    let query = query_string(req.get("query_string"));
    if !query.is_empty() && !target.contains('?') {
        target.push('?');
        target.push_str(&query);
    }
    let line = match method {
        Some(m) if target.is_empty() => m,
        Some(m) => format!("{m} {target}"),
        None => target,
    };
    Some(truncate_chars(
        &scrub_text(&line, include_pii),
        MAX_REQUEST_CHARS,
    ))
}

/// Sentry sends `query_string` as a string, a `[[k, v], …]` list or an object.
fn query_string(qs: Option<&Value>) -> String {
    let pair = |k: &str, v: &Value| {
        let v = if is_secret_key(k) {
            REDACTED.to_string()
        } else {
            scalar_to_string(v).unwrap_or_default()
        };
        format!("{k}={v}")
    };
    match qs {
        Some(Value::String(s)) => s.trim_start_matches('?').to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let kv = item.as_array()?;
                Some(pair(kv.first()?.as_str()?, kv.get(1)?))
            })
            .collect::<Vec<_>>()
            .join("&"),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| pair(k, v))
            .collect::<Vec<_>>()
            .join("&"),
        _ => String::new(),
    }
}

fn as_list(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::Array(items) => Some(items),
        Value::Object(_) => v.get("values").and_then(Value::as_array),
        _ => None,
    }
}

/// Frame lists in the order a reader cares about: the most recent exception first (Sentry lists
/// chained exceptions oldest first), then a bare event stacktrace, then threads.
fn frames_of(stacktrace: Option<&Value>) -> Option<&Vec<Value>> {
    stacktrace?.get("frames")?.as_array()
}

fn frame_lists(event: &Value) -> Vec<&Vec<Value>> {
    let mut lists = Vec::new();
    if let Some(exc) = interface(event, &["exception", "sentry.interfaces.Exception"]) {
        match as_list(exc) {
            Some(values) => {
                for value in values.iter().rev() {
                    if let Some(frames) = frames_of(value.get("stacktrace")) {
                        lists.push(frames);
                    }
                }
            }
            // Very old single-exception form: the interface itself carries the stacktrace.
            None => {
                if let Some(frames) = frames_of(exc.get("stacktrace")) {
                    lists.push(frames);
                }
            }
        }
    }
    if let Some(frames) = frames_of(interface(
        event,
        &["stacktrace", "sentry.interfaces.Stacktrace"],
    )) {
        lists.push(frames);
    }
    if let Some(threads) =
        interface(event, &["threads", "sentry.interfaces.Threads"]).and_then(as_list)
    {
        for thread in threads {
            if let Some(frames) = frames_of(thread.get("stacktrace")) {
                lists.push(frames);
            }
        }
    }
    lists
}

fn is_in_app(frame: &Value) -> bool {
    match frame.get("in_app") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn format_frame(frame: &Value) -> Option<String> {
    let file = non_empty_str(frame.get("filename"))
        .or_else(|| non_empty_str(frame.get("abs_path")))
        .or_else(|| non_empty_str(frame.get("module")))
        .or_else(|| non_empty_str(frame.get("package")));
    let function = non_empty_str(frame.get("function"))
        .or_else(|| non_empty_str(frame.get("raw_function")))
        .or_else(|| non_empty_str(frame.get("symbol")));
    let line = frame.get("lineno").and_then(|l| match l {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let mut out = match (file, function) {
        (Some(f), Some(func)) => format!("{f} in {func}"),
        (Some(f), None) => f.to_string(),
        (None, Some(func)) => func.to_string(),
        (None, None) => return None,
    };
    if let Some(n) = line {
        out.push_str(&format!(" at line {n}"));
    }
    Some(out)
}

fn top_frame(event: &Value, include_pii: bool) -> Option<String> {
    let lists = frame_lists(event);
    let in_app = lists
        .iter()
        .flat_map(|frames| frames.iter().rev())
        .filter(|f| is_in_app(f))
        .find_map(format_frame);
    let found = in_app.or_else(|| {
        lists
            .iter()
            .find(|frames| !frames.is_empty())
            .and_then(|frames| frames.iter().rev().find_map(format_frame))
    })?;
    Some(truncate_chars(
        &scrub_text(&found, include_pii),
        MAX_FRAME_CHARS,
    ))
}

fn breadcrumbs(event: &Value, include_pii: bool) -> Vec<Breadcrumb> {
    let Some(list) =
        interface(event, &["breadcrumbs", "sentry.interfaces.Breadcrumbs"]).and_then(as_list)
    else {
        return Vec::new();
    };
    let crumbs: Vec<&Value> = list.iter().filter(|c| c.is_object()).collect();
    let skip = crumbs.len().saturating_sub(MAX_BREADCRUMBS);
    crumbs
        .into_iter()
        .skip(skip)
        .map(|c| breadcrumb(c, include_pii))
        .collect()
}

fn breadcrumb_timestamp(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() {
                return None;
            }
            let whole = secs.floor();
            let nanos = ((secs - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
            // Out-of-range epochs (garbage) simply yield no timestamp.
            if whole.abs() > 1e12 {
                return None;
            }
            DateTime::from_timestamp(whole as i64, nanos)
                .map(|dt| dt.to_rfc3339_opts(SecondsFormat::Millis, true))
        }
        Value::String(s) if !s.trim().is_empty() => Some(truncate_chars(s.trim(), 40)),
        _ => None,
    }
}

fn breadcrumb(c: &Value, include_pii: bool) -> Breadcrumb {
    let kind = non_empty_str(c.get("type")).filter(|t| *t != "default");
    let category = non_empty_str(c.get("category"))
        .or(kind)
        .map(|s| truncate_chars(s, 64));
    let level = non_empty_str(c.get("level")).map(|s| truncate_chars(s, 16));
    let base = non_empty_str(c.get("message")).map(str::to_string);
    let data = c.get("data").map(|d| scrubbed(d, include_pii));
    let data = data.as_ref().and_then(Value::as_object);

    let is_http =
        matches!(category.as_deref(), Some("http" | "fetch" | "xhr")) || kind == Some("http");
    let is_nav = category.as_deref() == Some("navigation") || kind == Some("navigation");
    let detail = data.and_then(|d| {
        if is_http && d.contains_key("url") {
            let mut s = String::new();
            if let Some(m) = non_empty_str(d.get("method")) {
                s.push_str(m);
                s.push(' ');
            }
            s.push_str(non_empty_str(d.get("url")).unwrap_or(""));
            if let Some(code) = d.get("status_code").and_then(scalar_to_string) {
                s.push_str(&format!(" [{code}]"));
            }
            Some(s)
        } else if is_nav && (d.contains_key("from") || d.contains_key("to")) {
            let from = non_empty_str(d.get("from")).unwrap_or("?");
            let to = non_empty_str(d.get("to")).unwrap_or("?");
            Some(format!("{from} → {to}"))
        } else {
            summarise_data(d)
        }
    });
    let message = match (base, detail) {
        (Some(m), Some(d)) => format!("{m} ({d})"),
        (Some(m), None) => m,
        (None, Some(d)) => d,
        (None, None) => String::new(),
    };
    Breadcrumb {
        timestamp: breadcrumb_timestamp(c.get("timestamp")),
        category: category.map(|s| scrub_text(&s, include_pii)),
        level,
        message: truncate_chars(&scrub_text(&message, include_pii), MAX_BREADCRUMB_CHARS),
    }
}

/// `key=value, …` for custom breadcrumb data (PaiiD's `trading`, `market_data`, `cache` crumbs
/// carry the symbol, order id, cache key there). Data was scrubbed before this.
fn summarise_data(d: &Map<String, Value>) -> Option<String> {
    let parts: Vec<String> = d
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            format!(
                "{}={}",
                truncate_chars(k, 40),
                truncate_chars(&shown, MAX_DATA_VALUE_CHARS)
            )
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut out = parts
        .iter()
        .take(MAX_DATA_FIELDS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if parts.len() > MAX_DATA_FIELDS {
        out.push_str(", …");
    }
    Some(out)
}

fn release(event: &Value, include_pii: bool) -> Option<String> {
    let direct = match event.get("release") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(obj @ Value::Object(_)) => non_empty_str(obj.get("version"))
            .or_else(|| non_empty_str(obj.get("shortVersion")))
            .map(str::to_string),
        _ => None,
    };
    let from_tags = || {
        let tags = event.get("tags")?;
        let lookup = |name: &str| match tags {
            Value::Array(items) => items.iter().find_map(|t| {
                let kv = t.as_array()?;
                (kv.first()?.as_str()? == name).then(|| non_empty_str(kv.get(1)))?
            }),
            Value::Object(map) => non_empty_str(map.get(name)),
            _ => None,
        };
        lookup("sentry:release")
            .or_else(|| lookup("release"))
            .map(str::to_string)
    };
    let r = direct.or_else(from_tags)?;
    Some(truncate_chars(&scrub_text(&r, include_pii), 200))
}

#[cfg(test)]
mod tests;
