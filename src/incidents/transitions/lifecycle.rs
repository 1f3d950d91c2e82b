//! What Sentry's lifecycle and time do to an incident beyond open, acknowledge and resolve:
//! an issue Sentry marks regressed or escalating, archived or ignored; Seer's findings; an
//! acknowledgement that expires or that the incident outgrows (it got worse since); and the
//! fail-over when no notification of an episode was confirmed delivered in time.

use crate::domain::{NotificationKind, TimelineKind, Via};
use crate::intake::sentry::{SeerFacts, Substatus};
use crate::text::duration;

use super::{Effects, Incident, IncidentState, RoutingConfig, reopen, stop_timer};

/// The `detail` of a notification that says why it was sent (`Notification::reason`).
pub(crate) fn reason_detail(reason: &str) -> String {
    serde_json::json!({ "reason": reason }).to_string()
}

/// "regressed in Sentry (release 1.4.2)" and the like: what Sentry said, for the timeline and
/// the message.
fn sentry_said(substatus: Option<Substatus>, release: Option<&str>) -> String {
    let what = match substatus {
        Some(Substatus::Regressed) => "regressed in Sentry",
        Some(Substatus::Escalating) => "escalating in Sentry",
        _ => "unresolved in Sentry",
    };
    match release {
        Some(r) => format!("{what} (release {r})"),
        None => what.to_string(),
    }
}

/// Sentry unresolved the issue, with the substatus it gave (`regressed`, `escalating`, ...).
///
/// - Resolved or muted: a new episode that pages per its policy, its message saying why
///   ("regressed in Sentry (release ...)"). `archived_until_escalating` ends here too: Sentry
///   unresolves the issue as escalating.
/// - Triggered and escalating: the escalation is brought forward to now, never later.
/// - Acknowledged and escalating or regressed: people are paged again at once (escalating also
///   pages the escalation targets now).
pub(crate) fn sentry_unresolved(
    cfg: &RoutingConfig,
    inc: &mut Incident,
    substatus: Option<Substatus>,
    release: Option<&str>,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    let said = sentry_said(substatus, release);
    let escalating = substatus == Some(Substatus::Escalating);
    match inc.state() {
        IncidentState::Resolved | IncidentState::Muted => {
            // Sentry saw our resolve (it unresolves what it holds resolved): no echo of it is
            // still to come, and a later `resolved` is Sentry's own.
            inc.sentry_echo_episode = None;
            let severity = inc.severity();
            reopen(cfg, inc, severity, None, now, &said, Some(&said), &mut fx);
        }
        IncidentState::Triggered if escalating => {
            bring_escalation_forward(inc, &said, now, &mut fx)
        }
        IncidentState::Acknowledged if escalating || substatus == Some(Substatus::Regressed) => {
            let by = inc
                .acknowledged_by
                .clone()
                .unwrap_or_else(|| "someone".into());
            let reason = format!("{said} while acknowledged by {by}");
            retrigger(
                inc,
                NotificationKind::Retriggered,
                &reason,
                escalating,
                now,
                &mut fx,
            );
        }
        IncidentState::Triggered | IncidentState::Acknowledged => {
            fx.note(
                inc,
                now,
                TimelineKind::Note,
                Some("sentry"),
                Some(Via::Sentry),
                Some(said),
            );
        }
    }
    fx
}

/// A triggered incident Sentry marks escalating: its escalation fires now instead of at the end
/// of its window (never later than it would have). One whose escalation already fired, or that
/// has none, only gets the note.
fn bring_escalation_forward(inc: &mut Incident, said: &str, now: i64, fx: &mut Effects) {
    let note = match inc.next_escalation_at {
        Some(due) if due > now && !inc.frozen_policy().escalate_to.is_empty() => {
            inc.next_escalation_at = Some(now);
            inc.escalation_version += 1;
            inc.escalation_reason = Some(format!("{said}: escalation brought forward"));
            inc.updated_at = now;
            fx.timers_changed = true;
            format!(
                "{said}: escalation brought forward by {}",
                duration(due - now)
            )
        }
        _ => said.to_string(),
    };
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some("sentry"),
        Some(Via::Sentry),
        Some(note),
    );
}

