//! Reloading `routing.yaml` while the service runs (`SIGHUP`, `POST /-/reload`): the file is
//! read and validated exactly as at start-up, its channels are built, and only then are both
//! put in force. A file that does not load changes nothing.
//!
//! Here rather than in `config` because a reload also rebuilds the channels (this layer's), so
//! that a new webhook URL or a new channel is used without a restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::registry::{ChannelBuildError, ChannelEnv, Channels};
use super::render::Templates;
use crate::config::{ConfigError, Live, RoutingConfig};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The same text `check-config` prints for the file.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error("{0}")]
    Channels(#[from] ChannelBuildError),
}

/// What a successful reload put in force.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    pub path: String,
    pub rules: usize,
    pub channels: usize,
    /// Channels that only reach the log in this environment, and why (`SMTP_URL is not set`).
    pub log_only: Vec<(String, String)>,
}

pub struct Reloader {
    path: PathBuf,
    env: ChannelEnv,
    cfg: Live<RoutingConfig>,
    channels: Live<Channels>,
    metrics: Arc<Metrics>,
    /// One reload at a time, so a SIGHUP and a POST never interleave their two stores.
    busy: Mutex<()>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        env: ChannelEnv,
        cfg: Live<RoutingConfig>,
        channels: Live<Channels>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            path,
            env,
            cfg,
            channels,
            metrics,
            busy: Mutex::new(()),
        }
    }

    /// Re-reads the routing file from the path it was loaded from. On success the new rules
    /// classify the next batch; running escalations keep the policy frozen on their incident.
    /// On failure the configuration in force stays, and the metric and log say so.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        // Nothing is left half-done under this lock (both stores happen after every check).
        let _one = match self.busy.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match self.build() {
            Ok((cfg, channels)) => {
                let done = Reloaded {
                    path: self.path.display().to_string(),
                    rules: cfg.rules.len(),
                    channels: cfg.channels.len(),
                    log_only: channels
                        .log_only()
                        .map(|(n, why)| (n.to_string(), why.to_string()))
                        .collect(),
                };
                // Channels first: a delivery queued under the new rules finds its channel.
                self.channels.store(Arc::new(channels));
                self.cfg.store(Arc::new(cfg));
                self.metrics.config_reload(true);
                tracing::info!(
                    config = %done.path,
                    rules = done.rules,
                    channels = done.channels,
                    "routing file reloaded: new alerts use it, the next delivery attempt its delivery settings (running escalations keep their policy)"
                );
                // The process environment is not re-read: say so, since a reload after editing
                // it would otherwise look like it applied the change.
                tracing::info!(
                    "not reloaded (restart to change): environment variables, i.e. SMTP_URL and the other secrets, ${{VARS}} in the routing file, PUBLIC_URL, LISTEN_ADDR, DATABASE_URL"
                );
                for (name, why) in &done.log_only {
                    tracing::warn!(channel = %name, "channel {name} only reaches the log: {why}");
                }
                Ok(done)
            }
            Err(e) => {
                self.metrics.config_reload(false);
                tracing::error!(error = %e, "routing file reload refused; the previous configuration stays in force");
                Err(e)
            }
        }
    }

    fn build(&self) -> Result<(RoutingConfig, Channels), ReloadError> {
        let cfg = RoutingConfig::load(&self.path)?;
        let templates = Arc::new(Templates::from(cfg.templates.clone()));
        let channels = Channels::build(&cfg, &self.env, templates)?;
        Ok((cfg, channels))
    }
}
