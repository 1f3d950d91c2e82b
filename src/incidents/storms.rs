//! Storm groups around the pure transitions (`transitions::storm`): who joins, decided in the
//! intake writer's batch from what [`StormBook::read`] found in the store; and acting on a storm,
//! which acts on its members in the same transaction ([`cascade`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::config::{RoutingConfig, StormSettings};
use crate::domain::{Effects, Episode, IncidentId, IncidentKind, IncidentState, Severity, Via};
use crate::store::storms as sql;
use crate::store::{StoreError, WriteTx};

use super::model::Incident;
use super::transitions::{self, AckOutcome, Actor, ResolveOutcome, storm};

/// The severities a storm can form on, most urgent first.
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Unclassified,
];

/// What one intake batch knows about storms: read in the batch's transaction, changed by the
/// batch in memory, written with it.
#[derive(Debug, Default)]
pub(crate) struct StormBook {
    settings: StormSettings,
    /// The storms not resolved, by id.
    storms: BTreeMap<IncidentId, Incident>,
    /// Storms changed by the batch, to be written with it.
    changed: HashSet<IncidentId>,
    /// Per severity with no storm to join: incidents opened within the window so far, and the
    /// keys of those a storm forming now would take in.
    recent: HashMap<Severity, Recent>,
    /// Keys opened in this batch (their notifications are still in the batch's effects).
    opened_here: HashSet<String>,
    /// Storms that lost an open member in this batch (resolved, or gone to page alone): once
    /// the batch is written, those left with none open close ([`close_emptied`]).
    lost_open: BTreeSet<IncidentId>,
}

#[derive(Debug, Default)]
struct Recent {
    opened: i64,
    candidates: Vec<String>,
}

/// The parts of an intake batch a storm changes.
pub(crate) struct Batch<'b> {
    pub incidents: &'b mut HashMap<String, Incident>,
    pub fx: &'b mut Effects,
    /// Keys of the incidents changed (to be written).
    pub changed: &'b mut Vec<String>,
    pub next_id: &'b mut IncidentId,
    pub now: i64,
}

/// An incident as it was before a change (`None` where it opened in that change).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Before {
    storm: Option<IncidentId>,
    episode: Episode,
    open: bool,
}

impl Before {
    pub(crate) fn of(inc: &Incident) -> Self {
        Self {
            storm: inc.storm_id,
            episode: inc.episode,
            open: inc.state().is_open(),
        }
    }
}

