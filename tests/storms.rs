//! Storm groups: many distinct issues opening on one severity page as one group. The real app
//! with a manual clock, loopback Slack and PagerDuty, a real SMTP server, and the workers
//! stepped by hand (a simulated second at a time), so every count below is exact.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::{Value, json};
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::seed::critical;
use support::smtp::SmtpSink;
use support::*;

const SEC: Duration = Duration::from_secs(1);
const MIN_MS: i64 = 60_000;

#[derive(Clone, Copy, PartialEq)]
enum SlackMode {
    Bot,
    Webhook,
}

/// Criticals (level error/fatal) page Slack and escalate after 15 minutes to PagerDuty and the
/// manager; warnings are high and escalate after an hour. `storm` is the `storm:` section.
fn routing(slack: &FakeSlack, pd: &FakePagerDuty, mode: SlackMode, storm: &str) -> String {
    let slack_channel = match mode {
        SlackMode::Bot => format!(
            r##"{{ type: slack, channel: "#paiid-alerts", bot_token: "{}" }}"##,
            slack.bot_token()
        ),
        SlackMode::Webhook => format!(
            r##"{{ type: slack, channel: "#paiid-alerts", webhook_url: "{}" }}"##,
            slack.webhook_url()
        ),
    };
    format!(
        r##"
channels:
  slack-alerts: {slack_channel}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  eng-manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
rules:
  - name: errors
    severity: critical
    when: {{ level: [error, fatal] }}
  - name: warnings
    severity: high
    when: {{ level: [warning] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email] }}
  high: {{ notify: [slack-alerts], escalate_after: 60m, escalate_to: [pagerduty-oncall] }}
{storm}
delivery:
  retry_schedule: [1s]
  send_timeout: 3s
  slack_update_interval: 30s
"##,
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

struct World {
    app: TestApp,
    slack: FakeSlack,
    pd: FakePagerDuty,
    smtp: SmtpSink,
}

async fn world_with(mode: SlackMode, storm: &str) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    // Our outbox paces Slack itself; the fake's limit runs on real time, the test on clock time.
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd, mode, storm),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            slack_signing_secret: secret("slack-signing-secret"),
            pagerduty_webhook_secret: secret("pd-webhook-secret"),
            ..Secrets::default()
        },
        run_workers: false,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
        ..AppOptions::default()
    })
    .await;
    World {
        app,
        slack,
        pd,
        smtp,
    }
}

async fn world() -> World {
    world_with(SlackMode::Bot, "").await
}

/// Posts one alert for Sentry issue `issue` (event `event`) at `level`; the incident's id.
async fn alert(app: &TestApp, issue: &str, event: &str, level: &str) -> i64 {
    let mut v = critical(issue, event, &format!("Error in issue {issue}"));
    v["data"]["event"]["level"] = level.into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    answer["incident_id"].as_i64().unwrap()
}

/// What the running outbox does in one second: refresh stale counts, send what is due.
async fn one_second(app: &TestApp) {
    app.workers.outbox.enqueue_count_updates().await.unwrap();
    app.workers.outbox.drain().await.unwrap();
    app.clock.advance(SEC);
}

/// Sends everything due, a simulated second at a time.
async fn deliver_due(app: &TestApp) {
    loop {
        app.workers.outbox.enqueue_count_updates().await.unwrap();
        if app.workers.outbox.drain().await.unwrap() == 0 {
            return;
        }
        app.clock.advance(SEC);
    }
}

fn triggers(pd: &FakePagerDuty) -> Vec<Value> {
    pd.events()
        .into_iter()
        .filter(|e| e["event_action"] == "trigger")
        .collect()
}

async fn storm_ids(app: &TestApp) -> Vec<i64> {
    paiid_alerts::testing::column(
        &app.state.store,
        "SELECT id FROM incidents WHERE kind = 'storm' ORDER BY id",
    )
    .await
    .unwrap()
}

