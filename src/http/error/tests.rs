use axum::response::IntoResponse;
use sentry::protocol::User;

use super::*;

/// An internal error answers 500 without its cause, and Sentry gets the cause, tagged as an
/// internal error of this service, without the user a scope carried.
#[test]
fn an_internal_error_reaches_sentry_tagged_and_redacted() {
    let mut status = None;
    let events = sentry::test::with_captured_events_options(
        || {
            sentry::configure_scope(|scope| {
                scope.set_user(Some(User {
                    email: Some("someone@paiid.ai".into()),
                    ..Default::default()
                }));
            });
            let cause = anyhow::anyhow!("no such table: incidents");
            status = Some(ApiError::Internal(cause).into_response().status());
        },
        crate::telemetry::tests::serve_options(),
    );
    assert_eq!(status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        event.message.as_deref(),
        Some("request failed: no such table: incidents")
    );
    assert_eq!(event.level, sentry::Level::Error);
    assert_eq!(
        event.tags.get("kind").map(String::as_str),
        Some("internal_error")
    );
    assert_eq!(
        event.tags.get("service").map(String::as_str),
        Some("paiid-alerts")
    );
    assert!(event.user.is_none(), "{:?}", event.user);
}

/// The errors that are the client's, or a pause, are not reported.
#[test]
fn client_errors_and_unavailability_are_not_reported() {
    let events = sentry::test::with_captured_events_options(
        || {
            let _ = ApiError::bad_request("bad", "no").into_response();
            let _ = ApiError::NotFound("incident 9 not found".into()).into_response();
            let _ = ApiError::Unavailable("storage is unavailable".into()).into_response();
        },
        crate::telemetry::tests::serve_options(),
    );
    assert!(events.is_empty(), "{events:?}");
}
