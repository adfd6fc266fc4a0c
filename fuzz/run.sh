#!/usr/bin/env bash
# Runs every cargo-fuzz target bounded (docs/reliability.md §4): FUZZ_SECONDS each
# (default 20), starting from the committed seeds in fuzz/seeds/<target>/, new inputs
# kept in a temp corpus (the repo stays clean). Installs cargo-fuzz (pinned) if missing.
# The machine has stable Rust only: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# No sanitizer (`-s none`): the code under test is safe Rust, and libFuzzer still catches
# panics, aborts and stack overflows. Unoptimised (`--dev`, debug assertions on): on a
# 2-core CI machine the optimised instrumented build of every dependency takes longer
# than the whole rest of the suite, and 20 s per target is about coverage, not speed.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the run.
# Ends with "fuzz: N passed, N failed" (targets).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
version=0.13.1
seconds="${FUZZ_SECONDS:-20}"
targets=(policy operation_name redaction submit_body)
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $version" ]]; then
  cargo install cargo-fuzz --locked --version "$version" || exit 1
fi
export RUSTC_BOOTSTRAP=1
# cargo-fuzz has no --locked: refuse a stale fuzz/Cargo.lock here instead of letting the
# build rewrite it.
if ! cargo metadata --locked --format-version 1 >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date (cd fuzz && cargo update -w, then commit it)"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi
# Instrumented builds cannot share the normal build's artifacts: their own directory.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}/fuzz}"
if ! cargo fuzz build -s none --dev; then
  echo "fuzz: build failed"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

work="$(mktemp -d /tmp/ascend-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "artifacts/$t"
  echo "==> fuzz $t (${seconds}s)"
  # TMPDIR: submit_body keeps its SQLite store there; removed with the rest.
  if TMPDIR="$work" cargo fuzz run -s none --dev "$t" "$work/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
      -print_final_stats=1 2>"$work/$t.log"; then
    passed=$((passed + 1))
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -Eo '[0-9]+$' | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$work/$t.log" | tail -n 1)
    peak=$(grep -Eo 'stat::peak_rss_mb: *[0-9]+' "$work/$t.log" | grep -Eo '[0-9]+$' | tail -n 1)
    echo "fuzz $t: ok, ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$work/$t" | wc -l) new inputs, peak RSS ${peak:-?} MB"
  else
    failed=$((failed + 1))
    tail -n 60 "$work/$t.log"
    echo "fuzz $t: FAILED (input kept in fuzz/artifacts/$t/)"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
