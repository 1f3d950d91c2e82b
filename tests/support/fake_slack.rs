#![allow(dead_code)]
//! A loopback Slack that enforces the documented contracts of incoming webhooks and the Web API
//! methods paiid-alerts uses (`chat.postMessage`, `chat.update`), so tests fail the way
//! production would: a header one character too long is `invalid_blocks`, a wrong token is
//! `invalid_auth`, two posts in the same second to a channel are HTTP 429.
//!
//! ```ignore
//! let slack = FakeSlack::start().await;
//! let channel = SlackChannel::webhook(.., slack.webhook_url(), ..);
//! slack.fail_next(1, Behaviour::Status(500));
//! // ... send ...
//! assert_eq!(slack.messages().len(), 1);
//! ```
//!
//! Every request is recorded (accepted or not) with its path, headers, body and the answer given.
//! Responses carry `Connection: close` so that each request is a new connection; that is what
//! lets [`FakeSlack::set_down`] refuse service to clients with pooled connections.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-000000000000-0000000000000-FAKEfakeFAKEfakeFAKE0000";
/// Id of the default channel (`#paiid-alerts`), as Slack returns it.
pub const CHANNEL_ID: &str = "C0PAIID01";
/// Name of the default channel.
pub const CHANNEL_NAME: &str = "paiid-alerts";
/// Path of the one configured incoming webhook (posts to [`CHANNEL_ID`]).
pub const WEBHOOK_PATH: &str = "/services/T000/B000/XXXX";

/// Scripted answers, consumed before any validation.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answer with this status and a plain generic body (`internal_error` etc.).
    Status(u16),
    /// Answer with this status and body.
    StatusBody(u16, String),
    /// HTTP 429 with `Retry-After: {retry_after_secs}`.
    RateLimited { retry_after_secs: u64 },
    /// A Slack error code. Web API: HTTP 200 `{ok:false, error}`. Webhooks: the plain-text code
    /// with the status Slack uses for it (400, 403, 404, 410; 429 for `rate_limited`).
    SlackError(&'static str),
    /// Wait this long, then handle the request normally (for client timeouts).
    Hang(Duration),
}

/// One request as received, and what the fake answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body parsed as JSON, when it was JSON.
    pub json: Option<Value>,
    pub status: u16,
    pub response: String,
    /// True when Slack would have acted on the request (posted/updated).
    pub accepted: bool,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Webhook,
    Bot,
}

/// A message as it currently stands (after any `chat.update`).
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// The full request body of the post (or of the last update).
    pub body: Value,
    pub via: Via,
    /// Number of `chat.update` calls applied.
    pub updates: usize,
}

impl Message {
    /// All `action_id`s in the message's actions blocks.
    pub fn action_ids(&self) -> Vec<String> {
        self.blocks
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["action_id"].as_str().map(str::to_string))
            .collect()
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    faults: VecDeque<(Option<String>, Behaviour)>,
    /// Posted messages in order; `chat.update` edits in place.
    messages: Vec<Message>,
    /// name or id → id
    channels: HashMap<String, String>,
    last_post: HashMap<String, Instant>,
    next_ts: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    down: Arc<AtomicBool>,
    rate_limit: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the requests from the next assertion.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeSlack {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSlack {
    /// Bind 127.0.0.1:0 and serve. Knows channel `#paiid-alerts` (= `paiid-alerts` =
    /// [`CHANNEL_ID`]), the webhook at [`WEBHOOK_PATH`] and the token [`BOT_TOKEN`].
    /// Rate limiting (1 message per second per channel) is on.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Slack");
        let addr = listener.local_addr().expect("fake Slack address");
        let down = Arc::new(AtomicBool::new(false));
        let mut inner = Inner::default();
        for name in [CHANNEL_NAME, "#paiid-alerts", CHANNEL_ID] {
            inner
                .channels
                .insert(name.to_string(), CHANNEL_ID.to_string());
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            down: down.clone(),
            rate_limit: AtomicBool::new(true),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = Switchable {
            inner: listener,
            down,
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:{port}`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.url())
    }

    /// Web API base, as `SLACK_API_URL` would be set.
    pub fn api_base(&self) -> String {
        format!("{}/api", self.url())
    }

    pub fn bot_token(&self) -> &'static str {
        BOT_TOKEN
    }

    /// Make another channel known (`name` may be `#name`, `name` or an id).
    pub fn add_channel(&self, name: &str, id: &str) {
        let mut inner = self.shared.lock();
        inner.channels.insert(name.to_string(), id.to_string());
        inner.channels.insert(id.to_string(), id.to_string());
    }

    /// The next `n` requests (any path) get `behaviour`.
    pub fn fail_next(&self, n: usize, behaviour: Behaviour) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.faults.push_back((None, behaviour.clone()));
        }
    }

    /// The next `n` requests whose path ends with `path_suffix` (e.g. `chat.update`) get
    /// `behaviour`; other requests are served normally.
    pub fn fail_next_on(&self, path_suffix: &str, n: usize, behaviour: Behaviour) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner
                .faults
                .push_back((Some(path_suffix.to_string()), behaviour.clone()));
        }
    }

