//! Every change of an incident, as pure functions: they mutate the in-memory row and return what
//! must be written with it in the same transaction (timeline entries and outbox deliveries).
//! Intake, the API, acknowledgement links, Slack, PagerDuty and the escalation scheduler all
//! go through these, so a change means the same thing whatever its source.

use crate::classification::Classification;
use crate::config::RoutingConfig;
use crate::domain::{
    Acknowledgement, ChannelKind, EventId, IncidentId, NotificationKind, Policy, Severity,
    TimelineKind, Via,
};
pub(crate) use crate::domain::{Effects, NewDelivery, NewTimeline};
use crate::intake::AlertFacts;

use super::model::{Incident, IncidentState, ResolvedEpisode};

// The two ways a transition adds to its effects.
impl Effects {
    fn note(
        &mut self,
        inc: &Incident,
        at: i64,
        kind: TimelineKind,
        actor: Option<&str>,
        via: Option<Via>,
        detail: Option<String>,
    ) {
        self.timeline.push(NewTimeline {
            incident_id: inc.id,
            at,
            kind,
            actor: actor.map(str::to_string),
            via,
            detail,
        });
    }

    fn deliver(
        &mut self,
        inc: &Incident,
        channels: &[String],
        kind: NotificationKind,
        detail: Option<String>,
    ) {
        for channel in channels {
            self.deliveries.push(NewDelivery {
                incident_id: inc.id,
                episode: inc.episode,
                channel: channel.clone(),
                kind,
                detail: detail.clone(),
            });
        }
    }
}

/// Who or what caused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub via: Via,
}

impl Actor {
    pub fn new(name: impl Into<String>, via: Via) -> Self {
        Self {
            name: name.into(),
            via,
        }
    }
}

/// The policy an episode of `severity` opening at `now` keeps (`escalate_after_during` picks its
/// window by the time intervals holding `now`).
fn freeze(cfg: &RoutingConfig, severity: Severity, now: i64) -> Policy {
    cfg.policy_at(severity, now)
}

/// A brand-new incident for the first alert of its key. The id is assigned by the caller.
#[cfg(test)]
pub(crate) fn open_new(
    cfg: &RoutingConfig,
    id: IncidentId,
    key: String,
    facts: &AlertFacts,
    class: &Classification,
    event_id: EventId,
    now: i64,
) -> (Incident, Effects) {
    open_new_notifying(cfg, id, key, facts, class, event_id, now, None)
}

/// [`open_new`], telling `notify` instead of the policy's channels when given (the pipeline
/// watch's own channels).
#[allow(clippy::too_many_arguments)] // open_new's, and the one override
pub(crate) fn open_new_notifying(
    cfg: &RoutingConfig,
    id: IncidentId,
    key: String,
    facts: &AlertFacts,
    class: &Classification,
    event_id: EventId,
    now: i64,
    notify: Option<&[String]>,
) -> (Incident, Effects) {
    let mut policy = freeze(cfg, class.severity, now);
    if let Some(channels) = notify {
        policy.notify = channels.to_vec();
    }
    let mut inc = Incident {
        project: facts.project.clone(),
        environment: facts.environment.clone(),
        level: facts.level.clone(),
        culprit: facts.culprit.clone(),
        rule: class.rule.clone(),
        sentry_rule: facts.sentry_rule.clone(),
        // The watch's own alerts are no Sentry issue, whatever keys them.
        sentry_issue_id: facts
            .issue_id
            .clone()
            .filter(|_| facts.resource != crate::intake::sentry::WATCH_RESOURCE),
        sentry_url: facts.web_url.clone(),
        release: facts.release.clone(),
        metric_value: facts.metric.as_ref().and_then(|m| m.value),
        event_count: 1,
        last_event_id: Some(event_id),
        ..Incident::opening(
            id,
            key,
            crate::domain::IncidentKind::Issue,
            class.severity,
            facts.title.clone(),
            policy.clone(),
            now,
        )
    };
    let mut fx = Effects::default();
    fx.note(
        &inc,
        now,
        TimelineKind::Opened,
        Some("sentry"),
        Some(Via::Sentry),
        Some(opened_detail(class)),
    );
    start_episode_notifications(&mut inc, &policy, now, NotificationKind::Opened, &mut fx);
    // Sentry's sidebar links the issue to this incident from its first notification on.
    if inc.sentry_issue_id.is_some() {
        fx.deliver(
            &inc,
            &sentry_sync_channels(cfg, |_| true),
            NotificationKind::Opened,
            None,
        );
    }
    (inc, fx)
}

