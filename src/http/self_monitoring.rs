//! `GET /api/health/sentry-test`, as in PaiiD's Sentry guide: proves that the service's own
//! errors reach Sentry. Without `SENTRY_DSN` it says so (503); with one it captures a controlled
//! error and answers 500, the way the guide's backend does.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::api::require_api_reader;
use super::error::ApiError;
use crate::telemetry;

pub(crate) const NOT_CONFIGURED: &str =
    "Sentry DSN is not configured. Set SENTRY_DSN before running the test.";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/health/sentry-test", get(sentry_test))
}

async fn sentry_test(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_api_reader(&state, &headers)?;
    if !telemetry::is_enabled() {
        return Err(ApiError::Unavailable(NOT_CONFIGURED.into()));
    }
    // The request goes with the event as a web framework integration would send it; its
    // credentials are redacted by `before_send` (that is part of what this test shows).
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let url = format!("{}{}", state.public_url, uri);
    telemetry::report_test_error(method.as_str(), &url, &headers);
    Ok((
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "code": "sentry_test", "detail": telemetry::TEST_ERROR_MESSAGE })),
    )
        .into_response())
}