async fn state_of(app: &TestApp, id: i64) -> String {
    app.incident(id).await["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// 200 distinct critical issues over 10 s of clock time (50 of them twice): a handful of Slack
/// calls in the first minute, one storm holding every one of them, and when the window expires
/// one PagerDuty trigger and one manager mail.
async fn two_hundred_criticals_in_ten_seconds(mode: SlackMode) {
    let w = world_with(mode, "").await;
    let start = w.app.clock.now_ms();
    let mut ids = Vec::new();
    for i in 0..250 {
        // Every fifth webhook is a second event of an earlier issue.
        let (issue, event) = match i % 5 {
            4 => (format!("storm-{}", ids.len() - 1), format!("evt-{i}-again")),
            _ => (format!("storm-{}", ids.len()), format!("evt-{i}")),
        };
        let id = alert(&w.app, &issue, &event, "error").await;
        if i % 5 != 4 {
            ids.push(id);
        }
        w.app.clock.advance(Duration::from_millis(40));
        if i % 25 == 24 {
            one_second(&w.app).await;
        }
    }
    assert_eq!(ids.len(), 200);
    while w.app.clock.now_ms() < start + MIN_MS {
        one_second(&w.app).await;
    }
    let calls = w.slack.request_count();
    assert!(calls <= 10, "{calls} Slack calls in the first minute");
    // What was queued, whatever the outbox makes of it: five alone, then the storm's card.
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM deliveries WHERE kind = 'opened'")
            .await,
        6
    );

    let storms = storm_ids(&w.app).await;
    assert_eq!(storms.len(), 1, "one storm");
    let storm = storms[0];
    let members = w
        .app
        .scalar(&format!(
            "SELECT COUNT(*) FROM incidents WHERE storm_id = {storm}"
        ))
        .await;
    assert_eq!(members, 200, "every one of them, the first five too");
    let s = w.app.incident(storm).await;
    assert_eq!(s["event_count"], 200, "{s}");
    assert!(
        s["title"]
            .as_str()
            .unwrap()
            .starts_with("Storm: 200 critical incidents"),
        "{s}"
    );
    // Every incident with its exact count: the 50 repeated issues twice, the rest once.
    assert_eq!(w.app.scalar("SELECT COUNT(*) FROM events").await, 250);
    assert_eq!(
        w.app
            .scalar("SELECT SUM(event_count) FROM incidents WHERE kind = 'issue'")
            .await,
        250
    );
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM incidents WHERE kind = 'issue' AND event_count = 2")
            .await,
        50
    );

    // The window of the first incident expires: one page for the group.
    w.app.clock.set(start + 15 * MIN_MS);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    let pages = triggers(&w.pd);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["dedup_key"], format!("paiid-alerts-{storm}-1"));
    let mails = w.smtp.received();
    assert_eq!(mails.len(), 1, "one manager mail");
    assert!(
        mails[0]
            .header("To")
            .unwrap_or_default()
            .contains("eng-manager@paiid.ai")
    );
    assert_eq!(w.app.scalar("SELECT COUNT(*) FROM escalations").await, 1);

    // Later ticks page nobody again.
    w.app.clock.advance(Duration::from_secs(3600));
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd).len(), 1);
}

#[tokio::test]
async fn two_hundred_criticals_in_ten_seconds_page_as_one_storm_bot_mode() {
    two_hundred_criticals_in_ten_seconds(SlackMode::Bot).await;
}

#[tokio::test]
async fn two_hundred_criticals_in_ten_seconds_page_as_one_storm_webhook_mode() {
    two_hundred_criticals_in_ten_seconds(SlackMode::Webhook).await;
}

/// Opens `n` distinct criticals a second apart, delivering as it goes; their ids.
async fn open_criticals(w: &World, prefix: &str, n: usize) -> Vec<i64> {
    open_alerts(w, prefix, n, "error").await
}

/// `n` alerts at `level` for distinct issues `{prefix}-{i}`, a second apart; their incidents.
async fn open_alerts(w: &World, prefix: &str, n: usize, level: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            alert(
                &w.app,
                &format!("{prefix}-{i}"),
                &format!("evt-{prefix}-{i}"),
                level,
            )
            .await,
        );
        one_second(&w.app).await;
    }
    ids
}

async fn slack_click(w: &World, action_id: &str, value: &str) {
    let r = w.app.slack_click(action_id, value).await;
    assert_eq!(r.status(), 200);
}