    /// While down, connections are accepted and closed at once (the client sees a reset).
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Turn the 1-message-per-second-per-channel limit on or off (on by default).
    pub fn set_rate_limit(&self, on: bool) {
        self.shared.rate_limit.store(on, Ordering::SeqCst);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    pub fn accepted_count(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.accepted)
            .count()
    }

    pub fn rejected(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| !r.accepted)
            .cloned()
            .collect()
    }

    /// Requests to a path ending with `suffix` (`chat.update`, `/services/...`).
    pub fn requests_to(&self, suffix: &str) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .cloned()
            .collect()
    }

    /// Messages posted (webhook or `chat.postMessage`), as they stand now.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.lock().messages.clone()
    }

    /// The message with this ts.
    pub fn message(&self, ts: &str) -> Option<Message> {
        self.shared
            .lock()
            .messages
            .iter()
            .find(|m| m.ts == ts)
            .cloned()
    }

    /// Replies in the thread of `ts`, oldest first.
    pub fn thread_replies(&self, ts: &str) -> Vec<Message> {
        self.shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// A listener that drops connections while the fake is "down".
struct Switchable {
    inner: TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for Switchable {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) if !self.down.load(Ordering::SeqCst) => return (stream, addr),
                Ok(_) => continue,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// What the fake answers, before it is turned into an HTTP response.
struct Reply {
    status: u16,
    body: String,
    json: bool,
    retry_after: Option<u64>,
    accepted: bool,
}

impl Reply {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_string(),
            json: false,
            retry_after: None,
            accepted: false,
        }
    }

    fn api(status: u16, body: Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            json: true,
            retry_after: None,
            accepted: false,
        }
    }

    /// `{ok:false, error}` with HTTP 200, as the Web API reports errors.
    fn api_error(error: &str) -> Self {
        Self::api(200, json!({ "ok": false, "error": error }))
    }

    fn accepted(mut self) -> Self {
        self.accepted = true;
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Webhook,
    PostMessage,
    Update,
    UnknownMethod,
    NotFound,
}

