//! Acknowledge from anywhere, escalate exactly once, resolve with a post-mortem: the real app
//! with a manual clock (15-minute windows pass in milliseconds), loopback Slack and PagerDuty
//! that enforce their contracts, and a real SMTP server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::{Value, json};
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

const MIN: Duration = Duration::from_secs(60);

fn routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  trading-ops-email: {{ type: email, to: ["trading-ops@paiid.ai"] }}
  eng-manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email] }}
delivery:
  retry_schedule: [1s]
  send_timeout: 3s
"##,
        token = slack.bot_token(),
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

async fn world(run_workers: bool) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    // Escalation tests post several Slack messages within a second: pacing is tested elsewhere.
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            slack_signing_secret: secret("slack-signing-secret"),
            pagerduty_webhook_secret: secret("pd-webhook-secret"),
            ..Secrets::default()
        },
        run_workers,
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

async fn open_critical(app: &TestApp, issue: &str) -> i64 {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = format!("evt-{issue}").into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

fn triggers(pd: &FakePagerDuty) -> usize {
    pd.events()
        .iter()
        .filter(|e| e["event_action"] == "trigger")
        .count()
}

/// Sends everything due, letting the manual clock run a second at a time so that our own
/// per-channel rate limit (one Slack message a second) lets each message through. Returns how
/// many rows were attempted (a row held back by the limit counts each time it is tried).
async fn deliver_due(app: &TestApp) -> usize {
    let mut total = 0;
    loop {
        let n = app.workers.outbox.drain().await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
        app.clock.advance(Duration::from_secs(1));
    }
}

/// The signed Acknowledge link from the Slack message.
fn ack_link(slack: &FakeSlack) -> String {
    let body = slack.messages()[0].body.to_string();
    let start = body
        .find("/ack/")
        .expect("an ack link in the Slack message");
    let from = body[..start].rfind("http").unwrap();
    let end = body[start..].find('"').unwrap() + start;
    body[from..end].to_string()
}

#[tokio::test]
async fn unacknowledged_critical_escalates_exactly_once() {
    // Workers stepped by hand, so that "nothing fired" is the scheduler's answer, not a guess
    // after a sleep. (The running scheduler is exercised by the PagerDuty acknowledgement test.)
    let w = world(false).await;
    let scheduler = &w.app.workers.scheduler;
    let id = open_critical(&w.app, "900001").await;
    let opened = w.app.clock.now_ms();
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1);

    w.app.clock.advance(14 * MIN);
    assert_eq!(
        scheduler.fire_due().await.unwrap(),
        0,
        "not before the window"
    );
    assert_eq!(w.app.workers.outbox.drain().await.unwrap(), 0);
    assert_eq!(triggers(&w.pd), 0);

    // The window counts from the opening, not from the deliveries above.
    w.app.clock.set(opened + 15 * 60_000);
    assert_eq!(scheduler.fire_due().await.unwrap(), 1);
    assert!(deliver_due(&w.app).await >= 2, "PagerDuty and the email");
    assert_eq!(triggers(&w.pd), 1);
    // The SMTP sink stores a message before it accepts it: what it holds now is final.
    let mails = w.smtp.received();
    assert_eq!(mails.len(), 1);
    let to = mails[0].header("To").unwrap_or_default().to_string();
    assert!(to.contains("eng-manager@paiid.ai"), "{to}");
    let text = mails[0].everything().to_lowercase();
    assert!(text.contains("escalat"), "says it is an escalation");
    assert!(text.contains("/ack/"), "carries the ack link");

    // Later ticks and more time change nothing.
    w.app.clock.advance(60 * MIN);
    assert_eq!(scheduler.fire_due().await.unwrap(), 0, "fired once only");
    assert_eq!(
        w.app.workers.outbox.drain().await.unwrap(),
        0,
        "nothing to send"
    );
    assert_eq!(triggers(&w.pd), 1);
    assert_eq!(w.smtp.received().len(), 1);
    let inc = w.app.incident(id).await;
    assert_eq!(inc["escalations_fired"], 1);
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["opened", "escalated"]);
    assert_eq!(w.app.scalar("SELECT COUNT(*) FROM escalations").await, 1);
    assert_eq!(
        w.app.scalar("SELECT lateness_ms FROM escalations").await,
        0,
        "lateness is recorded"
    );
}

