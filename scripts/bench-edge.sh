#!/usr/bin/env bash
# bench-edge: wrk against the real Worker under `wrangler dev` (workerd, offline,
# loopback) with a real origin and Redis behind it. Measures, in one run:
#   vote     POST /v1/polls/{id}/votes with distinct voters (group commit → queue)
#   results  GET  /v1/polls/{id}/results (edge cache)
#   ceiling  a plain JS Worker returning a fixed response (the runtime's ceiling)
#   perreq   the same Go handler behind syumai's per-request glue, on results
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
measure() {
	local name=$1 warm=$2; shift 2
	if [ "$warm" != 0 ]; then
		TOKENS="${TOKENS_WARM:-${TOKENS:-}}" wrk -t"$THREADS" -c"$CONNS" -d"$warm" "$@" >"$work/wrk-$name-warmup.txt" 2>&1 || true
	fi
	if ! wrk -t"$THREADS" -c"$CONNS" -d"$DUR" "$@" >"$work/wrk-$name.txt" 2>&1; then
		echo "$name: wrk failed:" >&2; cat "$work/wrk-$name.txt" >&2; exit 1
	fi
	local total secs bad
	total=$(awk '/requests in/ {print $1}' "$work/wrk-$name.txt")
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
ceiling1=$(measure ceiling1 "$WARM" "$ceiling_url/")
echo "js_ceiling_rps(first)=$ceiling1"
echo "== edge worker (one Go instance per isolate)"
vote=$(TOKENS="$work/tokens.txt" TOKENS_WARM="$work/tokens-warm2.txt" WRK_THREADS=$THREADS measure vote 1s -s edge/worker/bench/vote.lua "$edge_url/v1/polls/$poll/votes")
echo "vote_rps=$vote"
results=$(measure results 1s "$edge_url/v1/polls/$poll/results")
echo "results_rps=$results"
echo "== (a) plain JS worker (ceiling), second pass"
ceiling2=$(measure ceiling2 1s "$ceiling_url/")
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
		echo "Bundle: $gzip_bytes bytes gzipped. Votes counted by the origin after the run (warm-up included): $counted."
		if [ -n "$tinygo_fields" ]; then
			echo
			echo "TinyGo Worker ($(tinygo version | cut -d' ' -f3), scripts/build-edge.sh tinygo), measured after the above: vote path $tinygo_vote req/s (2xx; non-2xx $(cat "$work/non2xx-tinygovote")), bundle $tinygo_gzip bytes gzipped."
		fi
	} >>BENCHMARKS.md
fi
echo "vote_non2xx=$vote_non2xx results_non2xx=$results_non2xx js_ceiling_passes=$ceiling1,$ceiling2 js_ceiling_post_rps=$ceiling_post vote_ratio_vs_post_ceiling=$(awk -v a="$vote" -v c="$ceiling_post" 'BEGIN{printf "%.2f", a/c}') load=\"$load\""
echo "edge-workerd vote_rps=$vote results_rps=$results js_ceiling_rps=$ceiling vote_ratio=$vote_ratio results_ratio=$results_ratio per_request_glue_rps=$perreq bundle_gzip_bytes=$gzip_bytes$tinygo_fields"
