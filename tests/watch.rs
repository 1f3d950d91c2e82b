//! The watched pipeline (heartbeat, canary, Sentry's 1-second contract) and trading hours
//! (`time_intervals`: rules `during` / `not_during`, `escalate_after_during`,
//! `renotify_at_start`), end to end: the real app on a manual clock, loopback Slack and
//! PagerDuty, the watch and the scheduler stepped by hand.
//!
//! The clock starts at `START_MS`, 2026-05-28 20:26:40 UTC: a Thursday, 16:26 in New York, just
//! after the NYSE close.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use serde_json::{Value, json};
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::*;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Friday 2026-05-29 09:30 in New York (EDT): the next NYSE open after `START_MS`.
const FRIDAY_OPEN_MS: i64 = 1_780_061_400_000;

const NYSE: &str = r#"
time_intervals:
  nyse-regular:
    timezone: America/New_York
    weekdays: ["monday:friday"]
    times: [{ start: "09:30", end: "16:00" }]
    holidays: ["2026-05-25", "2026-07-03"]
    renotify_at_start: [critical]
"#;

fn routing(
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    extra: &str,
    rules: &str,
    critical: &str,
) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
environments:
  production: [production, prod]
rules:
{rules}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall]{critical} }}
storm: {{ enabled: false }}
delivery:
  retry_schedule: [1s]
  send_timeout: 3s
{extra}
"##,
        token = slack.bot_token(),
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

const CRITICAL_RULE: &str = r#"  - name: critical-production-errors
    severity: critical
    when: { environment: production, level: [error, fatal] }"#;

struct World {
    app: TestApp,
    slack: FakeSlack,
    pd: FakePagerDuty,
}

async fn world(extra: &str, rules: &str, critical: &str) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd, extra, rules, critical),
        run_workers: false,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
        ..AppOptions::default()
    })
    .await;
    World { app, slack, pd }
}

/// A production error of issue `issue`, titled `title`; `tags` added to the event's.
fn error_payload(issue: &str, title: &str, tags: &[(&str, &str)]) -> Value {
    let mut v = fixture_json("event_alert.triggered.4.json");
    let e = &mut v["data"]["event"];
    e["issue_id"] = issue.into();
    e["event_id"] = format!("evt-{issue}-{}", fastrand::u64(..)).into();
    e["title"] = title.into();
    e["web_url"] = format!("https://sentry.io/organizations/paiid/issues/{issue}/").into();
    for (k, val) in tags {
        e["tags"].as_array_mut().unwrap().push(json!([k, val]));
    }
    v
}

async fn post(app: &TestApp, body: &Value) -> Value {
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(body).unwrap())
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn deliver_due(app: &TestApp) {
    while app.workers.outbox.drain().await.unwrap() > 0 {
        app.clock.advance(Duration::from_secs(1));
    }
}

async fn check(app: &TestApp) -> paiid_alerts::testing::watch::WatchReport {
    app.workers.watch.check().await.expect("the watch checks")
}