#[tokio::test]
async fn ack_via_link_before_the_window_stops_escalation_and_get_changes_nothing() {
    let w = world(false).await;
    let id = open_critical(&w.app, "900002").await;
    deliver_due(&w.app).await;
    assert_eq!(w.slack.messages().len(), 1);
    let link = ack_link(&w.slack);

    // Unfurlers and mail scanners GET every link: that must not acknowledge.
    let page = w.app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\"") && !html.contains("<script"),
        "a confirmation form, no script"
    );
    assert_eq!(
        w.app.incident(id).await["state"],
        "triggered",
        "GET changed nothing"
    );

    let r = w
        .app
        .client
        .post(&link)
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Acknowledged"));
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acknowledged_by"], "ana");
    assert_eq!(inc["acknowledged_via"], "link");

    // Acknowledging again is a success page naming who did it.
    let again = w.app.client.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("Already acknowledged by ana")
    );

    // Slack shows the acknowledgement: the message updated and a thread reply.
    deliver_due(&w.app).await;
    let m = w
        .slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .expect("the alert message");
    assert!(m.updates >= 1, "{m:?}");
    assert!(m.body.to_string().contains("ana"), "{}", m.body);
    assert!(!w.slack.thread_replies(&m.ts).is_empty(), "a thread reply");

    w.app.clock.advance(30 * MIN);
    assert_eq!(
        w.app.workers.scheduler.fire_due().await.unwrap(),
        0,
        "nothing escalated"
    );
    assert_eq!(w.app.workers.outbox.drain().await.unwrap(), 0);
    assert_eq!(triggers(&w.pd), 0);
    assert!(w.smtp.received().is_empty());
}

#[tokio::test]
async fn tampered_forged_and_expired_links_change_nothing() {
    let w = world(true).await;
    let id = open_critical(&w.app, "900003").await;
    eventually(Duration::from_secs(5), || async {
        (w.slack.messages().len() == 1).then_some(())
    })
    .await;
    let link = ack_link(&w.slack);
    let (base, token) = link.split_once("/ack/").unwrap();
    let (payload, mac) = token.split_once('.').unwrap();
    // The first character carries 6 bits of the MAC (the last one partly only padding bits).
    let first = mac.chars().next().unwrap();
    let flipped = format!("{}{}", if first == 'A' { 'B' } else { 'A' }, &mac[1..]);
    for (bad, status) in [
        (format!("{base}/ack/{payload}.{flipped}"), 403),
        (format!("{base}/ack/garbage"), 400),
        (format!("{base}/ack/{}x.{mac}", payload), 403),
    ] {
        let r = w.app.client.post(&bad).send().await.unwrap();
        assert_eq!(r.status(), status, "{bad}");
    }
    w.app.clock.advance(Duration::from_secs(8 * 86_400));
    let r = w.app.client.post(&link).send().await.unwrap();
    assert_eq!(r.status(), 410, "expired");
    assert_ne!(w.app.incident(id).await["state"], "acknowledged");
}

fn pd_webhook(event_type: &str, incident_key: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": {
            "id": format!("01E{event_type}{incident_key}"),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-11-29T10:00:00Z",
            "agent": { "id": "PAGENT1", "summary": "Olu On-Call", "type": "user_reference" },
            "data": { "id": "Q1PDINCIDENT", "type": "incident", "status": "acknowledged", "incident_key": incident_key,
                      "html_url": "https://paiid.pagerduty.com/incidents/Q1PDINCIDENT" }
        }
    }))
    .unwrap()
}

