use super::*;
use crate::domain::{Episode, EventId, IncidentId};
use crate::intake::sentry::parse;
use crate::test_support::{fixture, routing};

const MIN: i64 = 60_000;

fn critical() -> (RoutingConfig, Incident, Effects) {
    let cfg = routing();
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let class = Classification {
        severity: Severity::Critical,
        rule: Some("critical-production-errors".into()),
    };
    let key = facts.incident_key().unwrap();
    let (inc, fx) = open_new(&cfg, IncidentId(7), key, &facts, &class, EventId(1), 1_000);
    (cfg, inc, fx)
}

fn kinds(fx: &Effects) -> Vec<(String, NotificationKind)> {
    fx.deliveries
        .iter()
        .map(|d| (d.channel.clone(), d.kind))
        .collect()
}

#[test]
fn opening_notifies_primary_and_arms_the_timer() {
    let (_, inc, fx) = critical();
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::Opened)]
    );
    assert_eq!(inc.next_escalation_at, Some(1_000 + 15 * MIN));
    assert_eq!(
        inc.frozen_policy().escalate_to,
        vec!["pagerduty-oncall", "eng-manager-email"]
    );
    assert_eq!(fx.timeline[0].kind, TimelineKind::Opened);
}

#[test]
fn repeat_events_count_without_paging() {
    let (cfg, mut inc, _) = critical();
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let class = Classification {
        severity: Severity::Critical,
        rule: None,
    };
    for i in 0..999 {
        let fx = record_alert(&cfg, &mut inc, &facts, &class, EventId(2 + i), 2_000 + i);
        assert!(fx.deliveries.is_empty() && fx.timeline.is_empty());
    }
    assert_eq!(inc.event_count, 1000);
    assert_eq!(
        inc.next_escalation_at,
        Some(1_000 + 15 * MIN),
        "timer is not pushed back by repeats"
    );
}

#[test]
fn escalation_fires_once_and_not_after_ack() {
    let (cfg, mut inc, _) = critical();
    let due = inc.next_escalation_at.unwrap();
    let fx = fire_escalation(&mut inc, due, due + 5).expect("due");
    assert_eq!(
        kinds(&fx),
        vec![
            ("pagerduty-oncall".to_string(), NotificationKind::Escalation),
            (
                "eng-manager-email".to_string(),
                NotificationKind::Escalation
            )
        ]
    );
    assert!(
        fire_escalation(&mut inc, due, due + 6).is_none(),
        "second tick finds nothing due"
    );

    let (_, mut acked, _) = critical();
    let due = acked.next_escalation_at.unwrap();
    let (out, fx) = acknowledge(&cfg, &mut acked, &Actor::new("ana", Via::Link), due - 1);
    assert_eq!(out, AckOutcome::Acknowledged);
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::Acknowledged)]
    );
    assert!(
        fire_escalation(&mut acked, due, due).is_none(),
        "an ack before the deadline wins"
    );
}

#[test]
fn ack_after_escalation_tells_pagerduty_unless_it_came_from_pagerduty() {
    let (cfg, mut inc, _) = critical();
    let due = inc.next_escalation_at.unwrap();
    fire_escalation(&mut inc, due, due);
    let mut from_pd = inc.clone();
    let (_, fx) = acknowledge(&cfg, &mut inc, &Actor::new("ana", Via::Slack), due + MIN);
    assert_eq!(
        kinds(&fx),
        vec![
            ("slack-alerts".to_string(), NotificationKind::Acknowledged),
            (
                "pagerduty-oncall".to_string(),
                NotificationKind::Acknowledged
            )
        ]
    );
    let (_, fx) = acknowledge(
        &cfg,
        &mut from_pd,
        &Actor::new("bo", Via::Pagerduty),
        due + MIN,
    );
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::Acknowledged)]
    );
    let (again, fx) = acknowledge(
        &cfg,
        &mut from_pd,
        &Actor::new("cy", Via::Api),
        due + 2 * MIN,
    );
    assert_eq!(
        again,
        AckOutcome::AlreadyAcknowledged {
            by: Some("bo".into()),
            at: Some(due + MIN)
        }
    );
    assert!(fx.deliveries.is_empty());
}

#[test]
fn resolve_posts_post_mortem_and_reopen_starts_new_episode() {
    let (cfg, mut inc, _) = critical();
    let (out, fx) = resolve(&cfg, &mut inc, &Actor::new("sentry", Via::Sentry), 5 * MIN);
    assert_eq!(out, ResolveOutcome::Resolved);
    assert!(kinds(&fx).contains(&("slack-alerts".to_string(), NotificationKind::PostMortem)));
    assert_eq!(inc.next_escalation_at, None);

    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let class = Classification {
        severity: Severity::Critical,
        rule: None,
    };
    let fx = record_alert(&cfg, &mut inc, &facts, &class, EventId(99), 10 * MIN);
    assert_eq!(inc.episode, Episode(2));
    assert_eq!(inc.state(), IncidentState::Triggered);
    assert_eq!(inc.next_escalation_at, Some(10 * MIN + 15 * MIN));
    assert_eq!(inc.dedup_key(), "paiid-alerts-7-2");
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::Opened)]
    );
}

