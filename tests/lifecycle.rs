//! Sentry's issue lifecycle, acknowledgement timeouts and the guaranteed page, end to end: the
//! real app on a manual clock (windows pass in milliseconds), loopback Slack and PagerDuty that
//! enforce their contracts, and a real SMTP server. The `issue` and `seer` payloads are real
//! captures and Sentry's documented examples, edited as `tests/fixtures/sentry-lifecycle/README.md`
//! says.

mod support;

use std::time::Duration;

use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::{Value, json};
use support::fake_pagerduty::FakePagerDuty;
use support::fake_sentry::{self, FakeSentry};
use support::fake_slack::{self, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

const MIN: Duration = Duration::from_secs(60);
/// The Sentry issue every lifecycle fixture speaks of.
const ISSUE: &str = "1170820242";

fn routing_with(
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    critical_extra: &str,
    more_channels: &str,
) -> String {
    format!(
        r##"
channels:{more_channels}
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  eng-manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email]{critical_extra} }}
storm: {{ enabled: false }}
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

/// The app with its workers stepped by hand, so that "nothing fired" is the scheduler's answer.
async fn world(critical_extra: &str) -> World {
    world_with(critical_extra, String::new()).await
}

async fn world_with(critical_extra: &str, more_channels: String) -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing_with(&slack, &pd, critical_extra, &more_channels),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
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

fn lifecycle_fixture(name: &str) -> Value {
    let path = repo_path("tests/fixtures/sentry-lifecycle").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture json")
}

/// A production error of the lifecycle fixtures' issue: a critical incident.
async fn error_event(app: &TestApp, event: &str) -> Value {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = ISSUE.into();
    v["data"]["event"]["event_id"] = event.into();
    // The permalink names the same issue, as Sentry's do.
    v["data"]["event"]["web_url"] =
        format!("https://sentry.io/organizations/nitk-46/issues/{ISSUE}/events/{event}/").into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn open_critical(app: &TestApp) -> i64 {
    error_event(app, "evt-first").await["incident_id"]
        .as_i64()
        .unwrap()
}

async fn post(app: &TestApp, resource: &str, body: &Value) -> Value {
    let r = app
        .post_sentry(Some(resource), &serde_json::to_vec(body).unwrap())
        .await;
    assert!(r.status().is_success(), "{resource}: {}", r.status());
    r.json().await.unwrap()
}

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

fn triggers(pd: &FakePagerDuty) -> Vec<Value> {
    pd.events()
        .into_iter()
        .filter(|e| e["event_action"] == "trigger")
        .collect()
}

/// Everything Slack was told, messages and thread replies, as one text.
fn slack_said(slack: &FakeSlack) -> String {
    slack
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<Vec<_>>()
        .join("\n")
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

async fn act(app: &TestApp, id: i64, action: &str, by: &str) {
    seed::act(app, id, action, by, None).await;
}

#[tokio::test]
async fn a_resolved_issue_that_regresses_pages_again_as_a_new_episode_saying_regressed() {
    let w = world("").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    act(&w.app, id, "resolve", "alice").await;
    deliver_due(&w.app).await;
    let before = w.slack.requests().len();

    let answer = post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.unresolved.regressed.json"),
    )
    .await;
    assert_eq!(answer["incident_id"].as_i64(), Some(id));
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert_eq!(inc["episode"], 2);
    assert!(
        inc["next_escalation_at"].is_string(),
        "the new episode escalates per its policy"
    );
    deliver_due(&w.app).await;
    let new: String = w.slack.requests()[before..]
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(new.contains("regressed in Sentry"), "{new}");

    // Its escalation runs from the reopening, once.
    w.app.clock.advance(15 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd).len(), 1);
}

#[tokio::test]
async fn an_open_issue_sentry_marks_escalating_escalates_now_not_at_the_end_of_its_window() {
    let w = world("").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    w.app.clock.advance(3 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);

    post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.unresolved.escalating.json"),
    )
    .await;
    assert_eq!(
        w.app.workers.scheduler.fire_due().await.unwrap(),
        1,
        "brought forward to now"
    );
    deliver_due(&w.app).await;
    let pages = triggers(&w.pd);
    assert_eq!(pages.len(), 1);
    let mails = w.smtp.received();
    assert_eq!(mails.len(), 1, "the manager mail");
    assert!(
        mails[0].everything().contains("escalating in Sentry"),
        "{}",
        mails[0].everything()
    );
    let inc = w.app.incident(id).await;
    assert_eq!(inc["escalations_fired"], 1);
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t.contains("escalation brought forward by 11m")),
        "{:?}",
        timeline_details(&inc)
    );
    // Never later, and never twice: the original deadline is gone.
    w.app.clock.advance(20 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
}