/// The `type: sentry` channels (two-way sync) whose settings accept `wanted`. Sync is on only
/// when the organization and token are set: unlike a page, nobody needs to read in the log what
/// would have been said to Sentry.
fn sentry_sync_channels(
    cfg: &RoutingConfig,
    wanted: impl Fn(&crate::config::ChannelConfig) -> bool,
) -> Vec<String> {
    cfg.channels
        .values()
        .filter(|c| c.kind == ChannelKind::Sentry && c.sentry.is_some() && wanted(c))
        .map(|c| c.name.clone())
        .collect()
}

/// A change made here, not in Sentry, is told to Sentry (resolved, assigned): never one that
/// came from Sentry, which would loop.
fn tell_sentry(
    cfg: &RoutingConfig,
    inc: &Incident,
    actor: &Actor,
    wanted: impl Fn(&crate::config::ChannelConfig) -> bool,
) -> Vec<String> {
    if actor.via == Via::Sentry || inc.sentry_issue_id.is_none() {
        return Vec::new();
    }
    sentry_sync_channels(cfg, wanted)
}

fn opened_detail(class: &Classification) -> String {
    match &class.rule {
        Some(rule) => format!("{} by rule {rule}", class.severity),
        None => "unclassified: no rule matched".to_string(),
    }
}

fn start_episode_notifications(
    inc: &mut Incident,
    policy: &Policy,
    now: i64,
    kind: NotificationKind,
    fx: &mut Effects,
) {
    notify_and_start_window(inc, policy, now, kind, None, fx);
}

/// [`start_episode_notifications`], the rows carrying `detail` (a reason, see
/// `lifecycle::reason_detail`). A new episode also gets its `confirm_within` deadline.
fn notify_and_start_window(
    inc: &mut Incident,
    policy: &Policy,
    now: i64,
    kind: NotificationKind,
    detail: Option<String>,
    fx: &mut Effects,
) {
    fx.deliver(inc, &policy.notify, kind, detail);
    let due = match (policy.escalate_after_ms, policy.escalate_to.is_empty()) {
        (Some(after), false) => Some(now.saturating_add(after)),
        _ => None,
    };
    inc.next_escalation_at = match (kind, inc.next_escalation_at, due) {
        // The new severity's window starts now, when its channels hear of it; but a raise may
        // only bring a running escalation forward, never push it back.
        (NotificationKind::SeverityRaised, Some(running), Some(due)) => Some(running.min(due)),
        _ => due,
    };
    if kind == NotificationKind::Opened && !policy.notify.is_empty() {
        inc.confirm_by = policy
            .confirm_within_ms
            .map(|within| now.saturating_add(within));
    }
    fx.timers_changed = true;
}

/// For synthetic test alerts: no escalation timer.
pub(crate) fn disable_escalation(inc: &mut Incident, fx: &mut Effects, now: i64) {
    inc.next_escalation_at = None;
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some("paiid-alerts"),
        Some(Via::Test),
        Some("test alert: escalation disabled".into()),
    );
}

