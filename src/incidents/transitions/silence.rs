//! What a silence does to an incident: holds the notifications and the escalation of a new
//! alert, lets a listed severity through, and releases the incident when the silence ends.

use crate::domain::{
    EnvironmentNames, NotificationKind, Silence, SilenceId, SilenceSubject, TimelineKind, Via,
    holding,
};

use super::{Effects, Incident, IncidentState, start_episode_notifications};

/// `2026-12-05 18:00 UTC`, for timeline notes.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A timeline note written by the silence machinery (who: the service, via: a silence).
fn silence_note(fx: &mut Effects, inc: &Incident, now: i64, detail: String) {
    fx.note(
        inc,
        now,
        TimelineKind::Note,
        Some("paiid-alerts"),
        Some(Via::Silence),
        Some(detail),
    );
}

/// Notifications that tell people of a new alert: what a silence holds back. Follow-ups of
/// something people did (acknowledged, resolved) are not alerts.
fn is_alert(kind: NotificationKind) -> bool {
    matches!(
        kind,
        NotificationKind::Opened | NotificationKind::SeverityRaised | NotificationKind::Retriggered
    )
}

/// After an alert was applied to `inc` (opened, counted, raised, reopened) with effects `fx`:
/// when the alert notifies someone and an active silence holds it, drop those notifications,
/// stop the escalation timer and note which silence held it. When it notifies someone and no
/// silence holds it (a `let_through` severity, or the silence no longer matches), it pages as
/// usual and the incident is no longer held.
pub(crate) fn hold_if_silenced(
    inc: &mut Incident,
    fx: &mut Effects,
    silences: &[Silence],
    tags: &[(String, String)],
    environments: &dyn EnvironmentNames,
    now: i64,
) {
    let id = inc.id;
    let alerts = fx
        .deliveries
        .iter()
        .any(|d| d.incident_id == id && is_alert(d.kind));
    // A new episode starts with no hold; one that notifies nobody keeps what it had.
    let timer_started = fx.timers_changed && inc.next_escalation_at.is_some();
    if !alerts && !timer_started {
        return;
    }
    let subject = SilenceSubject {
        project: inc.project.as_deref(),
        environment: inc.environment.as_deref(),
        environments,
        rule: inc.rule.as_deref(),
        severity: inc.severity,
        level: inc.level.as_deref(),
        tags,
        title: &inc.title,
    };
    match holding(silences, &subject, now) {
        Some(silence) => {
            fx.deliveries
                .retain(|d| !(d.incident_id == id && is_alert(d.kind)));
            if inc.next_escalation_at.is_some() {
                inc.next_escalation_at = None;
                inc.escalation_version += 1;
                fx.timers_changed = true;
            }
            let first = inc.silenced_by != Some(silence.id);
            inc.silenced_by = Some(silence.id);
            if first {
                silence_note(
                    fx,
                    inc,
                    now,
                    format!(
                        "silenced by #{}: {} (until {}, by {})",
                        silence.id,
                        silence.matchers.describe(),
                        utc(silence.effective_end()),
                        silence.author
                    ),
                );
            }
        }
        None => {
            if inc.silenced_by.is_none() && alerts {
                // Not held before: the silence still explains why this pages (or people would
                // wonder why a silenced alert reached them).
                if let Some(by) = silences
                    .iter()
                    .filter(|s| s.matches(&subject, now) && s.lets_through(inc.severity))
                    .min_by_key(|s| s.id)
                {
                    let raised = fx
                        .deliveries
                        .iter()
                        .any(|d| d.incident_id == id && d.kind == NotificationKind::SeverityRaised);
                    let what = if raised {
                        format!("severity rose to {}", inc.severity)
                    } else {
                        format!("severity {}", inc.severity)
                    };
                    silence_note(
                        fx,
                        inc,
                        now,
                        format!(
                            "let through by silence #{}: {what}: notifying as usual",
                            by.id
                        ),
                    );
                }
            }
            if let Some(held_by) = inc.silenced_by.take() {
                // It pages anew now: a deadline kept from before the hold is superseded.
                inc.held_escalation_at = None;
                let why = match silences
                    .iter()
                    .find(|s| s.id == held_by && s.matches(&subject, now))
                {
                    Some(_) => format!("silence #{held_by} lets {} through", inc.severity),
                    None => format!("silence #{held_by} no longer matches"),
                };
                silence_note(fx, inc, now, format!("{why}: notifying as usual"));
            }
        }
    }
}

