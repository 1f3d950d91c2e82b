//! Property tests of the parsers that read hostile input: Sentry webhook bodies, ack tokens,
//! Slack interactions and PagerDuty webhooks (and the signature checks in front of them).
//!
//! They run in the normal suite on stable, so every CI run covers the parsers; the
//! coverage-guided fuzzing of the same functions lives in `fuzz/` (see README, "Fuzzing").
//! The seed is fixed so that a run is reproducible; set `PROPTEST_RNG_SEED` (and
//! `PROPTEST_CASES`) to explore further.

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use paiid_alerts::testing::auth::ack_token::{AckAction, AckClaims, AckKeys, TokenError};
use paiid_alerts::testing::auth::pagerduty_signature::verify_pagerduty_signature;
use paiid_alerts::testing::auth::slack_signature::{MAX_SKEW_SECS, verify_slack_request};
use paiid_alerts::testing::domain::{Episode, IncidentId};
use paiid_alerts::testing::http::form;
use paiid_alerts::testing::http::inbound::{
    button_target, parse_pagerduty_webhook, parse_slack_interaction,
};
use paiid_alerts::testing::incidents::model::parse_dedup_key;
use paiid_alerts::testing::intake::sentry::{self, issue_id_from_url, value_from_description};
use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::intake::{AlertFacts, dedup_key};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use serde_json::{Value, json};

/// `cases` per property unless `PROPTEST_CASES` says otherwise, and a fixed seed unless
/// `PROPTEST_RNG_SEED` says otherwise (tests must be reproducible).
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5EED_A1E7);
    }
    config
}

// ---------- Sentry ----------

struct Fixture {
    name: String,
    resource: Option<String>,
    json: Value,
}

/// The real payloads of `../shared/fixtures/sentry` (not the REST `reference.*` objects).
fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sentry");
        let mut out: Vec<Fixture> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().to_string();
                if name.starts_with("reference.") {
                    return None;
                }
                let resource = name.split('.').next().filter(|r| *r != "legacy_webhook");
                let json = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                Some(Fixture {
                    resource: resource.map(str::to_string),
                    name,
                    json,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(out.len() >= 15, "fixtures missing from {}", dir.display());
        out
    })
}

/// The keys the Sentry parser reads, so generated objects hit its fields, not only unknown keys.
const SENTRY_KEYS: &[&str] = &[
    "action",
    "data",
    "actor",
    "name",
    "event",
    "error",
    "triggered_rule",
    "issue_alert",
    "metric_alert",
    "alert_rule",
    "description_text",
    "description_title",
    "web_url",
    "issue_url",
    "url",
    "issue",
    "issue_id",
    "id",
    "assignee",
    "comment",
    "event_id",
    "level",
    "environment",
    "title",
    "message",
    "culprit",
    "project",
    "projects",
    "project_slug",
    "release",
    "tags",
    "key",
    "value",
    "timestamp",
    "start_timestamp",
    "type",
    "transaction",
    "aggregate",
    "threshold_type",
    "triggering_rules",
    "permalink",
    "slug",
];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SENTRY_KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Strings that mean something to the parser, and arbitrary ones.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => prop::sample::select(&[
            "", "inf", "-inf", "NaN", "1e308", "-1e308", "transaction", "error", "fatal",
            "javascript:alert(1)", " HTTPS://sentry.io/x",
            "https://sentry.io/organizations/o/issues/12/",
            "https://sentry.io/api/0/projects/o/p/events/e/", "/issues/", "/projects/",
            "2450.0 p95(transaction.duration) in the last 10 minutes", "0.5 apdex() x",
            "p95(transaction.duration)", "percentile(transaction.duration,0.9)",
        ][..]).prop_map(str::to_string),
        1 => "[0-9eE.+-]{0,12}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        json_string().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// JSON pointers of every node below the root.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(path.clone());
                pointers(child, &path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{prefix}/{i}");
                out.push(path.clone());
                pointers(child, &path, out);
            }
        }
        _ => {}
    }
}

/// Replaces the node at `at` (one of all nodes) with `with`, or sets it to null.
fn mutate(value: &mut Value, at: &Index, with: Option<Value>) {
    let mut all = Vec::new();
    pointers(value, "", &mut all);
    if all.is_empty() {
        return;
    }
    if let Some(node) = value.pointer_mut(&all[at.index(all.len())]) {
        *node = with.unwrap_or(Value::Null);
    }
}

const RESOURCES: &[&str] = &[
    "event_alert",
    "metric_alert",
    "issue",
    "error",
    "comment",
    "installation",
    "seer",
    "",
];

