//! Is this body Sentry's at all, and can we read it? Checked before the typed parse.
//!
//! Three outcomes, on purpose different:
//! - nested deeper than any real payload, or without the envelope Sentry always sends: not
//!   Sentry's, refused (400) and nothing is stored;
//! - Sentry's envelope, but `data` lacks what the resource carries (Sentry's payloads do drift):
//!   kept as an unparsed event, counted and announced, never turned into a titleless incident;
//! - readable: the typed parse in [`super::sentry`] takes over.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Deepest nesting (objects and arrays) a body may have. Real payloads reach 10; serde_json
/// stops at 128 in the fields it reads, but skips unknown fields without any limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// True when `body` nests objects or arrays more than `limit` deep. A byte scan that skips
/// strings, so it needs no stack and reads each byte once; malformed JSON is left to serde.
pub(crate) fn exceeds_depth(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The JSON type of a value, and for strings whether they are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    EmptyString,
    String,
    Array,
    Object,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::EmptyString => "an empty string",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// A JSON value reduced to its type and, for objects near the top, its fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub fields: Vec<(String, Node)>,
}

impl Node {
    fn leaf(kind: Kind) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    /// The field's kind; `None` when absent. A repeated key counts as its last value, as serde
    /// reads it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn kind_of(&self, key: &str) -> Option<Kind> {
        self.get(key).map(|n| n.kind)
    }

    /// A string or number with something in it: what `lenient::Text` reads as present.
    fn has_text(&self, key: &str) -> bool {
        matches!(self.kind_of(key), Some(Kind::String | Kind::Number))
    }

    /// Sorted, deduplicated field names, capped so a hostile body cannot make a huge shape.
    fn key_list(&self) -> String {
        const MAX_KEYS: usize = 40;
        const MAX_KEY_CHARS: usize = 64;
        let mut keys: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let total = keys.len();
        let mut out: Vec<String> = keys
            .into_iter()
            .take(MAX_KEYS)
            .map(|k| k.chars().take(MAX_KEY_CHARS).collect())
            .collect();
        if total > MAX_KEYS {
            out.push(format!("…{} more", total - MAX_KEYS));
        }
        out.join(",")
    }
}

/// Reads a value, keeping object fields `depth` levels down; deeper values are skipped.
struct Probe {
    depth: u8,
}

impl<'de> DeserializeSeed<'de> for Probe {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Bool))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Number))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::leaf(Kind::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::leaf(if v.is_empty() {
            Kind::EmptyString
        } else {
            Kind::String
        }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Node::leaf(Kind::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut node = Node::leaf(Kind::Object);
        if self.depth == 0 {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(node);
        }
        while let Some(key) = a.next_key::<String>()? {
            let value = a.next_value_seed(Probe {
                depth: self.depth - 1,
            })?;
            node.fields.push((key, value));
        }
        Ok(node)
    }
}

/// Why a body is not Sentry's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "the body nests objects or arrays more than {MAX_DEPTH} levels deep; no Sentry payload does"
    )]
    TooDeep,
    /// The envelope fields that are missing (or of the wrong type), e.g. `action`, `data`.
    #[error("{}", describe_missing(.resource, .missing))]
    NotSentry {
        resource: Option<String>,
        missing: Vec<String>,
    },
}

fn describe_missing(resource: &Option<String>, missing: &[String]) -> String {
    let names = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match resource {
        Some(r) => format!(
            "not a Sentry webhook: missing {names} (every Sentry integration webhook, here \
             Sentry-Hook-Resource `{r}`, carries `action` (a string) and `data` (an object))"
        ),
        None => format!(
            "not a Sentry legacy WebHooks payload: missing {names} (the plugin always sends \
             `id`, `project` and `event`; integration webhooks need the Sentry-Hook-Resource header)"
        ),
    }
}

/// An envelope whose content we cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unreadable {
    /// What tells this kind of payload apart: the sorted top-level keys of `data` (of the whole
    /// body for the legacy plugin); `""` when there are none.
    pub shape: String,
    /// What we looked for and did not find, for people.
    pub reason: String,
}

