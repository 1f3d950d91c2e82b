//! `application/x-www-form-urlencoded` decoding for the few handlers that must see the raw body
//! first (Slack signs the body exactly as sent).

/// A form body as text. Browsers send UTF-8; anything else is read lossily rather than refused
/// with a plain-text rejection.
pub fn text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// Decodes `a=1&b=x%20y` into pairs. Never fails: bad escapes are kept literally.
pub fn parse(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

pub(crate) fn field(body: &str, name: &str) -> Option<String> {
    parse(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(
            parse("a=1&b=x+y%21&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), String::new())
            ]
        );
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%é%"), "%é%");
        assert_eq!(
            field("payload=%7B%22a%22%3A1%7D", "payload").as_deref(),
            Some("{\"a\":1}")
        );
    }
}
