#!/usr/bin/env bash
# bench-edge: wrk against the real Worker under `wrangler dev` (workerd, offline,
# loopback) with a real origin and Redis behind it. Measures, in one run:
#   vote     POST /v1/polls/{id}/votes with distinct voters (group commit → queue)
#   results  GET  /v1/polls/{id}/results (edge cache)
#   ceiling  a plain JS Worker returning a fixed response (the runtime's ceiling)
#   perreq   the same Go handler behind syumai's per-request glue, on results
#   poll     GET  /v1/polls/{id} (poll config and a fresh voter token)
# then the same bundles (wrangler deploy --dry-run --outdir) in plain
# `workerd serve` (scripts/workerd-config.mjs writes its config from the
# bench's wrangler.toml files), without wrangler dev's proxy: the JS
# ceiling, vote, results and poll again. Plain workerd has no Queue: the
# producer binding is a service binding to a stand-in worker
# (edge/worker/bench/workerd/queue.mjs, a benchmark fixture) that delivers
# batches to the edge worker's own queue handler; and no Cache API service:
# the results path there is served by the Worker's in-isolate memo.
# For every measured run it also records CPU per request: utime+stime of
# every workerd process of that runtime (/proc/PID/stat) over the run,
# divided by the requests wrk counted.
# Appends a dated section to BENCHMARKS.md (not with BENCH_RECORD=0); the
# last line is the summary. BENCH_DURATION (10s), BENCH_WARMUP (3s) and
# BENCH_CONNECTIONS (32) tune the wrk runs; BENCH_KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DUR=${BENCH_DURATION:-10s}
WARM=${BENCH_WARMUP:-3s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=2

for tool in wrk redis-server redis-cli curl; do
	command -v "$tool" >/dev/null || { echo "$tool not found: run make deps" >&2; exit 1; }
done
[ -x node_modules/.bin/wrangler ] || { echo "node_modules/.bin/wrangler missing: run make deps" >&2; exit 1; }

work=$(mktemp -d /tmp/bench-edge.XXXXXX)
pids=()
cleanup() {
	# wrangler dev instances were started in the background; their pids are in files
	for f in "$work"/pid-*; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
	if [ "${BENCH_KEEP:-0}" != 0 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start NAME CMD...: run CMD in its own process group, logging to $work/NAME.log
start() {
	local name=$1; shift
	setsid "$@" </dev/null >"$work/$name.log" 2>&1 &
	pids+=($!)
}
waitfor() { # URL [tries]
	for _ in $(seq "${2:-240}"); do curl -fso /dev/null "$1" 2>/dev/null && return 0; sleep 0.25; done
	return 1
}
clk_tck=$(getconf CLK_TCK)
# cputicks PGID...: utime+stime, in clock ticks, of every workerd process in
# the given process groups (the runtime's dev proxy and user runtime under
# wrangler dev; the one process of plain workerd)
cputicks() {
	python3 - "$@" <<'PY'
import os, sys
groups = {int(g) for g in sys.argv[1:]}
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if comm == "workerd" and int(fields[2]) in groups:
        total += int(fields[11]) + int(fields[12])
print(total)
PY
}
waitlog() { # FILE PATTERN
	for _ in $(seq 240); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.25; done
	echo "timed out waiting for '$2' in $1:" >&2; tail -20 "$1" >&2; return 1
}

echo "== building"
build_out=$(bash scripts/build-edge.sh go "$work/edge")
echo "$build_out"
gzip_bytes=$(sed -n 's/^bundle_gzip_bytes=//p' <<<"$build_out")
mkdir -p "$work/perreq"
(cd "$work/perreq" && go run -C "$root" github.com/syumai/workers/cmd/workers-assets-gen -mode go -o "$work/perreq" >/dev/null)
GOOS=js GOARCH=wasm go build -tags edgepoll_perrequest -trimpath -ldflags='-s -w' -o "$work/perreq/app.wasm" ./edge/worker/bench/perrequest
go build -o "$work/origin" ./origin/cmd/origin
go build -o "$work/tokens" ./edge/worker/bench/tokens

export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false CI=1
TOKEN_SECRET=bench-token-secret-0123456789abcdef0123456789
INGEST_KEY="bench=bench-ingest-secret-0123456789abcdef012345"
ADMIN_TOKEN=bench-admin-token-0123456789

echo "== starting redis and origin"
rport=$(freeport)
mkdir -p "$work/redis"
start redis redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis"
oport=$(freeport)
start origin "$work/origin" -listen "127.0.0.1:$oport" -redis "redis://127.0.0.1:$rport/0" \
	-ingest-keys "$INGEST_KEY" -admin-token "$ADMIN_TOKEN" -durability none
waitfor "http://127.0.0.1:$oport/readyz" || { tail "$work/origin.log" >&2; exit 1; }
origin="http://127.0.0.1:$oport"
poll=bench
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
	-d '{"id":"bench","title":"Bench","options":[{"label":"A"},{"label":"B"}],"kind":"single","state":"draft","visibility":"live","expected_voters":1000000}' \
	"$origin/v1/admin/polls" >/dev/null
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" "$origin/v1/admin/polls/$poll/open" >/dev/null
# distinct voters: separate token sets for the warm-up and the measured run
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 100000 >"$work/tokens-warm.txt"
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 20000 >"$work/tokens-warm2.txt"
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 200000 >"$work/tokens.txt"

# wrangler_config DIR NAME MAIN: a wrangler.toml for the bench (no build step,
# bench vars). Each Worker gets its own name and only the edge worker has the
# queue: concurrent wrangler dev sessions share a local dev registry.
wrangler_config() {
	cat >"$1/wrangler.toml" <<TOML
name = "edgepoll-bench-$2"
main = "$3"
compatibility_date = "2025-06-01"
[[rules]]
type = "CompiledWasm"
globs = ["**/*.wasm"]
fallthrough = false
[vars]
ORIGIN_URL = "$origin"
EDGE_ID = "bench"
ALLOWED_ORIGINS = "*"
TOKEN_SECRET = "$TOKEN_SECRET"
INGEST_KEY = "$INGEST_KEY"
# one client IP drives the whole load: per-IP limits off, per-voter limits on
RATE_IP_VOTES = "off"
RATE_IP_TOKENS = "off"
# and the poll path's per-isolate ceiling on new tokens off (plain workerd
# issues more than its default 5000/s)
RATE_POLL_TOKENS = "off"
COOKIE_SECURE = "false"
TOML
	if [ "${2%-tinygo}" = edge ]; then # edge-tinygo: its own queues
		cat >>"$1/wrangler.toml" <<TOML
[[queues.producers]]
binding = "VOTES"
queue = "edgepoll-bench${2#edge}-votes"
[[queues.consumers]]
queue = "edgepoll-bench${2#edge}-votes"
max_batch_size = 100
max_batch_timeout = 1
max_retries = 10
dead_letter_queue = "edgepoll-bench${2#edge}-votes-dlq"
TOML
	fi
}

# serve NAME MAIN: run wrangler dev for MAIN; writes its URL to $work/url-NAME
serve() {
	local name=$1 main=$2 dir="$work/wr-$1"
	mkdir -p "$dir"
	wrangler_config "$dir" "$name" "$main"
	local port iport url code
	port=$(freeport)
	iport=$(freeport)
	setsid env -C "$dir" "$root/node_modules/.bin/wrangler" dev --ip 127.0.0.1 --port "$port" \
		--inspector-port "$iport" --show-interactive-dev-session=false --log-level "${WRANGLER_LOG_LEVEL:-warn}" \
		</dev/null >"$work/wrangler-$name.log" 2>&1 &
	echo $! >"$work/pid-$name"
	url="http://127.0.0.1:$port"
	# any HTTP answer (404 included) means it is serving
	for _ in $(seq 480); do
		code=$(curl -so /dev/null -w '%{http_code}' "$url/" || true)
		if [ "$code" != "000" ]; then
			echo "$url" >"$work/url-$name"
			return 0
		fi
		sleep 0.25
	done
	echo "wrangler ($name) did not start:" >&2; tail -30 "$work/wrangler-$name.log" >&2; return 1
}

# measure NAME WARMUP ARGS...: wrk (after a WARMUP-long warm-up run unless
# WARMUP is 0) → prints successful (2xx) requests/s. A non-2xx answer (a
# stray 503 from a busy edge, say) does not abort the run: it is counted in
# $work/non2xx-NAME and reported, and only 2xx answers count as throughput.
# With CPU_GROUPS (process group ids) set, the workerd processes' CPU over
# the measured run goes to $work/cputicks-NAME and, per request in µs, to
# $work/cpu-NAME.
measure() {
	local name=$1 warm=$2; shift 2
	if [ "$warm" != 0 ]; then
		TOKENS="${TOKENS_WARM:-${TOKENS:-}}" wrk -t"$THREADS" -c"$CONNS" -d"$warm" "$@" >"$work/wrk-$name-warmup.txt" 2>&1 || true
	fi
	local t0=0 t1=0
	if [ -n "${CPU_GROUPS:-}" ]; then t0=$(cputicks $CPU_GROUPS); fi
	if ! wrk -t"$THREADS" -c"$CONNS" -d"$DUR" "$@" >"$work/wrk-$name.txt" 2>&1; then
		echo "$name: wrk failed:" >&2; cat "$work/wrk-$name.txt" >&2; exit 1
	fi
	if [ -n "${CPU_GROUPS:-}" ]; then t1=$(cputicks $CPU_GROUPS); fi
	local total secs bad
	total=$(awk '/requests in/ {print $1}' "$work/wrk-$name.txt")
	if [ -n "${CPU_GROUPS:-}" ]; then
		echo "$((t1 - t0)) $total" >"$work/cputicks-$name"
		awk -v d="$((t1 - t0))" -v n="$total" -v hz="$clk_tck" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}' >"$work/cpu-$name"
	fi
	secs=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' "$work/wrk-$name.txt")
	bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/wrk-$name.txt")
	bad=${bad:-0}
	echo "$bad" >"$work/non2xx-$name"
	if [ "$bad" != 0 ]; then
		echo "$name: $bad of $total responses were not 2xx (not counted)" >&2
		grep '^status ' "$work/wrk-$name.txt" >&2 || true
	fi
	awk -v t="$total" -v b="$bad" -v s="$secs" 'BEGIN {printf "%d", (t - b) / s}'
}

# All three Workers start together (start-up dominates otherwise) and idle
# until their turn; wrk drives one at a time.
echo "== starting wrangler dev: (a) plain JS worker, the edge worker, (b) per-request glue"
serve ceiling "$root/edge/worker/bench/ceiling/worker.mjs" & sc=$!
serve edge "$work/edge/worker.mjs" & se=$!
serve perreq "$work/perreq/worker.mjs" & sp=$!
wait "$sc" "$se" "$sp"
ceiling_url=$(cat "$work/url-ceiling") edge_url=$(cat "$work/url-edge") perreq_url=$(cat "$work/url-perreq")
curl -fsS "$edge_url/v1/polls/$poll" >/dev/null # warm: instance, poll config
curl -fsS "$edge_url/v1/polls/$poll/results" >/dev/null
# Warm the edge before anything is measured: V8 tiers the 11 MB Go module
# up to optimised code in the background while it runs hot, which would
# otherwise eat CPU during the ceiling's first pass and the vote run.
echo "== warming the edge worker"
TOKENS="$work/tokens-warm.txt" WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"$WARM" -s edge/worker/bench/vote.lua "$edge_url/v1/polls/$poll/votes" >"$work/wrk-edge-warmup-vote.txt" 2>&1 || true
wrk -t"$THREADS" -c"$CONNS" -d"$WARM" "$edge_url/v1/polls/$poll/results" >"$work/wrk-edge-warmup-results.txt" 2>&1 || true

# The ceiling is measured before and after the edge runs and averaged, so
# load from elsewhere on the machine drifting during the run skews the
# ratios less.
echo "== (a) plain JS worker (ceiling), first pass"
dev_ceiling_pg=$(cat "$work/pid-ceiling") dev_edge_pg=$(cat "$work/pid-edge")
ceiling1=$(CPU_GROUPS=$dev_ceiling_pg measure ceiling1 "$WARM" "$ceiling_url/")
echo "js_ceiling_rps(first)=$ceiling1"
echo "== edge worker (one Go instance per isolate)"
vote=$(CPU_GROUPS=$dev_edge_pg TOKENS="$work/tokens.txt" TOKENS_WARM="$work/tokens-warm2.txt" WRK_THREADS=$THREADS measure vote 1s -s edge/worker/bench/vote.lua "$edge_url/v1/polls/$poll/votes")
echo "vote_rps=$vote"
results=$(CPU_GROUPS=$dev_edge_pg measure results 1s "$edge_url/v1/polls/$poll/results")
echo "results_rps=$results"
pollrps=$(CPU_GROUPS=$dev_edge_pg measure poll 1s "$edge_url/v1/polls/$poll")
echo "poll_rps=$pollrps"
echo "== (a) plain JS worker (ceiling), second pass"
ceiling2=$(CPU_GROUPS=$dev_ceiling_pg measure ceiling2 1s "$ceiling_url/")
echo "js_ceiling_rps(second)=$ceiling2"
# The same JS worker sent the vote requests themselves (POST with a JSON
# body), for reference: the runtime moves each body, so this ceiling is
# lower. The ratios below use the GET ceiling above, the stricter baseline.
ceiling_post=$(TOKENS="$work/tokens-warm2.txt" WRK_THREADS=$THREADS measure ceilingpost 1s -s edge/worker/bench/vote.lua "$ceiling_url/v1/polls/$poll/votes")
echo "js_ceiling_post_rps=$ceiling_post"
ceiling=$(( (ceiling1 + ceiling2) / 2 ))
echo "js_ceiling_rps=$ceiling"
echo "== (b) same handler, syumai per-request glue"
perreq=$(measure perreq "$WARM" "$perreq_url/v1/polls/$poll/results")
echo "per_request_glue_rps=$perreq"
vote_non2xx=$(cat "$work/non2xx-vote") results_non2xx=$(cat "$work/non2xx-results")

# --- the same bundles in plain workerd: no dev proxy --------------------------
echo "== plain workerd: wrangler deploy --dry-run --outdir, scripts/workerd-config.mjs, workerd serve"
for name in edge ceiling; do
	(cd "$work/wr-$name" && "$root/node_modules/.bin/wrangler" deploy --dry-run --outdir "$work/dry-$name") >"$work/dryrun-$name.log" 2>&1 ||
		{ echo "wrangler deploy --dry-run ($name) failed:" >&2; tail -20 "$work/dryrun-$name.log" >&2; exit 1; }
done
wd_edge_port=$(freeport) wd_ceiling_port=$(freeport)
mkdir -p "$work/workerd"
node scripts/workerd-config.mjs --out "$work/workerd/config.capnp" \
	--worker "edge,$work/wr-edge/wrangler.toml,$work/dry-edge,127.0.0.1:$wd_edge_port" \
	--worker "ceiling,$work/wr-ceiling/wrangler.toml,$work/dry-ceiling,127.0.0.1:$wd_ceiling_port"
workerd_bin=$root/node_modules/workerd/bin/workerd
[ -x "$workerd_bin" ] || { echo "$workerd_bin missing: run make deps" >&2; exit 1; }
start workerd "$workerd_bin" serve "$work/workerd/config.capnp" --experimental
wd_pg=${pids[-1]}
wd_edge="http://127.0.0.1:$wd_edge_port" wd_ceiling="http://127.0.0.1:$wd_ceiling_port"
waitfor "$wd_ceiling/" || { echo "plain workerd did not start:" >&2; tail -30 "$work/workerd.log" >&2; exit 1; }
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 50000 >"$work/tokens-wd-warm.txt"
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 300000 >"$work/tokens-wd.txt"
curl -fsS "$wd_edge/v1/polls/$poll" >/dev/null
curl -fsS "$wd_edge/v1/polls/$poll/results" >/dev/null
echo "== plain workerd: warming the edge worker"
TOKENS="$work/tokens-wd-warm.txt" WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"$WARM" -s edge/worker/bench/vote.lua "$wd_edge/v1/polls/$poll/votes" >"$work/wrk-wd-warmup-vote.txt" 2>&1 || true
wrk -t"$THREADS" -c"$CONNS" -d"$WARM" "$wd_edge/v1/polls/$poll/results" >"$work/wrk-wd-warmup-results.txt" 2>&1 || true
export CPU_GROUPS=$wd_pg
wd_ceiling1=$(measure wdceiling1 "$WARM" "$wd_ceiling/")
echo "workerd js_ceiling_rps(first)=$wd_ceiling1"
wd_vote=$(TOKENS="$work/tokens-wd.txt" TOKENS_WARM="$work/tokens-wd-warm.txt" WRK_THREADS=$THREADS measure wdvote 0 -s edge/worker/bench/vote.lua "$wd_edge/v1/polls/$poll/votes")
echo "workerd vote_rps=$wd_vote"
wd_results=$(measure wdresults 1s "$wd_edge/v1/polls/$poll/results")
echo "workerd results_rps=$wd_results"
wd_poll=$(measure wdpoll 1s "$wd_edge/v1/polls/$poll")
echo "workerd poll_rps=$wd_poll"
wd_ceiling2=$(measure wdceiling2 1s "$wd_ceiling/")
echo "workerd js_ceiling_rps(second)=$wd_ceiling2"
unset CPU_GROUPS
wd_ceiling=$(( (wd_ceiling1 + wd_ceiling2) / 2 ))
# CPU per request of a pair of passes: their ticks over their requests
cpu_pair() { cat "$work/cputicks-$1" "$work/cputicks-$2" | awk -v hz="$clk_tck" '{d += $1; n += $2} END {printf "%.1f", d * 1e6 / hz / n}'; }
dev_js_cpu=$(cpu_pair ceiling1 ceiling2) wd_js_cpu=$(cpu_pair wdceiling1 wdceiling2)
dev_vote_cpu=$(cat "$work/cpu-vote") dev_results_cpu=$(cat "$work/cpu-results") dev_poll_cpu=$(cat "$work/cpu-poll")
wd_vote_cpu=$(cat "$work/cpu-wdvote") wd_results_cpu=$(cat "$work/cpu-wdresults") wd_poll_cpu=$(cat "$work/cpu-wdpoll")
xjs() { awk -v a="$1" -v c="$2" 'BEGIN{printf "%.2f", a/c}'; }
echo "cpu_us_per_request dev: js=$dev_js_cpu vote=$dev_vote_cpu results=$dev_results_cpu poll=$dev_poll_cpu; workerd: js=$wd_js_cpu vote=$wd_vote_cpu results=$wd_results_cpu poll=$wd_poll_cpu"

# Votes the origin counted (the queue consumer delivers asynchronously).
sleep 3
counted=$(curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$origin/v1/admin/polls/$poll/results" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))' || echo "?")

# --- TinyGo Worker (only when tinygo is on PATH) ---------------------------
# The same bench vote run against the Worker built with TinyGo
# (scripts/build-edge.sh tinygo), its own wrangler dev and queue. Appends
# tinygo_vote_rps and tinygo_bundle_gzip_bytes to the summary line.
tinygo_fields=""
if command -v tinygo >/dev/null; then
	echo "== TinyGo edge worker"
	tinygo_build=$(bash scripts/build-edge.sh tinygo "$work/edge-tinygo")
	echo "$tinygo_build"
	tinygo_gzip=$(sed -n 's/^bundle_gzip_bytes=//p' <<<"$tinygo_build")
	TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 20000 >"$work/tokens-tiny-warm.txt"
	TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 200000 >"$work/tokens-tiny.txt"
	serve edge-tinygo "$work/edge-tinygo/worker.mjs"
	tinygo_url=$(cat "$work/url-edge-tinygo")
	curl -fsS "$tinygo_url/v1/polls/$poll" >/dev/null
	TOKENS="$work/tokens-tiny-warm.txt" WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"$WARM" -s edge/worker/bench/vote.lua "$tinygo_url/v1/polls/$poll/votes" >"$work/wrk-tinygo-warmup.txt" 2>&1 || true
	tinygo_vote=$(TOKENS="$work/tokens-tiny.txt" WRK_THREADS=$THREADS measure tinygovote 0 -s edge/worker/bench/vote.lua "$tinygo_url/v1/polls/$poll/votes")
	echo "tinygo_vote_rps=$tinygo_vote (non-2xx $(cat "$work/non2xx-tinygovote"))"
	tinygo_fields=" tinygo_vote_rps=$tinygo_vote tinygo_bundle_gzip_bytes=$tinygo_gzip"
else
	echo "bench-edge: tinygo is not on PATH: no TinyGo Worker figures (tinygo_* fields absent); see README.md, Building with TinyGo" >&2
fi

vote_ratio=$(awk -v a="$vote" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}')
results_ratio=$(awk -v a="$results" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
load=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "${BENCH_RECORD:-1}" != 0 ]; then
	{
		echo
		echo "## bench-edge — $(date -u +%Y-%m-%dT%H:%MZ)"
		echo
		echo "Machine: $(nproc) cores, $cpu; $(go version | cut -d' ' -f3); wrangler $(node_modules/.bin/wrangler --version 2>/dev/null | tail -1) (workerd, local); load average at the end $load."
		echo "Command: \`make bench-edge\` (wrk -t$THREADS -c$CONNS -d$DUR per target, one target at a time, after a $WARM warm-up of each Worker; the ceiling is the mean of a pass before ($ceiling1) and after ($ceiling2) the edge runs). Only 2xx answers count."
		echo
		echo "| target | req/s (2xx) | vs JS ceiling | non-2xx |"
		echo "|---|---:|---:|---:|"
		echo "| (a) plain JS worker, fixed response | $ceiling | 1.00 | $(cat "$work/non2xx-ceiling1") + $(cat "$work/non2xx-ceiling2") |"
		echo "| (a') same JS worker, sent the vote POSTs (reference only) | $ceiling_post | $(awk -v a="$ceiling_post" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}') | — |"
		echo "| vote path, distinct voters (Go, one instance/isolate) | $vote | $vote_ratio | $vote_non2xx |"
		echo "| results path (Go, one instance/isolate, edge cache) | $results | $results_ratio | $results_non2xx |"
		echo "| (b) results, same handler behind per-request glue | $perreq | $(awk -v a="$perreq" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}') | $(cat "$work/non2xx-perreq") |"
		echo
		echo
		echo "CPU per request, µs: utime+stime of every workerd process of the runtime over each measured run (/proc/PID/stat; under wrangler dev the dev proxy and the user runtime, in plain workerd its one process), divided by the requests wrk counted. Plain workerd: the same bundles from \`wrangler deploy --dry-run --outdir\`, config from scripts/workerd-config.mjs; the Queue is a stand-in worker (edge/worker/bench/workerd/queue.mjs, a benchmark fixture) delivering to the edge's own queue handler; no Cache API service, so results come from the in-isolate memo (and the origin when it expires)."
		echo
		echo "| target | wrangler dev req/s | wrangler dev CPU µs/req | plain workerd req/s | plain workerd CPU µs/req | plain workerd × JS CPU | non-2xx (plain) |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		echo "| plain JS worker, fixed response (two passes) | $ceiling | $dev_js_cpu | $wd_ceiling ($wd_ceiling1, $wd_ceiling2) | $wd_js_cpu | 1.00 | $(cat "$work/non2xx-wdceiling1") + $(cat "$work/non2xx-wdceiling2") |"
		echo "| vote path, distinct voters | $vote | $dev_vote_cpu | $wd_vote | $wd_vote_cpu | $(xjs "$wd_vote_cpu" "$wd_js_cpu") | $(cat "$work/non2xx-wdvote") |"
		echo "| results path | $results | $dev_results_cpu | $wd_results | $wd_results_cpu | $(xjs "$wd_results_cpu" "$wd_js_cpu") | $(cat "$work/non2xx-wdresults") |"
		echo "| poll path (config + a new voter token) | $pollrps | $dev_poll_cpu | $wd_poll | $wd_poll_cpu | $(xjs "$wd_poll_cpu" "$wd_js_cpu") | $(cat "$work/non2xx-wdpoll") (dev: $(cat "$work/non2xx-poll")) |"
		echo
		echo "Targets in plain workerd: vote CPU ≤ 3× the JS ceiling's, results ≤ 2×."
		echo
		echo "Bundle: $gzip_bytes bytes gzipped. Votes counted by the origin after the run (warm-ups included, both runtimes): $counted."
		if [ -n "$tinygo_fields" ]; then
			echo
			echo "TinyGo Worker ($(tinygo version | cut -d' ' -f3), scripts/build-edge.sh tinygo), measured after the above: vote path $tinygo_vote req/s (2xx; non-2xx $(cat "$work/non2xx-tinygovote")), bundle $tinygo_gzip bytes gzipped."
		fi
	} >>BENCHMARKS.md
fi
echo "vote_non2xx=$vote_non2xx results_non2xx=$results_non2xx js_ceiling_passes=$ceiling1,$ceiling2 js_ceiling_post_rps=$ceiling_post vote_ratio_vs_post_ceiling=$(awk -v a="$vote" -v c="$ceiling_post" 'BEGIN{printf "%.2f", a/c}') load=\"$load\""
echo "workerd_rps vote=$wd_vote results=$wd_results poll=$wd_poll js_ceiling=$wd_ceiling; cpu_us workerd poll=$wd_poll_cpu dev js=$dev_js_cpu results=$dev_results_cpu poll=$dev_poll_cpu"
echo "edge-workerd vote_rps=$vote results_rps=$results js_ceiling_rps=$ceiling vote_ratio=$vote_ratio results_ratio=$results_ratio per_request_glue_rps=$perreq bundle_gzip_bytes=$gzip_bytes workerd_vote_cpu_us=$wd_vote_cpu workerd_results_cpu_us=$wd_results_cpu workerd_js_cpu_us=$wd_js_cpu dev_vote_cpu_us=$dev_vote_cpu$tinygo_fields"