/// What must hold for any body `parse` accepts.
fn check_facts(facts: &AlertFacts, body: &[u8]) -> Result<(), TestCaseError> {
    if let Some(url) = &facts.web_url {
        let url = url.trim_start().to_ascii_lowercase();
        prop_assert!(
            url.starts_with("https://") || url.starts_with("http://"),
            "web_url {url:?}"
        );
    }
    if let Some(value) = facts.metric.as_ref().and_then(|m| m.value) {
        prop_assert!(value.is_finite(), "metric value {value}");
    }
    if let Some(ms) = facts.transaction_duration_ms {
        prop_assert!(ms.is_finite() && ms >= 0.0, "transaction duration {ms}");
    }
    let _ = (
        dedup_key(facts, body),
        facts.incident_key(),
        facts.meaning(),
    );
    Ok(())
}

/// A Sentry timestamp: a JSON number, or a string Sentry's lenient reader turns into one.
fn timestamp() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        (1.6e9..1.9e9f64).prop_map(Value::from),
        prop::sample::select(&["inf", "-inf", "NaN", "1e308", "-1e308", "1764403200.5"][..])
            .prop_map(Value::from),
        prop::sample::select(&[1e308, -1e308, f64::MAX, f64::MIN][..]).prop_map(Value::from),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn sentry_parse_never_panics_on_bytes(
        resource in prop::option::of(prop::sample::select(RESOURCES)),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(facts) = sentry::parse(resource, &body) {
            check_facts(&facts, &body)?;
        }
    }

    /// Real payloads with a few nodes replaced by other JSON: the shapes a Sentry change or an
    /// attacker would send, deep inside otherwise valid webhooks.
    #[test]
    fn sentry_parse_survives_mutated_fixtures(
        which in any::<Index>(),
        other_resource in prop::option::of(prop::sample::select(RESOURCES)),
        use_other in any::<bool>(),
        edits in prop::collection::vec(
            (any::<Index>(), prop::option::weighted(0.8, json_value())),
            1..4,
        ),
    ) {
        let fixture = &fixtures()[which.index(fixtures().len())];
        let mut json = fixture.json.clone();
        for (at, with) in edits {
            mutate(&mut json, &at, with);
        }
        let body = serde_json::to_vec(&json).unwrap();
        let resource = if use_other { other_resource } else { fixture.resource.as_deref() };
        if let Ok(facts) = sentry::parse(resource, &body) {
            check_facts(&facts, &body)?;
        }
    }

    /// Objects built from the parser's own keys, so nested `data.event.*` fields get values of
    /// every type.
    #[test]
    fn sentry_parse_survives_generated_objects(
        resource in prop::option::of(prop::sample::select(RESOURCES)),
        event in prop::collection::vec((json_key(), json_value()), 0..12),
        top in prop::collection::vec((json_key(), json_value()), 0..4),
    ) {
        let event: serde_json::Map<String, Value> = event.into_iter().collect();
        let mut root: serde_json::Map<String, Value> = top.into_iter().collect();
        let event = Value::Object(event);
        root.insert(
            "data".into(),
            json!({ "event": event, "error": event, "issue": event, "metric_alert": event }),
        );
        // The legacy plugin puts the event at the top level and under `event`.
        root.insert("event".into(), event);
        let body = serde_json::to_vec(&Value::Object(root)).unwrap();
        if let Ok(facts) = sentry::parse(resource, &body) {
            check_facts(&facts, &body)?;
        }
    }

    /// Deep nesting where the lenient readers skip values (`tags`, unknown keys): refused or
    /// read, never a stack overflow.
    #[test]
    fn sentry_parse_survives_deep_nesting(
        which in any::<Index>(),
        depth in 0..2000usize,
        open in prop::sample::select(&["[", "{\"k\":", "[[", "[{\"key\":"][..]),
        at in prop::sample::select(&["tags", "extra", "title"][..]),
    ) {
        let fixture = &fixtures()[which.index(fixtures().len())];
        let mut json = fixture.json.clone();
        let pointer = if json.pointer("/data/event").is_some() {
            "/data/event"
        } else {
            "/event"
        };
        let Some(Value::Object(event)) = json.pointer_mut(pointer) else {
            return Ok(());
        };
        event.insert(at.to_string(), json!("__DEEP__"));
        let close: String = open
            .chars()
            .rev()
            .filter_map(|c| match c {
                '[' => Some(']'),
                '{' => Some('}'),
                _ => None,
            })
            .collect();
        let deep = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let body = serde_json::to_string(&json).unwrap().replace("\"__DEEP__\"", &deep);
        if let Ok(facts) = sentry::parse(fixture.resource.as_deref(), body.as_bytes()) {
            check_facts(&facts, body.as_bytes())?;
        }
    }

    /// Sentry sends compact JSON, the fixtures are pretty-printed, a proxy may re-indent:
    /// whitespace between tokens must not change what is read.
    #[test]
    fn sentry_facts_do_not_depend_on_whitespace(
        which in any::<Index>(),
        indent in prop::collection::vec(
            prop::sample::select(&[b' ', b'\t', b'\n', b'\r'][..]),
            0..6,
        ),
    ) {
        let fixture = &fixtures()[which.index(fixtures().len())];
        let compact = serde_json::to_vec(&fixture.json).unwrap();
        let mut spaced = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
        let mut ser = serde_json::Serializer::with_formatter(&mut spaced, formatter);
        serde::Serialize::serialize(&fixture.json, &mut ser).unwrap();
        let resource = fixture.resource.as_deref();
        let a = sentry::parse(resource, &compact).map_err(|e| e.to_string());
        let b = sentry::parse(resource, &spaced).map_err(|e| e.to_string());
        prop_assert!(a.is_ok(), "{}: {a:?}", fixture.name);
        prop_assert_eq!(a, b, "{}", &fixture.name);
    }

    /// A transaction's duration is `timestamp - start_timestamp`; the classifier compares it with
    /// `transaction_duration_over_ms`, so it must be a real, non-negative number of ms.
    #[test]
    fn transaction_duration_is_finite(
        end in timestamp(),
        start in timestamp(),
        legacy in any::<bool>(),
    ) {
        // A real payload around the event, so only the timestamps are unusual.
        let (name, pointer) = if legacy {
            ("legacy_webhook.1.json", "/event")
        } else {
            ("event_alert.triggered.1.json", "/data/event")
        };
        let fixture = fixtures().iter().find(|f| f.name == name).unwrap();
        let mut json = fixture.json.clone();
        let event = json.pointer_mut(pointer).unwrap();
        event["type"] = json!("transaction");
        event["timestamp"] = end.clone();
        event["start_timestamp"] = start.clone();
        let body = serde_json::to_vec(&json).unwrap();
        let facts = sentry::parse(fixture.resource.as_deref(), &body);
        prop_assert!(facts.is_ok(), "{facts:?}");
        let facts = facts.unwrap();
        if let Some(ms) = facts.transaction_duration_ms {
            prop_assert!(ms.is_finite() && ms >= 0.0, "{end} - {start} gave {ms} ms");
        }
    }

    #[test]
    fn metric_value_is_finite_or_absent(text in json_string(), tail in ".{0,20}") {
        let text = format!("{text} {tail}");
        if let Some(v) = value_from_description(&text) {
            prop_assert!(v.is_finite());
        }
    }

    #[test]
    fn issue_id_from_url_is_digits(
        url in ".{0,40}",
        id in "[0-9]{1,12}",
        tail in "([^0-9].{0,10})?",
    ) {
        prop_assume!(!url.contains("/issues/"));
        prop_assert_eq!(issue_id_from_url(&format!("{url}/issues/{id}{tail}")), Some(id));
        if let Some(found) = issue_id_from_url(&url) {
            prop_assert!(!found.is_empty() && found.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}

// ---------- ack tokens ----------

const NOW: i64 = 1_800_000_000;

fn ack_keys() -> AckKeys {
    AckKeys::new(("a", &[7u8; 32]), &[("old", &[42u8; 32])]).unwrap()
}

fn claims() -> impl Strategy<Value = AckClaims> {
    (
        any::<i64>(),
        prop::sample::select(&[AckAction::Acknowledge, AckAction::Resolve][..]),
        ".{0,100}",
        1..=1_000_000_000i64,
        any::<i64>(),
    )
        .prop_map(|(incident, action, recipient, ttl, ver)| AckClaims {
            kid: String::new(),
            incident: IncidentId(incident),
            action,
            recipient,
            exp: NOW + ttl,
            ver: Episode(ver),
        })
}

/// Characters a tampered link might carry: the token alphabet and its neighbours.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/% "
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn ack_token_roundtrips(claims in claims()) {
        let keys = ack_keys();
        let token = keys.sign(&claims);
        let expected = AckClaims { kid: "a".into(), ..claims.clone() };
        prop_assert_eq!(keys.verify(&token, NOW), Ok(expected));
        prop_assert_eq!(keys.verify(&token, claims.exp), Err(TokenError::Expired));
    }

    /// Any change to a signed token, one character swapped, inserted or cut, is refused.
    #[test]
    fn tampered_ack_token_never_verifies(
        claims in claims(),
        at in any::<Index>(),
        with in token_char(),
        how in 0..3u8,
    ) {
        let keys = ack_keys();
        let token = keys.sign(&claims);
        let mut chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        match how {
            0 => chars[i] = with,
            1 => chars.insert(i, with),
            _ => {
                chars.truncate(i);
            }
        }
        let tampered: String = chars.into_iter().collect();
        prop_assume!(tampered != token);
        prop_assert!(keys.verify(&tampered, NOW).is_err(), "{tampered}");
    }

    #[test]
    fn arbitrary_text_is_never_a_token(
        text in ".{0,300}",
        dotted in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,60}",
    ) {
        let keys = ack_keys();
        prop_assert!(keys.verify(&text, NOW).is_err());
        prop_assert!(keys.verify(&dotted, NOW).is_err());
        let _ = AckKeys::from_env_value(&text);
    }

    /// `ACK_SIGNING_KEY` may spell a secret in hex or base64: the key is the same either way.
    #[test]
    fn signing_key_encodings_agree(
        secret in prop::collection::vec(any::<u8>(), 32..64),
        kid in "[A-Za-z0-9._-]{1,64}",
        claims in claims(),
    ) {
        let by_hex = AckKeys::from_env_value(&format!("{kid}:{}", hex::encode(&secret))).unwrap();
        let by_b64 =
            AckKeys::from_env_value(&format!(" {kid} : {} ", STANDARD.encode(&secret))).unwrap();
        prop_assert_eq!(by_b64.current_kid(), kid.as_str());
        let token = by_hex.sign(&claims);
        prop_assert_eq!(by_b64.verify(&token, NOW), by_hex.verify(&token, NOW));
        prop_assert!(by_b64.verify(&token, NOW).is_ok());
    }

    /// A token's payload is only read after its MAC checks out, whatever the payload holds.
    #[test]
    fn forged_payloads_are_refused(
        payload in json_value(),
        mac in prop::collection::vec(any::<u8>(), 32),
    ) {
        let keys = ack_keys();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
            URL_SAFE_NO_PAD.encode(&mac)
        );
        prop_assert!(keys.verify(&token, NOW).is_err());
    }
}

