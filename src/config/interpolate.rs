//! `${ENV}` interpolation for channel settings. Secrets live only in the environment; a reference
//! to an unset variable leaves the value absent (the channel then falls back to the log channel)
//! instead of failing the whole configuration.

/// The outcome of interpolating one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interpolated {
    Value(String),
    /// These variables were referenced but are unset or empty.
    Missing(Vec<String>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unterminated `${{` in `{0}`")]
pub(crate) struct InterpolationError(pub String);

/// Replaces `${NAME}` (and `${NAME:-default}`) using `lookup`.
pub(crate) fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolationError> {
    let mut out = String::with_capacity(input.len());
    let mut missing = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| InterpolationError(redact_for_message(input)))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n.trim(), Some(d)),
            None => (expr.trim(), None),
        };
        match lookup(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => missing.push(name.to_string()),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(Interpolated::Value(out))
    } else {
        Ok(Interpolated::Missing(missing))
    }
}

/// Error messages may quote the template (which names variables) but never a resolved value.
fn redact_for_message(template: &str) -> String {
    template.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_reports_missing() {
        assert_eq!(
            interpolate("a-${SET}-b", &env).unwrap(),
            Interpolated::Value("a-value-b".into())
        );
        assert_eq!(
            interpolate("${UNSET}", &env).unwrap(),
            Interpolated::Missing(vec!["UNSET".into()])
        );
        assert_eq!(
            interpolate("${EMPTY}", &env).unwrap(),
            Interpolated::Missing(vec!["EMPTY".into()])
        );
        assert_eq!(
            interpolate("${UNSET:-fallback}", &env).unwrap(),
            Interpolated::Value("fallback".into())
        );
        assert_eq!(
            interpolate("plain", &env).unwrap(),
            Interpolated::Value("plain".into())
        );
        assert!(interpolate("${OPEN", &env).is_err());
    }
}
