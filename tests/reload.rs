//! Reloading `routing.yaml` while the service runs: `POST /-/reload` and `SIGHUP`. A valid file
//! changes how the next alert is classified; an invalid one is refused with `check-config`'s
//! message, the old rules stay, and the metric and the log say so.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::{
    AppOptions, TestApp, TestDatabase, eventually, fixture_json, fresh_postgres_database, secret,
    spawn_with, test_database,
};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");
const TOKEN: &str = "reload-t0ken";

/// A small routing file of the test's own (the shipped one changes with the product): only
/// production errors are classified, so `error.created.1` (no environment, level error) is
/// unclassified.
const BASE: &str = r##"
channels:
  slack-alerts: { type: slack, channel: "#alerts", webhook_url: "${SLACK_WEBHOOK_URL}" }
rules:
  - name: critical-production-errors
    severity: critical
    when: { environment: production, level: [error, fatal] }
severities:
  critical: { notify: [slack-alerts], escalate_after: 15m, escalate_to: [slack-alerts] }
  high: { notify: [slack-alerts], escalate_after: 60m, escalate_to: [slack-alerts] }
"##;

/// [`BASE`] with one rule in front: every error is High.
fn every_error_is_high() -> String {
    BASE.replacen(
        "rules:\n",
        "rules:\n  - name: every-error\n    severity: high\n    when: { level: [error, fatal] }\n",
        1,
    )
}

/// A rule naming a channel that does not exist: `check-config` refuses it.
fn invalid() -> String {
    every_error_is_high().replacen(
        "    severity: high\n    when: { level: [error, fatal] }\n",
        "    severity: high\n    when: { level: [error, fatal] }\n    notify: [no-such-channel]\n",
        1,
    )
}

fn error_event(n: u32) -> Vec<u8> {
    let mut v = fixture_json("error.created.1.json");
    v["data"]["error"]["event_id"] = format!("reload{n:028}").into();
    serde_json::to_vec(&v).unwrap()
}

