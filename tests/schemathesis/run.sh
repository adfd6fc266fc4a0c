#!/usr/bin/env bash
# schemathesis against the real `ascend serve` (docs/reliability.md §4): starts the
# binary on a free loopback port with a fresh SQLite store and a bootstrap admin key, then
# runs `schemathesis run http://127.0.0.1:PORT/openapi.json` with that key and the checks
# not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance. Bounded: SCHEMATHESIS_MAX_EXAMPLES cases per operation
# (default 30) and SCHEMATHESIS_MAX_TIME seconds in all (default 150), fixed seed.
#
# Needs a built binary: target/debug/ascend (cargo build -p ascend) or $ASCEND_BIN.
# Ends with "schemathesis: N passed, N failed" (operations).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv-schemathesis"
python="${PYTHON:-python3}"
bin="${ASCEND_BIN:-$repo/target/debug/ascend}"
if [[ ! -x "$bin" ]]; then
  echo "schemathesis: ascend binary not found at $bin (cargo build -p ascend, or set ASCEND_BIN)" >&2
  exit 2
fi

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/schemathesis" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

work="$(mktemp -d /tmp/ascend-schemathesis.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="owkai_admin_st$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
url="http://127.0.0.1:$port"
ASCEND_BOOTSTRAP_KEY="$key" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --pending-ttl 3600 >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  if curl -fsS "$url/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/serve.log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "$url/healthz" >/dev/null || { echo "schemathesis: server not ready" >&2; cat "$work/serve.log" >&2; exit 1; }

set +e
# Registering webhooks is left out: a generated URL would make the server post deliveries
# to hosts off this machine (crates/cli/tests/webhooks.rs covers that route, with a
# receiver on loopback). Listing, deleting and the delivery log are still exercised.
# From the temp dir: schemathesis keeps its example cache in ./.schemathesis.
cd "$work"
"$venv/bin/schemathesis" run "$url/openapi.json" \
  --header "X-API-Key: $key" \
  --exclude-name "POST /api/v1/webhooks" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
  --request-timeout 10 \
  --seed "${SCHEMATHESIS_SEED:-7}" \
  --workers 2 \
  --suppress-health-check all \
  --report junit --report-junit-path "$work/junit.xml" \
  --no-color "$@"
rc=$?
set -e

# The closing line scripts/test counts: operations from the JUnit report.
read -r tests failures errors < <("$python" - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) for s in suites)
e = sum(int(s.get("errors", 0)) for s in suites)
print(t, f, e)
PY
)
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis: the server died during the run" >&2; tail -n 50 "$work/serve.log" >&2; rc=1
fi
failed=$((failures + errors))
passed=$((tests - failed))
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
echo "schemathesis: $passed passed, $failed failed"
exit "$rc"