/// What the checks found in a body that is Sentry's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// See [`Unreadable::shape`]; known for readable bodies too, in case their typed parse fails.
    pub shape: String,
    /// Why the body cannot be read; `None` when the typed parse should read it.
    pub problem: Option<String>,
}

impl Checked {
    pub(crate) fn unreadable(self, reason: Option<String>) -> Unreadable {
        Unreadable {
            shape: self.shape,
            reason: reason.or(self.problem).unwrap_or_default(),
        }
    }
}

/// Checks the envelope and readability (the depth is [`exceeds_depth`]'s: check it first, as
/// serde skips unknown fields without a depth limit). `resource` is the `Sentry-Hook-Resource` header,
/// `None` for the legacy plugin. Malformed JSON comes back as [`CheckError::Json`], reported as
/// it always was.
pub(crate) fn check(resource: Option<&str>, body: &[u8]) -> Result<Checked, CheckError> {
    // Root, `data`, the resource's object, and that object's fields' kinds.
    let mut de = serde_json::Deserializer::from_slice(body);
    let root = Probe { depth: 3 }.deserialize(&mut de)?;
    de.end()?;
    let missing = |names: Vec<&str>| {
        CheckError::Rejected(Rejection::NotSentry {
            resource: resource.map(str::to_string),
            missing: names.into_iter().map(str::to_string).collect(),
        })
    };
    let Some(resource) = resource else {
        let absent: Vec<&str> = ["id", "project", "event"]
            .into_iter()
            .filter(|k| root.get(k).is_none_or(|n| n.kind == Kind::Null))
            .collect();
        if !absent.is_empty() {
            return Err(missing(absent));
        }
        return Ok(legacy_verdict(&root));
    };
    let mut absent = Vec::new();
    if root.kind_of("action") != Some(Kind::String) {
        absent.push("action");
    }
    let data = root.get("data").filter(|d| d.kind == Kind::Object);
    if data.is_none() {
        absent.push("data");
    }
    let Some(data) = data.filter(|_| absent.is_empty()) else {
        return Err(missing(absent));
    };
    Ok(integration_verdict(resource, data))
}

/// Why [`check`] did not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Rejected(Rejection),
}

/// `data.<name>` must be an object; `None` when it is.
fn object_problem(data: &Node, name: &str) -> Option<String> {
    match data.kind_of(name) {
        Some(Kind::Object) => None,
        None => Some(format!("`data.{name}` is missing")),
        Some(kind) => Some(format!(
            "`data.{name}` is {}, not an object",
            kind.describe()
        )),
    }
}

fn integration_verdict(resource: &str, data: &Node) -> Checked {
    let problem = match resource {
        "event_alert" | "error" => {
            let name = if resource == "error" {
                "error"
            } else {
                "event"
            };
            object_problem(data, name).or_else(|| {
                let event = data.get(name)?;
                (!event.has_text("title") && !event.has_text("message"))
                    .then(|| format!("`data.{name}` has no `title`"))
            })
        }
        "metric_alert" => object_problem(data, "metric_alert").or_else(|| {
            let alert = data.get("metric_alert")?;
            (!alert.has_text("id") && alert.kind_of("alert_rule") != Some(Kind::Object))
                .then(|| "`data.metric_alert` has neither `id` nor `alert_rule`".to_string())
        }),
        "issue" => object_problem(data, "issue").or_else(|| {
            let issue = data.get("issue")?;
            (!issue.has_text("id")).then(|| "`data.issue` has no `id`".to_string())
        }),
        // Nothing here opens an incident without an id of its own.
        _ => None,
    };
    Checked {
        shape: data.key_list(),
        problem,
    }
}

fn legacy_verdict(root: &Node) -> Checked {
    let problem = match root.get("event") {
        Some(event) if event.kind == Kind::Object => {
            (!event.has_text("title") && !event.has_text("message") && !root.has_text("message"))
                .then(|| "neither `event.title` nor `message` is there".to_string())
        }
        Some(event) => Some(format!(
            "`event` is {}, not an object",
            event.kind.describe()
        )),
        None => Some("`event` is missing".to_string()),
    };
    Checked {
        shape: root.key_list(),
        problem,
    }
}

#[cfg(test)]
mod tests;