async fn api(w: &World, id: i64, action: &str) -> Value {
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/{action}")))
        .json(&json!({ "by": "olu" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn acting_on_the_storm_acts_on_every_member_and_on_a_member_on_it_alone() {
    let w = world().await;
    let ids = open_criticals(&w, "grp", 8).await;
    let storm = storm_ids(&w.app).await[0];

    // One member alone: the others and the storm stay as they were.
    api(&w, ids[7], "ack").await;
    assert_eq!(state_of(&w.app, ids[7]).await, "acknowledged");
    assert_eq!(state_of(&w.app, storm).await, "triggered");
    assert_eq!(state_of(&w.app, ids[6]).await, "triggered");

    // The storm through the API: every member.
    let before = w
        .app
        .scalar("SELECT COUNT(*) FROM deliveries WHERE kind = 'acknowledged'")
        .await;
    api(&w, storm, "ack").await;
    for id in &ids {
        let m = w.app.incident(*id).await;
        assert_eq!(m["state"], "acknowledged", "{m}");
    }
    assert_eq!(w.app.incident(ids[0]).await["acknowledged_by"], "olu");
    // Follow-ups: the storm's card and the five members that had their own message; the ones
    // that joined as they opened were told of by the card only.
    let acks: Vec<i64> = paiid_alerts::testing::column(
        &w.app.state.store,
        "SELECT incident_id FROM deliveries WHERE kind = 'acknowledged' ORDER BY incident_id",
    )
    .await
    .unwrap();
    assert_eq!(before, 0);
    let mut expected: Vec<i64> = ids[..5].to_vec();
    expected.push(storm);
    expected.sort();
    assert_eq!(acks, expected);

    // The storm's Resolve button: every member resolved, the storm too.
    slack_click(&w, "resolve", &storm.to_string()).await;
    assert_eq!(state_of(&w.app, storm).await, "resolved");
    for id in &ids {
        assert_eq!(state_of(&w.app, *id).await, "resolved");
        assert_eq!(w.app.incident(*id).await["resolved_via"], "slack");
    }
}

#[tokio::test]
async fn the_storm_slack_button_acknowledges_every_member() {
    let w = world().await;
    let ids = open_criticals(&w, "btn", 7).await;
    let storm = storm_ids(&w.app).await[0];
    slack_click(&w, "ack", &storm.to_string()).await;
    assert_eq!(state_of(&w.app, storm).await, "acknowledged");
    for id in &ids {
        let m = w.app.incident(*id).await;
        assert_eq!(m["state"], "acknowledged", "{m}");
        assert_eq!(m["acknowledged_via"], "slack");
    }
    // Acknowledged in time: nobody is paged, for the storm or for a member.
    w.app.clock.advance(Duration::from_secs(3600));
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
}

#[tokio::test]
async fn resolving_every_member_alone_closes_the_storm() {
    let w = world().await;
    let ids = open_criticals(&w, "one", 6).await;
    let storm = storm_ids(&w.app).await[0];
    for id in &ids[..5] {
        api(&w, *id, "resolve").await;
    }
    assert_eq!(state_of(&w.app, storm).await, "triggered");
    api(&w, ids[5], "resolve").await;
    let s = w.app.incident(storm).await;
    assert_eq!(s["state"], "resolved", "{s}");
    assert_eq!(s["resolved_by"], "paiid-alerts");
}

#[tokio::test]
async fn a_member_raised_above_the_storm_pages_alone_and_leaves_it() {
    let w = world().await;
    // Seven warnings: high, a storm of seven.
    let ids = open_alerts(&w, "warn", 7, "warning").await;
    let storm = storm_ids(&w.app).await[0];
    assert_eq!(w.app.incident(storm).await["event_count"], 7);
    deliver_due(&w.app).await;
    let messages = w.slack.messages().len();
    assert_eq!(messages, 6, "five alone, then the storm's card");
    let storm_card = |w: &World| {
        w.slack
            .messages()
            .into_iter()
            .find_map(|m| m.text.filter(|t| t.contains("Storm:")))
            .expect("the storm's card")
    };
    w.app.clock.advance(Duration::from_secs(31));
    deliver_due(&w.app).await;
    assert!(
        storm_card(&w).contains("Storm: 7 high incidents"),
        "{}",
        storm_card(&w)
    );

    // The last member's issue turns into errors: critical, above its high storm.
    let raised = ids[6];
    assert_eq!(
        alert(&w.app, "warn-6", "evt-warn-6-error", "error").await,
        raised
    );
    let m = w.app.incident(raised).await;
    assert_eq!(m["severity"], "critical");
    let members = w
        .app
        .scalar(&format!(
            "SELECT COUNT(*) FROM incidents WHERE storm_id = {storm}"
        ))
        .await;
    assert_eq!(members, 6, "it left the storm");
    assert_eq!(w.app.incident(storm).await["event_count"], 6);
    deliver_due(&w.app).await;
    assert_eq!(w.slack.messages().len(), messages + 1, "its own message");
    // The storm's card counts one member fewer once its update interval has passed.
    w.app.clock.advance(Duration::from_secs(31));
    deliver_due(&w.app).await;
    assert!(
        storm_card(&w).contains("Storm: 6 high incidents"),
        "{}",
        storm_card(&w)
    );

    // Its own escalation, 15 minutes after the raise: its own PagerDuty incident. The storm's
    // hour is not up.
    let raised_at = w.app.clock.now_ms();
    w.app.clock.set(raised_at + 15 * MIN_MS);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    let pages = triggers(&w.pd);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["dedup_key"], format!("paiid-alerts-{raised}-1"));
}

#[tokio::test]
async fn storms_off_pages_one_by_one() {
    let w = world_with(SlackMode::Bot, "storm: { enabled: false }").await;
    open_criticals(&w, "off", 8).await;
    deliver_due(&w.app).await;
    assert!(storm_ids(&w.app).await.is_empty());
    assert_eq!(w.slack.messages().len(), 8, "one message each");
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM incidents WHERE storm_id IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn threshold_and_window_are_honoured() {
    let w = world_with(SlackMode::Bot, "storm: { threshold: 2, window: 1m }").await;
    // Three, each more than a minute after the one before: never more than two in the window.
    for i in 0..3 {
        alert(
            &w.app,
            &format!("slow-{i}"),
            &format!("evt-slow-{i}"),
            "error",
        )
        .await;
        w.app.clock.advance(Duration::from_secs(61));
    }
    assert!(storm_ids(&w.app).await.is_empty());
    // Then three within the minute: the third forms a storm of those still waiting.
    for i in 0..3 {
        alert(
            &w.app,
            &format!("fast-{i}"),
            &format!("evt-fast-{i}"),
            "error",
        )
        .await;
        w.app.clock.advance(SEC);
    }
    let storms = storm_ids(&w.app).await;
    assert_eq!(storms.len(), 1);
    // The last slow one opened 61 s before the first fast one: outside the 1-minute window.
    let members = w
        .app
        .scalar(&format!(
            "SELECT COUNT(*) FROM incidents WHERE storm_id = {}",
            storms[0]
        ))
        .await;
    assert_eq!(members, 3);
}

#[tokio::test]
async fn the_storm_escalates_once_across_a_restart() {
    let w = world().await;
    let start = w.app.clock.now_ms();
    open_criticals(&w, "rst", 7).await;
    let storm = storm_ids(&w.app).await[0];
    let World {
        app,
        slack,
        pd,
        smtp,
    } = w;
    let (dir, clock) = app.stop().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd, SlackMode::Bot, ""),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        run_workers: false,
        dir: Some(dir),
        clock: Some(clock),
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
    })
    .await;
    // More criticals after the restart still join the stored storm.
    let late = alert(&app, "rst-late", "evt-rst-late", "error").await;
    let joined = app
        .scalar(&format!("SELECT storm_id FROM incidents WHERE id = {late}"))
        .await;
    assert_eq!(joined, storm);
    app.clock.set(start + 15 * MIN_MS);
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 0);
    deliver_due(&app).await;
    let pages = triggers(&pd);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["dedup_key"], format!("paiid-alerts-{storm}-1"));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM escalations").await, 1);
}

