//! Builds the [`Notification`] for one delivery from the incident as it is now and the details
//! stored with its latest event (extracted and scrubbed at intake: nothing here reads Sentry
//! JSON), scrubbed of secrets and PII, with a signed acknowledge link. What the delivery reports
//! (an acknowledgement, a resolution) comes from the snapshot in the row's `detail`, not from the
//! incident's state at send time, which may have moved on while the row waited.

use std::sync::Arc;

use super::RemoteState;
use super::message::{
    Acknowledgement, DeliveryRef, Notification, NotificationKind, PostMortem, StormMember,
    StormSummary,
};
use super::notice::{Notice, NoticeError, NoticeKind, UnreadablePayload};
use crate::auth::ack_token::{AckAction, AckClaims, AckKeys};
use crate::clock::{SharedClock, ms_to_datetime};
use crate::domain::{Episode, IncidentId, IncidentKind};
use crate::incidents::model::{Incident, IncidentState, ResolvedEpisode};
use crate::intake::MetricKind;
use crate::intake::details::EventDetails;
use crate::intake::redact;
use crate::store::{Store, StoreError};
use crate::store::{deliveries, incidents as sql, listings};
use crate::text::duration;

/// Acknowledge links stay valid this long: long enough for a weekend, short enough that an old
/// mail cannot act on next month's incident.
pub(crate) const ACK_LINK_TTL_SECS: i64 = 7 * 86_400;

#[derive(Clone)]
pub struct NotificationBuilder {
    pub store: Store,
    pub public_url: Arc<str>,
    pub ack_keys: Arc<AckKeys>,
    pub clock: SharedClock,
    pub include_pii: bool,
}

impl NotificationBuilder {
    pub fn incident_url(&self, id: IncidentId) -> String {
        format!("{}/incidents/{id}", self.public_url)
    }

    /// A signed link for `recipient` (the channel name) to act on `episode` of the incident.
    pub fn action_url(
        &self,
        incident_id: IncidentId,
        episode: Episode,
        action: AckAction,
        recipient: &str,
    ) -> String {
        let claims = AckClaims {
            kid: String::new(),
            incident: incident_id,
            action,
            recipient: recipient.to_string(),
            exp: self.clock.now_ms() / 1000 + ACK_LINK_TTL_SECS,
            ver: episode,
        };
        format!("{}/ack/{}", self.public_url, self.ack_keys.sign(&claims))
    }

    /// The notice a row without an incident stands for, from its kind and frozen `detail`.
    pub fn notice(
        &self,
        kind: NoticeKind,
        detail: Option<&str>,
        delivery: DeliveryRef,
    ) -> Result<Notice, NoticeError> {
        let mut notice = match kind {
            NoticeKind::UnreadablePayload => Notice::unreadable_payload(
                UnreadablePayload::from_detail(detail)?,
                &self.public_url,
            ),
        };
        notice.delivery = Some(delivery);
        Ok(notice)
    }

    /// Loads what a delivery needs. `None` when the incident no longer exists.
    pub async fn for_delivery(
        &self,
        incident_id: IncidentId,
        episode: Episode,
        kind: NotificationKind,
        detail: Option<&str>,
        recipient: &str,
    ) -> Result<Option<(Notification, RemoteState)>, StoreError> {
        let Some(inc) = listings::incident(self.store.reader(), incident_id).await? else {
            return Ok(None);
        };
        let details = match inc.last_event_id {
            Some(id) => sql::event_details(self.store.reader(), id).await?,
            None => None,
        };
        // A row that does not decode is reported, and the message goes out without details
        // rather than not at all.
        let details = details.and_then(|json| {
            EventDetails::from_json(&json)
                .inspect_err(|e| {
                    tracing::error!(incident = incident_id.get(), error = %e, "stored event details unreadable")
                })
                .ok()
        });
        // Per episode and channel: a late delivery for an earlier episode updates that
        // episode's card and resolves that episode's PagerDuty incident, never the new one's.
        let remote =
            deliveries::remote_state(self.store.reader(), incident_id, episode, recipient).await?;
        let mut n = self.notification(&inc, episode, kind, detail, details, recipient);
        if inc.kind == IncidentKind::Storm {
            let members = listings::storm_members_summary(
                self.store.reader(),
                inc.id,
                StormSummary::TOP,
                StormSummary::MAX_PROJECTS,
            )
            .await?;
            self.attach_storm(&mut n, members);
        }
        Ok(Some((n, remote)))
    }

    /// A storm's message speaks of its members as they are now: its title and count follow
    /// them (a count update of a growing storm shows the new count), and it names the noisiest.
    pub(crate) fn attach_storm(&self, n: &mut Notification, members: listings::StormMembers) {
        let top: Vec<StormMember> = members
            .top
            .into_iter()
            .map(|m| StormMember {
                incident_id: m.id,
                title: redact::scrub_text(&m.title, self.include_pii),
                project: m.project,
                event_count: m.event_count,
                url: self.incident_url(m.id),
            })
            .collect();
        let more = members
            .members
            .saturating_sub(i64::try_from(top.len()).unwrap_or(i64::MAX))
            .max(0);
        n.set_storm(StormSummary {
            members: members.members,
            events: members.events,
            projects: members.projects,
            project_count: members.project_count,
            top,
            more,
        });
    }

