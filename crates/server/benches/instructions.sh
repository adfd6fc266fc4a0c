#!/usr/bin/env bash
# Instructions per request of `GET /healthz` and of a LOW `POST /api/v1/actions/submit`,
# counted by valgrind's callgrind in the load benchmark's own process (platform and load
# generator), split by thread: the load generator, the request threads, the SQLite writer.
#
# Why: the load benchmark's requests/s move by ±20% with whatever else the machine runs,
# so a change worth 5% needs dozens of alternating runs to show. Instruction counts hardly
# depend on the machine's load (healthz's within 3% between runs, a submit's within 4%: the
# writer's share depends on how many submits share a commit), so two builds can be
# compared in a few runs each. They leave out the kernel (about a quarter of the CPU time
# on loopback) and cache misses, and under valgrind SHA-256 runs in software (natively the
# CPU's SHA extensions do it): read the figures as the user-space work per request, not as
# time.
#
# Each endpoint runs twice (3 s and 9 s, 64 clients) and the figures are the difference
# divided by the difference in requests, which takes start-up (the catalog, migrations)
# out. Takes about a minute once the benchmark is built.
#
# Usage: crates/server/benches/instructions.sh [path/to/load-bench-binary]
set -euo pipefail
cd "$(dirname "$0")/../../.."

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
bin=${1:-}
if [ -z "$bin" ]; then
    bin=$(cargo bench -p ascend-server --bench load --no-run --locked --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "load":
        print(m["executable"])')
fi
[ -x "$bin" ] || { echo "no load benchmark binary at '$bin'" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run under callgrind: prints "<requests> <load generator> <request threads> <writer>".
run() {
    local endpoint=$1 secs=$2 out="$work/$1.$2"
    mkdir -p "$out"
    ASCEND_BENCH_ONLY=$endpoint ASCEND_BENCH_SECS=$secs ASCEND_BENCH_CLIENTS=64 \
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg.out" \
        "$bin" >"$out/stdout" 2>"$out/stderr"
    python3 - "$out" "$secs" <<'PY'
import glob, re, sys
out, secs = sys.argv[1], int(sys.argv[2])
rate = float(re.search(r"([\d.]+) req/s", open(out + "/stdout").read()).group(1))
kinds = {"loadgen": 0, "server": 0, "writer": 0}
for f in glob.glob(out + "/cg.out*"):
    text = open(f, errors="replace").read()
    total = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    # A thread is known by what it ran: the writer's loop, axum's connections, reqwest.
    if "run_sqlite" in text:
        kind = "writer"
    elif "handle_connection" in text:
        kind = "server"
    elif "reqwest" in text:
        kind = "loadgen"
    else:
        continue
    kinds[kind] += int(total.group(1)) if total else 0
print(round(rate * secs), kinds["loadgen"], kinds["server"], kinds["writer"])
PY
}

# "<endpoint> <secs> <requests> <load generator> <request threads> <writer>" per run.
for endpoint in healthz submit; do
    for secs in 3 9; do
        echo "$endpoint $secs $(run "$endpoint" "$secs")"
    done
done >"$work/runs"
python3 - "$work/runs" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    endpoint, secs, *counts = line.split()
    runs.setdefault(endpoint, []).append([int(c) for c in counts])
print("instructions per request (callgrind, user space, 64 clients; SHA-256 in software):")
totals = {}
for endpoint, (short, long) in runs.items():
    n = long[0] - short[0]
    loadgen, server, writer = ((b - a) / n / 1000 for a, b in zip(short[1:], long[1:]))
    totals[endpoint] = loadgen + server + writer
    print(f"  {endpoint:<8} load generator {loadgen:6.1f}k  request threads {server:6.1f}k  "
          f"writer {writer:6.1f}k  total {totals[endpoint]:6.1f}k  ({n} requests)")
print(f"  ratio healthz / submit {totals['healthz'] / totals['submit']:.2f}"
      "  (instructions; the throughput target is 0.5)")
PY