fn slack_said(slack: &FakeSlack) -> String {
    slack
        .requests()
        .iter()
        .map(|r| r.body.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn no_webhook_for_the_heartbeat_window_raises_a_critical_that_escalates_and_then_resolves() {
    let w = world("heartbeat: { expect_within: 6h }", CRITICAL_RULE, "").await;
    let first = post(&w.app, &error_payload("1", "ZeroDivisionError", &[])).await;
    seed::act(
        &w.app,
        first["incident_id"].as_i64().unwrap(),
        "resolve",
        "alice",
        None,
    )
    .await;
    w.app.clock.advance(5 * HOUR);
    assert_eq!(check(&w.app).await.raised, Vec::<&str>::new());
    w.app.clock.advance(HOUR + MIN);
    assert_eq!(check(&w.app).await.raised, vec!["heartbeat"]);
    // Raised once, not at every check.
    assert_eq!(check(&w.app).await.raised, Vec::<&str>::new());
    let watch: Vec<Value> = w
        .app
        .incidents()
        .await
        .into_iter()
        .filter(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .starts_with("No alerts received")
        })
        .collect();
    assert_eq!(watch.len(), 1);
    assert_eq!(watch[0]["severity"], "critical");
    assert!(
        watch[0]["title"]
            .as_str()
            .unwrap()
            .contains("for 6h 1m: is the webhook still subscribed?"),
        "{}",
        watch[0]["title"]
    );
    deliver_due(&w.app).await;
    assert!(slack_said(&w.slack).contains("No alerts received from Sentry"));
    // The normal path: unacknowledged, it escalates.
    w.app.clock.advance(15 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(
        w.pd.events()
            .iter()
            .filter(|e| e["event_action"] == "trigger")
            .count(),
        1
    );
    // Sentry calls again: the watch resolves its alert.
    post(&w.app, &error_payload("1", "ZeroDivisionError", &[])).await;
    assert_eq!(check(&w.app).await.resolved, vec!["heartbeat"]);
    let id = watch[0]["id"].as_i64().unwrap();
    assert_eq!(w.app.incident(id).await["state"], "resolved");
}

#[tokio::test]
async fn the_heartbeat_only_counts_inside_its_interval() {
    let extra = format!("{NYSE}\nheartbeat: {{ expect_within: 2h, during: nyse-regular }}");
    let w = world(&extra, CRITICAL_RULE, "").await;
    post(&w.app, &error_payload("1", "ZeroDivisionError", &[])).await;
    // Thursday evening to Friday's open: quiet, and the market is closed.
    w.app.clock.set(FRIDAY_OPEN_MS - MIN.as_millis() as i64);
    assert!(check(&w.app).await.raised.is_empty());
    // Inside the interval the silence counts, from the open: not the quiet night before.
    w.app.clock.set(FRIDAY_OPEN_MS + MIN.as_millis() as i64);
    assert!(check(&w.app).await.raised.is_empty());
    w.app
        .clock
        .set(FRIDAY_OPEN_MS + (2 * HOUR + MIN).as_millis() as i64);
    assert_eq!(check(&w.app).await.raised, vec!["heartbeat"]);
}

#[tokio::test]
async fn canaries_never_page_and_a_missing_canary_pages_with_the_last_ones_time_and_latency() {
    let w = world("canary: { expect_every: 15m }", CRITICAL_RULE, "").await;
    let mut canary = error_payload("42", "canary", &[("canary", "true")]);
    // Sent three seconds before it reaches us.
    canary["data"]["event"]["timestamp"] = json!((START_MS - 3_000) as f64 / 1000.0);
    let answer = post(&w.app, &canary).await;
    assert_eq!(answer["status"], "recorded", "{answer}");
    assert!(answer["incident_id"].is_null());
    assert!(w.app.incidents().await.is_empty(), "a canary never pages");
    w.app.clock.advance(10 * MIN);
    assert!(check(&w.app).await.raised.is_empty());
    w.app.clock.advance(6 * MIN);
    assert_eq!(check(&w.app).await.raised, vec!["canary"]);
    let incidents = w.app.incidents().await;
    assert_eq!(incidents.len(), 1);
    let title = incidents[0]["title"].as_str().unwrap().to_string();
    assert!(
        title.starts_with("Alert pipeline broken: no canary for 16m"),
        "{title}"
    );
    assert!(title.contains("3s after it was sent"), "{title}");
    // The next canary heals it.
    let mut canary = error_payload("42", "canary", &[("canary", "true")]);
    canary["data"]["event"]["timestamp"] = json!(w.app.clock.now_ms() as f64 / 1000.0);
    post(&w.app, &canary).await;
    assert_eq!(check(&w.app).await.resolved, vec!["canary"]);
}

#[tokio::test]
async fn slow_or_failed_answers_above_the_contract_threshold_raise_a_critical() {
    let w = world(
        "sentry_contract: { max_slow_or_failed: 3, within: 1h }",
        CRITICAL_RULE,
        "",
    )
    .await;
    let now = w.app.clock.now_ms();
    // Three answers over Sentry's one second: at the threshold, not above it.
    for _ in 0..3 {
        w.app
            .state
            .metrics
            .intake_answered(200, Duration::from_millis(1_200), now);
    }
    assert!(check(&w.app).await.raised.is_empty());
    w.app
        .state
        .metrics
        .intake_answered(503, Duration::from_millis(5), now);
    assert_eq!(check(&w.app).await.raised, vec!["contract"]);
    let title = w.app.incidents().await[0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        title.contains("4 answers in 1h 0m were slower than 1 s or failed"),
        "{title}"
    );
    let metrics = w.app.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"paiid_intake_contract_breaches_total{outcome="slow"} 3"#),
        "{metrics}"
    );
    // An hour later the window holds none: resolved.
    w.app.clock.advance(HOUR + MIN);
    assert_eq!(check(&w.app).await.resolved, vec!["contract"]);
}

#[tokio::test]
async fn at_the_market_open_still_open_incidents_are_renotified_in_one_bundled_message_once() {
    let w = world(NYSE, CRITICAL_RULE, "").await;
    let a = post(&w.app, &error_payload("101", "Order router timeout", &[])).await;
    let b = post(&w.app, &error_payload("102", "Quote feed stale", &[])).await;
    let c = post(&w.app, &error_payload("103", "Settled already", &[])).await;
    deliver_due(&w.app).await;
    seed::act(
        &w.app,
        b["incident_id"].as_i64().unwrap(),
        "ack",
        "alice",
        None,
    )
    .await;
    seed::act(
        &w.app,
        c["incident_id"].as_i64().unwrap(),
        "resolve",
        "alice",
        None,
    )
    .await;
    deliver_due(&w.app).await;
    assert_eq!(check(&w.app).await.renotified, 0, "the market is closed");
    let before = w.slack.requests().len();

    w.app.clock.set(FRIDAY_OPEN_MS + 30_000);
    assert_eq!(check(&w.app).await.renotified, 2, "the two still open");
    assert_eq!(check(&w.app).await.renotified, 0, "once per open");
    deliver_due(&w.app).await;
    let posts: Vec<String> = w.slack.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("chat.postMessage") && r.body.contains("Order router timeout"))
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(posts.len(), 1, "one bundled message: {posts:?}");
    assert!(posts[0].contains("Quote feed stale"), "{}", posts[0]);
    assert!(!posts[0].contains("Settled already"));
    let inc = w.app.incident(a["incident_id"].as_i64().unwrap()).await;
    assert!(
        inc["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "retriggered"),
        "{inc}"
    );
}

#[tokio::test]
async fn rules_and_escalation_windows_follow_trading_hours_and_explain_says_which() {
    let rules = r#"  - name: market-hours-errors
    severity: critical
    when: { environment: production, level: [error, fatal], during: nyse-regular }
  - name: after-hours-errors
    severity: critical
    when: { environment: production, level: [error, fatal], not_during: nyse-regular }"#;
    let w = world(NYSE, rules, ", escalate_after_during: { nyse-regular: 5m }").await;
    // After the close: the after-hours rule, the 15-minute window.
    let closed = post(&w.app, &error_payload("201", "After hours", &[])).await;
    let inc = w
        .app
        .incident(closed["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(inc["rule"], "after-hours-errors");
    assert_eq!(inc["policy"]["escalate_after_ms"], 900_000);
    // During the session: the market-hours rule, the 5-minute window.
    w.app.clock.set(FRIDAY_OPEN_MS + HOUR.as_millis() as i64);
    let open = post(&w.app, &error_payload("202", "During the session", &[])).await;
    let inc = w.app.incident(open["incident_id"].as_i64().unwrap()).await;
    assert_eq!(inc["rule"], "market-hours-errors");
    assert_eq!(inc["policy"]["escalate_after_ms"], 300_000);

    let e: Value = w
        .app
        .client
        .post(w.app.url("/api/explain?resource=event_alert"))
        .body(serde_json::to_vec(&error_payload("203", "Explain me", &[])).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["rule"], "market-hours-errors");
    assert_eq!(e["escalation_interval"], "nyse-regular");
    let during = e["rules"][0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["condition"] == "during")
        .cloned()
        .expect("the during condition is traced");
    assert_eq!(during["result"], true);
    assert!(
        during["actual"]
            .as_str()
            .unwrap()
            .starts_with("inside nyse-regular until 2026-05-29 20:00 UTC"),
        "{during}"
    );
    assert!(
        e["summary"]
            .as_str()
            .unwrap()
            .contains("window of nyse-regular"),
        "{}",
        e["summary"]
    );

    // And a lifecycle payload says which lifecycle rule applies.
    let regressed = std::fs::read(repo_path(
        "tests/fixtures/sentry-lifecycle/issue.unresolved.regressed.json",
    ))
    .unwrap();
    let e: Value = w
        .app
        .client
        .post(w.app.url("/api/explain?resource=issue"))
        .body(regressed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        e["lifecycle"].as_str().unwrap().starts_with("regressed:"),
        "{e}"
    );
}