    pub fn notification(
        &self,
        inc: &Incident,
        episode: Episode,
        kind: NotificationKind,
        detail: Option<&str>,
        details: Option<EventDetails>,
        recipient: &str,
    ) -> Notification {
        let scrub = |s: &Option<String>| {
            s.as_deref()
                .map(|v| redact::scrub_text(v, self.include_pii))
        };
        let details = details
            .map(|d| d.for_delivery(self.include_pii))
            .unwrap_or_default();
        let metric_kind = details.metric.map(|m| m.kind);
        let state = inc.state();
        let open = matches!(state, IncidentState::Triggered | IncidentState::Muted);
        let ack_url = (open && inc.episode == episode)
            .then(|| self.action_url(inc.id, episode, AckAction::Acknowledge, recipient));
        // Read once: what an escalation waited, and why a message came early or again.
        let facts: Option<serde_json::Value> = detail.and_then(|d| serde_json::from_str(d).ok());
        let waited_minutes = facts
            .as_ref()
            .and_then(|v| v["waited_ms"].as_i64())
            .map(|ms| ms / 60_000);
        // See `incidents::transitions::lifecycle::reason_detail`.
        let reason = facts
            .as_ref()
            .and_then(|v| v["reason"].as_str().map(str::to_string));
        let resolved = resolved_episode(inc, kind, detail);
        let post_mortem = resolved.as_ref().map(post_mortem);
        let who = Who::of(inc, episode, kind, detail, resolved.as_ref());
        Notification {
            kind,
            incident_id: inc.id,
            dedup_key: crate::incidents::model::dedup_key(inc.id, episode),
            severity: inc.severity,
            state: inc.state,
            title: redact::scrub_text(&inc.title, self.include_pii),
            project: inc.project.clone(),
            environment: inc.environment.clone(),
            level: inc.level.clone(),
            culprit: scrub(&inc.culprit),
            event_count: inc.event_count,
            first_seen: ms_to_datetime(inc.first_seen),
            last_seen: ms_to_datetime(inc.last_seen),
            rule: inc.rule.clone(),
            sentry_rule: inc.sentry_rule.clone(),
            release: inc.release.clone().or(details.release),
            request: details.request,
            top_frame: details.top_frame,
            breadcrumbs: details.breadcrumbs,
            metric: inc.metric_value.map(|v| format_metric(v, metric_kind)),
            sentry_url: inc.sentry_url.clone(),
            incident_url: self.incident_url(inc.id),
            ack_url,
            acknowledged_by: who.acknowledged_by,
            acknowledged_at: who.acknowledged_at.map(ms_to_datetime),
            resolved_by: who.resolved_by,
            resolved_at: who.resolved_at.map(ms_to_datetime),
            waited_minutes,
            reason,
            seer_pr_url: inc.seer_pr_url.clone(),
            post_mortem,
            storm: None,
            delivery: None,
        }
    }
}

/// For a resolution or post-mortem: the episode as it stood when it was resolved (deliveries
/// written before the snapshot existed fall back to the row as it is now).
fn resolved_episode(
    inc: &Incident,
    kind: NotificationKind,
    detail: Option<&str>,
) -> Option<ResolvedEpisode> {
    matches!(
        kind,
        NotificationKind::PostMortem | NotificationKind::Resolved
    )
    .then(|| {
        detail
            .and_then(ResolvedEpisode::from_detail)
            .or_else(|| ResolvedEpisode::of(inc))
    })
    .flatten()
}

/// Who acknowledged and resolved, and when, as the notification reports them.
struct Who {
    acknowledged_by: Option<String>,
    acknowledged_at: Option<i64>,
    resolved_by: Option<String>,
    resolved_at: Option<i64>,
}

impl Who {
    fn of(
        inc: &Incident,
        episode: Episode,
        kind: NotificationKind,
        detail: Option<&str>,
        resolved: Option<&ResolvedEpisode>,
    ) -> Self {
        let (mut acknowledged_by, mut acknowledged_at, resolved_by, resolved_at) = match resolved {
            Some(e) => (
                e.acknowledged_by.clone(),
                e.acknowledged_at,
                e.resolved_by.clone(),
                Some(e.resolved_at),
            ),
            None => (
                inc.acknowledged_by.clone(),
                inc.acknowledged_at,
                inc.resolved_by.clone(),
                inc.resolved_at,
            ),
        };
        // An acknowledgement reports the acknowledgement it was written for, even when it is
        // sent after a resolve or a reopen changed the incident. Rows written before the
        // snapshot existed fall back to the incident's, if it is still the same episode.
        if kind == NotificationKind::Acknowledged {
            let ack = detail.and_then(Acknowledgement::from_detail).or_else(|| {
                (inc.episode == episode)
                    .then(|| Acknowledgement::of(inc))
                    .flatten()
            });
            acknowledged_by = ack.as_ref().and_then(|a| a.by.clone());
            acknowledged_at = ack.map(|a| a.at);
        }
        Self {
            acknowledged_by,
            acknowledged_at,
            resolved_by,
            resolved_at,
        }
    }
}

/// The metric kind comes from the alert's aggregate (see `intake::MetricKind`); a value without
/// a known kind keeps the old reading: within [0, 1] a score, otherwise milliseconds.
fn format_metric(v: f64, kind: Option<MetricKind>) -> String {
    if kind == Some(MetricKind::Apdex) || (0.0..=1.0).contains(&v) {
        format!("{v:.2}")
    } else {
        format!("{v:.0} ms")
    }
}

fn post_mortem(e: &ResolvedEpisode) -> PostMortem {
    let span = |from: i64, to: i64| duration(to - from);
    PostMortem {
        opened_at: ms_to_datetime(e.opened_at),
        acknowledged_at: e.acknowledged_at.map(ms_to_datetime),
        resolved_at: ms_to_datetime(e.resolved_at),
        time_to_acknowledge: e.acknowledged_at.map(|a| span(e.opened_at, a)),
        time_to_resolve: span(e.opened_at, e.resolved_at),
        acknowledged_by: e.acknowledged_by.clone(),
        escalations_fired: e.escalations_fired,
        root_cause: e.root_cause.clone(),
        seer_root_cause: e.seer_root_cause.clone(),
    }
}
