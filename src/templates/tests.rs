use super::*;

fn render(source: &str, name: &str, ctx: Value) -> String {
    let mut env = environment();
    env.add_template_owned(name.to_string(), source.to_string())
        .unwrap();
    env.get_template(name).unwrap().render(ctx).unwrap()
}

#[test]
fn html_templates_escape_and_print_none_as_nothing() {
    let ctx = minijinja::context! { title => "<script>alert('x')</script> & /", missing => Value::from(()) };
    let out = render("<h1>{{ title }}</h1>[{{ missing }}]", "t.html", ctx.clone());
    assert_eq!(
        out,
        "<h1>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; /</h1>[]"
    );
    // Override names (`daily_digest_html`) are HTML too; text templates are not escaped.
    let out = render("{{ title }}", "daily_digest_html", ctx.clone());
    assert!(out.starts_with("&lt;script&gt;"), "{out}");
    let out = render("{{ title }}", "t.txt", ctx);
    assert_eq!(out, "<script>alert('x')</script> & /");
}

#[test]
fn an_unknown_variable_is_an_error_but_a_false_test() {
    let mut env = environment();
    env.add_template("t.txt", "{% if nope %}x{% endif %}{{ nope }}")
        .unwrap();
    let err = env
        .get_template("t.txt")
        .unwrap()
        .render(minijinja::context! {})
        .unwrap_err();
    assert!(describe(&err).contains("undefined"), "{}", describe(&err));
    let out = render(
        "{% if nope %}x{% endif %}.",
        "u.txt",
        minijinja::context! {},
    );
    assert_eq!(out, ".");
}

#[test]
fn link_only_for_http_urls() {
    let t = "{{ url|link }} | {{ url|link('Sentry') }}";
    let out = render(
        t,
        "l.html",
        minijinja::context! { url => "https://sentry.io/a?b=1&c=\"2\"" },
    );
    assert_eq!(
        out,
        "<a href=\"https://sentry.io/a?b=1&amp;c=&quot;2&quot;\">https://sentry.io/a?b=1&amp;c=&quot;2&quot;</a> \
         | <a href=\"https://sentry.io/a?b=1&amp;c=&quot;2&quot;\">Sentry</a>"
    );
    let out = render(
        t,
        "l.html",
        minijinja::context! { url => "javascript:alert(1)//\"><script>" },
    );
    assert!(!out.contains("href") && !out.contains("<script>"), "{out}");
    assert!(
        out.ends_with("Sentry: javascript:alert(1)//&quot;&gt;&lt;script&gt;"),
        "{out}"
    );
    let out = render(t, "l.html", minijinja::context! { url => Value::from(()) });
    assert_eq!(out, " | ");
}

#[test]
fn padding_for_text_tables() {
    let out = render(
        "[{{ a|ljust(5) }}][{{ b|rjust(4) }}][{{ c|ljust(2) }}]",
        "p.txt",
        minijinja::context! { a => "ab", b => 7, c => "long" },
    );
    assert_eq!(out, "[ab   ][   7][long]");
}

#[test]
fn block_tags_on_their_own_lines_leave_no_blank_lines() {
    let out = render(
        "a\n{% if yes %}\nb\n{% endif %}\nc\n",
        "w.txt",
        minijinja::context! { yes => true },
    );
    assert_eq!(out, "a\nb\nc");
}

#[test]
fn every_page_template_compiles() {
    let mut env = environment();
    for (name, source) in PAGES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("{name}: {}", describe(&e)));
    }
}

#[test]
fn duration_filter_spells_like_the_messages() {
    let out = render(
        "{{ a|duration }} / {{ b|duration }} / {{ c|duration }}",
        "d.txt",
        minijinja::context! { a => 250_000, b => 4_500_000, c => 250 },
    );
    assert_eq!(out, "4m 10s / 1h 15m / 250ms");
}
