#!/usr/bin/env bash
# Proves the committed catalog is what the pinned sources give: builds a private venv with
# the pins (tools/catalog/.venv) and runs `generate.py --check`. Exit 1 if stale.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
"$venv/bin/python" "$here/generate.py" --check
echo "catalog: crates/core/data/catalog.tsv matches the pinned sources"
