//! Silences, end to end: the real app with a manual clock, loopback Slack and PagerDuty, and
//! workers stepped by hand. A silenced alert is stored and counted but sends nothing and does
//! not escalate; `let_through` pages anyway; when a silence ends (or is expired) the incidents
//! it held are notified then, once, across restarts; the CLI drives the same API.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::settings::Secrets;
use serde_json::{Value, json};
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::*;

const MIN: Duration = Duration::from_secs(60);
const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");

fn routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
  - name: production-warnings
    severity: high
    when: {{ environment: production, level: [warning] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall] }}
  high: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall] }}
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
}

async fn world_with(secrets: Secrets, dir: Option<std::sync::Arc<tempfile::TempDir>>) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let app = start(&slack, &pd, secrets, dir, None).await;
    World { app, slack, pd }
}

async fn world() -> World {
    world_with(Secrets::default(), None).await
}

async fn start(
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    secrets: Secrets,
    dir: Option<std::sync::Arc<tempfile::TempDir>>,
    clock: Option<std::sync::Arc<paiid_alerts::testing::clock::ManualClock>>,
) -> TestApp {
    let api = slack.api_base();
    spawn_with(AppOptions {
        routing: routing(slack, pd),
        secrets,
        run_workers: false,
        dir,
        clock,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
    })
    .await
}

/// A Sentry event alert for `issue` at `level` (the fixture is production, `error`).
async fn alert(app: &TestApp, issue: &str, event: &str, level: &str) -> i64 {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = event.into();
    v["data"]["event"]["level"] = level.into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

async fn create_silence(app: &TestApp, body: Value) -> Value {
    let r = app
        .client
        .post(app.url("/api/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v["silence"].clone()
}

/// Matches the fixture's alerts (production, the example title).
fn prod_silence(extra: Value) -> Value {
    let mut body = json!({
        "matchers": { "environment": "prod", "title_regex": "example Python" },
        "duration": "1h",
        "author": "ana",
        "comment": "known issue, fix deploying",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Sends everything due, letting the clock run a second at a time past our own Slack pacing.
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

fn triggers(pd: &FakePagerDuty) -> usize {
    pd.events()
        .iter()
        .filter(|e| e["event_action"] == "trigger")
        .count()
}

fn timeline_details(inc: &Value) -> Vec<String> {
    inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["kind"].as_str().unwrap_or(""),
                t["detail"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_silenced_alert_is_stored_and_counted_but_sends_nothing_and_never_escalates() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({}))).await;
    let sid = s["id"].as_i64().unwrap();
    assert_eq!(s["state"], "active");

    let id = alert(&w.app, "700001", "evt-700001-a", "error").await;
    assert_eq!(alert(&w.app, "700001", "evt-700001-b", "error").await, id);

    let inc = w.app.incident(id).await;
    assert_eq!(inc["severity"], "critical", "classified as usual");
    assert_eq!(inc["state"], "triggered");
    assert_eq!(inc["event_count"], 2, "counted");
    assert_eq!(inc["silenced_by"], sid);
    assert!(inc["next_escalation_at"].is_null(), "no escalation timer");
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("silenced by #{sid}"))),
        "{lines:?}"
    );
    assert_eq!(
        w.app.scalar("SELECT COUNT(*) FROM events").await,
        2,
        "stored"
    );
    assert_eq!(
        w.app.scalar("SELECT COUNT(*) FROM deliveries").await,
        0,
        "nothing queued"
    );
    assert_eq!(deliver_due(&w.app).await, 0);
    assert!(w.slack.messages().is_empty());

    // Past the window: nothing escalates.
    w.app.clock.advance(30 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(deliver_due(&w.app).await, 0);
    assert_eq!(triggers(&w.pd), 0);

    // The list says what it holds.
    let list = w.app.get_json("/api/silences").await;
    assert_eq!(list["silences"][0]["id"], sid);
    assert_eq!(list["silences"][0]["holding"], 1);

    // An alert no silence matches pages as usual (the control).
    let mut other = fixture_json("event_alert.triggered.4.json");
    other["data"]["event"]["issue_id"] = "700099".into();
    other["data"]["event"]["event_id"] = "evt-700099".into();
    other["data"]["event"]["title"] = "ZeroDivisionError: division by zero".into();
    let r = w
        .app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&other).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1);
}

#[tokio::test]
async fn let_through_pages_when_the_severity_rises_to_a_listed_one() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({ "let_through": ["critical"] }))).await;
    let sid = s["id"].as_i64().unwrap();
    assert_eq!(s["let_through"], json!(["critical"]));

    // A warning: High, held.
    let id = alert(&w.app, "700101", "evt-700101-a", "warning").await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["silenced_by"], sid);
    assert_eq!(deliver_due(&w.app).await, 0);
    assert!(w.slack.messages().is_empty());

    // An error on the same issue: Critical, which the silence lets through.
    w.app.clock.advance(MIN);
    let raised_at = w.app.clock.now_ms();
    assert_eq!(alert(&w.app, "700101", "evt-700101-b", "error").await, id);
    let inc = w.app.incident(id).await;
    assert_eq!(inc["severity"], "critical");
    assert!(inc["silenced_by"].is_null(), "no longer held");
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("silence #{sid} lets critical through"))),
        "{lines:?}"
    );
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1, "paged as usual");

    // ... and escalates as usual, 15 minutes after the raise.
    w.app.clock.set(raised_at + 15 * 60_000 - 1);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    w.app.clock.set(raised_at + 15 * 60_000);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 1);
}