/// An interval started (the market open) and `inc` is still open: its notification channels
/// hear of it again, `reason` saying why. Nothing about the incident changes.
pub(crate) fn renotify(inc: &Incident, reason: &str) -> Effects {
    let mut fx = Effects::default();
    let notify = inc.frozen_policy().notify;
    fx.deliver(
        inc,
        &notify,
        NotificationKind::Retriggered,
        Some(reason_detail(reason)),
    );
    fx
}

/// An acknowledged incident needs people again: it returns to triggered, its notification
/// channels hear why (`kind`, with `reason` in the row's detail), and its escalation window
/// starts again (or fires now, with `escalate_now`). The acknowledgement is over: whoever takes
/// it acknowledges again. Storm members follow their storm, and a silenced incident stays
/// quiet: for those only the acknowledgement ends.
pub(crate) fn retrigger(
    inc: &mut Incident,
    kind: NotificationKind,
    reason: &str,
    escalate_now: bool,
    now: i64,
    fx: &mut Effects,
) {
    let policy = inc.frozen_policy();
    inc.state = IncidentState::Triggered;
    inc.acknowledged_at = None;
    inc.acknowledged_by = None;
    inc.acknowledged_via = None;
    inc.ack_event_count = None;
    stop_timer(inc, fx, now);
    fx.note(
        inc,
        now,
        TimelineKind::Retriggered,
        Some("paiid-alerts"),
        Some(Via::Scheduler),
        Some(reason.to_string()),
    );
    if inc.storm_id.is_some() || inc.silenced_by.is_some() {
        return;
    }
    fx.deliver(inc, &policy.notify, kind, Some(reason_detail(reason)));
    if let (Some(after), false) = (policy.escalate_after_ms, policy.escalate_to.is_empty()) {
        if escalate_now {
            inc.next_escalation_at = Some(now);
            inc.escalation_reason = Some(reason.to_string());
        } else {
            inc.next_escalation_at = Some(now.saturating_add(after));
        }
    }
}

/// The acknowledgement deadline `due_at` of an acknowledged incident passed and it is still
/// open: it returns to triggered. `None` when the incident is no longer due (acknowledged again,
/// resolved, moved).
pub(crate) fn expire_acknowledgement(inc: &mut Incident, due_at: i64, now: i64) -> Option<Effects> {
    if inc.state() != IncidentState::Acknowledged || inc.next_escalation_at != Some(due_at) {
        return None;
    }
    let by = inc
        .acknowledged_by
        .clone()
        .unwrap_or_else(|| "someone".into());
    let held = inc.acknowledged_at.map_or(0, |at| now - at);
    let reason = format!(
        "acknowledgement by {by} expired after {}: the incident is still open",
        duration(held)
    );
    let mut fx = Effects::default();
    retrigger(
        inc,
        NotificationKind::Retriggered,
        &reason,
        false,
        now,
        &mut fx,
    );
    Some(fx)
}

/// Events per minute over a span, the span counted as at least a minute: one event a
/// millisecond after an acknowledgement is not a rate.
fn per_minute(events: i64, span_ms: i64) -> f64 {
    events as f64 * 60_000.0 / span_ms.max(60_000) as f64
}

/// Fewest events since an acknowledgement that may count as a rising rate: two quick events
/// after a quiet hour are noise, not a worse incident.
const REACK_MIN_EVENTS: i64 = 5;

/// Whether an acknowledged incident's event rate since the acknowledgement exceeds
/// `reack_on_rate` times the rate before it; `Some(reason)` when it does.
pub(crate) fn rate_outgrew_ack(inc: &Incident, now: i64) -> Option<String> {
    let factor = inc.frozen_policy().reack_on_rate?;
    let (acked_at, at_ack) = (inc.acknowledged_at?, inc.ack_event_count?);
    let since = inc.event_count - at_ack;
    if since < REACK_MIN_EVENTS {
        return None;
    }
    // This episode's events before the acknowledgement, over this episode's time before it.
    let at_open = inc.episode_event_count.unwrap_or(0);
    let before = per_minute((at_ack - at_open).max(0), acked_at - inc.opened_at);
    let after = per_minute(since, now - acked_at);
    (after > factor * before).then(|| {
        format!(
            "{since} events since the acknowledgement by {}: {after:.1}/min against {before:.1}/min before it (more than {factor}x)",
            inc.acknowledged_by.as_deref().unwrap_or("someone")
        )
    })
}

