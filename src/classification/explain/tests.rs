use std::path::Path;

use super::*;
use crate::classification::Classifier;
use crate::domain::{Matchers, SilenceId};
use crate::test_support::{fixture, fixtures_dir, resource_of};

/// The shipped matrix, kept here so these tests do not move with edits to `routing.yaml`.
const ROUTING: &str = r##"
channels:
  slack-alerts: { type: slack, channel: "#alerts", webhook_url: "${SLACK_WEBHOOK_URL}" }
  pagerduty-oncall: { type: pagerduty, routing_key: "${PAGERDUTY_ROUTING_KEY}" }
  trading-ops-email: { type: email, to: ["ops@example.com"] }
  eng-manager-email: { type: email, to: ["mgr@example.com"] }
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: { environment: production, level: [error, fatal] }
  - name: high-error-rate
    severity: high
    when: { level: [error, fatal], rate: { more_than: 2, within: 5m, per: project } }
  - name: slow-transactions
    severity: high
    when: { transaction_duration_over: 2s }
  - name: apdex-regression
    severity: medium
    when: { apdex_below: 0.8 }
severities:
  critical: { notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email] }
  high:     { notify: [trading-ops-email], escalate_after: 60m, escalate_to: [slack-alerts, eng-manager-email] }
  medium:   { digest: daily }
digest:
  schedule: "0 0 8 * * *"
  timezone: "America/New_York"
  to: [trading-ops-email]
"##;

fn routing() -> RoutingConfig {
    RoutingConfig::parse(Path::new("routing.yaml"), ROUTING, &|_| None).expect("routing")
}

fn fixtures() -> Vec<(String, AlertFacts)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with("reference."))
        .collect();
    names.sort();
    assert!(names.len() >= 15);
    names
        .into_iter()
        .map(|n| {
            let facts = crate::intake::sentry::parse(resource_of(&n).as_deref(), &fixture(&n))
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, facts)
        })
        .collect()
}

const NOW: i64 = 1_780_000_000_000;

#[test]
fn every_fixture_gets_the_severity_and_rule_the_classifier_gives() {
    let cfg = routing();
    for (name, facts) in fixtures() {
        let e = explain(&cfg, &facts, &[], Ok(&[]), NOW);
        let c = Classifier::new(cfg.rules.clone()).classify(&facts, NOW);
        assert_eq!(e.severity, c.severity, "{name}");
        assert_eq!(e.rule, c.rule, "{name}");
        // The chosen rule is the first whose conditions all hold.
        for r in &e.rules {
            assert_eq!(r.matched, r.conditions.iter().all(|c| c.result), "{name}");
        }
        let first = e.rules.iter().position(|r| r.matched);
        assert_eq!(first, e.rules.iter().position(|r| r.chosen), "{name}");
        assert!(
            e.to_text()
                .contains(&format!("Severity     {}", e.severity))
        );
    }
}

#[test]
fn a_production_error_names_each_condition_and_the_policy() {
    let cfg = routing();
    let facts = crate::intake::sentry::parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let e = explain(&cfg, &facts, &[], Ok(&[]), NOW);
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(e.rule.as_deref(), Some("critical-production-errors"));
    let first = &e.rules[0];
    assert!(first.chosen);
    let env = &first.conditions[0];
    assert_eq!(env.condition, "environment");
    assert_eq!(env.expected, "prod | production");
    assert!(env.result);
    assert_eq!(e.notify, vec!["slack-alerts"]);
    let esc = e.escalation.as_ref().unwrap();
    assert_eq!(esc.after, "15m");
    assert_eq!(esc.to, vec!["pagerduty-oncall", "eng-manager-email"]);
    assert!(
        e.summary
            .starts_with("critical by rule `critical-production-errors`")
    );
}

#[test]
fn the_rate_counts_stored_occurrences_of_the_same_project_inside_the_window() {
    let cfg = routing();
    let facts =
        crate::intake::sentry::parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let alone = explain(&cfg, &facts, &[], Ok(&[]), NOW);
    assert_eq!(alone.severity, Severity::Unclassified);
    let rate = |e: &Explanation| {
        e.rules[1]
            .conditions
            .iter()
            .find(|c| c.condition == "rate")
            .unwrap()
            .clone()
    };
    assert_eq!(rate(&alone).actual, "1 in the window, this one included");
    assert!(!rate(&alone).result);

    // Two inside the window, one too old: 3 > 2.
    let recent = vec![
        (facts.clone(), NOW - 60_000),
        (facts.clone(), NOW - 120_000),
        (facts.clone(), NOW - 10 * 60_000),
    ];
    let burst = explain(&cfg, &facts, &recent, Ok(&[]), NOW);
    assert_eq!(rate(&burst).actual, "3 in the window, this one included");
    assert_eq!(burst.severity, Severity::High);
    assert_eq!(burst.rule.as_deref(), Some("high-error-rate"));
    // The classifier agrees once it has seen the same history.
    let mut c = Classifier::new(cfg.rules.clone());
    for (f, at) in &recent {
        c.replay(f, *at);
    }
    assert_eq!(c.classify(&facts, NOW).severity, Severity::High);
}

fn silence(id: i64, matchers: Matchers, let_through: Vec<Severity>) -> Silence {
    Silence {
        id: SilenceId(id),
        matchers,
        starts_at: NOW - 1000,
        ends_at: NOW + 3_600_000,
        author: "ana".into(),
        comment: "deploy".into(),
        let_through,
        expired_at: None,
        created_at: NOW - 1000,
    }
}