#[tokio::test]
async fn members_resolved_in_sentry_close_the_storm_with_the_last() {
    let w = world().await;
    let ids = open_criticals(&w, "sen", 6).await;
    let storm = storm_ids(&w.app).await[0];
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            state_of(&w.app, storm).await,
            "triggered",
            "{i} resolved so far"
        );
        let mut v = fixture_json("issue.resolved.1.json");
        v["data"]["issue"]["id"] = format!("sen-{i}").into();
        let r = w
            .app
            .post_sentry(Some("issue"), &serde_json::to_vec(&v).unwrap())
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(state_of(&w.app, *id).await, "resolved");
    }
    let s = w.app.incident(storm).await;
    assert_eq!(s["state"], "resolved", "{s}");
    assert_eq!(s["resolved_by"], "paiid-alerts");
    assert_eq!(s["resolved_via"], "sentry");
}

#[tokio::test]
async fn acknowledging_the_storm_in_pagerduty_acknowledges_every_member() {
    let w = world().await;
    let start = w.app.clock.now_ms();
    let ids = open_criticals(&w, "pd", 7).await;
    let storm = storm_ids(&w.app).await[0];
    w.app.clock.set(start + 15 * MIN_MS);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    let key = format!("paiid-alerts-{storm}-1");
    assert_eq!(triggers(&w.pd)[0]["dedup_key"], key);

    let body = serde_json::to_vec(&json!({
        "event": {
            "id": "01STORMACK",
            "event_type": "incident.acknowledged",
            "resource_type": "incident",
            "occurred_at": "2026-11-29T10:00:00Z",
            "agent": { "id": "PAGENT1", "summary": "Olu On-Call", "type": "user_reference" },
            "data": { "id": "Q1STORM", "type": "incident", "status": "acknowledged",
                      "incident_key": key }
        }
    }))
    .unwrap();
    let r = w
        .app
        .client
        .post(w.app.url("/webhooks/pagerduty"))
        .header(
            "X-PagerDuty-Signature",
            format!("v1={}", sign(b"pd-webhook-secret", &body)),
        )
        .header("X-Webhook-Id", "wh-storm")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(state_of(&w.app, storm).await, "acknowledged");
    for id in &ids {
        let m = w.app.incident(*id).await;
        assert_eq!(m["state"], "acknowledged", "{m}");
        assert_eq!(m["acknowledged_by"], "Olu On-Call");
        assert_eq!(m["acknowledged_via"], "pagerduty");
    }
}