#[tokio::test]
async fn when_a_silence_ends_the_incidents_it_held_are_notified_once_and_their_window_starts() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({ "duration": "1h" }))).await;
    let sid = s["id"].as_i64().unwrap();
    let ends = w.app.clock.now_ms() + 60 * 60_000;

    let held = alert(&w.app, "700201", "evt-700201", "error").await;
    let acked = alert(&w.app, "700202", "evt-700202", "error").await;
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{acked}/ack")))
        .json(&json!({ "by": "bo" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        deliver_due(&w.app).await,
        0,
        "the ack of a silenced incident tells nobody"
    );
    assert!(w.slack.messages().is_empty());

    // Not before its end.
    w.app.clock.set(ends - 1);
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 0);
    assert_eq!(deliver_due(&w.app).await, 0);

    w.app.clock.set(ends);
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 1);
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1, "only the unacknowledged one");
    let inc = w.app.incident(held).await;
    assert!(inc["silenced_by"].is_null());
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("silence #{sid} ended"))),
        "{lines:?}"
    );
    assert!(w.app.incident(acked).await["silenced_by"].is_null());

    // Exactly once.
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 0);
    assert_eq!(deliver_due(&w.app).await, 0);

    // The window starts at the end of the silence, not at the alert.
    w.app.clock.set(ends + 15 * 60_000 - 1);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    w.app.clock.set(ends + 15 * 60_000);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 1);

    let list = w.app.get_json("/api/silences?state=expired").await;
    assert_eq!(list["silences"][0]["id"], sid);
    assert_eq!(list["silences"][0]["holding"], 0);
}

