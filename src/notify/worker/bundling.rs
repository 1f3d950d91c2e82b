//! The outbox's side of bundling (see [`crate::notify::bundle`]): out of the rows claimed for a
//! channel, those that announce incidents share one message when more than one is due, or join
//! the channel's recent card (bot mode); a lone one goes out as today, at once.

use std::time::Instant;

use super::{Claimed, Message, OutboxWorker, ceil_ms};
use crate::domain::NotificationKind;
use crate::notify::bundle::{Bundle, Bundler, GROW_FOR_MS, MAX_MEMBERS};
use crate::notify::{Channel, Notification, RemoteRef, RemoteState, SendOutcome};
use crate::store::StoreError;
use crate::store::deliveries::bundles::{self, Card, CardWrite, Member};
use crate::store::deliveries::{self, Delivery};

/// A claimed row that may be listed in a bundle, with its message.
struct Joining {
    d: Delivery,
    n: Notification,
    remote: RemoteState,
}

/// A bundle about to be sent: the rows it is sent for, and where it goes.
struct Outgoing<'a> {
    name: &'a str,
    bundler: &'a dyn Bundler,
    rate_key: &'a str,
    card: Option<Card>,
    more: usize,
}

impl OutboxWorker {
    /// Sends the claimed rows of `name` that may share a message as one bundle and returns the
    /// others, to be delivered one by one. `full`: the claim took as many rows as it could, so
    /// more may be waiting ("and K more").
    pub(super) async fn bundle_due(
        &self,
        name: &str,
        rows: Vec<Delivery>,
        full: bool,
    ) -> Result<Vec<Claimed>, StoreError> {
        let Some(channel) = self.channels.load().get(name) else {
            return Ok(rows.into_iter().map(Claimed::plain).collect());
        };
        let Some(bundler) = channel.bundler() else {
            return Ok(rows.into_iter().map(Claimed::plain).collect());
        };
        let (mut joining, mut rest) = self.split(bundler, rows).await?;
        if joining.is_empty() {
            return Ok(rest);
        }
        let now = self.clock.now_ms();
        let card = match bundler.grows_in_place() {
            true => {
                let since = now.saturating_sub(GROW_FOR_MS);
                let reader = self.store.reader();
                bundles::growable(reader, name, since, joining.len(), MAX_MEMBERS).await?
            }
            false => None,
        };
        let rate_key = channel.rate_key();
        if let Some(limit) = Self::limit_for(channel.kind())
            && let Err(wait) = self.take_token(&rate_key, limit, now).await
        {
            // Given back until the token is there: whatever is due then shares that message.
            let later = now.saturating_add(ceil_ms(wait));
            for j in &joining {
                deliveries::release(&self.store, j.d.id, later).await?;
            }
            return Ok(rest);
        }
        if joining.len() == 1 && card.is_none() {
            // Alone: the normal message, at once (its token is taken).
            if let Some(j) = joining.pop() {
                let message = Message::Incident(Box::new(j.n), j.remote);
                rest.insert(
                    0,
                    Claimed {
                        d: j.d,
                        built: Some(Ok(message)),
                        token: true,
                    },
                );
            }
            return Ok(rest);
        }
        let more = match full {
            true => deliveries::count_waiting(self.store.reader(), name, now).await?,
            false => 0,
        };
        let out = Outgoing {
            name,
            bundler,
            rate_key: &rate_key,
            card,
            more: usize::try_from(more).unwrap_or(0),
        };
        self.send_bundle(out, joining).await?;
        Ok(rest)
    }

    /// The rows whose message may join a bundle, and the others with their message built.
    async fn split(
        &self,
        bundler: &dyn Bundler,
        rows: Vec<Delivery>,
    ) -> Result<(Vec<Joining>, Vec<Claimed>), StoreError> {
        let mut joining = Vec::new();
        let mut rest = Vec::new();
        for d in rows {
            match self.message_for(&d).await? {
                Ok(Message::Incident(n, remote)) if bundler.joins(&n, &remote) => {
                    joining.push(Joining { d, n: *n, remote })
                }
                built => rest.push(Claimed {
                    d,
                    built: Some(built),
                    token: false,
                }),
            }
        }
        Ok((joining, rest))
    }

