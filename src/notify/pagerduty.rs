//! PagerDuty Events API v2 channel (`POST /v2/enqueue`).
//!
//! One PagerDuty incident per paiid-alerts incident episode: every event carries the
//! notification's `dedup_key`, so a trigger retried after a crash, or sent again on escalation,
//! lands on the same PagerDuty incident instead of paging twice. Acknowledge and resolve are only
//! sent when a trigger was accepted earlier (`RemoteState::pagerduty_triggered`); PagerDuty would
//! accept them anyway, but they would be no-ops that still cost rate-limit budget.
//!
//! The routing key is a secret: it is never logged, and the rate key is a short hash of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::render::Templates;
use super::transport::{retry_after, transport_failure};
use super::{
    Channel, ChannelKind, Notice, Notification, NotificationKind, Outgoing, RemoteRef, SendFuture,
    SendOutcome, truncate_body,
};
use crate::domain::Severity;
use crate::text::truncate_chars;

/// Per-request timeout; the outbox retries.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// PagerDuty rejects summaries over 1024 characters.
const MAX_SUMMARY_CHARS: usize = 1024;
/// PagerDuty rejects dedup keys over 255 characters.
const MAX_DEDUP_KEY_CHARS: usize = 255;
const MAX_STORED_BODY: usize = 2048;
const CLIENT: &str = "paiid-alerts";
/// PagerDuty rejects (HTTP 400) an event over 512 KB, and a rejected trigger is a page never
/// sent. The budget is under either reading of "KB", with room to spare.
pub(crate) const MAX_EVENT_BYTES: usize = 500_000;
/// In an event over the budget, each string in `custom_details` and `payload` is cut to this
/// many bytes of JSON (escapes counted): a few dozen of them stay far below the budget.
const MAX_FIELD_JSON_BYTES: usize = 4096;

/// A PagerDuty service integration (one routing key).
pub struct PagerDutyChannel {
    name: String,
    routing_key: String,
    events_url: String,
    http: reqwest::Client,
    templates: Arc<Templates>,
    timeout: Duration,
    /// Computed once: `pagerduty:` + first 8 hex chars of sha256(routing key).
    rate_key: String,
}

impl PagerDutyChannel {
    /// `routing_key` is the 32-character integration key (a secret; never logged).
    pub fn new(
        name: String,
        routing_key: String,
        events_url: String,
        http: reqwest::Client,
        templates: Arc<Templates>,
    ) -> Self {
        let rate_key = format!("pagerduty:{}", key_fingerprint(&routing_key));
        Self {
            name,
            routing_key,
            events_url,
            http,
            templates,
            timeout: DEFAULT_TIMEOUT,
            rate_key,
        }
    }

    /// Override the per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn enqueue(&self, event: Value, action: Action) -> SendOutcome {
        let request = self
            .http
            .post(&self.events_url)
            .header(CONTENT_TYPE, "application/json")
            .body(event.to_string())
            .timeout(self.timeout);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(e, self.timeout),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match response.text().await {
            Ok(b) => b,
            // The event was accepted; the dedup_key makes a retry harmless, but there is no need.
            Err(_) if (200..300).contains(&status) => String::new(),
            Err(e) => return transport_failure(e, self.timeout),
        };
        let mut outcome = classify_response(status, &body, retry_after);
        if let (SendOutcome::Delivered { remote, .. }, Action::Trigger) = (&mut outcome, action) {
            *remote = Some(RemoteRef::PagerDutyTriggered {
                dedup_key: event["dedup_key"].as_str().unwrap_or_default().to_string(),
            });
        }
        outcome
    }
}

impl fmt::Debug for PagerDutyChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyChannel")
            .field("name", &self.name)
            .field("routing_key", &"[redacted]")
            .field("rate_key", &self.rate_key)
            .field("events_url", &self.events_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Channel for PagerDutyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Pagerduty
    }

    fn rate_key(&self) -> String {
        self.rate_key.clone()
    }

    fn announce<'a>(&'a self, _notice: &'a Notice) -> SendFuture<'a> {
        // Notices are left off PagerDuty when their rows are written; this covers a routing
        // file that changed in between.
        Box::pin(async {
            SendOutcome::Skipped {
                reason: "PagerDuty is not paged for a notice".to_string(),
            }
        })
    }

    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let n = out.notification;
            let Some(action) = action_for(n.kind, out.remote.pagerduty_triggered) else {
                return SendOutcome::Skipped {
                    reason: skip_reason(n.kind).to_string(),
                };
            };
            let key_len = n.dedup_key.chars().count();
            if key_len == 0 || key_len > MAX_DEDUP_KEY_CHARS {
                // PagerDuty would answer 400; say why without spending a request.
                return SendOutcome::Permanent {
                    status: None,
                    reason: format!("dedup_key must be 1..=255 characters, got {key_len}"),
                };
            }
            let event = match action {
                Action::Trigger => fit_event(trigger_event(
                    &self.routing_key,
                    n,
                    &self.templates.pagerduty_summary(n),
                )),
                Action::Acknowledge | Action::Resolve => {
                    state_event(&self.routing_key, action, &n.dedup_key)
                }
            };
            self.enqueue(event, action).await
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

