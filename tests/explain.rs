//! `paiid-alerts explain` and `POST /api/explain`: every real fixture is explained (exit 0) with
//! the severity intake gives it; the API answers JSON, names a matching silence, refuses a body
//! that is not Sentry's and wants the token.

mod support;

use std::path::PathBuf;

use paiid_alerts::testing::settings::Secrets;
use serde_json::{Value, json};
use support::{AppOptions, TestApp, fixture, fixtures_dir, resource_of, secret, spawn_with};

const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");
const TOKEN: &str = "explain-t0ken";

/// The shipped matrix, kept here so the test does not move with edits to `routing.yaml`.
const ROUTING: &str = r##"
channels:
  slack-alerts: { type: slack, channel: "#alerts", webhook_url: "${SLACK_WEBHOOK_URL}" }
  pagerduty-oncall: { type: pagerduty, routing_key: "${PAGERDUTY_ROUTING_KEY}" }
  trading-ops-email: { type: email, to: ["ops@example.com"] }
  eng-manager-email: { type: email, to: ["mgr@example.com"] }
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: { environment: production, level: [error, fatal] }
  - name: high-error-rate
    severity: high
    when: { level: [error, fatal], rate: { more_than: 10, within: 5m, per: project } }
  - name: slow-transactions
    severity: high
    when: { transaction_duration_over: 2s }
  - name: apdex-regression
    severity: medium
    when: { apdex_below: 0.8 }
severities:
  critical: { notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email] }
  high:     { notify: [trading-ops-email], escalate_after: 60m, escalate_to: [slack-alerts, eng-manager-email] }
  medium:   { digest: daily }
digest:
  schedule: "0 0 8 * * *"
  timezone: "America/New_York"
  to: [trading-ops-email]
"##;

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with("reference."))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    names
}

