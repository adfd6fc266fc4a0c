#!/usr/bin/env bash
# Creates .venv at the repo root, installs ./python and the pinned dev requirements, and
# runs the Python suite (python/tests) against moto and the real `ascend serve`.
# Exit code: pytest's. ASCEND_BIN overrides the binary (default target/debug/ascend);
# extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r python/requirements-dev.txt

if [ -z "${ASCEND_BIN:-}" ]; then
    export ASCEND_BIN="$repo/target/debug/ascend"
    if [ ! -x "$ASCEND_BIN" ]; then
        cargo build -p ascend
    fi
fi

# Build and install the package the way a user does (PEP 517, maturin backend), but
# unoptimised: with the workspace's target dir and dev profile the Rust core and its
# dependencies are the debug build's, already compiled (a cold optimised build took 236 s
# of the 2-core CI machine). python/benches/ wants the optimised one: `pip install ./python`.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
MATURIN_PEP517_ARGS="--profile dev" \
    .venv/bin/python -m pip install -q --force-reinstall --no-deps ./python

set +e
.venv/bin/python -m pytest python/tests -q "$@"
status=$?
set -e
exit $status
