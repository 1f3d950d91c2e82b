//! HTTP: every module exposes `router()`; errors go through [`error::ApiError`].

pub(crate) mod ack;
pub(crate) mod api;
pub(crate) mod error;
pub(crate) mod explain;
pub(crate) mod extract;
pub(crate) mod form;
pub(crate) mod health;
pub(crate) mod inbound;
pub(crate) mod ops;
pub(crate) mod overview;
pub(crate) mod pages;
pub(crate) mod reload;
pub(crate) mod self_monitoring;
pub(crate) mod sentry;
pub(crate) mod serve;
pub(crate) mod silences;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

use crate::auth::ack_token::AckKeys;
use crate::clock::SharedClock;
use crate::config::{Live, RoutingConfig};
use crate::incidents::service::IncidentService;
use crate::incidents::writer::WriterHandle;
use crate::metrics::Metrics;
use crate::notify::registry::Channels;
use crate::notify::reload::Reloader;
use crate::settings::Secrets;
use crate::store::Store;

/// Largest webhook body accepted (Sentry's are a few KiB; 1 MiB leaves room for big stacks).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// What the handlers use. The workers are not here: `app::Workers` hands them to tests.
#[derive(Clone)]
pub struct AppState {
    /// The routing file in force: `load()` it once per request (a reload swaps it).
    pub cfg: Live<RoutingConfig>,
    pub store: Store,
    pub writer: WriterHandle,
    pub incidents: IncidentService,
    pub clock: SharedClock,
    pub secrets: Arc<Secrets>,
    pub public_url: Arc<str>,
    /// False until the workers run (with `run_workers` off: until start-up recovery has run);
    /// overdue escalations fire after ready, not before.
    pub ready: Arc<AtomicBool>,
    pub channels: Live<Channels>,
    pub metrics: Arc<Metrics>,
    pub ack_keys: Arc<AckKeys>,
    /// `SIGHUP` and `POST /-/reload`.
    pub reloader: Arc<Reloader>,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

pub(crate) fn router(state: AppState) -> Router {
    // The page templates, compiled once for the incident pages and the ack-link pages.
    let pages = pages::Pages::new();
    Router::new()
        .merge(health::router())
        .merge(self_monitoring::router())
        .merge(sentry::router())
        .merge(api::router())
        .merge(ops::router())
        .merge(ack::router(pages.clone()))
        .merge(overview::router(pages.clone()))
        .merge(inbound::router())
        .merge(reload::router())
        .merge(explain::router())
        .merge(silences::router(pages.clone()))
        .merge(pages::router(pages))
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            error::ApiError::MethodNotAllowed {
                method: method.to_string(),
                path: uri.path().to_string(),
            }
        })
        .layer(axum::middleware::from_fn(request_timeout))
        // The JSON and form extractors' limit; the webhook routes read their bodies themselves
        // under the same limit.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A 500 is logged where it happens (`ApiError::Internal`), and a storage outage once by
        // the health tracker: an error line per refused request would bury both.
        .layer(
            TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// No request may hold a connection longer than this once its headers are in.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Like `tower_http`'s timeout, but the answer is our JSON error, not an empty 503.
async fn request_timeout(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error::ApiError::Unavailable(format!(
            "the request took longer than {} s; retry later",
            REQUEST_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}
