use super::*;
use crate::classification::Classification;
use crate::domain::{Episode, EventId};
use crate::incidents::transitions::{acknowledge, open_new, record_alert, resolve};
use crate::intake::sentry::parse;
use crate::test_support::{fixture, routing};

const MIN: i64 = 60_000;

fn class(severity: Severity) -> Classification {
    Classification {
        severity,
        rule: None,
    }
}

/// An incident of `severity` for a distinct Sentry issue `n`, opened at `at`.
fn issue(cfg: &RoutingConfig, n: i64, severity: Severity, at: i64) -> (Incident, Effects) {
    let mut facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    facts.issue_id = Some(format!("issue-{n}"));
    let key = facts.incident_key().unwrap();
    open_new(
        cfg,
        IncidentId(n),
        key,
        &facts,
        &class(severity),
        EventId(n),
        at,
    )
}

fn actor() -> Actor {
    Actor::new("ana", Via::Api)
}

#[test]
fn a_storm_pages_once_for_its_members_no_later_than_the_first_would_have() {
    let cfg = routing();
    let (mut first, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    let (mut second, _) = issue(&cfg, 2, Severity::Critical, 5_000);
    let (mut storm, fx) = form(&cfg, IncidentId(100), Severity::Critical, 9_000);
    assert_eq!(storm.kind, IncidentKind::Storm);
    assert_eq!(storm.incident_key, "storm:critical:9000:100");
    let sent: Vec<_> = fx
        .deliveries
        .iter()
        .map(|d| (d.channel.as_str(), d.kind))
        .collect();
    assert_eq!(
        sent,
        vec![("slack-alerts", NotificationKind::Opened)],
        "one card"
    );
    assert_eq!(storm.next_escalation_at, Some(9_000 + 15 * MIN));

    let fx = join(&mut storm, &mut second, false, 9_000);
    assert!(fx.deliveries.is_empty());
    assert!(fx.timers_changed);
    join(&mut storm, &mut first, false, 9_000);
    assert_eq!(
        storm.next_escalation_at,
        Some(1_000 + 15 * MIN),
        "the first's deadline"
    );
    assert_eq!(first.next_escalation_at, None, "the storm escalates for it");
    assert_eq!(first.storm_id, Some(IncidentId(100)));
    assert_eq!(first.storm_join, Some(StormJoin::Later));
    assert_eq!(storm.event_count, 2, "its count is its members");
    let project = first.project.clone().unwrap();
    assert_eq!(
        storm.title,
        format!("Storm: 2 critical incidents in {project}")
    );
}

#[test]
fn members_of_several_projects_give_a_title_without_one() {
    let cfg = routing();
    let (mut a, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    let (mut b, _) = issue(&cfg, 2, Severity::Critical, 1_000);
    b.project = Some("other".into());
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 1_000);
    join(&mut storm, &mut a, true, 1_000);
    join(&mut storm, &mut b, true, 1_000);
    assert_eq!(storm.title, "Storm: 2 critical incidents");
    assert_eq!(storm.project, None);
}

#[test]
fn a_member_told_nothing_itself_gets_no_follow_ups_one_told_earlier_does() {
    let cfg = routing();
    let (mut quiet, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    let (mut told, _) = issue(&cfg, 2, Severity::Critical, 1_000);
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 2_000);
    join(&mut storm, &mut quiet, true, 2_000);
    join(&mut storm, &mut told, false, 2_000);
    assert!(told_nothing(&quiet) && !told_nothing(&told));

    let (_, fx) = acknowledge(&cfg, &mut quiet, &actor(), 3_000);
    assert!(fx.deliveries.is_empty(), "{:?}", fx.deliveries);
    let (_, fx) = resolve(&cfg, &mut quiet, &actor(), 4_000);
    assert!(
        fx.deliveries.is_empty(),
        "no update, no post-mortem: {:?}",
        fx.deliveries
    );

    let (_, fx) = acknowledge(&cfg, &mut told, &actor(), 3_000);
    let kinds: Vec<_> = fx.deliveries.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![NotificationKind::Acknowledged],
        "its own message updated"
    );
}