/// Sentry archived (ignored) the issue: muted, no more notifications, escalation stopped, with
/// Sentry's reason on the timeline.
pub(crate) fn sentry_muted(inc: &mut Incident, actor: &str, reason: String, now: i64) -> Effects {
    let mut fx = Effects::default();
    if matches!(inc.state(), IncidentState::Resolved | IncidentState::Muted) {
        fx.note(
            inc,
            now,
            TimelineKind::Note,
            Some(actor),
            Some(Via::Sentry),
            Some(reason),
        );
        return fx;
    }
    inc.state = IncidentState::Muted;
    inc.confirm_by = None;
    stop_timer(inc, &mut fx, now);
    fx.note(
        inc,
        now,
        TimelineKind::Muted,
        Some(actor),
        Some(Via::Sentry),
        Some(reason),
    );
    fx
}

/// Seer (Sentry's Autofix) reported on the issue: its root cause goes on the timeline and into
/// the post-mortem beside the one people record, its pull request onto the incident.
pub(crate) fn seer(inc: &mut Incident, facts: &SeerFacts, now: i64) -> Effects {
    let mut fx = Effects::default();
    let mut said = Vec::new();
    if let Some(cause) = &facts.root_cause {
        inc.seer_root_cause = Some(cause.clone());
        said.push(format!("Seer's root cause: {cause}"));
    }
    if let Some(solution) = &facts.solution {
        said.push(format!("Seer's solution: {solution}"));
    }
    if let Some(url) = &facts.pr_url {
        inc.seer_pr_url = Some(url.clone());
        said.push(format!("Seer opened a pull request: {url}"));
    }
    if said.is_empty() {
        said.push(format!("Seer: {}", facts.stage));
    }
    inc.updated_at = now;
    fx.note(
        inc,
        now,
        TimelineKind::Seer,
        Some("seer"),
        Some(Via::Sentry),
        Some(said.join("\n")),
    );
    fx
}

/// No notification of the episode was confirmed delivered by its `confirm_within` deadline:
/// mark it "delivery degraded" and page the escalation targets at once, saying why. `confirmed`
/// says whether one was. `None` when there is nothing to do (not triggered, no deadline due).
pub(crate) fn confirm_deadline(inc: &mut Incident, confirmed: bool, now: i64) -> Option<Effects> {
    let due = inc.confirm_by?;
    if due > now {
        return None;
    }
    inc.confirm_by = None;
    inc.updated_at = now;
    let mut fx = Effects::default();
    let open = inc.state() == IncidentState::Triggered
        && inc.storm_id.is_none()
        && inc.silenced_by.is_none();
    if confirmed || !open {
        return Some(fx);
    }
    let within = inc
        .frozen_policy()
        .confirm_within_ms
        .unwrap_or(now - inc.opened_at);
    let reason = format!(
        "delivery degraded: no notification was confirmed delivered within {}; paging the escalation targets early",
        duration(within)
    );
    inc.delivery_degraded_at = Some(now);
    // Only an escalation still to come is brought forward: one that fired already paged them.
    if inc.next_escalation_at.is_some() && !inc.frozen_policy().escalate_to.is_empty() {
        inc.next_escalation_at = Some(now);
        inc.escalation_version += 1;
        inc.escalation_reason = Some(reason.clone());
        fx.timers_changed = true;
    }
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some("paiid-alerts"),
        Some(Via::Scheduler),
        Some(reason),
    );
    Some(fx)
}

/// An `issue.resolved` webhook for an incident whose resolution we sent to Sentry
/// (`sentry_echo_episode`): Sentry telling us back what we did. Noted, and nothing else: no
/// second post-mortem, and a newer episode opened since is not resolved by the old echo.
/// `None` when it is not our echo (Sentry's own resolution: the usual resolve).
pub(crate) fn our_echo(inc: &mut Incident, now: i64) -> Option<Effects> {
    let ours = inc.sentry_echo_episode?;
    let current = inc.state() == IncidentState::Resolved && ours == inc.episode;
    if !current && ours >= inc.episode {
        return None;
    }
    inc.sentry_echo_episode = None;
    inc.updated_at = now;
    let mut fx = Effects::default();
    let detail = if current {
        "Sentry confirmed the resolution we sent".to_string()
    } else {
        format!(
            "Sentry confirmed our resolution of episode {ours}; episode {} stays open",
            inc.episode
        )
    };
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some("sentry"),
        Some(Via::Sentry),
        Some(detail),
    );
    Some(fx)
}
