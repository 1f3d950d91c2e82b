//! Slack channel: an incoming webhook, or a bot token using the Web API.
//!
//! The two modes can do different things, so they behave differently:
//! - **Webhook**: posts only. A webhook cannot edit what it posted, so acknowledgements and
//!   resolutions become new short messages and live count updates are skipped.
//! - **Bot**: `chat.postMessage` returns the message `ts`, which the incident stores. Later
//!   changes `chat.update` that message (one live card per incident, with its buttons hidden once
//!   they no longer apply) and add a thread reply (history, and a notification for followers).
//!
//! Everything that comes from a Sentry event (titles, culprits, breadcrumbs, names) is escaped
//! before it goes into mrkdwn, so an exception message cannot `<!channel>` the room or forge a
//! link. Block Kit limits are applied here because Slack rejects the whole message
//! (`invalid_blocks`) when a single field is one character too long.
//!
//! Secrets: the webhook URL *is* a credential and the bot token is one. Neither is ever put in a
//! log line, a `Debug` string or a stored failure reason (reqwest errors are stripped of their URL).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};

use super::render::Templates;
use super::{
    Channel, Notification, NotificationKind, Outgoing, RemoteRef, RemoteState, SendFuture,
    SendOutcome, truncate_body,
};

/// Slack Web API base when `SLACK_API_URL` is unset.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";
/// Per-request timeout. The outbox retries, so a slow Slack must not hold a worker for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

// Block Kit limits (https://api.slack.com/reference/block-kit). Counted in characters.
const MAX_BLOCKS: usize = 50;
const MAX_HEADER_CHARS: usize = 150;
const MAX_SECTION_CHARS: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_CHARS: usize = 2000;
const MAX_BUTTON_TEXT_CHARS: usize = 75;
const MAX_URL_CHARS: usize = 3000;
/// Top-level `text` is only the notification / fallback text when blocks are present; Slack
/// truncates at 40,000 characters but recommends staying under 4,000.
const MAX_TEXT_CHARS: usize = 4000;
/// Per-line budgets keep multi-line sections under `MAX_SECTION_CHARS` without cutting a code
/// span or a link in half.
const MAX_DETAIL_CHARS: usize = 700;
const MAX_BREADCRUMB_CHARS: usize = 400;
const MAX_ROOT_CAUSE_CHARS: usize = 1500;
/// How much of a response body is kept on the delivery row.
const MAX_STORED_BODY: usize = 2048;
/// A bogus `Retry-After` (days) must not park a delivery forever; the worker's own backoff takes
/// over beyond this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A Slack destination (one channel).
pub struct SlackChannel {
    name: String,
    /// The channel as configured (`#paiid-alerts` or an id); used for posting and rate keys.
    channel: String,
    mode: Mode,
    http: reqwest::Client,
    templates: Arc<Templates>,
    timeout: Duration,
}

enum Mode {
    Webhook { url: String },
    Bot { token: String, api_base: String },
}

