#![allow(dead_code)]
//! A loopback Sentry API enforcing what paiid-alerts calls, as Sentry documents it (facts and
//! sources: `tests/fixtures/sentry-lifecycle/sentry-facts.md`, sections 3 and 4):
//! - `PUT /api/0/organizations/{org}/issues/{issue_id}/` with a JSON object of `status`
//!   (`resolved`, `unresolved`, `ignored`, `resolvedInNextRelease`, `muted`) and/or `assignedTo`
//!   (a string): 200 with the issue;
//! - `POST /api/0/sentry-app-installations/{uuid}/external-issues/` with `issueId`, `webUrl`,
//!   `project`, `identifier` (all required): 200 with the link, one per issue (an upsert);
//! - `Authorization: Bearer {token}` on every call (401 without, 403 with another token); an
//!   unknown organization, installation or path is 404; a bad body 400.
//!
//! It keeps the state those calls leave (each issue's status and assignee, the links), so tests
//! assert on what Sentry would show.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "sntrys_fake_internal_integration_token";
pub const ORG: &str = "paiid";
pub const INSTALLATION: &str = "a8e5d37a-696c-4c54-adb5-b3f28d64c7de";

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub json: Option<Value>,
    pub status: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issue {
    pub status: Option<String>,
    pub assigned_to: Option<String>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    faults: VecDeque<u16>,
    issues: HashMap<String, Issue>,
    /// Issue id -> (webUrl, displayName).
    links: HashMap<String, (String, String)>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct FakeSentry {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for FakeSentry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSentry {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Sentry");
        let addr = listener.local_addr().expect("fake Sentry address");
        let shared: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The `api_url` of a `type: sentry` channel.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` calls get this status (before any check).
    pub fn fail_next(&self, n: usize, status: u16) {
        lock(&self.shared)
            .faults
            .extend(std::iter::repeat_n(status, n));
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    pub fn issue(&self, id: &str) -> Option<Issue> {
        lock(&self.shared).issues.get(id).cloned()
    }

    /// The incident page Sentry's sidebar links for this issue, and its display name.
    pub fn link(&self, issue_id: &str) -> Option<(String, String)> {
        lock(&self.shared).links.get(issue_id).cloned()
    }
}

fn error(status: StatusCode, detail: &str) -> (StatusCode, Value) {
    (status, json!({ "detail": detail }))
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let (status, answer) = {
        let mut inner = lock(&shared);
        match inner.faults.pop_front() {
            Some(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error(status, "scripted failure")
            }
            None => answer(
                &mut inner,
                &method,
                uri.path(),
                authorization.as_deref(),
                parsed.as_ref(),
            ),
        }
    };
    lock(&shared).requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization,
        json: parsed,
        status: status.as_u16(),
    });
    (status, axum::Json(answer)).into_response()
}

fn answer(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided.",
            );
        }
        Some(t) if t != TOKEN => return error(StatusCode::FORBIDDEN, "Invalid token"),
        Some(_) => {}
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::PUT, ["api", "0", "organizations", org, "issues", id]) if *org == ORG => {
            update_issue(inner, id, body)
        }
        (
            &Method::POST,
            [
                "api",
                "0",
                "sentry-app-installations",
                uuid,
                "external-issues",
            ],
        ) if *uuid == INSTALLATION && path.ends_with('/') => link_issue(inner, body),
        _ => error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist",
        ),
    }
}

const STATUSES: &[&str] = &[
    "resolved",
    "unresolved",
    "ignored",
    "resolvedInNextRelease",
    "muted",
];

fn update_issue(inner: &mut Inner, id: &str, body: Option<&Value>) -> (StatusCode, Value) {
    let Some(body) = body.and_then(Value::as_object) else {
        return error(StatusCode::BAD_REQUEST, "a JSON object is required");
    };
    if !id.chars().all(|c| c.is_ascii_digit()) {
        return error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist",
        );
    }
    let mut issue = inner.issues.get(id).cloned().unwrap_or_default();
    for (key, value) in body {
        match (key.as_str(), value.as_str()) {
            ("status", Some(s)) if STATUSES.contains(&s) => issue.status = Some(s.to_string()),
            ("assignedTo", Some(a)) => issue.assigned_to = (!a.is_empty()).then(|| a.to_string()),
            _ => return error(StatusCode::BAD_REQUEST, &format!("invalid field `{key}`")),
        }
    }
    inner.issues.insert(id.to_string(), issue.clone());
    (
        StatusCode::OK,
        json!({ "id": id, "status": issue.status, "assignedTo": issue.assigned_to }),
    )
}

fn link_issue(inner: &mut Inner, body: Option<&Value>) -> (StatusCode, Value) {
    let Some(body) = body.and_then(Value::as_object) else {
        return error(StatusCode::BAD_REQUEST, "a JSON object is required");
    };
    let text = |k: &str| {
        body.get(k).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
    };
    let (Some(issue_id), Some(web_url), Some(project), Some(identifier)) = (
        text("issueId"),
        text("webUrl"),
        text("project"),
        text("identifier"),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "issueId, webUrl, project and identifier are required",
        );
    };
    let display = format!("{project}#{identifier}");
    inner
        .links
        .insert(issue_id.clone(), (web_url.clone(), display.clone()));
    (
        StatusCode::OK,
        json!({ "id": "1", "issueId": issue_id, "serviceType": "paiid-alerts", "displayName": display, "webUrl": web_url }),
    )
}
