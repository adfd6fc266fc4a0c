#!/usr/bin/env bash
# Instructions per request of `GET /healthz` and of a LOW `POST /api/v1/actions/submit`,
# counted by valgrind's callgrind in the load benchmark's own process (platform and load
# generator), split by thread: the load generator, the request threads, the SQLite writer.
#
# Why: the load benchmark's requests/s move by ±20% with whatever else the machine runs,
# so a change worth 5% needs dozens of alternating runs to show. Instruction counts hardly
# depend on the machine's load (healthz's within 1% between runs; a submit's within 4%, as
# the writer's share depends on how many submits share a commit), so two builds can be
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

echo "instructions per request (callgrind, user space, 64 clients; SHA-256 in software):"
declare -A totals
for endpoint in healthz submit; do
    read -r n1 l1 s1 w1 < <(run "$endpoint" 3)
    read -r n2 l2 s2 w2 < <(run "$endpoint" 9)
    line=$(python3 -c "
n = $n2 - $n1
k = lambda a, b: (b - a) / n / 1000
l, s, w = k($l1, $l2), k($s1, $s2), k($w1, $w2)
print(f'{l + s + w:.1f} load generator {l:6.1f}k  request threads {s:6.1f}k  writer {w:6.1f}k  total {l + s + w:6.1f}k  ({n} requests)')")
    totals[$endpoint]=${line%% *}
    printf '  %-8s %s\n' "$endpoint" "${line#* }"
done
python3 -c "print(f'  ratio healthz / submit {${totals[healthz]} / ${totals[submit]}:.2f}  (instructions; the throughput target is 0.5)')"