impl SlackChannel {
    /// Incoming-webhook mode. `webhook_url` is a secret; it is never logged.
    pub fn webhook(
        name: String,
        channel: String,
        webhook_url: String,
        http: reqwest::Client,
        templates: Arc<Templates>,
    ) -> Self {
        Self {
            name,
            channel,
            mode: Mode::Webhook { url: webhook_url },
            http,
            templates,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Bot-token mode (`chat.postMessage` / `chat.update`). `api_base` is e.g.
    /// `SLACK_API_URL` as read by `Settings`; a trailing slash is tolerated.
    pub fn bot(
        name: String,
        channel: String,
        bot_token: String,
        api_base: String,
        http: reqwest::Client,
        templates: Arc<Templates>,
    ) -> Self {
        Self {
            name,
            channel,
            mode: Mode::Bot {
                token: bot_token,
                api_base: api_base.trim_end_matches('/').to_string(),
            },
            http,
            templates,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Override the per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// True in bot mode (messages can be updated and carry interactive buttons).
    pub fn is_bot(&self) -> bool {
        matches!(self.mode, Mode::Bot { .. })
    }

    /// The configured Slack channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Fallback / notification text from the template. Escaped without double-escaping, since a
    /// template may or may not have escaped user data already; either way no `<!channel>` or
    /// forged link from an event survives.
    fn fallback_text(&self, n: &Notification) -> String {
        let text = escape_keeping_entities(&self.templates.slack_text(n));
        truncate_mrkdwn(&text, MAX_TEXT_CHARS)
    }

    async fn send_webhook(&self, url: &str, n: &Notification) -> SendOutcome {
        let blocks = match n.kind {
            NotificationKind::CountUpdate => {
                return SendOutcome::Skipped {
                    reason:
                        "a Slack webhook cannot edit its messages (live counts need a bot token)"
                            .to_string(),
                };
            }
            NotificationKind::Acknowledged | NotificationKind::Resolved => short_blocks(n),
            _ => full_blocks(n, false),
        };
        let body = message_body(None, self.fallback_text(n), blocks);
        let request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(self.timeout);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(e, self.timeout),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        match response.text().await {
            Ok(text) => classify_webhook(status, &text, retry_after),
            // Slack already accepted the post; retrying would post it twice.
            Err(_) if (200..300).contains(&status) => SendOutcome::Delivered {
                status: Some(status),
                response: "(response body unreadable)".to_string(),
                remote: None,
            },
            Err(e) => transport_failure(e, self.timeout),
        }
    }
}

impl fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SlackChannel");
        d.field("name", &self.name).field("channel", &self.channel);
        match &self.mode {
            Mode::Webhook { .. } => d
                .field("mode", &"webhook")
                .field("webhook_url", &"[redacted]"),
            Mode::Bot { api_base, .. } => d
                .field("mode", &"bot")
                .field("api_base", api_base)
                .field("bot_token", &"[redacted]"),
        };
        d.field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn rate_key(&self) -> String {
        format!("slack:{}", self.channel)
    }

    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            match &self.mode {
                Mode::Webhook { url } => self.send_webhook(url, out.notification).await,
                Mode::Bot { token, api_base } => {
                    let bot = Bot {
                        ch: self,
                        token,
                        api_base,
                    };
                    bot.send(out.notification, out.remote).await
                }
            }
        })
    }
}

/// `chat.postMessage` / webhook body. `channel` is `None` for webhooks: a webhook is bound to its
/// channel, and sending `channel` to one is at best ignored.
fn message_body(channel: Option<&str>, text: String, blocks: Vec<Value>) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(channel) = channel {
        body.insert("channel".into(), json!(channel));
    }
    body.insert("text".into(), json!(text));
    body.insert("blocks".into(), Value::Array(blocks));
    // Slack's unfurler fetches every link; the ack link must only ever be fetched by people.
    body.insert("unfurl_links".into(), json!(false));
    body.insert("unfurl_media".into(), json!(false));
    Value::Object(body)
}

// ---------------------------------------------------------------------------------------------
// Bot mode
// ---------------------------------------------------------------------------------------------

struct Bot<'a> {
    ch: &'a SlackChannel,
    token: &'a str,
    api_base: &'a str,
}

/// The message a bot posted earlier for this incident.
#[derive(Clone, Copy)]
struct Existing<'a> {
    channel: &'a str,
    ts: &'a str,
}

/// A successful Web API call.
struct ApiOk {
    status: u16,
    body: String,
    json: Value,
}

/// A failed Web API call: the outcome to report plus Slack's error code, when it gave one, so
/// callers can react to specific errors (`message_not_found` → post a fresh message).
struct ApiFailure {
    outcome: SendOutcome,
    error: Option<String>,
}

impl From<SendOutcome> for ApiFailure {
    fn from(outcome: SendOutcome) -> Self {
        Self {
            outcome,
            error: None,
        }
    }
}

impl ApiOk {
    fn delivered(self, remote: Option<RemoteRef>) -> SendOutcome {
        SendOutcome::Delivered {
            status: Some(self.status),
            response: truncate_body(&self.body, MAX_STORED_BODY),
            remote,
        }
    }
}

