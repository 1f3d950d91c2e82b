//! Event details are extracted (and scrubbed) once at intake and stored with the event;
//! deliveries read what was stored, never the raw Sentry body; rows stored before the details
//! existed get them from their body when the service starts.

mod support;

use paiid_alerts::testing::clock::Clock;
use serde_json::Value;
use support::fake_slack::{self, FakeSlack};
use support::*;

const TOP_FRAME: &str = "raven/scripts/runner.py in main at line 112";

fn routing(slack: &FakeSlack) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "{url}" }}
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
  max_attempts: 2
"##,
        url = slack.webhook_url(),
    )
}

fn options(slack: &FakeSlack) -> AppOptions {
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    AppOptions {
        routing: routing(slack),
        run_workers: false,
        ..AppOptions::default()
    }
}

/// A real production error with a secret and PII added where real events carry them.
fn event_with_secrets() -> Vec<u8> {
    let mut v = fixture_json("event_alert.triggered.4.json");
    let e = &mut v["data"]["event"];
    e["request"]["url"] = "https://api.paiid.ai/orders?token=QUERYSECRET".into();
    e["breadcrumbs"] = serde_json::json!({"values": [
        {"category": "auth", "message": "login as trader@example.com with password=hunter2-CRUMB"}
    ]});
    serde_json::to_vec(&v).unwrap()
}

async fn stored_details(app: &TestApp) -> Vec<Option<String>> {
    paiid_alerts::testing::column(&app.state.store, "SELECT details FROM events ORDER BY id")
        .await
        .unwrap()
}

async fn slack_text(app: &TestApp, slack: &FakeSlack) -> String {
    assert_eq!(app.workers.outbox.drain().await.unwrap(), 1);
    let msgs = slack.messages();
    assert_eq!(msgs.len(), 1);
    msgs[0].body.to_string()
}

#[tokio::test]
async fn deliveries_show_the_details_stored_at_intake_not_the_body() {
    let slack = FakeSlack::start().await;
    let app = spawn_with(options(&slack)).await;
    let r = app
        .post_sentry(Some("event_alert"), &event_with_secrets())
        .await;
    assert_eq!(r.status(), 200);

    // Stored once, scrubbed: no secret and (include_pii is off by default) no PII.
    let details = stored_details(&app).await;
    assert_eq!(details.len(), 1);
    let stored = details[0].clone().expect("details stored with the event");
    for leak in ["QUERYSECRET", "hunter2-CRUMB", "trader@example.com"] {
        assert!(!stored.contains(leak), "{leak} stored: {stored}");
    }
    let parsed: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(parsed["top_frame"], TOP_FRAME);
    assert_eq!(parsed["pii_included"], false);

    // The raw body no longer says anything: what the message shows comes from the stored details.
    // The bytes `{}`: each backend spells a byte string its own way.
    let empty_object = match test_database() {
        TestDatabase::Sqlite => "CAST('{}' AS BLOB)",
        TestDatabase::Postgres(_) => "CAST('{}' AS BYTEA)",
    };
    paiid_alerts::testing::execute(
        &app.state.store,
        &format!("UPDATE events SET body = {empty_object}"),
    )
    .await
    .unwrap();
    let text = slack_text(&app, &slack).await;
    assert!(text.contains(TOP_FRAME), "{text}");
    assert!(text.contains("token=[REDACTED]"), "{text}");
    assert!(text.contains("password=[REDACTED]"), "{text}");
    for leak in ["QUERYSECRET", "hunter2-CRUMB", "trader@example.com"] {
        assert!(!text.contains(leak), "{leak} sent: {text}");
    }
}

#[tokio::test]
async fn events_stored_before_details_existed_get_them_at_start() {
    let slack = FakeSlack::start().await;
    let app = spawn_with(options(&slack)).await;
    let r = app
        .post_sentry(Some("event_alert"), &event_with_secrets())
        .await;
    assert_eq!(r.status(), 200);
    // As a row written before migration 0005 looks; a second one whose body is past retention.
    let store = &app.state.store;
    paiid_alerts::testing::execute(store, "UPDATE events SET details = NULL")
        .await
        .unwrap();
    // Its id as SQLite would give it: the service numbers events itself (PostgreSQL gives none).
    paiid_alerts::testing::execute(
        store,
        &format!(
            "INSERT INTO events (id, received_at, dedup_key, source, resource, action, status) \
             VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM events), {}, 'expired', 'sentry', \
             'event_alert', 'triggered', 'processed')",
            app.clock.now_ms()
        ),
    )
    .await
    .unwrap();
    let (dir, clock) = app.stop().await;

    let app = spawn_with(AppOptions {
        dir: Some(dir),
        clock: Some(clock),
        ..options(&slack)
    })
    .await;
    let details = stored_details(&app).await;
    assert_eq!(details.len(), 2);
    let filled = details[0].clone().expect("filled in from the kept body");
    assert!(filled.contains(TOP_FRAME), "{filled}");
    assert!(!filled.contains("QUERYSECRET"), "{filled}");
    assert_eq!(details[1], None, "no body, nothing to extract");

    let text = slack_text(&app, &slack).await;
    assert!(text.contains(TOP_FRAME), "{text}");
}
