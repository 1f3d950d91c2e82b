//! Training the dictionary of [`super`] from the real payloads: shared by
//! `examples/train_dictionary.rs` (which writes the asset) and the unit test that checks the
//! committed asset is what this makes. Not in the service.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Largest dictionary asked for. The trainer gives less when the samples are few.
const MAX_DICT: usize = 32 * 1024;
/// The trainer wants many samples; fifteen payloads are too few, so each is cut into pieces.
const PIECE: usize = 1024;

/// The dictionary the webhook payloads in `dir` train.
pub(crate) fn train(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut samples = Vec::new();
    for path in payload_files(dir)? {
        let pretty = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Sentry sends compact JSON; the fixture files are pretty-printed: learn both.
        for form in [compact(&pretty), pretty] {
            samples.extend(form.chunks(PIECE).map(<[u8]>::to_vec));
        }
    }
    Ok(zstd::dict::from_samples(&samples, MAX_DICT)?)
}

/// The webhook payloads (`reference.*` are REST API objects, not webhooks), in name order so
/// that the same files always train the same dictionary.
pub(crate) fn payload_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("reference."))
        })
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no payloads in {}", dir.display());
    Ok(files)
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
