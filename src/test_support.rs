//! Helpers shared by unit tests.

use std::path::{Path, PathBuf};

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sentry")
}

/// A fixture as Sentry sends it: compact JSON bytes.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read(fixtures_dir().join(name)).expect("fixture");
    let v: serde_json::Value = serde_json::from_slice(&text).expect("fixture json");
    serde_json::to_vec(&v).expect("compact")
}

pub(crate) fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).expect("json")
}

/// `event_alert.triggered.1.json` -> `Some("event_alert")`; legacy plugin files -> `None`.
pub(crate) fn resource_of(file_name: &str) -> Option<String> {
    let resource = file_name.split('.').next()?;
    (resource != "legacy_webhook").then(|| resource.to_string())
}

pub(crate) fn routing() -> crate::config::RoutingConfig {
    let text = include_str!("../routing.yaml");
    crate::config::RoutingConfig::parse(Path::new("routing.yaml"), text, &|_| None)
        .expect("routing.yaml")
}
