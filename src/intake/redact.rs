//! Secret and PII scrubbing for Sentry data (the event details a message shows are picked in
//! `intake::details` when an event arrives, and pass through here before they are stored).
//!
//! Sentry events carry whatever the failing service had in hand: request headers with bearer
//! tokens and cookies, frame variables holding DSNs, user emails and IP addresses. Alert messages
//! travel to Slack, PagerDuty and mailboxes that are far less protected than Sentry itself, so
//! everything that leaves this module has been scrubbed. Scrubbing is deliberately greedy: a key
//! that merely *looks* sensitive (`author` contains `auth`) loses its value, because a redacted
//! harmless value costs nothing while a leaked token costs a rotation.
//!
//! Nothing here panics on odd shapes: every accessor tolerates missing keys, wrong types, `null`
//! and legacy `sentry.interfaces.*` spellings.

use serde_json::{Map, Value};

/// Replacement for secret values.
pub(crate) const REDACTED: &str = "[REDACTED]";
/// Replacement for email addresses found in free text when PII is excluded.
pub(crate) const EMAIL_MASK: &str = "[email]";
/// Replacement for IP addresses found in free text when PII is excluded.
pub(crate) const IP_MASK: &str = "[ip]";

/// Key fragments (lower-case, with `-`, `_`, `.` and spaces removed) whose values are secrets.
/// Substring match: `x-auth-token`, `sessionid`, `stripe_secret_key`, `Proxy-Authorization` all hit.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "auth",
    "credential",
    "session",
    "cookie",
    "dsn",
    "privatekey",
    "accesskey",
    "csrf",
    "xsrf",
    "jwt",
    "signature",
    "creditcard",
    "cardnumber",
    "ccnumber",
    "cvv",
    "cvc",
];

/// Key fragments whose values are personal data, dropped entirely unless PII is allowed.
const PII_KEY_PARTS: &[&str] = &[
    "email",
    "ipaddress",
    "remoteaddr",
    "forwardedfor",
    "realip",
    "connectingip",
    "clientip",
];

/// Exact (normalised) PII key names too short to match as substrings safely.
const PII_KEY_EXACT: &[&str] = &["forwarded", "ip"];

/// Header-like keys whose value runs to the end of the line in free text (`Cookie: a=b; c=d`).
const WHOLE_LINE_KEYS: &[&str] = &["cookie", "setcookie", "authorization", "proxyauthorization"];

/// Words that introduce a credential in an `Authorization` value.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "digest", "negotiate", "token"];

/// serde_json refuses to parse deeper than 128 levels; values built in code could be deeper, and
/// recursion must stay bounded either way.
const MAX_DEPTH: usize = 128;

fn normalise_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '\'' | '"'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when a key's value should be replaced by [`REDACTED`] (passwords, tokens, cookies, ...).
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = normalise_key(key);
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
}

/// True when a key holds personal data (emails, client IP addresses).
pub(crate) fn is_pii_key(key: &str) -> bool {
    let k = normalise_key(key);
    PII_KEY_EXACT.contains(&k.as_str()) || PII_KEY_PARTS.iter().any(|p| k.contains(p))
}

/// Returns a scrubbed copy of `value`. See [`scrub_value`].
pub(crate) fn scrubbed(value: &Value, include_pii: bool) -> Value {
    let mut v = value.clone();
    scrub_value(&mut v, include_pii);
    v
}

/// Scrubs a JSON value in place, recursively:
/// - values under secret-looking keys become `"[REDACTED]"` (booleans and `null` are kept: they
///   cannot hold a secret and `unauthorized: false` is useful);
/// - unless `include_pii`, PII keys (`email`, `ip_address`, `REMOTE_ADDR`, `X-Forwarded-For`, ...)
///   are removed;
/// - `[[key, value], ...]` pair lists (Sentry's headers, cookies, query strings, tags) are treated
///   like objects;
/// - every string goes through [`scrub_text`].
pub(crate) fn scrub_value(value: &mut Value, include_pii: bool) {
    scrub_value_at(value, include_pii, 0);
}