/// Another alert for an existing incident: count it; reopen a resolved one as a new episode;
/// raise the severity when the new classification is worse.
pub(crate) fn record_alert(
    cfg: &RoutingConfig,
    inc: &mut Incident,
    facts: &AlertFacts,
    class: &Classification,
    event_id: EventId,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    // Another alert about an event already counted (a second rule that fired on it) is not a
    // second event.
    if facts.occurrence || facts.event_id.is_none() {
        inc.event_count += 1;
    }
    inc.last_seen = now;
    inc.last_event_id = Some(event_id);
    inc.updated_at = now;
    if let Some(v) = facts.metric.as_ref().and_then(|m| m.value) {
        let below = facts.metric.as_ref().and_then(|m| m.threshold_type) == Some(1);
        inc.metric_value = Some(match inc.metric_value {
            Some(old) if below => old.min(v),
            Some(old) => old.max(v),
            None => v,
        });
    }
    if inc.release.is_none() {
        inc.release = facts.release.clone();
    }
    if inc.state() == IncidentState::Resolved {
        // Sentry saw it again after we resolved it: a new episode that escalates afresh, at the
        // severity of this alert (a staging event for an issue once critical in production
        // must not page), not the old episode's.
        let severity = class.severity;
        reopen(
            cfg,
            inc,
            severity,
            class.rule.clone(),
            now,
            "new events after resolution",
            None,
            &mut fx,
        );
        return fx;
    }
    if class.severity > inc.severity() {
        let old = inc.severity;
        let policy = freeze(cfg, class.severity, now);
        inc.severity = class.severity;
        inc.rule = class.rule.clone();
        inc.policy = policy.clone();
        fx.note(
            inc,
            now,
            TimelineKind::SeverityRaised,
            Some("sentry"),
            Some(Via::Sentry),
            Some(format!("{old} -> {}", inc.severity)),
        );
        // Above its storm's severity: it pages alone (below), not as one of the crowd.
        storm::detach(inc, &format!("raised to {}", inc.severity), now, &mut fx);
        match inc.state() {
            IncidentState::Triggered => {
                start_episode_notifications(
                    inc,
                    &policy,
                    now,
                    NotificationKind::SeverityRaised,
                    &mut fx,
                );
            }
            // Acknowledged: it got worse since people took it, so it pages again at once and
            // its new window starts. Muted: silent.
            IncidentState::Acknowledged => {
                let by = inc
                    .acknowledged_by
                    .clone()
                    .unwrap_or_else(|| "someone".into());
                let reason = format!(
                    "severity rose to {} while acknowledged by {by}",
                    inc.severity
                );
                lifecycle::retrigger(
                    inc,
                    NotificationKind::SeverityRaised,
                    &reason,
                    false,
                    now,
                    &mut fx,
                );
            }
            IncidentState::Muted | IncidentState::Resolved => {}
        }
        return fx;
    }
    if inc.state() == IncidentState::Acknowledged
        && let Some(reason) = lifecycle::rate_outgrew_ack(inc, now)
    {
        lifecycle::retrigger(
            inc,
            NotificationKind::Retriggered,
            &reason,
            false,
            now,
            &mut fx,
        );
    }
    fx
}

#[allow(clippy::too_many_arguments)] // one call per cause; a struct would only rename them
fn reopen(
    cfg: &RoutingConfig,
    inc: &mut Incident,
    severity: Severity,
    rule: Option<String>,
    now: i64,
    why: &str,
    reason: Option<&str>,
    fx: &mut Effects,
) {
    let policy = freeze(cfg, severity, now);
    inc.episode = inc.episode.next();
    inc.severity = severity;
    if rule.is_some() {
        inc.rule = rule;
    }
    inc.policy = policy.clone();
    inc.state = IncidentState::Triggered;
    inc.opened_at = now;
    inc.acknowledged_at = None;
    inc.acknowledged_by = None;
    inc.acknowledged_via = None;
    inc.resolved_at = None;
    inc.resolved_by = None;
    inc.resolved_via = None;
    // The root cause was the earlier episode's; this one gets its own.
    inc.root_cause = None;
    inc.escalation_step = 0;
    inc.escalation_version += 1;
    // The new episode gets its own Slack message and PagerDuty incident (remote references are
    // kept per episode).
    inc.pagerduty_incident_id = None;
    inc.notified_count = 0;
    inc.count_updated_at = None;
    // A deadline kept by a silence belonged to the earlier episode.
    inc.held_escalation_at = None;
    // So did its acknowledgement, its delivery trouble and any early escalation; its events
    // before now belong to the earlier episodes.
    inc.ack_event_count = None;
    inc.episode_event_count = Some(inc.event_count);
    inc.delivery_degraded_at = None;
    inc.escalation_reason = None;
    // So did its storm: the new episode pages alone, or joins a storm of its own time.
    storm::detach(inc, "opened again", now, fx);
    inc.updated_at = now;
    fx.note(
        inc,
        now,
        TimelineKind::Reopened,
        Some("sentry"),
        Some(Via::Sentry),
        Some(format!("episode {}: {why}", inc.episode)),
    );
    let detail = reason.map(lifecycle::reason_detail);
    notify_and_start_window(inc, &policy, now, NotificationKind::Opened, detail, fx);
}

/// The outcome of an acknowledgement, for the page or API that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged,
    AlreadyAcknowledged { by: Option<String>, at: Option<i64> },
    AlreadyResolved { by: Option<String>, at: Option<i64> },
}