    /// Sends one bundle (the card's members as they are now, then the newcomers) and records
    /// an attempt for every newcomer's row, with the card it posted or grew.
    async fn send_bundle(
        &self,
        out: Outgoing<'_>,
        joining: Vec<Joining>,
    ) -> Result<(), StoreError> {
        let (mut members, mut listed) = match &out.card {
            Some(card) => self.card_members(card, out.name).await?,
            None => (Vec::new(), Vec::new()),
        };
        let mut rows = Vec::with_capacity(joining.len());
        for j in joining {
            let member = Member {
                incident_id: j.n.incident_id,
                episode: j.d.episode,
            };
            // An incident the card lists already (raised or escalated since it was posted) is
            // told of again on its own line, not listed twice.
            match listed.iter().position(|m| *m == member) {
                Some(i) => members[i] = j.n,
                None => {
                    listed.push(member);
                    members.push(j.n);
                }
            }
            rows.push(j.d);
        }
        let started_at = self.clock.now_ms();
        let timer = Instant::now();
        let bundle = Bundle {
            members: &members,
            more: out.more,
            card: out.card.as_ref(),
        };
        let outcome = out.bundler.send_bundle(bundle).await;
        let took = timer.elapsed();
        self.metrics.delivery_duration(out.name, took.as_secs_f64());
        let duration_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        let card_ref = match (&outcome, out.bundler.grows_in_place()) {
            (
                SendOutcome::Delivered {
                    remote: Some(RemoteRef::SlackMessage { channel, ts }),
                    ..
                },
                true,
            ) => Some((channel.clone(), ts.clone())),
            _ => None,
        };
        let card = card_ref.as_ref().map(|(slack_channel, ts)| CardWrite {
            channel: out.name,
            slack_channel,
            ts,
            grown: out.card.as_ref(),
            members: &listed,
            now: started_at,
        });
        let outcome = noted(outcome, members.len());
        // One jitter for all: rows that failed together are retried together, as one bundle.
        let jitter = fastrand::f64();
        let results: Vec<_> = rows
            .iter()
            .map(|d| {
                let mut r = self.attempt_result(
                    d,
                    started_at,
                    duration_ms,
                    outcome.clone(),
                    Some(out.rate_key),
                    jitter,
                );
                // The card is the bundle's, not the member's own (see `bundles`).
                r.remote = None;
                (d, r)
            })
            .collect();
        deliveries::record_bundle(&self.store, &results, card.as_ref()).await?;
        for (d, r) in &results {
            self.log_attempt(d, r);
        }
        Ok(())
    }

    /// The members of `card` as they are now (an incident deleted since is left out), and the
    /// episodes they stand for.
    async fn card_members(
        &self,
        card: &Card,
        channel: &str,
    ) -> Result<(Vec<Notification>, Vec<Member>), StoreError> {
        let builder = self.builder_now();
        let mut members = Vec::with_capacity(card.members.len());
        let mut listed = Vec::with_capacity(card.members.len());
        for m in &card.members {
            let built = builder
                .for_delivery(
                    m.incident_id,
                    m.episode,
                    NotificationKind::Opened,
                    None,
                    channel,
                )
                .await?;
            if let Some((n, _)) = built {
                members.push(n);
                listed.push(*m);
            }
        }
        Ok((members, listed))
    }

    /// The card listing the incident of row `d`, with its members as they are now, when `n`
    /// reports an acknowledgement or resolution of a member that has no card of its own (bot
    /// mode). Such a change re-renders the card and replies in its thread.
    pub(super) async fn member_card<'c>(
        &self,
        channel: &'c dyn Channel,
        d: &Delivery,
        n: &Notification,
        remote: &RemoteState,
    ) -> Result<Option<(&'c dyn Bundler, Card, Vec<Notification>)>, StoreError> {
        let reports = matches!(
            n.kind,
            NotificationKind::Acknowledged | NotificationKind::Resolved
        );
        let Some(bundler) = channel.bundler().filter(|b| b.grows_in_place()) else {
            return Ok(None);
        };
        let Some(incident_id) = d
            .incident_id
            .filter(|_| reports && remote.slack_ts.is_none())
        else {
            return Ok(None);
        };
        let reader = self.store.reader();
        let Some(card) = bundles::card_of(reader, incident_id, d.episode, &d.channel).await? else {
            return Ok(None);
        };
        let (members, _) = self.card_members(&card, &d.channel).await?;
        Ok(Some((bundler, card, members)))
    }
}

/// Each member row's stored answer says it went out in a bundle.
fn noted(outcome: SendOutcome, members: usize) -> SendOutcome {
    let note = |s: String| format!("in a bundle of {members}: {s}");
    match outcome {
        SendOutcome::Delivered {
            status,
            response,
            remote,
        } => SendOutcome::Delivered {
            status,
            response: note(response),
            remote,
        },
        SendOutcome::Retry {
            status,
            reason,
            retry_after,
        } => SendOutcome::Retry {
            status,
            reason: note(reason),
            retry_after,
        },
        SendOutcome::Permanent { status, reason } => SendOutcome::Permanent {
            status,
            reason: note(reason),
        },
        SendOutcome::Skipped { reason } => SendOutcome::Skipped {
            reason: note(reason),
        },
    }
}