// ---------- Slack ----------

/// `application/x-www-form-urlencoded`, as Slack sends it (space as `+` or `%20`).
fn urlencode(s: &str, plus_for_space: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Hex HMAC-SHA256 of the concatenated parts, through the crate's own helper.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    sign(secret, &parts.concat())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn slack_parse_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..512),
        text in "(payload=)?.{0,200}",
    ) {
        let _ = parse_slack_interaction(&body);
        if let Ok(payload) = parse_slack_interaction(text.as_bytes()) {
            for action in &payload.actions {
                let _ = action.value.as_deref().map(button_target);
            }
        }
    }

    /// A payload survives JSON + form encoding, among other form fields.
    #[test]
    fn slack_payload_roundtrips_through_the_form(
        kind in prop_oneof![Just("block_actions".to_string()), any::<String>()],
        user in (
            prop::option::of(any::<String>()),
            prop::option::of(any::<String>()),
            prop::option::of(any::<String>()),
        ),
        actions in prop::collection::vec(
            (any::<String>(), prop::option::of(any::<String>())),
            0..5,
        ),
        plus in any::<bool>(),
        before in "[a-z_]{1,10}=[A-Za-z0-9%]{0,10}",
    ) {
        let json = json!({
            "type": kind,
            "user": { "id": user.0, "username": user.1, "name": user.2 },
            "actions": actions
                .iter()
                .map(|(id, value)| json!({ "action_id": id, "value": value }))
                .collect::<Vec<_>>(),
        });
        prop_assume!(!before.starts_with("payload="));
        let body = format!(
            "{before}&payload={}&trigger_id=1.2.3",
            urlencode(&json.to_string(), plus)
        );
        let got = parse_slack_interaction(body.as_bytes()).unwrap();
        prop_assert_eq!(&got.kind, &kind);
        prop_assert_eq!((got.user.id, got.user.username, got.user.name), user);
        let got_actions: Vec<_> = got.actions.into_iter().map(|a| (a.action_id, a.value)).collect();
        prop_assert_eq!(got_actions, actions);
    }

    #[test]
    fn button_values_roundtrip(
        id in any::<i64>(),
        episode in prop::option::of(any::<i64>()),
        pad in "[ \t]{0,2}",
        junk in ".{0,20}",
    ) {
        let value = match episode {
            Some(e) => format!("{pad}{id}:{e}{pad}"),
            None => format!("{pad}{id}{pad}"),
        };
        prop_assert_eq!(button_target(&value), Some((IncidentId(id), episode.map(Episode))));
        if let Some((id, episode)) = button_target(&junk) {
            let again = match episode {
                Some(e) => format!("{id}:{e}"),
                None => id.to_string(),
            };
            prop_assert_eq!(button_target(&again), Some((id, episode)));
        }
    }

    #[test]
    fn form_decoding_inverts_encoding(
        s in any::<String>(),
        plus in any::<bool>(),
        raw in ".{0,60}",
    ) {
        prop_assert_eq!(form::decode(&urlencode(&s, plus)), s);
        let _ = form::parse(&raw);
    }

    #[test]
    fn slack_signature_accepts_fresh_signed_bodies_only(
        body in prop::collection::vec(any::<u8>(), 0..300),
        skew in -(MAX_SKEW_SECS as i64)..=(MAX_SKEW_SECS as i64),
        flip in any::<Index>(),
        ts_header in ".{0,20}",
        sig_header in ".{0,80}",
    ) {
        let secret = b"slack-signing-secret";
        let now = 1_531_420_618i64;
        let ts = (now + skew).to_string();
        let sig = format!("v0={}", hmac_hex(secret, &[b"v0:", ts.as_bytes(), b":", &body]));
        prop_assert_eq!(verify_slack_request(secret, Some(&ts), Some(&sig), &body, now), Ok(()));
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(b'x');
        } else {
            let i = flip.index(changed.len());
            changed[i] ^= 1;
        }
        prop_assert!(verify_slack_request(secret, Some(&ts), Some(&sig), &changed, now).is_err());
        let _ = verify_slack_request(secret, Some(&ts_header), Some(&sig_header), &body, now);
    }
}

