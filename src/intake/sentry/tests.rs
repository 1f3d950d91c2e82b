//! Every real fixture parses and normalizes; synthetic payloads (built from copies of real ones)
//! cover what no public capture shows.

use super::*;
use crate::test_support::{fixture as load, fixtures_dir, resource_of};

#[test]
fn every_fixture_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") || name.starts_with("reference.") {
            continue;
        }
        let body = load(&name);
        let resource = resource_of(&name);
        let facts = parse(resource.as_deref(), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!facts.title.is_empty(), "{name}: title");
        assert_ne!(facts.meaning(), Meaning::Unknown, "{name}: meaning");
        if matches!(facts.meaning(), Meaning::Alert | Meaning::Resolved) {
            assert!(facts.incident_key().is_some(), "{name}: incident key");
        }
        // Pretty-printed and compact bodies parse the same.
        let pretty = std::fs::read(&path).unwrap();
        assert_eq!(
            parse(resource.as_deref(), &pretty).unwrap(),
            facts,
            "{name}"
        );
        seen += 1;
    }
    assert!(seen >= 15, "expected the whole fixture folder, saw {seen}");
}

#[test]
fn event_alert_fields() {
    let f = parse(Some("event_alert"), &load("event_alert.triggered.4.json")).unwrap();
    assert_eq!(f.level.as_deref(), Some("error"));
    assert_eq!(f.environment.as_deref(), Some("prod"));
    assert_eq!(f.issue_id.as_deref(), Some("4218258981"));
    assert_eq!(f.project.as_deref(), Some("python"));
    assert_eq!(f.sentry_rule, None, "empty triggered_rule is no rule");
    assert!(f.occurrence);

    let f = parse(Some("event_alert"), &load("event_alert.triggered.1.json")).unwrap();
    assert_eq!(f.sentry_rule.as_deref(), Some("Very Important Alert Rule!"));
    assert_eq!(f.project.as_deref(), Some("front-end"));
    assert_eq!(f.incident_key().as_deref(), Some("sentry-issue:1117540176"));

    // Older capture without issue_id: taken from issue_url.
    let f = parse(Some("event_alert"), &load("event_alert.triggered.2.json")).unwrap();
    assert_eq!(f.issue_id.as_deref(), Some("1638844654"));
    assert_eq!(f.level.as_deref(), Some("info"));

    let f = parse(Some("event_alert"), &load("event_alert.triggered.5.json")).unwrap();
    assert_eq!(f.level, None);
    assert_eq!(f.environment.as_deref(), Some("production"));
    assert_eq!(f.sentry_rule.as_deref(), Some("issue alert"));
}

#[test]
fn legacy_and_issue_and_metric() {
    let f = parse(None, &load("legacy_webhook.1.json")).unwrap();
    assert_eq!(f.resource, "legacy");
    assert_eq!(f.environment.as_deref(), Some("prod"));
    assert_eq!(f.issue_id.as_deref(), Some("4218258981"));
    assert_eq!(f.project.as_deref(), Some("python"));

    let f = parse(Some("issue"), &load("issue.resolved.1.json")).unwrap();
    assert_eq!(f.meaning(), Meaning::Resolved);
    assert_eq!(f.incident_key().as_deref(), Some("sentry-issue:1638821441"));

    let f = parse(Some("issue"), &load("issue.assigned.1.json")).unwrap();
    assert_eq!(f.meaning(), Meaning::Assigned);
    assert_eq!(f.assignee.as_deref(), Some("Hemanth V. Alluri"));

    let crit = parse(Some("metric_alert"), &load("metric_alert.critical.1.json")).unwrap();
    let resolved = parse(Some("metric_alert"), &load("metric_alert.resolved.2.json")).unwrap();
    assert_eq!(crit.meaning(), Meaning::Alert);
    assert_eq!(resolved.meaning(), Meaning::Resolved);
    assert_eq!(
        crit.incident_key(),
        resolved.incident_key(),
        "resolve finds the alert's incident"
    );
    assert_eq!(crit.metric.as_ref().unwrap().value, Some(5.0));
}

#[test]
fn bad_json_is_an_error_not_a_panic() {
    for body in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe",
        b"{\"data\": 5}",
    ] {
        assert!(parse(Some("event_alert"), body).is_err(), "{body:?}");
        // The legacy plugin has no `data`: `{"data": 5}` is an (empty) legacy payload.
        if !body.starts_with(b"{\"") {
            assert!(parse(None, body).is_err(), "{body:?}");
        }
    }
    for body in [&b" [1]"[..], b"\"str\"", b"5"] {
        let err = parse(Some("metric_alert"), body).unwrap_err().to_string();
        assert!(err.starts_with("expected a JSON object"), "{err}");
    }
}

#[test]
fn transaction_event_duration() {
    // No public capture of a transaction event: built from a copy of a real event_alert.
    let mut v: serde_json::Value =
        serde_json::from_slice(&load("event_alert.triggered.1.json")).unwrap();
    v["data"]["event"]["type"] = "transaction".into();
    v["data"]["event"]["start_timestamp"] = 1566248777.0.into();
    v["data"]["event"]["timestamp"] = 1566248779.45.into();
    let f = parse(Some("event_alert"), &serde_json::to_vec(&v).unwrap()).unwrap();
    let ms = f.transaction_duration_ms.unwrap();
    assert!((ms - 2450.0).abs() < 1.0, "{ms}");
}