#[test]
fn a_member_raised_above_its_storm_leaves_and_pages_alone() {
    let cfg = routing();
    let (mut m, _) = issue(&cfg, 1, Severity::High, 1_000);
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::High, 1_000);
    join(&mut storm, &mut m, true, 1_000);
    assert_eq!(m.next_escalation_at, None);

    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let fx = record_alert(
        &cfg,
        &mut m,
        &facts,
        &class(Severity::Critical),
        EventId(9),
        2_000,
    );
    assert_eq!(m.storm_id, None, "left its storm");
    assert_eq!(m.storm_join, None);
    let sent: Vec<_> = fx
        .deliveries
        .iter()
        .map(|d| (d.channel.as_str(), d.kind))
        .collect();
    assert_eq!(
        sent,
        vec![("slack-alerts", NotificationKind::SeverityRaised)]
    );
    assert_eq!(
        m.next_escalation_at,
        Some(2_000 + 15 * MIN),
        "its own escalation"
    );
    assert!(
        fx.timeline
            .iter()
            .any(|t| t.detail.as_deref() == Some("left storm #100: raised to critical"))
    );

    let fx = member_left(&mut storm, m.id, 2_000);
    assert_eq!(storm.event_count, 0);
    assert_eq!(fx.timeline.len(), 1);
}

#[test]
fn a_member_of_the_same_severity_stays() {
    let cfg = routing();
    let (mut m, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 1_000);
    join(&mut storm, &mut m, true, 1_000);
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    let fx = record_alert(
        &cfg,
        &mut m,
        &facts,
        &class(Severity::Critical),
        EventId(9),
        2_000,
    );
    assert_eq!(m.storm_id, Some(storm.id));
    assert!(fx.deliveries.is_empty());
    assert_eq!(m.event_count, 2);
}

#[test]
fn a_member_opened_again_leaves_its_storm() {
    let cfg = routing();
    let (mut m, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 1_000);
    join(&mut storm, &mut m, true, 1_000);
    resolve(&cfg, &mut m, &actor(), 2_000);
    let facts = parse(
        Some("event_alert"),
        &fixture("event_alert.triggered.4.json"),
    )
    .unwrap();
    record_alert(
        &cfg,
        &mut m,
        &facts,
        &class(Severity::Critical),
        EventId(9),
        3_000,
    );
    assert_eq!(m.episode, Episode(2));
    assert_eq!(m.storm_id, None);
    assert!(m.next_escalation_at.is_some(), "pages on its own");
}

#[test]
fn who_may_join_and_which_storm_takes_members() {
    let cfg = routing();
    let s = StormSettings::default();
    let (mut m, _) = issue(&cfg, 1, Severity::Critical, 1_000);
    assert!(may_join(&m));
    m.escalation_step = 1;
    assert!(!may_join(&m), "escalated on its own already");
    let (mut drill, mut fx) = issue(&cfg, 3, Severity::Critical, 1_000);
    crate::incidents::transitions::disable_escalation(&mut drill, &mut fx, 1_000);
    assert!(!may_join(&drill), "a test alert");
    let (low, _) = issue(&cfg, 2, Severity::Low, 1_000);
    assert!(!may_join(&low), "pages nobody");

    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 1_000);
    assert!(joinable(&storm, Severity::Critical, &s, 1_000 + 2 * MIN));
    assert!(
        !joinable(&storm, Severity::Critical, &s, 1_001 + 2 * MIN),
        "window over"
    );
    assert!(!joinable(&storm, Severity::High, &s, 1_000));
    let mut paged = storm.clone();
    paged.escalation_step = 1;
    paged.next_escalation_at = None;
    assert!(
        !joinable(&paged, Severity::Critical, &s, 2_000),
        "it paged already: a latecomer would page it again"
    );
    let mut held = storm.clone();
    held.silenced_by = Some(crate::domain::SilenceId(7));
    assert!(
        !joinable(&held, Severity::Critical, &s, 2_000),
        "a silence holds it: it would hide a newcomer the silence does not cover"
    );
    acknowledge(&cfg, &mut storm, &actor(), 2_000);
    assert!(
        !joinable(&storm, Severity::Critical, &s, 2_000),
        "acknowledged"
    );
}

#[test]
fn a_storm_closes_itself_when_its_last_member_is_resolved() {
    let cfg = routing();
    let (mut storm, _) = form(&cfg, IncidentId(100), Severity::Critical, 1_000);
    assert!(close_if_done(&cfg, &mut storm, 1, Via::Api, 2_000).is_none());
    let fx = close_if_done(&cfg, &mut storm, 0, Via::Api, 2_000).expect("closed");
    assert_eq!(storm.state(), IncidentState::Resolved);
    assert_eq!(storm.resolved_by.as_deref(), Some("paiid-alerts"));
    assert!(
        fx.deliveries
            .iter()
            .any(|d| d.kind == NotificationKind::PostMortem)
    );
    assert!(
        close_if_done(&cfg, &mut storm, 0, Via::Api, 3_000).is_none(),
        "once"
    );
}
