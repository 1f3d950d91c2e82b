//! Process settings: where to listen, the database, the routing file, and secrets. Secrets come
//! only from the environment and are never printed (`Secret`'s `Debug` is redacted).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::clock::SharedClock;

/// Slack Web API base when `SLACK_API_URL` is unset.
pub(crate) const DEFAULT_SLACK_API_BASE: &str = "https://slack.com/api";
/// Events API endpoint when `PAGERDUTY_EVENTS_URL` is unset.
pub(crate) const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// How long a connection may take to send its request headers.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(65);

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: survives a process crash (SIGKILL), but commits answered 2xx
    /// may be lost when the OS or the file system fails (power loss, a file system forced
    /// read-only: 15 of 190 were lost in a test). Opt-in, for a faster intake.
    Normal,
    /// WAL + synchronous=FULL: every commit is on disk before its webhook is answered. The
    /// default: Sentry never resends a webhook it got a 2xx for.
    #[default]
    Full,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(format!(
                "unknown durability `{other}` (expected normal or full)"
            )),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// Reads an environment variable; empty counts as unset.
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(Self)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Integration-platform client secret: verifies `Sentry-Hook-Signature`.
    pub sentry_client_secret: Option<Secret>,
    /// Shared `?token=` for the legacy WebHooks plugin, which signs nothing.
    pub sentry_webhook_token: Option<Secret>,
    /// Bearer token for `/api/*`.
    pub api_token: Option<Secret>,
    pub slack_signing_secret: Option<Secret>,
    pub pagerduty_webhook_secret: Option<Secret>,
    /// Key for signed acknowledgement links; generated and stored on first start when unset.
    pub ack_signing_key: Option<Secret>,
    /// `smtp://host:port`, `smtps://user:pass@host:465`, `smtp://host:587?tls=required`.
    pub smtp_url: Option<Secret>,
}

impl Secrets {
    pub fn from_env() -> Self {
        Self {
            sentry_client_secret: Secret::from_env("SENTRY_CLIENT_SECRET"),
            sentry_webhook_token: Secret::from_env("SENTRY_WEBHOOK_TOKEN"),
            api_token: Secret::from_env("API_TOKEN"),
            slack_signing_secret: Secret::from_env("SLACK_SIGNING_SECRET"),
            pagerduty_webhook_secret: Secret::from_env("PAGERDUTY_WEBHOOK_SECRET"),
            ack_signing_key: Secret::from_env("ACK_SIGNING_KEY"),
            smtp_url: Secret::from_env("SMTP_URL"),
        }
    }

    pub fn webhooks_signed(&self) -> bool {
        self.sentry_client_secret.is_some() || self.sentry_webhook_token.is_some()
    }
}

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub config_path: PathBuf,
    /// Base of links in messages; defaults to `http://{listen address}`.
    pub public_url: Option<String>,
    pub durability: Durability,
    pub allow_unsigned_webhooks: bool,
    pub secrets: Secrets,
    pub email_from: String,
    pub slack_api_url: String,
    pub pagerduty_events_url: String,
    /// Injected in tests; the system clock otherwise.
    pub clock: Option<SharedClock>,
    /// Run the background workers (outbox, scheduler, digest). Tests may step them by hand.
    pub run_workers: bool,
    /// How long a connection may take to send a request's headers (idle keep-alive included).
    pub header_read_timeout: std::time::Duration,
    /// This replica's name in `/metrics` (`paiid_replica_info`) and the log: `REPLICA_NAME`, else
    /// the host's name and the process id.
    pub replica: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &crate::text::redact_url_password(&self.database_url),
            )
            .field("config_path", &self.config_path)
            .field("public_url", &self.public_url)
            .field("durability", &self.durability)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// `REPLICA_NAME`, else `<host>-<pid>` (two replicas on one host differ by their process).
fn replica_name() -> String {
    if let Some(name) = std::env::var("REPLICA_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return name;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "paiid-alerts".to_string());
    format!("{host}-{}", std::process::id())
}

impl Settings {
    /// Defaults for everything but the three paths, reading secrets from the environment.
    pub fn new(listen: SocketAddr, database_url: String, config_path: PathBuf) -> Self {
        Self {
            listen,
            database_url,
            config_path,
            public_url: std::env::var("PUBLIC_URL").ok().filter(|s| !s.is_empty()),
            durability: Durability::Full,
            allow_unsigned_webhooks: false,
            secrets: Secrets::from_env(),
            email_from: std::env::var("ALERT_EMAIL_FROM")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "paiid-alerts <alerts@paiid.ai>".to_string()),
            slack_api_url: std::env::var("SLACK_API_URL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SLACK_API_BASE.to_string()),
            pagerduty_events_url: std::env::var("PAGERDUTY_EVENTS_URL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_PAGERDUTY_EVENTS_URL.to_string()),
            clock: None,
            replica: replica_name(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            run_workers: true,
        }
    }
}
