use super::*;
use crate::domain::{IncidentId, IncidentState, Severity};
use crate::templates::notify::base_environment;
use chrono::Duration as ChronoDuration;

fn full(kind: NotificationKind) -> Notification {
    let mut n = sample_notification(kind);
    match kind {
        NotificationKind::Acknowledged => {
            n.state = IncidentState::Acknowledged;
            n.resolved_at = None;
            n.resolved_by = None;
        }
        NotificationKind::Resolved | NotificationKind::PostMortem => {
            n.state = IncidentState::Resolved
        }
        _ => {
            n.acknowledged_at = None;
            n.acknowledged_by = None;
            n.resolved_at = None;
            n.resolved_by = None;
        }
    }
    n
}

fn minimal(kind: NotificationKind) -> Notification {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    Notification {
        kind,
        incident_id: IncidentId(7),
        dedup_key: "paiid-alerts-7-1".into(),
        severity: Severity::High,
        state: IncidentState::Triggered,
        title: "Timeout".into(),
        project: None,
        environment: None,
        level: None,
        culprit: None,
        event_count: 1,
        first_seen: at,
        last_seen: at,
        rule: None,
        sentry_rule: None,
        release: None,
        request: None,
        top_frame: None,
        breadcrumbs: vec![],
        metric: None,
        sentry_url: None,
        incident_url: "http://localhost:8080/incidents/7".into(),
        ack_url: None,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        waited_minutes: None,
        reason: None,
        seer_pr_url: None,
        post_mortem: None,
        storm: None,
        delivery: None,
    }
}

fn all(t: &Templates, n: &Notification) -> [String; 5] {
    [
        t.slack_text(n),
        t.email_subject(n),
        t.email_text(n),
        t.email_html(n),
        t.pagerduty_summary(n),
    ]
}

#[test]
fn defaults_compile_and_render_every_kind_full_and_minimal() {
    let env = base_environment();
    for o in Output::ALL {
        assert!(
            env.get_template(o.default_name()).is_ok(),
            "{}",
            o.default_name()
        );
    }
    let t = Templates::defaults();
    for kind in ALL_KINDS {
        for n in [full(kind), minimal(kind)] {
            for (i, out) in all(&t, &n).iter().enumerate() {
                // The defaults themselves must render (no fallback to the bare headline).
                let direct = t.try_render(Output::ALL[i].default_name(), &n);
                assert!(direct.is_ok(), "{kind:?} {:?}: {direct:?}", Output::ALL[i]);
                assert!(!out.trim().is_empty());
                let words = out.replace("decoration:none", "");
                assert!(
                    !words.contains("none"),
                    "{kind:?} {:?} prints none:\n{out}",
                    Output::ALL[i]
                );
                assert!(
                    !out.contains("\n\n\n"),
                    "{kind:?} {:?} blank lines:\n{out}",
                    Output::ALL[i]
                );
            }
            let subject = t.email_subject(&n);
            assert!(
                subject.starts_with(&format!("[{}]", n.severity.as_str().to_uppercase())),
                "{subject}"
            );
            assert!(!subject.contains('\n'));
        }
    }
}

#[test]
fn opened_message_carries_everything() {
    let t = Templates::defaults();
    let n = full(NotificationKind::Opened);
    for out in [t.slack_text(&n), t.email_text(&n), t.email_html(&n)] {
        for needle in [
            "CRITICAL",
            "ZeroDivisionError: division by zero",
            "paiid-backend",
            "production",
            "error",
            "app.routers.orders in place_order",
            "1,234 events",
            "2026-11-29 08:00:00 UTC",
            "2026-11-29 08:04:10 UTC",
            "critical-production-errors",
            "Errors in production",
            "paiid-backend@1.4.2",
            "POST https://api.paiid.ai/orders",
            "app/routers/orders.py in place_order at line 42",
            "[trading] order submitted (symbol=AAPL, qty=100)",
            "08:00:00",
            "2450 ms",
            "sentry.io",
            "alerts.paiid.ai",
            "Acknowledge",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
        }
        assert!(out.contains("https://alerts.paiid.ai/ack/token"), "{out}");
    }
    assert!(
        t.slack_text(&n)
            .contains("<https://alerts.paiid.ai/ack/token|Acknowledge>")
    );
    assert_eq!(
        t.email_subject(&n),
        "[CRITICAL] ZeroDivisionError: division by zero (paiid-backend) #42"
    );
}

