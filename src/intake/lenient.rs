//! Serde helpers for Sentry's loosely typed JSON: a field that is a string in one payload is a
//! number, null, or an object in another. These types accept anything and borrow where the JSON
//! has no escapes, so parsing the request path allocates little.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A scalar rendered as text: strings as-is, numbers and booleans formatted; null, arrays and
/// objects become `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    pub(crate) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
    pub(crate) fn owned(&self) -> Option<String> {
        self.as_deref().map(str::to_string)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number that may arrive as a JSON number or a numeric string.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Number(pub Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = Text::deserialize(d)?;
        Ok(Number(
            t.as_deref().and_then(|s| s.trim().parse::<f64>().ok()),
        ))
    }
}

/// Sentry tags: usually `[[key, value], ...]`, sometimes `{key: value}` or `[{key, value}]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tags<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("tags")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = a.next_element::<TagPair<'de>>()? {
                    if let (Some(k), Some(v)) = (pair.0.0, pair.1.0) {
                        out.push((k, v));
                    }
                }
                Ok(Tags(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<Text<'de>, Text<'de>>()? {
                    if let (Some(k), Some(v)) = (k.0, v.0) {
                        out.push((k, v));
                    }
                }
                Ok(Tags(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One tag: `[key, value]` or `{key, value}`; anything else yields nothing.
struct TagPair<'a>(Text<'a>, Text<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for TagPair<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagPair<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let k = a.next_element::<Text<'de>>()?.unwrap_or_default();
                let v = a.next_element::<Text<'de>>()?.unwrap_or_default();
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TagPair(k, v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let (mut k, mut v) = (Text::default(), Text::default());
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "key" => k = a.next_value()?,
                        "value" => v = a.next_value()?,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TagPair(k, v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TagPair(Text::default(), Text::default()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings that tolerates null and non-string members (`triggering_rules`, `projects`).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct TextList<'a>(pub Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for TextList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextList(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextList(vec![Cow::Owned(v.to_string())]))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TextList::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = a.next_element::<Text<'de>>()? {
                    if let Some(s) = t.0 {
                        out.push(s);
                    }
                }
                Ok(TextList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TextList::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_accepts_anything() {
        let v: Vec<Text> =
            serde_json::from_str(r#"["a", 1, 2.5, true, null, [1], {"x": 1}]"#).unwrap();
        let got: Vec<Option<&str>> = v.iter().map(|t| t.as_deref()).collect();
        assert_eq!(
            got,
            vec![
                Some("a"),
                Some("1"),
                Some("2.5"),
                Some("true"),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn tags_in_every_shape() {
        let t: Tags =
            serde_json::from_str(r#"[["a","1"],["b",null],{"key":"c","value":"3"},null,"x"]"#)
                .unwrap();
        assert_eq!(t.0.len(), 2);
        let t: Tags = serde_json::from_str(r#"{"env":"prod","n":5}"#).unwrap();
        assert_eq!(t.0[1], (Cow::Borrowed("n"), Cow::Owned("5".into())));
    }

    #[test]
    fn odd_scalars_in_tags_and_lists_are_skipped_not_fatal() {
        for text in [r#"[true, -1, 2.5, 7, ["a","1"]]"#, "5", "-5", "true", "1.5"] {
            let t: Tags = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(t.0.len() <= 1, "{text}");
        }
        for text in ["5", "-5", "true", "1.5", r#"["a", 1, true]"#] {
            let l: TextList = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(l.0.len() <= 3, "{text}");
        }
    }
}
