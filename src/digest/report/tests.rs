use super::*;
use crate::domain::IncidentId;
use crate::text::html_escape;
use chrono::TimeZone as _;

fn templates() -> DigestTemplates {
    DigestTemplates::defaults()
}

fn period(tz: Tz) -> Period {
    Period {
        start: Utc.with_ymd_and_hms(2026, 11, 28, 13, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2026, 11, 29, 13, 0, 0).unwrap(),
        tz,
    }
}

fn inc(id: i64, title: &str, project: Option<&str>, apdex: f64, events: i64) -> DigestIncident {
    DigestIncident {
        id: IncidentId(id),
        title: title.to_string(),
        project: project.map(str::to_string),
        state: "triggered".to_string(),
        rule: Some("apdex-regression".to_string()),
        metric_value: Some(apdex),
        metric_kind: Some("apdex".to_string()),
        event_count: events,
        first_seen: 1_795_000_000_000,
        last_seen: 1_795_000_000_000,
        sentry_url: Some(format!("https://sentry.io/issues/{id}/")),
    }
}

const LINKS: Links<'static> = Links {
    public_url: "https://alerts.paiid.ai/",
};

#[test]
fn period_is_shown_on_the_digest_wall_clock() {
    let p = period(chrono_tz::America::New_York);
    assert_eq!(p.describe(), "Sat 28 Nov 08:00 – Sun 29 Nov 2026 08:00 EST");
    let p = period(chrono_tz::UTC);
    assert_eq!(p.describe(), "Sat 28 Nov 13:00 – Sun 29 Nov 2026 13:00 UTC");
}

#[test]
fn groups_by_project_noisiest_first_unnamed_last() {
    let d = DailyDigest {
        period: period(chrono_tz::UTC),
        manual: false,
        incidents: vec![
            inc(1, "a", Some("web"), 0.7, 3),
            inc(2, "b", None, 0.5, 1),
            inc(3, "c", Some("api"), 0.6, 1),
            inc(4, "d", Some("web"), 0.4, 9),
            inc(5, "e", Some(""), 0.4, 9),
        ],
    };
    let groups = d.groups();
    let shape: Vec<(&str, Vec<i64>)> = groups
        .iter()
        .map(|g| (g.project, g.incidents.iter().map(|i| i.id.get()).collect()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("api", vec![3]),
            ("web", vec![4, 1]),
            (NO_PROJECT, vec![5, 2])
        ]
    );
}

