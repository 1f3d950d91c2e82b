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
    use crate::classification::Classification;
    use crate::domain::{EventId, IncidentId, IncidentState};
    use crate::incidents::model::Incident;
    use crate::incidents::transitions::open_new;
    use crate::intake::AlertFacts;
    use crate::intake::unparsed::ShapeRow;
    use crate::store::listings::TimelineEntry;
    use axum::http::StatusCode;

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
        let cfg = crate::test_support::routing();
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
        assert!(!html.contains("<script"), "{html}");
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
        let page = pages.index(&[Ok(open), Ok(resolved)], Ok(&shapes));
        assert_eq!(page.status, StatusCode::OK);
        assert_escaped(&page.html);
        // Both lists and the unreadable payloads show it, escaped each time.
        assert_eq!(page.html.matches(ESCAPED).count(), 7, "{}", page.html);
        assert!(page.html.contains("href=\"/incidents/7\""), "{}", page.html);
        assert!(page.html.contains("Payloads we could not read"));
        let page = pages.index(&[], Err(SCRIPT.to_string()));
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
        let page = pages.incident(&incident(SCRIPT), Ok(timeline), SCRIPT);
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
            assert!(
                page.html
                    .contains("<nav><a href=\"/\">paiid-alerts</a></nav>")
            );
            assert!(!page.html.contains("<script"), "{}", page.html);
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
}
