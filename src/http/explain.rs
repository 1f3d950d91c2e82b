//! `POST /api/explain`: which rule a Sentry payload would hit, who would be paged, and which
//! silence would hold it, without storing or sending anything. The body is the payload as
//! Sentry sends it; its resource comes from `?resource=` or the `Sentry-Hook-Resource` header.
//! A reader's call (like the other `GET`s): it changes nothing.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use serde::Deserialize;

use super::AppState;
use super::api::require_api_reader;
use super::error::ApiError;
use crate::classification::explain::Explanation;
use crate::incidents::explain::{ExplainError, explain_payload};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/explain", post(explain))
}

#[derive(Deserialize)]
struct ExplainQuery {
    resource: Option<String>,
}

async fn explain(
    State(state): State<AppState>,
    Query(q): Query<ExplainQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Explanation>, ApiError> {
    require_api_reader(&state, &headers)?;
    let header = headers
        .get("sentry-hook-resource")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resource = q.resource.or(header).filter(|r| !r.trim().is_empty());
    let cfg = state.cfg.load();
    let now = state.clock.now_ms();
    match explain_payload(
        &cfg,
        Some(state.store.reader()),
        resource.as_deref(),
        &body,
        now,
    )
    .await
    {
        Ok(e) => Ok(Json(e)),
        Err(ExplainError::Payload(e)) => Err(super::sentry::parse_error(e)),
        Err(ExplainError::Store(e)) => Err(e.into()),
    }
}
