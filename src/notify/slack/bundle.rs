//! Slack bundles (see [`crate::notify::bundle`]): one message listing the incidents due
//! together, one section per incident. In bot mode the message is a card: posted once, then
//! updated in place as it grows, and re-rendered when a member is acknowledged or resolved.

use serde_json::{Value, json};

use super::blocks::{
    MAX_HEADER_CHARS, MAX_TEXT_CHARS, event_line, is_acknowledged, is_resolved, link, mrkdwn,
    reply_text, section, severity_emoji, state_line, truncate_mrkdwn,
};
use super::{Bot, Mode, SlackChannel, message_body, message_ref};
use crate::incidents::model::parse_dedup_key;
use crate::notify::bundle::{Bundle, Bundler, may_join};
use crate::notify::{Notification, RemoteRef, RemoteState, SendFuture, SendOutcome};
use crate::store::deliveries::bundles::Card;
use crate::text::{slack_escape as escape, truncate_chars};

/// A member's headline on its line; the line stays far below a section's 3,000 characters.
const MAX_MEMBER_HEADLINE_CHARS: usize = 300;

impl Bundler for SlackChannel {
    fn grows_in_place(&self) -> bool {
        self.is_bot()
    }

    /// An announcement of an incident that has no card of its own on this channel yet (one
    /// that has a card updates that card, as today).
    fn joins(&self, n: &Notification, remote: &RemoteState) -> bool {
        may_join(n) && remote.slack_ts.is_none()
    }

    fn send_bundle<'a>(&'a self, bundle: Bundle<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            match &self.mode {
                Mode::Webhook { url } => {
                    let body =
                        message_body(None, bundle_text(&bundle), bundle_blocks(&bundle, false));
                    self.post_webhook(url, &body).await
                }
                Mode::Bot { token, api_base } => {
                    let bot = Bot {
                        ch: self,
                        token,
                        api_base,
                    };
                    bot.send_bundle(&bundle).await
                }
            }
        })
    }

    fn report_member<'a>(&'a self, bundle: Bundle<'a>, change: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            match (&self.mode, bundle.card) {
                (Mode::Bot { token, api_base }, Some(card)) => {
                    let bot = Bot {
                        ch: self,
                        token,
                        api_base,
                    };
                    bot.report_member(&bundle, card, change).await
                }
                // No card to edit: what a message without one gets today.
                (Mode::Webhook { url }, _) => self.send_webhook(url, change).await,
                (Mode::Bot { token, api_base }, None) => {
                    let bot = Bot {
                        ch: self,
                        token,
                        api_base,
                    };
                    bot.post_short(change).await
                }
            }
        })
    }
}

impl Bot<'_> {
    /// Updates the recent card with the grown list, or posts a new card (also when the old one
    /// was deleted in Slack). `Delivered` carries the card's ref either way.
    async fn send_bundle(&self, bundle: &Bundle<'_>) -> SendOutcome {
        let text = bundle_text(bundle);
        let blocks = bundle_blocks(bundle, true);
        // A card that is gone (deleted in Slack) is replaced by a new one.
        if let Some(card) = bundle.card
            && let Ok(outcome) = self.update_bundle(card, &text, &blocks).await
        {
            return outcome;
        }
        let body = message_body(Some(self.ch.channel.as_str()), text, blocks);
        match self.call("chat.postMessage", &body).await {
            Ok(ok) => {
                let remote = message_ref(&ok.json);
                ok.delivered(remote)
            }
            Err(f) => f.outcome,
        }
    }

    /// `chat.update` of the card; `Err(())` when Slack no longer has it.
    async fn update_bundle(
        &self,
        card: &Card,
        text: &str,
        blocks: &[Value],
    ) -> Result<SendOutcome, ()> {
        let body = json!({
            "channel": card.slack_channel,
            "ts": card.ts,
            "text": text,
            "blocks": blocks,
        });
        match self.call("chat.update", &body).await {
            Ok(ok) => Ok(ok.delivered(Some(RemoteRef::SlackMessage {
                channel: card.slack_channel.clone(),
                ts: card.ts.clone(),
            }))),
            Err(f) if gone(f.error.as_deref()) => Err(()),
            Err(f) => Ok(f.outcome),
        }
    }

    /// The card re-rendered with its members as they are now, then a reply in its thread with
    /// the change. Without the card (deleted in Slack) the change is a short message.
    async fn report_member(
        &self,
        bundle: &Bundle<'_>,
        card: &Card,
        change: &Notification,
    ) -> SendOutcome {
        let text = bundle_text(bundle);
        let blocks = bundle_blocks(bundle, true);
        match self.update_bundle(card, &text, &blocks).await {
            Err(()) => return self.post_short(change).await,
            Ok(SendOutcome::Delivered { .. }) => {}
            Ok(failed) => return failed,
        }
        // A retry repeats the update (harmless) and then the reply.
        let body = json!({
            "channel": card.slack_channel,
            "thread_ts": card.ts,
            "text": reply_text(change),
            "unfurl_links": false,
            "unfurl_media": false,
        });
        match self.call("chat.postMessage", &body).await {
            Ok(ok) => ok.delivered(None),
            Err(f) => f.outcome,
        }
    }
}