async fn severity_of(app: &TestApp, n: u32) -> String {
    let r = app.post_sentry(Some("error"), &error_event(n)).await;
    assert!(r.status().is_success(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    body["severity"].as_str().unwrap().to_string()
}

async fn app() -> TestApp {
    spawn_with(AppOptions {
        routing: BASE.to_string(),
        secrets: Secrets {
            api_token: secret(TOKEN),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await
}

fn routing_path(app: &TestApp) -> std::path::PathBuf {
    app.dir.path().join("routing.yaml")
}

async fn reload(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.post(app.url("/-/reload"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn metrics(base: &str) -> String {
    paiid_alerts::testing::http_client::client()
        .unwrap()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The line of `check-config PATH`'s error, without its `error: ` prefix.
async fn check_config_error(path: &Path) -> String {
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(path)
        .env_clear()
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    stderr
        .trim()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("check-config said: {stderr}"))
        .to_string()
}

#[tokio::test]
async fn a_valid_file_is_applied_to_the_next_alert() {
    let app = app().await;
    assert_eq!(severity_of(&app, 1).await, "unclassified");

    std::fs::write(routing_path(&app), every_error_is_high()).unwrap();
    // Written but not reloaded: nothing changes.
    assert_eq!(severity_of(&app, 2).await, "unclassified");

    let r = reload(&app, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "reloaded");
    assert_eq!(body["config"]["rules"], 2);

    assert_eq!(severity_of(&app, 3).await, "high");
    assert_eq!(
        app.state
            .metrics
            .counter("paiid_config_reload_total", &[("result", "success")]),
        1
    );
    assert!(
        metrics(&app.base)
            .await
            .contains("paiid_config_last_reload_successful 1")
    );
}

#[tokio::test]
async fn reload_needs_the_bearer_token() {
    let app = app().await;
    std::fs::write(routing_path(&app), every_error_is_high()).unwrap();
    assert_eq!(reload(&app, None).await.status(), 401);
    assert_eq!(reload(&app, Some("wrong")).await.status(), 401);
    assert_eq!(severity_of(&app, 1).await, "unclassified", "not reloaded");
}

#[tokio::test]
async fn an_invalid_file_is_refused_with_check_configs_message_and_the_old_rules_stay() {
    let app = app().await;
    std::fs::write(routing_path(&app), every_error_is_high()).unwrap();
    assert_eq!(reload(&app, Some(TOKEN)).await.status(), 200);
    assert_eq!(severity_of(&app, 1).await, "high");

    // An invalid rule that would (if applied) leave errors unclassified again.
    std::fs::write(routing_path(&app), invalid()).unwrap();
    let expected = check_config_error(&routing_path(&app)).await;
    let r = reload(&app, Some(TOKEN)).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_config");
    assert_eq!(body["detail"], expected.as_str());

    assert_eq!(severity_of(&app, 2).await, "high", "the old rules stay");
    let m = metrics(&app.base).await;
    assert!(
        m.contains("paiid_config_reload_total{result=\"failure\"} 1"),
        "{m}"
    );
    assert!(m.contains("paiid_config_reload_total{result=\"success\"} 1"));
    assert!(m.contains("paiid_config_last_reload_successful 0"));
}

/// `SIGHUP` against the real binary: reloads, and does not end the process (its default).
#[tokio::test]
async fn sighup_reloads_the_real_service() {
    let dir = tempfile::tempdir().unwrap();
    let routing = dir.path().join("routing.yaml");
    std::fs::write(&routing, BASE).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("service.log");
    let out = std::fs::File::create(&log).unwrap();
    let database_url = match test_database() {
        TestDatabase::Sqlite => format!("sqlite://{}", dir.path().join("alerts.db").display()),
        TestDatabase::Postgres(admin_url) => fresh_postgres_database(&admin_url).await,
    };
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("ROUTING_CONFIG", &routing)
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = paiid_alerts::testing::http_client::client().unwrap();
    eventually(Duration::from_secs(20), || {
        let r = client.get(format!("{base}/readyz")).send();
        async move { r.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await;
    let post = |n: u32| {
        let r = client
            .post(format!("{base}/webhooks/sentry"))
            .header("content-type", "application/json")
            .header("Sentry-Hook-Resource", "error")
            .body(error_event(n))
            .send();
        async move {
            let body: Value = r.await.unwrap().json().await.unwrap();
            body["severity"].as_str().unwrap().to_string()
        }
    };
    let hup = |pid: u32| {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let pid = child.id().unwrap();
    assert_eq!(post(1).await, "unclassified");

    // A bad file first: refused, the service keeps running on the old rules.
    std::fs::write(&routing, invalid()).unwrap();
    hup(pid);
    eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap();
        async move { text.contains("routing file reload refused").then_some(()) }
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the service"
    );
    assert_eq!(post(2).await, "unclassified");
    assert!(
        metrics(&base)
            .await
            .contains("paiid_config_reload_total{result=\"failure\"} 1")
    );

    std::fs::write(&routing, every_error_is_high()).unwrap();
    hup(pid);
    eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap();
        async move { text.contains("routing file reloaded").then_some(()) }
    })
    .await;
    assert_eq!(post(3).await, "high");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the service"
    );
    let m = metrics(&base).await;
    assert!(m.contains("paiid_config_last_reload_successful 1"), "{m}");
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// A production error under [`BASE`]: Critical.
fn production_error(n: u32, issue: &str) -> Vec<u8> {
    let mut v = fixture_json("error.created.1.json");
    v["data"]["error"]["event_id"] = format!("prod{n:028}").into();
    v["data"]["error"]["environment"] = "production".into();
    v["data"]["error"]["issue_id"] = issue.into();
    serde_json::to_vec(&v).unwrap()
}

/// The channels an incident's escalation deliveries went to.
async fn escalated_to(app: &TestApp, id: i64) -> Vec<String> {
    app.incident(id).await["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "escalation")
        .map(|d| d["channel"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_running_escalation_keeps_its_policy_and_new_incidents_get_the_new_one() {
    let app = spawn_with(AppOptions {
        routing: BASE.to_string(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let post = |n: u32, issue: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post_sentry(Some("error"), &production_error(n, issue))
                .await;
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["severity"], "critical", "{body}");
            body["incident_id"].as_i64().unwrap()
        }
    };
    let before = post(1, "8001").await;

    // Critical now escalates after an hour, to a new channel.
    let changed = BASE
        .replace(
            "  slack-alerts: { type: slack, channel: \"#alerts\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n",
            "  slack-alerts: { type: slack, channel: \"#alerts\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n  managers: { type: slack, channel: \"#managers\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n",
        )
        .replace(
            "critical: { notify: [slack-alerts], escalate_after: 15m, escalate_to: [slack-alerts] }",
            "critical: { notify: [slack-alerts], escalate_after: 60m, escalate_to: [managers] }",
        );
    assert_ne!(changed, BASE);
    std::fs::write(routing_path(&app), &changed).unwrap();
    let r = app.client.post(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let after = post(2, "8002").await;

    app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    assert_eq!(
        escalated_to(&app, before).await,
        vec!["slack-alerts"],
        "opened before the reload: its frozen policy (15m, slack-alerts)"
    );
    assert!(
        escalated_to(&app, after).await.is_empty(),
        "opened after: not yet (60m)"
    );
    app.clock.advance(Duration::from_secs(45 * 60));
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    assert_eq!(escalated_to(&app, after).await, vec!["managers"]);
    // The channel the reload added is built and delivered to.
    app.workers.outbox.drain().await.unwrap();
    let statuses: Vec<String> = app.incident(after).await["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "managers")
        .map(|d| d["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, vec!["delivered"]);
}

/// With the workers running, a channel a reload adds gets its delivery loop.
#[tokio::test]
async fn a_channel_added_by_a_reload_is_delivered_to_by_the_running_workers() {
    let app = app().await;
    let changed = BASE
        .replace(
            "  slack-alerts: { type: slack, channel: \"#alerts\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n",
            "  slack-alerts: { type: slack, channel: \"#alerts\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n  war-room: { type: slack, channel: \"#war-room\", webhook_url: \"${SLACK_WEBHOOK_URL}\" }\n",
        )
        .replace(
            "critical: { notify: [slack-alerts],",
            "critical: { notify: [war-room],",
        );
    assert_ne!(changed, BASE);
    std::fs::write(routing_path(&app), &changed).unwrap();
    assert_eq!(reload(&app, Some(TOKEN)).await.status(), 200);
    let r = app
        .post_sentry(Some("error"), &production_error(1, "8101"))
        .await;
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    let client = app.client.clone();
    let url = app.url(&format!("/api/incidents/{id}"));
    eventually(Duration::from_secs(10), || {
        let r = client.get(&url).bearer_auth(TOKEN).send();
        async move {
            let inc: Value = r.await.ok()?.json().await.ok()?;
            inc["deliveries"]
                .as_array()?
                .iter()
                .any(|d| d["channel"] == "war-room" && d["status"] == "delivered")
                .then_some(())
        }
    })
    .await;
}

/// A routing file whose only channel is `slack`'s webhook, with the given `delivery:` section.
fn failing_slack_routing(slack: &support::fake_slack::FakeSlack, delivery: &str) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#alerts", webhook_url: "{url}" }}
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts] }}
delivery:
{delivery}
"##,
        url = slack.webhook_url(),
    )
}

/// The one Slack row: (status, attempts, next_attempt_at).
async fn slack_row(app: &TestApp) -> (String, i64, i64) {
    let status: String = paiid_alerts::testing::column(
        &app.state.store,
        "SELECT status FROM deliveries WHERE channel = 'slack-alerts' ORDER BY id LIMIT 1",
    )
    .await
    .unwrap()
    .remove(0);
    let attempts = app
        .scalar(
            "SELECT attempts FROM deliveries WHERE channel = 'slack-alerts' ORDER BY id LIMIT 1",
        )
        .await;
    let next = app
        .scalar(
            "SELECT next_attempt_at FROM deliveries WHERE channel = 'slack-alerts' ORDER BY id LIMIT 1",
        )
        .await;
    (status, attempts, next)
}

/// The `delivery:` section is read per attempt: after a reload, a delivery already failing is
/// retried on the new schedule and given up on after the new number of attempts.
#[tokio::test]
async fn a_reloaded_retry_schedule_and_max_attempts_apply_to_the_next_attempt() {
    use paiid_alerts::testing::clock::Clock;
    use paiid_alerts::testing::notify::worker::Step;
    use support::fake_slack::{Behaviour, FakeSlack};

    let slack = FakeSlack::start().await;
    slack.fail_next(100, Behaviour::Status(500));
    let app = spawn_with(AppOptions {
        routing: failing_slack_routing(&slack, "  retry_schedule: [25s]\n  max_attempts: 8\n"),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let r = app
        .post_sentry(Some("error"), &production_error(1, "8201"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    let (status, attempts, next) = slack_row(&app).await;
    let now = app.clock.now_ms();
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert!(
        (20_000..=30_000).contains(&(next - now)),
        "first retry on the old schedule (25 s ± 20 %): in {} ms",
        next - now
    );

    std::fs::write(
        routing_path(&app),
        failing_slack_routing(&slack, "  retry_schedule: [1s]\n  max_attempts: 3\n"),
    )
    .unwrap();
    let r = app.client.post(app.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    app.clock.advance(Duration::from_secs(31));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    let (status, attempts, next) = slack_row(&app).await;
    let now = app.clock.now_ms();
    assert_eq!((status.as_str(), attempts), ("failed", 2));
    assert!(
        (800..=1_200).contains(&(next - now)),
        "second retry on the reloaded schedule (1 s ± 20 %): in {} ms",
        next - now
    );

    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    let (status, attempts, _) = slack_row(&app).await;
    assert_eq!(
        (status.as_str(), attempts),
        ("dead", 3),
        "given up after the reloaded max_attempts (3)"
    );
}
