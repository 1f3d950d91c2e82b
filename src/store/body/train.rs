//! Training the dictionary of [`super`] from the real payloads: shared by
//! `examples/train_dictionary.rs` (which writes the asset) and the unit test that checks the
//! committed asset is what this makes. Not in the service.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Largest dictionary asked for. The trainer gives less when the samples are few.
const MAX_DICT: usize = 32 * 1024;
/// The trainer wants many samples; fifteen payloads are too few, so each is cut into pieces.
const PIECE: usize = 1024;

/// The payloads `payloads.dict` was trained on: every webhook fixture of 2026-12-05
/// (`reference.*` are REST API objects, not webhooks). Pinned, so that a fixture added later
/// does not make the test ask for a retrained dictionary: stored frames name their dictionary,
/// and rows compressed with this one need it as it is. A new dictionary gets a list and a file
/// of its own, added beside this one in `store::body::DICTIONARIES`.
pub(crate) const V1_FILES: &[&str] = &[
    "error.created.1.json",
    "event_alert.triggered.1.json",
    "event_alert.triggered.2.json",
    "event_alert.triggered.4.json",
    "event_alert.triggered.5.json",
    "issue.assigned.1.json",
    "issue.created.1.json",
    "issue.created.2.json",
    "issue.resolved.1.json",
    "legacy_webhook.1.json",
    "legacy_webhook.2.json",
    "metric_alert.critical.1.json",
    "metric_alert.resolved.1.json",
    "metric_alert.resolved.2.json",
    "metric_alert.warning.1.json",
];

/// The dictionary the payloads of [`V1_FILES`] in `dir` train.
pub(crate) fn train(dir: &Path) -> anyhow::Result<Vec<u8>> {
    train_files(&payload_files(dir))
}

/// The dictionary `files` train, in the order given.
pub(crate) fn train_files(files: &[PathBuf]) -> anyhow::Result<Vec<u8>> {
    let mut samples = Vec::new();
    for path in files {
        let pretty = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        // Sentry sends compact JSON; the fixture files are pretty-printed: learn both.
        for form in [compact(&pretty), pretty] {
            samples.extend(form.chunks(PIECE).map(<[u8]>::to_vec));
        }
    }
    Ok(zstd::dict::from_samples(&samples, MAX_DICT)?)
}

/// The paths of [`V1_FILES`] in `dir`, in name order.
pub(crate) fn payload_files(dir: &Path) -> Vec<PathBuf> {
    V1_FILES.iter().map(|name| dir.join(name)).collect()
}

/// JSON without the whitespace between tokens, keys in their order (as Sentry sends it).
fn compact(json: &[u8]) -> Vec<u8> {
    let (mut out, mut in_string, mut escaped) = (Vec::with_capacity(json.len()), false, false);
    for &b in json {
        if in_string {
            (escaped, in_string) = (!escaped && b == b'\\', escaped || b != b'"');
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}
