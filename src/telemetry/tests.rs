use std::collections::HashMap;

use sentry::protocol::{Event, Request, User};

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn options_default_to_no_dsn_and_a_tenth_of_traces() {
    let o = TelemetryOptions::from_vars(vars(&[("SENTRY_DSN", "  ")])).unwrap();
    assert_eq!(o.dsn, None);
    assert_eq!(o.environment, None);
    assert_eq!(o.traces_sample_rate, 0.1);
}

#[test]
fn options_read_environment_and_sample_rate() {
    let o = TelemetryOptions::from_vars(vars(&[
        ("SENTRY_DSN", "http://key@127.0.0.1:9/42"),
        ("SENTRY_ENVIRONMENT", "staging"),
        ("SENTRY_TRACES_SAMPLE_RATE", "0.5"),
    ]))
    .unwrap();
    assert_eq!(o.dsn.as_deref(), Some("http://key@127.0.0.1:9/42"));
    assert_eq!(o.environment.as_deref(), Some("staging"));
    assert_eq!(o.traces_sample_rate, 0.5);
}

#[test]
fn a_sample_rate_out_of_range_is_an_error_naming_the_variable() {
    for bad in ["1.5", "-0.1", "ten", "NaN"] {
        let err = TelemetryOptions::from_vars(vars(&[("SENTRY_TRACES_SAMPLE_RATE", bad)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SENTRY_TRACES_SAMPLE_RATE"), "{err}");
        assert!(err.contains(bad), "{err}");
    }
}

#[test]
fn a_malformed_dsn_is_an_error_not_a_silent_fallback() {
    let o = TelemetryOptions {
        dsn: Some("not a dsn".into()),
        environment: None,
        traces_sample_rate: 0.1,
    };
    let err = init_telemetry(&o).err().expect("refused").to_string();
    assert!(err.contains("SENTRY_DSN"), "{err}");
}

#[test]
fn scrub_tags_the_service_and_redacts_credentials() {
    let headers = [
        ("Authorization", "Bearer s3cret"),
        ("Cookie", "session=abc"),
        ("sentry-hook-signature", "deadbeef"),
        ("X-Slack-Signature", "v0=abc"),
        ("User-Agent", "curl/8"),
    ];
    let event = Event {
        request: Some(Request {
            url: "http://host/webhooks/sentry?token=s3cret".parse().ok(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cookies: Some("session=abc".into()),
            query_string: Some("token=s3cret".into()),
            data: Some("{\"body\":1}".into()),
            ..Default::default()
        }),
        user: Some(User {
            email: Some("someone@paiid.ai".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let event = scrub(event);
    assert_eq!(
        event.tags.get("service").map(String::as_str),
        Some("paiid-alerts")
    );
    let request = event.request.unwrap();
    for name in [
        "Authorization",
        "Cookie",
        "sentry-hook-signature",
        "X-Slack-Signature",
    ] {
        assert_eq!(request.headers[name], "[REDACTED]", "{name}");
    }
    assert_eq!(request.headers["User-Agent"], "curl/8");
    assert_eq!(request.cookies.as_deref(), Some("[REDACTED]"));
    assert_eq!(request.query_string.as_deref(), Some("[REDACTED]"));
    assert!(!request.url.unwrap().as_str().contains("s3cret"));
    assert_eq!(request.data, None);
    assert!(event.user.is_none());
}

#[test]
fn reporting_without_a_client_does_nothing() {
    assert!(!is_enabled());
    report(
        Failure::DeadDelivery,
        "nothing listens",
        &[("channel", "x")],
    );
}

/// The options `serve` runs with, with sentry's defaults (the panic integration among them) as
/// `sentry::init` adds them; the test transport replaces the HTTP one.
pub(crate) fn serve_options() -> sentry::ClientOptions {
    let o = TelemetryOptions {
        dsn: None,
        environment: Some("unit-test".into()),
        traces_sample_rate: 0.1,
    };
    let dsn = "https://publickey@sentry.invalid/42".parse().unwrap();
    sentry::apply_defaults(client_options(dsn, &o))
}

#[test]
fn a_panic_reaches_sentry_tagged_and_without_the_user() {
    let events = sentry::test::with_captured_events_options(
        || {
            sentry::configure_scope(|scope| {
                scope.set_user(Some(User {
                    email: Some("someone@paiid.ai".into()),
                    ..Default::default()
                }));
            });
            let caught = std::panic::catch_unwind(|| {
                panic!("delivery loop fell over");
            });
            assert!(caught.is_err());
        },
        serve_options(),
    );
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    let exception = &event.exception.values[0];
    assert_eq!(exception.value.as_deref(), Some("delivery loop fell over"));
    assert_eq!(
        exception.mechanism.as_ref().map(|m| m.ty.as_str()),
        Some("panic")
    );
    assert_eq!(event.level, sentry::Level::Fatal);
    assert_eq!(
        event.tags.get("service").map(String::as_str),
        Some("paiid-alerts")
    );
    assert_eq!(event.tags.get("kind").map(String::as_str), Some("panic"));
    assert_eq!(event.release.as_deref(), Some(RELEASE));
    assert_eq!(event.environment.as_deref(), Some("unit-test"));
    assert!(event.user.is_none(), "{:?}", event.user);
}

#[test]
fn a_report_keeps_its_kind_and_gets_the_service_tag() {
    let events = sentry::test::with_captured_events_options(
        || {
            report(
                Failure::DeadDelivery,
                "gave up",
                &[("channel", "slack-alerts")],
            )
        },
        serve_options(),
    );
    assert_eq!(events.len(), 1, "{events:?}");
    let tags = &events[0].tags;
    assert_eq!(tags.get("kind").map(String::as_str), Some("dead_delivery"));
    assert_eq!(
        tags.get("service").map(String::as_str),
        Some("paiid-alerts")
    );
    assert_eq!(
        tags.get("channel").map(String::as_str),
        Some("slack-alerts")
    );
}
