//! Each row of the matrix, from real fixtures (and copies edited where no capture exists).

use super::*;
use crate::intake::sentry::parse;
use crate::test_support::{fixture, fixture_json, routing};

fn classifier() -> Classifier {
    Classifier::new(routing().rules)
}

fn facts(resource: Option<&str>, body: &serde_json::Value) -> AlertFacts {
    parse(resource, &serde_json::to_vec(body).unwrap()).unwrap()
}

#[test]
fn production_error_is_critical() {
    // event_alert.triggered.4 is level error in environment "prod" (an alias of production).
    let f = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let c = classifier().classify(&f, 0);
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(c.rule.as_deref(), Some("critical-production-errors"));
    let legacy = parse(None, &fixture("legacy_webhook.1.json")).unwrap();
    assert_eq!(
        classifier().classify(&legacy, 0).severity,
        Severity::Critical
    );
}

#[test]
fn fatal_in_production_is_critical() {
    // No public capture of a fatal event: a copy of a real one with the level changed.
    let mut v = fixture_json("event_alert.triggered.5.json");
    v["data"]["event"]["level"] = "fatal".into();
    assert_eq!(
        classifier()
            .classify(&facts(Some("event_alert"), &v), 0)
            .severity,
        Severity::Critical
    );
}

#[test]
fn info_or_staging_or_no_level_is_not_critical() {
    let info = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.2.json"),
    )
    .unwrap();
    assert_eq!(
        classifier().classify(&info, 0).severity,
        Severity::Unclassified
    );
    // event_alert.triggered.5 is in production but carries no level.
    let no_level = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.5.json"),
    )
    .unwrap();
    assert_eq!(
        classifier().classify(&no_level, 0).severity,
        Severity::Unclassified
    );
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["environment"] = "staging".into();
    assert_eq!(
        classifier()
            .classify(&facts(Some("event_alert"), &v), 0)
            .severity,
        Severity::Unclassified
    );
}

#[test]
fn eleventh_error_in_five_minutes_is_high() {
    // error.created.1 has level error and no environment: only the rate rule can match.
    let f = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let mut c = classifier();
    for i in 0..10 {
        assert_eq!(
            c.classify(&f, i * 1000).severity,
            Severity::Unclassified,
            "event {}",
            i + 1
        );
    }
    let eleventh = c.classify(&f, 10_000);
    assert_eq!(eleventh.severity, Severity::High);
    assert_eq!(eleventh.rule.as_deref(), Some("high-error-rate"));
}

#[test]
fn rate_window_expires_and_survives_replay() {
    let f = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let mut c = classifier();
    for i in 0..10 {
        c.classify(&f, i * 1000);
    }
    // Six minutes later the window has emptied: the next error is the first again.
    assert_eq!(
        c.classify(&f, 6 * 60_000 + 10_000).severity,
        Severity::Unclassified
    );

    // A restart rebuilds the window from stored events.
    let mut restarted = classifier();
    for i in 0..10 {
        restarted.replay(&f, i * 1000);
    }
    assert_eq!(restarted.classify(&f, 10_000).severity, Severity::High);
}

#[test]
fn stored_rate_keys_rebuild_the_window_as_classify_counted_it() {
    let f = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let mut live = classifier();
    let mut stored = Vec::new();
    for i in 0..10 {
        let (class, keys) = live.classify_counted(&f, i * 1000);
        assert_eq!(class.severity, Severity::Unclassified, "event {}", i + 1);
        // The column round trip, as a restart reads it.
        stored.push(decode_rate_keys(encode_rate_keys(&keys).as_deref()));
    }
    assert_eq!(stored[0], live.rate_keys(&f));
    assert!(
        !stored[0].is_empty(),
        "an error counts toward high-error-rate"
    );

    let mut restarted = classifier();
    assert_eq!(restarted.fingerprint(), live.fingerprint());
    for (i, keys) in stored.iter().enumerate() {
        restarted.restore(keys, i as i64 * 1000);
    }
    assert_eq!(restarted.classify(&f, 10_000).severity, Severity::High);
    assert_eq!(live.classify(&f, 10_000).severity, Severity::High);
}

#[test]
fn rate_keys_count_only_occurrences_of_alerts_and_name_their_rules() {
    let f = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let c = classifier();
    let mut repeat = f.clone();
    repeat.occurrence = false;
    assert!(c.rate_keys(&repeat).is_empty());
    for (i, key) in c.rate_keys(&f) {
        assert!(c.rules[i].when.rate.is_some(), "rule {i} has no rate");
        assert_eq!(key, f.project.clone().unwrap_or_default());
    }
    // Other rules, another fingerprint: stored indexes are not trusted across a change.
    let mut rules = routing().rules;
    rules.reverse();
    assert_ne!(Classifier::new(rules).fingerprint(), c.fingerprint());
    assert_eq!(decode_rate_keys(Some("not json")), Vec::new());
    assert_eq!(encode_rate_keys(&Vec::new()), None);
}

