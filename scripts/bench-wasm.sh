#!/usr/bin/env bash
# make bench-wasm: the per-vote cost of the edge pipeline natively and inside
# wazero (Go benchmarks, same run), then wrk on the harness's vote path
# against a bare fasthttp handler answering 202 (same run, same machine).
# The guest runs with the harness's default time budget (the instrumented
# countdown, wasm/internal/interrupt), without one, and with wazero's own
# checks; COUNT rounds, each round running all of them one after another,
# so drift on the shared machine hits each alike; medians are reported.
# Appends a dated section to BENCHMARKS.md; the last line of output is
#   edge-wazero native_ns=N wasm_ns=W wasm_ratio=R harness_rps=H fasthttp_rps=F harness_ratio=Q nobudget_ratio=N budget_overhead=O
# (budget_overhead = wasm_ratio / nobudget_ratio) and, when tinygo is on
# PATH, at its end: tinygo_wasm_ns=T tinygo_ratio=R tinygo_gzip_bytes=G
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHTIME=${BENCHTIME:-20000x}
COUNT=${COUNT:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { echo "bench-wasm: wrk is missing; run make deps" >&2; exit 1; }

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. Go benchmarks: native vs guest, same binary, same run ---------------
echo "bench-wasm: go test -c ./wasm/harness; $COUNT rounds of -bench VotePipeline -benchtime $BENCHTIME" >&2
go test -c -o "$tmp/harness.test" ./wasm/harness
: >"$tmp/bench.txt"
for round in $(seq "$COUNT"); do
	echo "bench-wasm: round $round of $COUNT" >&2
	(cd wasm/harness && "$tmp/harness.test" -test.run '^$' -test.bench '^BenchmarkVotePipeline$' -test.benchtime "$BENCHTIME") | tee -a "$tmp/bench.txt" >&2
done
median() { # median ns/op of sub-benchmark $1
	awk -v n="^BenchmarkVotePipeline/$1-[0-9]+$" '$1 ~ n { print $3 }' "$tmp/bench.txt" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print v[int((NR + 1) / 2)] }'
}
range_of() { # min–max ns/op of sub-benchmark $1
	awk -v n="^BenchmarkVotePipeline/$1-[0-9]+$" '$1 ~ n { print $3 }' "$tmp/bench.txt" | sort -n |
		awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'
}
native_ns=$(median native)
wasm_ns=$(median wasm)
nobudget_ns=$(median wasm-nobudget)
wazerobudget_ns=$(median wasm-wazerobudget)
wasm_ratio=$(awk -v a="$wasm_ns" -v b="$native_ns" 'BEGIN { printf "%.2f", a / b }')
nobudget_ratio=$(awk -v a="$nobudget_ns" -v b="$native_ns" 'BEGIN { printf "%.2f", a / b }')
wazerobudget_ratio=$(awk -v a="$wazerobudget_ns" -v b="$native_ns" 'BEGIN { printf "%.2f", a / b }')
budget_overhead=$(awk -v a="$wasm_ns" -v b="$nobudget_ns" 'BEGIN { printf "%.2f", a / b }')
# the overhead within each round (the same round's no-budget run as the baseline), min–max
round_overheads=$(awk '$1 ~ /^BenchmarkVotePipeline\/wasm-[0-9]+$/ { w[++i] = $3 } $1 ~ /^BenchmarkVotePipeline\/wasm-nobudget-[0-9]+$/ { n[++j] = $3 }
	END { for (k = 1; k <= i; k++) { r = w[k] / n[k]; if (k == 1 || r < lo) lo = r; if (k == 1 || r > hi) hi = r }; printf "%.2f–%.2f", lo, hi }' "$tmp/bench.txt")

# --- 2. wrk: harness vote path vs bare fasthttp 202 ------------------------------
OUT=$tmp/edge.wasm bash scripts/build-wasm.sh go >&2
go build -o "$tmp/wasmbench" ./wasm/internal/cmd/wasmbench
setsid "$tmp/wasmbench" -module "$tmp/edge.wasm" -votes-file "$tmp/votes.txt" -votes 600000 >"$tmp/wasmbench.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 600); do grep -q '^harness=' "$tmp/wasmbench.out" && break; kill -0 "$pid" || { cat "$tmp/wasmbench.out" >&2; exit 1; }; sleep 0.1; done
read -r hurl burl < <(sed -n 's/^harness=\(.*\) bare=\(.*\)$/\1 \2/p' "$tmp/wasmbench.out")
cat >"$tmp/votes.lua" <<LUA
-- Sends pre-issued vote bodies of distinct voters, one after another.
function init(args)
  bodies, i = {}, 0
  for line in io.lines("$tmp/votes.txt") do table.insert(bodies, line) end
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/polls/bench/votes", {["Content-Type"] = "application/json"}, bodies[i])
end
LUA
rps() { # rps URL: requests/s, failing if any response was not 2xx
	wrk -t1 -c"$CONNS" -d"$DURATION" -s "$tmp/votes.lua" "$1" >"$tmp/wrk.txt"
	cat "$tmp/wrk.txt" >&2
	if grep -q "Non-2xx" "$tmp/wrk.txt"; then echo "bench-wasm: non-2xx answers from $1" >&2; exit 1; fi
	awk '/^Requests\/sec/ { printf "%d", $2 }' "$tmp/wrk.txt"
}
echo "bench-wasm: wrk -t1 -c$CONNS -d$DURATION bare fasthttp 202" >&2
fasthttp_rps=$(rps "$burl")
echo "bench-wasm: wrk -t1 -c$CONNS -d$DURATION harness vote path" >&2
harness_rps=$(rps "$hurl")
harness_ratio=$(awk -v a="$harness_rps" -v b="$fasthttp_rps" 'BEGIN { printf "%.2f", a / b }')

# --- 2b. TinyGo (only when tinygo is on PATH) ----------------------------------------
# The VotePipeline/tinygo sub-benchmarks above ran the TinyGo guest (they
# skip without tinygo). Appends tinygo_wasm_ns, tinygo_ratio (× native) and
# tinygo_gzip_bytes to the summary line.
tinygo_fields=""
if command -v tinygo >/dev/null && tinygo_ns=$(median tinygo); then
	tinygo_nobudget_ns=$(median tinygo-nobudget || echo "?")
	tinygo_ratio=$(awk -v a="$tinygo_ns" -v b="$native_ns" 'BEGIN { printf "%.2f", a / b }')
	OUT=$tmp/edge-tinygo.wasm bash scripts/build-wasm.sh tinygo >&2
	tinygo_gzip=$(gzip -9c "$tmp/edge-tinygo.wasm" | wc -c)
	tinygo_fields=" tinygo_wasm_ns=$tinygo_ns tinygo_ratio=$tinygo_ratio tinygo_gzip_bytes=$tinygo_gzip"
else
	echo "bench-wasm: tinygo is not on PATH (or its benchmark did not run): no TinyGo figures (tinygo_* fields absent); see README.md, Building with TinyGo" >&2
fi

# --- 3. BENCHMARKS.md ---------------------------------------------------------------
{
	echo
	echo "## bench-wasm — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Command: \`make bench-wasm\` (BENCHTIME=$BENCHTIME COUNT=$COUNT DURATION=$DURATION CONNS=$CONNS)."
	echo
	echo "| per-vote edge pipeline (distinct voters, no-op hand-off) | ns/vote (median of $COUNT rounds) | range | × native |"
	echo "|---|---|---|---|"
	echo "| native handler | $native_ns | $(range_of native) | 1 |"
	echo "| wazero guest, time budget on (default: instrumented countdown, a host tick every 16384 checks) | $wasm_ns | $(range_of wasm) | $wasm_ratio |"
	echo "| wazero guest, no time budget (no checks) | $nobudget_ns | $(range_of wasm-nobudget) | $nobudget_ratio |"
	echo "| wazero guest, wazero's WithCloseOnContextDone (an exit to Go per loop header; WazeroBudget) | $wazerobudget_ns | $(range_of wasm-wazerobudget) | $wazerobudget_ratio |"
	echo
	echo "Budget overhead (default budget / no budget, medians): $budget_overhead; within each round: $round_overheads."
	echo
	echo "| wrk -t1 -c$CONNS -d$DURATION, POST vote | req/s |"
	echo "|---|---|"
	echo "| bare fasthttp handler answering 202 | $fasthttp_rps |"
	echo "| harness (guest instances = GOMAXPROCS) | $harness_rps ($harness_ratio of bare) |"
	echo
	echo "Targets: wasm ≤ 2× native; harness ≥ 50% of bare fasthttp (≥ 0.25 for the budget work); the default budget ≤ 1.15× no budget."
	echo
	if [ -n "$tinygo_fields" ]; then
		echo "TinyGo guest ($(tinygo version | cut -d' ' -f3), scripts/build-wasm.sh tinygo): $tinygo_ns ns/vote with the time budget ($tinygo_ratio × native), $tinygo_nobudget_ns without; $tinygo_gzip bytes gzipped."
		echo
	fi
	echo "    edge-wazero native_ns=$native_ns wasm_ns=$wasm_ns wasm_ratio=$wasm_ratio harness_rps=$harness_rps fasthttp_rps=$fasthttp_rps harness_ratio=$harness_ratio nobudget_ratio=$nobudget_ratio budget_overhead=$budget_overhead$tinygo_fields"
} >>BENCHMARKS.md
echo "edge-wazero native_ns=$native_ns wasm_ns=$wasm_ns wasm_ratio=$wasm_ratio harness_rps=$harness_rps fasthttp_rps=$fasthttp_rps harness_ratio=$harness_ratio nobudget_ratio=$nobudget_ratio budget_overhead=$budget_overhead$tinygo_fields"
