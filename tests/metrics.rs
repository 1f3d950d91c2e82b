//! `/metrics` after a scenario with known counts: it must pass `promtool check metrics` (the
//! Debian package `prometheus`; CI installs it) and say what happened.
//!
//! The scenario, with the workers stepped by hand and the manual clock: three signed critical
//! alerts (three incidents) and one retry of the first, the Slack cards delivered (to the log
//! channel: no Slack secrets are set), two incidents acknowledged, and the third escalated one
//! minute late to PagerDuty and the engineering manager (also logged).

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::*;

const SECRET: &str = "s3cret";
const MIN_MS: i64 = 60_000;

/// One sample: metric name and its labels, sorted.
type Key = (String, BTreeMap<String, String>);

/// Parses the samples of a text exposition (comments skipped), failing on anything malformed.
fn parse(text: &str) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                (name.to_string(), parse_labels(body))
            }
        };
        assert!(
            out.insert((name, labels), value).is_none(),
            "duplicate series `{series}`"
        );
    }
    out
}

fn parse_labels(mut s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        s = rest[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&rest[end + 1..]);
    }
    labels
}

fn get(samples: &BTreeMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// Sum of every sample of `name` whose labels include `labels`.
fn sum(samples: &BTreeMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, l), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// `promtool check metrics` on `text`: its output, or a failure that says how to get promtool.
fn promtool_check(text: &str) -> String {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run `promtool` ({e}): this test needs it on PATH; on Debian/Ubuntu \
             `apt-get install --no-install-recommends prometheus`"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{report}\n--- exposition ---\n{text}",
        out.status
    );
    report
}

