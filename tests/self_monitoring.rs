//! Self-monitoring with the `sentry` crate, through the real binary (the Sentry client is
//! process-wide): the start-up log lines, `GET /api/health/sentry-test` both ways, and what
//! reaches a loopback Sentry (`POST /api/{project}/envelope/`): the message, the loop-guard tag,
//! release, environment, credentials redacted; a dead delivery, a failed commit and an internal
//! error of the API reported too (panics: src/telemetry/tests.rs). And the loop guard
//! itself: the shipped `routing.yaml` never pages on an event tagged `service: paiid-alerts`.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use support::service::Service;
use support::{eventually, fixture_json, repo_path};

const TEST_DETAIL: &str = "This is a test error to verify Sentry integration is working";
const NOT_CONFIGURED: &str =
    "Sentry DSN is not configured. Set SENTRY_DSN before running the test.";
const API_TOKEN: &str = "api-t0ken-never-in-sentry";
const COOKIE: &str = "session=cookie-never-in-sentry";

// ---------- a loopback Sentry that accepts envelopes ----------

/// One envelope as received: the project in its path, its `X-Sentry-Auth`, the raw body, and
/// each item (its header and its JSON payload).
#[derive(Debug, Clone)]
struct Envelope {
    project: String,
    auth: String,
    raw: String,
    items: Vec<(Value, Value)>,
}

impl Envelope {
    fn events(&self) -> impl Iterator<Item = &Value> {
        self.items
            .iter()
            .filter(|(h, _)| h["type"] == "event")
            .map(|(_, p)| p)
    }
}

/// Envelope format: a header line, then per item a header line and a payload of `length`
/// bytes (or up to the next newline when the header gives no length).
fn parse_envelope(body: &[u8]) -> Vec<(Value, Value)> {
    let mut rest = match body.iter().position(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None => return Vec::new(),
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let header: Value = serde_json::from_slice(&rest[..end]).expect("item header");
        rest = &rest[end + 1..];
        let len = header["length"]
            .as_u64()
            .map(|l| l as usize)
            .unwrap_or_else(|| rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len()));
        let payload = serde_json::from_slice(&rest[..len]).unwrap_or(Value::Null);
        items.push((header, payload));
        rest = &rest[len..];
        if rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
    }
    items
}

#[derive(Clone, Default)]
struct FakeSentry {
    received: Arc<Mutex<Vec<Envelope>>>,
}

impl FakeSentry {
    async fn start() -> (Self, u16) {
        let fake = Self::default();
        let app = Router::new()
            .route("/api/{project}/envelope/", post(accept))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (fake, port)
    }

    fn envelopes(&self) -> Vec<Envelope> {
        self.received.lock().unwrap().clone()
    }

    /// Waits for an event whose tag `kind` is `kind`.
    async fn event(&self, kind: &str) -> (Envelope, Value) {
        eventually(Duration::from_secs(20), || async {
            self.envelopes().into_iter().find_map(|e| {
                let event = e.events().find(|ev| ev["tags"]["kind"] == kind)?.clone();
                Some((e, event))
            })
        })
        .await
    }
}

async fn accept(
    State(fake): State<FakeSentry>,
    UrlPath(project): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let envelope = Envelope {
        project,
        auth: headers
            .get("x-sentry-auth")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        raw: String::from_utf8_lossy(&body).into_owned(),
        items: parse_envelope(&body),
    };
    fake.received.lock().unwrap().push(envelope);
    (StatusCode::OK, "{}")
}

// ---------- the binary ----------

/// A loopback port nobody listens on (bound, then released): sends to it are refused.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve` on `routing`, at `info` like an operator's default (envs may override it).
async fn start(dir: &Path, routing: &str, envs: &[(&str, String)]) -> Service {
    std::fs::write(dir.join("routing.yaml"), routing).unwrap();
    let mut all = vec![("RUST_LOG", "info".to_string())];
    all.extend(envs.iter().cloned());
    Service::start(dir, &all, 1).await
}

fn shipped_routing() -> String {
    std::fs::read_to_string(repo_path("routing.yaml")).unwrap()
}

/// The shipped file with Slack pointed at a closed port and one attempt only: the first
/// Critical's delivery is dead at once.
fn routing_with_a_dead_slack() -> String {
    let dead = closed_port();
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "http://127.0.0.1:{dead}/hook" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts] }}
delivery:
  retry_schedule: [1s]
  max_attempts: 1
  send_timeout: 1s
"##
    )
}

async fn sentry_test(svc: &Service, token: Option<&str>) -> (StatusCode, Value) {
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let mut req = client
        .get(format!("{}/api/health/sentry-test", svc.base))
        .header("Cookie", COOKIE);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn without_a_dsn_it_warns_runs_and_the_test_endpoint_says_503() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), &shipped_routing(), &[]).await;
    let (status, body) = sentry_test(&svc, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["detail"], NOT_CONFIGURED);
    assert_eq!(body["code"], "unavailable");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let log = svc.stop().await;
    assert!(
        log.contains("[WARNING] SENTRY_DSN not configured - error tracking disabled"),
        "{log}"
    );
    assert!(!log.contains("[OK] Sentry"), "{log}");
    // Honest configuration: serve names every channel that only reaches the log, and why.
    for line in [
        "channel trading-ops-email only reaches the log: SMTP_URL is not set",
        "channel eng-manager-email only reaches the log: SMTP_URL is not set",
        "channel pagerduty-oncall only reaches the log: PAGERDUTY_ROUTING_KEY is not set",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
}

