//! Self-monitoring: the service reports its own failures to Sentry, as PaiiD's guide has every
//! service do, with the guide's graceful fallback when `SENTRY_DSN` is unset.
//!
//! Reported: internal errors of the HTTP API, panics (the `sentry` panic integration), dead
//! deliveries and the database becoming unwritable. Every event carries the tag
//! `service: paiid-alerts` ([`SERVICE_TAG`]): when Sentry forwards this service's own errors back
//! to it, the default `routing.yaml` classifies them without paging, so a failing channel cannot
//! page about itself in a loop.
//!
//! The client is process-wide (the `sentry` crate's main hub); only `serve` initialises it. The
//! reporting functions do nothing when it is not initialised, so tests and the other commands
//! run them for free.

use std::borrow::Cow;
use std::sync::Arc;

use sentry::protocol::{Event, Level, Request};

/// The tag every event carries, and the one `routing.yaml` must never page on.
pub(crate) const SERVICE_TAG: (&str, &str) = ("service", "paiid-alerts");
/// The release every event names: `paiid-alerts@<version>`.
pub(crate) const RELEASE: &str = concat!("paiid-alerts@", env!("CARGO_PKG_VERSION"));
/// Traces sampled when `SENTRY_TRACES_SAMPLE_RATE` is unset (the guide's production value).
pub(crate) const DEFAULT_TRACES_SAMPLE_RATE: f32 = 0.1;
/// The message of the event `GET /api/health/sentry-test` captures (the guide's wording).
pub(crate) const TEST_ERROR_MESSAGE: &str =
    "This is a test error to verify Sentry integration is working";

const REDACTED: &str = "[REDACTED]";
/// The `kind` tag of a panic's event.
const PANIC_KIND: &str = "panic";

/// Request headers that carry credentials or signatures: never sent to Sentry.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-sentry-auth",
    "sentry-hook-signature",
    "x-slack-signature",
    "x-pagerduty-signature",
];

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("SENTRY_DSN is not a valid Sentry DSN ({0}); expected https://KEY@HOST/PROJECT_ID")]
    BadDsn(String),
    #[error("SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not `{0}`")]
    BadSampleRate(String),
    #[error("the Sentry HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What `SENTRY_*` says.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryOptions {
    pub dsn: Option<String>,
    pub environment: Option<String>,
    pub traces_sample_rate: f32,
}

impl TelemetryOptions {
    /// `SENTRY_DSN`, `SENTRY_ENVIRONMENT`, `SENTRY_TRACES_SAMPLE_RATE` (empty counts as unset).
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let traces_sample_rate = match get("SENTRY_TRACES_SAMPLE_RATE") {
            None => DEFAULT_TRACES_SAMPLE_RATE,
            Some(raw) => raw
                .parse::<f32>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or(TelemetryError::BadSampleRate(raw))?,
        };
        Ok(Self {
            dsn: get("SENTRY_DSN"),
            environment: get("SENTRY_ENVIRONMENT"),
            traces_sample_rate,
        })
    }
}

/// Keeps the client alive; dropping it flushes what is queued (up to the SDK's 2 s).
#[must_use = "dropping the guard shuts the Sentry client down"]
pub struct TelemetryGuard {
    _client: Option<sentry::ClientInitGuard>,
}

/// Starts the process-wide client when a DSN is set and logs which way it went, in the guide's
/// words. A DSN that is set but malformed is an error: silently dropping reports would be the
/// failure this module exists to prevent.
pub fn init_telemetry(options: &TelemetryOptions) -> Result<TelemetryGuard, TelemetryError> {
    let Some(dsn) = &options.dsn else {
        tracing::warn!("[WARNING] SENTRY_DSN not configured - error tracking disabled");
        return Ok(TelemetryGuard { _client: None });
    };
    let dsn: sentry::types::Dsn = dsn
        .parse()
        .map_err(|e: sentry::types::ParseDsnError| TelemetryError::BadDsn(e.to_string()))?;
    // The service's own TLS set-up (rustls with ring, roots compiled in), as for the channels.
    let client = crate::http_client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut opts = client_options(dsn, options);
    opts.transport = Some(Arc::new(Transport { client }));
    let guard = sentry::init(opts);
    if guard.is_enabled() {
        tracing::info!("[OK] Sentry error tracking initialized");
        Ok(TelemetryGuard {
            _client: Some(guard),
        })
    } else {
        tracing::warn!("[WARNING] SENTRY_DSN not configured - error tracking disabled");
        Ok(TelemetryGuard { _client: None })
    }
}

