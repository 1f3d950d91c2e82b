//! `/overview`: the last 30 days in inline SVG. Known incidents go in through real signed
//! webhooks at known times (a manual clock); the page's bars carry their numbers as `data-*`
//! attributes, which are checked here against what was seeded.

mod support;

use std::time::Duration;

use paiid_alerts::testing::settings::Secrets;
use support::seed::*;
use support::*;

const DAY: i64 = 86_400_000;
const MINUTE: u64 = 60;

/// The part of `html` from the element that starts with `start` to the next `end`.
fn element<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in the page:\n{html}"));
    let rest = &html[from..];
    &rest[..rest.find(end).map_or(rest.len(), |i| i + end.len())]
}

async fn page(app: &TestApp) -> String {
    let r = app.client.get(app.url("/overview")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    r.text().await.unwrap()
}

/// Every channel's due deliveries, attempted until none is left.
async fn drain_outbox(app: &TestApp) {
    let channels: Vec<String> =
        paiid_alerts::testing::column(&app.state.store, "SELECT DISTINCT channel FROM deliveries")
            .await
            .unwrap();
    for ch in channels {
        while app.workers.outbox.step(&ch).await.unwrap()
            != paiid_alerts::testing::notify::worker::Step::Idle
        {}
    }
}

#[tokio::test]
async fn the_overview_counts_what_was_seeded_over_the_last_30_days() {
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let clock = app.clock.clone();

    // 40 days ago: outside the window, in no picture.
    clock.set(START_MS - 40 * DAY);
    post_signed(&app, "event_alert", &critical("900", "old-1", "Old outage")).await;

    // Two days ago: acknowledged after 4 minutes, resolved after 30.
    clock.set(START_MS - 2 * DAY);
    let (a, sev) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("1001", "a-1", "Order router down"),
        )
        .await,
    );
    assert_eq!(sev, "critical");
    clock.advance(Duration::from_secs(4 * MINUTE));
    act(&app, a, "ack", "ana", None).await;
    clock.advance(Duration::from_secs(26 * MINUTE));
    act(&app, a, "resolve", "ana", None).await;

    // Yesterday: three events of one issue, acknowledged after 10 minutes.
    clock.set(START_MS - DAY);
    let (b, _) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("1002", "b-1", "Price feed stale"),
        )
        .await,
    );
    for n in 2..=3 {
        clock.advance(Duration::from_secs(MINUTE));
        let (again, _) = opened(
            &post_signed(
                &app,
                "event_alert",
                &critical("1002", &format!("b-{n}"), "Price feed stale"),
            )
            .await,
        );
        assert_eq!(again, b);
    }
    clock.set(START_MS - DAY + 10 * 60_000);
    act(&app, b, "ack", "bo", None).await;

    // Today: one of each severity.
    clock.set(START_MS);
    let (_, sev) = opened(
        &post_signed(
            &app,
            "event_alert",
            &critical("1003", "c-1", "Cache miss storm"),
        )
        .await,
    );
    assert_eq!(sev, "critical");
    let (_, sev) =
        opened(&post_signed(&app, "metric_alert", &slow_p95("501", "Slow checkout")).await);
    assert_eq!(sev, "high");
    let (_, sev) = opened(
        &post_signed(
            &app,
            "metric_alert",
            &apdex_drop("502", "Apdex drop on web"),
        )
        .await,
    );
    assert_eq!(sev, "medium");
    let (_, sev) =
        opened(&post_signed(&app, "event_alert", &info_message("d-1", "Golang hello")).await);
    assert_eq!(sev, "unclassified");
    drain_outbox(&app).await;

    let html = page(&app).await;
    assert!(!html.contains("id=\"no-data\""), "{html}");
    assert!(html.contains("2026-04-29 to 2026-05-28"), "{html}");

    // Incidents per day: 6 opened in the window (not the one 40 days ago), stacked by severity.
    let chart = element(&html, "<section id=\"per-day\"", "</section>");
    assert!(chart.contains("data-total=\"6\""), "{chart}");
    let today = element(chart, "<g class=\"day\" data-day=\"2026-05-28\"", "</g>");
    assert!(today.contains("data-total=\"4\""), "{today}");
    for sev in ["critical", "high", "medium", "unclassified"] {
        assert!(
            today.contains(&format!("data-severity=\"{sev}\" data-count=\"1\"")),
            "{sev}: {today}"
        );
        assert!(
            today.contains(&format!("<title>2026-05-28: 1 {sev}</title>")),
            "{today}"
        );
    }
    for day in ["2026-05-26", "2026-05-27"] {
        let g = element(
            chart,
            &format!("<g class=\"day\" data-day=\"{day}\""),
            "</g>",
        );
        assert!(g.contains("data-total=\"1\""), "{g}");
        assert!(
            g.contains("data-severity=\"critical\" data-count=\"1\""),
            "{g}"
        );
    }
    let quiet = element(chart, "<g class=\"day\" data-day=\"2026-05-25\"", "</g>");
    assert!(
        quiet.contains("data-total=\"0\"") && !quiet.contains("class=\"bar\""),
        "{quiet}"
    );
    assert_eq!(chart.matches("<g class=\"day\"").count(), 30);

    // Time to acknowledge: 4 and 10 minutes (median 4, p90 10); to resolve: 30 minutes.
    let critical_times = element(
        &html,
        "<g class=\"severity\" data-severity=\"critical\" data-opened=\"3\">",
        "</text>\n</g>\n</g>",
    );
    assert!(
        critical_times.contains(
            "data-kind=\"acknowledge\" data-count=\"2\" data-median-ms=\"240000\" data-p90-ms=\"600000\""
        ),
        "{critical_times}"
    );
    assert!(
        critical_times.contains(
            "data-kind=\"resolve\" data-count=\"1\" data-median-ms=\"1800000\" data-p90-ms=\"1800000\""
        ),
        "{critical_times}"
    );
    assert!(
        critical_times.contains("acknowledge: median 4m 0s · p90 10m 0s (2)"),
        "{critical_times}"
    );
    let high = element(
        &html,
        "<g class=\"severity\" data-severity=\"high\"",
        "</g>\n</g>",
    );
    assert!(high.contains("data-opened=\"1\""), "{high}");
    assert!(
        high.contains("data-kind=\"acknowledge\" data-count=\"0\""),
        "{high}"
    );
    assert!(high.contains("acknowledge: none yet"), "{high}");

    // Noisiest: the issue with three events first, linked to its page; the old one is gone.
    let noisy = element(&html, "<section id=\"noisiest\"", "</section>");
    let first = element(noisy, "<li class=\"noisy\"", "</li>");
    assert!(
        first.contains(&format!(
            "data-id=\"{b}\" data-severity=\"critical\" data-events=\"3\""
        )),
        "{first}"
    );
    assert!(
        first.contains(&format!("<a href=\"/incidents/{b}\">Price feed stale</a>")),
        "{first}"
    );
    assert!(
        first.contains(&format!("<title>#{b}: 3 events</title>")),
        "{first}"
    );
    // One event is "1 event", in the text and in the tooltip.
    let single = noisy
        .split("<li class=\"noisy\"")
        .find(|li| li.contains("data-events=\"1\""))
        .expect("an issue with a single event");
    assert!(
        single.contains("1 event</span>") && single.contains(": 1 event</title>"),
        "{single}"
    );
    assert!(!html.contains(" 1 events"), "{html}");
    assert_eq!(noisy.matches("<li class=\"noisy\"").count(), 6, "{noisy}");
    assert!(!noisy.contains("Old outage"), "{noisy}");

    // Deliveries: every due one was attempted; the page's counts are the outbox's.
    let delivered = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'slack-alerts' AND status = 'delivered'
             AND created_at >= {}",
            (START_MS / DAY - 29) * DAY
        ))
        .await;
    assert!(
        delivered >= 3,
        "a message per critical incident, at least: {delivered}"
    );
    let slack = element(
        &html,
        "<li class=\"channel\" data-channel=\"slack-alerts\"",
        "</li>",
    );
    assert!(
        slack.contains(&format!("data-total=\"{delivered}\" data-delivered=\"{delivered}\" data-failed=\"0\" data-dead=\"0\"")),
        "{slack}"
    );
    // No Slack is configured here: the channel only reaches the log, and the page says so
    // instead of passing its rows off as delivered messages.
    assert!(
        slack.contains("data-log-only=\"true\"")
            && slack.contains(
                "<span class=\"log-only\">(log only: neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set)</span>"
            )
            && slack.contains(&format!("{delivered} logged · 0 failed"))
            && slack.contains(&format!("<title>slack-alerts: {delivered} logged</title>"))
            && slack.contains("data-outcome=\"logged\""),
        "{slack}"
    );
    assert!(!slack.contains("delivered</"), "{slack}");
    let legend = element(&html, "<section id=\"deliveries-by-channel\"", "</p>");
    assert!(
        legend.contains("logged (the channel only reaches the log)"),
        "{legend}"
    );

    // The window follows the service's clock: 28 days on, the day of incident A has left it.
    clock.advance(Duration::from_secs(28 * 86_400));
    let html = page(&app).await;
    let chart = element(&html, "<section id=\"per-day\"", "</section>");
    assert!(chart.contains("data-total=\"5\""), "{chart}");
    assert!(!chart.contains("data-day=\"2026-05-26\""), "{chart}");
    assert!(
        chart.contains("<g class=\"day\" data-day=\"2026-06-25\""),
        "{chart}"
    );
}

#[tokio::test]
async fn an_empty_database_says_no_data_yet() {
    let app = spawn_with(AppOptions {
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let html = page(&app).await;
    assert!(html.contains("<section id=\"no-data\">"), "{html}");
    assert!(html.contains("No data yet"), "{html}");
    assert!(!html.contains("<svg class=\"chart\""), "{html}");
    assert!(!html.contains("NaN") && !html.contains("inf"), "{html}");
}

#[tokio::test]
async fn the_overview_wants_sign_in_when_an_api_token_is_set() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            api_token: secret("t0ken"),
            ..signed_secrets()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    post_signed(
        &app,
        "event_alert",
        &critical("1001", "a-1", "Secret outage"),
    )
    .await;
    let r = app.client.get(app.url("/overview")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"paiid-alerts\", charset=\"UTF-8\""
    );
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("Secret outage") && !body.contains("<svg class=\"chart\""),
        "{body}"
    );
    let r = app
        .client
        .get(app.url("/overview"))
        .basic_auth("ana", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/overview"))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Secret outage"), "{html}");
    // The pictures need no script and load nothing from elsewhere.
    let charts = element(&html, "<section id=\"per-day\"", "</ol>");
    assert!(!charts.contains("<script"), "{charts}");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "{html}"
    );
}
