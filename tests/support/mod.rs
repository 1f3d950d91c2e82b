//! Shared integration-test harness: the real application on a random loopback port, a
//! temporary SQLite file, a manual clock, and helpers to post real Sentry fixtures.
#![allow(dead_code)]

pub mod fake_pagerduty;
pub mod fake_sentry;
pub mod fake_slack;
pub mod seed;
pub mod service;
pub mod smtp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use paiid_alerts::testing::app::{Application, Workers};
use paiid_alerts::testing::clock::ManualClock;
use paiid_alerts::testing::settings::{Secret, Secrets, Settings};
use serde_json::Value;

pub const START_MS: i64 = 1_780_000_000_000;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub db_path: PathBuf,
    pub dir: Arc<tempfile::TempDir>,
    pub state: paiid_alerts::testing::http::AppState,
    /// The outbox worker and the escalation scheduler, to step by hand.
    pub workers: Workers,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Adjusts settings before the app is built.
pub type SettingsTweak = Box<dyn FnOnce(&mut Settings) + Send>;

pub struct AppOptions {
    pub routing: String,
    pub secrets: Secrets,
    pub run_workers: bool,
    pub dir: Option<Arc<tempfile::TempDir>>,
    pub clock: Option<Arc<ManualClock>>,
    pub tweak: Option<SettingsTweak>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            routing: std::fs::read_to_string(repo_path("routing.yaml")).expect("routing.yaml"),
            secrets: Secrets::default(),
            run_workers: true,
            dir: None,
            clock: None,
            tweak: None,
        }
    }
}

/// Which database the tests' apps run on: SQLite files by default; with
/// `PAIID_TEST_DATABASE=postgres`, a new database each on the server `PAIID_TEST_POSTGRES_URL`
/// names (`.ci/run` runs the backend-neutral suites both ways).
pub enum TestDatabase {
    Sqlite,
    Postgres(String),
}

pub fn test_database() -> TestDatabase {
    match std::env::var("PAIID_TEST_DATABASE").as_deref() {
        Ok("postgres") => TestDatabase::Postgres(std::env::var("PAIID_TEST_POSTGRES_URL").expect(
            "PAIID_TEST_DATABASE=postgres needs PAIID_TEST_POSTGRES_URL (scripts/test-postgres.sh)",
        )),
        Ok("sqlite") | Err(_) => TestDatabase::Sqlite,
        Ok(other) => panic!("PAIID_TEST_DATABASE={other}: expected sqlite or postgres"),
    }
}

/// The PostgreSQL server of the tests that always run on PostgreSQL (replicas, `migrate-db`);
/// `None` (a skip, said on stderr) without one, except under CI, which always has one.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("PAIID_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs these tests on PostgreSQL: set PAIID_TEST_POSTGRES_URL (scripts/test-postgres.sh)"
            );
            eprintln!("SKIPPED: PAIID_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A new, empty database on the server of `admin_url`; its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("paiid_it_{:016x}", fastrand::u64(..));
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let _ = admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends with /<database>");
    format!("{base}/{name}")
}

pub fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

pub fn secret(s: &str) -> Option<Secret> {
    Some(Secret::new(s))
}

pub async fn spawn_app() -> TestApp {
    spawn_with(AppOptions::default()).await
}

pub async fn spawn_with(opts: AppOptions) -> TestApp {
    let dir = opts
        .dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tempdir")));
    let routing_path = dir.path().join("routing.yaml");
    std::fs::write(&routing_path, &opts.routing).expect("write routing");
    let db_path = dir.path().join("alerts.db");
    let clock = opts
        .clock
        .unwrap_or_else(|| Arc::new(ManualClock::new(START_MS)));
    let database_url = match test_database() {
        TestDatabase::Sqlite => format!("sqlite://{}", db_path.display()),
        // One database per test directory, like the SQLite file: an app started again on the
        // same directory (a restart) finds what the first one stored.
        TestDatabase::Postgres(admin_url) => {
            let remembered = dir.path().join("postgres-url");
            match std::fs::read_to_string(&remembered) {
                Ok(url) => url,
                Err(_) => {
                    let url = fresh_postgres_database(&admin_url).await;
                    std::fs::write(&remembered, &url).expect("remember the database");
                    url
                }
            }
        }
    };
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), database_url, routing_path);
    settings.secrets = opts.secrets;
    settings.clock = Some(clock.clone());
    settings.run_workers = opts.run_workers;
    settings.public_url = None;
    if let Some(tweak) = opts.tweak {
        tweak(&mut settings);
    }
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let workers = app.workers().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = paiid_alerts::testing::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Like a load balancer, tests start talking once /readyz would answer 200: start-up recovery
    // (overdue escalations) runs on a worker and may still be in flight when `build` returns.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !state.is_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "app did not become ready within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client,
        clock,
        db_path,
        dir,
        state,
        workers,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful stop (drains the writer and workers).
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, Arc<ManualClock>) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("clean shutdown");
        }
        (self.dir.clone(), self.clock.clone())
    }

    pub async fn post_sentry(&self, resource: Option<&str>, body: &[u8]) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/webhooks/sentry"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(r) = resource {
            req = req.header("Sentry-Hook-Resource", r);
        }
        req.send().await.expect("post")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.client.get(self.url(path)).send().await.expect("get");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// The body of a page (or `/metrics`) as text.
    pub async fn get_text(&self, path: &str) -> String {
        let r = self.client.get(self.url(path)).send().await.expect("get");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.text().await.expect("text")
    }

    pub async fn incidents(&self) -> Vec<Value> {
        self.get_json("/api/incidents").await["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn incident(&self, id: i64) -> Value {
        self.get_json(&format!("/api/incidents/{id}")).await
    }

    /// One integer a test's own `SELECT` reads, on SQLite or PostgreSQL alike.
    pub async fn scalar(&self, sql: &str) -> i64 {
        paiid_alerts::testing::scalar(&self.state.store, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn fixtures_dir() -> PathBuf {
    repo_path("../shared/fixtures/sentry")
}

/// A fixture as Sentry sends it (compact JSON).
pub fn fixture(name: &str) -> Vec<u8> {
    serde_json::to_vec(&fixture_json(name)).unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    let text = std::fs::read(fixtures_dir().join(name)).expect("fixture");
    serde_json::from_slice(&text).expect("json")
}

pub fn resource_of(name: &str) -> Option<&str> {
    let r = name.split('.').next()?;
    (r != "legacy_webhook").then_some(r)
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Slack signing secret the tests that click buttons configure.
pub const SLACK_SIGNING_SECRET: &str = "slack-signing-secret";

/// Percent-encodes `s` for an `application/x-www-form-urlencoded` body.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TestApp {
    /// Posts a Slack `block_actions` click on our `action_id` button with `value`, signed with
    /// [`SLACK_SIGNING_SECRET`] at the app's clock.
    pub async fn slack_click(&self, action_id: &str, value: &str) -> reqwest::Response {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": { "id": "U123", "username": "ana", "name": "ana" },
            "actions": [ { "action_id": action_id, "value": value } ]
        });
        let form = format!("payload={}", urlencode(&payload.to_string()));
        use paiid_alerts::testing::clock::Clock;
        let ts = (self.clock.now_ms() / 1000).to_string();
        let sig = paiid_alerts::testing::intake::signature::sign(
            SLACK_SIGNING_SECRET.as_bytes(),
            format!("v0:{ts}:{form}").as_bytes(),
        );
        self.client
            .post(self.url("/slack/interactions"))
            .header("X-Slack-Request-Timestamp", ts)
            .header("X-Slack-Signature", format!("v0={sig}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("slack click")
    }
}