/// Which event a notification becomes, or `None` when PagerDuty has nothing to do with it.
fn action_for(kind: NotificationKind, triggered: bool) -> Option<Action> {
    match kind {
        NotificationKind::Opened
        | NotificationKind::SeverityRaised
        | NotificationKind::Escalation
        | NotificationKind::Retriggered
        | NotificationKind::Test => Some(Action::Trigger),
        NotificationKind::Acknowledged if triggered => Some(Action::Acknowledge),
        NotificationKind::Resolved if triggered => Some(Action::Resolve),
        NotificationKind::Acknowledged
        | NotificationKind::Resolved
        | NotificationKind::PostMortem
        | NotificationKind::CountUpdate => None,
    }
}

fn skip_reason(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Acknowledged | NotificationKind::Resolved => {
            "never triggered on PagerDuty for this episode"
        }
        _ => "PagerDuty has no event for this notification kind",
    }
}

/// First 8 hex characters of sha256(routing key): stable, and useless to an attacker.
fn key_fingerprint(routing_key: &str) -> String {
    let digest = Sha256::digest(routing_key.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(8);
    hex
}

/// Our severities onto PagerDuty's four.
fn pd_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unclassified => "info",
    }
}

/// Acknowledge / resolve carry only what identifies the incident.
fn state_event(routing_key: &str, action: Action, dedup_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": action.as_str(),
        "dedup_key": dedup_key,
    })
}