impl Bot<'_> {
    async fn send(&self, n: &Notification, remote: &RemoteState) -> SendOutcome {
        use NotificationKind as K;
        let existing = remote.slack_ts.as_deref().map(|ts| Existing {
            // `chat.update` needs the channel id Slack returned; fall back to the configured one
            // for rows written before the id was stored.
            channel: remote.slack_channel.as_deref().unwrap_or(&self.ch.channel),
            ts,
        });
        match (n.kind, existing) {
            // Stand-alone messages, never tied to the incident card.
            (K::Test | K::PostMortem, _) => self.post_full(n, false).await,
            (K::Opened | K::SeverityRaised | K::Escalation, None) => self.post_full(n, true).await,
            // A retried `Opened` after its post succeeded (lease expired before the ts was
            // recorded as done): refresh the card instead of posting a duplicate.
            (K::Opened, Some(m)) => self.update_card(n, m, false).await,
            (K::SeverityRaised | K::Escalation | K::Acknowledged | K::Resolved, Some(m)) => {
                self.update_card(n, m, true).await
            }
            (K::Acknowledged | K::Resolved, None) => self.post_short(n).await,
            (K::CountUpdate, Some(m)) => self.update_card(n, m, false).await,
            (K::CountUpdate, None) => SendOutcome::Skipped {
                reason: "no Slack message to update for this incident".to_string(),
            },
        }
    }

    /// Post the full incident card; `track` returns its ts so later changes update it.
    async fn post_full(&self, n: &Notification, track: bool) -> SendOutcome {
        let channel = Some(self.ch.channel.as_str());
        let body = message_body(channel, self.ch.fallback_text(n), full_blocks(n, true));
        match self.call("chat.postMessage", &body).await {
            Ok(ok) => {
                let remote = if track { message_ref(&ok.json) } else { None };
                ok.delivered(remote)
            }
            Err(f) => f.outcome,
        }
    }

    /// A new short state message (no card to update).
    async fn post_short(&self, n: &Notification) -> SendOutcome {
        let channel = Some(self.ch.channel.as_str());
        let body = message_body(channel, self.ch.fallback_text(n), short_blocks(n));
        match self.call("chat.postMessage", &body).await {
            Ok(ok) => ok.delivered(None),
            Err(f) => f.outcome,
        }
    }

    /// `chat.update` the card, then (for state changes) add a thread reply. If Slack no longer
    /// has the message (deleted by someone), fall back to what we would do without one.
    async fn update_card(&self, n: &Notification, m: Existing<'_>, reply: bool) -> SendOutcome {
        let body = json!({
            "channel": m.channel,
            "ts": m.ts,
            "text": self.ch.fallback_text(n),
            "blocks": full_blocks(n, true),
        });
        let updated = match self.call("chat.update", &body).await {
            Ok(ok) => ok,
            Err(f)
                if matches!(
                    f.error.as_deref(),
                    Some("message_not_found" | "cant_update_message")
                ) =>
            {
                return match n.kind {
                    NotificationKind::Acknowledged | NotificationKind::Resolved => {
                        self.post_short(n).await
                    }
                    NotificationKind::CountUpdate => SendOutcome::Skipped {
                        reason: "the incident's Slack message no longer exists".to_string(),
                    },
                    _ => self.post_full(n, true).await,
                };
            }
            Err(f) => return f.outcome,
        };
        if !reply {
            let remote = RemoteRef::SlackMessage {
                channel: m.channel.to_string(),
                ts: m.ts.to_string(),
            };
            return updated.delivered(Some(remote));
        }
        // Escalations and severity changes are broadcast to the channel as well: someone who
        // does not follow the thread must still see them. Ack / resolve only need the thread.
        let broadcast = matches!(
            n.kind,
            NotificationKind::Escalation | NotificationKind::SeverityRaised
        );
        let body = json!({
            "channel": m.channel,
            "thread_ts": m.ts,
            "text": reply_text(n),
            "reply_broadcast": broadcast,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        // If the reply fails the outbox retries the whole step; repeating `chat.update` with the
        // same content is harmless.
        match self.call("chat.postMessage", &body).await {
            Ok(ok) => ok.delivered(None),
            Err(f) => f.outcome,
        }
    }

    async fn call(&self, method: &str, body: &Value) -> Result<ApiOk, ApiFailure> {
        let timeout = self.ch.timeout;
        let request = self
            .ch
            .http
            .post(format!("{}/{method}", self.api_base))
            .bearer_auth(self.token)
            // Slack warns (`missing_charset`) without the charset.
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .timeout(timeout);
        let response = request
            .send()
            .await
            .map_err(|e| ApiFailure::from(transport_failure(e, timeout)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| ApiFailure::from(transport_failure(e, timeout)))?;
        interpret_api_response(method, status, &text, retry_after)
    }
}

/// The `{channel, ts}` of a `chat.postMessage` response.
fn message_ref(json: &Value) -> Option<RemoteRef> {
    let channel = json.get("channel")?.as_str()?;
    let ts = json.get("ts")?.as_str()?;
    Some(RemoteRef::SlackMessage {
        channel: channel.to_string(),
        ts: ts.to_string(),
    })
}

/// Web API responses: errors usually arrive as HTTP 200 with `{ok:false, error}`.
fn interpret_api_response(
    method: &str,
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
) -> Result<ApiOk, ApiFailure> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let snippet = truncate_body(body.trim(), MAX_STORED_BODY);
    let http_failure = |retry: bool| {
        let reason = format!(
            "{method}: HTTP {status}: {}",
            error.as_deref().unwrap_or(&snippet)
        );
        let outcome = if retry {
            SendOutcome::Retry {
                status: Some(status),
                reason,
                retry_after,
            }
        } else {
            SendOutcome::Permanent {
                status: Some(status),
                reason,
            }
        };
        Err(ApiFailure {
            outcome,
            error: error.clone(),
        })
    };
    match status {
        429 | 408 | 500..=599 => return http_failure(true),
        200..=299 => {}
        _ => return http_failure(false),
    }
    let Some(json) = json else {
        // A 2xx that is not JSON is a proxy or an outage page, not Slack's answer.
        return Err(ApiFailure::from(SendOutcome::Retry {
            status: Some(status),
            reason: format!("{method}: unparseable response: {snippet}"),
            retry_after,
        }));
    };
    if json.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(ApiOk {
            status,
            body: body.to_string(),
            json,
        });
    }
    let error = error.unwrap_or_else(|| "unknown_error".to_string());
    // `invalid_blocks` and friends explain themselves in `response_metadata.messages`.
    let detail = json
        .pointer("/response_metadata/messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let outcome = classify_api_error(method, &error, &detail, status, retry_after);
    Err(ApiFailure {
        outcome,
        error: Some(error),
    })
}

/// `{ok:false, error}` → outcome. Only rate limiting and Slack-side failures are worth retrying;
/// everything else (`invalid_auth`, `not_authed`, `channel_not_found`, `is_archived`,
/// `invalid_blocks`, `msg_too_long`, `no_text`, `invalid_arguments`, `not_in_channel`,
/// `account_inactive`, `token_revoked`, and errors we do not know) will fail the same way again.
fn classify_api_error(
    method: &str,
    error: &str,
    detail: &str,
    status: u16,
    retry_after: Option<Duration>,
) -> SendOutcome {
    let reason = if detail.is_empty() {
        format!("{method}: {error}")
    } else {
        format!("{method}: {error}: {}", truncate_body(detail, 512))
    };
    match error {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => SendOutcome::Retry {
            status: Some(status),
            reason,
            retry_after,
        },
        _ => SendOutcome::Permanent {
            status: Some(status),
            reason,
        },
    }
}

/// Incoming-webhook responses: 200 `ok`, otherwise a plain-text error code.
fn classify_webhook(status: u16, body: &str, retry_after: Option<Duration>) -> SendOutcome {
    let text = body.trim();
    let snippet = truncate_body(
        if text.is_empty() {
            "(empty body)"
        } else {
            text
        },
        MAX_STORED_BODY,
    );
    match status {
        200..=299 => SendOutcome::Delivered {
            status: Some(status),
            response: snippet,
            remote: None,
        },
        429 | 408 | 500..=599 => SendOutcome::Retry {
            status: Some(status),
            reason: format!("{snippet} (HTTP {status})"),
            retry_after,
        },
        // invalid_payload / no_text (400), action_prohibited (403), channel_not_found and
        // no_service (404), channel_is_archived (410), and anything unexpected.
        _ => SendOutcome::Permanent {
            status: Some(status),
            reason: format!("{snippet} (HTTP {status})"),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Shared HTTP helpers (also used by the PagerDuty channel)
// ---------------------------------------------------------------------------------------------

/// `Retry-After` as delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value)
                .ok()?
                .with_timezone(&Utc);
            (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A request that got no HTTP response. Builder errors (a malformed URL in config) will not fix
/// themselves; everything else (connect, reset, timeout) is worth retrying. The URL is stripped:
/// for a Slack webhook it is the secret.
pub(crate) fn transport_failure(err: reqwest::Error, timeout: Duration) -> SendOutcome {
    let err = err.without_url();
    if err.is_builder() {
        return SendOutcome::Permanent {
            status: None,
            reason: format!("invalid request: {}", error_chain(&err)),
        };
    }
    let reason = if err.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else {
        error_chain(&err)
    };
    SendOutcome::Retry {
        status: None,
        reason,
        retry_after: None,
    }
}

/// `outer: inner: root` so that "connection refused" is not hidden behind "error sending request".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

// ---------------------------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------------------------

/// Escape the three characters Slack treats as control characters in mrkdwn.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Like [`escape`] but leaves `&amp;`, `&lt;`, `&gt;` alone, for text that may already be
/// escaped. Safe either way: what remains cannot form a `<...>` control sequence.
fn escape_keeping_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '&' => {
                let rest = &s[i..];
                if ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| rest.starts_with(e))
                {
                    out.push('&');
                } else {
                    out.push_str("&amp;");
                }
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters; an ellipsis marks a cut.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// [`truncate_chars`] for escaped mrkdwn: never leaves half an entity (`&am…`) behind.
fn truncate_mrkdwn(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    // In escaped text every `&` starts an entity; one without its `;` was cut.
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

/// Code spans cannot contain backticks; a stray one would end the span early.
fn code(s: &str, max: usize) -> String {
    format!("`{}`", truncate_mrkdwn(&escape(&s.replace('`', "'")), max))
}

/// A date every reader sees in their own time zone, with a UTC fallback for old clients.
fn slack_date(t: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>",
        t.timestamp(),
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// A mrkdwn link, or just the label when the URL is too long to be usable.
fn link(url: &str, label: &str) -> String {
    if url.chars().count() > MAX_URL_CHARS {
        return escape(label);
    }
    // `|` ends the URL part and `<`/`>` end the link; percent-encoding keeps the URL equivalent.
    let url = escape(
        &url.replace('|', "%7C")
            .replace('<', "%3C")
            .replace('>', "%3E"),
    );
    format!("<{url}|{}>", escape(label))
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

fn is_resolved(n: &Notification) -> bool {
    n.state == "resolved"
        || n.resolved_at.is_some()
        || matches!(
            n.kind,
            NotificationKind::Resolved | NotificationKind::PostMortem
        )
}

fn is_acknowledged(n: &Notification) -> bool {
    n.state == "acknowledged"
        || n.acknowledged_at.is_some()
        || n.kind == NotificationKind::Acknowledged
}

fn severity_emoji(severity: &str) -> &'static str {
    match severity {
        "critical" => ":red_circle:",
        "high" => ":large_orange_circle:",
        "medium" => ":large_yellow_circle:",
        _ => ":white_circle:",
    }
}

fn header_text(n: &Notification) -> String {
    let prefix = if n.kind == NotificationKind::PostMortem {
        ":memo: Post-mortem:"
    } else if is_resolved(n) {
        ":white_check_mark: RESOLVED"
    } else if is_acknowledged(n) {
        ":eyes: ACKED"
    } else {
        severity_emoji(&n.severity)
    };
    let test = if n.kind == NotificationKind::Test {
        "[TEST] "
    } else {
        ""
    };
    truncate_chars(
        &format!("{prefix} {test}{}", n.headline()),
        MAX_HEADER_CHARS,
    )
}

/// "Acknowledged by … at …" / "Resolved by … at …" for the current state, if any.
fn state_line(n: &Notification) -> Option<String> {
    let by_at = |who: &Option<String>, at: Option<DateTime<Utc>>| {
        let mut s = String::new();
        if let Some(who) = who {
            s.push_str(&format!(" by *{}*", escape(&truncate_chars(who, 200))));
        }
        if let Some(at) = at {
            s.push_str(&format!(" at {}", slack_date(at)));
        }
        s
    };
    if is_resolved(n) {
        Some(format!(
            ":white_check_mark: *Resolved*{}",
            by_at(&n.resolved_by, n.resolved_at)
        ))
    } else if is_acknowledged(n) {
        Some(format!(
            ":eyes: *Acknowledged*{}",
            by_at(&n.acknowledged_by, n.acknowledged_at)
        ))
    } else {
        None
    }
}

/// What just happened, for kinds that are events rather than states.
fn event_line(n: &Notification) -> Option<String> {
    match n.kind {
        NotificationKind::Escalation => Some(match n.waited_minutes {
            Some(m) => format!(":rotating_light: *Escalated*: not acknowledged after {m} min"),
            None => ":rotating_light: *Escalated*: not acknowledged in time".to_string(),
        }),
        NotificationKind::SeverityRaised => Some(format!(
            ":arrow_double_up: *Severity raised* to *{}*",
            escape(&n.severity.to_uppercase())
        )),
        NotificationKind::Test => {
            Some(":test_tube: Test alert from paiid-alerts: no action needed.".to_string())
        }
        _ => None,
    }
}

/// Text of a thread reply under the incident card.
fn reply_text(n: &Notification) -> String {
    let line = match n.kind {
        NotificationKind::Acknowledged | NotificationKind::Resolved => state_line(n),
        _ => event_line(n),
    };
    let mut text = line.unwrap_or_else(|| escape(&n.headline()));
    text.push_str(&format!(
        " · {} events · {}",
        n.event_count,
        link(&n.incident_url, &format!("Incident #{}", n.incident_id))
    ));
    truncate_mrkdwn(&text, MAX_SECTION_CHARS)
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(truncate_mrkdwn(&text, MAX_SECTION_CHARS)) })
}

fn facts_block(n: &Notification) -> Value {
    let mut fields = Vec::new();
    let mut field = |label: &str, value: String| {
        let text = format!("*{label}*\n{value}");
        fields.push(mrkdwn(truncate_mrkdwn(&text, MAX_FIELD_CHARS)));
    };
    field("Severity", escape(&n.severity.to_uppercase()));
    if let Some(p) = &n.project {
        field("Project", escape(p));
    }
    if let Some(e) = &n.environment {
        field("Environment", escape(e));
    }
    if let Some(l) = &n.level {
        field("Level", escape(l));
    }
    field("Events", n.event_count.to_string());
    field("First seen", slack_date(n.first_seen));
    field("Last seen", slack_date(n.last_seen));
    let rule = match (&n.rule, &n.sentry_rule) {
        (Some(r), Some(s)) => Some(format!("{} (Sentry: {})", escape(r), escape(s))),
        (Some(r), None) => Some(escape(r)),
        (None, Some(s)) => Some(format!("Sentry: {}", escape(s))),
        (None, None) => None,
    };
    if let Some(rule) = rule {
        field("Rule", rule);
    }
    if let Some(r) = &n.release {
        field("Release", escape(r));
    }
    if let Some(m) = &n.metric {
        field("Metric", escape(m));
    }
    fields.truncate(MAX_FIELDS);
    json!({ "type": "section", "fields": fields })
}

fn details_block(n: &Notification) -> Option<Value> {
    let lines: Vec<String> = [
        ("Culprit", &n.culprit),
        ("Request", &n.request),
        ("Top frame", &n.top_frame),
    ]
    .into_iter()
    .filter_map(|(label, v)| {
        v.as_ref()
            .map(|v| format!("*{label}:* {}", code(v, MAX_DETAIL_CHARS)))
    })
    .collect();
    (!lines.is_empty()).then(|| section(lines.join("\n")))
}

fn breadcrumbs_block(n: &Notification) -> Option<Value> {
    let skip = n.breadcrumbs.len().saturating_sub(5);
    let lines: Vec<String> = n.breadcrumbs[skip..]
        .iter()
        .map(|b| {
            let mut line = String::new();
            for part in [&b.timestamp, &b.category, &b.level].into_iter().flatten() {
                line.push_str(part);
                line.push(' ');
            }
            line.push_str(&b.message);
            // Triple backticks would close the code block early.
            let line = escape(&line.replace("```", "'''").replace('\n', " "));
            truncate_mrkdwn(&line, MAX_BREADCRUMB_CHARS)
        })
        .collect();
    (!lines.is_empty()).then(|| section(format!("*Breadcrumbs*\n```{}```", lines.join("\n"))))
}

fn post_mortem_block(n: &Notification) -> Option<Value> {
    let pm = n.post_mortem.as_ref()?;
    let mut parts = vec![format!("*Duration:* {}", escape(&pm.time_to_resolve))];
    match (&pm.time_to_acknowledge, &pm.acknowledged_by) {
        (Some(t), Some(by)) => parts.push(format!(
            "*Time to acknowledge:* {} (by {})",
            escape(t),
            escape(&truncate_chars(by, 200))
        )),
        (Some(t), None) => parts.push(format!("*Time to acknowledge:* {}", escape(t))),
        (None, _) => parts.push("*Time to acknowledge:* never acknowledged".to_string()),
    }
    parts.push(format!("*Escalations:* {}", pm.escalations_fired));
    parts.push(format!("*Events:* {}", n.event_count));
    let mut text = format!(
        "*Post-mortem*\n{}\n*Opened:* {} · *Resolved:* {}",
        parts.join(" · "),
        slack_date(pm.opened_at),
        slack_date(pm.resolved_at)
    );
    if let Some(rc) = &pm.root_cause {
        let rc = truncate_mrkdwn(&escape(rc), MAX_ROOT_CAUSE_CHARS);
        text.push_str(&format!("\n*Root cause:* {rc}"));
    }
    Some(section(text))
}

fn link_button(text: &str, action_id: &str, url: &str) -> Option<Value> {
    // A truncated URL would be a broken link; leave the button out instead.
    (url.chars().count() <= MAX_URL_CHARS).then(|| {
        json!({
            "type": "button",
            "action_id": action_id,
            "text": { "type": "plain_text", "text": truncate_chars(text, MAX_BUTTON_TEXT_CHARS) },
            "url": url,
        })
    })
}

/// Buttons. `interactive` (bot mode) adds `ack` / `resolve` buttons whose `value` is the incident
/// id, handled by `POST /slack/interactions`; link buttons also send an interaction payload,
/// under their own `action_id`s (`ack_link`, `open_sentry`, `open_incident`), which the handler
/// ignores. Acknowledge buttons disappear once the incident is acknowledged or resolved.
fn actions_block(n: &Notification, interactive: bool) -> Option<Value> {
    let (acked, resolved) = (is_acknowledged(n), is_resolved(n));
    let mut elements = Vec::new();
    let id = n.incident_id.to_string();
    if interactive && !acked && !resolved {
        elements.push(json!({
            "type": "button", "action_id": "ack", "value": id, "style": "primary",
            "text": { "type": "plain_text", "text": "Acknowledge" },
        }));
    }
    if interactive && !resolved {
        elements.push(json!({
            "type": "button", "action_id": "resolve", "value": id,
            "text": { "type": "plain_text", "text": "Resolve" },
        }));
    }
    if !acked && !resolved {
        // With interactive buttons present the link is a second way in (e.g. for someone not in
        // the workspace's app allow-list), so it is labelled apart from the button.
        let label = if interactive {
            "Acknowledge (web)"
        } else {
            "Acknowledge"
        };
        if let Some(b) = n
            .ack_url
            .as_deref()
            .and_then(|u| link_button(label, "ack_link", u))
        {
            elements.push(b);
        }
    }
    if let Some(b) = n
        .sentry_url
        .as_deref()
        .and_then(|u| link_button("View in Sentry", "open_sentry", u))
    {
        elements.push(b);
    }
    let incident = format!("Incident #{}", n.incident_id);
    if let Some(b) = link_button(&incident, "open_incident", &n.incident_url) {
        elements.push(b);
    }
    (!elements.is_empty())
        .then(|| json!({ "type": "actions", "block_id": "paiid_actions", "elements": elements }))
}

/// The incident card.
fn full_blocks(n: &Notification, interactive: bool) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": header_text(n), "emoji": true },
    })];
    let context: Vec<Value> = [event_line(n), state_line(n)]
        .into_iter()
        .flatten()
        .map(mrkdwn)
        .collect();
    if !context.is_empty() {
        blocks.push(json!({ "type": "context", "elements": context }));
    }
    blocks.push(facts_block(n));
    blocks.extend(details_block(n));
    blocks.extend(breadcrumbs_block(n));
    blocks.extend(post_mortem_block(n));
    blocks.extend(actions_block(n, interactive));
    blocks.truncate(MAX_BLOCKS);
    blocks
}

/// A new short message for a state change when there is no card to update.
fn short_blocks(n: &Notification) -> Vec<Value> {
    let line = state_line(n).unwrap_or_else(|| escape(n.kind.as_str()));
    let title = escape(&truncate_chars(&n.headline(), 500));
    let mut blocks = vec![section(format!("{line}\n*{title}*"))];
    blocks.extend(actions_block(n, false));
    blocks
}

#[cfg(test)]
mod tests;
