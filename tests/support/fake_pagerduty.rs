#![allow(dead_code)]
//! A loopback PagerDuty Events API v2 (`POST /v2/enqueue`) that validates events the way the
//! documentation describes, answers 202 / 400 / 429 like PagerDuty, and keeps the incident each
//! `dedup_key` would have opened, so tests can assert on state (triggered → acknowledged →
//! resolved) as well as on the raw events.
//!
//! Responses carry `Connection: close` so that [`FakePagerDuty::set_down`] also affects clients
//! with pooled connections.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The integration (routing) key the fake accepts: 32 characters, like PagerDuty's.
pub const ROUTING_KEY: &str = "R0ut1ngKeyF0rTheFakePagerDuty032";
/// PagerDuty's documented limit per routing key.
pub const EVENTS_PER_MINUTE: usize = 120;
/// PagerDuty's documented limit on the size of one event ("512 KB"). Enforced as 512,000 bytes,
/// the stricter reading, so that a test passing here passes against the real service too.
pub const MAX_EVENT_BYTES: usize = 512_000;

/// Scripted answers, consumed before any validation.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// This status with PagerDuty's body for it (400 → `invalid event`, 429 → `throttle event`,
    /// 5xx → a plain error page). No `Retry-After`.
    Status(u16),
    /// This status and body.
    StatusBody(u16, String),
    /// HTTP 429 with `Retry-After: {retry_after_secs}`.
    RateLimited { retry_after_secs: u64 },
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
    pub json: Option<Value>,
    pub status: u16,
    pub response: String,
    /// True when PagerDuty would have processed the event (202).
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

/// The PagerDuty incident behind a `dedup_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// Trigger events merged into it (a repeated trigger does not page again).
    pub triggers: usize,
    pub summary: String,
    pub severity: String,
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    faults: VecDeque<Behaviour>,
    incidents: HashMap<String, Incident>,
    /// Accepted-event times per routing key, for the per-minute limit.
    recent: HashMap<String, VecDeque<Instant>>,
    next_key: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    down: Arc<AtomicBool>,
    rate_limit: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakePagerDuty {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePagerDuty {
    /// Bind 127.0.0.1:0 and serve; accepts [`ROUTING_KEY`]; rate limit on.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake PagerDuty");
        let addr = listener.local_addr().expect("fake PagerDuty address");
        let down = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            down: down.clone(),
            rate_limit: AtomicBool::new(true),
        });
        // PagerDuty answers an oversized event with its own 400 (checked in `handle`), not
        // with axum's default 2 MB cut-off.
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = Switchable {
            inner: listener,
            down,
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// As `PAGERDUTY_EVENTS_URL` would be set.
    pub fn enqueue_url(&self) -> String {
        format!("{}/v2/enqueue", self.url())
    }

    pub fn routing_key(&self) -> &'static str {
        ROUTING_KEY
    }

    /// The next `n` requests get `behaviour`.
    pub fn fail_next(&self, n: usize, behaviour: Behaviour) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.faults.push_back(behaviour.clone());
        }
    }

    /// While down, connections are accepted and closed at once.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Turn the 120-events-per-minute limit on or off (on by default).
    pub fn set_rate_limit(&self, on: bool) {
        self.shared.rate_limit.store(on, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Accepted events (request bodies), in order.
    pub fn events(&self) -> Vec<Value> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.accepted)
            .filter_map(|r| r.json.clone())
            .collect()
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

    pub fn incident(&self, dedup_key: &str) -> Option<Incident> {
        self.shared.lock().incidents.get(dedup_key).cloned()
    }

    pub fn incident_count(&self) -> usize {
        self.shared.lock().incidents.len()
    }
}

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

struct Reply {
    status: u16,
    body: String,
    retry_after: Option<u64>,
    accepted: bool,
}

fn invalid(errors: Vec<String>) -> Reply {
    Reply {
        status: 400,
        body: json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        })
        .to_string(),
        retry_after: None,
        accepted: false,
    }
}

fn throttled(retry_after: Option<u64>) -> Reply {
    Reply {
        status: 429,
        body: json!({
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        })
        .to_string(),
        retry_after,
        accepted: false,
    }
}