fn endpoint(path: &str) -> Endpoint {
    match path {
        WEBHOOK_PATH => Endpoint::Webhook,
        "/api/chat.postMessage" => Endpoint::PostMessage,
        "/api/chat.update" => Endpoint::Update,
        p if p.starts_with("/services/") => Endpoint::NotFound,
        p if p.starts_with("/api/") => Endpoint::UnknownMethod,
        _ => Endpoint::NotFound,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let ep = endpoint(&path);
    let fault = {
        let mut inner = shared.lock();
        let pos = inner
            .faults
            .iter()
            .position(|(suffix, _)| suffix.as_deref().is_none_or(|s| path.ends_with(s)));
        pos.and_then(|i| inner.faults.remove(i)).map(|(_, b)| b)
    };
    let mut scripted = None;
    match fault {
        Some(Behaviour::Hang(d)) => tokio::time::sleep(d).await,
        Some(b) => scripted = Some(scripted_reply(&b, ep)),
        None => {}
    }
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let reply = match scripted {
        Some(r) => r,
        None => {
            let mut inner = shared.lock();
            let rate_limit = shared.rate_limit.load(Ordering::SeqCst);
            match ep {
                _ if method != Method::POST => Reply::text(405, "method_not_allowed"),
                Endpoint::Webhook => webhook(&mut inner, &headers, parsed.as_ref(), rate_limit),
                Endpoint::PostMessage => {
                    post_message(&mut inner, &headers, parsed.as_ref(), rate_limit)
                }
                Endpoint::Update => update(&mut inner, &headers, parsed.as_ref()),
                Endpoint::UnknownMethod => Reply::api_error("unknown_method"),
                Endpoint::NotFound => Reply::text(404, "no_service"),
            }
        }
    };
    shared.lock().requests.push(RecordedRequest {
        method: method.to_string(),
        path,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body_text,
        json: parsed,
        status: reply.status,
        response: reply.body.clone(),
        accepted: reply.accepted,
    });
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response();
    let h = response.headers_mut();
    let content_type = if reply.json {
        "application/json; charset=utf-8"
    } else {
        "text/html"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn webhook_status(error: &str) -> u16 {
    match error {
        "action_prohibited" => 403,
        "channel_not_found" | "no_service" | "no_team" | "team_disabled" => 404,
        "channel_is_archived" => 410,
        "rate_limited" | "ratelimited" => 429,
        "internal_error" | "rollup_error" => 500,
        _ => 400,
    }
}

fn scripted_reply(b: &Behaviour, ep: Endpoint) -> Reply {
    let api = matches!(ep, Endpoint::PostMessage | Endpoint::Update);
    match b {
        Behaviour::Status(s) => {
            if api {
                Reply::api(*s, json!({ "ok": false, "error": "internal_error" }))
            } else {
                Reply::text(
                    *s,
                    if *s >= 500 {
                        "internal_error"
                    } else {
                        "invalid_payload"
                    },
                )
            }
        }
        Behaviour::StatusBody(s, body) => Reply::text(*s, body),
        Behaviour::RateLimited { retry_after_secs } => {
            let mut r = if api {
                Reply::api(429, json!({ "ok": false, "error": "ratelimited" }))
            } else {
                Reply::text(429, "rate_limited")
            };
            r.retry_after = Some(*retry_after_secs);
            r
        }
        Behaviour::SlackError(e) => {
            if api {
                Reply::api_error(e)
            } else {
                Reply::text(webhook_status(e), e)
            }
        }
        Behaviour::Hang(_) => Reply::text(500, "internal_error"),
    }
}

fn content_type_is_json(headers: &HeaderMap) -> (bool, bool) {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json = ct.split(';').next().map(str::trim) == Some("application/json");
    (json, ct.contains("charset=utf-8"))
}

/// `text` / `blocks` presence and size, shared by all three endpoints.
fn check_content(body: &Value) -> Result<(), (String, Option<String>)> {
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = body.get("blocks");
    let has_blocks = blocks
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    if text.trim().is_empty() && !has_blocks {
        return Err(("no_text".into(), None));
    }
    if text.chars().count() > 40_000 {
        return Err(("msg_too_long".into(), None));
    }
    if let Some(blocks) = blocks {
        validate_blocks(blocks).map_err(|m| ("invalid_blocks".to_string(), Some(m)))?;
    }
    Ok(())
}

fn check_rate(inner: &mut Inner, channel: &str, rate_limit: bool) -> Option<Reply> {
    let now = Instant::now();
    if rate_limit
        && inner
            .last_post
            .get(channel)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1))
    {
        return Some(Reply::text(429, "rate_limited"));
    }
    inner.last_post.insert(channel.to_string(), now);
    None
}

fn next_ts(inner: &mut Inner) -> String {
    inner.next_ts += 1;
    format!("1760000000.{:06}", inner.next_ts)
}

fn webhook(
    inner: &mut Inner,
    headers: &HeaderMap,
    body: Option<&Value>,
    rate_limit: bool,
) -> Reply {
    if !content_type_is_json(headers).0 {
        return Reply::text(400, "invalid_payload");
    }
    let Some(body) = body.filter(|b| b.is_object()) else {
        return Reply::text(400, "invalid_payload");
    };
    if let Err((error, _)) = check_content(body) {
        return Reply::text(400, &error);
    }
    if let Some(mut r) = check_rate(inner, CHANNEL_ID, rate_limit) {
        r.retry_after = Some(1);
        return r;
    }
    let ts = next_ts(inner);
    inner.messages.push(Message {
        channel: CHANNEL_ID.to_string(),
        ts,
        thread_ts: None,
        text: body.get("text").and_then(Value::as_str).map(str::to_string),
        blocks: body.get("blocks").cloned(),
        body: body.clone(),
        via: Via::Webhook,
        updates: 0,
    });
    Reply::text(200, "ok").accepted()
}

/// Content type, JSON body and bearer token, in the order Slack checks them.
fn check_api_request<'b>(
    headers: &HeaderMap,
    body: Option<&'b Value>,
) -> Result<(&'b Value, bool), Reply> {
    let (json_ct, charset) = content_type_is_json(headers);
    if !json_ct {
        return Err(Reply::api_error("invalid_post_type"));
    }
    let Some(body) = body.filter(|b| b.is_object()) else {
        return Err(Reply::api_error("invalid_json"));
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth {
        None => return Err(Reply::api_error("not_authed")),
        Some(a) if a != format!("Bearer {BOT_TOKEN}") => {
            return Err(Reply::api_error("invalid_auth"));
        }
        Some(_) => {}
    }
    Ok((body, charset))
}

fn content_error(error: String, detail: Option<String>) -> Reply {
    let mut v = json!({ "ok": false, "error": error });
    if let Some(d) = detail {
        v["response_metadata"] = json!({ "messages": [d] });
    }
    Reply::api(200, v)
}

fn with_charset_warning(mut v: Value, charset: bool) -> Value {
    if !charset {
        v["warning"] = json!("missing_charset");
        v["response_metadata"] = json!({ "warnings": ["missing_charset"] });
    }
    v
}

fn post_message(
    inner: &mut Inner,
    headers: &HeaderMap,
    body: Option<&Value>,
    rate_limit: bool,
) -> Reply {
    let (body, charset) = match check_api_request(headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(channel) = body
        .get("channel")
        .and_then(Value::as_str)
        .and_then(|c| inner.channels.get(c).cloned())
    else {
        return Reply::api_error("channel_not_found");
    };
    if let Err((error, detail)) = check_content(body) {
        return content_error(error, detail);
    }
    let thread_ts = match body.get("thread_ts") {
        None | Some(Value::Null) => None,
        Some(t) => {
            let t = t.as_str().unwrap_or_default().to_string();
            let parent_ok = inner
                .messages
                .iter()
                .any(|m| m.ts == t && m.channel == channel && m.thread_ts.is_none());
            if !parent_ok {
                return Reply::api_error("thread_not_found");
            }
            Some(t)
        }
    };
    if check_rate(inner, &channel, rate_limit).is_some() {
        let mut r = Reply::api(429, json!({ "ok": false, "error": "ratelimited" }));
        r.retry_after = Some(1);
        return r;
    }
    let ts = next_ts(inner);
    let text = body.get("text").and_then(Value::as_str).map(str::to_string);
    inner.messages.push(Message {
        channel: channel.clone(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        text: text.clone(),
        blocks: body.get("blocks").cloned(),
        body: body.clone(),
        via: Via::Bot,
        updates: 0,
    });
    let mut message = json!({ "type": "message", "text": text, "ts": ts, "bot_id": "B0FAKE" });
    if let Some(t) = thread_ts {
        message["thread_ts"] = json!(t);
    }
    let v = json!({ "ok": true, "channel": channel, "ts": ts, "message": message });
    Reply::api(200, with_charset_warning(v, charset)).accepted()
}

fn update(inner: &mut Inner, headers: &HeaderMap, body: Option<&Value>) -> Reply {
    let (body, charset) = match check_api_request(headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(channel) = body
        .get("channel")
        .and_then(Value::as_str)
        .and_then(|c| inner.channels.get(c).cloned())
    else {
        return Reply::api_error("channel_not_found");
    };
    let ts = body.get("ts").and_then(Value::as_str).unwrap_or_default();
    let Some(idx) = inner
        .messages
        .iter()
        .position(|m| m.ts == ts && m.channel == channel && m.via == Via::Bot)
    else {
        // Also what Slack says for a message posted by a webhook: a bot cannot edit it.
        return Reply::api_error("message_not_found");
    };
    if let Err((error, detail)) = check_content(body) {
        return content_error(error, detail);
    }
    let m = &mut inner.messages[idx];
    m.text = body.get("text").and_then(Value::as_str).map(str::to_string);
    if let Some(b) = body.get("blocks") {
        m.blocks = Some(b.clone());
    }
    m.body = body.clone();
    m.updates += 1;
    let v = json!({ "ok": true, "channel": channel, "ts": ts, "text": m.text });
    Reply::api(200, with_charset_warning(v, charset)).accepted()
}

// ---------------------------------------------------------------------------------------------
// Block Kit validation (https://api.slack.com/reference/block-kit/blocks)
// ---------------------------------------------------------------------------------------------

const BLOCK_TYPES: &[&str] = &[
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
];

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Slack-style error: `[ERROR] {what} [json-pointer:{at}]`.
fn err(what: &str, at: &str) -> String {
    format!("[ERROR] {what} [json-pointer:{at}]")
}

fn text_object(v: &Value, at: &str, max: usize, plain_only: bool) -> Result<(), String> {
    let ty = v["type"].as_str().unwrap_or("");
    if ty != "plain_text" && (plain_only || ty != "mrkdwn") {
        return Err(err("must be a valid text object", &format!("{at}/type")));
    }
    let Some(text) = v["text"].as_str() else {
        return Err(err("missing required field: text", at));
    };
    if text.is_empty() {
        return Err(err("must be more than 0 characters", &format!("{at}/text")));
    }
    if text.chars().count() > max {
        return Err(err(
            &format!("must be less than {} characters", max + 1),
            &format!("{at}/text"),
        ));
    }
    Ok(())
}

fn element(e: &Value, at: &str) -> Result<(), String> {
    if e["type"] == "button" {
        text_object(&e["text"], &format!("{at}/text"), 75, true)?;
        if chars(&e["action_id"]) > 255 {
            return Err(err(
                "must be less than 256 characters",
                &format!("{at}/action_id"),
            ));
        }
        if chars(&e["url"]) > 3000 {
            return Err(err(
                "must be less than 3001 characters",
                &format!("{at}/url"),
            ));
        }
        if chars(&e["value"]) > 2000 {
            return Err(err(
                "must be less than 2001 characters",
                &format!("{at}/value"),
            ));
        }
        if let Some(style) = e.get("style")
            && style != "primary"
            && style != "danger"
        {
            return Err(err("must be primary or danger", &format!("{at}/style")));
        }
    }
    Ok(())
}

/// Validate a `blocks` array the way Slack does for messages.
pub fn validate_blocks(blocks: &Value) -> Result<(), String> {
    let Some(blocks) = blocks.as_array() else {
        return Err(err("must be an array", "/blocks"));
    };
    if blocks.len() > 50 {
        return Err(err("must provide no more than 50 items", "/blocks"));
    }
    let mut block_ids = HashSet::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("/blocks/{i}");
        let ty = b["type"].as_str().unwrap_or("");
        if !BLOCK_TYPES.contains(&ty) {
            return Err(err("unsupported type", &format!("{at}/type")));
        }
        if let Some(id) = b.get("block_id") {
            if chars(id) == 0 || chars(id) > 255 {
                return Err(err("must be 1-255 characters", &format!("{at}/block_id")));
            }
            if !block_ids.insert(id.to_string()) {
                return Err(err("duplicate block_id", &format!("{at}/block_id")));
            }
        }
        match ty {
            "header" => text_object(&b["text"], &format!("{at}/text"), 150, true)?,
            "section" => {
                let text = b.get("text");
                let fields = b.get("fields");
                if text.is_none() && fields.is_none() {
                    return Err(err("must provide text or fields", &at));
                }
                if let Some(t) = text {
                    text_object(t, &format!("{at}/text"), 3000, false)?;
                }
                if let Some(f) = fields {
                    let f = f.as_array().cloned().unwrap_or_default();
                    if f.is_empty() || f.len() > 10 {
                        return Err(err("must provide 1-10 fields", &format!("{at}/fields")));
                    }
                    for (j, field) in f.iter().enumerate() {
                        text_object(field, &format!("{at}/fields/{j}"), 2000, false)?;
                    }
                }
                if let Some(a) = b.get("accessory") {
                    element(a, &format!("{at}/accessory"))?;
                }
            }
            "context" => {
                let el = b["elements"].as_array().cloned().unwrap_or_default();
                if el.is_empty() || el.len() > 10 {
                    return Err(err("must provide 1-10 elements", &format!("{at}/elements")));
                }
                for (j, e) in el.iter().enumerate() {
                    if e["type"] != "image" {
                        text_object(e, &format!("{at}/elements/{j}"), 3000, false)?;
                    }
                }
            }
            "actions" => {
                let el = b["elements"].as_array().cloned().unwrap_or_default();
                if el.is_empty() || el.len() > 25 {
                    return Err(err("must provide 1-25 elements", &format!("{at}/elements")));
                }
                let mut ids = HashSet::new();
                for (j, e) in el.iter().enumerate() {
                    element(e, &format!("{at}/elements/{j}"))?;
                    if let Some(id) = e["action_id"].as_str()
                        && !ids.insert(id.to_string())
                    {
                        return Err(err(
                            "duplicate action_id",
                            &format!("{at}/elements/{j}/action_id"),
                        ));
                    }
                }
            }
            "image" => {
                if b.get("image_url").is_none() && b.get("slack_file").is_none() {
                    return Err(err("missing required field: image_url", &at));
                }
                if chars(&b["alt_text"]) == 0 {
                    return Err(err("missing required field: alt_text", &at));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
