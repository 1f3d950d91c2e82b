//! `/healthz`: the process answers. `/readyz`: the database is reachable, migrations are applied
//! and the workers run (overdue escalations fire after ready).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ready()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database not ready: {e}")))?;
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "start-up recovery has not finished".into(),
        ));
    }
    Ok(Json(json!({ "status": "ready" })))
}
