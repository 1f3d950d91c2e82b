use super::*;

#[test]
fn every_word_reads_back_as_its_variant() {
    for s in Severity::ALL {
        assert_eq!(s.as_str().parse::<Severity>(), Ok(*s));
    }
    for s in IncidentState::ALL {
        assert_eq!(s.as_str().parse::<IncidentState>(), Ok(*s));
    }
    for k in NotificationKind::ALL {
        assert_eq!(k.as_str().parse::<NotificationKind>(), Ok(*k));
        assert_eq!(
            k.as_str().parse::<DeliveryKind>(),
            Ok(DeliveryKind::Notification(*k))
        );
    }
    for k in NoticeKind::ALL {
        assert_eq!(
            k.as_str().parse::<DeliveryKind>(),
            Ok(DeliveryKind::Notice(*k))
        );
    }
    for s in DeliveryStatus::ALL {
        assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(*s));
    }
    for v in Via::ALL {
        assert_eq!(v.as_str().parse::<Via>(), Ok(*v));
    }
    for c in ChannelKind::ALL {
        assert_eq!(c.as_str().parse::<ChannelKind>(), Ok(*c));
    }
}

#[test]
fn the_stored_words_are_the_words_written_before_the_types() {
    // migrations/0001_init.sql documents these; rows written before the enums existed hold them.
    let states: Vec<&str> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(states, ["triggered", "acknowledged", "resolved", "muted"]);
    let statuses: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["pending", "sending", "delivered", "failed", "dead"]
    );
    assert_eq!(NotificationKind::PostMortem.as_str(), "post_mortem");
    assert_eq!(NotificationKind::SeverityRaised.as_str(), "severity_raised");
    assert_eq!(NotificationKind::CountUpdate.as_str(), "count_update");
    assert_eq!(NoticeKind::UnreadablePayload.as_str(), "unreadable_payload");
    // serde (the API, the stored policy) writes the same words.
    assert_eq!(
        serde_json::to_string(&NotificationKind::PostMortem).unwrap(),
        "\"post_mortem\""
    );
    assert_eq!(
        serde_json::to_string(&IncidentState::Acknowledged).unwrap(),
        "\"acknowledged\""
    );
}

#[test]
fn an_unknown_word_is_an_error_naming_what_was_read() {
    let e = "snoozed".parse::<IncidentState>().unwrap_err();
    assert_eq!(e.what, "incident state");
    assert_eq!(
        e.to_string(),
        "unknown incident state `snoozed` (expected one of: triggered, acknowledged, resolved, muted)"
    );
    assert!("Critical".parse::<Severity>().is_err(), "words are exact");
    assert_eq!(
        "nope".parse::<DeliveryKind>().unwrap_err().what,
        "delivery kind"
    );
}

#[test]
fn a_policy_that_is_not_a_policy_is_an_error_not_the_default() {
    let p = Policy {
        notify: vec!["slack-alerts".into()],
        escalate_after_ms: Some(900_000),
        escalate_to: vec!["pagerduty-oncall".into()],
        digest: Some(DigestCadence::Daily),
        ack_timeout_ms: Some(1_800_000),
        reack_on_rate: Some(3.0),
        confirm_within_ms: None,
    };
    assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    assert!(Policy::from_json("{}").is_err(), "the column default");
    assert!(Policy::from_json("not json").is_err());
    assert!(Policy::from_json(r#"{"notify": "slack-alerts"}"#).is_err());
}

#[test]
fn ids_are_stored_and_shown_as_their_number() {
    assert_eq!(IncidentId(7).to_string(), "7");
    assert_eq!(serde_json::to_string(&Episode(2)).unwrap(), "2");
    assert_eq!("42".parse::<DeliveryId>(), Ok(DeliveryId(42)));
    assert_eq!(serde_json::from_str::<EventId>("9").unwrap(), EventId(9));
    assert_eq!(IncidentId(7).next(), IncidentId(8));
}

#[test]
fn dedup_key_round_trips_typed_ids() {
    let key = dedup_key(IncidentId(42), Episode(3));
    assert_eq!(key, "paiid-alerts-42-3");
    assert_eq!(parse_dedup_key(&key), Some((IncidentId(42), Episode(3))));
    assert_eq!(parse_dedup_key("paiid-alerts-42"), None);
    assert_eq!(parse_dedup_key("paiid-alerts-x-1"), None);
}

#[test]
fn ingest_status_words_and_answers() {
    for s in IngestStatus::ALL {
        assert_eq!(s.as_str().parse::<IngestStatus>(), Ok(*s));
    }
    // The words in `events.status` from before the enum.
    let stored: Vec<&str> = IngestStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        stored,
        [
            "processed",
            "no_incident",
            "recorded",
            "unparsed",
            "unreadable_incident",
            "ignored"
        ]
    );
    assert_eq!(IngestStatus::Processed.answer_word(), "accepted");
    assert_eq!(IngestStatus::Ignored.answer_word(), "ignored");
    assert_eq!(IngestStatus::Processed.http_status().as_u16(), 200);
    assert_eq!(IngestStatus::NoIncident.http_status().as_u16(), 200);
    assert_eq!(IngestStatus::Recorded.http_status().as_u16(), 200);
    assert_eq!(IngestStatus::Unparsed.http_status().as_u16(), 202);
    assert_eq!(IngestStatus::UnreadableIncident.http_status().as_u16(), 202);
    assert_eq!(IngestStatus::Ignored.http_status().as_u16(), 202);
}

#[test]
fn every_timeline_word_round_trips_and_an_unknown_word_is_an_error() {
    let words: Vec<&str> = TimelineKind::ALL.iter().map(|k| k.as_str()).collect();
    // The words `timeline.kind` held before the type existed.
    assert_eq!(
        words,
        [
            "opened",
            "note",
            "severity_raised",
            "reopened",
            "acknowledged",
            "resolved",
            "muted",
            "assigned",
            "comment",
            "escalated",
            "retriggered",
            "seer"
        ]
    );
    for k in TimelineKind::ALL {
        assert_eq!(k.as_str().parse::<TimelineKind>(), Ok(*k));
        assert_eq!(
            serde_json::to_string(k).unwrap(),
            format!("\"{}\"", k.as_str())
        );
    }
    let err = "snoozed".parse::<TimelineKind>().unwrap_err();
    assert_eq!(err.what, "timeline kind");
    assert_eq!(err.value, "snoozed");
    assert!(err.expected.contains(&"escalated"));
}
