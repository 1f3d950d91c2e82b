//! `POST /-/reload`: re-reads `routing.yaml` (like `SIGHUP`). Bearer `API_TOKEN`, like every
//! other write.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use super::AppState;
use super::api::require_api_token;
use super::error::ApiError;
use crate::notify::reload::ReloadError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/-/reload", post(reload))
}

async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&state, &headers)?;
    let reloader = state.reloader.clone();
    // Reads a file and builds HTTP clients: off the async workers.
    let done = tokio::task::spawn_blocking(move || reloader.reload())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    match done {
        Ok(r) => Ok(Json(json!({ "status": "reloaded", "config": r }))),
        // The same text `check-config` prints for this file.
        Err(e @ ReloadError::Invalid(_)) => {
            Err(ApiError::bad_request("invalid_config", e.to_string()))
        }
        Err(e @ ReloadError::Channels(_)) => {
            Err(ApiError::bad_request("invalid_config", e.to_string()))
        }
    }
}
