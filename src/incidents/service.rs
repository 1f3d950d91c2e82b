//! Changes people make (acknowledge, resolve, root-cause note) from any entry point, each in one
//! short transaction on the shared write connection, so they serialize with intake and the
//! escalation scheduler: an acknowledgement that races the deadline has exactly one outcome.

use crate::clock::SharedClock;
use crate::config::{Live, RoutingConfig};
use crate::domain::{Action, Effects, Episode, IncidentId, Via};
use crate::store::incidents as sql;
use crate::store::{Store, StoreError, WriteTx, inbound};

use super::model::{Incident, parse_dedup_key};
use super::storms;
use super::transitions::{self, AckOutcome, Actor, ResolveOutcome};
use super::writer::Wakers;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    /// The action was meant for an earlier episode (a button or link from before the incident
    /// resolved and fired again): it must not act on the new one.
    #[error(
        "incident {id} has fired again since: this was about occurrence {expected}, it is now at {current}"
    )]
    StaleEpisode {
        id: IncidentId,
        expected: Episode,
        current: Episode,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

/// What an [`Action`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActOutcome {
    Acknowledge(AckOutcome),
    Resolve(ResolveOutcome),
    Noted,
}

impl ActOutcome {
    /// The word the API answers with (`result`).
    pub fn word(&self) -> &'static str {
        match self {
            ActOutcome::Acknowledge(AckOutcome::Acknowledged) => "acknowledged",
            ActOutcome::Acknowledge(AckOutcome::AlreadyAcknowledged { .. }) => {
                "already_acknowledged"
            }
            ActOutcome::Acknowledge(AckOutcome::AlreadyResolved { .. })
            | ActOutcome::Resolve(ResolveOutcome::AlreadyResolved { .. }) => "already_resolved",
            ActOutcome::Resolve(ResolveOutcome::Resolved) => "resolved",
            ActOutcome::Noted => "noted",
        }
    }
}

/// One PagerDuty webhook event, as the handler read it from the signed body.
#[derive(Debug, Clone, Default)]
pub struct PagerDutyEvent {
    /// The event's id, recorded so that a redelivery is answered `duplicate`.
    pub webhook_id: Option<String>,
    /// What it asks of us; `None` for event types we do not act on.
    pub action: Option<PagerDutyAction>,
    /// The dedup key we gave PagerDuty (`paiid-alerts-{incident}-{episode}`), if any.
    pub incident_key: Option<String>,
    /// PagerDuty's own incident id.
    pub pagerduty_id: Option<String>,
    /// Who acted in PagerDuty.
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagerDutyAction {
    Acknowledge,
    Resolve,
}

/// What a PagerDuty event did. Every outcome but `Duplicate` recorded the event's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagerDutyOutcome {
    /// Its id was seen before: nothing done.
    Duplicate,
    /// An event type we do not act on.
    Ignored,
    /// About an incident this service does not have (another service's, or deleted here).
    UnknownIncident,
    /// About an earlier episode of the incident.
    StaleEpisode,
    Acted {
        incident: IncidentId,
        action: PagerDutyAction,
    },
}

/// `inbound_webhooks.source` of PagerDuty events.
const PAGERDUTY: &str = "pagerduty";

#[derive(Clone)]
pub struct IncidentService {
    pub store: Store,
    pub cfg: Live<RoutingConfig>,
    pub clock: SharedClock,
    pub wakers: Wakers,
}

impl IncidentService {
    /// The one way a person changes an incident, whatever they used to ask. `episode`: the
    /// occurrence the person saw (a link, a button), checked inside the transaction; `None`
    /// acts on the current one.
    #[tracing::instrument(skip_all, fields(incident = %incident, via = %actor.via))]
    pub async fn act(
        &self,
        incident: IncidentId,
        episode: Option<Episode>,
        action: Action,
        actor: &Actor,
    ) -> Result<(ActOutcome, Incident), ServiceError> {
        let mut tx = self.store.begin_write().await?;
        // After the lock: times written follow commit order, so the timeline never shows an
        // acknowledgement before the escalation it lost to.
        let now = self.clock.now_ms();
        let (outcome, inc, fx) = self
            .change(&mut tx, incident, episode, &action, actor, now, |_| {})
            .await?;
        tx.commit().await?;
        self.wakers.after_commit(&fx);
        Ok((outcome, inc))
    }

