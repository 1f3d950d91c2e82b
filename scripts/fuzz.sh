#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read hostile input (see README, "Fuzzing").
#
#   scripts/fuzz.sh --short              # CI: every target for FUZZ_SECONDS (default 45 s)
#   scripts/fuzz.sh --long               # every target for 5 minutes
#   scripts/fuzz.sh --seconds 600 ack_token sentry_parse
#
# Installs cargo-fuzz if missing, builds the targets on nightly, seeds each corpus (Sentry from
# ../shared/fixtures/sentry, the others from fuzz/seeds/), then runs the targets one after the
# other, one libFuzzer job each (these machines are shared). Exits non-zero if any target
# panicked, went over the memory limit or hung; the input is left in fuzz/artifacts/<target>/.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_SANITIZER (default none, see README),
# FIXTURES_DIR (default ../shared/fixtures/sentry), FUZZ_TOOLCHAIN (default nightly),
# FUZZ_ARGS (more libFuzzer flags, after ours, e.g. FUZZ_ARGS=-seed=1).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(sentry_parse ack_token slack_interaction pagerduty_webhook)
CARGO_FUZZ_VERSION=0.13.2
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
SANITIZER=${FUZZ_SANITIZER:-none}
FIXTURES_DIR=${FIXTURES_DIR:-../shared/fixtures/sentry}
seconds=${FUZZ_SECONDS:-}
mode=short
targets=()

while [ $# -gt 0 ]; do
  case "$1" in
    --short) mode=short ;;
    --long) mode=long ;;
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if [ -z "$seconds" ]; then
  if [ "$mode" = long ]; then seconds=300; else seconds=45; fi
fi
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

echo "--- toolchain"
if ! rustup toolchain list | grep -q "^$TOOLCHAIN"; then
  rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
cargo "+$TOOLCHAIN" --version
cargo fuzz --version

echo "--- build (sanitizer: $SANITIZER, overflow checks on)"
# -a: overflow checks and debug assertions, so arithmetic that would silently wrap in release
# shows up as a crash here.
build_flags=(-s "$SANITIZER" -a)
cargo "+$TOOLCHAIN" fuzz build "${build_flags[@]}"
# The targets run from these binaries, not through `cargo fuzz run`, which would rebuild
# whenever the working tree changed since (and then fuzz something else than was built).
host=$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')
bin_dir="fuzz/target/$host/release"

echo "--- seed corpora"
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  fi
  # Inputs that once crashed stay in the corpus, so every run re-checks them first.
  if [ -d "fuzz/regressions/$target" ]; then
    find "fuzz/regressions/$target" -type f ! -name '*.md' -exec cp -n {} "fuzz/corpus/$target/" \;
  fi
done
if [[ " ${targets[*]} " == *" sentry_parse "* ]]; then
  if [ -d "$FIXTURES_DIR" ]; then
    # Input layout (fuzz_targets/sentry_parse.rs): the Sentry-Hook-Resource header, a newline,
    # the body; an empty first line is the legacy plugin. Both compact (as Sentry sends) and
    # pretty (as stored) bodies.
    n=0
    for f in "$FIXTURES_DIR"/*.json; do
      name=$(basename "$f" .json)
      case "$name" in
        reference.*) continue ;;
        legacy_webhook.*) resource="" ;;
        *) resource=${name%%.*} ;;
      esac
      { printf '%s\n' "$resource"; cat "$f"; } > "fuzz/corpus/sentry_parse/fixture-$name-pretty"
      if command -v python3 >/dev/null; then
        { printf '%s\n' "$resource"
          python3 -c 'import json,sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")))' "$f"
        } > "fuzz/corpus/sentry_parse/fixture-$name-compact"
      fi
      n=$((n + 1))
    done
    echo "sentry_parse: $n fixtures from $FIXTURES_DIR"
  else
    echo "warning: $FIXTURES_DIR not found; sentry_parse starts from its previous corpus only" >&2
  fi
fi

max_len() {
  case "$1" in
    sentry_parse) echo 1048576 ;;  # the HTTP body limit
    ack_token) echo 4096 ;;        # twice MAX_TOKEN_LEN
    *) echo 65536 ;;
  esac
}

echo "--- fuzz (${seconds} s per target)"
failed=()
summary=()
for target in "${targets[@]}"; do
  echo "--- $target"
  mkdir -p "fuzz/artifacts/$target"
  log="fuzz/artifacts/$target/last-run.log"
  args=(
    -max_total_time="$seconds"
    -rss_limit_mb=512
    -max_len="$(max_len "$target")"
    -timeout=10
    -print_final_stats=1
  )
  if [ "$target" = sentry_parse ]; then
    args+=(-dict=fuzz/dicts/sentry.dict)
  fi
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
  args+=(${FUZZ_ARGS:-})
  started=$(date +%s)
  # One job in one process: libFuzzer's default; -jobs would only add a supervisor process.
  set +e
  "$bin_dir/$target" -artifact_prefix="fuzz/artifacts/$target/" "${args[@]}" \
    "fuzz/corpus/$target" 2>&1 | tee "$log" |
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE|pulse)|==[0-9]+==|SUMMARY|Test unit written|thread .* panicked|stat::)'
  status=${PIPESTATUS[0]}
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  line="$target: ${execs:-?} execs in $(( $(date +%s) - started )) s, cov ${cov:-?}, corpus $corpus"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    line="$line  FAILED (exit $status; see $log and fuzz/artifacts/$target/)"
  fi
  summary+=("$line")
done

echo "--- summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  echo "reproduce: cargo +$TOOLCHAIN fuzz run ${build_flags[*]} <target> fuzz/artifacts/<target>/<file>" >&2
  exit 1
fi
