//! Escaping, truncation and duration wording for text that leaves the service (Slack mrkdwn,
//! HTML mail and pages, digests, vendor fields with length limits). One copy of each, so that a
//! fix reaches every channel. Imports nothing from the crate: every layer may use it.

/// At most `max` characters, cut on a character boundary, an ellipsis (counted) marking the cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack's required escaping of `&`, `<` and `>`: without it `<!channel>` or
/// `<https://evil|Sentry>` in an error message would become a mention or a disguised link.
pub(crate) fn slack_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// A span of time for people, in one spelling everywhere (messages, post-mortems, digests,
/// pages, timeline notes): the largest unit and the next one. `350ms`, `45s`, `4m 10s`,
/// `15m 0s`, `1h 5m`, `2d 3h`. Negative spans read `0s`.
pub(crate) fn duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A countdown as a clock reads it, for a deadline people watch tick (the web page's
/// "escalates in 12:34"): `M:SS` under an hour, `H:MM:SS` from an hour on. A span already past
/// reads `0:00`; spans of time in words are [`duration`]'s.
pub(crate) fn clock(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (hours, mins, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{hours}:{mins:02}:{s:02}")
    } else {
        format!("{mins}:{s:02}")
    }
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

/// `database_url` with its password masked (`postgres://paiid:***@db/paiid`), for logs and
/// error messages: the URL is configuration, its password a secret.
pub fn redact_url_password(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => database_url.to_string(),
        },
        None => database_url.to_string(),
    }
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
    fn durations_have_one_spelling() {
        for (ms, text) in [
            (-5_000, "0s"),
            (0, "0s"),
            (350, "350ms"),
            (999, "999ms"),
            (1_000, "1s"),
            (45_000, "45s"),
            (250_000, "4m 10s"),
            (900_000, "15m 0s"),
            (1_800_999, "30m 0s"),
            (3_600_000, "1h 0m"),
            (3_900_000, "1h 5m"),
            (3_930_000, "1h 5m"),
            (4_500_000, "1h 15m"),
            (86_400_000, "1d 0h"),
            (183_600_000, "2d 3h"),
            (i64::MAX, "106751991167d 7h"),
        ] {
            assert_eq!(duration(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn clocks_count_minutes_and_seconds() {
        for (ms, text) in [
            (-5_000, "0:00"),
            (999, "0:00"),
            (5_000, "0:05"),
            (754_000, "12:34"),
            (3_599_999, "59:59"),
            (3_600_000, "1:00:00"),
            (93_784_000, "26:03:04"),
        ] {
            assert_eq!(clock(ms), text, "{ms} ms");
        }
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

    #[test]
    fn a_database_password_is_masked_wherever_the_url_is_shown() {
        assert_eq!(
            redact_url_password("postgres://paiid:s3cr%40t@db.internal:5432/paiid?sslmode=require"),
            "postgres://paiid:***@db.internal:5432/paiid?sslmode=require"
        );
        assert_eq!(
            redact_url_password("postgres://paiid@db/paiid"),
            "postgres://paiid@db/paiid"
        );
        assert_eq!(
            redact_url_password("sqlite://paiid-alerts.db"),
            "sqlite://paiid-alerts.db"
        );
        assert_eq!(
            redact_url_password("postgres://u:p@h"),
            "postgres://u:***@h"
        );
    }
}
