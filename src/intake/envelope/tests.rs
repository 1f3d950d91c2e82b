use super::*;
use crate::test_support::{fixture as load, fixtures_dir, resource_of};

fn nested(depth: usize) -> Vec<u8> {
    let mut body = "[".repeat(depth);
    body.push_str(&"]".repeat(depth));
    body.into_bytes()
}

#[test]
fn depth_is_counted_outside_strings_only() {
    assert!(!exceeds_depth(&nested(128), 128));
    assert!(exceeds_depth(&nested(129), 128));
    assert!(exceeds_depth(&nested(400_000), 128));
    // Brackets inside strings, escaped quotes included, are text.
    let text = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
    assert!(!exceeds_depth(text.as_bytes(), 128));
    let escaped_backslash = format!(r#"{{"a":"\\","b":{}}}"#, "[".repeat(200));
    assert!(
        exceeds_depth(escaped_backslash.as_bytes(), 128),
        "a string ending in an escaped backslash has ended"
    );
    assert!(!exceeds_depth(b"", 128));
    assert!(
        !exceeds_depth(b"]]]]{", 128),
        "malformed input is serde's to report"
    );
}

#[test]
fn every_fixture_is_readable_and_within_depth() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures folder") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if !name.ends_with(".json") || name.starts_with("reference.") {
            continue;
        }
        let body = load(&name);
        assert!(!exceeds_depth(&body, MAX_DEPTH), "{name}");
        let checked =
            check(resource_of(&name).as_deref(), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked.problem, None, "{name}");
        seen += 1;
    }
    assert!(seen >= 15);
}

fn rejected(resource: Option<&str>, body: &str) -> Vec<String> {
    match check(resource, body.as_bytes()) {
        Err(CheckError::Rejected(Rejection::NotSentry { missing, .. })) => missing,
        other => panic!("{body}: expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_body_without_the_envelope_is_not_sentrys() {
    let ea = Some("event_alert");
    assert_eq!(rejected(ea, r#"{"a":1}"#), ["action", "data"]);
    assert_eq!(rejected(ea, r#"{"data":{}}"#), ["action"]);
    assert_eq!(rejected(ea, r#"{"data":{"event":null}}"#), ["action"]);
    assert_eq!(rejected(ea, r#"{"action":"triggered"}"#), ["data"]);
    assert_eq!(
        rejected(ea, r#"{"action":"triggered","data":null}"#),
        ["data"]
    );
    assert_eq!(
        rejected(ea, r#"{"action":"triggered","data":[]}"#),
        ["data"]
    );
    assert_eq!(rejected(ea, r#"{"action":"","data":{}}"#), ["action"]);
    assert_eq!(rejected(ea, r#"{"action":7,"data":{}}"#), ["action"]);
    assert_eq!(rejected(None, r#"{"a":1}"#), ["id", "project", "event"]);
    assert_eq!(
        rejected(None, r#"{"id":"1","project":"p","event":null}"#),
        ["event"]
    );
    let err = Rejection::NotSentry {
        resource: Some("event_alert".into()),
        missing: vec!["action".into()],
    };
    assert!(err.to_string().contains("missing `action`"), "{err}");
}

#[test]
fn an_envelope_without_what_the_resource_carries_is_unreadable() {
    let problem = |resource: &str, data: &str| {
        let body = format!(r#"{{"action":"x","installation":{{}},"data":{data}}}"#);
        check(Some(resource), body.as_bytes()).expect("envelope")
    };
    let c = problem("event_alert", "{}");
    assert_eq!(c.shape, "");
    assert_eq!(c.problem.as_deref(), Some("`data.event` is missing"));
    let c = problem("event_alert", r#"{"triggered_rule":"r","event":null}"#);
    assert_eq!(c.shape, "event,triggered_rule");
    assert_eq!(
        c.problem.as_deref(),
        Some("`data.event` is null, not an object")
    );
    let c = problem("event_alert", r#"{"event":{"level":"error","title":""}}"#);
    assert_eq!(c.problem.as_deref(), Some("`data.event` has no `title`"));
    assert_eq!(
        problem("event_alert", r#"{"event":{"message":"m"}}"#).problem,
        None
    );
    assert!(
        problem("error", r#"{"event":{"title":"t"}}"#)
            .problem
            .is_some()
    );
    assert_eq!(problem("error", r#"{"error":{"title":"t"}}"#).problem, None);
    assert!(
        problem("metric_alert", r#"{"description_text":"x"}"#)
            .problem
            .is_some()
    );
    assert!(
        problem("metric_alert", r#"{"metric_alert":{}}"#)
            .problem
            .is_some()
    );
    assert_eq!(
        problem("metric_alert", r#"{"metric_alert":{"id":"7"}}"#).problem,
        None
    );
    assert!(
        problem("issue", r#"{"issue":{"title":"t"}}"#)
            .problem
            .is_some()
    );
    assert_eq!(problem("issue", r#"{"issue":{"id":5}}"#).problem, None);
    // Resources that open nothing by themselves only need the envelope.
    assert_eq!(problem("installation", "{}").problem, None);
    assert_eq!(problem("spaceship", "{}").problem, None);

    let legacy = |body: &str| check(None, body.as_bytes()).expect("envelope");
    let c = legacy(r#"{"id":"1","project":"p","event":"x"}"#);
    assert_eq!(c.shape, "event,id,project");
    assert_eq!(
        c.problem.as_deref(),
        Some("`event` is a string, not an object")
    );
    assert!(
        legacy(r#"{"id":"1","project":"p","event":{}}"#)
            .problem
            .is_some()
    );
    assert_eq!(
        legacy(r#"{"id":"1","project":"p","message":"m","event":{}}"#).problem,
        None
    );
}

#[test]
fn shapes_are_sorted_deduplicated_and_bounded() {
    let keys: Vec<String> = (0..100).rev().map(|i| format!("\"k{i:03}\":1")).collect();
    let body = format!(
        r#"{{"action":"x","data":{{"b":1,"a":2,"b":3,{}}}}}"#,
        keys.join(",")
    );
    let c = check(Some("event_alert"), body.as_bytes()).expect("envelope");
    assert!(c.shape.starts_with("a,b,k000,k001,"), "{}", c.shape);
    assert!(c.shape.ends_with("…62 more"), "{}", c.shape);
}

#[test]
fn malformed_json_is_a_json_error() {
    assert!(matches!(
        check(Some("event_alert"), br#"{"action": "#),
        Err(CheckError::Json(_))
    ));
    assert!(matches!(
        check(Some("event_alert"), br#"{"action":"x","data":{}} trailing"#),
        Err(CheckError::Json(_))
    ));
}