#[test]
fn severity_rise_refreezes_policy_and_notifies() {
    let cfg = routing();
    let facts = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let unclassified = Classification::unclassified();
    let (mut inc, fx) = open_new(
        &cfg,
        IncidentId(1),
        "k".into(),
        &facts,
        &unclassified,
        EventId(1),
        0,
    );
    assert!(fx.deliveries.is_empty(), "unclassified pages nobody");
    assert_eq!(inc.next_escalation_at, None);
    let high = Classification {
        severity: Severity::High,
        rule: Some("high-error-rate".into()),
    };
    let fx = record_alert(&cfg, &mut inc, &facts, &high, EventId(2), MIN);
    assert_eq!(inc.severity(), Severity::High);
    assert_eq!(
        kinds(&fx),
        vec![(
            "trading-ops-email".to_string(),
            NotificationKind::SeverityRaised
        )]
    );
    assert_eq!(inc.next_escalation_at, Some(MIN + 60 * MIN));
    assert_eq!(fx.timeline[0].kind, TimelineKind::SeverityRaised);
}

#[test]
fn severity_rise_never_postpones_a_running_escalation() {
    let cfg = routing();
    let facts = parse(Some("error"), &fixture("error.created.1.json")).unwrap();
    let high = Classification {
        severity: Severity::High,
        rule: Some("high-error-rate".into()),
    };
    let (mut inc, _) = open_new(
        &cfg,
        IncidentId(1),
        "k".into(),
        &facts,
        &high,
        EventId(1),
        0,
    );
    assert_eq!(inc.next_escalation_at, Some(60 * MIN));
    let critical = Classification {
        severity: Severity::Critical,
        rule: Some("critical-production-errors".into()),
    };
    // Critical at minute 50: its own 15 minutes would end at 65, after High's 60.
    let fx = record_alert(&cfg, &mut inc, &facts, &critical, EventId(2), 50 * MIN);
    assert_eq!(inc.severity(), Severity::Critical);
    assert_eq!(inc.next_escalation_at, Some(60 * MIN), "not postponed");
    assert!(fx.timers_changed);
    // The frozen policy is Critical's: the escalation at 60 pages PagerDuty.
    let fx = fire_escalation(&mut inc, 60 * MIN, 60 * MIN).unwrap();
    assert!(
        fx.deliveries
            .iter()
            .any(|d| d.channel == "pagerduty-oncall")
    );

    // Raised early instead (minute 5): Critical's window, 5 + 15, comes first.
    let (mut inc, _) = open_new(
        &cfg,
        IncidentId(2),
        "k2".into(),
        &facts,
        &high,
        EventId(3),
        0,
    );
    record_alert(&cfg, &mut inc, &facts, &critical, EventId(4), 5 * MIN);
    assert_eq!(inc.next_escalation_at, Some(20 * MIN));
}

#[test]
fn a_reopen_takes_the_new_alerts_severity() {
    let (cfg, mut inc, _) = critical();
    resolve(&cfg, &mut inc, &Actor::new("ana", Via::Api), 2 * MIN);
    // The same Sentry issue, seen again in staging: no rule pages for that.
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let fx = record_alert(
        &cfg,
        &mut inc,
        &facts,
        &Classification::unclassified(),
        EventId(9),
        3 * MIN,
    );
    assert_eq!(inc.episode, Episode(2));
    assert_eq!(inc.severity(), Severity::Unclassified);
    assert_eq!(inc.next_escalation_at, None, "nobody is paged");
    assert!(fx.deliveries.is_empty());
}

#[test]
fn muted_incidents_stop_escalating() {
    let (_, mut inc, _) = critical();
    let due = inc.next_escalation_at.unwrap();
    lifecycle::sentry_muted(&mut inc, "sentry", "archived in Sentry forever".into(), 10);
    assert_eq!(inc.next_escalation_at, None);
    assert!(fire_escalation(&mut inc, due, due).is_none());
}

// ---------- lifecycle: ack timeouts, re-pages, confirmation, the echo ----------

fn acknowledged_with(policy: impl FnOnce(&mut Policy)) -> (RoutingConfig, Incident) {
    let (cfg, mut inc, _) = critical();
    policy(&mut inc.policy);
    acknowledge(&cfg, &mut inc, &Actor::new("alice", Via::Api), 11 * MIN);
    (cfg, inc)
}