#[test]
fn rate_is_per_project() {
    let f = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let mut other = f.clone();
    other.project = Some("another".into());
    let mut c = classifier();
    for i in 0..10 {
        c.classify(&f, i);
    }
    assert_eq!(c.classify(&other, 11).severity, Severity::Unclassified);
    assert_eq!(c.classify(&f, 12).severity, Severity::High);
}

/// No public capture of a metric alert on transaction duration or apdex exists: these are
/// copies of the real `metric_alert.critical.1.json` with the aggregate and value edited.
fn metric(aggregate: &str, description: &str, threshold_type: i64) -> AlertFacts {
    let mut v = fixture_json("metric_alert.critical.1.json");
    v["data"]["metric_alert"]["alert_rule"]["aggregate"] = aggregate.into();
    v["data"]["metric_alert"]["alert_rule"]["threshold_type"] = threshold_type.into();
    v["data"]["description_text"] = description.into();
    facts(Some("metric_alert"), &v)
}

#[test]
fn slow_transactions_are_high() {
    let slow = metric(
        "p95(transaction.duration)",
        "2450.0 p95(transaction.duration) in the last 10 minutes",
        0,
    );
    let c = classifier().classify(&slow, 0);
    assert_eq!(
        (c.severity, c.rule.as_deref()),
        (Severity::High, Some("slow-transactions"))
    );
    let fast = metric(
        "p95(transaction.duration)",
        "1800.0 p95(transaction.duration) in the last 10 minutes",
        0,
    );
    assert_eq!(
        classifier().classify(&fast, 0).severity,
        Severity::Unclassified
    );
    // A slow transaction event (timestamp - start_timestamp) classifies the same way.
    let mut v = fixture_json("event_alert.triggered.2.json");
    v["data"]["event"]["type"] = "transaction".into();
    v["data"]["event"]["start_timestamp"] = 100.0.into();
    v["data"]["event"]["timestamp"] = 102.5.into();
    assert_eq!(
        classifier()
            .classify(&facts(Some("event_alert"), &v), 0)
            .severity,
        Severity::High
    );
}

#[test]
fn apdex_regression_is_medium() {
    let low = metric("apdex(300)", "0.72 apdex(300) in the last 10 minutes", 1);
    let c = classifier().classify(&low, 0);
    assert_eq!(
        (c.severity, c.rule.as_deref()),
        (Severity::Medium, Some("apdex-regression"))
    );
    let fine = metric("apdex(300)", "0.93 apdex(300) in the last 10 minutes", 1);
    assert_eq!(
        classifier().classify(&fine, 0).severity,
        Severity::Unclassified
    );
}

#[test]
fn state_changes_are_not_classified() {
    let f = parse(Some("issue"), &fixture("issue.resolved.1.json")).unwrap();
    assert_eq!(classifier().classify(&f, 0), Classification::unclassified());
}

#[test]
fn rule_tags_project_and_resource_conditions() {
    let text = r#"
channels: { l: { type: log } }
rules:
  - name: by-rule
    severity: high
    when: { rule: "Very Important Alert Rule!", resource: event_alert, action: triggered }
  - name: by-tag
    severity: medium
    when: { tags: { browser: "Chrome 75.0.3770" } }
  - name: by-project
    severity: low
    when: { project: front-end }
severities: { high: { notify: [l] }, medium: { notify: [l] }, low: { notify: [l] } }
"#;
    let cfg = crate::config::RoutingConfig::parse(std::path::Path::new("t.yaml"), text, &|_| None)
        .unwrap();
    let mut c = Classifier::new(cfg.rules);
    let f = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.1.json"),
    )
    .unwrap();
    assert_eq!(c.classify(&f, 0).rule.as_deref(), Some("by-rule"));
    let mut g = f.clone();
    g.sentry_rule = None;
    g.tags.retain(|(k, _)| k != "browser");
    let mut h = g.clone();
    h.tags.push(("browser".into(), "Chrome 75.0.3770".into()));
    assert_eq!(c.classify(&h, 0).rule.as_deref(), Some("by-tag"));
    assert_eq!(c.classify(&g, 0).rule.as_deref(), Some("by-project"));
}