#[tokio::test]
async fn a_storm_that_paged_takes_no_latecomers_and_pages_once() {
    let w = world().await;
    let start = w.app.clock.now_ms();
    open_criticals(&w, "early", 7).await;
    let storm = storm_ids(&w.app).await[0];
    // Its deadline comes while the storm is still gathering: one a minute keeps it in window.
    for i in 0..15 {
        w.app.clock.set(start + (i + 1) * MIN_MS);
        alert(
            &w.app,
            &format!("steady-{i}"),
            &format!("evt-steady-{i}"),
            "error",
        )
        .await;
    }
    w.app.clock.set(start + 15 * MIN_MS);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    // One more a minute later: the storm paged, so it opens alone (or in a new storm).
    w.app.clock.set(start + 16 * MIN_MS);
    let late = alert(&w.app, "late", "evt-late", "error").await;
    let joined = w
        .app
        .scalar(&format!(
            "SELECT COALESCE(storm_id, 0) FROM incidents WHERE id = {late}"
        ))
        .await;
    assert_ne!(joined, storm, "a storm that paged takes no more members");
    // An hour on, every deadline has passed: the storm paged once, and nobody went unpaged.
    w.app.clock.set(start + 60 * MIN_MS);
    while w.app.workers.scheduler.fire_due().await.unwrap() > 0 {}
    deliver_due(&w.app).await;
    let keys: Vec<String> = triggers(&w.pd)
        .iter()
        .map(|e| e["dedup_key"].as_str().unwrap().to_string())
        .collect();
    let storm_pages = keys
        .iter()
        .filter(|k| k.starts_with(&format!("paiid-alerts-{storm}-")))
        .count();
    assert_eq!(storm_pages, 1, "{keys:?}");
    let unpaged = w
        .app
        .scalar(
            "SELECT COUNT(*) FROM incidents i WHERE kind = 'issue' AND state = 'triggered' \
             AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = \
             COALESCE(i.storm_id, i.id))",
        )
        .await;
    assert_eq!(unpaged, 0, "every incident paged, alone or through a storm");
    let mails = w.smtp.wait_for(keys.len(), Duration::from_secs(10)).await;
    assert!(mails.len() >= keys.len());
}

