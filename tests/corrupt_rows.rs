//! A stored incident whose state, severity or policy does not decode is an error wherever it is
//! read, never a default: a default policy notifies nobody and never escalates, silently.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const FIXTURE: &str = "event_alert.triggered.4.json";

/// The real app without running workers (the scheduler is stepped by hand), with one critical
/// incident (id 1) open.
async fn app_with_one_incident() -> TestApp {
    let app = spawn_with(AppOptions {
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let r = app
        .post_sentry(resource_of(FIXTURE), &fixture(FIXTURE))
        .await;
    assert_eq!(r.status(), 200);
    let inc = app.incident(1).await;
    assert_eq!(inc["severity"], "critical", "{inc}");
    app
}

async fn corrupt(app: &TestApp, column: &str, value: &str) {
    let mut tx = app.state.store.begin_write().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE incidents SET {column} = ? WHERE id = 1"
    )))
    .bind(value)
    .execute(paiid_alerts::testing::sqlite_conn(&mut tx))
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_corrupt_policy_is_an_error_not_the_default_policy() {
    let app = app_with_one_incident().await;
    corrupt(&app, "policy", "{\"notify\": \"slack-alerts\"").await;

    // Before: 200 with `"policy": {"notify": [], "escalate_to": [], ...}`, the default.
    let (status, body) = get(&app, "/api/incidents/1").await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("escalate_to"), "{body}");

    // Listed by id with why, not dropped and not defaulted.
    let list = app.get_json("/api/incidents").await;
    let rows = list["incidents"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], 1);
    let why = rows[0]["unreadable"].as_str().unwrap_or_default();
    assert!(
        why.contains("incidents row 1") && why.contains("`policy`"),
        "{list}"
    );

    // The page lists it as unreadable.
    let (status, html) = get(&app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Unreadable incident"), "{html}");
}

#[tokio::test]
async fn an_unknown_state_is_an_error() {
    let app = app_with_one_incident().await;
    corrupt(&app, "state", "snoozed").await;

    // Before: 200 with `"state": "snoozed"`, while transitions read it as `triggered`.
    let (status, body) = get(&app, "/api/incidents/1").await;
    assert_eq!(status, 500, "{body}");

    // Acting on it fails and writes nothing.
    let r = app
        .client
        .post(app.url("/api/incidents/1/ack"))
        .json(&serde_json::json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let state: String = sqlx::query_scalar("SELECT state FROM incidents WHERE id = 1")
        .fetch_one(paiid_alerts::testing::read_pool(&app.state.store))
        .await
        .unwrap();
    assert_eq!(state, "snoozed");

    // Another alert for it is kept (answered 202, linked to the incident) but not applied, and
    // intake goes on for everything else.
    let mut again = fixture_json(FIXTURE);
    again["data"]["event"]["event_id"] = "c0ffee00c0ffee00c0ffee00c0ffee00".into();
    let r = app
        .post_sentry(resource_of(FIXTURE), again.to_string().as_bytes())
        .await;
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "unreadable_incident", "{answer}");
    assert_eq!(answer["incident_id"], Value::Null);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE incident_id = 1")
            .await,
        2
    );
    assert_eq!(
        app.scalar("SELECT event_count FROM incidents WHERE id = 1")
            .await,
        1
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 1);
    assert!(app.state.is_ready(), "a bad row is not a storage fault");
}

#[tokio::test]
async fn an_unreadable_incident_does_not_escalate_with_a_default_policy() {
    let app = app_with_one_incident().await;
    let due = app
        .scalar("SELECT next_escalation_at FROM incidents WHERE id = 1")
        .await;
    corrupt(&app, "policy", "{}").await;
    app.clock.advance(Duration::from_secs(16 * 60));

    // Before: the step fired with the default policy (nobody paged) and was recorded as done.
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM escalations").await, 0);
    // Looked at again in a minute, not in a busy loop; it still fires once repaired.
    let next = app
        .scalar("SELECT next_escalation_at FROM incidents WHERE id = 1")
        .await;
    assert!(next > due, "postponed: {next} > {due}");
}

/// The value of one sample of `/metrics`, 0 when the series is absent.
async fn sample(app: &TestApp, series: &str) -> f64 {
    let (status, text) = get(app, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn unreadable_rows_are_counted_by_table_and_field() {
    let app = app_with_one_incident().await;
    let series = r#"paiid_store_corrupt_rows_total{table="incidents",field="state"}"#;
    assert_eq!(sample(&app, series).await, 0.0);
    corrupt(&app, "state", "snoozed").await;

    // Each read that finds it counts once: the API's one incident, then its listing.
    let (status, _) = get(&app, "/api/incidents/1").await;
    assert_eq!(status, 500);
    assert_eq!(sample(&app, series).await, 1.0);
    app.get_json("/api/incidents").await;
    assert_eq!(sample(&app, series).await, 2.0);
    let other = r#"paiid_store_corrupt_rows_total{table="incidents",field="policy"}"#;
    assert_eq!(sample(&app, other).await, 0.0, "only the field that failed");
}

#[tokio::test]
async fn an_unknown_timeline_kind_is_an_error() {
    let app = app_with_one_incident().await;
    let mut tx = app.state.store.begin_write().await.unwrap();
    sqlx::query("UPDATE timeline SET kind = 'snoozed' WHERE incident_id = 1")
        .execute(paiid_alerts::testing::sqlite_conn(&mut tx))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Before: 200 with the word passed through as it was stored.
    let (status, body) = get(&app, "/api/incidents/1").await;
    assert_eq!(status, 500, "{body}");
    let series = r#"paiid_store_corrupt_rows_total{table="timeline",field="kind"}"#;
    assert_eq!(sample(&app, series).await, 1.0);

    // The page says so instead of showing an empty timeline.
    let page = app
        .client
        .get(app.url("/incidents/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Timeline unreadable"), "{page}");
    assert!(
        page.contains("snoozed"),
        "the reason names the word: {page}"
    );
}
