//! Builds the configured channels: a real client when its secrets are set, otherwise a log
//! channel that records what would have been sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::email::EmailChannel;
use super::log::LogChannel;
use super::pagerduty::PagerDutyChannel;
use super::render::Templates;
use super::sentry::SentryChannel;
use super::slack::SlackChannel;
use super::{Channel, Mailer};
use crate::config::{ChannelConfig, ChannelKind, RoutingConfig};
use crate::domain::Severity;

/// Outbound settings that come from the environment rather than `routing.yaml`.
#[derive(Clone)]
pub struct ChannelEnv {
    pub smtp_url: Option<String>,
    pub email_from: String,
    pub slack_api_url: String,
    pub pagerduty_events_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("channel `{channel}`: {message}")]
pub struct ChannelBuildError {
    pub channel: String,
    pub message: String,
}

#[derive(Clone, Default)]
pub struct Channels {
    channels: BTreeMap<String, Arc<dyn Channel>>,
    mailers: BTreeMap<String, Arc<dyn Mailer>>,
    /// Variables to set for each channel that is only logged.
    missing: BTreeMap<String, Vec<String>>,
    /// Why each channel that is only logged is so, in words (`SMTP_URL is not set`).
    log_only: BTreeMap<String, String>,
}

/// A severity's policy names a channel that only reaches the log (`check-config --strict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOnlyInPolicy {
    pub severity: Severity,
    /// `notify` or `escalate_to`.
    pub field: &'static str,
    pub channel: String,
    pub why: String,
}

impl std::fmt::Display for LogOnlyInPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "severity {} {} {}, which only reaches the log ({})",
            self.severity, self.field, self.channel, self.why
        )
    }
}

impl Channels {
    pub fn build(
        cfg: &RoutingConfig,
        env: &ChannelEnv,
        templates: Arc<Templates>,
    ) -> Result<Self, ChannelBuildError> {
        let send_timeout = cfg.delivery.send_timeout;
        // Webhooks must not follow redirects: a redirect to elsewhere would leak the payload.
        let http = crate::http_client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(send_timeout)
            .user_agent(concat!("paiid-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelBuildError {
                channel: "*".into(),
                message: format!("HTTP client: {e}"),
            })?;
        let mut out = Self::default();
        for c in cfg.channels.values() {
            out.add(c, env, &http, &templates, send_timeout)?;
        }
        Ok(out)
    }

    fn add(
        &mut self,
        c: &ChannelConfig,
        env: &ChannelEnv,
        http: &reqwest::Client,
        templates: &Arc<Templates>,
        send_timeout: Duration,
    ) -> Result<(), ChannelBuildError> {
        let name = c.name.clone();
        match c.kind {
            ChannelKind::Slack => match slack_channel(c, env, http, templates, send_timeout) {
                Some(ch) => {
                    self.channels.insert(name, ch);
                }
                None => self.insert_log(
                    name,
                    log_channel(c, "slack", c.missing_env.clone(), templates),
                    c.kind,
                ),
            },
            ChannelKind::Pagerduty => match &c.routing_key {
                Some(key) => {
                    let ch = pagerduty_channel(c, key, env, http, templates, send_timeout);
                    self.channels.insert(name, ch);
                }
                None => self.insert_log(
                    name,
                    log_channel(c, "pagerduty", c.missing_env.clone(), templates),
                    c.kind,
                ),
            },
            ChannelKind::Email => self.add_email(c, env, templates, send_timeout)?,
            ChannelKind::Sentry => match &c.sentry {
                Some(sync) => {
                    let ch =
                        SentryChannel::new(name.clone(), sync.clone(), http.clone(), send_timeout);
                    self.channels.insert(name, Arc::new(ch));
                }
                // Sync is off: nothing is queued for it (see `transitions::sentry_sync_channels`),
                // so it is no channel that "only reaches the log". Rows queued while it was on
                // (before a reload took the token away) are logged.
                None => {
                    let ch = log_channel(c, "sentry", c.missing_env.clone(), templates);
                    self.channels.insert(name, ch);
                }
            },
            ChannelKind::Log => {
                self.insert_log(name, log_channel(c, "log", Vec::new(), templates), c.kind)
            }
        }
        Ok(())
    }

    /// An email channel with SMTP_URL set and nothing missing; otherwise one that only logs.
    fn add_email(
        &mut self,
        c: &ChannelConfig,
        env: &ChannelEnv,
        templates: &Arc<Templates>,
        send_timeout: Duration,
    ) -> Result<(), ChannelBuildError> {
        let name = c.name.clone();
        match &env.smtp_url {
            Some(url) if c.missing_env.is_empty() => {
                let ch = Arc::new(
                    EmailChannel::new(
                        name.clone(),
                        c.to.clone(),
                        url,
                        env.email_from.clone(),
                        send_timeout,
                        templates.clone(),
                    )
                    .map_err(|e| ChannelBuildError {
                        channel: name.clone(),
                        message: e.to_string(),
                    })?,
                );
                self.channels.insert(name.clone(), ch.clone());
                self.mailers.insert(name, ch);
            }
            _ => {
                let mut missing = c.missing_env.clone();
                if env.smtp_url.is_none() {
                    missing.push("SMTP_URL".into());
                }
                self.insert_log(name, log_channel(c, "email", missing, templates), c.kind);
            }
        }
        Ok(())
    }

