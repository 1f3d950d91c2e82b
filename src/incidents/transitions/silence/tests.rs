use std::collections::BTreeMap;

use super::*;
use crate::classification::Classification;
use crate::domain::{EventId, IncidentId, Matchers, Severity, TitleRegex};
use crate::incidents::transitions::{open_new, record_alert};
use crate::intake::sentry::parse;
use crate::test_support::{fixture, routing};

const MIN: i64 = 60_000;

fn silence(id: i64, matchers: Matchers, let_through: Vec<Severity>) -> Silence {
    Silence {
        id: SilenceId(id),
        matchers,
        starts_at: 0,
        ends_at: 60 * MIN,
        author: "ana".into(),
        comment: String::new(),
        let_through,
        expired_at: None,
        created_at: 0,
    }
}

fn by_title() -> Matchers {
    Matchers {
        title_regex: Some(TitleRegex::new("example Python").unwrap()),
        ..Matchers::default()
    }
}

/// The fixture's alert opened at `now` as `severity`, with the silences applied.
fn open(severity: Severity, silences: &[Silence], now: i64) -> (Incident, Effects) {
    let cfg = routing();
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let class = Classification {
        severity,
        rule: Some("critical-production-errors".into()),
    };
    let key = facts.incident_key().unwrap();
    let (mut inc, mut fx) = open_new(&cfg, IncidentId(7), key, &facts, &class, EventId(1), now);
    hold_if_silenced(&mut inc, &mut fx, silences, &facts.tags, &cfg, now);
    (inc, fx)
}

#[test]
fn a_held_alert_queues_nothing_and_has_no_timer() {
    let (inc, fx) = open(Severity::Critical, &[silence(3, by_title(), vec![])], MIN);
    assert!(fx.deliveries.is_empty());
    assert_eq!(inc.next_escalation_at, None);
    assert_eq!(inc.silenced_by, Some(SilenceId(3)));
    let note = fx.timeline.last().unwrap();
    assert_eq!(note.via, Some(Via::Silence));
    assert!(
        note.detail
            .as_deref()
            .unwrap()
            .starts_with("silenced by #3")
    );
}

#[test]
fn tags_of_the_alert_are_matched() {
    let tag = |v: &str| Matchers {
        tags: BTreeMap::from([("server_name".to_string(), v.to_string())]),
        ..Matchers::default()
    };
    let (held, _) = open(
        Severity::Critical,
        &[silence(1, tag("web01.example.org"), vec![])],
        MIN,
    );
    assert_eq!(held.silenced_by, Some(SilenceId(1)));
    let (free, fx) = open(Severity::Critical, &[silence(1, tag("web02"), vec![])], MIN);
    assert_eq!(free.silenced_by, None);
    assert_eq!(fx.deliveries.len(), 1);
}

#[test]
fn outside_its_window_a_silence_holds_nothing() {
    let (inc, fx) = open(
        Severity::Critical,
        &[silence(3, by_title(), vec![])],
        60 * MIN,
    );
    assert_eq!(inc.silenced_by, None);
    assert_eq!(fx.deliveries.len(), 1);
    assert!(inc.next_escalation_at.is_some());
}

#[test]
fn a_raise_to_a_let_through_severity_pages_and_arms_the_timer() {
    let silences = [silence(3, by_title(), vec![Severity::Critical])];
    let (mut inc, _) = open(Severity::High, &silences, MIN);
    assert_eq!(inc.silenced_by, Some(SilenceId(3)));
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
    let mut fx = record_alert(&cfg, &mut inc, &facts, &class, EventId(2), 2 * MIN);
    hold_if_silenced(
        &mut inc,
        &mut fx,
        &silences,
        &facts.tags,
        &routing(),
        2 * MIN,
    );
    assert_eq!(inc.silenced_by, None);
    assert_eq!(fx.deliveries.len(), 1, "{fx:?}");
    assert_eq!(inc.next_escalation_at, Some(2 * MIN + 15 * MIN));
}

#[test]
fn release_notifies_a_triggered_incident_and_starts_its_window_then() {
    let (mut inc, _) = open(Severity::Critical, &[silence(3, by_title(), vec![])], MIN);
    let other = release(&mut inc, SilenceId(4), &[], &[], &routing(), 60 * MIN);
    assert!(other.deliveries.is_empty(), "not held by that one");
    assert_eq!(inc.silenced_by, Some(SilenceId(3)));
    let fx = release(&mut inc, SilenceId(3), &[], &[], &routing(), 60 * MIN);
    assert_eq!(fx.deliveries.len(), 1);
    assert_eq!(fx.deliveries[0].kind, NotificationKind::Opened);
    assert_eq!(inc.next_escalation_at, Some(60 * MIN + 15 * MIN));
    assert_eq!(inc.silenced_by, None);
    let again = release(&mut inc, SilenceId(3), &[], &[], &routing(), 61 * MIN);
    assert!(
        again.deliveries.is_empty() && again.timeline.is_empty(),
        "once"
    );
}