#[tokio::test]
async fn archived_until_escalating_mutes_with_sentrys_reason_and_unmutes_when_it_escalates() {
    let w = world("").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    let muted = post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.archived.until_escalating.json"),
    )
    .await;
    assert_eq!(muted["incident_id"].as_i64(), Some(id));
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "muted");
    assert!(inc["next_escalation_at"].is_null());
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t == "muted archived in Sentry until it escalates"),
        "{:?}",
        timeline_details(&inc)
    );
    // Muted: more events and the whole window pass without a page.
    error_event(&w.app, "evt-muted").await;
    w.app.clock.advance(30 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    deliver_due(&w.app).await;
    assert!(triggers(&w.pd).is_empty());
    let before = w.slack.requests().len();

    // Sentry unresolves it as escalating: unmuted, a new episode that pages.
    post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.unresolved.escalating.json"),
    )
    .await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert_eq!(inc["episode"], 2);
    deliver_due(&w.app).await;
    assert!(w.slack.requests().len() > before, "Slack hears of it again");

    // `ignored` (and the legacy `archived`) forever: muted, the reason says so.
    post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.ignored.forever.json"),
    )
    .await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "muted");
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t.ends_with("archived in Sentry forever"))
    );
}

#[tokio::test]
async fn seers_root_cause_and_pull_request_attach_to_the_incident_and_its_post_mortem() {
    let w = world("").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    for (name, stage) in [
        ("seer.root_cause_completed.json", "root_cause_completed"),
        ("seer.solution_completed.json", "solution_completed"),
        ("seer.pr_created.json", "pr_created"),
    ] {
        let answer = post(&w.app, "seer", &lifecycle_fixture(name)).await;
        assert_eq!(answer["incident_id"].as_i64(), Some(id), "{stage}");
    }
    let inc = w.app.incident(id).await;
    assert_eq!(inc["seer_root_cause"], "Woah wow there's a bug here.");
    assert_eq!(inc["seer_pr_url"], "https://github.com/owner/repo/pull/123");
    let seer: Vec<String> = timeline_details(&inc)
        .into_iter()
        .filter(|t| t.starts_with("seer "))
        .collect();
    assert_eq!(seer.len(), 3, "{seer:?}");
    assert!(seer[0].contains("Seer's root cause: Woah wow"));
    assert!(seer[1].contains("Seer's solution: Definitely need to fix this."));
    // The incident page links the pull request.
    let page = w.app.get_text(&format!("/incidents/{id}")).await;
    assert!(
        page.contains("https://github.com/owner/repo/pull/123"),
        "the page links the PR"
    );

    // People record their own root cause; the post-mortem shows both.
    w.app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/note")))
        .json(&json!({ "by": "alice", "note": "Broker API returned zero quantity" }))
        .send()
        .await
        .unwrap();
    act(&w.app, id, "resolve", "alice").await;
    deliver_due(&w.app).await;
    let said = slack_said(&w.slack);
    assert!(
        said.contains("Seer's root cause:* Woah wow there's a bug here."),
        "{said}"
    );
    assert!(said.contains("Broker API returned zero quantity"), "{said}");
}

