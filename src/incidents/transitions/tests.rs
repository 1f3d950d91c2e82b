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