fn trigger_event(routing_key: &str, n: &Notification, summary: &str) -> Value {
    let mut payload = Map::new();
    let summary = if summary.trim().is_empty() {
        n.headline()
    } else {
        summary.to_string()
    };
    payload.insert(
        "summary".into(),
        json!(truncate_chars(&summary, MAX_SUMMARY_CHARS)),
    );
    payload.insert(
        "source".into(),
        json!(
            n.project
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or(CLIENT)
        ),
    );
    payload.insert("severity".into(), json!(pd_severity(n.severity)));
    payload.insert(
        "timestamp".into(),
        json!(n.last_seen.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    // Optional fields are left out rather than sent as null.
    for (key, value) in [
        ("component", &n.project),
        ("group", &n.environment),
        ("class", &n.level),
    ] {
        if let Some(v) = value {
            payload.insert(key.into(), json!(v));
        }
    }
    payload.insert("custom_details".into(), custom_details(n));

    let mut links = Vec::new();
    if let Some(url) = &n.sentry_url {
        links.push(json!({ "href": url, "text": "View in Sentry" }));
    }
    links.push(json!({ "href": n.incident_url, "text": format!("paiid-alerts incident #{}", n.incident_id) }));

    json!({
        "routing_key": routing_key,
        "event_action": Action::Trigger.as_str(),
        "dedup_key": n.dedup_key,
        "payload": payload,
        "links": links,
        "client": CLIENT,
        "client_url": n.incident_url,
    })
}

/// Everything on-call may want without leaving PagerDuty. Absent values are omitted.
fn custom_details(n: &Notification) -> Value {
    let mut d = Map::new();
    d.insert("incident_id".into(), json!(n.incident_id));
    d.insert("notification".into(), json!(n.kind.as_str()));
    d.insert("severity".into(), json!(n.severity));
    d.insert("state".into(), json!(n.state));
    d.insert("title".into(), json!(n.title));
    d.insert("event_count".into(), json!(n.event_count));
    d.insert(
        "first_seen".into(),
        json!(n.first_seen.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    d.insert(
        "last_seen".into(),
        json!(n.last_seen.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    for (key, value) in [
        ("project", &n.project),
        ("environment", &n.environment),
        ("level", &n.level),
        ("culprit", &n.culprit),
        ("rule", &n.rule),
        ("sentry_rule", &n.sentry_rule),
        ("release", &n.release),
        ("request", &n.request),
        ("top_frame", &n.top_frame),
        ("metric", &n.metric),
        ("sentry_url", &n.sentry_url),
    ] {
        if let Some(v) = value {
            d.insert(key.into(), json!(v));
        }
    }
    d.insert("incident_url".into(), json!(n.incident_url));
    if let Some(m) = n.waited_minutes {
        d.insert("waited_minutes".into(), json!(m));
    }
    if !n.breadcrumbs.is_empty() {
        d.insert("breadcrumbs".into(), json!(n.breadcrumbs));
    }
    Value::Object(d)
}

/// Brings an event over [`MAX_EVENT_BYTES`] under it: every string in `custom_details` and the
/// payload is cut (the summary already fits), links too long to work are dropped, and
/// `custom_details.truncated` says so. If that is still too much (it cannot be with the fields
/// we send, but an event that is refused pages nobody) only what identifies the incident is
/// kept. Events within the budget are sent as they are.
fn fit_event(mut event: Value) -> Value {
    if json_len(&event) <= MAX_EVENT_BYTES {
        return event;
    }
    let original = json_len(&event);
    let incident_url = event["client_url"].as_str().unwrap_or_default().to_string();
    let note = format!(
        "Details were cut to keep this event under PagerDuty's 512 KB limit (it was {original} \
         bytes); all of them are at {incident_url}"
    );
    if let Some(payload) = event.get_mut("payload").and_then(Value::as_object_mut) {
        for (key, value) in payload.iter_mut() {
            if key != "summary" {
                clip_strings(value, MAX_FIELD_JSON_BYTES);
            }
        }
        if let Some(details) = payload
            .get_mut("custom_details")
            .and_then(Value::as_object_mut)
        {
            details.insert("truncated".into(), json!(note));
        }
    }
    if let Some(links) = event.get_mut("links").and_then(Value::as_array_mut) {
        // A cut URL is a broken link; the incident link (ours) stays.
        links.retain(|l| json_len(&l["href"]) <= MAX_FIELD_JSON_BYTES);
    }
    if json_len(&event) <= MAX_EVENT_BYTES {
        return event;
    }
    if let Some(payload) = event.get_mut("payload").and_then(Value::as_object_mut) {
        let keep = |key: &str| {
            payload
                .get("custom_details")
                .and_then(|d| d.get(key))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let details = json!({
            "incident_id": keep("incident_id"),
            "notification": keep("notification"),
            "incident_url": incident_url,
            "truncated": note,
        });
        payload.insert("custom_details".into(), details);
    }
    if let Some(event) = event.as_object_mut() {
        event.remove("links");
        event.remove("images");
    }
    event
}

/// Bytes of `v` as JSON.
fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// Cuts every string inside `v` to at most `max` bytes of JSON, marking each cut with `…`.
fn clip_strings(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => {
            if let Some(cut) = clip_json_str(s, max) {
                *s = cut;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| clip_strings(i, max)),
        Value::Object(map) => map.values_mut().for_each(|i| clip_strings(i, max)),
        _ => {}
    }
}

/// `s` cut so that it encodes to at most `max` bytes of JSON (quotes and escapes counted), or
/// `None` when it already does.
fn clip_json_str(s: &str, max: usize) -> Option<String> {
    let encoded = |c: char| match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        // serde_json writes other control characters as `\u00XX`.
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    };
    let ellipsis = '…'.len_utf8();
    let mut used = 2;
    let mut fits_with_ellipsis = 0;
    for (i, c) in s.char_indices() {
        used += encoded(c);
        if used + ellipsis <= max {
            fits_with_ellipsis = i + c.len_utf8();
        }
        if used > max {
            return Some(format!(
                "{}…",
                s.get(..fits_with_ellipsis).unwrap_or_default()
            ));
        }
    }
    None
}

/// 202 accepted; 400 never retried (the event is wrong); 429 and 5xx retried.
fn classify_response(status: u16, body: &str, retry_after: Option<Duration>) -> SendOutcome {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let snippet = truncate_body(body.trim(), MAX_STORED_BODY);
    let message = json
        .as_ref()
        .and_then(|j| j.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| snippet.clone());
    match status {
        200..=299 => SendOutcome::Delivered {
            status: Some(status),
            response: snippet,
            remote: None,
        },
        400 => {
            let errors = json
                .as_ref()
                .and_then(|j| j.get("errors"))
                .and_then(Value::as_array)
                .map(|e| {
                    e.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let reason = if errors.is_empty() {
                format!("rejected by PagerDuty (HTTP 400): {message}")
            } else {
                format!("rejected by PagerDuty (HTTP 400): {message}: {errors}")
            };
            SendOutcome::Permanent {
                status: Some(status),
                reason: truncate_body(&reason, MAX_STORED_BODY),
            }
        }
        429 | 408 | 500..=599 => SendOutcome::Retry {
            status: Some(status),
            reason: format!("PagerDuty HTTP {status}: {message}"),
            retry_after,
        },
        _ => SendOutcome::Permanent {
            status: Some(status),
            reason: format!("PagerDuty HTTP {status}: {message}"),
        },
    }
}

#[cfg(test)]
mod tests;