async fn post_pd(app: &TestApp, body: &[u8], sig: &str, webhook_id: &str) -> reqwest::Response {
    app.client
        .post(app.url("/webhooks/pagerduty"))
        .header("X-PagerDuty-Signature", sig)
        .header("X-Webhook-Id", webhook_id)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ack_via_pagerduty_stops_escalation_and_is_not_echoed() {
    // The running workers: the scheduler wakes on the manual clock's jump and fires.
    let w = world(true).await;
    let id = open_critical(&w.app, "900004").await;
    w.app.clock.advance(15 * MIN);
    eventually(Duration::from_secs(5), || async {
        (triggers(&w.pd) == 1).then_some(())
    })
    .await;
    let key = format!("paiid-alerts-{id}-1");

    let ping =
        serde_json::to_vec(&json!({"event": {"id": "p1", "event_type": "pagey.ping", "data": {}}}))
            .unwrap();
    let r = post_pd(
        &w.app,
        &ping,
        &format!("v1={}", sign(b"pd-webhook-secret", &ping)),
        "ping-1",
    )
    .await;
    assert_eq!(r.status(), 200);

    let body = pd_webhook("incident.acknowledged", &key);
    let r = post_pd(&w.app, &body, "v1=00ff", "wh-1").await;
    assert_eq!(r.status(), 401, "bad signature");
    // Two signatures (secret rotation): one matches.
    let sig = format!("v1=deadbeef,v1={}", sign(b"pd-webhook-secret", &body));
    let r = post_pd(&w.app, &body, &sig, "wh-1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "acknowledged");
    let r = post_pd(&w.app, &body, &sig, "wh-1").await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "duplicate",
        "deduplicated on X-Webhook-Id"
    );
    // Events about incidents this service does not have get a 2xx, or PagerDuty would retry
    // them and in the end disable the subscription.
    for (n, key) in ["paiid-alerts-999999-1", "someone-elses-key"]
        .iter()
        .enumerate()
    {
        // Another PagerDuty incident: its own id, not the one stored for ours.
        let other = String::from_utf8(pd_webhook("incident.resolved", key))
            .unwrap()
            .replace("Q1PDINCIDENT", "Q9OTHER")
            .into_bytes();
        let sig = format!("v1={}", sign(b"pd-webhook-secret", &other));
        let r = post_pd(&w.app, &other, &sig, &format!("wh-other-{n}")).await;
        assert_eq!(r.status(), 200, "{key}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["status"],
            "unknown_incident"
        );
    }

    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acknowledged_by"], "Olu On-Call");
    assert_eq!(inc["acknowledged_via"], "pagerduty");
    // PagerDuty is not told what it just told us: the acknowledgement committed its
    // deliveries with its state change, and none of them is for PagerDuty.
    let pd_rows: Vec<(String, String)> = paiid_alerts::testing::fetch_all(
        &w.app.state.store,
        "SELECT kind, status FROM deliveries WHERE channel = 'pagerduty-oncall' ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(
        pd_rows.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["escalation"],
        "no acknowledge queued for PagerDuty: {pd_rows:?}"
    );
    // Slack hears about it. The clock runs a second per look, as our Slack rate limit (one
    // message a second per channel) follows it.
    eventually(Duration::from_secs(5), || async {
        w.app.clock.advance(Duration::from_secs(1));
        let m = w
            .slack
            .messages()
            .into_iter()
            .find(|m| m.thread_ts.is_none())?;
        m.body.to_string().contains("Olu On-Call").then_some(())
    })
    .await;
    assert!(
        w.pd.events().iter().all(|e| e["event_action"] == "trigger"),
        "no acknowledge echoed to PagerDuty"
    );
}

#[tokio::test]
async fn slack_button_acknowledges_with_a_verified_signature() {
    let w = world(true).await;
    let id = open_critical(&w.app, "900005").await;
    let payload = json!({
        "type": "block_actions",
        "user": { "id": "U123", "username": "ana", "name": "ana" },
        "actions": [ { "action_id": "open_sentry", "value": null }, { "action_id": "ack", "value": id.to_string() } ]
    });
    let form = format!("payload={}", urlencode(&payload.to_string()));
    let ts = (w.app.clock.now_ms() / 1000).to_string();
    let post = |sig: String, ts: String| {
        w.app
            .client
            .post(w.app.url("/slack/interactions"))
            .header("X-Slack-Request-Timestamp", ts)
            .header("X-Slack-Signature", sig)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };
    let good = format!(
        "v0={}",
        sign(
            b"slack-signing-secret",
            format!("v0:{ts}:{form}").as_bytes()
        )
    );
    let r = post("v0=0000".into(), ts.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let stale_ts = (w.app.clock.now_ms() / 1000 - 400).to_string();
    let stale = format!(
        "v0={}",
        sign(
            b"slack-signing-secret",
            format!("v0:{stale_ts}:{form}").as_bytes()
        )
    );
    assert_eq!(
        post(stale, stale_ts).await.unwrap().status(),
        401,
        "replayed after 5 minutes"
    );
    assert_eq!(w.app.incident(id).await["state"], "triggered");

    let r = post(good, ts).await.unwrap();
    assert_eq!(r.status(), 200);
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acknowledged_by"], "ana");
    assert_eq!(inc["acknowledged_via"], "slack");
}

#[tokio::test]
async fn a_thousand_incidents_due_at_once_each_escalate_once_even_with_racing_ticks() {
    // One page per incident is what this counts: storm groups off.
    let w = world_without_storms(None, None).await;
    let app = Arc::new(w.app);
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..1000 {
        let app = app.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            open_critical(&app, &format!("7{i:05}")).await;
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(
        app.scalar("SELECT COUNT(DISTINCT next_escalation_at) FROM incidents")
            .await,
        1,
        "all due at the same moment"
    );
    app.clock.advance(15 * MIN);
    let (a, b) = tokio::join!(
        app.workers.scheduler.fire_due(),
        app.workers.scheduler.fire_due()
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1000);
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM escalations").await, 1000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM deliveries WHERE kind = 'escalation'")
            .await,
        2000
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM incidents WHERE escalation_step = 1")
            .await,
        1000
    );
}

#[tokio::test]
async fn resolve_posts_the_post_mortem_with_correct_durations() {
    let w = world(false).await;
    let id = open_critical(&w.app, "900006").await;
    assert_eq!(w.app.workers.outbox.drain().await.unwrap(), 1);
    assert_eq!(w.slack.messages().len(), 1);
    w.app.clock.advance(Duration::from_secs(4 * 60 + 10));
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/ack")))
        .json(&json!({"by": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    w.app.clock.advance(Duration::from_secs(25 * 60 + 50));
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/note")))
        .json(&json!({"by": "ana", "note": "Tradier quote cache expired during market open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/resolve")))
        .json(&json!({"by": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "resolved");

    deliver_due(&w.app).await;
    let summary = w
        .slack
        .messages()
        .into_iter()
        .map(|m| m.body.to_string())
        .find(|b| {
            b.to_lowercase().contains("post-mortem") || b.to_lowercase().contains("postmortem")
        })
        .expect("a post-mortem in Slack");
    for expected in [
        "4m 10s",
        "30m 0s",
        "ana",
        "Tradier quote cache expired during market open",
    ] {
        assert!(
            summary.contains(expected),
            "post-mortem lacks {expected}: {summary}"
        );
    }
    // Resolution stopped the timer: nothing escalates later.
    w.app.clock.advance(60 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(w.app.workers.outbox.drain().await.unwrap(), 0);
    assert_eq!(triggers(&w.pd), 0);
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/ack")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "`by` is required");
}

#[tokio::test]
async fn metrics_show_a_stuck_scheduler_and_outbox() {
    // Workers off: nothing sends and nothing fires, as when they are stuck.
    let w = world(false).await;
    open_critical(&w.app, "900009").await;
    w.app.clock.advance(20 * MIN);
    let text = w
        .app
        .client
        .get(w.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "paiid_incidents_open{state=\"triggered\",severity=\"critical\"} 1",
        "paiid_outbox_deliveries{channel=\"slack-alerts\",status=\"pending\"} 1",
        // The Slack post was due at intake, 20 minutes ago.
        "paiid_outbox_lag_seconds 1200.0",
        "paiid_escalations_pending 1",
        // Due 15 minutes after opening: 5 minutes overdue.
        "paiid_escalation_overdue_seconds 300.0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn a_test_alert_never_pages_on_call() {
    // The real policy: critical escalates to PagerDuty and the manager after 15 minutes.
    let w = world(false).await;
    let r = w
        .app
        .client
        .post(w.app.url("/api/test-alert"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    deliver_due(&w.app).await;
    assert!(!w.slack.messages().is_empty());
    let inc = w.app.incident(id).await;
    assert!(inc["next_escalation_at"].is_null(), "{inc}");
    w.app.clock.advance(60 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(w.app.workers.outbox.drain().await.unwrap(), 0);
    assert_eq!(triggers(&w.pd), 0, "no page for a drill");
    assert!(w.smtp.received().is_empty(), "no manager email either");
    assert_eq!(w.app.scalar("SELECT COUNT(*) FROM escalations").await, 0);
}

async fn slack_click(w: &World, action_id: &str, value: &str) -> Value {
    let r = w.app.slack_click(action_id, value).await;
    assert_eq!(r.status(), 200, "Slack is always answered 200");
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_button_from_an_earlier_occurrence_does_not_act_on_the_new_one() {
    let w = world(false).await;
    let id = open_critical(&w.app, "900010").await;
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/resolve")))
        .json(&json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Sentry sees it again: episode 2, paging afresh.
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = "900010".into();
    v["data"]["event"]["event_id"] = "evt-900010-again".into();
    w.app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    let inc = w.app.incident(id).await;
    assert_eq!(
        (inc["episode"].as_i64(), inc["state"].as_str()),
        (Some(2), Some("triggered"))
    );
    let due = inc["next_escalation_at"].clone();

    // Someone clicks Acknowledge on episode 1's card.
    let answer = slack_click(&w, "ack", &format!("{id}:1")).await;
    assert_eq!(answer["handled"][0]["result"], "stale", "{answer}");
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered", "episode 2 is not acknowledged");
    assert_eq!(
        inc["next_escalation_at"], due,
        "its escalation still stands"
    );

    // The API refuses the same, when told which occurrence it means.
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/ack")))
        .json(&json!({ "by": "ana", "episode": 1, "note": "about the old one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        w.app.incident(id).await["root_cause"].is_null(),
        "nor is its note written"
    );

    let answer = slack_click(&w, "ack", "999999:1").await;
    assert_eq!(
        answer["handled"][0]["result"], "unknown_incident",
        "{answer}"
    );

    // The current card's button works.
    let answer = slack_click(&w, "ack", &format!("{id}:2")).await;
    assert_eq!(answer["handled"][0]["result"], "acknowledged", "{answer}");
    assert_eq!(w.app.incident(id).await["state"], "acknowledged");
}

/// Makes every insert of a `kind` entry into the timeline fail ("injected failure"), with a
/// trigger called `name`, in each backend's own words.
async fn fail_timeline_inserts(app: &TestApp, name: &str, kind: &str) {
    let store = &app.state.store;
    match test_database() {
        TestDatabase::Sqlite => {
            paiid_alerts::testing::execute(
                store,
                &format!(
                    "CREATE TRIGGER {name} BEFORE INSERT ON timeline WHEN NEW.kind = '{kind}' \
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                ),
            )
            .await
            .unwrap();
        }
        TestDatabase::Postgres(_) => {
            paiid_alerts::testing::execute(
                store,
                &format!(
                    "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                ),
            )
            .await
            .unwrap();
            paiid_alerts::testing::execute(
                store,
                &format!(
                    "CREATE TRIGGER {name} BEFORE INSERT ON timeline FOR EACH ROW \
                     WHEN (NEW.kind = '{kind}') EXECUTE FUNCTION {name}()"
                ),
            )
            .await
            .unwrap();
        }
    }
}

/// Removes the trigger [`fail_timeline_inserts`] made.
async fn drop_timeline_trigger(app: &TestApp, name: &str) {
    let sql = match test_database() {
        TestDatabase::Sqlite => format!("DROP TRIGGER {name}"),
        TestDatabase::Postgres(_) => format!("DROP TRIGGER {name} ON timeline"),
    };
    paiid_alerts::testing::execute(&app.state.store, &sql)
        .await
        .unwrap();
}

/// A PagerDuty event's writes (the PagerDuty incident id, the state change, the record of its
/// id) commit together: when the change fails half-way nothing of it stays, so PagerDuty's retry
/// is handled in full instead of finding a half-applied event.
#[tokio::test]
async fn pagerduty_event_is_one_transaction() {
    let w = world(false).await;
    let id = open_critical(&w.app, "900021").await;
    let key = format!("paiid-alerts-{id}-1");
    // A failure in the middle of the change: writing the acknowledgement to the timeline aborts.
    fail_timeline_inserts(&w.app, "fail_ack", "acknowledged").await;
    let body = pd_webhook("incident.acknowledged", &key);
    let sig = format!("v1={}", sign(b"pd-webhook-secret", &body));
    let r = post_pd(&w.app, &body, &sig, "wh-tx").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM incidents WHERE pagerduty_incident_id IS NOT NULL")
            .await,
        0,
        "the PagerDuty incident id was written outside the failed change"
    );
    assert_eq!(
        w.app.scalar("SELECT COUNT(*) FROM inbound_webhooks").await,
        0,
        "the event was recorded as handled"
    );
    assert_eq!(w.app.incident(id).await["state"], "triggered");

    // PagerDuty's retry of the same event is handled, not answered `duplicate`.
    drop_timeline_trigger(&w.app, "fail_ack").await;
    let r = post_pd(&w.app, &body, &sig, "wh-tx").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "acknowledged");
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM incidents WHERE pagerduty_incident_id = 'Q1PDINCIDENT'")
            .await,
        1
    );
    assert_eq!(
        w.app.scalar("SELECT COUNT(*) FROM inbound_webhooks").await,
        1
    );
    let r = post_pd(&w.app, &body, &sig, "wh-tx").await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");
}

/// A root-cause note sent with a resolution is written in the resolution's transaction: when the
/// resolution fails, the note is not left behind as if the incident had been closed with it.
#[tokio::test]
async fn api_note_given_with_a_resolve_commits_with_it() {
    let w = world(false).await;
    let id = open_critical(&w.app, "900022").await;
    fail_timeline_inserts(&w.app, "fail_resolve", "resolved").await;
    let resolve = || {
        w.app
            .client
            .post(w.app.url(&format!("/api/incidents/{id}/resolve")))
            .json(&json!({"by": "ana", "note": "expired quote cache"}))
            .send()
    };
    let r = resolve().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert_eq!(
        inc["root_cause"],
        Value::Null,
        "note kept from a failed resolve"
    );
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM timeline WHERE kind = 'note'")
            .await,
        0
    );

    drop_timeline_trigger(&w.app, "fail_resolve").await;
    let r = resolve().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "resolved");
    let inc = w.app.incident(id).await;
    assert_eq!(inc["root_cause"], "expired quote cache");
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["kind"].as_str())
        .collect();
    let note = kinds.iter().position(|k| *k == "note");
    let resolved = kinds.iter().position(|k| *k == "resolved");
    assert!(
        note.is_some() && note < resolved,
        "the note comes before the resolution: {kinds:?}"
    );
}

/// Storm groups off: these tests open many criticals at once and count one page per incident.
async fn world_without_storms(
    dir: Option<Arc<tempfile::TempDir>>,
    clock: Option<Arc<paiid_alerts::testing::clock::ManualClock>>,
) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: format!("{}storm:\n  enabled: false\n", routing(&slack, &pd)),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        run_workers: false,
        dir,
        clock,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
    })
    .await;
    World {
        app,
        slack,
        pd,
        smtp,
    }
}

async fn open_many(app: &TestApp, n: usize, prefix: &str) {
    for i in 0..n {
        open_critical(app, &format!("{prefix}{i:04}")).await;
    }
}

/// Each incident escalated exactly once: one `escalations` row, one `escalated` timeline entry,
/// one escalation delivery to each of its two channels, no deadline left.
async fn assert_each_escalated_once(app: &TestApp, n: i64) {
    let counts = [
        ("SELECT COUNT(*) FROM escalations", n),
        ("SELECT COUNT(DISTINCT incident_id) FROM escalations", n),
        ("SELECT COUNT(*) FROM timeline WHERE kind = 'escalated'", n),
        (
            "SELECT COUNT(*) FROM deliveries WHERE kind = 'escalation'",
            2 * n,
        ),
        (
            "SELECT COUNT(*) FROM (SELECT DISTINCT incident_id, channel FROM deliveries \
             WHERE kind = 'escalation') AS pages",
            2 * n,
        ),
        (
            "SELECT COUNT(*) FROM incidents WHERE next_escalation_at IS NOT NULL",
            0,
        ),
    ];
    for (sql, want) in counts {
        assert_eq!(app.scalar(sql).await, want, "{sql}");
    }
}

#[tokio::test]
async fn a_crash_between_batches_neither_loses_nor_repeats_an_escalation() {
    let w = world_without_storms(None, None).await;
    open_many(&w.app, 30, "61").await;
    w.app.clock.advance(16 * MIN);
    let first = w.app.workers.scheduler.fire_batch(10).await.unwrap();
    assert_eq!((first.read, first.fired.len()), (10, 10));
    // The process ends after that commit (nothing of the next batch was written): a new one on
    // the same file recovers the other 20 at start-up, and nothing fires twice.
    let (dir, clock) = w.app.stop().await;
    let w = world_without_storms(Some(dir), Some(clock)).await;
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_each_escalated_once(&w.app, 30).await;
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 30, "every escalation still pages");
}

#[tokio::test]
async fn racing_batches_fire_each_incident_once() {
    let w = world_without_storms(None, None).await;
    open_many(&w.app, 40, "62").await;
    w.app.clock.advance(16 * MIN);
    let s = &w.app.workers.scheduler;
    let (a, b, c) = tokio::join!(s.fire_batch(7), s.fire_batch(7), s.fire_due());
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    // Whichever takes the write lock first, the three fire the 40 between them, none twice.
    assert_eq!(a.fired.len() + b.fired.len() + c, 40);
    let mut ids: Vec<i64> = a.fired.iter().chain(&b.fired).map(|id| id.get()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), a.fired.len() + b.fired.len());
    assert_eq!(s.fire_due().await.unwrap(), 0);
    assert_each_escalated_once(&w.app, 40).await;
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 40);
}

#[tokio::test]
async fn a_step_already_on_record_is_not_paged_again_and_the_rest_of_its_batch_fires() {
    let w = world_without_storms(None, None).await;
    open_many(&w.app, 5, "63").await;
    let restored = w.app.scalar("SELECT MIN(id) FROM incidents").await;
    // Restored data: step 1 of this episode is on record, yet the incident still has a deadline.
    paiid_alerts::testing::execute(
        &w.app.state.store,
        &format!(
            "INSERT INTO escalations (incident_id, episode, step, due_at, fired_at, lateness_ms) \
             VALUES ({restored}, 1, 1, 0, 0, 0)"
        ),
    )
    .await
    .unwrap();
    w.app.clock.advance(16 * MIN);

    let batch = w.app.workers.scheduler.fire_batch(100).await.unwrap();

    assert_eq!((batch.read, batch.fired.len()), (5, 4));
    assert!(batch.fired.iter().all(|id| id.get() != restored));
    let restored_pages = format!(
        "SELECT COUNT(*) FROM deliveries WHERE kind = 'escalation' AND incident_id = {restored}"
    );
    assert_eq!(w.app.scalar(&restored_pages).await, 0, "not paged twice");
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM deliveries WHERE kind = 'escalation'")
            .await,
        8
    );
    assert_eq!(
        w.app
            .scalar("SELECT COUNT(*) FROM incidents WHERE next_escalation_at IS NOT NULL")
            .await,
        0,
        "its deadline is cleared, so it does not keep the scheduler busy"
    );
}