#[tokio::test]
async fn a_storm_whose_members_all_left_closes_and_never_pages() {
    let w = world().await;
    let start = w.app.clock.now_ms();
    // Six warnings: high, a storm of six.
    let ids = open_alerts(&w, "up", 6, "warning").await;
    let storm = storm_ids(&w.app).await[0];
    assert_eq!(w.app.incident(storm).await["event_count"], 6);
    // Each turns into errors (critical, above the storm): each leaves and pages alone.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            alert(
                &w.app,
                &format!("up-{i}"),
                &format!("evt-up-{i}-err"),
                "error"
            )
            .await,
            *id
        );
        one_second(&w.app).await;
    }
    let s = w.app.incident(storm).await;
    assert_eq!(s["state"], "resolved", "no member left open: {s}");
    assert_eq!(
        w.app
            .scalar(&format!(
                "SELECT COUNT(*) FROM incidents WHERE storm_id = {storm}"
            ))
            .await,
        0
    );
    // Past the storm's hour: the six page alone, the storm not at all.
    w.app.clock.set(start + 61 * MIN_MS);
    while w.app.workers.scheduler.fire_due().await.unwrap() > 0 {}
    deliver_due(&w.app).await;
    let keys: Vec<String> = triggers(&w.pd)
        .iter()
        .map(|e| e["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k == &format!("paiid-alerts-{storm}-1")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn after_a_storm_is_acknowledged_the_next_incident_pages_alone() {
    let w = world().await;
    open_criticals(&w, "ackd", 8).await;
    let storm = storm_ids(&w.app).await[0];
    api(&w, storm, "ack").await;
    // Within the window, but the storm's members are in hand: not a storm of one.
    let next = alert(&w.app, "after-ack", "evt-after-ack", "error").await;
    let m = w.app.incident(next).await;
    assert_eq!(m["storm_id"], Value::Null, "{m}");
    assert_eq!(storm_ids(&w.app).await, vec![storm], "no new storm");
}

/// A storm whose row cannot be read (here its frozen policy) cannot page for its members: when
/// it falls due they leave it and each pages on its own, rather than nobody being paged.
#[tokio::test]
async fn members_of_a_storm_that_cannot_be_read_page_on_their_own() {
    let w = world().await;
    let start = w.app.clock.now_ms();
    open_criticals(&w, "lost", 8).await;
    let storm = storm_ids(&w.app).await[0];
    let in_storm = format!("SELECT COUNT(*) FROM incidents WHERE storm_id = {storm}");
    let members = w.app.scalar(&in_storm).await;
    assert!(members >= 3, "{members} members");
    deliver_due(&w.app).await;
    paiid_alerts::testing::execute(
        &w.app.state.store,
        &format!("UPDATE incidents SET policy = '{{}}' WHERE id = {storm}"),
    )
    .await
    .unwrap();

    w.app.clock.set(start + 16 * MIN_MS);
    // The pass that finds the storm unreadable releases its members; the next one fires them.
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(w.app.scalar(&in_storm).await, 0, "nobody is left in it");
    let fired = w.app.workers.scheduler.fire_due().await.unwrap();
    assert_eq!(fired as i64, members, "each member escalates on its own");
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(
        w.app.scalar("SELECT COUNT(*) FROM escalations").await,
        members,
        "once each"
    );
    deliver_due(&w.app).await;
    let keys: Vec<String> = triggers(&w.pd)
        .iter()
        .map(|e| e["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len() as i64, members, "{keys:?}");
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("paiid-alerts-{storm}-"))),
        "{keys:?}"
    );
}