#[test]
fn a_matching_silence_is_reported_and_whether_it_holds() {
    let cfg = routing();
    let facts = crate::intake::sentry::parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let by_rule = Matchers {
        rule: Some("critical-production-errors".into()),
        ..Matchers::default()
    };
    let other = Matchers {
        project: Some("no-such-project".into()),
        ..Matchers::default()
    };
    let silences = vec![
        silence(1, other, vec![]),
        silence(2, by_rule.clone(), vec![]),
        silence(3, by_rule, vec![Severity::Critical]),
    ];
    let e = explain(&cfg, &facts, &[], Ok(&silences), NOW);
    let Silences::Checked { matching } = &e.silences else {
        panic!("checked")
    };
    let ids: Vec<(i64, bool)> = matching.iter().map(|s| (s.id.get(), s.holds)).collect();
    assert_eq!(ids, vec![(2, true), (3, false)]);
    assert!(e.summary.contains("HELD by silence #2"), "{}", e.summary);
    assert!(e.to_text().contains("Silence #3"));

    let unchecked = explain(&cfg, &facts, &[], Err("no database".into()), NOW);
    assert!(unchecked.to_text().contains("Silences     no database"));
}

#[test]
fn a_resolution_is_not_classified_and_says_why() {
    let cfg = routing();
    let facts =
        crate::intake::sentry::parse(Some("issue"), &fixture("issue.resolved.1.json")).unwrap();
    let e = explain(&cfg, &facts, &[], Ok(&[]), NOW);
    assert_eq!(e.severity, Severity::Unclassified);
    assert!(e.rules.is_empty());
    assert!(e.notify.is_empty());
    assert!(
        e.not_classified_because
            .as_deref()
            .unwrap()
            .contains("resolved")
    );
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(human_ms(15 * 60_000), "15m");
    assert_eq!(human_ms(90 * 60_000), "1h 30m");
    assert_eq!(human_ms(45_000), "45s");
    assert_eq!(human_ms(0), "0s");
}

/// Explain shows the payload as messages and pages do: with `delivery.include_pii: false` (the
/// default) IP addresses and emails are masked, PII tags dropped and secret tags redacted, in
/// the facts and in each condition's value; with `include_pii: true` the PII stays.
#[test]
fn pii_is_scrubbed_as_everywhere_else_unless_include_pii() {
    let with_rule = |when: &str| {
        ROUTING.replace(
            "rules:\n",
            &format!("rules:\n  - name: by-user\n    severity: high\n    when: {when}\n"),
        )
    };
    let routing = with_rule("{ tags: { user: \"id:42\", client_ip: \"10.9.9.9\" } }");
    let mut facts =
        crate::intake::sentry::parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    facts.title = "ReferenceError for ana@example.com".into();
    facts.tags.push(("client_ip".into(), "10.1.2.3".into()));
    facts.tags.push(("api_token".into(), "tok-123".into()));

    let cfg = RoutingConfig::parse(Path::new("routing.yaml"), &routing, &|_| None).unwrap();
    assert!(!cfg.delivery.include_pii);
    let e = explain(&cfg, &facts, &[], Ok(&[]), NOW);
    let text = e.to_text();
    let json = serde_json::to_string(&e).unwrap();
    for shown in [&text, &json] {
        for raw in ["162.217.75.90", "10.1.2.3", "ana@example.com", "tok-123"] {
            assert!(!shown.contains(raw), "{raw} shown:\n{shown}");
        }
    }
    assert!(text.contains("user=ip:[ip]"), "{text}");
    assert!(text.contains("api_token=[REDACTED]"), "{text}");
    assert!(
        !text.contains("client_ip="),
        "a PII tag is dropped:\n{text}"
    );
    assert!(text.contains("ReferenceError for [email]"), "{text}");
    let actual = |name: &str| {
        e.rules[0]
            .conditions
            .iter()
            .find(|c| c.condition == name)
            .map(|c| c.actual.clone())
    };
    assert_eq!(actual("tag user").as_deref(), Some("ip:[ip]"));
    assert_eq!(actual("tag client_ip").as_deref(), Some("[PII]"));

    // Rules are still tried on the real values.
    let routing = with_rule("{ tags: { user: \"ip:162.217.75.90\" } }");
    let cfg = RoutingConfig::parse(Path::new("routing.yaml"), &routing, &|_| None).unwrap();
    let e = explain(&cfg, &facts, &[], Ok(&[]), NOW);
    assert_eq!(e.rule.as_deref(), Some("by-user"));
    let user = &e.rules[0].conditions[0];
    assert_eq!((user.actual.as_str(), user.result), ("ip:[ip]", true));

    let with_pii = routing.replace(
        "severities:",
        "delivery: { include_pii: true }\nseverities:",
    );
    let cfg = RoutingConfig::parse(Path::new("routing.yaml"), &with_pii, &|_| None).unwrap();
    let text = explain(&cfg, &facts, &[], Ok(&[]), NOW).to_text();
    assert!(text.contains("user=ip:162.217.75.90"), "{text}");
    assert!(text.contains("client_ip=10.1.2.3"), "{text}");
    assert!(
        text.contains("ReferenceError for ana@example.com"),
        "{text}"
    );
    assert!(text.contains("api_token=[REDACTED]"), "{text}");
}
