use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn same_origin_by_fetch_metadata_origin_host_or_public_url() {
    let public = "https://alerts.paiid.ai";
    assert!(same_origin(&headers(&[]), public), "not a browser");
    assert!(same_origin(
        &headers(&[("sec-fetch-site", "same-origin")]),
        public
    ));
    assert!(!same_origin(
        &headers(&[("sec-fetch-site", "cross-site")]),
        public
    ));
    assert!(same_origin(
        &headers(&[
            ("origin", "http://10.0.0.5:8080"),
            ("host", "10.0.0.5:8080")
        ]),
        public
    ));
    // Behind a proxy that rewrote Host: the public URL still matches.
    assert!(same_origin(
        &headers(&[
            ("origin", "https://alerts.paiid.ai"),
            ("host", "127.0.0.1:8080")
        ]),
        public
    ));
    assert!(!same_origin(
        &headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080")
        ]),
        public
    ));
    assert!(!same_origin(&headers(&[("origin", "null")]), public));
}

#[test]
fn a_cross_site_referer_without_origin_is_refused() {
    let public = "https://alerts.paiid.ai";
    let host = ("host", "127.0.0.1:8080");
    assert!(!same_origin(
        &headers(&[("referer", "https://evil.example/page?x=1"), host]),
        public
    ));
    assert!(!same_origin(
        &headers(&[("referer", "https://alerts.paiid.ai.evil.example/"), host]),
        public
    ));
    assert!(!same_origin(
        &headers(&[("referer", "garbage"), host]),
        public
    ));
    assert!(same_origin(
        &headers(&[("referer", "https://alerts.paiid.ai/incidents/3"), host]),
        public
    ));
    assert!(same_origin(
        &headers(&[("referer", "http://127.0.0.1:8080/incidents/3"), host]),
        public
    ));
}

#[test]
fn origin_of_keeps_scheme_host_and_port() {
    assert_eq!(origin_of("https://a.b:8443/x?y#z"), "https://a.b:8443");
    assert_eq!(origin_of("http://a.b?q"), "http://a.b");
    assert_eq!(origin_of("https://a.b"), "https://a.b");
    assert_eq!(origin_of("no-scheme"), "");
}

mod rendering {
    use super::super::Pages;
    use super::super::view::{IncidentData, IncidentPageView, IndexData, IndexView};
    use crate::classification::Classification;
    use crate::domain::{EventId, IncidentId, IncidentState};
    use crate::incidents::model::Incident;
    use crate::incidents::transitions::open_new;
    use crate::intake::AlertFacts;
    use crate::intake::unparsed::ShapeRow;
    use crate::store::CorruptRow;
    use crate::store::listings::{OpenIncident, PageFilter, TimelineEntry};
    use axum::http::StatusCode;

    const NOW: i64 = 1_795_000_000_000;

    /// The one script a page may carry: `/assets/app.js`, never inline.
    const APP_SCRIPT: &str = "<script src=\"/assets/app.js\" defer></script>";

    fn no_inline_script(html: &str) -> bool {
        html.matches("<script").count() == html.matches(APP_SCRIPT).count()
    }

    /// A routing file of its own: the page explains whatever file is in force.
    fn routing() -> crate::config::RoutingConfig {
        let text = "channels:\n  ops: { type: log }\n\
            environments:\n  production: [production, prod]\n\
            rules:\n  - name: critical-production-errors\n    severity: critical\n\
            \x20   when: { environment: production, level: [error, fatal] }\n\
            severities:\n  critical: { notify: [ops], escalate_after: 15m, escalate_to: [ops] }\n";
        crate::config::RoutingConfig::parse(std::path::Path::new("routing.yaml"), text, &|_| None)
            .expect("routing")
    }

    fn index_page(
        pages: &Pages,
        open: &[OpenIncident],
        resolved: &[Result<Incident, CorruptRow>],
        unparsed: Result<&[ShapeRow], String>,
    ) -> super::super::Page {
        pages.index(IndexView::new(IndexData {
            now: NOW,
            user: "",
            open,
            resolved,
            filter: &PageFilter::default(),
            page: 1,
            more_resolved: false,
            choices: (Vec::new(), Vec::new()),
            unparsed,
        }))
    }

    fn incident_page(
        pages: &Pages,
        inc: &Incident,
        timeline: Vec<TimelineEntry>,
        user: &str,
    ) -> super::super::Page {
        let cfg = routing();
        pages.incident(IncidentPageView::new(IncidentData {
            now: NOW,
            inc,
            user,
            cfg: &cfg,
            timeline: Ok(timeline),
            details: Ok(None),
            deliveries: Ok(Vec::new()),
            escalations: Ok(Vec::new()),
            members: Ok(&[]),
            log_only: &std::collections::BTreeMap::new(),
        }))
    }

    const SCRIPT: &str = "<script>alert(\"pwned\")</script> & 'co'";
    const ESCAPED: &str =
        "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &#39;co&#39;";