#[tokio::test]
async fn with_a_dsn_the_test_error_and_a_dead_delivery_reach_sentry_redacted() {
    let (sentry, port) = FakeSentry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        (
            "SENTRY_DSN",
            format!("http://publickey@127.0.0.1:{port}/42"),
        ),
        ("SENTRY_ENVIRONMENT", "ci-test".to_string()),
        ("API_TOKEN", API_TOKEN.to_string()),
    ];
    let svc = start(dir.path(), &routing_with_a_dead_slack(), &envs).await;
    assert!(
        svc.log().contains("[OK] Sentry error tracking initialized"),
        "{}",
        svc.log()
    );

    // Protected like the rest of /api.
    let (status, _) = sentry_test(&svc, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = sentry_test(&svc, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["detail"], TEST_DETAIL);
    assert_eq!(body["code"], "sentry_test");

    let (envelope, event) = sentry.event("sentry_test").await;
    assert_eq!(envelope.project, "42");
    assert!(
        envelope.auth.contains("sentry_key=publickey"),
        "{}",
        envelope.auth
    );
    let message = event["message"]["formatted"]
        .as_str()
        .or(event["message"].as_str())
        .or(event["logentry"]["message"].as_str())
        .unwrap_or_default();
    assert_eq!(message, TEST_DETAIL, "{event}");
    // The protocol leaves out `level` when it is `error` (its default).
    assert!(
        event["level"].is_null() || event["level"] == "error",
        "{event}"
    );
    assert_eq!(event["tags"]["service"], "paiid-alerts");
    assert_eq!(
        event["release"],
        format!("paiid-alerts@{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(event["environment"], "ci-test");
    let headers = &event["request"]["headers"];
    let header = |name: &str| {
        headers
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("authorization"),
        Some("[REDACTED]".into()),
        "{headers}"
    );
    assert_eq!(header("cookie"), Some("[REDACTED]".into()), "{headers}");
    assert!(header("host").is_some(), "other headers stay: {headers}");
    assert!(!envelope.raw.contains(API_TOKEN), "{}", envelope.raw);
    assert!(
        !envelope.raw.contains("cookie-never-in-sentry"),
        "{}",
        envelope.raw
    );

    // A Critical whose only channel is unreachable: its delivery dies and Sentry hears of it.
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let r = client
        .post(format!("{}/webhooks/sentry", svc.base))
        .header("Sentry-Hook-Resource", "event_alert")
        .json(&fixture_json("event_alert.triggered.4.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, dead) = sentry.event("dead_delivery").await;
    assert_eq!(dead["tags"]["service"], "paiid-alerts");
    assert_eq!(dead["tags"]["channel"], "slack-alerts");
    assert_eq!(dead["environment"], "ci-test");

    // A commit that fails: the database stops taking events (an injected trigger standing in
    // for a full disk); intake answers 503 and Sentry hears that storage is failing.
    use sqlx::{Connection, SqliteConnection};
    let mut db = SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("alerts.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_events BEFORE INSERT ON events \
         BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let mut other = fixture_json("event_alert.triggered.4.json");
    other["data"]["event"]["issue_id"] = "777".into();
    other["data"]["event"]["event_id"] = "evt-777".into();
    let r = client
        .post(format!("{}/webhooks/sentry", svc.base))
        .header("Sentry-Hook-Resource", "event_alert")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (_, failing) = sentry.event("storage_failing").await;
    assert_eq!(failing["tags"]["service"], "paiid-alerts");
    assert_eq!(failing["tags"]["source"], "intake");

    // An internal error of the API (a read the database cannot answer: the table moved away
    // under the running service): a 500 that keeps its cause to itself, and Sentry gets it as
    // an internal error, without the credentials of the request.
    sqlx::query("ALTER TABLE incidents RENAME TO incidents_moved_away")
        .execute(&mut db)
        .await
        .unwrap();
    let r = client
        .get(format!("{}/api/incidents", svc.base))
        .bearer_auth(API_TOKEN)
        .header("Cookie", COOKIE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "internal");
    assert_eq!(body["detail"], "internal error");
    let (envelope, internal) = sentry.event("internal_error").await;
    assert_eq!(internal["tags"]["service"], "paiid-alerts");
    assert_eq!(internal["environment"], "ci-test");
    let message = internal["message"]["formatted"]
        .as_str()
        .or(internal["message"].as_str())
        .or(internal["logentry"]["message"].as_str())
        .unwrap_or_default();
    assert!(
        message.starts_with("request failed: ") && message.contains("incidents"),
        "{internal}"
    );
    assert!(!envelope.raw.contains(API_TOKEN), "{}", envelope.raw);
    assert!(
        !envelope.raw.contains("cookie-never-in-sentry"),
        "{}",
        envelope.raw
    );
    svc.stop().await;
}

/// The loop guard: an event about this service (tag `service: paiid-alerts`), even a production
/// error that would otherwise be Critical, is recorded as Low under the shipped routing file and
/// pages nobody.
#[tokio::test]
async fn the_shipped_routing_never_pages_on_the_services_own_errors() {
    let app = support::spawn_with(support::AppOptions {
        run_workers: false,
        ..support::AppOptions::default()
    })
    .await;
    let mut own = fixture_json("event_alert.triggered.4.json");
    let tags = own["data"]["event"]["tags"].as_array_mut().expect("tags");
    tags.push(serde_json::json!(["service", "paiid-alerts"]));
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&own).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["severity"], "low", "{body}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM deliveries").await, 0);
    let inc = app.incident(body["incident_id"].as_i64().unwrap()).await;
    assert_eq!(inc["rule"], "paiid-alerts-self-monitoring", "{inc}");

    // The same event without the tag is Critical and pages: the guard is the tag, nothing else.
    let plain = fixture_json("event_alert.triggered.4.json");
    let mut other = plain.clone();
    other["data"]["event"]["issue_id"] = "999".into();
    other["data"]["event"]["event_id"] = "evt-999".into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&other).unwrap())
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["severity"], "critical", "{body}");
}