#[tokio::test]
async fn delete_expires_a_silence_now_notifies_what_it_held_and_keeps_it_in_history() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({ "duration": "4h" }))).await;
    let sid = s["id"].as_i64().unwrap();
    let held = alert(&w.app, "700301", "evt-700301", "error").await;
    assert_eq!(deliver_due(&w.app).await, 0);

    w.app.clock.advance(10 * MIN);
    let expired_at = w.app.clock.now_ms();
    let r = w
        .app
        .client
        .delete(w.app.url(&format!("/api/silences/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"], "expired");
    assert_eq!(v["notified_incidents"], json!([held]));
    assert_eq!(v["silence"]["state"], "expired");

    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1);
    let inc = w.app.incident(held).await;
    assert!(inc["silenced_by"].is_null());
    assert!(inc["next_escalation_at"].is_string(), "its window runs");

    // New alerts are no longer held.
    let fresh = alert(&w.app, "700302", "evt-700302", "error").await;
    assert!(w.app.incident(fresh).await["silenced_by"].is_null());

    // Kept, as expired.
    let list = w.app.get_json("/api/silences").await;
    assert_eq!(list["silences"][0]["id"], sid);
    assert_eq!(list["silences"][0]["state"], "expired");
    assert!(list["silences"][0]["expired_at"].is_string());
    let one = w.app.get_json(&format!("/api/silences/{sid}")).await;
    assert_eq!(one["silence"]["state"], "expired");

    // Again: already ended, nothing notified twice.
    let again: Value = w
        .app
        .client
        .delete(w.app.url(&format!("/api/silences/{sid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["result"], "already_ended");
    assert_eq!(again["notified_incidents"], json!([]));
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 0);

    // The window of the held incident started at the expiry.
    w.app.clock.set(expired_at + 15 * 60_000);
    assert!(w.app.workers.scheduler.fire_due().await.unwrap() >= 1);

    let missing = w
        .app
        .client
        .delete(w.app.url("/api/silences/999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn silences_and_what_they_hold_survive_a_restart_and_release_once() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({ "duration": "1h" }))).await;
    let sid = s["id"].as_i64().unwrap();
    let ends = w.app.clock.now_ms() + 60 * 60_000;
    let held = alert(&w.app, "700401", "evt-700401", "error").await;
    let World { app, slack, pd } = w;
    let (dir, clock) = app.stop().await;

    // Restarted: the silence still holds new alerts.
    let app = start(&slack, &pd, Secrets::default(), Some(dir), Some(clock)).await;
    let list = app.get_json("/api/silences?state=active").await;
    assert_eq!(list["silences"][0]["id"], sid);
    let second = alert(&app, "700402", "evt-700402", "error").await;
    assert_eq!(app.incident(second).await["silenced_by"], sid);
    assert_eq!(deliver_due(&app).await, 0);
    let (dir, clock) = app.stop().await;

    // Down while it ends: the start-up releases what it held.
    clock.set(ends + MIN.as_millis() as i64);
    let app = start(&slack, &pd, Secrets::default(), Some(dir), Some(clock)).await;
    assert!(deliver_due(&app).await >= 2);
    // Released together, they are due together: one bundled message lists both.
    let messages = slack.messages();
    for id in [held, second] {
        let link = format!("/incidents/{id}");
        let holding = messages
            .iter()
            .filter(|m| m.body.to_string().contains(&link))
            .count();
        assert_eq!(holding, 1, "incident {id} told once: {messages:?}");
    }
    let told = messages.len();
    for id in [held, second] {
        assert!(app.incident(id).await["silenced_by"].is_null());
    }
    assert_eq!(app.workers.silences.release_due().await.unwrap(), 0);
    let (dir, clock) = app.stop().await;

    // And not again after another restart.
    let app = start(&slack, &pd, Secrets::default(), Some(dir), Some(clock)).await;
    assert_eq!(deliver_due(&app).await, 0);
    assert_eq!(slack.messages().len(), told);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM deliveries WHERE kind = 'opened'")
            .await,
        2
    );
}

async fn post_raw(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn bad_silences_are_refused_with_a_code_and_a_detail() {
    let w = world().await;
    let cases = [
        (
            json!({ "matchers": { "title_regex": "(unclosed" }, "author": "ana" }),
            "invalid_matchers",
            "not a valid regular expression",
        ),
        (
            json!({ "matchers": {}, "author": "ana" }),
            "invalid_matchers",
            "at least one matcher",
        ),
        (
            json!({ "matchers": { "projet": "api" }, "author": "ana" }),
            "invalid_matchers",
            "projet",
        ),
        (
            json!({ "matchers": { "severity": "urgent" }, "author": "ana" }),
            "invalid_matchers",
            "urgent",
        ),
        (
            json!({ "author": "ana" }),
            "invalid_matchers",
            "`matchers` is required",
        ),
        (
            json!({ "matchers": { "project": "api" } }),
            "invalid_silence",
            "author is required",
        ),
        (
            json!({ "matchers": { "project": "api" }, "author": "ana", "starts_at": "2026-12-05T18:00:00Z", "ends_at": "2026-12-05T17:00:00Z" }),
            "invalid_silence",
            "must be after starts_at",
        ),
        (
            json!({ "matchers": { "project": "api" }, "author": "ana", "duration": "forever" }),
            "invalid_silence",
            "forever",
        ),
        (
            json!({ "matchers": { "project": "api" }, "author": "ana", "let_through": ["urgent"] }),
            "invalid_silence",
            "urgent",
        ),
        // A typo, not a silence (273 years): refused (review of issue 9, item 18).
        (
            json!({ "matchers": { "project": "api" }, "author": "ana", "duration": "100000d" }),
            "invalid_silence",
            "longer than 365 days",
        ),
    ];
    for (body, code, detail) in cases {
        let (status, v) = post_raw(&w.app, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert_eq!(v["code"], code, "{body} -> {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(detail),
            "{body} -> {v}"
        );
    }
    assert_eq!(w.app.scalar("SELECT COUNT(*) FROM silences").await, 0);
}

#[tokio::test]
async fn the_api_needs_the_token_when_one_is_set() {
    let w = world_with(
        Secrets {
            api_token: secret("t0ken"),
            ..Secrets::default()
        },
        None,
    )
    .await;
    let (status, v) = post_raw(&w.app, prod_silence(json!({}))).await;
    assert_eq!(status, 401, "{v}");
    let r = w
        .app
        .client
        .post(w.app.url("/api/silences"))
        .bearer_auth("t0ken")
        .json(&prod_silence(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = w
        .app
        .client
        .get(w.app.url("/api/silences"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = w
        .app
        .client
        .delete(w.app.url("/api/silences/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_web_page_creates_lists_and_expires_silences() {
    let w = world().await;
    let page = w
        .app
        .client
        .get(w.app.url("/silences?project=trading-api"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"new-silence\""), "the form");
    assert!(
        html.contains("value=\"trading-api\""),
        "prefilled from the query"
    );
    assert!(html.contains("id=\"no-silences\""));

    let no_redirect = paiid_alerts::testing::http_client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .post(w.app.url("/silences"))
        .form(&[
            ("environment", "prod"),
            ("title_regex", "example Python"),
            ("duration", "30m"),
            ("let_through", "critical"),
            ("comment", "deploy in progress"),
            ("by", "ana"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/silences?created=1");
    let html = w
        .app
        .client
        .get(w.app.url("/silences?created=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Silence #1 created."));
    assert!(html.contains("data-state=\"active\""), "{html}");
    assert!(html.contains("environment=prod title~/example Python/"));

    // Held, as through the API (a warning: High, which it does not let through).
    let id = alert(&w.app, "700501", "evt-700501", "warning").await;
    assert_eq!(w.app.incident(id).await["silenced_by"], 1);

    // A form from another site is refused.
    let r = no_redirect
        .post(w.app.url("/silences/1/expire"))
        .header("origin", "https://evil.example")
        .form(&[("by", "mallory")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let bad = no_redirect
        .post(w.app.url("/silences"))
        .form(&[("title_regex", "(x"), ("duration", "1h"), ("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("not a valid regular expression")
    );

    let r = no_redirect
        .post(w.app.url("/silences/1/expire"))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = w
        .app
        .client
        .get(w.app.url("/silences"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-state=\"expired\""), "{html}");
    assert!(
        deliver_due(&w.app).await >= 1,
        "the held incident is notified"
    );
    assert_eq!(w.slack.messages().len(), 1);
}

async fn cli(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("silence")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_adds_lists_and_expires_silences_on_a_running_service() {
    let w = world_with(
        Secrets {
            api_token: secret("cli-token"),
            ..Secrets::default()
        },
        None,
    )
    .await;
    let base = w.app.base.clone();
    let conn = ["--url", base.as_str(), "--token", "cli-token"];

    let (ok, out, err) = cli(&[
        &["add"][..],
        &conn,
        &[
            "--environment",
            "prod",
            "--tag",
            "server_name=web01.example.org",
            "--duration",
            "1h",
            "--author",
            "ana",
            "--comment",
            "deploy",
            "--let-through",
            "critical",
        ],
    ]
    .concat())
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("silence #1 created"), "{out}");
    assert!(
        out.contains("environment=prod tags.server_name=web01.example.org"),
        "{out}"
    );

    let id = alert(&w.app, "700601", "evt-700601", "warning").await;
    let inc: Value = w
        .app
        .client
        .get(w.app.url(&format!("/api/incidents/{id}")))
        .bearer_auth("cli-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inc["silenced_by"], 1);

    let (ok, out, err) = cli(&[&["list"][..], &conn].concat()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("#1\tactive"), "{out}");
    assert!(out.contains("holding 1"), "{out}");
    assert!(out.contains("let_through=critical"), "{out}");

    let (ok, out, err) = cli(&[&["expire", "1"][..], &conn].concat()).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("silence #1 expired; notified now: #{id}")),
        "{out}"
    );

    let (ok, out, _) = cli(&[&["list", "--state", "expired"][..], &conn].concat()).await;
    assert!(ok);
    assert!(out.contains("#1\texpired"), "{out}");

    // A wrong token and a bad matcher fail with the service's answer.
    let (ok, _, err) = cli(&["list", "--url", base.as_str(), "--token", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let (ok, _, err) = cli(&[
        &["add"][..],
        &conn,
        &["--title-regex", "(x", "--author", "ana"],
    ]
    .concat())
    .await;
    assert!(!ok);
    assert!(err.contains("invalid_matchers"), "{err}");
}

#[tokio::test]
async fn a_silence_replaced_by_a_newer_one_keeps_holding_until_the_last_one_ends() {
    let w = world().await;
    let old = create_silence(&w.app, prod_silence(json!({ "duration": "1h" }))).await;
    let held = alert(&w.app, "700701", "evt-700701", "error").await;
    assert_eq!(w.app.incident(held).await["silenced_by"], old["id"]);

    // Extended the Alertmanager way: a new silence (matching by a tag of the event), then the
    // old one expired. The incident must not page in between.
    let new = create_silence(
        &w.app,
        json!({
            "matchers": { "tags": { "server_name": "web01.example.org" } },
            "duration": "3h",
            "author": "ana",
        }),
    )
    .await;
    let new_id = new["id"].as_i64().unwrap();
    let ends = w.app.clock.now_ms() + 3 * 60 * 60_000;
    let r: Value = w
        .app
        .client
        .delete(w.app.url(&format!("/api/silences/{}", old["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "expired");
    assert_eq!(r["notified_incidents"], json!([]), "{r}");
    assert_eq!(deliver_due(&w.app).await, 0);
    let inc = w.app.incident(held).await;
    assert_eq!(inc["silenced_by"], new_id);
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("still silenced by #{new_id}"))),
        "{lines:?}"
    );

    w.app.clock.set(ends);
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 1);
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1);
}

#[tokio::test]
async fn a_silence_created_while_an_incident_pages_stops_its_escalation_until_it_ends() {
    let w = world().await;
    let id = alert(&w.app, "700801", "evt-700801", "error").await;
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1, "paged before the silence");
    assert!(w.app.incident(id).await["next_escalation_at"].is_string());

    w.app.clock.advance(5 * MIN);
    let s = create_silence(&w.app, prod_silence(json!({ "duration": "1h" }))).await;
    let sid = s["id"].as_i64().unwrap();
    let ends = w.app.clock.now_ms() + 60 * 60_000;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["silenced_by"], sid);
    assert!(inc["next_escalation_at"].is_null());
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("silenced by #{sid} while open"))),
        "{lines:?}"
    );

    // Its old deadline passes: nothing escalates.
    w.app.clock.advance(30 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 0);

    // The silence ends: it paged before the silence, so it is not paged again; its deadline
    // passed while held, so it escalates now (not a fresh window).
    w.app.clock.set(ends);
    assert_eq!(w.app.workers.silences.release_due().await.unwrap(), 0);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(w.slack.messages().len(), 1);
    assert_eq!(triggers(&w.pd), 1);
}

#[tokio::test]
async fn the_running_expiry_worker_releases_a_silence_when_the_clock_reaches_its_end() {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd),
        run_workers: true,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
        ..AppOptions::default()
    })
    .await;
    let s = create_silence(&app, prod_silence(json!({ "duration": "10m" }))).await;
    let id = alert(&app, "700901", "evt-700901", "error").await;
    assert_eq!(app.incident(id).await["silenced_by"], s["id"]);
    assert!(slack.messages().is_empty());

    // The worker sleeps until the end on the injected clock; moving the clock wakes it.
    app.clock.advance(10 * MIN);
    eventually(Duration::from_secs(10), || async {
        (!slack.messages().is_empty()).then_some(())
    })
    .await;
    assert!(app.incident(id).await["silenced_by"].is_null());
}

/// Review of issue 9, item 2: a silence reads `environment` as the rules do (routing.yaml's
/// aliases, case ignored): `production` holds the fixture's `prod` alert, as the rule
/// `environment: production` matches it.
#[tokio::test]
async fn a_silence_environment_means_what_it_means_in_the_rules() {
    let w = world().await;
    let s = create_silence(
        &w.app,
        prod_silence(
            json!({ "matchers": { "environment": "production", "title_regex": "example Python" } }),
        ),
    )
    .await;
    let id = alert(&w.app, "701001", "evt-701001", "error").await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["environment"], "prod");
    assert_eq!(
        inc["silenced_by"], s["id"],
        "production covers its alias prod"
    );
    assert_eq!(deliver_due(&w.app).await, 0);

    // An environment no rule would read as `prod` holds nothing (the control).
    let w = world().await;
    create_silence(
        &w.app,
        prod_silence(
            json!({ "matchers": { "environment": "staging", "title_regex": "example Python" } }),
        ),
    )
    .await;
    let id = alert(&w.app, "701002", "evt-701002", "error").await;
    assert!(w.app.incident(id).await["silenced_by"].is_null());
}

/// Review item 2: a silence that can never hold anything is refused (its own severity let
/// through; a window already over); one naming a rule the routing file lacks is stored with a
/// warning (a reload may add the rule), said by the API, the page and the CLI.
#[tokio::test]
async fn silences_that_can_never_hold_anything_are_refused_or_warned_about() {
    let w = world().await;
    let now = w.app.clock.now_ms();
    let (status, v) = post_raw(
        &w.app,
        json!({ "matchers": { "severity": "critical" }, "let_through": ["critical"], "author": "ana" }),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["code"], "invalid_silence");
    assert!(v["detail"].as_str().unwrap().contains("let_through"), "{v}");

    let (status, v) = post_raw(
        &w.app,
        json!({ "matchers": { "project": "api" }, "starts_at": now - 2 * 3_600_000,
                "ends_at": now - 3_600_000, "author": "ana" }),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("already past"),
        "{v}"
    );

    let (status, v) = post_raw(
        &w.app,
        json!({ "matchers": { "rule": "no-such-rule" }, "author": "ana" }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let warning = v["warnings"][0].as_str().unwrap_or_default().to_string();
    assert!(warning.contains("rule `no-such-rule` is not in"), "{v}");
    assert!(warning.contains("critical-production-errors"), "{v}");
    let (status, v) = post_raw(
        &w.app,
        json!({ "matchers": { "rule": "critical-production-errors" }, "author": "ana" }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(v["warnings"], json!([]), "a rule that exists: no warning");

    let html = w
        .app
        .client
        .get(w.app.url("/silences"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Warning: rule `no-such-rule` is not in"),
        "the page says it too"
    );

    let base = w.app.base.clone();
    let (ok, out, err) = cli(&[
        "add",
        "--url",
        &base,
        "--rule",
        "another-missing-rule",
        "--author",
        "ana",
    ])
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("warning: rule `another-missing-rule` is not in"),
        "{out}{err}"
    );
}

/// Review item 3: an incident that was already paging when a silence held it keeps its
/// escalation deadline: no second "opened" page when the silence ends, and the escalation
/// fires when it was due (or at once if that passed while it was held).
#[tokio::test]
async fn a_paging_incident_held_for_a_while_keeps_its_deadline_and_is_not_paged_again() {
    let w = world().await;
    let t0 = w.app.clock.now_ms();
    let id = alert(&w.app, "701101", "evt-701101", "error").await;
    assert!(deliver_due(&w.app).await >= 1);
    let opened = "SELECT COUNT(*) FROM deliveries WHERE kind = 'opened'";
    assert_eq!(w.app.scalar(opened).await, 1);

    // Held from 2 to 7 minutes: its deadline (15 minutes) is still ahead at the end.
    w.app.clock.set(t0 + 2 * 60_000);
    let s = create_silence(&w.app, prod_silence(json!({ "duration": "5m" }))).await;
    assert_eq!(w.app.incident(id).await["silenced_by"], s["id"]);
    w.app.clock.set(t0 + 7 * 60_000);
    assert_eq!(
        w.app.workers.silences.release_due().await.unwrap(),
        0,
        "no page"
    );
    deliver_due(&w.app).await;
    assert_eq!(w.app.scalar(opened).await, 1, "not opened a second time");
    let inc = w.app.incident(id).await;
    assert!(inc["silenced_by"].is_null());
    let lines = timeline_details(&inc);
    assert!(
        lines.iter().any(|l| l.contains("escalation still due at")),
        "{lines:?}"
    );
    w.app.clock.set(t0 + 15 * 60_000 - 1);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    w.app.clock.set(t0 + 15 * 60_000);
    assert_eq!(
        w.app.workers.scheduler.fire_due().await.unwrap(),
        1,
        "when it was due"
    );
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 1);

    // Another, held past its deadline: it escalates as soon as the silence ends.
    let w = world().await;
    let t0 = w.app.clock.now_ms();
    let id = alert(&w.app, "701102", "evt-701102", "error").await;
    deliver_due(&w.app).await;
    w.app.clock.set(t0 + 2 * 60_000);
    create_silence(&w.app, prod_silence(json!({ "duration": "1h" }))).await;
    w.app.clock.set(t0 + 62 * 60_000);
    w.app.workers.silences.release_due().await.unwrap();
    let inc = w.app.incident(id).await;
    let lines = timeline_details(&inc);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("passed while silenced: escalating now")),
        "{lines:?}"
    );
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd), 1);
    assert_eq!(w.app.scalar(opened).await, 1, "not opened a second time");
}

/// Review item 7: `silence list | head -3` ends quietly when the reader goes away.
#[tokio::test]
async fn the_cli_list_exits_quietly_when_its_reader_closes_the_pipe() {
    let w = world().await;
    for i in 0..3 {
        create_silence(
            &w.app,
            json!({ "matchers": { "project": format!("p{i}") }, "author": "ana" }),
        )
        .await;
    }
    let mut child = tokio::process::Command::new(BIN)
        .args(["silence", "list", "--url", &w.app.base])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the answer can arrive: every write meets a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?} {err}", out.status);
}

/// Review item 10: an incident let through by a silence without having been held first (it
/// rose from a level nobody is told about) says so in its timeline.
#[tokio::test]
async fn let_through_leaves_a_note_even_when_the_incident_was_not_held_before() {
    let w = world().await;
    let s = create_silence(&w.app, prod_silence(json!({ "let_through": ["critical"] }))).await;
    let sid = s["id"].as_i64().unwrap();
    let id = alert(&w.app, "701201", "evt-701201", "info").await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["severity"], "unclassified");
    assert!(inc["silenced_by"].is_null(), "nothing to hold");
    assert_eq!(alert(&w.app, "701201", "evt-701201-b", "error").await, id);
    let inc = w.app.incident(id).await;
    assert_eq!(inc["severity"], "critical");
    let lines = timeline_details(&inc);
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "let through by silence #{sid}: severity rose to critical"
        ))),
        "{lines:?}"
    );
    assert!(deliver_due(&w.app).await >= 1);
    assert_eq!(w.slack.messages().len(), 1, "paged");

    // Opened straight at a let-through severity: noted as well.
    let id = {
        let mut v = fixture_json("event_alert.triggered.4.json");
        v["data"]["event"]["issue_id"] = "701202".into();
        v["data"]["event"]["event_id"] = "evt-701202".into();
        let r = w
            .app
            .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
            .await;
        r.json::<Value>().await.unwrap()["incident_id"]
            .as_i64()
            .unwrap()
    };
    let lines = timeline_details(&w.app.incident(id).await);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("let through by silence #{sid}: severity critical"))),
        "{lines:?}"
    );
}

