//! Escaping and truncation for text that leaves the service (Slack mrkdwn, HTML mail and pages,
//! vendor fields with length limits). One copy of each, so that a fix reaches every channel.

/// At most `max` characters, cut on a character boundary, an ellipsis (counted) marking the cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack's required escaping of `&`, `<` and `>`: without it `<!channel>` or
/// `<https://evil|Sentry>` in an error message would become a mention or a disguised link.
pub fn slack_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

fn escape_with(s: &str, entity: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 0), "…");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            slack_escape("<!channel> & 'q'"),
            "&lt;!channel&gt; &amp; 'q'"
        );
        assert_eq!(
            html_escape(r#"<a href='x'>&"</a>"#),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