impl StormBook {
    /// Reads what the batch may need: nothing when it neither opens an incident (`may_open`)
    /// nor touches a member. Else the open storms and, when it may open, the recent openings of each paging severity no
    /// storm is gathering; their candidates are added to `incidents` (keyed as the batch keys
    /// them) unless the batch holds them already.
    pub(crate) async fn read(
        tx: &mut WriteTx,
        cfg: &RoutingConfig,
        now: i64,
        may_open: bool,
        incidents: &mut HashMap<String, Incident>,
    ) -> Result<Self, StoreError> {
        let mut book = Self {
            settings: cfg.storm,
            ..Self::default()
        };
        let members_here = incidents.values().any(|i| i.storm_id.is_some());
        if !may_open && !members_here {
            return Ok(book);
        }
        let storms = sql::open_storms(tx).await?;
        book.storms = storms.into_iter().map(|s| (s.id, s)).collect();
        if !(cfg.storm.enabled && may_open) {
            return Ok(book);
        }
        let since = now.saturating_sub(book.window_ms());
        for severity in SEVERITIES {
            let policy = cfg.policy(severity);
            let pages = !policy.notify.is_empty() || !policy.escalate_to.is_empty();
            if !pages || book.joinable(severity, now).is_some() {
                continue;
            }
            let opened = sql::opened_since(tx, severity, since).await?;
            let mut candidates = Vec::new();
            for inc in sql::join_candidates(tx, severity, since).await? {
                candidates.push(inc.incident_key.clone());
                incidents.entry(inc.incident_key.clone()).or_insert(inc);
            }
            book.recent.insert(severity, Recent { opened, candidates });
        }
        Ok(book)
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.settings.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// The storm a new incident of `severity` joins now, if any (the newest).
    fn joinable(&self, severity: Severity, now: i64) -> Option<IncidentId> {
        self.storms
            .values()
            .rev()
            .find(|s| storm::joinable(s, severity, &self.settings, now))
            .map(|s| s.id)
    }

    /// After a change to the incident of `key`: the storm it left hears of it, and one that
    /// opened (or opened again) joins or forms a storm. `drill`: a test alert, never grouped.
    pub(crate) fn after_change(
        &mut self,
        cfg: &RoutingConfig,
        b: &mut Batch<'_>,
        key: &str,
        before: Option<Before>,
        drill: bool,
    ) {
        let Some(inc) = b.incidents.get(key) else {
            return;
        };
        let (id, storm_id, episode) = (inc.id, inc.storm_id, inc.episode);
        let (open, issue) = (inc.state().is_open(), inc.kind == IncidentKind::Issue);
        if let Some(Before {
            storm: Some(was_in),
            open: was_open,
            ..
        }) = before
        {
            if storm_id != Some(was_in)
                && let Some(s) = self.storms.get_mut(&was_in)
            {
                b.fx.extend(storm::member_left(s, id, b.now));
                self.changed.insert(was_in);
            }
            if was_open && (storm_id != Some(was_in) || !open) {
                self.lost_open.insert(was_in);
            }
        }
        let opened = before.is_none_or(|was| was.episode != episode);
        if opened && issue && self.settings.enabled {
            self.opened(cfg, b, key, drill);
        }
    }

    /// An incident opened in this batch: it counts toward its severity's window, then joins the
    /// storm gathering that severity, or forms one when the window holds more than the threshold.
    fn opened(&mut self, cfg: &RoutingConfig, b: &mut Batch<'_>, key: &str, drill: bool) {
        let Some(inc) = b.incidents.get(key) else {
            return;
        };
        let severity = inc.severity;
        self.opened_here.insert(key.to_string());
        let eligible = !drill && storm::may_join(inc);
        if let Some(sid) = self.joinable(severity, b.now) {
            if eligible {
                self.join(sid, b, key);
            }
            return;
        }
        let Some(recent) = self.recent.get_mut(&severity) else {
            return;
        };
        recent.opened += 1;
        if eligible {
            recent.candidates.push(key.to_string());
        }
        if recent.opened <= i64::from(self.settings.threshold) || !eligible {
            return;
        }
        let keys = std::mem::take(&mut recent.candidates);
        let (new, fx) = storm::form(cfg, *b.next_id, severity, b.now);
        *b.next_id = new.id.next();
        b.fx.extend(fx);
        let sid = new.id;
        self.storms.insert(sid, new);
        for k in keys {
            self.join(sid, b, &k);
        }
    }

    /// `key` joins storm `sid`. One that opened in this batch was told of by nobody yet: its
    /// own notifications are dropped, the storm's card tells of it.
    fn join(&mut self, sid: IncidentId, b: &mut Batch<'_>, key: &str) {
        let (Some(s), Some(member)) = (self.storms.get_mut(&sid), b.incidents.get_mut(key)) else {
            return;
        };
        // The candidates were read before the batch: one raised since pages on its own.
        if !storm::may_join(member) || member.severity != s.severity {
            return;
        }
        let at_open = self.opened_here.contains(key);
        if at_open {
            let (id, ep) = (member.id, member.episode);
            b.fx.deliveries
                .retain(|d| !(d.incident_id == id && d.episode == ep));
        }
        b.fx.extend(storm::join(s, member, at_open, b.now));
        self.changed.insert(sid);
        b.changed.push(key.to_string());
    }

    /// The storms the batch changed, to be written before their members (which refer to them).
    pub(crate) fn take_changed(&mut self) -> Vec<Incident> {
        let ids: Vec<IncidentId> = self.changed.drain().collect();
        ids.iter().filter_map(|id| self.storms.remove(id)).collect()
    }

    /// The storms that lost an open member in the batch (see [`close_emptied`]).
    pub(crate) fn take_lost_open(&mut self) -> BTreeSet<IncidentId> {
        std::mem::take(&mut self.lost_open)
    }
}

/// After an intake batch is written, in its transaction: each storm in `lost_open` that has no
/// open member left resolves itself (its post-mortem follows). Counted here, once the batch's
/// rows are stored, so that a batch pays for the count only when a member did leave, not on
/// every event of a member (16 ms a batch with a 1,000-member storm, counted up front).
pub(crate) async fn close_emptied(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    lost_open: &BTreeSet<IncidentId>,
    now: i64,
) -> Result<Effects, StoreError> {
    let mut fx = Effects::default();
    for &sid in lost_open {
        if sql::open_members(tx, sid).await? > 0 {
            continue;
        }
        let Some(mut s) = crate::store::incidents::incident(tx, sid).await? else {
            continue;
        };
        if let Some(closed) = storm::close_if_done(cfg, &mut s, 0, Via::Sentry, now) {
            crate::store::incidents::apply_effects(tx, &[&s], &closed, now).await?;
            fx.extend(closed);
        }
    }
    Ok(fx)
}

/// The rest of a person's action, in its transaction: acting on a storm acts on each of its open
/// members (a note on each says so); a member resolved on its own closes its storm when it was
/// the last one open. Returns the other rows changed and their effects.
pub(crate) async fn cascade(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    before: &Incident,
    inc: &Incident,
    actor: &Actor,
    now: i64,
) -> Result<(Vec<Incident>, Effects), StoreError> {
    if before.state == inc.state {
        return Ok((Vec::new(), Effects::default()));
    }
    match (inc.kind, inc.storm_id) {
        (IncidentKind::Storm, _) => act_on_members(tx, cfg, inc, actor, now).await,
        (IncidentKind::Issue, Some(sid)) if inc.state == IncidentState::Resolved => {
            close_storm(tx, cfg, sid, inc.id, actor, now).await
        }
        _ => Ok((Vec::new(), Effects::default())),
    }
}

async fn act_on_members(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    s: &Incident,
    actor: &Actor,
    now: i64,
) -> Result<(Vec<Incident>, Effects), StoreError> {
    let mut rows = Vec::new();
    let mut fx = Effects::default();
    for mut m in sql::members(tx, s.id).await?.into_iter().flatten() {
        let done = match s.state {
            IncidentState::Acknowledged => {
                let (out, e) = transitions::acknowledge(cfg, &mut m, actor, now);
                (out == AckOutcome::Acknowledged).then_some((e, "acknowledged"))
            }
            IncidentState::Resolved => {
                let (out, e) = transitions::resolve(cfg, &mut m, actor, now);
                (out == ResolveOutcome::Resolved).then_some((e, "resolved"))
            }
            IncidentState::Triggered | IncidentState::Muted => None,
        };
        if let Some((e, verb)) = done {
            fx.extend(e);
            fx.extend(storm::acted_with_storm(&m, s.id, actor, verb, now));
            rows.push(m);
        }
    }
    Ok((rows, fx))
}

async fn close_storm(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    sid: IncidentId,
    resolved: IncidentId,
    actor: &Actor,
    now: i64,
) -> Result<(Vec<Incident>, Effects), StoreError> {
    let Some(mut s) = crate::store::incidents::incident(tx, sid).await? else {
        return Ok((Vec::new(), Effects::default()));
    };
    let members = sql::members(tx, sid).await?;
    // A member that cannot be read counts as open: the storm stays until someone resolves it.
    let open = members
        .iter()
        .filter(|m| {
            m.as_ref()
                .map_or(true, |m| m.id != resolved && m.state.is_open())
        })
        .count();
    match storm::close_if_done(cfg, &mut s, open, actor.via, now) {
        Some(fx) => Ok((vec![s], fx)),
        None => Ok((Vec::new(), Effects::default())),
    }
}
