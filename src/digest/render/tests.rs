use super::*;

const LINKS: Links<'static> = Links {
    public_url: "https://alerts.paiid.ai",
};

fn overrides(f: impl FnOnce(&mut DigestTemplateOverrides)) -> DigestTemplateOverrides {
    let mut o = DigestTemplateOverrides::default();
    f(&mut o);
    o
}

#[test]
fn defaults_render_every_sample_without_falling_back() {
    let t = DigestTemplates::defaults();
    for (what, d) in samples_daily() {
        let m = d.render(&t, LINKS, "Quiet day.");
        assert!(
            m.subject.starts_with("Medium incidents"),
            "{what}: {}",
            m.subject
        );
        assert!(!m.subject.contains('\n'));
        for body in [&m.text, &m.html] {
            assert!(!body.contains("template failed"), "{what}: {body}");
            assert!(body.contains("Seen Sat 28 Nov 08:00"), "{what}: {body}");
        }
    }
    for (what, w) in samples_weekly() {
        let m = w.render(&t, LINKS);
        assert!(
            m.subject.starts_with("Weekly ops summary"),
            "{what}: {}",
            m.subject
        );
        for body in [&m.text, &m.html] {
            assert!(!body.contains("template failed"), "{what}: {body}");
            assert!(body.contains("Mean time to resolve"), "{what}: {body}");
        }
    }
}

#[test]
fn an_override_replaces_its_output_only_and_is_escaped_in_html() {
    let t = DigestTemplates::new(&overrides(|o| {
        o.daily_digest_subject = Some("Digest: {{ summary }}".into());
        o.daily_digest_html = Some(
            "<ul>{% for g in groups %}{% for i in g.incidents %}<li>{{ i.title }}</li>{% endfor %}{% endfor %}</ul>"
                .into(),
        );
    }))
    .unwrap();
    assert!(t.is_overridden("daily_digest_html"));
    assert!(!t.is_overridden("daily_digest_text"));
    let mut d = samples_daily().remove(0).1;
    d.incidents.truncate(1);
    d.incidents[0].title = "<script>x</script> & co".into();
    let m = d.render(&t, LINKS, "");
    assert_eq!(m.subject, "Digest: 1 medium incident in 1 project");
    assert_eq!(
        m.html,
        "<ul><li>&lt;script&gt;x&lt;/script&gt; &amp; co</li></ul>"
    );
    // The text part is still the default.
    assert!(
        m.text.starts_with("Medium incidents digest\nSeen "),
        "{}",
        m.text
    );
    // Weekly is untouched.
    let w = samples_weekly().remove(0).1.render(&t, LINKS);
    assert!(
        w.subject
            .starts_with("Weekly ops summary: 2 incidents opened")
    );
}

#[test]
fn an_override_may_include_its_default() {
    let t = DigestTemplates::new(&overrides(|o| {
        o.weekly_summary_text = Some(
            "Team note: review on Monday.\n\n{% include \"default/weekly_summary_text\" %}".into(),
        );
    }))
    .unwrap();
    let m = samples_weekly().remove(0).1.render(&t, LINKS);
    assert!(
        m.text
            .starts_with("Team note: review on Monday.\n\nWeekly ops summary\n"),
        "{}",
        m.text
    );
    assert!(m.text.contains("Noisiest issues (events)"));
}

#[test]
fn a_broken_override_is_an_error_naming_the_template() {
    let cases = [
        (
            overrides(|o| o.daily_digest_html = Some("{% for g in groups %}".into())),
            "daily_digest_html",
            "syntax",
        ),
        (
            overrides(|o| o.weekly_summary_text = Some("{{ totals.openned }}".into())),
            "weekly_summary_text",
            "fails on a sample weekly summary",
        ),
        (
            overrides(|o| o.daily_digest_text = Some("{{ title|truncate(3) }}".into())),
            "daily_digest_text",
            "fails on a sample",
        ),
        (
            overrides(|o| o.weekly_summary_subject = Some("  \n".into())),
            "weekly_summary_subject",
            "is empty",
        ),
        (
            overrides(|o| {
                o.daily_digest_subject = Some("{% if manual %}by hand{% endif %}".into())
            }),
            "daily_digest_subject",
            "renders nothing for a sample daily digest",
        ),
    ];
    for (o, name, problem) in cases {
        let e = DigestTemplates::new(&o).expect_err(name);
        assert_eq!(e.name, name);
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("template {name}: ")) && shown.contains(problem),
            "{shown}"
        );
    }
}

#[test]
fn subjects_are_one_line() {
    let t = DigestTemplates::new(&overrides(|o| {
        o.daily_digest_subject = Some("{{ heading }}\r\nBcc: someone@example.com".into());
    }))
    .unwrap();
    let m = samples_daily().remove(0).1.render(&t, LINKS, "");
    assert_eq!(
        m.subject,
        "Medium incidents digest Bcc: someone@example.com"
    );
}

/// The contexts overrides are checked against at load time, as `crate::templates::digest`
/// stores them (it sits below this module): those of the sample digests.
fn sample_contexts() -> serde_json::Value {
    let daily: Vec<(&str, serde_json::Value)> = samples_daily()
        .iter()
        .map(|(what, d)| {
            let view = d.view(LINKS, "No medium incidents.");
            (*what, serde_json::to_value(view).unwrap())
        })
        .collect();
    let weekly: Vec<(&str, serde_json::Value)> = samples_weekly()
        .iter()
        .map(|(what, w)| (*what, serde_json::to_value(w.view(LINKS)).unwrap()))
        .collect();
    serde_json::json!({ "daily": daily, "weekly": weekly })
}

#[test]
fn load_time_samples_are_the_sample_digests() {
    let stored: serde_json::Value =
        serde_json::from_str(crate::templates::digest::SAMPLES_JSON).unwrap();
    let expected = sample_contexts();
    if std::env::var_os("PAIID_BLESS_SAMPLES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/templates/digest/samples.json"
        );
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        return;
    }
    assert!(
        stored == expected,
        "src/templates/digest/samples.json is out of date with the sample digests: \
         run `PAIID_BLESS_SAMPLES=1 cargo test --lib load_time_samples` and review the diff"
    );
}