    /// Acts on one PagerDuty webhook event in one transaction: the check that its id is new,
    /// the incident's change (with the PagerDuty incident id remembered) and the record of its id
    /// commit together or not at all, so a delivery that failed half-way is redone in full on
    /// PagerDuty's retry and a redelivery of one that committed is answered `duplicate`.
    #[tracing::instrument(skip_all, fields(webhook = ?event.webhook_id))]
    pub async fn pagerduty_event(
        &self,
        event: &PagerDutyEvent,
    ) -> Result<PagerDutyOutcome, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let now = self.clock.now_ms();
        if let Some(wid) = &event.webhook_id
            && inbound::webhook_seen(&mut tx, PAGERDUTY, wid).await?
        {
            return Ok(PagerDutyOutcome::Duplicate);
        }
        let (outcome, fx) = self.apply_pagerduty(&mut tx, event, now).await?;
        if let Some(wid) = &event.webhook_id {
            inbound::first_sighting(&mut tx, PAGERDUTY, wid, now).await?;
        }
        tx.commit().await?;
        if let Some(fx) = fx {
            self.wakers.after_commit(&fx);
        }
        Ok(outcome)
    }

    async fn apply_pagerduty(
        &self,
        tx: &mut WriteTx,
        event: &PagerDutyEvent,
        now: i64,
    ) -> Result<(PagerDutyOutcome, Option<Effects>), ServiceError> {
        let Some(pd_action) = event.action else {
            return Ok((PagerDutyOutcome::Ignored, None));
        };
        let incident_key = event.incident_key.as_deref();
        let Some(id) = find_for_pagerduty(tx, incident_key, event.pagerduty_id.as_deref()).await?
        else {
            return Ok((PagerDutyOutcome::UnknownIncident, None));
        };
        // A late event about an earlier episode's PagerDuty incident must not act on this one.
        let episode = incident_key
            .and_then(parse_dedup_key)
            .filter(|(key_id, _)| *key_id == id)
            .map(|(_, episode)| episode);
        let action = match pd_action {
            PagerDutyAction::Acknowledge => Action::ACKNOWLEDGE,
            PagerDutyAction::Resolve => Action::RESOLVE,
        };
        let actor = Actor::new(
            event.agent.clone().unwrap_or_else(|| "PagerDuty".into()),
            Via::Pagerduty,
        );
        let pd_id = event.pagerduty_id.clone();
        let changed = self
            .change(tx, id, episode, &action, &actor, now, |inc| {
                if pd_id.is_some() {
                    inc.pagerduty_incident_id = pd_id;
                }
            })
            .await;
        match changed {
            Ok((_, _, fx)) => Ok((
                PagerDutyOutcome::Acted {
                    incident: id,
                    action: pd_action,
                },
                Some(fx),
            )),
            Err(ServiceError::NotFound(_)) => Ok((PagerDutyOutcome::UnknownIncident, None)),
            Err(ServiceError::StaleEpisode { .. }) => Ok((PagerDutyOutcome::StaleEpisode, None)),
            Err(e) => Err(e),
        }
    }

    /// Loads, changes and stores one incident inside `tx`. `prepare` edits the incident before
    /// the action (the PagerDuty id to remember).
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &self,
        tx: &mut WriteTx,
        id: IncidentId,
        episode: Option<Episode>,
        action: &Action,
        actor: &Actor,
        now: i64,
        prepare: impl FnOnce(&mut Incident),
    ) -> Result<(ActOutcome, Incident, Effects), ServiceError> {
        let mut inc = sql::incident(tx, id)
            .await?
            .ok_or(ServiceError::NotFound(id))?;
        if let Some(expected) = episode
            && expected != inc.episode
        {
            return Err(ServiceError::StaleEpisode {
                id,
                expected,
                current: inc.episode,
            });
        }
        let before = inc.clone();
        prepare(&mut inc);
        let mut fx = match action.root_cause() {
            Some(note) => transitions::add_note(&mut inc, note, actor, now),
            None => Effects::default(),
        };
        let cfg = self.cfg.load();
        let outcome = match action {
            Action::Acknowledge { .. } => {
                let (out, more) = transitions::acknowledge(&cfg, &mut inc, actor, now);
                fx.extend(more);
                ActOutcome::Acknowledge(out)
            }
            Action::Resolve { .. } => {
                let (out, more) = transitions::resolve(&cfg, &mut inc, actor, now);
                fx.extend(more);
                ActOutcome::Resolve(out)
            }
            Action::Note { .. } => ActOutcome::Noted,
        };
        // A storm's members follow it; a member's storm may close with its last member.
        let (others, more) = storms::cascade(tx, &cfg, &before, &inc, actor, now).await?;
        fx.extend(more);
        let mut rows: Vec<&Incident> = if inc != before { vec![&inc] } else { vec![] };
        rows.extend(others.iter());
        sql::apply_effects(tx, &rows, &fx, now).await?;
        Ok((outcome, inc, fx))
    }
}

/// Finds our incident for a PagerDuty incident: by `incident_key` (our dedup key), else by the
/// PagerDuty incident id stored earlier.
async fn find_for_pagerduty(
    tx: &mut crate::store::WriteTx,
    incident_key: Option<&str>,
    pagerduty_id: Option<&str>,
) -> Result<Option<IncidentId>, ServiceError> {
    if let Some((id, _)) = incident_key.and_then(parse_dedup_key) {
        return Ok(Some(id));
    }
    match pagerduty_id {
        Some(pd) => Ok(inbound::incident_for_pagerduty(tx, pd).await?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::{Episode, IncidentId};
    use crate::incidents::model::{dedup_key, parse_dedup_key};

    #[test]
    fn dedup_key_roundtrip() {
        let key = dedup_key(IncidentId(42), Episode(3));
        assert_eq!(key, "paiid-alerts-42-3");
        assert_eq!(parse_dedup_key(&key), Some((IncidentId(42), Episode(3))));
        assert_eq!(parse_dedup_key("paiid-alerts-42"), None);
        assert_eq!(parse_dedup_key("other-42-1"), None);
    }
}
