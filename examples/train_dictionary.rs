//! Trains the zstd dictionary that stored raw bodies are compressed with
//! (`src/store/body/payloads.dict`) from the real Sentry payloads in `shared/fixtures/sentry`.
//! Run by `scripts/train-dictionary.sh`; the training itself is `src/store/body/train.rs`, which
//! a unit test runs again to check the committed file is what it makes.
//!
//!     cargo run --example train_dictionary -- ../shared/fixtures/sentry src/store/body/payloads.dict
//!
//! `--time` instead times what intake pays per body: each payload compressed as
//! `store::body` compresses it (level 3, the dictionary, a checksum), and decompressed.
//!
//!     cargo run --release --example train_dictionary -- --time ../shared/fixtures/sentry src/store/body/payloads.dict

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use zstd::bulk::{Compressor, Decompressor};

#[path = "../src/store/body/train.rs"]
mod train;

/// As `store::body::LEVEL`.
const LEVEL: i32 = 3;
const ROUNDS: u32 = 2000;

fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [flag, fixtures, dict] if flag == "--time" => time(Path::new(fixtures), Path::new(dict)),
        [fixtures, out] => {
            let dict = train::train(Path::new(fixtures))?;
            std::fs::write(out, &dict)
                .with_context(|| format!("writing {}", out.to_string_lossy()))?;
            println!("{} bytes -> {}", dict.len(), out.to_string_lossy());
            Ok(())
        }
        _ => anyhow::bail!("usage: train_dictionary [--time] FIXTURES_DIR DICT"),
    }
}

fn time(fixtures: &Path, dict_path: &Path) -> anyhow::Result<()> {
    let dict = std::fs::read(dict_path).context("reading the dictionary")?;
    let mut c = Compressor::with_dictionary(LEVEL, &dict)?;
    c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
    let mut d = Decompressor::with_dictionary(&dict)?;
    println!(
        "{:<32} {:>7} {:>7} {:>10} {:>10}",
        "payload", "bytes", "stored", "comp us", "decomp us"
    );
    for path in train::payload_files(fixtures) {
        let raw = std::fs::read(&path)?;
        let t = Instant::now();
        let mut frame = Vec::new();
        for _ in 0..ROUNDS {
            frame = c.compress(&raw)?;
        }
        let comp = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        let t = Instant::now();
        for _ in 0..ROUNDS {
            anyhow::ensure!(d.decompress(&frame, raw.len())? == raw, "round trip");
        }
        let decomp = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "{name:<32} {:>7} {:>7} {comp:>10.1} {decomp:>10.1}",
            raw.len(),
            frame.len()
        );
    }
    Ok(())
}
