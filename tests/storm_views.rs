//! How a storm (an incident of kind `storm` whose members point at it with `storm_id`) is
//! shown: on `/` and its own page, in the JSON API, in the overview's counts, and in the
//! messages it sends (a Slack card the fake Slack checks against Block Kit's limits, the
//! PagerDuty summary, the escalation mail).
//!
//! The storm engine forms storms in the intake writer; these tests make their storms by hand
//! (`make_storm`) with the engine switched off, so that they test the presentation alone.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use serde_json::Value;
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::seed::*;
use support::smtp::SmtpSink;
use support::*;

/// The repository's routing file with storms switched off (these tests make their own).
fn routing_without_storms(base: &str) -> String {
    let on = "storm:                                      # many distinct issues at once page as one group\n  enabled: true";
    assert!(base.contains(on), "routing.yaml's storm section moved");
    base.replace(
        on,
        "storm:                                      # many distinct issues at once page as one group\n  enabled: false",
    )
}

async fn app() -> TestApp {
    let routing = std::fs::read_to_string(repo_path("routing.yaml")).unwrap();
    spawn_with(AppOptions {
        routing: routing_without_storms(&routing),
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await
}

/// A storm of `severity` standing for `members` (which point at it from now on), opened now,
/// with its `opened` timeline entry, as the engine writes one: its event count is its number of
/// members, its policy the first member's.
async fn make_storm(app: &TestApp, members: &[i64]) -> i64 {
    let now = app.clock.now_ms();
    let store = &app.state.store;
    let n = members.len();
    // Its id as SQLite would give it: the service numbers incidents itself (PostgreSQL gives
    // none).
    let id = app
        .scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents")
        .await;
    paiid_alerts::testing::execute(
        store,
        &format!(
            "INSERT INTO incidents (id, incident_key, episode, severity, state, title, project, \
               event_count, first_seen, last_seen, opened_at, policy, next_escalation_at, \
               updated_at, kind) \
             SELECT {id}, 'storm:' || severity || ':' || '{now}', 1, severity, 'triggered', \
               'Storm: {n} incidents', project, {n}, {now}, {now}, {now}, policy, \
               {now} + 900000, {now}, 'storm' \
             FROM incidents WHERE id = {}",
            members[0]
        ),
    )
    .await
    .unwrap();
    let ids = members
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    paiid_alerts::testing::execute(
        store,
        &format!("UPDATE incidents SET storm_id = {id} WHERE id IN ({ids})"),
    )
    .await
    .unwrap();
    paiid_alerts::testing::execute(
        store,
        &format!(
            "INSERT INTO timeline (incident_id, at, kind, detail) \
             VALUES ({id}, {now}, 'opened', 'storm of {n} incidents')"
        ),
    )
    .await
    .unwrap();
    id
}

/// Three criticals (the second with three events) and one high, through signed webhooks.
async fn seed(app: &TestApp) -> [i64; 4] {
    let (a, _) =
        opened(&post_signed(app, "event_alert", &critical("1", "a-1", "Orders down")).await);
    let (b, _) =
        opened(&post_signed(app, "event_alert", &critical("2", "b-1", "Quotes <stale>")).await);
    for e in ["b-2", "b-3"] {
        post_signed(app, "event_alert", &critical("2", e, "Quotes <stale>")).await;
    }
    let (c, _) =
        opened(&post_signed(app, "event_alert", &critical("3", "c-1", "Fills lost")).await);
    let (d, sev) =
        opened(&post_signed(app, "metric_alert", &slow_p95("77", "Slow checkout")).await);
    assert_eq!(sev, "high");
    [a, b, c, d]
}

async fn html(app: &TestApp, path: &str) -> String {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The `<tr>` of `/`'s row for incident `id` in the table `table_id`.
fn row<'a>(page: &'a str, table_id: &str, id: i64) -> &'a str {
    let table = &page[page.find(&format!("id=\"{table_id}\"")).unwrap()..];
    let start = table
        .find(&format!("data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id} in {table_id}: {table}"));
    let rest = &table[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

#[tokio::test]
async fn the_index_marks_the_storm_and_its_members() {
    let app = app().await;
    let [a, b, c, d] = seed(&app).await;
    let s = make_storm(&app, &[a, b, c]).await;

    let page = html(&app, "/").await;
    let storm_row = row(&page, "open-incidents", s);
    assert!(
        storm_row.contains("<span class=\"badge storm\">storm</span>"),
        "{storm_row}"
    );
    assert!(storm_row.contains(">3 incidents</td>"), "{storm_row}");
    for m in [a, b, c] {
        let r = row(&page, "open-incidents", m);
        assert!(
            r.contains(&format!(
                "<a class=\"badge member\" href=\"/incidents/{s}\">storm #{s}</a>"
            )),
            "{r}"
        );
        assert!(!r.contains("badge storm\""), "{r}");
    }
    let other = row(&page, "open-incidents", d);
    assert!(!other.contains("badge"), "{other}");

    // Resolved, it is listed as a storm among the resolved.
    act(&app, s, "resolve", "ana", None).await;
    let page = html(&app, "/").await;
    let r = row(&page, "resolved-incidents", s);
    assert!(
        r.contains("badge storm") && r.contains(">3 incidents</td>"),
        "{r}"
    );
}

#[tokio::test]
async fn a_storms_page_lists_its_members_and_a_members_page_links_its_storm() {
    let app = app().await;
    let [a, b, c, _] = seed(&app).await;
    let s = make_storm(&app, &[a, b, c]).await;
    act(&app, b, "ack", "ana", None).await;

    let page = html(&app, &format!("/incidents/{s}")).await;
    assert!(
        page.contains("<span class=\"badge storm\">storm</span>"),
        "{page}"
    );
    let members = &page[page
        .find("<section id=\"members\">")
        .expect("members section")..];
    let members = &members[..members.find("</section>").unwrap()];
    assert_eq!(
        members.matches("<tr class=\"member\"").count(),
        3,
        "{members}"
    );
    for (m, title, state, events) in [
        (a, "Orders down", "triggered", 1),
        (b, "Quotes &lt;stale&gt;", "acknowledged", 3),
        (c, "Fills lost", "triggered", 1),
    ] {
        let tr = &members[members.find(&format!("data-id=\"{m}\"")).unwrap()..];
        let tr = &tr[..tr.find("</tr>").unwrap()];
        assert!(
            tr.contains(&format!("<a href=\"/incidents/{m}\">#{m} {title}</a>")),
            "{tr}"
        );
        assert!(
            tr.contains(&format!("data-label=\"State\">{state}<")),
            "{tr}"
        );
        assert!(tr.contains("data-label=\"Severity\">critical<"), "{tr}");
        assert!(
            tr.contains(&format!("data-label=\"Events\">{events}<")),
            "{tr}"
        );
        assert!(tr.contains("data-label=\"Opened\">20"), "{tr}");
    }
    // The injected title stays text.
    assert!(!page.contains("<stale>"));

    let member = html(&app, &format!("/incidents/{a}")).await;
    assert!(
        member.contains(&format!(
            "<td id=\"storm-link\">part of <a href=\"/incidents/{s}\">storm #{s}</a>"
        )),
        "{member}"
    );
    assert!(!member.contains("<section id=\"members\">"));
}

#[tokio::test]
async fn the_api_says_kind_storm_id_and_a_storms_members() {
    let app = app().await;
    let [a, b, c, d] = seed(&app).await;
    let s = make_storm(&app, &[a, b, c]).await;

    let storm = app.incident(s).await;
    assert_eq!(storm["kind"], "storm", "{storm}");
    assert_eq!(storm["storm_id"], Value::Null, "{storm}");
    assert_eq!(storm["members"], serde_json::json!([a, b, c]), "{storm}");

    let member = app.incident(b).await;
    assert_eq!(member["kind"], "issue", "{member}");
    assert_eq!(member["storm_id"], s, "{member}");
    assert!(member.get("members").is_none(), "{member}");

    let alone = app.incident(d).await;
    assert_eq!(alone["kind"], "issue");
    assert_eq!(alone["storm_id"], Value::Null);

    let list = app.incidents().await;
    let kinds: Vec<(i64, String)> = list
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(kinds.contains(&(s, "storm".to_string())), "{kinds:?}");
    assert!(kinds.contains(&(a, "issue".to_string())), "{kinds:?}");
}

#[tokio::test]
async fn the_overview_counts_issues_not_storms() {
    let app = app().await;
    let [a, b, c, _] = seed(&app).await;
    make_storm(&app, &[a, b, c]).await;

    let page = html(&app, "/overview").await;
    let per_day = &page[page.find("<section id=\"per-day\"").unwrap()..];
    let per_day = &per_day[..per_day.find("</section>").unwrap()];
    // Four issues opened today: the storm is a group of three of them, not a fifth.
    assert!(per_day.contains("data-total=\"4\""), "{per_day}");
    assert!(!per_day.contains("data-total=\"5\""), "{per_day}");
    let critical = &page[page
        .find("<g class=\"severity\" data-severity=\"critical\"")
        .unwrap()..];
    assert!(critical.contains("data-opened=\"3\""), "{critical}");
    let noisy = &page[page.find("<section id=\"noisiest\"").unwrap()..];
    let noisy = &noisy[..noisy.find("</section>").unwrap()];
    assert!(!noisy.contains("Storm:"), "{noisy}");
    assert_eq!(noisy.matches("<li class=\"noisy\"").count(), 4, "{noisy}");
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn channels_routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, manager-email] }}
storm:
  enabled: false
delivery:
  retry_schedule: [1s, 2s]
  max_attempts: 4
  send_timeout: 2s
  slack_update_interval: 1s
"##,
        token = slack.bot_token(),
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

/// `n` members of one project made as rows (member `i` has `i` events, so the last is the
/// noisiest), with titles that need escaping; returns their ids.
async fn make_members(app: &TestApp, n: i64, policy_from: i64) -> Vec<i64> {
    let now = app.clock.now_ms();
    // Their ids as SQLite would give them: the service numbers incidents itself (PostgreSQL
    // gives none).
    let last = app
        .scalar("SELECT COALESCE(MAX(id), 0) FROM incidents")
        .await;
    paiid_alerts::testing::execute(
        &app.state.store,
        &format!(
            "INSERT INTO incidents (id, incident_key, severity, state, title, project, \
               event_count, first_seen, last_seen, opened_at, policy, updated_at) \
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) \
             SELECT {last} + i, 'member-' || i, 'critical', 'triggered', \
               'OperationalError ' || i || ': <!channel> could not connect', 'paiid-backend', i, \
               {now}, {now}, {now}, (SELECT policy FROM incidents WHERE id = {policy_from}), \
               {now} FROM k"
        ),
    )
    .await
    .unwrap();
    paiid_alerts::testing::column(
        &app.state.store,
        "SELECT id FROM incidents WHERE incident_key LIKE 'member-%' ORDER BY id",
    )
    .await
    .unwrap()
}

/// A delivery of the storm waiting for `channel`, as the engine's transitions queue them.
async fn queue(app: &TestApp, storm: i64, channel: &str, kind: &str) {
    let now = app.clock.now_ms();
    let detail = if kind == "escalation" {
        r#"'{"step":1,"waited_ms":900000}'"#
    } else {
        "NULL"
    };
    paiid_alerts::testing::execute(
        &app.state.store,
        &format!(
            "INSERT INTO deliveries (incident_id, episode, channel, kind, detail, status, \
               next_attempt_at, created_at) \
             VALUES ({storm}, 1, '{channel}', '{kind}', {detail}, 'pending', {now}, {now})"
        ),
    )
    .await
    .unwrap();
}

async fn drain(app: &TestApp, channel: &str) {
    for _ in 0..20 {
        if app.workers.outbox.step(channel).await.unwrap()
            == paiid_alerts::testing::notify::worker::Step::Idle
        {
            return;
        }
    }
    panic!("{channel}: still busy after 20 steps");
}

async fn delivery_statuses(app: &TestApp, storm: i64) -> Vec<(String, String, String)> {
    paiid_alerts::testing::fetch_all(
        &app.state.store,
        &format!(
            "SELECT channel, kind, status FROM deliveries WHERE incident_id = {storm} ORDER BY id"
        ),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_storm_of_300_pages_once_with_its_count_and_noisiest_within_every_limit() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let app = spawn_with(AppOptions {
        routing: channels_routing(&slack, &pd),
        secrets: paiid_alerts::testing::settings::Secrets {
            smtp_url: Some(paiid_alerts::testing::settings::Secret::new(smtp.url())),
            ..signed_secrets()
        },
        run_workers: false,
        tweak: Some(Box::new({
            let api = slack.api_base();
            move |s| s.slack_api_url = api
        })),
        ..AppOptions::default()
    })
    .await;
    // One real issue gives the storm its policy; 300 members made as rows.
    let (first, _) =
        opened(&post_signed(&app, "event_alert", &critical("1", "a-1", "Orders down")).await);
    drain(&app, "slack-alerts").await;
    let members = make_members(&app, 300, first).await;
    assert_eq!(members.len(), 300);
    let s = make_storm(&app, &members).await;

    // The card: Slack (the fake checks Block Kit's limits) accepts it.
    // (Slack takes one message a second per channel.)
    app.clock.advance(Duration::from_secs(2));
    queue(&app, s, "slack-alerts", "opened").await;
    drain(&app, "slack-alerts").await;
    assert!(slack.rejected().is_empty(), "{:?}", slack.rejected());
    let card = slack
        .messages()
        .into_iter()
        .find(|m| m.text.as_deref().unwrap_or_default().contains("Storm:"))
        .unwrap_or_else(|| {
            panic!(
                "no storm card: {:?}\n{:?}",
                slack.messages(),
                slack.requests()
            )
        });
    let blocks = serde_json::to_string(&card.blocks).unwrap();
    assert!(
        blocks.contains("[CRITICAL] Storm: 300 critical incidents in paiid-backend"),
        "{blocks}"
    );
    // The five noisiest, linked to their pages, then the rest counted.
    let noisiest = members[299];
    assert!(
        blocks.contains(&format!("/incidents/{noisiest}|#{noisiest}>")),
        "{blocks}"
    );
    assert!(
        !blocks.contains(&format!("/incidents/{}|", members[294])),
        "{blocks}"
    );
    assert!(blocks.contains("_and 295 more_"), "{blocks}");
    assert!(!blocks.contains("<!channel>"), "{blocks}");
    assert_eq!(
        card.action_ids(),
        ["ack", "resolve", "ack_link", "open_incident"],
        "{blocks}"
    );
    assert!(blocks.contains("Acknowledge all") && blocks.contains("Resolve all"));

    // It grows (by the real issue, of another project): the count update shows the count now.
    paiid_alerts::testing::execute(
        &app.state.store,
        &format!("UPDATE incidents SET storm_id = {s} WHERE id = {first}"),
    )
    .await
    .unwrap();
    app.clock.advance(Duration::from_secs(2));
    queue(&app, s, "slack-alerts", "count_update").await;
    drain(&app, "slack-alerts").await;
    let card = slack.message(&card.ts).expect("the card");
    assert_eq!(card.updates, 1);
    let blocks = serde_json::to_string(&card.blocks).unwrap();
    assert!(
        blocks.contains("Storm: 301 critical incidents across 2 projects"),
        "{blocks}"
    );
    assert!(blocks.contains("paiid-backend, python"), "{blocks}");
    assert!(blocks.contains("_and 296 more_"), "{blocks}");

    // Its escalation: one PagerDuty trigger and one mail, saying the same.
    queue(&app, s, "pagerduty-oncall", "escalation").await;
    queue(&app, s, "manager-email", "escalation").await;
    drain(&app, "pagerduty-oncall").await;
    drain(&app, "manager-email").await;
    assert_eq!(
        delivery_statuses(&app, s).await,
        [
            ("slack-alerts".into(), "opened".into(), "delivered".into()),
            (
                "slack-alerts".into(),
                "count_update".into(),
                "delivered".into()
            ),
            (
                "pagerduty-oncall".into(),
                "escalation".into(),
                "delivered".into()
            ),
            (
                "manager-email".into(),
                "escalation".into(),
                "delivered".into()
            ),
        ]
    );
    let events = pd.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let summary = events[0]["payload"]["summary"].as_str().unwrap();
    assert!(summary.len() <= 1024, "{}", summary.len());
    assert!(
        summary.starts_with(
            "[CRITICAL] ESCALATION, unacknowledged for 15m 0s: Storm: 301 critical incidents across 2 projects · noisiest: OperationalError 300: <!channel> could not connect (300 events); "
        ),
        "{summary}"
    );
    assert!(summary.ends_with(" · and 296 more"), "{summary}");
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject,
        format!(
            "[CRITICAL] ESCALATION, unacknowledged for 15m 0s: Storm: 301 critical incidents across 2 projects #{s}"
        )
    );
    let text = mails[0].text();
    assert!(text.contains("Incidents:    301"), "{text}");
    assert!(
        text.contains(&format!("/incidents/{noisiest}")) && text.contains("and 296 more"),
        "{text}"
    );
    let html = mails[0].html();
    assert!(
        html.contains("and 296 more") && !html.contains("<!channel>"),
        "{html}"
    );
}

#[tokio::test]
async fn the_weekly_summary_counts_issues_and_says_how_many_storms_grouped() {
    use paiid_alerts::testing::clock::SharedClock;
    use paiid_alerts::testing::config::RoutingConfig;
    use paiid_alerts::testing::digest::{DigestKind, DigestRunner};
    use paiid_alerts::testing::notify::registry::{ChannelEnv, Channels};
    use paiid_alerts::testing::notify::render::Templates;
    use std::sync::Arc;

    let app = app().await;
    let [a, b, c, _] = seed(&app).await;
    make_storm(&app, &[a, b, c]).await;

    let sink = SmtpSink::start().await;
    let cfg = Arc::new(
        RoutingConfig::parse(
            std::path::Path::new("t.yaml"),
            "channels:\n  ops-email: { type: email, to: [\"trading-ops@paiid.ai\"] }\n\
             digest:\n  schedule: \"0 0 8 * * *\"\n  timezone: \"UTC\"\n  to: [ops-email]\n\
             \x20 weekly_schedule: \"0 0 9 * * MON\"\n",
            &|_| None,
        )
        .unwrap(),
    );
    let env = ChannelEnv {
        smtp_url: Some(sink.url()),
        email_from: "alerts@paiid.ai".into(),
        slack_api_url: String::new(),
        pagerduty_events_url: String::new(),
    };
    let channels = Arc::new(Channels::build(&cfg, &env, Arc::new(Templates::defaults())).unwrap());
    let clock: SharedClock = app.clock.clone();
    let runner = DigestRunner::new(
        app.state.store.clone(),
        cfg,
        channels,
        clock,
        Arc::from("https://alerts.test"),
    );
    app.clock.advance(Duration::from_secs(60));
    runner.send_now(DigestKind::Weekly).await.unwrap();
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let text = mails[0].text();
    // Four incidents opened, not five: the storm is a group of three of them.
    assert!(
        text.contains("Incidents opened: 4 (critical 3, high 1)"),
        "{text}"
    );
    assert!(
        text.contains("Storms: 1 grouping 3 incidents (each paged once for its members)"),
        "{text}"
    );
}

/// With the engine on (the default routing): a storm it forms shows the same way.
#[tokio::test]
async fn a_storm_the_engine_forms_is_shown_with_its_members() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let body = critical(&format!("e{i}"), &format!("e{i}-1"), &format!("Error {i}"));
        ids.push(opened(&post_signed(&app, "event_alert", &body).await).0);
        app.clock.advance(Duration::from_secs(1));
    }
    let storms: Vec<i64> = app
        .incidents()
        .await
        .iter()
        .filter(|i| i["kind"] == "storm")
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        storms.len(),
        1,
        "more than 5 criticals within 2 minutes form one storm"
    );
    let s = storms[0];
    let storm = app.incident(s).await;
    let members: Vec<i64> = storm["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_i64().unwrap())
        .collect();
    assert_eq!(members, ids, "{storm}");
    assert_eq!(storm["event_count"], 7, "{storm}");

    let page = html(&app, "/").await;
    let r = row(&page, "open-incidents", s);
    assert!(
        r.contains("badge storm") && r.contains(">7 incidents</td>"),
        "{r}"
    );
    let r = row(&page, "open-incidents", ids[0]);
    assert!(r.contains(&format!("storm #{s}</a>")), "{r}");
    let page = html(&app, &format!("/incidents/{s}")).await;
    assert_eq!(page.matches("<tr class=\"member\"").count(), 7, "{page}");
}
