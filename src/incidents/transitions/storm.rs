//! Storm groups, as pure transitions: a storm is an incident row of kind `storm` that pages once
//! for many incidents of one severity opening together (its own Slack card, escalation deadline,
//! PagerDuty trigger and manager mail). Members keep their rows and point at it with `storm_id`.
//! The intake writer decides who joins (`incidents::storms`); these functions change the rows.

use crate::config::{RoutingConfig, StormSettings};
use crate::domain::{
    IncidentId, IncidentKind, NotificationKind, Severity, StormJoin, TimelineKind, Via,
};

use super::{Actor, Effects, Incident, IncidentState, freeze, start_episode_notifications};

const SYSTEM: &str = "paiid-alerts";

/// The storm's title: "Storm: 37 critical incidents", " in <project>" when they share one.
pub(crate) fn title(count: i64, severity: Severity, project: Option<&str>) -> String {
    let noun = if count == 1 { "incident" } else { "incidents" };
    match project {
        Some(p) => format!("Storm: {count} {severity} {noun} in {p}"),
        None => format!("Storm: {count} {severity} {noun}"),
    }
}

/// Whether an incident may be paged for by a storm: it pages somebody, is not held by a silence,
/// is an issue still waiting for someone, in no storm, and has not escalated on its own. A test
/// alert (its escalation disabled: a policy that escalates, no deadline, never fired) stays out:
/// a drill must show its own message and never page on-call through a storm.
pub(crate) fn may_join(inc: &Incident) -> bool {
    let pages = !inc.policy.notify.is_empty() || !inc.policy.escalate_to.is_empty();
    let escalates = inc.policy.escalate_after_ms.is_some() && !inc.policy.escalate_to.is_empty();
    let drill = escalates && inc.next_escalation_at.is_none() && inc.escalation_step == 0;
    pages
        && !drill
        && inc.kind == IncidentKind::Issue
        && inc.state() == IncidentState::Triggered
        && inc.storm_id.is_none()
        && inc.silenced_by.is_none()
        && inc.escalation_step == 0
}

/// Whether a new member of `severity` joins this storm: it is still waiting for someone, has not
/// paged yet, is not held by a silence, and its last member joined within the window. What opens
/// after a storm was acknowledged or paged still pages (a new storm may form): a storm that
/// already paged would otherwise page again for the latecomers, and people on it already know.
/// A silenced storm would hide a newcomer the silence does not cover.
pub(crate) fn joinable(storm: &Incident, severity: Severity, s: &StormSettings, now: i64) -> bool {
    let window = i64::try_from(s.window.as_millis()).unwrap_or(i64::MAX);
    storm.kind == IncidentKind::Storm
        && storm.severity == severity
        && storm.state() == IncidentState::Triggered
        && storm.escalation_step == 0
        && storm.silenced_by.is_none()
        && storm.last_seen >= now.saturating_sub(window)
}

/// A new storm of `severity`, with no members yet: its card goes to the severity's `notify`
/// channels and its escalation deadline starts now (members joining bring it forward).
pub(crate) fn form(
    cfg: &RoutingConfig,
    id: IncidentId,
    severity: Severity,
    now: i64,
) -> (Incident, Effects) {
    let policy = freeze(cfg, severity, now);
    // The id makes the key unique by construction (two storms of one severity could form in
    // one millisecond on different replicas).
    let mut storm = Incident::opening(
        id,
        format!("storm:{severity}:{now}:{}", id.get()),
        IncidentKind::Storm,
        severity,
        title(0, severity, None),
        policy.clone(),
        now,
    );
    let mut fx = Effects::default();
    let detail = format!(
        "more than {} {severity} incidents opened together",
        cfg.storm.threshold
    );
    fx.note(
        &storm,
        now,
        TimelineKind::Opened,
        Some(SYSTEM),
        Some(Via::Sentry),
        Some(detail),
    );
    start_episode_notifications(&mut storm, &policy, now, NotificationKind::Opened, &mut fx);
    (storm, fx)
}