/// Channels that heard about this episode so far: the primary ones, plus the secondary ones
/// once an escalation fired.
fn channels_told(inc: &Incident) -> Vec<String> {
    let policy = inc.frozen_policy();
    let mut out = policy.notify.clone();
    if inc.escalation_step > 0 {
        for c in policy.escalate_to {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Acknowledge/resolve notices go where a message can be updated or an incident closed: Slack
/// and PagerDuty. Mail about every state change would bury the mail that matters. A change that
/// came from PagerDuty is not echoed back to PagerDuty.
fn follow_up_channels(cfg: &RoutingConfig, inc: &Incident, via: Via) -> Vec<String> {
    // A silenced incident told nobody, nor did a storm member that joined as it opened: nothing
    // to follow up on.
    if inc.silenced_by.is_some() || storm::told_nothing(inc) {
        return Vec::new();
    }
    channels_told(inc)
        .into_iter()
        .filter(|c| match cfg.channels.get(c).map(|c| c.kind) {
            Some(ChannelKind::Slack) => true,
            Some(ChannelKind::Pagerduty) => via != Via::Pagerduty,
            _ => false,
        })
        .collect()
}

/// Cancels the escalation deadline; the version bump tells sleepers their hint is stale.
fn stop_timer(inc: &mut Incident, fx: &mut Effects, now: i64) {
    inc.next_escalation_at = None;
    // Why an escalation was early belongs to that escalation only.
    inc.escalation_reason = None;
    inc.escalation_version += 1;
    inc.updated_at = now;
    fx.timers_changed = true;
}

pub(crate) fn acknowledge(
    cfg: &RoutingConfig,
    inc: &mut Incident,
    actor: &Actor,
    now: i64,
) -> (AckOutcome, Effects) {
    let mut fx = Effects::default();
    match inc.state() {
        IncidentState::Acknowledged => {
            return (
                AckOutcome::AlreadyAcknowledged {
                    by: inc.acknowledged_by.clone(),
                    at: inc.acknowledged_at,
                },
                fx,
            );
        }
        IncidentState::Resolved => {
            return (
                AckOutcome::AlreadyResolved {
                    by: inc.resolved_by.clone(),
                    at: inc.resolved_at,
                },
                fx,
            );
        }
        IncidentState::Triggered | IncidentState::Muted => {}
    }
    inc.state = IncidentState::Acknowledged;
    inc.acknowledged_at = Some(now);
    inc.acknowledged_by = Some(actor.name.clone());
    inc.acknowledged_via = Some(actor.via);
    stop_timer(inc, &mut fx, now);
    // A person has it: the page was delivered, whatever the channels confirmed.
    inc.confirm_by = None;
    inc.ack_event_count = Some(inc.event_count);
    // An acknowledgement that outlives `ack_timeout` expires (the scheduler's deadline of an
    // acknowledged incident); a storm member's follows its storm's.
    if let Some(timeout) = inc.frozen_policy().ack_timeout_ms
        && inc.storm_id.is_none()
    {
        inc.next_escalation_at = Some(now.saturating_add(timeout));
    }
    fx.note(
        inc,
        now,
        TimelineKind::Acknowledged,
        Some(&actor.name),
        Some(actor.via),
        None,
    );
    let targets = follow_up_channels(cfg, inc, actor.via);
    // The row says which acknowledgement it reports: it may be sent after a resolve or reopen.
    let ack = Acknowledgement::of(inc).map(|a| a.to_detail());
    fx.deliver(inc, &targets, NotificationKind::Acknowledged, ack.clone());
    // Assigned in Sentry to whoever acknowledged, when the channel knows them there.
    let assign = tell_sentry(cfg, inc, actor, |c| {
        c.sentry
            .as_ref()
            .is_some_and(|s| s.users.contains_key(&actor.name))
    });
    fx.deliver(inc, &assign, NotificationKind::Acknowledged, ack);
    (AckOutcome::Acknowledged, fx)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveOutcome {
    Resolved,
    AlreadyResolved { by: Option<String>, at: Option<i64> },
}

pub(crate) fn resolve(
    cfg: &RoutingConfig,
    inc: &mut Incident,
    actor: &Actor,
    now: i64,
) -> (ResolveOutcome, Effects) {
    let mut fx = Effects::default();
    if inc.state() == IncidentState::Resolved {
        return (
            ResolveOutcome::AlreadyResolved {
                by: inc.resolved_by.clone(),
                at: inc.resolved_at,
            },
            fx,
        );
    }
    inc.state = IncidentState::Resolved;
    inc.resolved_at = Some(now);
    inc.resolved_by = Some(actor.name.clone());
    inc.resolved_via = Some(actor.via);
    inc.confirm_by = None;
    stop_timer(inc, &mut fx, now);
    fx.note(
        inc,
        now,
        TimelineKind::Resolved,
        Some(&actor.name),
        Some(actor.via),
        None,
    );
    let summary = ResolvedEpisode::of(inc).map(|e| e.to_detail());
    let mut targets = follow_up_channels(cfg, inc, actor.via);
    targets.extend(mail_told(cfg, inc));
    // Resolved in Sentry too; the `issue.resolved` Sentry sends back is then our own echo.
    let sync = tell_sentry(cfg, inc, actor, |_| true);
    if !sync.is_empty() {
        inc.sentry_echo_episode = Some(inc.episode);
    }
    targets.extend(sync);
    fx.deliver(inc, &targets, NotificationKind::Resolved, summary.clone());
    // Only incidents that paged somebody earn a post-mortem in the alerts channel.
    let policy = inc.frozen_policy();
    let paged = !policy.notify.is_empty() || !policy.escalate_to.is_empty();
    if inc.silenced_by.is_none() && !storm::told_nothing(inc) && paged {
        let summary_to = post_mortem_channels(cfg);
        fx.deliver(inc, &summary_to, NotificationKind::PostMortem, summary);
    }
    (ResolveOutcome::Resolved, fx)
}

/// Email channels paged for this episode (trigger or a fired escalation): their recipients
/// hear once that it is over, or they would keep wondering. Acknowledgements are not mailed.
fn mail_told(cfg: &RoutingConfig, inc: &Incident) -> Vec<String> {
    if inc.silenced_by.is_some() || storm::told_nothing(inc) {
        return Vec::new();
    }
    channels_told(inc)
        .into_iter()
        .filter(|c| {
            cfg.channels
                .get(c)
                .is_some_and(|c| c.kind == ChannelKind::Email)
        })
        .collect()
}

/// Post-mortems go to the Slack alerts channel(s).
fn post_mortem_channels(cfg: &RoutingConfig) -> Vec<String> {
    match &cfg.post_mortem_to {
        Some(list) => list.clone(),
        None => cfg
            .channels
            .values()
            .filter(|c| c.kind == ChannelKind::Slack)
            .map(|c| c.name.clone())
            .collect(),
    }
}

pub(crate) fn assign(
    inc: &mut Incident,
    assignee: Option<String>,
    actor: &Actor,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    inc.assignee = assignee.clone();
    inc.updated_at = now;
    fx.note(
        inc,
        now,
        TimelineKind::Assigned,
        Some(&actor.name),
        Some(actor.via),
        assignee,
    );
    fx
}

pub(crate) fn comment(inc: &Incident, text: Option<String>, actor: &Actor, now: i64) -> Effects {
    let mut fx = Effects::default();
    fx.note(
        inc,
        now,
        TimelineKind::Comment,
        Some(&actor.name),
        Some(actor.via),
        text,
    );
    fx
}

pub(crate) fn add_note(inc: &mut Incident, note: &str, actor: &Actor, now: i64) -> Effects {
    let mut fx = Effects::default();
    inc.root_cause = Some(note.to_string());
    inc.updated_at = now;
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some(&actor.name),
        Some(actor.via),
        Some(note.to_string()),
    );
    fx
}

/// The escalation deadline passed without an acknowledgement: page the secondary channels.
/// Returns `None` when the incident is no longer due (acknowledged, resolved, muted, moved).
pub(crate) fn fire_escalation(inc: &mut Incident, due_at: i64, now: i64) -> Option<Effects> {
    if inc.state() != IncidentState::Triggered || inc.next_escalation_at != Some(due_at) {
        return None;
    }
    let policy = inc.frozen_policy();
    let mut fx = Effects::default();
    inc.escalation_step += 1;
    inc.escalation_version += 1;
    inc.next_escalation_at = None;
    inc.updated_at = now;
    fx.timers_changed = true;
    let waited = (now - inc.opened_at).max(0);
    let reason = inc.escalation_reason.take();
    let detail = serde_json::json!({ "step": inc.escalation_step, "waited_ms": waited, "due_at": due_at, "lateness_ms": now - due_at, "reason": reason }).to_string();
    fx.note(
        inc,
        now,
        TimelineKind::Escalated,
        Some("scheduler"),
        Some(Via::Scheduler),
        Some(match &reason {
            Some(why) => format!("{why}; paged {}", policy.escalate_to.join(", ")),
            None => format!(
                "no acknowledgement after {}; paged {}",
                crate::text::duration(waited),
                policy.escalate_to.join(", ")
            ),
        }),
    );
    fx.deliver(
        inc,
        &policy.escalate_to,
        NotificationKind::Escalation,
        Some(detail),
    );
    Some(fx)
}

pub(crate) mod lifecycle;
mod silence;
pub(crate) use silence::{hold_if_silenced, hold_open, release};
pub(crate) mod storm;

#[cfg(test)]
mod tests;