/// The silence that held `inc` ended (its end passed, or it was expired): an incident still
/// triggered that paged before the silence held it gets its kept escalation deadline back (or
/// escalates now if it passed); one held from its first alert is notified now and its
/// escalation window starts now. Either way not while another silence in
/// `active` holds it (a silence extended by creating a new one and expiring the old must not
/// page in between); any other is only let go. `tags` are its last event's.
pub(crate) fn release(
    inc: &mut Incident,
    silence: SilenceId,
    active: &[Silence],
    tags: &[(String, String)],
    environments: &dyn EnvironmentNames,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    if inc.silenced_by != Some(silence) {
        return fx;
    }
    inc.silenced_by = None;
    inc.updated_at = now;
    if inc.state() != IncidentState::Triggered {
        inc.held_escalation_at = None;
        return fx;
    }
    let subject = SilenceSubject {
        project: inc.project.as_deref(),
        environment: inc.environment.as_deref(),
        environments,
        rule: inc.rule.as_deref(),
        severity: inc.severity,
        level: inc.level.as_deref(),
        tags,
        title: &inc.title,
    };
    if let Some(next) = holding(active, &subject, now) {
        inc.silenced_by = Some(next.id);
        silence_note(
            &mut fx,
            inc,
            now,
            format!(
                "silence #{silence} ended; still silenced by #{} (until {})",
                next.id,
                utc(next.effective_end())
            ),
        );
        return fx;
    }
    inc.escalation_version += 1;
    if let Some(due) = inc.held_escalation_at.take() {
        // It paged before the silence held it: people know of it, so no second "opened"; its
        // escalation keeps the deadline it had, or fires now if that passed while held.
        inc.next_escalation_at = Some(due.max(now));
        fx.timers_changed = true;
        let detail = if due > now {
            format!(
                "silence #{silence} ended; still unacknowledged (paged before the silence): escalation still due at {}",
                utc(due)
            )
        } else {
            format!(
                "silence #{silence} ended; still unacknowledged: its escalation was due at {}, which passed while silenced: escalating now",
                utc(due)
            )
        };
        silence_note(&mut fx, inc, now, detail);
        return fx;
    }
    let policy = inc.frozen_policy();
    start_episode_notifications(inc, &policy, now, NotificationKind::Opened, &mut fx);
    let told = fx.deliveries.iter().any(|d| d.incident_id == inc.id);
    let detail = match (told, inc.next_escalation_at) {
        (false, None) => format!(
            "silence #{silence} ended; its {} policy notifies nobody: nothing sent",
            inc.severity
        ),
        (true, None) => format!(
            "silence #{silence} ended while still unacknowledged: notifying now (its policy does not escalate)"
        ),
        (true, Some(due)) => format!(
            "silence #{silence} ended while still unacknowledged: notifying now; escalation at {}",
            utc(due)
        ),
        (false, Some(due)) => format!(
            "silence #{silence} ended while still unacknowledged: its policy notifies nobody first; escalation at {}",
            utc(due)
        ),
    };
    silence_note(&mut fx, inc, now, detail);
    fx
}

/// A silence was just created while `inc` is open: a triggered incident it holds (and no other
/// silence holds yet) stops escalating until the silence ends; its running deadline is kept
/// (`held_escalation_at`) for [`release`], which resumes it rather than paging again. An
/// acknowledged one is only marked held: people are on it, but should its acknowledgement expire
/// meanwhile (`ack_timeout`), the re-page waits for the end of the silence like any alert.
pub(crate) fn hold_open(
    inc: &mut Incident,
    silence: &Silence,
    tags: &[(String, String)],
    environments: &dyn EnvironmentNames,
    now: i64,
) -> Effects {
    let mut fx = Effects::default();
    let open = matches!(
        inc.state(),
        IncidentState::Triggered | IncidentState::Acknowledged
    );
    if !open || inc.silenced_by.is_some() {
        return fx;
    }
    let subject = SilenceSubject {
        project: inc.project.as_deref(),
        environment: inc.environment.as_deref(),
        environments,
        rule: inc.rule.as_deref(),
        severity: inc.severity,
        level: inc.level.as_deref(),
        tags,
        title: &inc.title,
    };
    if !silence.holds(&subject, now) {
        return fx;
    }
    inc.silenced_by = Some(silence.id);
    inc.updated_at = now;
    if inc.state() == IncidentState::Acknowledged {
        let detail = format!(
            "silenced by #{} while acknowledged, until {} (by {})",
            silence.id,
            utc(silence.effective_end()),
            silence.author
        );
        silence_note(&mut fx, inc, now, detail);
        return fx;
    }
    let paused = inc.next_escalation_at.take();
    let detail = match paused {
        Some(due) => {
            // It is paging: the deadline is kept for when the silence ends ([`release`]).
            inc.held_escalation_at = Some(due);
            inc.escalation_version += 1;
            fx.timers_changed = true;
            format!(
                "silenced by #{} while open: its escalation (due {}) waits until {} (by {})",
                silence.id,
                utc(due),
                utc(silence.effective_end()),
                silence.author
            )
        }
        // Nothing was going to escalate: say only what the silence does.
        None => format!(
            "silenced by #{} while open, until {} (by {})",
            silence.id,
            utc(silence.effective_end()),
            silence.author
        ),
    };
    silence_note(&mut fx, inc, now, detail);
    fx
}

#[cfg(test)]
mod tests;