fn scripted_reply(b: &Behaviour) -> Reply {
    match b {
        Behaviour::Status(400) => invalid(vec!["scripted failure".into()]),
        Behaviour::Status(429) => throttled(None),
        Behaviour::Status(s) => Reply {
            status: *s,
            body: "Internal Server Error".into(),
            retry_after: None,
            accepted: false,
        },
        Behaviour::StatusBody(s, body) => Reply {
            status: *s,
            body: body.clone(),
            retry_after: None,
            accepted: false,
        },
        Behaviour::RateLimited { retry_after_secs } => throttled(Some(*retry_after_secs)),
        Behaviour::Hang(_) => Reply {
            status: 500,
            body: "Internal Server Error".into(),
            retry_after: None,
            accepted: false,
        },
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
    let fault = shared.lock().faults.pop_front();
    let mut scripted = None;
    match fault {
        Some(Behaviour::Hang(d)) => tokio::time::sleep(d).await,
        Some(b) => scripted = Some(scripted_reply(&b)),
        None => {}
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let reply = match scripted {
        Some(r) => r,
        None if path != "/v2/enqueue" => Reply {
            status: 404,
            body: "Not Found".into(),
            retry_after: None,
            accepted: false,
        },
        None if method != Method::POST => Reply {
            status: 405,
            body: "Method Not Allowed".into(),
            retry_after: None,
            accepted: false,
        },
        None if body.len() > MAX_EVENT_BYTES => invalid(vec![format!(
            "Event is too large ({} bytes); the limit is 512 KB",
            body.len()
        )]),
        None => {
            let rate_limit = shared.rate_limit.load(Ordering::SeqCst);
            enqueue(&mut shared.lock(), &headers, parsed.as_ref(), rate_limit)
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
        body: String::from_utf8_lossy(&body).into_owned(),
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
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The Events API v2 rules, collected the way PagerDuty reports them (all errors at once).
fn validate(event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    match event.get("routing_key").and_then(Value::as_str) {
        None => errors.push("'routing_key' is missing or blank".to_string()),
        Some(k) if k.chars().count() != 32 => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into());
        }
        Some(k) if k != ROUTING_KEY => errors.push("'routing_key' is not a valid key".into()),
        Some(_) => {}
    }
    let action = event.get("event_action").and_then(Value::as_str);
    let dedup_key = event.get("dedup_key");
    if let Some(k) = dedup_key {
        match k.as_str() {
            Some(s) if s.chars().count() > 255 => {
                errors.push("'dedup_key' must be at most 255 characters".into());
            }
            Some(_) => {}
            None => errors.push("'dedup_key' must be a string".into()),
        }
    }
    match action {
        Some("trigger") => {
            let payload = event.get("payload");
            if !payload.is_some_and(Value::is_object) {
                errors.push("'payload' is missing or not an object".into());
            }
            let p = |k: &str| payload.and_then(|p| p.get(k));
            match non_empty_str(p("summary")) {
                None => errors.push("'payload.summary' is missing or blank".into()),
                Some(s) if s.chars().count() > 1024 => {
                    errors.push("'payload.summary' must be at most 1024 characters".into());
                }
                Some(_) => {}
            }
            if non_empty_str(p("source")).is_none() {
                errors.push("'payload.source' is missing or blank".into());
            }
            match p("severity").and_then(Value::as_str) {
                Some("critical" | "error" | "warning" | "info") => {}
                _ => errors.push(
                    "'payload.severity' must be one of critical, error, warning, info".into(),
                ),
            }
            if let Some(ts) = p("timestamp")
                && ts
                    .as_str()
                    .is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
            {
                errors.push("'payload.timestamp' must be an ISO 8601 timestamp".into());
            }
            for key in ["component", "group", "class"] {
                if p(key).is_some_and(|v| !v.is_string()) {
                    errors.push(format!("'payload.{key}' must be a string"));
                }
            }
            if let Some(links) = event.get("links") {
                let ok = links
                    .as_array()
                    .is_some_and(|l| l.iter().all(|l| non_empty_str(l.get("href")).is_some()));
                if !ok {
                    errors.push("'links' must be an array of objects with 'href'".into());
                }
            }
            if let Some(images) = event.get("images") {
                let ok = images
                    .as_array()
                    .is_some_and(|l| l.iter().all(|i| non_empty_str(i.get("src")).is_some()));
                if !ok {
                    errors.push("'images' must be an array of objects with 'src'".into());
                }
            }
        }
        Some("acknowledge" | "resolve") => {
            if non_empty_str(dedup_key).is_none() {
                errors.push("'dedup_key' is required for acknowledge and resolve".into());
            }
        }
        _ => errors.push("'event_action' must be one of trigger, acknowledge, resolve".into()),
    }
    errors
}

fn enqueue(
    inner: &mut Inner,
    headers: &HeaderMap,
    body: Option<&Value>,
    rate_limit: bool,
) -> Reply {
    let json_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_ct {
        return invalid(vec!["Content-Type must be application/json".into()]);
    }
    let Some(event) = body.filter(|b| b.is_object()) else {
        return invalid(vec!["Request body is not a valid JSON object".into()]);
    };
    let errors = validate(event);
    if !errors.is_empty() {
        return invalid(errors);
    }
    let key = ROUTING_KEY.to_string();
    let now = Instant::now();
    let recent = inner.recent.entry(key).or_default();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        recent.pop_front();
    }
    if rate_limit && recent.len() >= EVENTS_PER_MINUTE {
        return throttled(None);
    }
    recent.push_back(now);

    let action = event["event_action"].as_str().unwrap_or_default();
    let dedup_key = match event["dedup_key"].as_str() {
        Some(k) => k.to_string(),
        None => {
            inner.next_key += 1;
            format!("fake-dedup-{:016x}", inner.next_key)
        }
    };
    match action {
        "trigger" => {
            let summary = event["payload"]["summary"].as_str().unwrap_or_default();
            let severity = event["payload"]["severity"].as_str().unwrap_or_default();
            let incident = inner
                .incidents
                .entry(dedup_key.clone())
                .or_insert_with(|| Incident {
                    status: "triggered".into(),
                    triggers: 0,
                    summary: summary.to_string(),
                    severity: severity.to_string(),
                });
            // A trigger on a resolved key opens a new incident; on an open one it is merged.
            if incident.status == "resolved" {
                incident.status = "triggered".into();
            }
            incident.triggers += 1;
        }
        // PagerDuty accepts acknowledge/resolve for unknown keys and does nothing.
        "acknowledge" => {
            if let Some(i) = inner.incidents.get_mut(&dedup_key)
                && i.status == "triggered"
            {
                i.status = "acknowledged".into();
            }
        }
        _ => {
            if let Some(i) = inner.incidents.get_mut(&dedup_key) {
                i.status = "resolved".into();
            }
        }
    }
    Reply {
        status: 202,
        body: json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key })
            .to_string(),
        retry_after: None,
        accepted: true,
    }
}