#[test]
fn release_of_an_acknowledged_incident_only_lets_it_go() {
    let (mut inc, _) = open(Severity::Critical, &[silence(3, by_title(), vec![])], MIN);
    inc.state = IncidentState::Acknowledged;
    let fx = release(&mut inc, SilenceId(3), &[], &[], &routing(), 60 * MIN);
    assert!(fx.deliveries.is_empty());
    assert_eq!(inc.silenced_by, None);
    assert_eq!(inc.next_escalation_at, None);
}

#[test]
fn a_new_silence_holds_an_open_triggered_incident_and_stops_its_timer() {
    let (mut inc, _) = open(Severity::Critical, &[], MIN);
    assert!(inc.next_escalation_at.is_some());
    let mut s = silence(5, by_title(), vec![]);
    s.ends_at = 120 * MIN;
    let fx = hold_open(&mut inc, &s, &[], &routing(), 2 * MIN);
    assert_eq!(inc.silenced_by, Some(SilenceId(5)));
    assert_eq!(inc.next_escalation_at, None);
    assert!(fx.timers_changed);
    let unmatched = silence(
        6,
        Matchers {
            project: Some("other".into()),
            ..Matchers::default()
        },
        vec![],
    );
    let (mut free, _) = open(Severity::Critical, &[], MIN);
    assert!(
        hold_open(&mut free, &unmatched, &[], &routing(), 2 * MIN)
            .timeline
            .is_empty()
    );
    assert_eq!(free.silenced_by, None);
}

#[test]
fn an_incident_held_while_paging_gets_its_deadline_back_not_a_second_page() {
    // Opened at 1 min: due at 16 min. Held from 2 min.
    let (mut inc, _) = open(Severity::Critical, &[], MIN);
    let s = silence(5, by_title(), vec![]);
    hold_open(&mut inc, &s, &[], &routing(), 2 * MIN);
    assert_eq!(inc.held_escalation_at, Some(16 * MIN));

    // Released at 10 min: the deadline is still ahead.
    let mut early = inc.clone();
    let fx = release(&mut early, SilenceId(5), &[], &[], &routing(), 10 * MIN);
    assert!(fx.deliveries.is_empty(), "not paged again");
    assert_eq!(early.next_escalation_at, Some(16 * MIN));
    assert_eq!(early.held_escalation_at, None);

    // Released at 60 min: it passed while held, so it is due now.
    let fx = release(&mut inc, SilenceId(5), &[], &[], &routing(), 60 * MIN);
    assert!(fx.deliveries.is_empty());
    assert_eq!(inc.next_escalation_at, Some(60 * MIN));
    assert!(fx.timers_changed);
}

#[test]
fn an_incident_that_notifies_nobody_is_released_without_claiming_a_page() {
    let (mut inc, _) = open(Severity::Unclassified, &[], MIN);
    assert_eq!(inc.next_escalation_at, None);
    let s = silence(5, by_title(), vec![]);
    let held = hold_open(&mut inc, &s, &[], &routing(), 2 * MIN);
    let note = held.timeline[0].detail.clone().unwrap_or_default();
    assert!(!note.contains("escalation"), "{note}");
    let fx = release(&mut inc, SilenceId(5), &[], &[], &routing(), 60 * MIN);
    assert!(fx.deliveries.is_empty());
    let note = fx.timeline[0].detail.clone().unwrap_or_default();
    assert!(note.contains("notifies nobody: nothing sent"), "{note}");
    assert!(!note.contains("notifying now"), "{note}");
}

#[test]
fn an_acknowledgement_expiring_under_a_silence_pages_when_the_silence_ends() {
    let (mut inc, _) = open(Severity::Critical, &[], MIN);
    inc.policy.ack_timeout_ms = Some(10 * MIN);
    let cfg = routing();
    crate::incidents::transitions::acknowledge(
        &cfg,
        &mut inc,
        &crate::incidents::transitions::Actor::new("alice", Via::Api),
        2 * MIN,
    );
    let expires = inc.next_escalation_at.unwrap();
    hold_open(
        &mut inc,
        &silence(5, by_title(), vec![]),
        &[],
        &cfg,
        3 * MIN,
    );
    assert_eq!(inc.silenced_by, Some(SilenceId(5)));
    assert_eq!(
        inc.next_escalation_at,
        Some(expires),
        "its acknowledgement still ends"
    );
    let fx = crate::incidents::transitions::lifecycle::expire_acknowledgement(
        &mut inc, expires, expires,
    )
    .unwrap();
    assert_eq!(inc.state(), IncidentState::Triggered);
    assert!(
        fx.deliveries.is_empty(),
        "held: nobody re-paged during the silence"
    );
    let fx = release(&mut inc, SilenceId(5), &[], &[], &cfg, 60 * MIN);
    assert!(!fx.deliveries.is_empty(), "told when the silence ends");
    assert!(inc.next_escalation_at.is_some());
}
