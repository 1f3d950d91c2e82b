use super::*;
use crate::domain::{EventId, IncidentId};
use crate::domain::{IncidentState, NotificationKind};
use crate::intake::sentry::parse;
use crate::test_support::{fixture, resource_of, routing};

const NOW: i64 = 1_000_000;
const IDS: NextIds = NextIds {
    event: EventId(10),
    incident: IncidentId(3),
};

fn request(name: &str) -> IngestRequest {
    let body = fixture(name);
    let facts = parse(resource_of(name).as_deref(), &body).unwrap();
    IngestRequest {
        forced: None,
        dedup_key: crate::intake::dedup_key(&facts, &body),
        facts,
        stored_body: crate::store::body::StoredBody::compress(&Bytes::from(body.clone())),
        body: Bytes::from(body),
        request_id: None,
        source: "sentry",
    }
}

fn run(known: Known, reqs: &[IngestRequest]) -> Applied<'_> {
    let cfg = routing();
    let mut classifier = Classifier::new(cfg.rules.clone());
    apply(known, reqs, &cfg, &mut classifier, IDS, NOW)
}

#[test]
fn a_new_alert_opens_an_incident_with_the_next_ids_and_notifies() {
    let reqs = [request("event_alert.triggered.4.json")];
    let applied = run(Known::default(), &reqs);

    let [
        IngestOutcome::Accepted {
            event_id,
            incident_id,
            status,
            ..
        },
    ] = applied.outcomes.as_slice()
    else {
        panic!("{:?}", applied.outcomes);
    };
    assert_eq!(
        (*event_id, *incident_id),
        (EventId(10), Some(IncidentId(3)))
    );
    assert_eq!(*status, IngestStatus::Processed);
    assert_eq!(applied.incidents.len(), 1);
    assert_eq!(applied.incidents[0].id, IncidentId(3));
    assert_eq!(applied.incidents[0].state, IncidentState::Triggered);
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].incident_id, Some(IncidentId(3)));
    assert!(
        applied
            .effects
            .deliveries
            .iter()
            .any(|d| d.kind == NotificationKind::Opened),
        "{:?}",
        applied.effects.deliveries
    );
    assert_eq!(
        applied.next,
        NextIds {
            event: EventId(11),
            incident: IncidentId(4)
        }
    );
}

#[test]
fn a_retry_in_the_same_batch_is_a_duplicate_of_the_first() {
    let reqs = [
        request("event_alert.triggered.4.json"),
        request("event_alert.triggered.4.json"),
    ];
    let applied = run(Known::default(), &reqs);

    assert!(matches!(
        applied.outcomes[0],
        IngestOutcome::Accepted {
            event_id: EventId(10),
            ..
        }
    ));
    assert_eq!(
        applied.outcomes[1],
        IngestOutcome::Duplicate {
            event_id: EventId(10)
        }
    );
    assert_eq!(applied.events.len(), 1, "a retry stores no second event");
    assert_eq!(applied.incidents.len(), 1);
    assert_eq!(applied.next.event, EventId(11));
}

#[test]
fn a_key_already_stored_is_a_duplicate_of_the_stored_event() {
    let reqs = [request("event_alert.triggered.4.json")];
    let known = Known {
        stored: HashMap::from([(reqs[0].dedup_key.clone(), EventId(7))]),
        ..Known::default()
    };
    let applied = run(known, &reqs);

    assert_eq!(
        applied.outcomes,
        [IngestOutcome::Duplicate {
            event_id: EventId(7)
        }]
    );
    assert!(applied.events.is_empty() && applied.incidents.is_empty());
    assert_eq!(applied.next, IDS);
}

#[test]
fn a_resolve_for_an_unknown_incident_is_stored_and_changes_nothing() {
    let reqs = [request("issue.resolved.1.json")];
    let applied = run(Known::default(), &reqs);

    let [
        IngestOutcome::Accepted {
            incident_id,
            status,
            ..
        },
    ] = applied.outcomes.as_slice()
    else {
        panic!("{:?}", applied.outcomes);
    };
    assert_eq!(*status, IngestStatus::NoIncident);
    assert_eq!(*incident_id, None);
    assert!(applied.incidents.is_empty());
    assert!(applied.effects.deliveries.is_empty() && applied.effects.timeline.is_empty());
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].incident_id, None);
    assert_eq!(applied.next.incident, IDS.incident);
}
