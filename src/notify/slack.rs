//! Slack channel: an incoming webhook, or a bot token using the Web API.
//!
//! The two modes can do different things, so they behave differently:
//! - **Webhook**: posts only. A webhook cannot edit what it posted, so acknowledgements and
//!   resolutions become new short messages and live count updates are skipped.
//! - **Bot**: `chat.postMessage` returns the message `ts`, which the incident stores. Later
//!   changes `chat.update` that message (one live card per incident, with its buttons hidden once
//!   they no longer apply) and add a thread reply (history, and a notification for followers).
//!
//! The message bodies (escaped mrkdwn, Block Kit within Slack's limits) are built in `blocks`.
//!
//! Secrets: the webhook URL *is* a credential and the bot token is one. Neither is ever put in a
//! log line, a `Debug` string or a stored failure reason (reqwest errors are stripped of their URL).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

mod blocks;
mod bundle;

use super::render::Templates;
use super::transport::{classify_status, retry_after, transport_failure};
use super::{
    Channel, ChannelKind, Notice, Notification, NotificationKind, Outgoing, RemoteRef, RemoteState,
    SendFuture, SendOutcome, truncate_body,
};
use blocks::*;

/// Per-request timeout. The outbox retries, so a slow Slack must not hold a worker for long.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a response body is kept on the delivery row.
const MAX_STORED_BODY: usize = 2048;

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

    /// Fallback / notification text from the template. The template escapes what it prints, so
    /// the `<url|label>` links it writes itself are kept as links; anything else that could
    /// still form a `<...>` control sequence (an override's `|safe`) is escaped, without
    /// double-escaping. Either way no `<!channel>` or forged link from an event survives.
    fn fallback_text(&self, n: &Notification) -> String {
        let text = escape_keeping_links(&self.templates.slack_text(n));
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
        self.post_webhook(url, &body).await
    }

    async fn post_webhook(&self, url: &str, body: &Value) -> SendOutcome {
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

    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }

    fn rate_key(&self) -> String {
        format!("slack:{}", self.channel)
    }

    fn bundler(&self) -> Option<&dyn super::bundle::Bundler> {
        Some(self)
    }

    fn announce<'a>(&'a self, notice: &'a Notice) -> SendFuture<'a> {
        Box::pin(async move {
            // A plain message: nothing to acknowledge, nothing to update later.
            let text = truncate_mrkdwn(&notice.slack_text(), MAX_TEXT_CHARS);
            match &self.mode {
                Mode::Webhook { url } => self.post_webhook(url, &plain_body(None, text)).await,
                Mode::Bot { token, api_base } => {
                    let bot = Bot {
                        ch: self,
                        token,
                        api_base,
                    };
                    let body = plain_body(Some(&self.channel), text);
                    match bot.call("chat.postMessage", &body).await {
                        Ok(ok) => ok.delivered(None),
                        Err(f) => f.outcome,
                    }
                }
            }
        })
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

/// A text-only message (notices): no blocks, so no card and no buttons.
fn plain_body(channel: Option<&str>, text: String) -> Value {
    let mut body = json!({ "text": text, "unfurl_links": false, "unfurl_media": false });
    if let (Some(channel), Value::Object(m)) = (channel, &mut body) {
        m.insert("channel".into(), json!(channel));
    }
    body
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
            (K::Opened | K::SeverityRaised | K::Escalation | K::Retriggered, None) => {
                self.post_full(n, true).await
            }
            // A retried `Opened` after its post succeeded (lease expired before the ts was
            // recorded as done): refresh the card instead of posting a duplicate.
            (K::Opened, Some(m)) => self.update_card(n, m, false).await,
            (
                K::SeverityRaised | K::Escalation | K::Retriggered | K::Acknowledged | K::Resolved,
                Some(m),
            ) => self.update_card(n, m, true).await,
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
            NotificationKind::Escalation
                | NotificationKind::SeverityRaised
                | NotificationKind::Retriggered
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

/// Incoming-webhook responses: 200 `ok`, otherwise a plain-text error code: `invalid_payload` /
/// `no_text` (400), `action_prohibited` (403), `channel_not_found` and `no_service` (404),
/// `channel_is_archived` (410), all permanent.
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
    classify_status(status, snippet, retry_after)
}

#[cfg(test)]
mod tests;