/// The client's options but its transport: what `serve` runs with, and what the tests capture
/// events with (`sentry::init` then adds the default integrations, the panic one among them).
pub(crate) fn client_options(
    dsn: sentry::types::Dsn,
    options: &TelemetryOptions,
) -> sentry::ClientOptions {
    // `ClientOptions` is non-exhaustive: set field by field.
    let mut opts = sentry::ClientOptions::default();
    opts.dsn = Some(dsn);
    opts.release = Some(Cow::Borrowed(RELEASE));
    opts.environment = options.environment.clone().map(Cow::Owned);
    opts.send_default_pii = false;
    opts.before_send = Some(Arc::new(|event| Some(scrub(event))));
    opts.traces_sampling_strategy =
        sentry::TracesSamplingStrategy::FixedRate(options.traces_sample_rate);
    opts
}

/// Whether events go anywhere (a DSN was set at start).
pub(crate) fn is_enabled() -> bool {
    sentry::Hub::current()
        .client()
        .is_some_and(|c| c.is_enabled())
}

/// What went wrong, for the `kind` tag (and Sentry's grouping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// An API request failed on our side (`ApiError::Internal`, a 500).
    InternalError,
    /// A delivery was given up: its message will never arrive.
    DeadDelivery,
    /// The database stopped accepting writes.
    StorageFailing,
    /// `GET /api/health/sentry-test`.
    Test,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Self::InternalError => "internal_error",
            Self::DeadDelivery => "dead_delivery",
            Self::StorageFailing => "storage_failing",
            Self::Test => "sentry_test",
        }
    }
}

/// Reports one failure as an error-level event. `tags` add context (a channel, a source); the
/// message should not carry secrets (callers pass what they already log).
pub(crate) fn report(failure: Failure, message: &str, tags: &[(&str, &str)]) {
    report_event(failure, message, tags, None);
}

/// The controlled error of `GET /api/health/sentry-test`, with the request that asked for it
/// (its credentials are redacted in `before_send`, like every event's).
pub(crate) fn report_test_error(method: &str, url: &str, headers: &[(String, String)]) {
    let request = Request {
        url: url.parse().ok(),
        method: Some(method.to_string()),
        headers: headers.iter().cloned().collect(),
        ..Default::default()
    };
    report_event(Failure::Test, TEST_ERROR_MESSAGE, &[], Some(request));
}

fn report_event(failure: Failure, message: &str, tags: &[(&str, &str)], request: Option<Request>) {
    if !is_enabled() {
        return;
    }
    let mut event = Event {
        message: Some(message.to_string()),
        level: Level::Error,
        logger: Some("paiid-alerts".into()),
        request,
        ..Default::default()
    };
    event
        .tags
        .insert("kind".into(), failure.as_str().to_string());
    for (k, v) in tags {
        event.tags.insert((*k).to_string(), (*v).to_string());
    }
    sentry::capture_event(event);
}

/// `before_send`: the loop-guard tag on every event (panics included), and no credentials.
pub(crate) fn scrub(mut event: Event<'static>) -> Event<'static> {
    event
        .tags
        .insert(SERVICE_TAG.0.to_string(), SERVICE_TAG.1.to_string());
    // The panic integration builds its own event: give it a `kind` like every other report, so
    // that one tag tells apart every failure this service sends.
    let is_panic = event
        .exception
        .values
        .iter()
        .any(|e| e.mechanism.as_ref().is_some_and(|m| m.ty == "panic"));
    if is_panic {
        event
            .tags
            .entry("kind".to_string())
            .or_insert_with(|| PANIC_KIND.to_string());
    }
    if let Some(request) = event.request.as_mut() {
        for (name, value) in request.headers.iter_mut() {
            if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                *value = REDACTED.to_string();
            }
        }
        if request.cookies.is_some() {
            request.cookies = Some(REDACTED.to_string());
        }
        // The legacy webhook's shared secret travels as `?token=`.
        if let Some(q) = request.query_string.as_mut()
            && q.to_ascii_lowercase().contains("token")
        {
            *q = REDACTED.to_string();
        }
        if let Some(url) = request.url.as_mut()
            && url
                .query()
                .is_some_and(|q| q.to_ascii_lowercase().contains("token"))
        {
            url.set_query(Some(REDACTED));
        }
        request.data = None;
        request.env.clear();
    }
    // `send_default_pii` is off; a user someone set on a scope still does not leave.
    event.user = None;
    event
}

/// The `sentry` reqwest transport, handed the service's own client instead of building one
/// (which, with `rustls-no-provider`, would find no crypto provider).
struct Transport {
    client: reqwest::Client,
}

impl sentry::TransportFactory for Transport {
    fn create_transport_with_options(
        &self,
        options: sentry::TransportOptions,
    ) -> Arc<dyn sentry::Transport> {
        Arc::new(
            sentry::transports::ReqwestHttpTransportOptions::from(options)
                .with_client(self.client.clone())
                .build(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests;
