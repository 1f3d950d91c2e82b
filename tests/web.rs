//! The on-call web page: lists incidents, and acknowledges or resolves through a form that asks
//! for a name. With `API_TOKEN` set the pages want HTTP Basic sign-in (token as password), as the
//! API wants the bearer token; scripts may give the token as a form field instead.
//!
//! `/` lists open incidents by urgency with countdowns, filters and a resolved list by page;
//! `/incidents/{id}` tells the whole story; `/deliveries` retries dead letters. The mix of
//! incidents is posted as signed webhooks built from the real Sentry fixtures (`support::seed`).

mod support;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::notify::worker::Step;
use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::seed::*;
use support::*;

#[tokio::test]
async fn web_page_lists_and_acknowledges_with_the_api_token() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            api_token: secret("t0ken"),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let r = app
        .post_sentry(
            Some("event_alert"),
            &fixture("event_alert.triggered.4.json"),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();

    // Not signed in: the browser is asked for credentials, and nothing is shown.
    for path in ["/".to_string(), format!("/incidents/{id}")] {
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"paiid-alerts\", charset=\"UTF-8\""
        );
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("href=\"/incidents/") && !body.contains("Timeline"),
            "{body}"
        );
        let r = app
            .client
            .get(app.url(&path))
            .basic_auth("ana", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }

    let index = app
        .client
        .get(app.url("/"))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains(&format!("/incidents/{id}")) && index.contains("critical"),
        "{index}"
    );
    let page = app
        .client
        .get(app.url(&format!("/incidents/{id}")))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"by\" placeholder=\"Your name\" value=\"ana\"")
            && page.contains("Acknowledge"),
        "{page}"
    );
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=\"/assets/app.js\" defer></script>")
            .count(),
        "no inline script: {page}"
    );

    let ack = app.url(&format!("/incidents/{id}/ack"));
    let r = app
        .client
        .post(&ack)
        .form(&[("by", "ana"), ("api_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(&ack)
        .basic_auth("ana", Some("wrong"))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signed in, but sent by another site's page (the browser adds the credentials anyway).
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = app
            .client
            .post(&ack)
            .basic_auth("ana", Some("t0ken"))
            .header(header, value)
            .form(&[("by", "ana")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{header}: {value}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM incidents WHERE state = 'triggered'")
            .await,
        1,
        "a forged post changes nothing"
    );
    let r = app
        .client
        .post(&ack)
        .form(&[("by", ""), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(&ack)
        .basic_auth("ana", Some("t0ken"))
        .header("Origin", format!("http://{}", app.addr))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Acknowledged"));

    let inc: Value = app
        .client
        .get(app.url(&format!("/api/incidents/{id}")))
        // The page's JSON link works for a browser signed in to the pages.
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acknowledged_via"], "web");
    assert!(
        inc["next_escalation_at"].is_null(),
        "the timer is cancelled"
    );

    // Pages are never framed (a framed page could be clicked into acknowledging) and run no
    // script.
    let r = app
        .client
        .get(app.url(&format!("/incidents/{id}")))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && csp.contains("script-src 'self';")
            && !csp.contains("unsafe-inline'; form")
            && !csp.contains("script-src 'self' 'unsafe"),
        "{csp}"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");

    // Reading the API with the browser's sign-in works; acting needs the bearer token, which a
    // browser never adds by itself to a request a hostile page makes.
    let r = app
        .client
        .post(app.url("/api/test-alert"))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/resolve")))
        .basic_auth("ana", Some("t0ken"))
        .json(&serde_json::json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = app
        .client
        .post(app.url("/incidents/999/ack"))
        .form(&[("by", "ana"), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Signed in to the pages, the name signed in with is who acts: a `by` field (hidden on the
/// one-button forms, read-only on the others) cannot make ana's post record someone else.
#[tokio::test]
async fn the_signed_in_name_wins_over_a_by_field() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            api_token: secret("t0ken"),
            ..signed_secrets()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for (issue, title) in [("9100", "Order router down"), ("9101", "Ledger stuck")] {
        let answer = post_signed(&app, "event_alert", &critical(issue, issue, title)).await;
        ids.push(opened(&answer).0);
    }
    let incident = |id: i64| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/api/incidents/{id}")))
                .bearer_auth("t0ken")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    let page = app
        .client
        .get(app.url(&format!("/incidents/{}", ids[0])))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("value=\"ana\" required maxlength=\"200\" readonly"),
        "the name field says who is signed in and is not edited: {page}"
    );

    let r = app
        .client
        .post(app.url(&format!("/incidents/{}/ack", ids[0])))
        .basic_auth("ana", Some("t0ken"))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("by", "mallory")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(incident(ids[0]).await["acknowledged_by"], "ana");

    // Also when the form carries the token as a script would, the browser's sign-in names the
    // actor.
    let r = app
        .client
        .post(app.url(&format!("/incidents/{}/resolve", ids[1])))
        .basic_auth("ana", Some("t0ken"))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("by", "mallory"), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(incident(ids[1]).await["resolved_by"], "ana");

    // A script with the token in the form and no sign-in still names itself.
    let r = app
        .client
        .post(app.url(&format!("/incidents/{}/resolve", ids[0])))
        .form(&[("by", "deploy-bot"), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(incident(ids[0]).await["resolved_by"], "deploy-bot");
}

/// A channel with nothing configured only reaches the log: the incident page says so and calls
/// its deliveries "logged", never "delivered".
#[tokio::test]
async fn a_log_only_channel_is_shown_as_logged_not_delivered() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let (id, _) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("9200", "l-1", "Order router down"),
        )
        .await,
    );
    app.workers.outbox.drain().await.unwrap();
    assert!(
        app.scalar("SELECT COUNT(*) FROM deliveries WHERE channel = 'slack-alerts' AND status = 'delivered'")
            .await
            >= 1
    );
    let story = html(&app, &format!("/incidents/{id}")).await;
    let deliveries = table(&story, "deliveries");
    let slack = deliveries
        .split("<tr class=\"delivery\"")
        .find(|row| row.contains(">slack-alerts<"))
        .unwrap_or_else(|| panic!("{deliveries}"));
    assert!(
        slack.contains(
            "<span class=\"log-only small\">(log only: neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set)</span>"
        ) && slack.contains("<td data-label=\"Status\">logged")
            && slack.contains("· logged"),
        "{slack}"
    );
    assert!(
        !slack.contains(">delivered") && !slack.contains("· delivered"),
        "{slack}"
    );
}

const MINUTE: i64 = 60_000;

fn at(minutes: i64) -> i64 {
    START_MS + minutes * MINUTE
}

/// The seeded mix (see [`seed`]).
struct Mix {
    critical: i64,
    high: i64,
    acknowledged: i64,
    medium: i64,
    unclassified: i64,
    resolved: i64,
}

/// A triggered critical (minute 0), a triggered high (minute 1), a critical acknowledged by bo
/// (minute 2, acknowledged at 3), a medium and an unclassified (minute 3), and a resolved
/// critical; the clock left at minute 5.
async fn seed(app: &TestApp) -> Mix {
    app.clock.set(at(0));
    let (first, sev) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3001", "c-1", "Order router down"),
        )
        .await,
    );
    assert_eq!(sev, "critical");
    app.clock.set(at(1));
    let (high, sev) =
        opened(&post_signed(app, "metric_alert", &slow_p95("601", "Slow checkout p95")).await);
    assert_eq!(sev, "high");
    app.clock.set(at(2));
    let (acknowledged, _) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3002", "a-1", "Payments API 500s"),
        )
        .await,
    );
    app.clock.set(at(3));
    act(app, acknowledged, "ack", "bo", None).await;
    let (medium, sev) =
        opened(&post_signed(app, "metric_alert", &apdex_drop("602", "Apdex drop on web")).await);
    assert_eq!(sev, "medium");
    let (unclassified, sev) = opened(
        &post_signed(
            app,
            "event_alert",
            &info_message("u-1", "A test message from golang"),
        )
        .await,
    );
    assert_eq!(sev, "unclassified");
    let (resolved, _) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3003", "r-1", "Cache node lost"),
        )
        .await,
    );
    app.clock.set(at(4));
    act(app, resolved, "resolve", "ana", None).await;
    app.clock.set(at(5));
    Mix {
        critical: first,
        high,
        acknowledged,
        medium,
        unclassified,
        resolved,
    }
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn html(app: &TestApp, path: &str) -> String {
    let (status, body) = page(app, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The HTML of table `id` (up to its end).
fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table#{id}: {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</table>").unwrap_or(rest.len())]
}

/// `(id, severity, state)` of the rows of `table#open-incidents`, in order.
fn open_rows(html: &str) -> Vec<(i64, String, String)> {
    table(html, "open-incidents")
        .split("<tr class=\"incident\" ")
        .skip(1)
        .map(|row| {
            let attr = |name: &str| {
                let from = row.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                row[from..from + row[from..].find('"').unwrap()].to_string()
            };
            (
                attr("data-id").parse().unwrap(),
                attr("data-severity"),
                attr("data-state"),
            )
        })
        .collect()
}

/// The row of incident `id` in `table#open-incidents`.
fn open_row(html: &str, id: i64) -> String {
    let t = table(html, "open-incidents");
    let start = t
        .find(&format!("<tr class=\"incident\" data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id}: {t}"));
    let rest = &t[start..];
    rest[..rest.find("</tr>").unwrap()].to_string()
}

fn ids(rows: &[(i64, String, String)]) -> Vec<i64> {
    rows.iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn the_on_call_page_lists_by_urgency_with_live_countdowns() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let m = seed(&app).await;

    let index = html(&app, "/").await;
    let rows = open_rows(&index);
    // Before this page, `/` listed newest first: the critical came last.
    assert_eq!(
        ids(&rows),
        [m.critical, m.high, m.acknowledged, m.medium, m.unclassified],
        "{rows:?}"
    );
    assert_eq!(
        rows.iter()
            .map(|r| (r.1.as_str(), r.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("critical", "triggered"),
            ("high", "triggered"),
            ("critical", "acknowledged"),
            ("medium", "triggered"),
            ("unclassified", "triggered"),
        ]
    );
    assert!(
        table(&index, "resolved-incidents")
            .contains(&format!("href=\"/incidents/{}\"", m.resolved))
    );

    // Critical escalates 15 minutes after it opened: 10 minutes left at minute 5; high after 60.
    let critical_row = open_row(&index, m.critical);
    assert!(
        critical_row.contains(&format!(
            "<span class=\"countdown\" data-due-ms=\"{}\" data-kind=\"next\">escalates in 10:00</span>",
            at(15)
        )),
        "{critical_row}"
    );
    assert!(
        critical_row.contains("<td class=\"nw\" data-label=\"Age\">5m 0s</td>"),
        "{critical_row}"
    );
    assert!(
        critical_row.contains(&format!(
            "<form class=\"ack\" method=\"post\" action=\"/incidents/{}/ack\">",
            m.critical
        )) && critical_row.contains("<button type=\"submit\">Acknowledge</button></form>"),
        "{critical_row}"
    );
    assert!(critical_row.contains(&format!(
        "<a href=\"/incidents/{}\">Order router down</a>",
        m.critical
    )));
    assert!(
        open_row(&index, m.high).contains(">escalates in 56:00</span>"),
        "{}",
        open_row(&index, m.high)
    );
    let acked = open_row(&index, m.acknowledged);
    assert!(
        acked.contains("<td data-label=\"Acknowledged by\">bo</td>")
            && !acked.contains("form class=\"ack\""),
        "{acked}"
    );
    assert!(open_row(&index, m.medium).contains("no escalation"));
    // Refreshes itself: the script ticks from the server's clock, scripts off reload anyway.
    assert!(
        index.contains(&format!("data-now-ms=\"{}\"", at(5))),
        "{index}"
    );
    assert!(index.contains("data-refresh-s=\"15\""));
    assert!(index.contains("<noscript><meta http-equiv=\"refresh\" content=\"15\"></noscript>"));

    // A critical that a silence holds pages nobody: it waits with the rest, saying why.
    let r = app
        .client
        .post(app.url("/api/silences"))
        .json(&serde_json::json!({
            "matchers": { "title_regex": "^Quote feed stale$" },
            "duration": "1h",
            "author": "ana",
            "comment": "feed vendor maintenance",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let silence = r.json::<Value>().await.unwrap()["silence"]["id"]
        .as_i64()
        .unwrap();
    let (held, sev) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("3004", "s-1", "Quote feed stale"),
        )
        .await,
    );
    assert_eq!(sev, "critical");
    let index = html(&app, "/").await;
    assert_eq!(
        ids(&open_rows(&index)),
        [
            m.critical,
            m.high,
            m.acknowledged,
            held,
            m.medium,
            m.unclassified
        ]
    );
    let row = open_row(&index, held);
    assert!(
        row.contains(&format!("silenced by #{silence}")) && row.contains("no escalation"),
        "{row}"
    );
    assert!(
        html(&app, &format!("/incidents/{held}"))
            .await
            .contains(&format!("<a href=\"/silences\">silenced by #{silence}</a>"))
    );

    // Past the deadline, before the scheduler fired: said as such.
    app.clock.set(at(15) + 5_000);
    let row = open_row(&html(&app, "/").await, m.critical);
    assert!(row.contains(">escalation due 5s ago</span>"), "{row}");
    // Fired: how long ago, counting from the firing.
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    app.clock.set(at(18) + 5_000);
    let row = open_row(&html(&app, "/").await, m.critical);
    assert!(
        row.contains(&format!(
            "<span class=\"countdown\" data-due-ms=\"{}\" data-kind=\"fired\">escalated 3m 0s ago</span>",
            at(15) + 5_000
        )),
        "{row}"
    );
}

#[tokio::test]
async fn filters_search_and_pages_narrow_the_lists_and_a_bad_filter_is_a_400() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let m = seed(&app).await;

    let rows = open_rows(&html(&app, "/?severity=critical").await);
    assert_eq!(ids(&rows), [m.critical, m.acknowledged]);
    let rows = open_rows(&html(&app, "/?state=acknowledged&severity=").await);
    assert_eq!(ids(&rows), [m.acknowledged], "a blank value is no filter");
    let index = html(&app, "/?q=PAYMENTS").await;
    assert_eq!(
        ids(&open_rows(&index)),
        [m.acknowledged],
        "case-insensitive"
    );
    assert!(
        index.contains("value=\"PAYMENTS\""),
        "the form keeps the search"
    );
    assert!(!table(&index, "resolved-incidents").contains("Cache node lost"));
    // `%` and `_` are literal, not wildcards.
    assert!(open_rows(&html(&app, "/?q=%25").await).is_empty());
    assert!(open_rows(&html(&app, "/?q=_").await).is_empty());
    let env: String = paiid_alerts::testing::column(
        &app.state.store,
        &format!(
            "SELECT environment FROM incidents WHERE id = {}",
            m.critical
        ),
    )
    .await
    .unwrap()
    .remove(0);
    let rows = open_rows(&html(&app, &format!("/?environment={env}")).await);
    assert_eq!(ids(&rows), [m.critical, m.acknowledged], "{env}");
    let index = html(&app, "/?state=resolved").await;
    assert!(open_rows(&index).is_empty());
    assert!(index.contains("Nothing open matches the filter."));
    assert!(table(&index, "resolved-incidents").contains("Cache node lost"));
    let index = html(&app, "/?state=triggered").await;
    assert!(!table(&index, "resolved-incidents").contains("Cache node lost"));

    // A word that names nothing is refused, saying which parameter and which words there are,
    // in the page's words rather than the query parser's.
    for (path, says) in [
        (
            "/?state=open",
            [
                "state",
                "`open`",
                "triggered, acknowledged, resolved, muted",
            ],
        ),
        (
            "/?severity=urgent",
            [
                "severity",
                "`urgent`",
                "unclassified, low, medium, high, critical",
            ],
        ),
        ("/?page=0", ["page", "`0`", "a positive whole number"]),
        (
            "/?colour=red",
            [
                "colour",
                "state, severity, project, environment, q, page",
                "parameter",
            ],
        ),
        (
            "/deliveries?requeued=x",
            ["requeued", "`x`", "a delivery number"],
        ),
    ] {
        let (status, body) = page(&app, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("Bad filter"), "{path}: {body}");
        for s in says {
            assert!(body.contains(s), "{path}: {s}: {body}");
        }
        assert!(
            !body.contains("Failed to deserialize") && !body.contains("query string"),
            "{path}: {body}"
        );
        assert!(body.contains("<nav id=\"nav\">"), "{body}");
    }
    let (_, body) = page(&app, "/?state=open").await;
    assert!(
        body.contains("triggered, acknowledged, resolved, muted"),
        "{body}"
    );

    // 26 more resolved: 25 on the first page, the rest and the earlier one on the second.
    for i in 0..26 {
        app.clock.set(at(10 + i));
        let (id, _) = opened(
            &post_signed(
                &app,
                "event_alert",
                &critical(
                    &format!("40{i:02}"),
                    &format!("p-{i}"),
                    &format!("Resolved #{i}"),
                ),
            )
            .await,
        );
        act(&app, id, "resolve", "ana", None).await;
    }
    let first = html(&app, "/").await;
    let resolved = table(&first, "resolved-incidents");
    assert_eq!(resolved.matches("<tr class=\"resolved\"").count(), 25);
    assert!(resolved.contains(">Resolved #25</a>"), "most recent first");
    assert!(!resolved.contains(">Resolved #0</a>"));
    assert!(
        first.contains("<a rel=\"next\" href=\"/?page=2\">"),
        "{first}"
    );
    let second = html(&app, "/?page=2").await;
    let resolved = table(&second, "resolved-incidents");
    assert_eq!(resolved.matches("<tr class=\"resolved\"").count(), 2);
    assert!(resolved.contains(">Resolved #0</a>") && resolved.contains(">Cache node lost</a>"));
    assert!(second.contains("<a rel=\"prev\" href=\"/\">") && !second.contains("rel=\"next\""));
    // The open list is on every page, and the filter follows the page links.
    assert_eq!(open_rows(&second).len(), 5);
    let filtered = html(&app, "/?q=Resolved").await;
    assert!(
        filtered.contains("href=\"/?q=Resolved&amp;page=2\""),
        "{filtered}"
    );
}

/// Critical pages Slack (a fake that can fail) and escalates to PagerDuty after 15 minutes.
fn story_routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "{slack}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall] }}
delivery:
  retry_schedule: [1s, 2s]
  max_attempts: 3
  send_timeout: 2s
"##,
        slack = slack.webhook_url(),
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

async fn story_app(slack: &FakeSlack, pd: &FakePagerDuty) -> TestApp {
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    spawn_with(AppOptions {
        routing: story_routing(slack, pd),
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await
}

#[tokio::test]
async fn the_incident_page_tells_the_whole_story_and_resolves_with_a_root_cause() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = story_app(&slack, &pd).await;
    app.clock.set(at(0));
    // No public capture has breadcrumbs or a release: the real production error with the
    // trading backend's breadcrumbs (as PaiiD's guide records them) and a release added.
    let mut body = critical("3001", "c-1", "Order router down");
    body["data"]["event"]["release"] = "paiid-backend@1.4.2".into();
    body["data"]["event"]["breadcrumbs"] = serde_json::json!({ "values": [
        { "timestamp": 1_779_999_990.0, "category": "market-data", "level": "info",
          "message": "quote feed reconnected" },
        { "timestamp": 1_779_999_995.5, "category": "trading", "level": "warning",
          "message": "order router pool at 95%" },
    ]});
    let (id, _) = opened(&post_signed(&app, "event_alert", &body).await);
    // Slack fails once (retried, then delivered); the escalation fires and PagerDuty is paged.
    slack.fail_next(1, fake_slack::Behaviour::Status(500));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    app.clock.set(at(0) + 1_500);
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    app.clock.set(at(15) + 2_000);
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    app.workers.outbox.drain().await.unwrap();
    app.clock.set(at(16));

    let story = html(&app, &format!("/incidents/{id}")).await;
    for needle in [
        "<span id=\"state\">triggered</span>",
        &format!("<form id=\"ack\" method=\"post\" action=\"/incidents/{id}/ack\">"),
        &format!("<form id=\"resolve\" method=\"post\" action=\"/incidents/{id}/resolve\">"),
        "<textarea id=\"root_cause\" name=\"root_cause\"",
        // Why: the rule and its conditions, from the routing file in force.
        "<section id=\"why\">",
        "<h2>Why critical</h2>",
        "Rule <code>critical-production-errors</code> matched",
        "<li>environment is one of: prod, production</li>",
        "<li>level is one of: error, fatal</li>",
        "notify slack-alerts; escalate after 15m 0s to pagerduty-oncall",
        // Escalations: none due any more, the one that fired 2 s late.
        "<p>Next due: <span class=\"muted\">none scheduled</span></p>",
        "<td data-label=\"Late by\">2s</td>",
        "<span class=\"countdown\" data-due-ms=",
        ">escalated 58s ago</span>",
        // Silence alerts like this.
        "href=\"/silences?project=python&amp;environment=prod&amp;rule=critical-production-errors\"",
    ] {
        assert!(story.contains(needle), "{needle}: {story}");
    }
    // The event: request, top in-app frame, breadcrumbs, tags, release (what intake stored).
    let details: Value = serde_json::from_str(
        &paiid_alerts::testing::column::<String>(
            &app.state.store,
            "SELECT details FROM events ORDER BY id LIMIT 1",
        )
        .await
        .unwrap()
        .remove(0),
    )
    .unwrap();
    let section = &story[story.find("<section id=\"event-details\">").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let mut shown = 0;
    for key in ["request", "top_frame", "release"] {
        if let Some(text) = details[key].as_str() {
            assert!(section.contains(&escape(text)), "{key} {text}: {section}");
            shown += 1;
        }
    }
    let crumbs = details["breadcrumbs"].as_array().unwrap();
    for c in crumbs {
        assert!(
            section.contains(&escape(c["message"].as_str().unwrap())),
            "{c}: {section}"
        );
    }
    let tags = details["tags"].as_array().unwrap();
    for t in tags {
        let shown_tag = format!(
            "<code>{}={}</code>",
            escape(t[0].as_str().unwrap()),
            escape(t[1].as_str().unwrap())
        );
        assert!(section.contains(&shown_tag), "{shown_tag}: {section}");
    }
    assert_eq!(shown, 3, "request, frame and release: {details}");
    assert_eq!(crumbs.len(), 2, "{details}");
    assert!(!tags.is_empty(), "{details}");
    assert!(section.contains("order router pool at 95%") && section.contains(">trading<"));

    // Every delivery and attempt: Slack's 500 then 200, and the PagerDuty page.
    let deliveries = table(&story, "deliveries");
    let rows: Vec<&str> = deliveries.split("<tr class=\"delivery\"").skip(1).collect();
    assert_eq!(rows.len(), 2, "{deliveries}");
    assert!(
        rows[0].contains("<td data-label=\"Channel\"><span class=\"nw\">slack-alerts</span></td>")
            && rows[0].contains("delivered")
            && rows[0].contains("<td data-label=\"Attempts\">2")
            && rows[0].contains("#1 ")
            && rows[0].contains("retry · HTTP 500")
            && rows[0].contains("#2 ")
            && rows[0].contains("delivered · HTTP 200"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("pagerduty-oncall") && rows[1].contains("HTTP 202"),
        "{}",
        rows[1]
    );
    // Real channels are not marked as log-only, here or on the overview.
    assert!(!deliveries.contains("log only"), "{deliveries}");
    let overview = html(&app, "/overview").await;
    let slack_row = &overview[overview
        .find("<li class=\"channel\" data-channel=\"slack-alerts\"")
        .unwrap()..];
    let slack_row = &slack_row[..slack_row.find("</li>").unwrap()];
    assert!(
        slack_row.contains("1 delivered") && !slack_row.contains("log only"),
        "{slack_row}"
    );

    // Resolve with a root cause, through the page's form.
    let r = app
        .client
        .post(app.url(&format!("/incidents/{id}/resolve")))
        .form(&[
            ("episode", "1"),
            (
                "root_cause",
                "  Router pool exhausted after the 14:00 deploy  ",
            ),
            ("by", "carla"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Resolved."));
    let inc = app.incident(id).await;
    assert_eq!(inc["state"], "resolved");
    assert_eq!(inc["resolved_by"], "carla");
    assert_eq!(
        inc["root_cause"],
        "Router pool exhausted after the 14:00 deploy"
    );
    let story = html(&app, &format!("/incidents/{id}")).await;
    assert!(story.contains("<span id=\"state\">resolved</span>"));
    assert!(
        story.contains("<strong>Root cause:</strong> Router pool exhausted after the 14:00 deploy")
    );
    assert!(!story.contains("<form id=\"resolve\"") && !story.contains("<form id=\"ack\""));
    // A root cause longer than the API allows is refused, as there.
    let r = app
        .client
        .post(app.url(&format!("/incidents/{id}/resolve")))
        .form(&[("root_cause", "x".repeat(10_001).as_str()), ("by", "carla")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_dead_delivery_is_retried_from_the_deliveries_page() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = story_app(&slack, &pd).await;
    let (id, _) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("3001", "c-1", "Order router down"),
        )
        .await,
    );
    slack.fail_next(1, fake_slack::Behaviour::SlackError("channel_not_found"));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    let delivery: i64 = app
        .scalar("SELECT id FROM deliveries WHERE channel = 'slack-alerts' AND status = 'dead'")
        .await;

    let listing = html(&app, "/deliveries").await;
    let dead = table(&listing, "dead-letters");
    assert!(
        dead.contains(&format!(
            "<tr class=\"delivery\" data-id=\"{delivery}\" data-status=\"dead\">"
        )) && dead.contains("channel_not_found")
            && dead.contains(&format!(
                "<a href=\"/incidents/{id}\">#{id} Order router down</a>"
            ))
            && dead.contains(&format!(
                "<form class=\"retry\" method=\"post\" action=\"/deliveries/{delivery}/retry\">"
            )),
        "{dead}"
    );
    // The incident page offers it too.
    assert!(
        html(&app, &format!("/incidents/{id}"))
            .await
            .contains(&format!("action=\"/deliveries/{delivery}/retry\""))
    );

    let retry = app.url(&format!("/deliveries/{delivery}/retry"));
    // Protected like the other forms: another site's page cannot make the browser retry.
    let r = app
        .client
        .post(&retry)
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(&retry)
        .form(&[("by", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "who retries must be said");
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE id = {delivery} AND status = 'dead'"
        ))
        .await,
        1
    );

    let no_redirects = paiid_alerts::testing::http_client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(&retry)
        .header("Origin", format!("http://{}", app.addr))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/deliveries?requeued={delivery}")
    );
    // Back in the queue, due now, its attempt kept; the timeline says who asked.
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE id = {delivery} AND status = 'pending' \
             AND attempts = 1 AND next_attempt_at <= {}",
            app.clock.now_ms()
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = {delivery}"
        ))
        .await,
        1
    );
    let timeline = app.incident(id).await["timeline"].clone();
    assert!(
        timeline
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["actor"] == "ana"
                && t["via"] == "web"
                && t["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&format!("delivery #{delivery}"))),
        "{timeline}"
    );
    let listing = html(&app, &format!("/deliveries?requeued={delivery}")).await;
    assert!(listing.contains(&format!("Delivery #{delivery} is queued again.")));
    assert!(
        listing.contains("Nothing dead or failing"),
        "pending is the worker's: {listing}"
    );

    // The worker sends it (once our pacing of the Slack webhook lets it: a second after the
    // failed post).
    app.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE id = {delivery} AND status = 'delivered' AND attempts = 2"
        ))
        .await,
        1
    );
    assert_eq!(slack.messages().len(), 1);
    // Only a dead row is retried by hand.
    let r = app
        .client
        .post(&retry)
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("is delivered, not dead"));
    let r = app
        .client
        .post(app.url("/deliveries/999999/retry"))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn every_page_has_the_navigation_and_fits_a_phone() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let m = seed(&app).await;
    for path in [
        "/".to_string(),
        format!("/incidents/{}", m.critical),
        format!("/incidents/{}", m.resolved),
        "/deliveries".to_string(),
        "/incidents/999999".to_string(),
        "/?state=bogus".to_string(),
    ] {
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains("<nav id=\"nav\">"), "{path}: {body}");
        for link in [
            "<a href=\"/\">Incidents</a>",
            "<a href=\"/overview\">Overview</a>",
            "<a href=\"/deliveries\">Deliveries</a>",
            "<a href=\"/silences\">Silences</a>",
        ] {
            assert!(body.contains(link), "{path}: {link}");
        }
        // Phones: the viewport is the device's, and tables become cards on narrow screens.
        assert!(
            body.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(body.contains("@media (max-width:700px)"), "{path}");
        assert!(
            body.contains("table.cards td[data-label]::before"),
            "{path}"
        );
        assert!(
            !body.contains("http://") || path.starts_with("/incidents/"),
            "{path}: no external assets"
        );
        assert_eq!(
            body.matches("<script").count(),
            body.matches("<script src=\"/assets/app.js\" defer></script>")
                .count(),
            "{path}: no inline script"
        );
    }
    let r = app
        .client
        .get(app.url("/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let js = r.text().await.unwrap();
    // Display only: it ticks and reloads, it never posts.
    assert!(js.contains("escalates in ") && js.contains("location.reload()"));
    for acting in ["submit(", "fetch(", "XMLHttpRequest", ".click("] {
        assert!(!js.contains(acting), "{acting}");
    }
}
