//! Builds the configured channels: a real client when its secrets are set, otherwise a log
//! channel that records what would have been sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::email::EmailChannel;
use super::log::LogChannel;
use super::pagerduty::PagerDutyChannel;
use super::render::Templates;
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
        let log = |kind: &'static str, missing: Vec<String>| {
            Arc::new(LogChannel::new(
                c.name.clone(),
                kind,
                missing,
                templates.clone(),
            ))
        };
        let name = c.name.clone();
        match c.kind {
            ChannelKind::Slack => {
                let channel = c.slack_channel.clone().unwrap_or_default();
                let real: Option<Arc<dyn Channel>> = match (&c.bot_token, &c.webhook_url) {
                    (Some(token), _) => Some(Arc::new(
                        SlackChannel::bot(
                            name.clone(),
                            channel,
                            token.clone(),
                            env.slack_api_url.clone(),
                            http.clone(),
                            templates.clone(),
                        )
                        .with_timeout(send_timeout),
                    )),
                    (None, Some(url)) => Some(Arc::new(
                        SlackChannel::webhook(
                            name.clone(),
                            channel,
                            url.clone(),
                            http.clone(),
                            templates.clone(),
                        )
                        .with_timeout(send_timeout),
                    )),
                    (None, None) => None,
                };
                match real {
                    Some(ch) => {
                        self.channels.insert(name, ch);
                    }
                    None => self.insert_log(name, log("slack", c.missing_env.clone()), c.kind),
                }
            }
            ChannelKind::Pagerduty => match &c.routing_key {
                Some(key) => {
                    let events_url = c
                        .events_url
                        .clone()
                        .unwrap_or_else(|| env.pagerduty_events_url.clone());
                    self.channels.insert(
                        name.clone(),
                        Arc::new(
                            PagerDutyChannel::new(
                                name,
                                key.clone(),
                                events_url,
                                http.clone(),
                                templates.clone(),
                            )
                            .with_timeout(send_timeout),
                        ),
                    );
                }
                None => self.insert_log(name, log("pagerduty", c.missing_env.clone()), c.kind),
            },
            ChannelKind::Email => match &env.smtp_url {
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
                    self.insert_log(name, log("email", missing), c.kind);
                }
            },
            ChannelKind::Log => self.insert_log(name, log("log", Vec::new()), c.kind),
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