// ---------- PagerDuty ----------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn pagerduty_parse_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..512),
        event in json_value(),
    ) {
        let _ = parse_pagerduty_webhook(&body);
        let wrapped = serde_json::to_vec(&json!({ "event": event })).unwrap();
        if let Ok(event) = parse_pagerduty_webhook(&wrapped) {
            let _ = (event.incident_key().and_then(parse_dedup_key), event.pagerduty_incident_id());
        }
    }

    #[test]
    fn pagerduty_event_roundtrips(
        id in prop::option::of(any::<String>()),
        event_type in prop_oneof![
            Just("incident.acknowledged".to_string()),
            Just("incident.resolved".to_string()),
            any::<String>(),
        ],
        agent in prop::option::of(prop::option::of(any::<String>())),
        incident in 0..=i64::MAX,
        episode in 0..=i64::MAX,
        pd_id in any::<String>(),
        extra in json_value(),
    ) {
        let key = format!("paiid-alerts-{incident}-{episode}");
        let body = serde_json::to_vec(&json!({
            "event": {
                "id": id,
                "event_type": event_type,
                "agent": agent
                    .as_ref()
                    .map(|summary| json!({ "summary": summary, "type": "user_reference" })),
                "occurred_at": "2026-11-29T10:00:00Z",
                "data": { "id": pd_id, "incident_key": key, "extra": extra },
            }
        }))
        .unwrap();
        let event = parse_pagerduty_webhook(&body).unwrap();
        prop_assert_eq!(&event.id, &id);
        prop_assert_eq!(&event.event_type, &event_type);
        prop_assert_eq!(event.agent.as_ref().map(|a| a.summary.clone()), agent);
        prop_assert_eq!(event.incident_key(), Some(key.as_str()));
        prop_assert_eq!(event.pagerduty_incident_id(), Some(pd_id.as_str()));
        prop_assert_eq!(parse_dedup_key(&key), Some((IncidentId(incident), Episode(episode))));
    }

    /// During a secret rotation PagerDuty sends one `v1=` per secret, among entries of other
    /// versions: the matching one is found wherever it is.
    #[test]
    fn pagerduty_signature_finds_the_matching_entry(
        body in prop::collection::vec(any::<u8>(), 0..300),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        others in prop::collection::vec("(v1|v2|v0)=[0-9a-f]{0,64}", 0..6),
        at in any::<Index>(),
        header in ".{0,120}",
    ) {
        let mut entries = others;
        let good = format!("v1={}", hmac_hex(&secret, &[&body]));
        let i = at.index(entries.len() + 1);
        entries.insert(i, good);
        let joined = entries.join(", ");
        prop_assert_eq!(verify_pagerduty_signature(&secret, Some(&joined), &body), Ok(()));
        let mut other_body = body.clone();
        other_body.push(0);
        prop_assert!(verify_pagerduty_signature(&secret, Some(&joined), &other_body).is_err());
        let _ = verify_pagerduty_signature(&secret, Some(&header), &body);
    }
}
