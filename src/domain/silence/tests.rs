use std::collections::BTreeMap;

use super::*;

fn tags() -> Vec<(String, String)> {
    vec![
        ("service".to_string(), "orders".to_string()),
        ("region".to_string(), "eu".to_string()),
    ]
}

/// Environments compared as written (the routing file's aliases are tested in
/// `classification`, which implements [`EnvironmentNames`] for it).
#[derive(Debug)]
struct AsWritten;

impl EnvironmentNames for AsWritten {
    fn environment_is(&self, wanted: &str, environment: Option<&str>) -> bool {
        environment == Some(wanted)
    }
}

fn subject(tags: &[(String, String)]) -> SilenceSubject<'_> {
    SilenceSubject {
        project: Some("trading-api"),
        environment: Some("production"),
        environments: &AsWritten,
        rule: Some("prod-errors"),
        severity: Severity::High,
        level: Some("error"),
        tags,
        title: "TimeoutError: upstream timeout in /orders",
    }
}

fn silence(matchers: Matchers) -> Silence {
    Silence {
        id: SilenceId(1),
        matchers,
        starts_at: 1_000,
        ends_at: 2_000,
        author: "ana".into(),
        comment: "deploy".into(),
        let_through: vec![],
        expired_at: None,
        created_at: 1_000,
    }
}

#[test]
fn every_set_matcher_must_hold() {
    let t = tags();
    let s = subject(&t);
    let ok = Matchers {
        project: Some("trading-api".into()),
        environment: Some("production".into()),
        rule: Some("prod-errors".into()),
        severity: Some(Severity::High),
        level: Some("error".into()),
        tags: BTreeMap::from([("service".into(), "orders".into())]),
        title_regex: Some(TitleRegex::new("time(out)?").unwrap()),
    };
    assert!(ok.matches(&s));
    let misses = [
        Matchers {
            project: Some("other".into()),
            ..ok.clone()
        },
        Matchers {
            environment: Some("staging".into()),
            ..ok.clone()
        },
        Matchers {
            rule: Some("x".into()),
            ..ok.clone()
        },
        Matchers {
            severity: Some(Severity::Critical),
            ..ok.clone()
        },
        Matchers {
            level: Some("fatal".into()),
            ..ok.clone()
        },
        Matchers {
            tags: BTreeMap::from([("service".into(), "billing".into())]),
            ..ok.clone()
        },
        Matchers {
            tags: BTreeMap::from([("absent".into(), "orders".into())]),
            ..ok.clone()
        },
        Matchers {
            title_regex: Some(TitleRegex::new("^Timeout$").unwrap()),
            ..ok.clone()
        },
    ];
    for m in misses {
        assert!(!m.matches(&s), "{m:?} should not match");
    }
}

#[test]
fn a_set_matcher_does_not_match_a_missing_value() {
    let t = tags();
    let s = SilenceSubject {
        environment: None,
        ..subject(&t)
    };
    let m = Matchers {
        environment: Some("production".into()),
        ..Matchers::default()
    };
    assert!(!m.matches(&s));
}

#[test]
fn time_window_and_manual_expiry() {
    let t = tags();
    let s = subject(&t);
    let mut sil = silence(Matchers {
        project: Some("trading-api".into()),
        ..Matchers::default()
    });
    assert_eq!(sil.state(999), SilenceState::Pending);
    assert!(!sil.matches(&s, 999));
    assert!(sil.matches(&s, 1_000));
    assert!(sil.matches(&s, 1_999));
    assert!(!sil.matches(&s, 2_000), "ends_at is exclusive");
    sil.expired_at = Some(1_500);
    assert_eq!(sil.effective_end(), 1_500);
    assert!(!sil.matches(&s, 1_500));
    assert_eq!(sil.state(1_600), SilenceState::Expired);
}

#[test]
fn let_through_matches_but_does_not_hold() {
    let t = tags();
    let mut sil = silence(Matchers {
        project: Some("trading-api".into()),
        ..Matchers::default()
    });
    sil.let_through = vec![Severity::Critical];
    let high = subject(&t);
    let critical = SilenceSubject {
        severity: Severity::Critical,
        ..high
    };
    assert!(sil.holds(&high, 1_500));
    assert!(sil.matches(&critical, 1_500));
    assert!(!sil.holds(&critical, 1_500));
}

#[test]
fn holding_picks_the_lowest_id_that_holds() {
    let t = tags();
    let s = subject(&t);
    let m = Matchers {
        project: Some("trading-api".into()),
        ..Matchers::default()
    };
    let mut a = silence(m.clone());
    a.id = SilenceId(7);
    let mut b = silence(m.clone());
    b.id = SilenceId(3);
    let mut c = silence(m);
    c.id = SilenceId(1);
    c.let_through = vec![Severity::High];
    let all = [a, b, c];
    assert_eq!(holding(&all, &s, 1_500).map(|s| s.id), Some(SilenceId(3)));
    assert_eq!(holding(&all, &s, 5_000).map(|s| s.id), None);
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let err = TitleRegex::new("(unclosed").unwrap_err();
    assert!(matches!(err, SilenceError::BadRegex { .. }), "{err}");
    assert!(err.to_string().contains("(unclosed"));
    assert_eq!(
        Matchers::default().validate(),
        Err(SilenceError::NoMatchers)
    );
    let empty = Matchers {
        project: Some(" ".into()),
        ..Matchers::default()
    };
    assert_eq!(empty.validate(), Err(SilenceError::EmptyMatcher("project")));
    let new = NewSilence {
        matchers: Matchers {
            level: Some("error".into()),
            ..Matchers::default()
        },
        starts_at: 10,
        ends_at: 10,
        author: "ana".into(),
        comment: String::new(),
        let_through: vec![],
    };
    assert!(matches!(
        new.validate(0),
        Err(SilenceError::EndsBeforeStart { .. })
    ));
    let nobody = NewSilence {
        ends_at: 20,
        author: " ".into(),
        ..new
    };
    assert_eq!(nobody.validate(0), Err(SilenceError::NoAuthor));
}

#[test]
fn matchers_round_trip_as_json_and_refuse_unknown_fields() {
    let m = Matchers {
        project: Some("p".into()),
        severity: Some(Severity::Critical),
        tags: BTreeMap::from([("k".into(), "v".into())]),
        title_regex: Some(TitleRegex::new("a+b").unwrap()),
        ..Matchers::default()
    };
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        json,
        r#"{"project":"p","severity":"critical","tags":{"k":"v"},"title_regex":"a+b"}"#
    );
    assert_eq!(serde_json::from_str::<Matchers>(&json).unwrap(), m);
    assert!(serde_json::from_str::<Matchers>(r#"{"projet":"p"}"#).is_err());
    let bad = serde_json::from_str::<Matchers>(r#"{"title_regex":"("}"#).unwrap_err();
    assert!(
        bad.to_string().contains("not a valid regular expression"),
        "{bad}"
    );
    assert_eq!(
        m.describe(),
        "project=p severity=critical tags.k=v title~/a+b/"
    );
}