    fn incident(title: &str) -> Incident {
        let facts = AlertFacts {
            title: title.to_string(),
            project: Some(format!("{title} project")),
            web_url: Some("javascript:alert(1)".to_string()),
            ..AlertFacts::default()
        };
        let cfg = routing();
        let (inc, _) = open_new(
            &cfg,
            IncidentId(7),
            "key".to_string(),
            &facts,
            &Classification::unclassified(),
            EventId(1),
            1_795_000_000_000,
        );
        inc
    }

    fn assert_escaped(html: &str) {
        assert!(html.contains(ESCAPED), "{html}");
        assert!(no_inline_script(html), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
    }

    #[test]
    fn a_script_in_a_title_is_escaped_on_the_index_page() {
        let pages = Pages::new();
        let open = incident(SCRIPT);
        let mut resolved = incident(SCRIPT);
        resolved.state = IncidentState::Resolved;
        let shapes = [ShapeRow {
            resource: SCRIPT.to_string(),
            shape: SCRIPT.to_string(),
            reason: SCRIPT.to_string(),
            first_event_id: EventId(1),
            last_event_id: EventId(2),
            seen: 2,
            first_seen_at: 1_795_000_000_000,
            last_seen_at: 1_795_000_000_000,
        }];
        let open = [OpenIncident {
            incident: Ok(open),
            last_escalated_at: None,
        }];
        let page = index_page(&pages, &open, &[Ok(resolved)], Ok(&shapes));
        assert_eq!(page.status, StatusCode::OK);
        assert_escaped(&page.html);
        // Both lists and the unreadable payloads show it, escaped each time.
        assert_eq!(page.html.matches(ESCAPED).count(), 7, "{}", page.html);
        assert!(page.html.contains("href=\"/incidents/7\""), "{}", page.html);
        assert!(page.html.contains("Payloads we could not read"));
        let page = index_page(&pages, &[], &[], Err(SCRIPT.to_string()));
        assert_escaped(&page.html);
        assert!(page.html.contains("Nothing open."), "{}", page.html);
    }

    #[test]
    fn a_script_in_a_title_is_escaped_on_the_incident_page() {
        let pages = Pages::new();
        let timeline = vec![TimelineEntry {
            at: 1_795_000_000_000,
            kind: crate::domain::TimelineKind::Opened,
            actor: Some(SCRIPT.to_string()),
            via: Some(crate::domain::Via::Web),
            detail: Some(SCRIPT.to_string()),
        }];
        let page = incident_page(&pages, &incident(SCRIPT), timeline, SCRIPT);
        assert_eq!(page.status, StatusCode::OK);
        assert_escaped(&page.html);
        assert!(
            page.html
                .contains("<title>Incident #7 · paiid-alerts</title>"),
            "{}",
            page.html
        );
        assert!(
            page.html.contains(&format!("<h2>{ESCAPED}</h2>")),
            "{}",
            page.html
        );
        // The forms are pre-filled with the (escaped) signed-in name; the Sentry URL is not a
        // javascript: link.
        assert!(
            page.html.contains(&format!(
                "name=\"by\" placeholder=\"Your name\" value=\"{ESCAPED}\""
            )),
            "{}",
            page.html
        );
        assert!(page.html.contains("action=\"/incidents/7/ack\""));
        assert!(page.html.contains("action=\"/incidents/7/resolve\""));
        assert!(
            page.html.contains("<td>javascript:alert(1)</td>"),
            "{}",
            page.html
        );
        assert!(
            page.html.contains(&format!("{ESCAPED} via web")),
            "{}",
            page.html
        );
    }

    #[test]
    fn every_page_renders() {
        let pages = Pages::new();
        let inc = incident("Orders down");
        let mut acked = incident("Orders down");
        acked.state = IncidentState::Acknowledged;
        acked.acknowledged_by = Some("ana".to_string());
        acked.acknowledged_at = Some(1_795_000_000_000);
        for page in [
            pages.message(StatusCode::GONE, "Gone", SCRIPT),
            pages.ack_result(&inc, SCRIPT),
            pages.ack_confirm(&inc, "acknowledge", "Acknowledge", true),
            pages.ack_confirm(&acked, "acknowledge", "Acknowledge", true),
            pages.stale_link(&inc),
        ] {
            assert!(page.html.starts_with("<!doctype html>"), "{}", page.html);
            assert_nav(&page.html);
            assert!(no_inline_script(&page.html), "{}", page.html);
        }
        assert_eq!(pages.stale_link(&inc).status, StatusCode::CONFLICT);
        let confirm = pages
            .ack_confirm(&inc, "acknowledge", "Acknowledge", true)
            .html;
        assert!(
            confirm.contains("Confirm to acknowledge incident #7."),
            "{confirm}"
        );
        let done = pages
            .ack_confirm(&acked, "acknowledge", "Acknowledge", true)
            .html;
        assert!(
            done.contains("Already acknowledged by ana at 2026-11-18 11:06:40 UTC.")
                && !done.contains("<form"),
            "{done}"
        );
    }

    fn assert_nav(html: &str) {
        assert!(html.contains("<nav id=\"nav\">"), "{html}");
        for (href, label) in [
            ("/", "Incidents"),
            ("/overview", "Overview"),
            ("/deliveries", "Deliveries"),
            ("/silences", "Silences"),
        ] {
            assert!(
                html.contains(&format!("<a href=\"{href}\">{label}</a>")),
                "{label}: {html}"
            );
        }
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            ),
            "{html}"
        );
    }

    #[test]
    fn the_index_rows_carry_the_contract_attributes_and_a_countdown() {
        let pages = Pages::new();
        let mut inc = incident("Orders down");
        inc.severity = crate::domain::Severity::Critical;
        inc.next_escalation_at = Some(NOW + 12 * 60_000 + 34_000);
        let open = [OpenIncident {
            incident: Ok(inc),
            last_escalated_at: None,
        }];
        let html = index_page(&pages, &open, &[], Ok(&[])).html;
        assert!(html.contains("<table id=\"open-incidents\""), "{html}");
        assert!(
            html.contains(
                "<tr class=\"incident\" data-id=\"7\" data-severity=\"critical\" data-state=\"triggered\">"
            ),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<span class=\"countdown\" data-due-ms=\"{}\" data-kind=\"next\">escalates in 12:34</span>",
                NOW + 754_000
            )),
            "{html}"
        );
        assert!(
            html.contains("<form class=\"ack\" method=\"post\" action=\"/incidents/7/ack\">"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/incidents/7\">Orders down</a>"));
        // Reloads itself, with a fallback when scripts are off; the script gets the server's
        // clock.
        assert!(html.contains(&format!("data-now-ms=\"{NOW}\"")), "{html}");
        assert!(
            html.contains("<noscript><meta http-equiv=\"refresh\" content=\"15\"></noscript>"),
            "{html}"
        );
        assert_nav(&html);
    }

    #[test]
    fn countdowns_say_what_comes_next_or_what_fired() {
        use super::super::view::countdown;
        let c = countdown(Some(NOW + 754_000), Some(NOW - 1), NOW).unwrap();
        assert_eq!((c.kind, c.text.as_str()), ("next", "escalates in 12:34"));
        let c = countdown(Some(NOW - 5_000), None, NOW).unwrap();
        assert_eq!(c.text, "escalation due 5s ago");
        let c = countdown(None, Some(NOW - 180_000), NOW).unwrap();
        assert_eq!(
            (c.kind, c.due_ms, c.text.as_str()),
            ("fired", NOW - 180_000, "escalated 3m 0s ago")
        );
        assert_eq!(countdown(None, None, NOW), None);
    }

    #[test]
    fn the_incident_page_has_the_contract_ids_and_says_why() {
        let pages = Pages::new();
        let mut inc = incident("Orders down");
        inc.rule = Some("critical-production-errors".to_string());
        inc.severity = crate::domain::Severity::Critical;
        inc.environment = Some("prod".to_string());
        let html = incident_page(&pages, &inc, Vec::new(), "ana").html;
        for needle in [
            "<span id=\"state\">triggered</span>",
            "<form id=\"ack\" method=\"post\" action=\"/incidents/7/ack\">",
            "<form id=\"resolve\" method=\"post\" action=\"/incidents/7/resolve\">",
            "<textarea id=\"root_cause\" name=\"root_cause\"",
            "<table id=\"deliveries\"",
            "<section id=\"event-details\">",
            "<section id=\"why\">",
            "<h2>Why critical</h2>",
            "environment is one of: prod, production",
            "level is one of: error, fatal",
            "href=\"/silences?project=Orders%20down%20project&amp;environment=prod&amp;rule=critical-production-errors\"",
        ] {
            assert!(html.contains(needle), "{needle}: {html}");
        }
        assert_nav(&html);
        // A rule that is gone from the routing file is named as such.
        inc.rule = Some("retired-rule".to_string());
        let html = incident_page(&pages, &inc, Vec::new(), "ana").html;
        assert!(
            html.contains("The routing file no longer has this rule"),
            "{html}"
        );
    }

    #[test]
    fn query_urls_are_percent_encoded() {
        use super::super::view::query_url;
        assert_eq!(query_url("/silences", &[]), "/silences");
        assert_eq!(
            query_url(
                "/",
                &[("q", "a&b =é".to_string()), ("page", "2".to_string())]
            ),
            "/?q=a%26b%20%3D%C3%A9&page=2"
        );
    }
}

#[test]
fn a_rate_of_one_alert_is_said_in_the_singular() {
    let rate = |more_than| crate::config::Conditions {
        rate: Some(crate::config::RateCondition {
            more_than,
            within: crate::config::HumanDuration(std::time::Duration::from_secs(300)),
            per: crate::config::RateGrouping::Issue,
        }),
        ..Default::default()
    };
    let one = view::describe_conditions(&rate(1));
    assert!(one[0].starts_with("more than 1 alert within "), "{one:?}");
    let five = view::describe_conditions(&rate(5));
    assert!(
        five[0].starts_with("more than 5 alerts within "),
        "{five:?}"
    );
}
