//! Trains the zstd dictionary that stored raw bodies are compressed with
//! (`src/store/body/payloads.dict`) from the real Sentry payloads in `shared/fixtures/sentry`.
//! Run by `scripts/train-dictionary.sh`; the training itself is `src/store/body/train.rs`, which
//! a unit test runs again to check the committed file is what it makes.
//!
//!     cargo run --example train_dictionary -- ../shared/fixtures/sentry src/store/body/payloads.dict

use std::path::Path;

use anyhow::Context;

#[path = "../src/store/body/train.rs"]
mod train;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(fixtures), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: train_dictionary FIXTURES_DIR OUT.dict");
    };
    let dict = train::train(Path::new(&fixtures))?;
    std::fs::write(&out, &dict).with_context(|| format!("writing {}", out.to_string_lossy()))?;
    println!("{} bytes -> {}", dict.len(), out.to_string_lossy());
    Ok(())
}