    fn insert_log(&mut self, name: String, ch: Arc<LogChannel>, kind: ChannelKind) {
        self.missing.insert(name.clone(), ch.missing_env().to_vec());
        self.log_only
            .insert(name.clone(), why_log_only(kind, ch.missing_env()));
        self.channels.insert(name.clone(), ch.clone());
        self.mailers.insert(name, ch);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Channel>> {
        self.channels.get(name).cloned()
    }

    pub fn mailer(&self, name: &str) -> Option<Arc<dyn Mailer>> {
        self.mailers.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    pub fn is_real(&self, name: &str) -> bool {
        self.channels.get(name).is_some_and(|c| c.is_real())
    }

    /// Every channel that only reaches the log, with why, by name.
    pub fn log_only(&self) -> impl Iterator<Item = (&str, &str)> {
        self.log_only.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Each place a severity's policy (`notify`, `escalate_to`) names a channel that only
    /// reaches the log: an alert of that severity would never leave the machine there.
    pub fn log_only_in_policies(&self, cfg: &RoutingConfig) -> Vec<LogOnlyInPolicy> {
        let mut out = Vec::new();
        for (severity, policy) in &cfg.policies {
            for (field, names) in [
                ("notify", &policy.notify),
                ("escalate_to", &policy.escalate_to),
            ] {
                for name in names {
                    if let Some(why) = self.log_only.get(name) {
                        out.push(LogOnlyInPolicy {
                            severity: *severity,
                            field,
                            channel: name.clone(),
                            why: why.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Environment variables that would turn the log stand-in for `name` into the real channel.
    pub fn missing_env(&self, name: &str) -> &[String] {
        self.missing.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}
/// A channel that only writes what it would have sent to the log, saying what it lacks.
fn log_channel(
    c: &ChannelConfig,
    kind: &'static str,
    missing: Vec<String>,
    templates: &Arc<Templates>,
) -> Arc<LogChannel> {
    Arc::new(LogChannel::new(
        c.name.clone(),
        kind,
        missing,
        templates.clone(),
    ))
}

/// A Slack channel through the bot token if one is set, else the incoming webhook; `None`
/// when neither is.
fn slack_channel(
    c: &ChannelConfig,
    env: &ChannelEnv,
    http: &reqwest::Client,
    templates: &Arc<Templates>,
    send_timeout: Duration,
) -> Option<Arc<dyn Channel>> {
    let name = c.name.clone();
    let channel = c.slack_channel.clone().unwrap_or_default();
    match (&c.bot_token, &c.webhook_url) {
        (Some(token), _) => Some(Arc::new(
            SlackChannel::bot(
                name,
                channel,
                token.clone(),
                env.slack_api_url.clone(),
                http.clone(),
                templates.clone(),
            )
            .with_timeout(send_timeout),
        )),
        (None, Some(url)) => Some(Arc::new(
            SlackChannel::webhook(name, channel, url.clone(), http.clone(), templates.clone())
                .with_timeout(send_timeout),
        )),
        (None, None) => None,
    }
}

/// A PagerDuty channel; the events URL is the channel's own or the environment's.
fn pagerduty_channel(
    c: &ChannelConfig,
    key: &str,
    env: &ChannelEnv,
    http: &reqwest::Client,
    templates: &Arc<Templates>,
    send_timeout: Duration,
) -> Arc<dyn Channel> {
    let events_url = c
        .events_url
        .clone()
        .unwrap_or_else(|| env.pagerduty_events_url.clone());
    Arc::new(
        PagerDutyChannel::new(
            c.name.clone(),
            key.to_string(),
            events_url,
            http.clone(),
            templates.clone(),
        )
        .with_timeout(send_timeout),
    )
}

/// In words, why a channel of `kind` only reaches the log, given the variables it lacks. A Slack
/// channel needs either of its secrets; an email channel needs all of what it lacks.
fn why_log_only(kind: ChannelKind, missing: &[String]) -> String {
    match (kind, missing) {
        (ChannelKind::Log, _) => "it is a log channel (type: log)".to_string(),
        (_, []) => "it is not configured".to_string(),
        (_, [one]) => format!("{one} is not set"),
        (ChannelKind::Slack, [first, rest @ ..]) => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            format!("neither {first} nor {} is set", rest.join(" nor "))
        }
        (_, many) => format!("{} are not set", many.join(" and ")),
    }
}

#[cfg(test)]
mod tests;