#[test]
fn helpers() {
    assert_eq!(
        issue_id_from_url("https://s.io/organizations/o/issues/123/events/x/").as_deref(),
        Some("123")
    );
    assert_eq!(issue_id_from_url("https://s.io/organizations/o/"), None);
    assert_eq!(
        value_from_description("2450.0 p95(transaction.duration) in the last 10 minutes"),
        Some(2450.0)
    );
    assert_eq!(value_from_description("garbage"), None);
}

#[test]
fn only_duration_statistics_count_as_transaction_duration() {
    let m = |aggregate: &str| MetricFacts {
        aggregate: Some(aggregate.to_string()),
        ..MetricFacts::default()
    };
    for yes in [
        "p95(transaction.duration)",
        "avg(transaction.duration)",
        "percentile(transaction.duration,0.99)",
        " p50( transaction.duration )",
    ] {
        assert!(m(yes).is_transaction_duration(), "{yes}");
    }
    for no in [
        "count_if(transaction.duration,greater,500)",
        "count()",
        "failure_rate()",
        "apdex(300)",
    ] {
        assert!(!m(no).is_transaction_duration(), "{no}");
    }
}

#[test]
fn a_metric_alert_without_ids_is_grouped_by_its_rule_name() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&load("metric_alert.critical.1.json")).unwrap();
    let rule = &mut v["data"]["metric_alert"]["alert_rule"];
    let name = rule["name"].as_str().unwrap().to_string();
    rule.as_object_mut().unwrap().remove("id");
    v["data"]["metric_alert"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let facts = parse(Some("metric_alert"), &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        facts.incident_key(),
        Some(format!("sentry-metric-name:{name}"))
    );
}

#[test]
fn only_http_links_are_kept() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&load("event_alert.triggered.4.json")).unwrap();
    v["data"]["event"]["web_url"] = "javascript:alert(document.domain)//".into();
    let facts = parse(Some("event_alert"), &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(facts.web_url, None);
    let facts = parse(Some("event_alert"), &load("event_alert.triggered.4.json")).unwrap();
    assert!(facts.web_url.unwrap().starts_with("https://"));
}

#[test]
fn fixtures_are_never_unparsed() {
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures folder") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if !name.ends_with(".json") || name.starts_with("reference.") {
            continue;
        }
        let f = parse(resource_of(&name).as_deref(), &load(&name)).unwrap();
        assert_eq!(f.unreadable, None, "{name}");
    }
}

#[test]
fn shapeless_bodies_are_not_sentrys() {
    let deep = format!("{}{}", "[".repeat(400_000), "]".repeat(400_000));
    let deep_field = format!(r#"{{"action":"triggered","data":{{}},"x":{deep}}}"#);
    for body in [deep.as_str(), deep_field.as_str()] {
        let err = parse(Some("event_alert"), body.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ParseError::NotSentry(Rejection::TooDeep)),
            "{err}"
        );
        assert!(matches!(
            parse(None, body.as_bytes()),
            Err(ParseError::NotSentry(Rejection::TooDeep))
        ));
    }
    for body in [r#"{"a":1}"#, r#"{"data":{}}"#, r#"{"data":{"event":null}}"#] {
        let err = parse(Some("event_alert"), body.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ParseError::NotSentry(Rejection::NotSentry { .. })),
            "{body}: {err}"
        );
        assert!(parse(None, body.as_bytes()).is_err(), "legacy {body}");
    }
}

#[test]
fn an_envelope_we_cannot_read_is_unparsed_not_an_alert() {
    let body =
        br#"{"action":"triggered","installation":{"uuid":"u"},"data":{"triggered_rule":"r"}}"#;
    let f = parse(Some("event_alert"), body).unwrap();
    assert_eq!(f.meaning(), Meaning::Unparsed);
    assert_eq!(f.action, "triggered");
    assert!(!f.occurrence);
    assert_eq!(f.incident_key(), None, "never an incident");
    let u = f.unreadable.unwrap();
    assert_eq!(u.shape, "triggered_rule");
    assert_eq!(u.reason, "`data.event` is missing");

    // Sound JSON whose field changed type under us (a rule object where a string was).
    let mut v: serde_json::Value =
        serde_json::from_slice(&load("metric_alert.critical.1.json")).unwrap();
    v["data"]["metric_alert"]["alert_rule"] = "renamed".into();
    v["data"]["metric_alert"]["id"] = "789".into();
    let f = parse(Some("metric_alert"), &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(f.meaning(), Meaning::Unparsed);
    let u = f.unreadable.unwrap();
    assert_eq!(u.shape, "description_text,metric_alert");
    assert!(u.reason.contains("unexpected type"), "{}", u.reason);

    let f = parse(None, br#"{"id":"1","project":"p","event":[]}"#).unwrap();
    assert_eq!(
        (f.resource.as_str(), f.meaning()),
        ("legacy", Meaning::Unparsed)
    );
}

#[test]
fn metric_kind_words_round_trip() {
    for kind in [MetricKind::Apdex, MetricKind::Duration, MetricKind::Other] {
        assert_eq!(MetricKind::parse(kind.as_str()), Some(kind));
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::Value::String(kind.as_str().to_string())
        );
    }
    assert_eq!(MetricKind::parse("Apdex"), None);
}