fn gone(error: Option<&str>) -> bool {
    matches!(error, Some("message_not_found" | "cant_update_message"))
}

/// The notification text (and fallback for old clients): the count and the headlines.
fn bundle_text(b: &Bundle<'_>) -> String {
    let heads: Vec<String> = b.members.iter().map(|n| escape(&n.headline())).collect();
    let mut text = format!("{} incidents: {}", b.members.len(), heads.join("; "));
    if b.more > 0 {
        text.push_str(&format!(" (and {} more waiting)", b.more));
    }
    truncate_mrkdwn(&text, MAX_TEXT_CHARS)
}

/// Header, summary, one section per member, and what is still waiting.
pub(super) fn bundle_blocks(b: &Bundle<'_>, interactive: bool) -> Vec<Value> {
    let worst = b.members.iter().map(|n| n.severity).max();
    let header = format!(
        "{} {} incidents",
        worst.map_or(":white_circle:", severity_emoji),
        b.members.len()
    );
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": { "type": "plain_text", "text": truncate_chars(&header, MAX_HEADER_CHARS), "emoji": true },
        }),
        json!({ "type": "context", "elements": [mrkdwn(summary(b.members))] }),
    ];
    blocks.extend(b.members.iter().map(|n| member_block(n, interactive)));
    if b.more > 0 {
        let line = format!(
            "…and {} more waiting: they follow in the next message.",
            b.more
        );
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(line)] }));
    }
    blocks
}

/// `3 open · 1 acknowledged · 1 resolved`.
fn summary(members: &[Notification]) -> String {
    let resolved = members.iter().filter(|n| is_resolved(n)).count();
    let acked = members
        .iter()
        .filter(|n| !is_resolved(n) && is_acknowledged(n))
        .count();
    let open = members.len() - resolved - acked;
    format!("{open} open · {acked} acknowledged · {resolved} resolved")
}

/// One member: its severity, a link to it, its headline, its count and its state; in bot mode
/// an Acknowledge button while it is open (handled like the card's own `ack` button).
fn member_block(n: &Notification, interactive: bool) -> Value {
    let headline = escape(&truncate_chars(&n.headline(), MAX_MEMBER_HEADLINE_CHARS));
    let mut line = format!(
        "{} {} *{headline}*\n{} events",
        severity_emoji(n.severity),
        link(&n.incident_url, &format!("#{}", n.incident_id)),
        n.event_count
    );
    let open = !is_acknowledged(n) && !is_resolved(n);
    for extra in [event_line(n), state_line(n)].into_iter().flatten() {
        line.push_str(" · ");
        line.push_str(&extra);
    }
    if open
        && !interactive
        && let Some(url) = n.ack_url.as_deref()
    {
        line.push_str(" · ");
        line.push_str(&link(url, "Acknowledge"));
    }
    let mut block = section(line);
    if open
        && interactive
        && let Value::Object(m) = &mut block
    {
        m.insert("accessory".into(), ack_button(n));
    }
    block
}

/// The card's `ack` button for one member: `{incident}:{episode}` names what it acts on.
fn ack_button(n: &Notification) -> Value {
    let value = match parse_dedup_key(&n.dedup_key) {
        Some((_, episode)) => format!("{}:{episode}", n.incident_id),
        None => n.incident_id.to_string(),
    };
    json!({
        "type": "button", "action_id": "ack", "value": value, "style": "primary",
        "text": { "type": "plain_text", "text": "Acknowledge" },
    })
}

#[cfg(test)]
mod tests;