#[test]
fn an_acknowledgement_with_a_timeout_expires_once_and_restarts_the_window() {
    let (_, mut inc) = acknowledged_with(|p| p.ack_timeout_ms = Some(30 * MIN));
    let due = inc
        .next_escalation_at
        .expect("the acknowledgement's deadline");
    assert_eq!(due, 41 * MIN);
    // Not the escalation: an acknowledged incident's deadline is its expiry.
    assert!(fire_escalation(&mut inc, due, due).is_none());
    let mut inc2 = inc.clone();
    let fx = lifecycle::expire_acknowledgement(&mut inc2, due, due).unwrap();
    assert_eq!(inc2.state(), IncidentState::Triggered);
    assert_eq!(inc2.next_escalation_at, Some(due + 15 * MIN));
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::Retriggered)]
    );
    assert!(
        fx.deliveries[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("acknowledgement by alice expired after 30m")
    );
    // A second firing of the same deadline does nothing.
    assert!(lifecycle::expire_acknowledgement(&mut inc2, due, due).is_none());
}

#[test]
fn the_rate_since_an_acknowledgement_re_pages_only_above_the_factor_and_the_floor() {
    let (_, mut inc) = acknowledged_with(|p| p.reack_on_rate = Some(3.0));
    // One event in the 10 minutes before: 0.1 a minute.
    inc.first_seen = MIN;
    inc.event_count = 1;
    inc.ack_event_count = Some(1);
    inc.event_count += 4;
    assert_eq!(
        lifecycle::rate_outgrew_ack(&inc, 12 * MIN),
        None,
        "below the floor of five"
    );
    inc.event_count += 1;
    assert!(lifecycle::rate_outgrew_ack(&inc, 12 * MIN).is_some());
    // The same five events spread over an hour: 0.08 a minute, not worse.
    assert_eq!(lifecycle::rate_outgrew_ack(&inc, 71 * MIN), None);
}

#[test]
fn a_raise_while_acknowledged_pages_again_at_once() {
    let (cfg, mut inc) = acknowledged_with(|_| {});
    inc.severity = Severity::High;
    inc.policy = cfg.policy(Severity::High);
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let class = Classification {
        severity: Severity::Critical,
        rule: Some("critical-production-errors".into()),
    };
    let fx = record_alert(&cfg, &mut inc, &facts, &class, EventId(2), 12 * MIN);
    assert_eq!(inc.state(), IncidentState::Triggered);
    assert_eq!(inc.next_escalation_at, Some(27 * MIN));
    assert_eq!(
        kinds(&fx),
        vec![("slack-alerts".to_string(), NotificationKind::SeverityRaised)]
    );
    assert!(
        fx.deliveries[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("while acknowledged by alice")
    );
}

#[test]
fn the_confirmation_deadline_fails_over_only_without_a_confirmed_delivery() {
    let (_, mut inc, _) = critical();
    inc.confirm_by = Some(3 * MIN);
    assert!(
        lifecycle::confirm_deadline(&mut inc.clone(), false, 2 * MIN).is_none(),
        "not yet"
    );
    let mut confirmed = inc.clone();
    lifecycle::confirm_deadline(&mut confirmed, true, 3 * MIN).unwrap();
    assert_eq!(confirmed.confirm_by, None);
    assert_eq!(confirmed.delivery_degraded_at, None);
    assert_eq!(
        confirmed.next_escalation_at,
        Some(1_000 + 15 * MIN),
        "the regular window"
    );
    lifecycle::confirm_deadline(&mut inc, false, 3 * MIN).unwrap();
    assert_eq!(inc.delivery_degraded_at, Some(3 * MIN));
    assert_eq!(
        inc.next_escalation_at,
        Some(3 * MIN),
        "the escalation targets now"
    );
    let fx = fire_escalation(&mut inc, 3 * MIN, 3 * MIN).unwrap();
    assert!(
        fx.deliveries[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("delivery degraded")
    );
}

#[test]
fn our_resolves_echo_is_noted_and_changes_nothing() {
    let (cfg, mut inc, _) = critical();
    resolve(&cfg, &mut inc, &Actor::new("alice", Via::Api), 5 * MIN);
    // No sync channel in this file: nothing was sent to Sentry, so nothing is an echo.
    assert_eq!(inc.sentry_echo_episode, None);
    assert!(lifecycle::our_echo(&mut inc, 6 * MIN).is_none());
    inc.sentry_echo_episode = Some(inc.episode);
    let fx = lifecycle::our_echo(&mut inc, 6 * MIN).unwrap();
    assert!(fx.deliveries.is_empty());
    assert_eq!(inc.state(), IncidentState::Resolved);
    assert_eq!(inc.sentry_echo_episode, None, "an echo is heard once");
}
