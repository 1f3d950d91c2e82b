#!/usr/bin/env bash
# Trains the zstd dictionary for stored raw bodies from the real Sentry payloads and writes it
# where src/store/body.rs embeds it. The trainer is the zstd crate's (examples/train_dictionary.rs),
# so nothing beyond cargo is needed. The unit test store::body::tests::
# committed_dictionary_is_trained_from_the_fixtures checks the committed file matches.
#
# A retrained dictionary has a new id: add it to store::body as a new dictionary and keep the
# old one there, so rows compressed with it still decode.
#
#     scripts/train-dictionary.sh [OUT]   # default src/store/body/payloads.dict
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIXTURES=${FIXTURES:-$ROOT/../shared/fixtures/sentry}
[[ -d $FIXTURES ]] || FIXTURES=/work/shared/fixtures/sentry
OUT=${1:-$ROOT/src/store/body/payloads.dict}
cd "$ROOT"
cargo run --quiet --example train_dictionary -- "$FIXTURES" "$OUT"