async fn app() -> TestApp {
    spawn_with(AppOptions {
        routing: ROUTING.to_string(),
        secrets: Secrets {
            api_token: secret(TOKEN),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await
}

/// What intake answers for `name` posted alone to a fresh service.
async fn intake_severity(name: &str) -> (String, String) {
    let app = app().await;
    let r = app.post_sentry(resource_of(name), &fixture(name)).await;
    assert!(r.status().is_success(), "{name}: {}", r.status());
    let body: Value = r.json().await.unwrap();
    (
        body["status"].as_str().unwrap_or_default().to_string(),
        body["severity"]
            .as_str()
            .unwrap_or("unclassified")
            .to_string(),
    )
}

async fn explain_cli(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("explain")
        .args(args)
        .env_clear()
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn every_fixture_is_explained_by_the_cli_with_the_severity_intake_gives() {
    let dir = tempfile::tempdir().unwrap();
    let routing = dir.path().join("routing.yaml");
    std::fs::write(&routing, ROUTING).unwrap();
    let missing_db = format!("sqlite://{}", dir.path().join("none.db").display());
    let mut alerts = 0;
    for name in fixture_names() {
        let path: PathBuf = fixtures_dir().join(&name);
        // The resource as Sentry sends it; the file name gives the same for these names.
        let mut args = vec![
            path.to_str().unwrap().to_string(),
            "--config".into(),
            routing.to_str().unwrap().into(),
            "--database-url".into(),
            missing_db.clone(),
        ];
        if let Some(r) = resource_of(&name) {
            args.extend(["--resource".to_string(), r.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = explain_cli(&args).await;
        assert!(ok, "{name}: exit non-zero: {err}");
        assert!(out.contains("Payload"), "{name}: {out}");
        assert!(
            out.contains("Silences     no database: silences not checked"),
            "{name}: {out}"
        );
        let (status, severity) = intake_severity(&name).await;
        if out.contains("Rules: not tried") {
            // A resolution, assignment...: intake opens nothing new for it either.
            assert_ne!(status, "created", "{name}: {out}");
            continue;
        }
        alerts += 1;
        assert!(
            out.contains(&format!("Severity     {severity}\n")),
            "{name}: intake says {severity}, explain says:\n{out}"
        );
    }
    assert!(alerts >= 8, "only {alerts} alerts among the fixtures");
    assert!(
        !dir.path().join("none.db").exists(),
        "explain created a database"
    );
}

#[tokio::test]
async fn the_cli_shows_each_condition_and_the_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let routing = dir.path().join("routing.yaml");
    std::fs::write(&routing, ROUTING).unwrap();
    let payload = fixtures_dir().join("event_alert.triggered.4.json");
    // No --resource: taken from the Sentry-style file name.
    let (ok, out, err) = explain_cli(&[
        payload.to_str().unwrap(),
        "--config",
        routing.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("resource: event_alert"), "{out}");
    assert!(
        out.contains("[MATCH] critical-production-errors -> critical"),
        "{out}"
    );
    assert!(
        out.contains("yes environment: wants prod | production, payload has prod"),
        "{out}"
    );
    assert!(out.contains("Notifies     slack-alerts"), "{out}");
    assert!(
        out.contains(
            "Escalates    after 15m unacknowledged, to pagerduty-oncall, eng-manager-email"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn the_cli_refuses_a_file_that_is_not_a_sentry_payload() {
    let dir = tempfile::tempdir().unwrap();
    let routing = dir.path().join("routing.yaml");
    std::fs::write(&routing, ROUTING).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"[1, 2").unwrap();
    let (ok, _, err) =
        explain_cli(&[bad.to_str().unwrap(), "--config", routing.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("not a Sentry webhook payload"), "{err}");
}

async fn api_explain(
    app: &TestApp,
    query: &str,
    resource: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/explain{query}")))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body);
    if let Some(r) = resource {
        req = req.header("Sentry-Hook-Resource", r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_api_explains_as_json_and_stores_nothing() {
    let app = app().await;
    let r = api_explain(
        &app,
        "",
        Some("event_alert"),
        fixture("event_alert.triggered.4.json"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["rule"], "critical-production-errors");
    assert_eq!(e["facts"]["environment"], "prod");
    assert_eq!(e["notify"], json!(["slack-alerts"]));
    assert_eq!(e["escalation"]["after"], "15m");
    assert_eq!(e["rules"][0]["chosen"], true);
    assert_eq!(e["rules"][0]["conditions"][0]["condition"], "environment");
    assert_eq!(e["rules"][0]["conditions"][0]["result"], true);
    assert_eq!(e["silences"]["checked"], "checked");
    assert_eq!(e["silences"]["matching"], json!([]));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 0);

    // ?resource= works as the header does.
    let r = api_explain(
        &app,
        "?resource=metric_alert",
        None,
        fixture("metric_alert.critical.1.json"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["facts"]["resource"], "metric_alert");
    assert!(e["facts"]["metric"]["kind"].is_string(), "{e}");
}

#[tokio::test]
async fn the_api_names_the_silence_that_would_hold_the_alert() {
    let app = app().await;
    let r = app
        .client
        .post(app.url("/api/silences"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "matchers": { "rule": "critical-production-errors" },
            "duration": "1h",
            "author": "ana",
            "comment": "database failover"
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let created: Value = r.json().await.unwrap();
    let r = api_explain(
        &app,
        "",
        Some("event_alert"),
        fixture("event_alert.triggered.4.json"),
    )
    .await;
    let e: Value = r.json().await.unwrap();
    let matching = e["silences"]["matching"].as_array().unwrap();
    assert_eq!(matching.len(), 1, "{e}");
    let id = created
        .get("id")
        .or_else(|| created.pointer("/silence/id"))
        .cloned()
        .unwrap_or_else(|| panic!("no id in {created}"));
    assert_eq!(matching[0]["id"], id);
    assert_eq!(matching[0]["holds"], true);
    assert!(
        e["summary"].as_str().unwrap().contains("HELD by silence"),
        "{e}"
    );
}

#[tokio::test]
async fn the_api_refuses_a_bad_payload_and_a_missing_token() {
    let app = app().await;
    let r = api_explain(&app, "", Some("event_alert"), b"{not json".to_vec()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
    let r = api_explain(&app, "", Some("event_alert"), b"{\"hello\": 1}".to_vec()).await;
    assert_eq!(r.status(), 400);

    let r = app
        .client
        .post(app.url("/api/explain"))
        .header("Sentry-Hook-Resource", "event_alert")
        .body(fixture("event_alert.triggered.4.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Size, contents and modification time of `path`, and which of its `-wal` / `-shm` companions
/// exist.
fn file_state(path: &std::path::Path) -> (Vec<u8>, std::time::SystemTime, bool, bool) {
    let companion = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p).exists()
    };
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
        companion("-wal"),
        companion("-shm"),
    )
}

/// `explain` reads the service's database (it names the silence there) and leaves the file as
/// it found it: same bytes, same modification time, no `-wal` / `-shm` file left behind.
#[tokio::test]
async fn the_cli_reads_the_database_without_changing_it() {
    let now = chrono::Utc::now().timestamp_millis();
    let app = spawn_with(AppOptions {
        routing: ROUTING.to_string(),
        secrets: Secrets {
            api_token: secret(TOKEN),
            ..Secrets::default()
        },
        clock: Some(std::sync::Arc::new(
            paiid_alerts::testing::clock::ManualClock::new(now),
        )),
        ..AppOptions::default()
    })
    .await;
    let r = app
        .client
        .post(app.url("/api/silences"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "matchers": { "rule": "critical-production-errors" },
            "duration": "2h",
            "author": "ana",
            "comment": "database failover"
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let db = app.db_path.clone();
    let routing = app.dir.path().join("routing.yaml");
    let payload = fixtures_dir().join("event_alert.triggered.4.json");
    let url = format!("sqlite://{}", db.display());
    let args = [
        payload.to_str().unwrap(),
        "--config",
        routing.to_str().unwrap(),
        "--database-url",
        &url,
    ];
    // While the service runs (its WAL open), explain reads what it committed.
    assert!(file_state(&db).2, "the running service has a -wal file");
    let (ok, out, err) = explain_cli(&args).await;
    assert!(ok, "{err}");
    assert!(out.contains("HELD by silence #1"), "{out}");

    let (dir, _) = app.stop().await;
    let before = file_state(&db);
    assert!(!before.2 && !before.3, "the stopped service left -wal/-shm");
    // A coarse file system clock would hide a write within the same tick.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (ok, out, err) = explain_cli(&args).await;
    assert!(ok, "{err}");
    assert!(out.contains("HELD by silence #1"), "{out}");
    let after = file_state(&db);
    assert!(before.0 == after.0, "explain changed the database's bytes");
    assert_eq!(before.1, after.1, "explain changed the database's mtime");
    assert!(!after.2, "explain left a -wal file");
    assert!(!after.3, "explain left a -shm file");
    drop(dir);
}

/// A database an older version left (fewer migrations applied) is neither migrated nor
/// misread: explain says what it is and what to do, and the file stays as it was.
#[tokio::test]
async fn the_cli_refuses_an_older_schema_with_a_clear_message_and_does_not_migrate_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(support::repo_path("migrations/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let latest = names.len();
    assert!(latest >= 2, "{names:?}");
    for p in &names[..latest - 1] {
        std::fs::copy(p, old.join(p.file_name().unwrap())).unwrap();
    }
    let db = dir.path().join("old.db");
    let url = format!("sqlite://{}", db.display());
    {
        use sqlx::ConnectOptions;
        let mut conn = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
    }
    let before = file_state(&db);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let routing = dir.path().join("routing.yaml");
    std::fs::write(&routing, ROUTING).unwrap();
    let payload = fixtures_dir().join("event_alert.triggered.4.json");
    let (ok, out, err) = explain_cli(&[
        payload.to_str().unwrap(),
        "--config",
        routing.to_str().unwrap(),
        "--database-url",
        &url,
    ])
    .await;
    assert!(!ok, "explain accepted an older database: {out}");
    let expected = format!("{} of the {latest} migrations", latest - 1);
    assert!(
        err.contains(&expected) && err.contains("older") && err.contains("serve"),
        "{err}"
    );
    let after = file_state(&db);
    assert!(before.0 == after.0, "explain migrated the database");
    assert_eq!(before.1, after.1, "explain changed the database's mtime");
    assert!(!after.2 && !after.3, "explain left -wal/-shm files");
}