#[test]
fn daily_render_lists_metric_count_and_links() {
    let d = DailyDigest {
        period: period(chrono_tz::UTC),
        manual: false,
        incidents: vec![
            inc(
                7,
                "Apdex <0.8 on /orders & \"checkout\"",
                Some("paiid-backend"),
                0.615,
                14,
            ),
            inc(8, "Slow /quotes", Some("paiid-backend"), 0.72, 2),
            inc(9, "Slow page", Some("paiid-web"), 0.79, 1),
        ],
    };
    let m = d.render(&templates(), LINKS, "unused");
    assert_eq!(
        m.subject,
        "Medium incidents digest: 3 medium incidents in 2 projects \
         (Sat 28 Nov 13:00 – Sun 29 Nov 2026 13:00 UTC)"
    );
    assert!(
        m.text.contains("3 medium incidents in 2 projects."),
        "{}",
        m.text
    );
    assert!(m.text.contains("== paiid-backend (2) =="), "{}", m.text);
    assert!(
        m.text.contains("lowest Apdex 0.61 · 14 events · triggered"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("Incident: https://alerts.paiid.ai/incidents/7")
    );
    assert!(m.text.contains("Sentry:   https://sentry.io/issues/7/"));
    // Groups and order in the text: backend before web, noisiest first within backend.
    let pos = |s: &str| {
        m.text
            .find(s)
            .unwrap_or_else(|| panic!("{s} in {}", m.text))
    };
    assert!(pos("/orders") < pos("Slow /quotes"));
    assert!(pos("Slow /quotes") < pos("== paiid-web (1) =="));
    // HTML: escaped title, real links.
    assert!(
        m.html
            .contains("Apdex &lt;0.8 on /orders &amp; &quot;checkout&quot;")
    );
    assert!(!m.html.contains("<0.8"));
    assert!(
        m.html
            .contains("<a href=\"https://alerts.paiid.ai/incidents/7\">incident</a>")
    );
    assert!(
        m.html
            .contains("<a href=\"https://sentry.io/issues/7/\">Sentry</a>")
    );
    assert!(m.html.contains("<h3>paiid-backend (2)</h3>"));
}

#[test]
fn empty_daily_digest_carries_the_note() {
    let d = DailyDigest {
        period: period(chrono_tz::UTC),
        manual: false,
        incidents: vec![],
    };
    let m = d.render(&templates(), LINKS, "Quiet day <3");
    assert!(
        m.subject
            .starts_with("Medium incidents digest: no medium incidents (")
    );
    assert!(m.text.contains("Quiet day <3"));
    assert!(m.html.contains("Quiet day &lt;3"));
    assert!(!m.text.contains("=="));
}

#[test]
fn manual_digest_says_so() {
    let d = DailyDigest {
        period: period(chrono_tz::UTC),
        manual: true,
        incidents: vec![inc(1, "x", Some("p"), 0.5, 1)],
    };
    let m = d.render(&templates(), LINKS, "");
    assert!(
        m.subject
            .starts_with("Medium incidents so far (sent by hand): 1 medium incident in 1 project")
    );
}

#[test]
fn unsafe_urls_are_not_links() {
    let mut i = inc(1, "x", Some("p"), 0.5, 1);
    i.sentry_url = Some("javascript:alert(1)//\"><script>".to_string());
    let d = DailyDigest {
        period: period(chrono_tz::UTC),
        manual: false,
        incidents: vec![i],
    };
    let m = d.render(&templates(), LINKS, "");
    assert!(!m.html.contains("href=\"javascript"));
    assert!(!m.html.contains("<script>"));
    assert!(
        m.html
            .contains("Sentry: javascript:alert(1)//&quot;&gt;&lt;script&gt;")
    );
}

#[test]
fn metric_descriptions() {
    assert_eq!(
        describe_metric(Some(0.615), Some(MetricKind::Apdex)),
        "lowest Apdex 0.61"
    );
    assert_eq!(describe_metric(Some(0.5), None), "worst value 0.50");
    assert_eq!(
        describe_metric(Some(0.5), Some(MetricKind::Other)),
        "worst value 0.50"
    );
    assert_eq!(
        describe_metric(Some(2345.4), Some(MetricKind::Duration)),
        "worst value 2345 ms"
    );
    assert_eq!(
        describe_metric(None, Some(MetricKind::Apdex)),
        "no metric value"
    );
    assert_eq!(describe_metric(Some(f64::NAN), None), "no metric value");
}

fn tally(sev: &str, opened: i64, acked: i64, ack_ms: i64, res: i64, res_ms: i64) -> SeverityTally {
    SeverityTally {
        severity: sev.to_string(),
        opened,
        acknowledged: acked,
        ack_ms_total: ack_ms,
        resolved: res,
        resolve_ms_total: res_ms,
    }
}

#[test]
fn weekly_totals_and_means() {
    let min = 60_000;
    let w = WeeklySummary::new(
        period(chrono_tz::UTC),
        false,
        vec![
            tally("medium", 4, 0, 0, 0, 0),
            tally("critical", 2, 2, 30 * min, 1, 70 * min),
            tally("weird", 1, 0, 0, 0, 0),
            tally("high", 1, 1, 30 * min, 1, 90 * min),
        ],
        vec![EscalationTally {
            severity: "critical".into(),
            fired: 3,
            incidents: 2,
            max_lateness_ms: 1_500,
        }],
        vec![NoisyIncident {
            id: IncidentId(3),
            title: "Storm <b>".into(),
            project: Some("api".into()),
            severity: "high".into(),
            state: "resolved".into(),
            event_count: 10_000,
            sentry_url: None,
        }],
    );
    let order: Vec<&str> = w.severities.iter().map(|s| s.severity.as_str()).collect();
    assert_eq!(order, vec!["critical", "high", "medium", "weird"]);
    let t = w.totals();
    assert_eq!(t.opened, 8);
    assert_eq!(t.acknowledged, 3);
    assert_eq!(t.mtta_ms, Some(20 * min));
    assert_eq!(t.resolved, 2);
    assert_eq!(t.mttr_ms, Some(80 * min));
    assert_eq!(
        (t.escalations, t.escalated_incidents, t.max_lateness_ms),
        (3, 2, 1_500)
    );
    assert!(!w.is_empty());

    let m = w.render(&templates(), LINKS);
    assert!(
        m.subject
            .starts_with("Weekly ops summary: 8 incidents opened, 3 escalations ("),
        "{}",
        m.subject
    );
    assert!(
        m.text
            .contains("Incidents opened: 8 (critical 2, high 1, medium 4, weird 1)"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("Mean time to acknowledge: 20m 0s (3 acknowledged)"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("Mean time to resolve: 1h 20m (2 resolved)"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("Escalations fired: 3 on 2 incidents (worst lateness 1s)"),
        "{}",
        m.text
    );
    assert!(m.text.contains("15m 0s"), "critical MTTA: {}", m.text);
    assert!(m.text.contains("1h 10m"), "critical MTTR: {}", m.text);
    assert!(
        m.text
            .contains("1.   10000  Storm <b> [api, high, resolved]"),
        "{}",
        m.text
    );
    assert!(m.html.contains("Storm &lt;b&gt;"));
    assert!(!m.html.contains("<b>"));
}

#[test]
fn a_week_with_storms_says_how_many_incidents_they_grouped_in_a_line() {
    let quiet = WeeklySummary::new(
        period(chrono_tz::UTC),
        false,
        vec![tally("critical", 40, 1, 60_000, 0, 0)],
        vec![],
        vec![],
    );
    let m = quiet.render(&templates(), LINKS);
    assert!(!m.text.contains("Storms:"), "{}", m.text);
    let stormy = WeeklySummary {
        storms: crate::store::digests::StormTally {
            storms: 2,
            members: 37,
        },
        ..quiet
    };
    let m = stormy.render(&templates(), LINKS);
    // The storms' members are among the 40 opened, not added to them.
    assert!(
        m.text.contains("Incidents opened: 40 (critical 40)"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("Storms: 2 grouping 37 incidents (each paged once for its members)"),
        "{}",
        m.text
    );
    assert!(
        m.html.contains("Storms: 2 grouping 37 incidents"),
        "{}",
        m.html
    );
}

#[test]
fn empty_week() {
    let w = WeeklySummary::new(period(chrono_tz::UTC), false, vec![], vec![], vec![]);
    assert!(w.is_empty());
    let t = w.totals();
    assert_eq!((t.mtta_ms, t.mttr_ms), (None, None));
    let m = w.render(&templates(), LINKS);
    assert!(m.text.contains("Incidents opened: 0\n"), "{}", m.text);
    assert!(
        m.text
            .contains("Mean time to acknowledge: n/a (0 acknowledged)")
    );
    assert!(m.text.contains("Escalations fired: 0"));
}

#[test]
fn escaping_and_means() {
    assert_eq!(
        html_escape("<a href='x'>&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
    );
    assert_eq!(mean_ms(10, 0), None);
    assert_eq!(mean_ms(10, 4), Some(2));
    assert_eq!(
        Links {
            public_url: "http://x:8080"
        }
        .incident(IncidentId(5)),
        "http://x:8080/incidents/5"
    );
}
