#!/usr/bin/env bash
# Compatibility suite: the real PyPI clients (ascend-ai-sdk 2.7.1,
# ascend-boto3-wrapper 1.2.1) against the real `ascend serve` binary.
#
# Needs a built binary: target/debug/ascend (cargo build -p ascend) or $ASCEND_BIN.
# Runs in its own venv (tests/compat/.venv-compat) because ascend-boto3-wrapper
# installs the import name `ascend_boto3`, the same as our own package.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv-compat"
python="${PYTHON:-python3}"

if [[ -z "${ASCEND_BIN:-}" ]]; then
  export ASCEND_BIN="$repo/target/debug/ascend"
fi
if [[ ! -x "$ASCEND_BIN" ]]; then
  echo "compat: ascend binary not found at $ASCEND_BIN (cargo build -p ascend, or set ASCEND_BIN)" >&2
  exit 2
fi

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

cd "$repo"
set +e
"$venv/bin/pytest" tests/compat -q "$@"
rc=$?
set -e
exit "$rc"
