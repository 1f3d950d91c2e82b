//! Changes people make (acknowledge, resolve, root-cause note), each in one short transaction on
//! the shared write connection, so they serialize with intake and the escalation scheduler: an
//! acknowledgement that races the deadline has exactly one outcome.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::RoutingConfig;
use crate::store::incidents as sql;
use crate::store::{Store, StoreError};

use super::model::{Incident, parse_dedup_key};
use super::transitions::{self, AckOutcome, Actor, ResolveOutcome};
use super::writer::Wakers;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("incident {0} not found")]
    NotFound(i64),
    /// The action was meant for an earlier episode (a button or link from before the incident
    /// resolved and fired again): it must not act on the new one.
    #[error(
        "incident {id} has fired again since: this was about occurrence {expected}, it is now at {current}"
    )]
    StaleEpisode {
        id: i64,
        expected: i64,
        current: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

#[derive(Clone)]
pub struct IncidentService {
    pub store: Store,
    pub cfg: Arc<RoutingConfig>,
    pub clock: SharedClock,
    pub wakers: Wakers,
}

impl IncidentService {
    /// `episode`: the occurrence the person saw (a link, a button), checked inside the
    /// transaction; `None` acts on the current one.
    pub async fn acknowledge(
        &self,
        id: i64,
        episode: Option<i64>,
        actor: &Actor,
    ) -> Result<(AckOutcome, Incident), ServiceError> {
        self.change(id, episode, |cfg, inc, now| {
            transitions::acknowledge(cfg, inc, actor, now)
        })
        .await
    }

    pub async fn resolve(
        &self,
        id: i64,
        episode: Option<i64>,
        actor: &Actor,
    ) -> Result<(ResolveOutcome, Incident), ServiceError> {
        self.change(id, episode, |cfg, inc, now| {
            transitions::resolve(cfg, inc, actor, now)
        })
        .await
    }

    pub async fn note(
        &self,
        id: i64,
        episode: Option<i64>,
        note: &str,
        actor: &Actor,
    ) -> Result<Incident, ServiceError> {
        let ((), inc) = self
            .change(id, episode, |_, inc, now| {
                ((), transitions::add_note(inc, note, actor, now))
            })
            .await?;
        Ok(inc)
    }

    /// Loads, changes and stores one incident in one transaction.
    async fn change<T>(
        &self,
        id: i64,
        episode: Option<i64>,
        f: impl FnOnce(&RoutingConfig, &mut Incident, i64) -> (T, transitions::Effects),
    ) -> Result<(T, Incident), ServiceError> {
        let mut tx = self.store.write.begin_with("BEGIN IMMEDIATE").await?;
        // After the lock: times written follow commit order, so the timeline never shows an
        // acknowledgement before the escalation it lost to.
        let now = self.clock.now_ms();
        let mut inc = sql::incident(&mut tx, id)
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
        let (out, fx) = f(&self.cfg, &mut inc, now);
        let rows: Vec<&Incident> = if inc != before { vec![&inc] } else { vec![] };
        sql::apply_effects(&mut tx, &rows, &fx, now).await?;
        tx.commit().await?;
        self.wakers.after_commit(&fx);
        Ok((out, inc))
    }

    /// Finds our incident for a PagerDuty incident: by `incident_key` (our dedup key), else by the
    /// PagerDuty incident id stored earlier.
    pub async fn find_for_pagerduty(
        &self,
        incident_key: Option<&str>,
        pagerduty_id: Option<&str>,
    ) -> Result<Option<i64>, ServiceError> {
        if let Some((id, _)) = incident_key.and_then(parse_dedup_key) {
            return Ok(Some(id));
        }
        match pagerduty_id {
            Some(pd) => Ok(sqlx::query_scalar(
                "SELECT id FROM incidents WHERE pagerduty_incident_id = ?",
            )
            .bind(pd)
            .fetch_optional(&self.store.read)
            .await?),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::incidents::model::{dedup_key, parse_dedup_key};

    #[test]
    fn dedup_key_roundtrip() {
        assert_eq!(parse_dedup_key(&dedup_key(42, 3)), Some((42, 3)));
        assert_eq!(parse_dedup_key("paiid-alerts-42"), None);
        assert_eq!(parse_dedup_key("other-42-1"), None);
    }
}
