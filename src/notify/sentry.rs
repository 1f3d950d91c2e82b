//! The `sentry` channel: our changes told back to Sentry through its API, as outbox deliveries
//! (durable, retried, in the delivery history like any page).
//!
//! - `resolved`: `PUT /api/0/organizations/{org}/issues/{id}/` with `{"status": "resolved"}`.
//! - `acknowledged`: the same `PUT` with `{"assignedTo": ...}` for an actor listed in the
//!   channel's `users` (`user:ID`, a username or an email, as Sentry accepts).
//! - `opened`: the incident linked in the issue's sidebar through the integration platform's
//!   external issues, `POST /api/0/sentry-app-installations/{uuid}/external-issues/` with
//!   `issueId`, `webUrl`, `project`, `identifier` (an upsert on Sentry's side: a repeat replaces
//!   the link, so a retried send is harmless).
//!
//! Every call carries `Authorization: Bearer {api_token}`. Facts and sources:
//! `tests/fixtures/sentry-lifecycle/sentry-facts.md` (sections 3 and 4).

use std::time::Duration;

use serde_json::{Value, json};

use super::message::{Notification, NotificationKind};
use super::notice::Notice;
use super::transport::{classify_status, retry_after, transport_failure};
use super::{Channel, Outgoing, SendFuture, SendOutcome, truncate_body};
use crate::config::SentrySync;
use crate::domain::{ChannelKind, IncidentState};
use crate::intake::sentry::issue_id_from_url;

/// What a delivery keeps of Sentry's answer.
const MAX_STORED_BODY: usize = 2_000;

/// The `project` our incidents show under in Sentry's sidebar (`project#id`).
const LINK_PROJECT: &str = "paiid-alerts";

pub(crate) struct SentryChannel {
    name: String,
    sync: SentrySync,
    http: reqwest::Client,
    timeout: Duration,
}

/// One call to Sentry's API.
struct Call {
    method: reqwest::Method,
    url: String,
    body: Value,
}

impl SentryChannel {
    pub(crate) fn new(
        name: String,
        sync: SentrySync,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            name,
            sync,
            http,
            timeout,
        }
    }

    fn issue_url(&self, issue_id: &str) -> String {
        format!(
            "{}/api/0/organizations/{}/issues/{issue_id}/",
            self.sync.api_url, self.sync.organization
        )
    }

    /// The call a notification becomes, or why there is none.
    fn call_for(&self, n: &Notification) -> Result<Call, String> {
        // The issue id is the one in the permalink Sentry gave us (`.../issues/{id}/...`).
        let issue_id = n
            .sentry_url
            .as_deref()
            .and_then(issue_id_from_url)
            .ok_or_else(|| "the incident has no Sentry issue".to_string())?;
        match n.kind {
            // Queued before the incident opened again (a retry outlived the episode): Sentry's
            // issue is live again and must stay so.
            NotificationKind::Resolved if n.state != IncidentState::Resolved => {
                Err("the incident opened again since; not resolving the issue".to_string())
            }
            NotificationKind::Resolved => Ok(Call {
                method: reqwest::Method::PUT,
                url: self.issue_url(&issue_id),
                body: json!({ "status": "resolved" }),
            }),
            NotificationKind::Acknowledged => {
                let who = n
                    .acknowledged_by
                    .as_deref()
                    .and_then(|by| self.sync.users.get(by))
                    .ok_or_else(|| "the acknowledging actor has no Sentry user".to_string())?;
                Ok(Call {
                    method: reqwest::Method::PUT,
                    url: self.issue_url(&issue_id),
                    body: json!({ "assignedTo": who }),
                })
            }
            NotificationKind::Opened => {
                let uuid = self
                    .sync
                    .installation_uuid
                    .as_deref()
                    .ok_or_else(|| "no installation_uuid: sidebar links are off".to_string())?;
                Ok(Call {
                    method: reqwest::Method::POST,
                    url: format!(
                        "{}/api/0/sentry-app-installations/{uuid}/external-issues/",
                        self.sync.api_url
                    ),
                    body: json!({
                        "issueId": issue_id.parse::<i64>().map_or_else(|_| json!(issue_id), |n| json!(n)),
                        "webUrl": n.incident_url,
                        "project": LINK_PROJECT,
                        "identifier": n.incident_id.to_string(),
                    }),
                })
            }
            other => Err(format!(
                "Sentry has nothing to do with `{}`",
                other.as_str()
            )),
        }
    }

    async fn send_call(&self, call: Call) -> SendOutcome {
        let request = self
            .http
            .request(call.method, &call.url)
            .bearer_auth(&self.sync.api_token)
            .timeout(self.timeout)
            .json(&call.body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(e, self.timeout),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => return transport_failure(e, self.timeout),
        };
        classify(status, &body, retry_after)
    }
}

/// 2xx done; 429, 408 and 5xx retried; other 4xx (a wrong token, an issue Sentry no longer
/// has) never: retrying would not change Sentry's answer.
fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> SendOutcome {
    let snippet = truncate_body(&format!("Sentry API: {}", body.trim()), MAX_STORED_BODY);
    classify_status(status, snippet, retry_after)
}

impl Channel for SentryChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Sentry
    }

    fn rate_key(&self) -> String {
        format!("sentry:{}", self.sync.organization)
    }

    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            match self.call_for(out.notification) {
                Ok(call) => self.send_call(call).await,
                Err(reason) => SendOutcome::Skipped { reason },
            }
        })
    }

    fn announce<'a>(&'a self, _notice: &'a Notice) -> SendFuture<'a> {
        Box::pin(async {
            SendOutcome::Skipped {
                reason: "Sentry is not told of payloads we could not read".to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentrys_answers_are_retried_only_when_a_retry_can_help() {
        assert!(matches!(
            classify(200, "{}", None),
            SendOutcome::Delivered { .. }
        ));
        assert!(matches!(classify(429, "", None), SendOutcome::Retry { .. }));
        assert!(matches!(classify(503, "", None), SendOutcome::Retry { .. }));
        assert!(matches!(
            classify(401, "", None),
            SendOutcome::Permanent { .. }
        ));
        assert!(matches!(
            classify(404, "", None),
            SendOutcome::Permanent { .. }
        ));
    }
}
