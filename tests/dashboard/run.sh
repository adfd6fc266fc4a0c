#!/usr/bin/env bash
# The dashboard's browser journeys: headless Chromium (/usr/bin/chromium) driven by
# playwright-core, against the real `ascend serve`, moto and ascend_boto3. Reuses the
# repo's .venv made by python/scripts/test.sh (ascend_boto3 + moto installed there).
# ASCEND_BIN overrides the binary. Prints node's TAP summary ("# pass N", "# fail N").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
export ASCEND_BIN="${ASCEND_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/ascend}"
export PYTHON="${PYTHON:-$repo/.venv/bin/python}"
for need in "$ASCEND_BIN" "$PYTHON" "${CHROMIUM:-/usr/bin/chromium}"; do
  [ -x "$need" ] || { echo "missing $need (run the python step first; install chromium)"; exit 1; }
done
"$PYTHON" -c 'import ascend_boto3, moto' || { echo "the venv lacks ascend_boto3 or moto: run python/scripts/test.sh"; exit 1; }
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-reporter=tap e2e.test.mjs