fn scrub_value_at(value: &mut Value, include_pii: bool, depth: usize) {
    if depth > MAX_DEPTH {
        *value = Value::String("[too deep]".to_string());
        return;
    }
    match value {
        Value::String(s) => {
            let clean = scrub_text(s, include_pii);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(items) => {
            if is_pair_list(items) {
                if !include_pii {
                    items.retain(|pair| !pair_key(pair).is_some_and(is_pii_key));
                }
                for pair in items.iter_mut() {
                    let secret = pair_key(pair).is_some_and(is_secret_key);
                    if let Value::Array(kv) = pair
                        && let Some(v) = kv.get_mut(1)
                    {
                        if secret {
                            redact_in_place(v);
                        } else {
                            scrub_value_at(v, include_pii, depth + 1);
                        }
                    }
                }
            } else {
                for item in items.iter_mut() {
                    scrub_value_at(item, include_pii, depth + 1);
                }
            }
        }
        Value::Object(map) => scrub_object(map, include_pii, depth),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn scrub_object(map: &mut Map<String, Value>, include_pii: bool, depth: usize) {
    if !include_pii {
        map.retain(|k, _| !is_pii_key(k));
    }
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) {
            redact_in_place(v);
        } else {
            scrub_value_at(v, include_pii, depth + 1);
        }
    }
}

fn redact_in_place(v: &mut Value) {
    if !matches!(v, Value::Null | Value::Bool(_)) {
        *v = Value::String(REDACTED.to_string());
    }
}

/// A list whose every element is a two-element array starting with a string: Sentry's wire form
/// for headers, cookies, query strings and tags.
fn is_pair_list(items: &[Value]) -> bool {
    !items.is_empty()
        && items.iter().all(|item| match item {
            Value::Array(kv) => kv.len() == 2 && kv[0].is_string(),
            _ => false,
        })
}

fn pair_key(pair: &Value) -> Option<&str> {
    pair.as_array()?.first()?.as_str()
}

/// Scrubs free text (messages, URLs, frame lines):
/// - credentials in URLs (`https://user:pass@host` → `https://[REDACTED]@host`, which also covers
///   Sentry DSNs);
/// - `key=value` / `key: value` / `"key": "value"` where the key looks secret (URL query strings
///   included: `?token=abc` → `?token=[REDACTED]`), with `Cookie:` / `Authorization:` running to
///   the end of the line;
/// - bearer / basic credentials;
/// - payment card numbers (Luhn-checked);
/// - unless `include_pii`, email addresses and IPv4/IPv6 addresses.
///
/// Idempotent: scrubbing scrubbed text changes nothing.
pub fn scrub_text(text: &str, include_pii: bool) -> String {
    let s = redact_url_userinfo(text);
    let s = redact_key_values(&s);
    let s = redact_auth_schemes(&s);
    let s = redact_card_numbers(&s);
    if include_pii {
        return s;
    }
    let s = mask_emails(&s);
    let s = mask_ipv4(&s);
    mask_ipv6(&s)
}

/// Rebuilds `s` with byte ranges replaced. Ranges are sorted and non-overlapping, and always sit
/// on ASCII delimiters, so slicing is on char boundaries.
fn splice(s: &str, spans: &[(usize, usize, &str)]) -> String {
    if spans.is_empty() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for &(start, end, with) in spans {
        if start < last || end > s.len() || start > end {
            continue;
        }
        out.push_str(s.get(last..start).unwrap_or(""));
        out.push_str(with);
        last = end;
    }
    out.push_str(s.get(last..).unwrap_or(""));
    out
}

fn redact_url_userinfo(s: &str) -> String {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(pos) = s.get(from..).and_then(|rest| rest.find("://")) {
        let auth_start = from + pos + 3;
        let rest = s.get(auth_start..).unwrap_or("");
        let auth_len = rest
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']'
                ) || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        let authority = rest.get(..auth_len).unwrap_or("");
        if let Some(at) = authority.rfind('@')
            && at > 0
            && authority.get(..at) != Some(REDACTED)
        {
            spans.push((auth_start, auth_start + at, REDACTED));
        }
        from = auth_start + auth_len;
    }
    splice(s, &spans)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_value_delim(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b';' | b',' | b'"' | b'\'' | b')' | b']' | b'}' | b'>' | b'<' | b'|'
        )
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn redact_key_values(s: &str) -> String {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident_byte(b[i]) || (i > 0 && is_ident_byte(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident_byte(b[i]) {
            i += 1;
        }
        let key = s.get(start..i).unwrap_or("");
        if !is_secret_key(key) {
            continue;
        }
        if let Some((vs, ve)) = find_secret_value(s, i, key) {
            spans.push((vs, ve, REDACTED));
            i = ve;
        }
    }
    splice(s, &spans)
}

/// After a secret-looking key ending at `i`, finds the value's byte range, if the key is followed
/// by `=` or `:` (optionally quoted, as in JSON or Python reprs).
fn find_secret_value(s: &str, i: usize, key: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut k = i;
    if k < b.len() && (b[k] == b'"' || b[k] == b'\'') {
        k += 1;
    }
    k = skip_blanks(b, k);
    let sep = *b.get(k)?;
    if sep != b'=' && sep != b':' {
        return None;
    }
    let next = b.get(k + 1).copied();
    // `token://`, `Foo::token`, `token == x` are not assignments.
    if (sep == b':' && matches!(next, Some(b'/') | Some(b':')))
        || (sep == b'=' && next == Some(b'='))
    {
        return None;
    }
    k = skip_blanks(b, k + 1);
    if s.get(k..).is_some_and(|rest| rest.starts_with(REDACTED)) {
        return None;
    }
    let (vs, ve) = match b.get(k) {
        Some(&q) if q == b'"' || q == b'\'' => {
            let vs = k + 1;
            let ve = b
                .get(vs..)?
                .iter()
                .position(|&c| c == q || c == b'\n')
                .map_or(b.len(), |p| vs + p);
            (vs, ve)
        }
        Some(_) => {
            let whole_line = sep == b':' && WHOLE_LINE_KEYS.contains(&normalise_key(key).as_str());
            let ve = if whole_line {
                b.get(k..)?
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map_or(b.len(), |p| k + p)
            } else {
                let mut e = k;
                while e < b.len() && !is_value_delim(b[e]) {
                    e += 1;
                }
                // `Authorization: Bearer abc`: the scheme word alone is not the secret.
                let word = s.get(k..e).unwrap_or("").to_ascii_lowercase();
                if AUTH_SCHEMES.contains(&word.as_str()) {
                    let t = skip_blanks(b, e);
                    let mut t2 = t;
                    while t2 < b.len() && !is_value_delim(b[t2]) {
                        t2 += 1;
                    }
                    if t2 > t {
                        e = t2;
                    }
                }
                e
            };
            // Trim trailing blanks of header-like values.
            let mut ve = ve;
            while ve > k && (b[ve - 1] == b' ' || b[ve - 1] == b'\t') {
                ve -= 1;
            }
            (k, ve)
        }
        None => return None,
    };
    if ve <= vs || s.get(vs..ve) == Some(REDACTED) {
        return None;
    }
    Some((vs, ve))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `Bearer <token>` and `Basic <base64>` anywhere in text.
fn redact_auth_schemes(s: &str) -> String {
    let b = s.as_bytes();
    let lower = s.to_ascii_lowercase();
    let mut spans = Vec::new();
    for (scheme, min_len) in [("bearer", 1usize), ("basic", 8)] {
        let mut from = 0;
        while let Some(pos) = lower.get(from..).and_then(|r| r.find(scheme)) {
            let start = from + pos;
            let end = start + scheme.len();
            from = end;
            if start > 0 && is_ident_byte(b[start - 1]) {
                continue;
            }
            if end >= b.len() || b[end] != b' ' {
                continue;
            }
            let ts = skip_blanks(b, end);
            let mut te = ts;
            while te < b.len() && is_token_byte(b[te]) {
                te += 1;
            }
            if te - ts >= min_len && s.get(ts..te) != Some(REDACTED) {
                spans.push((ts, te, REDACTED));
                from = te;
            }
        }
    }
    spans.sort_by_key(|sp| sp.0);
    splice(s, &spans)
}

fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Payment card numbers: 13-19 digits, optionally grouped by single spaces or dashes, starting
/// with a card-network digit and passing the Luhn check. Digits glued to paths, ids or decimals
/// (`/4505518370586624`, `v1.2`) are left alone so Sentry project ids in URLs survive.
fn redact_card_numbers(s: &str) -> String {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || (i > 0
                && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'/' | b'.' | b'_')))
        {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = Vec::new();
        let mut end = i;
        let mut j = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                digits.push(b[j] - b'0');
                j += 1;
                end = j;
            } else if (b[j] == b' ' || b[j] == b'-')
                && j + 1 < b.len()
                && b[j + 1].is_ascii_digit()
                && j > start
                && b[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        let glued_after = end < b.len()
            && (b[end].is_ascii_alphanumeric()
                || matches!(b[end], b'/' | b'_')
                || (b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit)));
        if (13..=19).contains(&digits.len())
            && matches!(digits.first(), Some(2..=6))
            && !glued_after
            && luhn_ok(&digits)
        {
            spans.push((start, end, REDACTED));
        }
        i = end.max(start + 1);
    }
    splice(s, &spans)
}

fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn mask_emails(s: &str) -> String {
    let b = s.as_bytes();
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    for (at, _) in s.match_indices('@') {
        let mut ls = at;
        while ls > 0 && is_email_local(b[ls - 1]) {
            ls -= 1;
        }
        let mut de = at + 1;
        while de < b.len() && is_domain_byte(b[de]) {
            de += 1;
        }
        while de > at + 1 && matches!(b[de - 1], b'.' | b'-') {
            de -= 1;
        }
        let domain = s.get(at + 1..de).unwrap_or("");
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic())
        });
        if ls < at && tld_ok && spans.last().is_none_or(|l| l.1 <= ls) {
            spans.push((ls, de, EMAIL_MASK));
        }
    }
    splice(s, &spans)
}

fn mask_ipv4(s: &str) -> String {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        if let Some(end) = parse_ipv4_at(b, i) {
            spans.push((i, end, IP_MASK));
            i = end;
        } else {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    splice(s, &spans)
}

fn parse_ipv4_at(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    for octet in 0..4 {
        if octet > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let os = i;
        while i < b.len() && b[i].is_ascii_digit() && i - os < 4 {
            i += 1;
        }
        let len = i - os;
        if len == 0 || len > 3 {
            return None;
        }
        let value: u32 = b[os..i]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
        if value > 255 {
            return None;
        }
    }
    let glued = b.get(i).is_some_and(|c| {
        c.is_ascii_alphanumeric() || (*c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if glued { None } else { Some(i) }
}

fn mask_ipv6(s: &str) -> String {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_hexdigit() || c == b':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b':') {
            i += 1;
        }
        let before_ok =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let after_ok = i >= b.len() || !(b[i].is_ascii_alphanumeric() || b[i] == b'_');
        let run = s.get(start..i).unwrap_or("");
        if before_ok && after_ok && looks_like_ipv6(run) {
            spans.push((start, i, IP_MASK));
        }
    }
    splice(s, &spans)
}

fn looks_like_ipv6(run: &str) -> bool {
    let colons = run.bytes().filter(|&c| c == b':').count();
    if !(2..=7).contains(&colons) {
        return false;
    }
    let groups: Vec<&str> = run.split(':').collect();
    if groups.iter().any(|g| g.len() > 4) {
        return false;
    }
    let compressed = run.matches("::").count();
    let full = colons == 7 && groups.iter().all(|g| !g.is_empty());
    // Requiring a digit keeps `add::feed`-style identifiers out; times (`12:30:45`) have no `::`.
    let has_digit = run.bytes().any(|c| c.is_ascii_digit());
    full || (compressed == 1 && has_digit && !run.contains(":::"))
}

#[cfg(test)]
mod tests;