#[test]
fn ack_link_only_while_open() {
    let t = Templates::defaults();
    for kind in [
        NotificationKind::Acknowledged,
        NotificationKind::Resolved,
        NotificationKind::PostMortem,
    ] {
        let n = full(kind);
        for out in all(&t, &n) {
            assert!(!out.contains("/ack/token"), "{kind:?}:\n{out}");
        }
    }
    let mut n = full(NotificationKind::Escalation);
    n.state = IncidentState::Acknowledged;
    assert!(!t.slack_text(&n).contains("/ack/token"));
    n.state = IncidentState::Triggered;
    assert!(t.slack_text(&n).contains("/ack/token"));
}

#[test]
fn an_early_escalation_and_a_retrigger_say_why_on_every_channel() {
    let t = Templates::defaults();
    let mut n = full(NotificationKind::Escalation);
    n.reason =
        Some("delivery degraded: no notification was confirmed delivered within 2m 0s".into());
    for out in all(&t, &n) {
        assert!(out.contains("delivery degraded"), "{out}");
    }
    assert!(
        t.pagerduty_summary(&n)
            .starts_with("[CRITICAL] ESCALATION, delivery degraded")
    );
    let n = full(NotificationKind::Retriggered);
    // The subject names the kind; the reason is in the body.
    for out in all(&t, &n)
        .iter()
        .filter(|o| !o.starts_with("[CRITICAL] Needs attention"))
    {
        assert!(out.contains("acknowledgement by alice expired"), "{out}");
    }
    assert!(
        t.email_subject(&n)
            .starts_with("[CRITICAL] Needs attention again: ")
    );
    assert!(
        t.pagerduty_summary(&n)
            .starts_with("[CRITICAL] AGAIN, acknowledgement by alice expired")
    );
}

#[test]
fn escalation_says_so_and_how_long() {
    let t = Templates::defaults();
    let mut n = full(NotificationKind::Escalation);
    n.waited_minutes = Some(75);
    for out in all(&t, &n) {
        assert!(
            out.contains("ESCALATION") || out.contains("Escalation"),
            "{out}"
        );
        assert!(out.contains("1h 15m"), "{out}");
    }
    assert!(
        t.email_subject(&n)
            .starts_with("[CRITICAL] ESCALATION, unacknowledged for 1h 15m: ")
    );
}

#[test]
fn acknowledged_says_who_and_when() {
    let t = Templates::defaults();
    let n = full(NotificationKind::Acknowledged);
    for out in [t.slack_text(&n), t.email_text(&n), t.email_html(&n)] {
        assert!(out.contains("alice"), "{out}");
        assert!(out.contains("2026-11-29 08:04:10 UTC"), "{out}");
        assert!(out.contains("4m 10s"), "{out}");
    }
    assert!(t.email_subject(&n).starts_with("[CRITICAL] Acknowledged: "));
}

#[test]
fn post_mortem_has_all_figures() {
    let t = Templates::defaults();
    let n = full(NotificationKind::PostMortem);
    for out in [t.slack_text(&n), t.email_text(&n), t.email_html(&n)] {
        for needle in [
            "Post-mortem",
            "CRITICAL",
            "ZeroDivisionError",
            "2026-11-29 08:00:00 UTC",
            "2026-11-29 08:04:10 UTC",
            "2026-11-29 08:30:00 UTC",
            "4m 10s",
            "30m 0s",
            "alice",
            "Escalations fired",
            "1,234 events",
            "Broker API returned zero quantity",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
        }
    }
    // Without a PostMortem record the figures derive from the top-level times.
    let mut n = minimal(NotificationKind::PostMortem);
    n.resolved_at = Some(n.first_seen + ChronoDuration::seconds(3725));
    n.state = IncidentState::Resolved;
    let text = t.email_text(&n);
    assert!(
        text.contains("1h 2m") && text.contains("never") && text.contains("not recorded"),
        "{text}"
    );
}