/// Review item 11: incidents that notify nobody (unclassified) are held and released without
/// claiming a notification or an escalation that never happens.
#[tokio::test]
async fn releasing_incidents_that_notify_nobody_does_not_claim_to_notify_them() {
    let w = world().await;
    let quiet = alert(&w.app, "701301", "evt-701301", "info").await;
    let paging = alert(&w.app, "701302", "evt-701302", "error").await;
    deliver_due(&w.app).await;
    let s = create_silence(&w.app, prod_silence(json!({}))).await;
    let sid = s["id"].as_i64().unwrap();
    let inc = w.app.incident(quiet).await;
    assert_eq!(inc["severity"], "unclassified");
    assert_eq!(inc["silenced_by"], sid);
    let lines = timeline_details(&inc);
    assert!(
        !lines.iter().any(|l| l.contains("no escalation until")),
        "{lines:?}"
    );

    let r: Value = w
        .app
        .client
        .delete(w.app.url(&format!("/api/silences/{sid}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "expired");
    let notified = r["notified_incidents"].as_array().unwrap();
    assert!(!notified.contains(&json!(quiet)), "{r}");
    let _ = paging;
    let lines = timeline_details(&w.app.incident(quiet).await);
    assert!(
        !lines.iter().any(|l| l.contains("notifying now")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("silence #{sid} ended")) && l.contains("notifies nobody")),
        "{lines:?}"
    );
}