async fn post_signed(app: &TestApp, body: &[u8]) -> Value {
    let r = app
        .client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", "event_alert")
        .header("Sentry-Hook-Signature", sign(SECRET.as_bytes(), body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn critical(issue: &str) -> Vec<u8> {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = format!("evt-{issue}").into();
    serde_json::to_vec(&v).unwrap()
}

/// Sends everything due, a second of manual clock per round so that the per-channel rate limit
/// lets each message through.
async fn deliver_due(app: &TestApp) {
    while app.workers.outbox.drain().await.unwrap() > 0 {
        app.clock.advance(Duration::from_secs(1));
    }
}

#[tokio::test]
async fn scrape_after_a_known_scenario_passes_promtool_and_counts_it() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            sentry_client_secret: secret(SECRET),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;

    let mut ids = Vec::new();
    for issue in ["700001", "700002", "700003"] {
        let v = post_signed(&app, &critical(issue)).await;
        assert_eq!(v["status"], "accepted", "{v}");
        ids.push(v["incident_id"].as_i64().unwrap());
    }
    let retry = post_signed(&app, &critical("700001")).await;
    assert_eq!(retry["status"], "duplicate", "{retry}");
    deliver_due(&app).await;

    for id in &ids[1..] {
        let r = app
            .client
            .post(app.url(&format!("/api/incidents/{id}/ack")))
            .json(&serde_json::json!({ "by": "ana" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    deliver_due(&app).await;

    // Critical escalates 15 minutes after intake: fire it at 16.
    let now = app.clock.now_ms();
    assert!(
        now < START_MS + 15 * MIN_MS,
        "the clock ran past the deadline"
    );
    app.clock
        .advance(Duration::from_millis((START_MS + 16 * MIN_MS - now) as u64));
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    deliver_due(&app).await;

    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    );
    let text = r.text().await.unwrap();
    let report = promtool_check(&text);
    println!("promtool check metrics: ok{report}");
    let m = parse(&text);

    // Intake (the metric names the writer's status: an accepted alert was "processed").
    let webhooks = "paiid_webhooks_total";
    assert_eq!(get(&m, webhooks, &[("outcome", "processed")]), 3.0);
    assert_eq!(get(&m, webhooks, &[("outcome", "duplicate")]), 1.0);
    assert_eq!(sum(&m, webhooks, &[]), 4.0, "no other outcome");

    // Escalation: one, a minute late.
    assert_eq!(get(&m, "paiid_escalations_fired_total", &[]), 1.0);
    let lateness = "paiid_escalation_lateness_seconds";
    assert_eq!(get(&m, &format!("{lateness}_count"), &[]), 1.0);
    assert_eq!(get(&m, &format!("{lateness}_sum"), &[]), 60.0);
    assert_eq!(get(&m, &format!("{lateness}_bucket"), &[("le", "15")]), 0.0);
    assert_eq!(get(&m, &format!("{lateness}_bucket"), &[("le", "60")]), 1.0);
    assert_eq!(
        get(&m, &format!("{lateness}_bucket"), &[("le", "+Inf")]),
        1.0
    );
    assert_eq!(
        app.scalar("SELECT SUM(lateness_ms) FROM escalations").await,
        60_000
    );

    // Deliveries: the escalation's two, and per channel what the database recorded.
    let deliveries = "paiid_deliveries_total";
    for channel in ["pagerduty-oncall", "eng-manager-email"] {
        assert_eq!(
            get(
                &m,
                deliveries,
                &[("channel", channel), ("outcome", "delivered")]
            ),
            1.0,
            "{channel}"
        );
    }
    let cards = sum(
        &m,
        deliveries,
        &[("channel", "slack-alerts"), ("outcome", "delivered")],
    );
    assert!(cards >= 3.0, "a card per incident: {cards}");
    let attempts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT d.channel, a.outcome, COUNT(*) FROM delivery_attempts a
         JOIN deliveries d ON d.id = a.delivery_id GROUP BY d.channel, a.outcome",
    )
    .fetch_all(paiid_alerts::testing::read_pool(&app.state.store))
    .await
    .unwrap();
    assert!(!attempts.is_empty());
    for (channel, outcome, n) in &attempts {
        assert_eq!(
            get(
                &m,
                deliveries,
                &[("channel", channel), ("outcome", outcome)]
            ),
            *n as f64,
            "{channel} {outcome}"
        );
        assert_eq!(
            get(
                &m,
                "paiid_delivery_duration_seconds_count",
                &[("channel", channel)]
            ),
            sum(&m, deliveries, &[("channel", channel)]),
            "one duration per attempt on {channel}"
        );
    }
    assert_eq!(
        sum(&m, deliveries, &[]),
        attempts.iter().map(|(_, _, n)| *n as f64).sum::<f64>(),
        "no attempt the database does not know"
    );
    assert_eq!(sum(&m, "paiid_deliveries_dead_total", &[]), 0.0);

    // Database gauges, read at scrape time.
    let open = "paiid_incidents_open";
    assert_eq!(
        get(
            &m,
            open,
            &[("state", "acknowledged"), ("severity", "critical")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &m,
            open,
            &[("state", "triggered"), ("severity", "critical")]
        ),
        1.0
    );
    assert_eq!(sum(&m, "paiid_outbox_deliveries", &[]), 0.0, "all sent");
    assert_eq!(get(&m, "paiid_outbox_lag_seconds", &[]), 0.0);
    assert_eq!(
        get(&m, "paiid_escalations_pending", &[]),
        app.scalar("SELECT COUNT(*) FROM incidents WHERE next_escalation_at IS NOT NULL")
            .await as f64
    );

    // Storage health and unreadable payloads share the exposition.
    assert_eq!(get(&m, "paiid_storage_writable", &[]), 1.0);
    assert_eq!(get(&m, "paiid_storage_write_failures_total", &[]), 0.0);
    let envelope = br#"{"action":"triggered","installation":{"uuid":"u1"},"data":{},"actor":{"type":"application","name":"Sentry"}}"#;
    let r = app
        .client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", "event_alert")
        .header("Sentry-Hook-Signature", sign(SECRET.as_bytes(), envelope))
        .body(envelope.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    promtool_check(&text);
    let m = parse(&text);
    assert_eq!(
        get(
            &m,
            "paiid_intake_unparsed_total",
            &[("resource", "event_alert")]
        ),
        1.0
    );
    assert_eq!(
        get(&m, "paiid_webhooks_total", &[("outcome", "unparsed")]),
        1.0
    );
}

#[test]
fn the_exposition_parser_reads_escapes_and_rejects_duplicates() {
    let m = parse("# HELP x y\nx{a=\"q\\\"uo,te\",b=\"2\"} 3\ny 1.5\n");
    assert_eq!(get(&m, "x", &[("a", "q\"uo,te"), ("b", "2")]), 3.0);
    assert_eq!(get(&m, "y", &[]), 1.5);
    let dup = std::panic::catch_unwind(|| parse("x 1\nx 2\n"));
    assert!(dup.is_err());
}