/// `member` joins `storm`: the storm pages for it from now on. Its escalation deadline moves to
/// the storm (the earlier of the two: nobody is paged later than alone). `at_open`: it opened in
/// this batch and its own notifications are dropped by the caller (it is told of by the card).
pub(crate) fn join(
    storm: &mut Incident,
    member: &mut Incident,
    at_open: bool,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    member.storm_id = Some(storm.id);
    member.storm_join = Some(if at_open {
        StormJoin::AtOpen
    } else {
        StormJoin::Later
    });
    storm.next_escalation_at = match (storm.next_escalation_at, member.next_escalation_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if member.next_escalation_at.take().is_some() {
        member.escalation_version += 1;
        fx.timers_changed = true;
    }
    member.updated_at = now;
    storm.project = match storm.event_count {
        0 => member.project.clone(),
        _ if storm.project == member.project => storm.project.clone(),
        _ => None,
    };
    storm.event_count += 1;
    storm.last_seen = now;
    storm.updated_at = now;
    storm.title = title(storm.event_count, storm.severity, storm.project.as_deref());
    let joined = format!("joined storm #{}", storm.id);
    fx.note(
        member,
        now,
        TimelineKind::Note,
        Some(SYSTEM),
        Some(Via::Sentry),
        Some(joined),
    );
    let added = format!("#{} joined: {}", member.id, member.title);
    fx.note(
        storm,
        now,
        TimelineKind::Note,
        Some(SYSTEM),
        Some(Via::Sentry),
        Some(added),
    );
    fx
}

/// Takes `member` out of its storm (its severity rose above the storm's, or it opened again):
/// from now on it pages alone. The storm's side is [`member_left`].
pub(crate) fn detach(member: &mut Incident, why: &str, now: i64, fx: &mut Effects) {
    let Some(storm) = member.storm_id.take() else {
        return;
    };
    member.storm_join = None;
    member.updated_at = now;
    let detail = format!("left storm #{storm}: {why}");
    fx.note(
        member,
        now,
        TimelineKind::Note,
        Some(SYSTEM),
        Some(Via::Sentry),
        Some(detail),
    );
}

/// The storm's side of a member leaving: one fewer, its title kept current.
pub(crate) fn member_left(storm: &mut Incident, member: IncidentId, now: i64) -> Effects {
    let mut fx = Effects::default();
    storm.event_count = (storm.event_count - 1).max(0);
    storm.updated_at = now;
    storm.title = title(storm.event_count, storm.severity, storm.project.as_deref());
    let detail = format!("#{member} left: it pages on its own");
    fx.note(
        storm,
        now,
        TimelineKind::Note,
        Some(SYSTEM),
        Some(Via::Sentry),
        Some(detail),
    );
    fx
}

/// Whether this incident was never told about on its own (it joined its storm as it opened):
/// it gets no follow-ups of its own, the storm's card speaks for it.
pub(crate) fn told_nothing(inc: &Incident) -> bool {
    inc.storm_id.is_some() && inc.storm_join == Some(StormJoin::AtOpen)
}

/// The timeline note on a member that the action on its storm changed.
pub(crate) fn acted_with_storm(
    member: &Incident,
    storm: IncidentId,
    actor: &Actor,
    verb: &str,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    let detail = format!("{verb} with storm #{storm}");
    fx.note(
        member,
        now,
        TimelineKind::Note,
        Some(&actor.name),
        Some(actor.via),
        Some(detail),
    );
    fx
}

/// Every member of a storm is resolved: the storm resolves itself (its post-mortem follows).
pub(crate) fn close_if_done(
    cfg: &RoutingConfig,
    storm: &mut Incident,
    open_members: usize,
    via: Via,
    now: i64,
) -> Option<Effects> {
    if storm.kind != IncidentKind::Storm || open_members > 0 || !storm.state().is_open() {
        return None;
    }
    let actor = Actor::new(SYSTEM, via);
    Some(super::resolve(cfg, storm, &actor, now).1)
}

#[cfg(test)]
mod tests;