#[test]
fn html_autoescapes_user_data() {
    let t = Templates::defaults();
    let mut n = full(NotificationKind::Opened);
    n.title = "<script>alert('x')</script>".into();
    n.culprit = Some("a & b <img src=x onerror=y>".into());
    n.breadcrumbs[0].message = "<b>bold</b>".into();
    let html = t.email_html(&n);
    assert!(
        !html.contains("<script>") && !html.contains("<img") && !html.contains("<b>bold"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
    // An override is escaped too.
    let t = Templates::new(&TemplateOverrides {
        email_html: Some("<p>{{ title }}</p>".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        t.email_html(&n),
        "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
    );
}

#[test]
fn slack_escapes_user_data_but_not_its_own_markup() {
    let t = Templates::defaults();
    let mut n = full(NotificationKind::Opened);
    n.title = "boom <!channel> & <https://evil.example|Sentry>".into();
    let s = t.slack_text(&n);
    assert!(
        s.contains("boom &lt;!channel&gt; &amp; &lt;https://evil.example|Sentry&gt;"),
        "{s}"
    );
    assert!(!s.contains("<!channel>"));
    assert!(
        s.contains("<https://alerts.paiid.ai/incidents/42|Incident #42>"),
        "{s}"
    );
}

#[test]
fn subject_is_one_line_and_always_starts_with_severity() {
    let t = Templates::new(&TemplateOverrides {
        email_subject: Some("Alert:\r\n{{ title }}\nBcc: x@y".into()),
        ..Default::default()
    })
    .unwrap();
    let n = full(NotificationKind::Opened);
    let s = t.email_subject(&n);
    assert_eq!(
        s,
        "[CRITICAL] Alert: ZeroDivisionError: division by zero Bcc: x@y"
    );
    let t = Templates::new(&TemplateOverrides {
        email_subject: Some("[{{ severity_upper }}] custom {{ incident_id }}".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(t.email_subject(&n), "[CRITICAL] custom 42");
    let mut n = minimal(NotificationKind::Opened);
    n.severity = Severity::Unclassified;
    assert!(
        Templates::defaults()
            .email_subject(&n)
            .starts_with("[UNCLASSIFIED] ")
    );
}

#[test]
fn pagerduty_summary_is_bounded_single_line() {
    let t = Templates::defaults();
    let mut n = full(NotificationKind::Opened);
    n.title = format!("{}\nsecond line ü", "é".repeat(3000));
    let s = t.pagerduty_summary(&n);
    assert!(s.len() <= PAGERDUTY_SUMMARY_MAX, "{}", s.len());
    assert!(!s.contains('\n'));
    assert!(s.starts_with("[CRITICAL] éé"));
    assert!(s.ends_with('…'));
    let n = full(NotificationKind::Opened);
    assert_eq!(
        t.pagerduty_summary(&n),
        "[CRITICAL] ZeroDivisionError: division by zero (paiid-backend/production) in app.routers.orders in place_order, 2450 ms · 1,234 events"
    );
}

#[test]
fn override_syntax_error_names_the_template() {
    let e = Templates::new(&TemplateOverrides {
        slack_text: Some("{{ title ".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.name, "slack_text");
    assert!(e.to_string().starts_with("template slack_text: "), "{e}");
    let e = Templates::new(&TemplateOverrides {
        email_html: Some("{% if title %}open".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.name, "email_html");
}

#[test]
fn override_with_unknown_variable_or_bad_filter_is_rejected_at_load() {
    for (src, needle) in [
        ("{{ titel }}", "undefined"),
        ("{{ title|no_such_filter }}", "filter"),
        ("{{ first_seen|datetime('%Q') }}", "format"),
    ] {
        let e = Templates::new(&TemplateOverrides {
            pagerduty_summary: Some(src.into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.name, "pagerduty_summary");
        assert!(e.message.to_lowercase().contains(needle), "{src}: {e}");
    }
    let e = Templates::new(&TemplateOverrides {
        email_text: Some("   ".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.name, "email_text");
}

#[test]
fn runtime_failure_falls_back_to_the_default() {
    // Fine on the fully populated sample, fails when there are no breadcrumbs.
    let t = Templates::new(&TemplateOverrides {
        slack_text: Some("custom {{ breadcrumbs[0].message }}".into()),
        email_subject: Some("{{ breadcrumbs[0].message }}".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(t.is_overridden("slack_text") && !t.is_overridden("email_text"));
    let full_n = full(NotificationKind::Opened);
    assert_eq!(
        t.slack_text(&full_n),
        "custom order submitted (symbol=AAPL, qty=100)"
    );
    let n = minimal(NotificationKind::Opened);
    let s = t.slack_text(&n);
    assert!(s.starts_with(":rotating_light: *[HIGH] Timeout*"), "{s}");
    assert_eq!(t.email_subject(&n), "[HIGH] Timeout #7");
}

#[test]
fn overrides_can_use_helpers_and_include_defaults() {
    let t = Templates::new(&TemplateOverrides {
        slack_text: Some(
            "{{ kind_label }}: {{ title|truncate(5) }} at {{ last_seen|datetime('%H:%M') }}\n{% include 'default/slack_text' %}"
                .into(),
        ),
        ..Default::default()
    })
    .unwrap();
    let s = t.slack_text(&full(NotificationKind::Opened));
    assert!(
        s.starts_with("New incident: Zero… at 08:04\n:rotating_light:"),
        "{s}"
    );
}

#[test]
fn helpers() {
    assert_eq!(event_count_text(1), "1 event");
    assert_eq!(event_count_text(0), "0 events");
    assert_eq!(event_count_text(1_234_567), "1,234,567 events");
    assert_eq!(waited_text(15), "15m 0s");
    assert_eq!(waited_text(60), "1h 0m");
    assert_eq!(waited_text(-3), "0s");
    assert_eq!(clip_bytes("ééé", 4), "…");
    assert_eq!(clip_bytes("abcdef", 5), "ab…");
    assert_eq!(
        format!("{:?}", Templates::defaults()),
        "Templates { overrides: [] }"
    );
}

#[test]
fn duration_filter_in_overrides() {
    let env = base_environment();
    let out = env
        .render_str(
            "{{ ms|duration }}",
            minijinja::context! { ms => 183_600_000 },
        )
        .unwrap();
    assert_eq!(out, "2d 3h");
}

/// The contexts overrides are checked against at load time, as `crate::templates::notify`
/// stores them (it sits below this module): those of `sample_notification` for every kind, then
/// those of `sample_storm_notification`.
fn sample_contexts() -> serde_json::Value {
    let issues = ALL_KINDS
        .iter()
        .map(|kind| (kind.as_str().to_string(), sample_notification(*kind)));
    let storms = ALL_KINDS.iter().map(|kind| {
        let label = format!("storm {}", kind.as_str());
        (label, sample_storm_notification(*kind))
    });
    let pairs: Vec<(String, serde_json::Value)> = issues
        .chain(storms)
        .map(|(label, n)| (label, serde_json::to_value(Context::new(&n)).unwrap()))
        .collect();
    serde_json::to_value(pairs).unwrap()
}

#[test]
fn load_time_samples_are_the_sample_notifications() {
    let stored: serde_json::Value =
        serde_json::from_str(crate::templates::notify::SAMPLES_JSON).unwrap();
    let expected = sample_contexts();
    if std::env::var_os("PAIID_BLESS_SAMPLES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/templates/notify/samples.json"
        );
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        return;
    }
    assert!(
        stored == expected,
        "src/templates/notify/samples.json is out of date with sample_notification: \
         run `PAIID_BLESS_SAMPLES=1 cargo test --lib load_time_samples` and review the diff"
    );
}

fn storm(kind: NotificationKind, members: i64, projects: i64) -> Notification {
    let mut n = full(kind);
    n.culprit = None;
    n.request = None;
    n.top_frame = None;
    n.breadcrumbs.clear();
    n.metric = None;
    n.sentry_url = None;
    n.set_storm(crate::notify::message::sample_storm(members, projects));
    n
}

#[test]
fn a_storm_message_says_how_many_where_and_the_noisiest_in_every_output() {
    let t = Templates::defaults();
    for (members, projects, title, more) in [
        (1, 1, "Storm: 1 critical incident in project-0", None),
        (5, 1, "Storm: 5 critical incidents in project-0", None),
        (
            300,
            3,
            "Storm: 300 critical incidents across 3 projects",
            Some("and 295 more"),
        ),
    ] {
        for kind in ALL_KINDS {
            let n = storm(kind, members, projects);
            for (i, out) in all(&t, &n).iter().enumerate() {
                let direct = t.try_render(Output::ALL[i].default_name(), &n);
                assert!(direct.is_ok(), "{kind:?} {:?}: {direct:?}", Output::ALL[i]);
                let words = out.replace("decoration:none", "");
                assert!(
                    !words.contains("none"),
                    "{kind:?} {:?}:\n{out}",
                    Output::ALL[i]
                );
                assert!(
                    !out.contains("\n\n\n"),
                    "{kind:?} {:?}:\n{out}",
                    Output::ALL[i]
                );
                assert!(out.contains(title), "{kind:?} {:?}:\n{out}", Output::ALL[i]);
            }
        }
        let n = storm(NotificationKind::Opened, members, projects);
        assert_eq!(t.email_subject(&n), format!("[CRITICAL] {title} #42"));
        for out in [t.slack_text(&n), t.email_text(&n), t.email_html(&n)] {
            assert!(!out.contains(" 1 events"), "{out}");
        }
        let pd = t.pagerduty_summary(&n);
        assert!(
            pd.len() <= PAGERDUTY_SUMMARY_MAX && !pd.contains('\n'),
            "{pd}"
        );
        assert!(
            pd.starts_with(&format!(
                "[CRITICAL] {title} · noisiest: OperationalError #0"
            )),
            "{pd}"
        );
        for out in [t.slack_text(&n), t.email_text(&n), t.email_html(&n)] {
            // Every named member with its page; never more than five.
            for i in 0..members.min(5) {
                let url = format!("https://alerts.paiid.ai/incidents/{}", 100 + i);
                assert!(out.contains(&url), "{members}: {url} missing:\n{out}");
            }
            assert!(!out.contains("/incidents/105"), "{out}");
            assert!(
                out.contains(&format!("{} events in all", members * 10))
                    || out.contains(&format!("*Events:* {}", members * 10)),
                "{out}"
            );
            match more {
                Some(m) => assert!(out.contains(m), "{out}"),
                None => assert!(!out.contains("more"), "{out}"),
            }
        }
        // Member titles are user data: escaped for Slack and in HTML.
        assert!(!t.slack_text(&n).contains("<!channel>"));
        assert!(!t.email_html(&n).contains("<!channel>"));
        // Whole members while they fit in PagerDuty's line; the rest counted.
        let named = pd.matches("OperationalError #").count() as i64;
        assert!(named >= 1 && !pd.ends_with('…'), "{pd}");
        if named < members {
            assert!(
                pd.ends_with(&format!(" · and {} more", members - named)),
                "{pd}"
            );
        } else {
            assert!(!pd.contains("more"), "{pd}");
        }
    }
}

#[test]
fn a_storm_summary_for_pagerduty_fits_with_five_long_titles() {
    let t = Templates::defaults();
    let mut n = storm(NotificationKind::Escalation, 300, 1);
    n.waited_minutes = Some(15);
    n.reason = None;
    let pd = t.pagerduty_summary(&n);
    assert!(pd.len() <= PAGERDUTY_SUMMARY_MAX, "{}", pd.len());
    assert!(pd.starts_with("[CRITICAL] ESCALATION, unacknowledged for 15m 0s: Storm: 300 critical incidents in project-0 · noisiest: "), "{pd}");
    // Whole members while they fit (these titles are 2-byte characters), the rest counted:
    // nothing is cut off the end.
    let named = pd.matches("OperationalError #").count() as i64;
    assert!(named >= 2, "{pd}");
    assert!(pd.ends_with(&format!("· and {} more", 300 - named)), "{pd}");
    assert!(!pd.ends_with('…'), "{pd}");
    // Plain titles: all five.
    let mut storm5 = n.storm.clone().unwrap();
    for m in &mut storm5.top {
        m.title = "x".repeat(500);
    }
    n.set_storm(storm5);
    let pd = t.pagerduty_summary(&n);
    assert_eq!(pd.matches(&"x".repeat(119)).count(), 5, "{pd}");
    assert!(
        pd.ends_with("· and 295 more") && pd.len() <= PAGERDUTY_SUMMARY_MAX,
        "{pd}"
    );
}
