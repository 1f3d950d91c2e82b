//! The one API error type. Every failure leaves as `{"code": ..., "detail": ...}` with a status
//! that says whose fault it is; internal causes are logged, never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::incidents::service::ServiceError;
use crate::store::StoreError;

/// What a 503 asks the client to wait: the health probe looks again every second.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            let error = format!("{cause:#}");
            tracing::error!(error, "request failed");
            crate::telemetry::report(
                crate::telemetry::Failure::InternalError,
                &format!("request failed: {error}"),
                &[],
            );
        }
        let mut response = (
            status,
            Json(json!({ "code": code, "detail": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Storage faults and start-up clear by themselves; a polite client comes back.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WriterGone => Self::Unavailable("the service is shutting down".into()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<std::sync::Arc<StoreError>> for ApiError {
    fn from(e: std::sync::Arc<StoreError>) -> Self {
        match &*e {
            StoreError::WriterGone => Self::Unavailable("the service is shutting down".into()),
            // The writer reported it to the health tracker, which logs it once per outage.
            other => Self::Unavailable(format!("storage is unavailable; retry later ({other})")),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(id) => Self::NotFound(format!("incident {id} not found")),
            stale @ ServiceError::StaleEpisode { .. } => Self::Conflict(stale.to_string()),
            ServiceError::Store(s) => s.into(),
        }
    }
}

/// Turns axum's own rejections (bad JSON, bad path parameters) into the same JSON shape.
pub(crate) fn rejection(status: StatusCode, detail: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: super::BODY_LIMIT,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::bad_request("unsupported_media_type", detail)
        }
        _ => ApiError::bad_request("bad_request", detail),
    }
}

#[cfg(test)]
mod tests;