#[tokio::test]
async fn an_acknowledgement_expires_after_ack_timeout_and_the_window_starts_again() {
    let w = world(", ack_timeout: 30m").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    w.app.clock.advance(2 * MIN);
    act(&w.app, id, "ack", "alice").await;
    deliver_due(&w.app).await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "acknowledged");
    assert!(inc["next_escalation_at"].is_null());
    assert!(inc["ack_expires_at"].is_string());

    // Not before its time.
    w.app.clock.advance(29 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    assert_eq!(w.app.incident(id).await["state"], "acknowledged");
    w.app.clock.advance(MIN);
    w.app.workers.scheduler.fire_due().await.unwrap();
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert!(inc["acknowledged_by"].is_null());
    deliver_due(&w.app).await;
    assert!(
        slack_said(&w.slack).contains("acknowledgement by alice expired after 30m"),
        "Slack says so"
    );
    assert!(
        triggers(&w.pd).is_empty(),
        "expiry tells Slack; the page is the escalation's"
    );

    // The escalation window starts again from the expiry: 15 minutes, then PagerDuty, once.
    w.app.clock.advance(14 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    w.app.clock.advance(MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd).len(), 1);
    let metrics = w.app.get_text("/metrics").await;
    assert!(
        metrics.contains("paiid_acknowledgements_expired_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_acknowledged_incident_pages_again_when_sentry_says_it_escalates_or_its_rate_rises() {
    let w = world(", reack_on_rate: 3").await;
    let id = open_critical(&w.app).await;
    // Two events in the first ten minutes: 0.2 a minute.
    w.app.clock.advance(10 * MIN);
    error_event(&w.app, "evt-2").await;
    act(&w.app, id, "ack", "alice").await;
    deliver_due(&w.app).await;
    // Five more within a minute after the acknowledgement: 5 a minute, far above 3 x 0.2.
    for i in 0..4 {
        w.app.clock.advance(Duration::from_secs(10));
        error_event(&w.app, &format!("evt-after-{i}")).await;
        assert_eq!(
            w.app.incident(id).await["state"],
            "acknowledged",
            "not yet: {i}"
        );
    }
    error_event(&w.app, "evt-after-4").await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t.starts_with("retriggered 5 events since the acknowledgement by alice")),
        "{:?}",
        timeline_details(&inc)
    );
    deliver_due(&w.app).await;
    assert!(slack_said(&w.slack).contains("Needs attention again"));

    // Acknowledged again, then Sentry marks it escalating: the escalation targets now.
    act(&w.app, id, "ack", "bob").await;
    post(
        &w.app,
        "issue",
        &lifecycle_fixture("issue.unresolved.escalating.json"),
    )
    .await;
    assert_eq!(w.app.incident(id).await["state"], "triggered");
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&w.app).await;
    assert_eq!(triggers(&w.pd).len(), 1);
    let mails = w.smtp.received();
    assert!(
        mails.iter().any(|m| m
            .everything()
            .contains("escalating in Sentry while acknowledged by bob")),
        "{:?}",
        mails.iter().map(|m| m.everything()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn no_confirmed_delivery_within_confirm_within_fails_over_to_the_escalation_targets() {
    let w = world(", confirm_within: 2m").await;
    w.slack.set_down(true);
    let id = open_critical(&w.app).await;
    w.app.workers.outbox.drain().await.unwrap();
    w.app.clock.advance(MIN);
    w.app.workers.outbox.drain().await.unwrap();
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    w.app.clock.advance(MIN);
    assert_eq!(
        w.app.workers.scheduler.fire_due().await.unwrap(),
        1,
        "at 2 minutes, not 15"
    );
    let inc = w.app.incident(id).await;
    assert!(inc["delivery_degraded_at"].is_string());
    deliver_due(&w.app).await;
    let pages = triggers(&w.pd);
    assert_eq!(pages.len(), 1);
    assert!(
        pages[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("delivery degraded"),
        "{}",
        pages[0]
    );
    let mails = w.smtp.received();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .everything()
            .contains("no notification was confirmed delivered within 2m")
    );
    let metrics = w.app.get_text("/metrics").await;
    assert!(
        metrics.contains("paiid_delivery_degraded_total 1"),
        "{metrics}"
    );
    // The page shows it.
    let page = w.app.get_text(&format!("/incidents/{id}")).await;
    assert!(
        page.contains("Delivery degraded"),
        "the incident page says so"
    );
    // The regular window does not page a second time.
    w.app.clock.advance(20 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
}

#[tokio::test]
async fn a_confirmed_delivery_keeps_the_regular_window() {
    let w = world(", confirm_within: 2m").await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    w.app.clock.advance(3 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 0);
    let inc = w.app.incident(id).await;
    assert!(inc["delivery_degraded_at"].is_null());
    w.app.clock.advance(12 * MIN);
    assert_eq!(w.app.workers.scheduler.fire_due().await.unwrap(), 1);
}

// ---------- two-way sync with Sentry (a `type: sentry` channel) ----------

async fn synced_world() -> (World, FakeSentry) {
    let sentry = FakeSentry::start().await;
    let channel = format!(
        r##"
  sentry-sync:
    type: sentry
    organization: "{org}"
    api_token: "{token}"
    installation_uuid: "{uuid}"
    api_url: "{url}"
    users: {{ alice: "alice@paiid.ai" }}"##,
        org = fake_sentry::ORG,
        token = fake_sentry::TOKEN,
        uuid = fake_sentry::INSTALLATION,
        url = sentry.url(),
    );
    (world_with("", channel).await, sentry)
}

/// Sentry's `issue.resolved` for the lifecycle fixtures' issue: a real capture, its issue id
/// changed to theirs.
fn sentry_resolved() -> Value {
    let mut v = fixture_json("issue.resolved.1.json");
    v["data"]["issue"]["id"] = ISSUE.into();
    v
}

fn deliveries_to(inc: &Value, channel: &str) -> Vec<Value> {
    inc["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == channel)
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_incident_is_linked_assigned_and_resolved_in_sentry_and_the_echo_changes_nothing() {
    let (w, sentry) = synced_world().await;
    let id = open_critical(&w.app).await;
    deliver_due(&w.app).await;
    let (url, name) = sentry.link(ISSUE).expect("linked in Sentry's sidebar");
    assert!(url.ends_with(&format!("/incidents/{id}")), "{url}");
    assert_eq!(name, format!("paiid-alerts#{id}"));

    // Acknowledged by someone Sentry knows: assigned there; by someone it does not: nothing.
    act(&w.app, id, "ack", "alice").await;
    deliver_due(&w.app).await;
    assert_eq!(
        sentry.issue(ISSUE).unwrap().assigned_to.as_deref(),
        Some("alice@paiid.ai")
    );
    let calls = sentry.requests().len();

    // Sentry is down for a moment: the resolve is retried, and shows in the delivery history.
    sentry.fail_next(1, 503);
    act(&w.app, id, "resolve", "alice").await;
    deliver_due(&w.app).await;
    w.app.clock.advance(Duration::from_secs(2));
    deliver_due(&w.app).await;
    assert_eq!(
        sentry.issue(ISSUE).unwrap().status.as_deref(),
        Some("resolved")
    );
    let puts: Vec<_> = sentry.requests()[calls..]
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| (r.status, r.json.clone().unwrap_or_default()))
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_eq!(puts[0].0, 503);
    assert_eq!(puts[1], (200, json!({ "status": "resolved" })));
    for r in sentry.requests() {
        assert_eq!(
            r.authorization.as_deref(),
            Some(&*format!("Bearer {}", fake_sentry::TOKEN))
        );
    }
    let inc = w.app.incident(id).await;
    let synced = deliveries_to(&inc, "sentry-sync");
    assert_eq!(synced.len(), 3, "link, assign, resolve: {synced:?}");
    assert!(
        synced.iter().all(|d| d["status"] == "delivered"),
        "{synced:?}"
    );
    let post_mortems = || {
        w.slack
            .requests()
            .iter()
            .filter(|r| r.body.contains("Post-mortem"))
            .count()
    };
    let told = post_mortems();
    assert!(told >= 1);

    // Sentry sends its `issue.resolved` back: our echo. No second post-mortem, no loop.
    let calls = sentry.requests().len();
    post(&w.app, "issue", &sentry_resolved()).await;
    deliver_due(&w.app).await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "resolved");
    assert_eq!(inc["episode"], 1);
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t.contains("Sentry confirmed the resolution we sent"))
    );
    assert_eq!(post_mortems(), told, "no second post-mortem");
    assert_eq!(
        sentry.requests().len(),
        calls,
        "nothing sent back to Sentry"
    );
}

#[tokio::test]
async fn a_late_echo_does_not_resolve_the_episode_that_opened_since() {
    let (w, sentry) = synced_world().await;
    let id = open_critical(&w.app).await;
    act(&w.app, id, "resolve", "alice").await;
    deliver_due(&w.app).await;
    // New events reopen it before Sentry's echo of our resolve arrives.
    error_event(&w.app, "evt-again").await;
    assert_eq!(w.app.incident(id).await["episode"], 2);
    post(&w.app, "issue", &sentry_resolved()).await;
    let inc = w.app.incident(id).await;
    assert_eq!(inc["state"], "triggered", "the new episode stays open");
    assert!(
        timeline_details(&inc)
            .iter()
            .any(|t| t.contains("episode 2 stays open"))
    );
    // A resolution made in Sentry itself afterwards is Sentry's own: it resolves, and is not
    // sent back.
    let before = sentry.requests().len();
    let mut by_hand = sentry_resolved();
    by_hand["actor"]["name"] = "Someone In Sentry".into();
    post(&w.app, "issue", &by_hand).await;
    deliver_due(&w.app).await;
    assert_eq!(w.app.incident(id).await["state"], "resolved");
    assert_eq!(sentry.requests().len(), before);
}
