#!/usr/bin/env bash
# bench-edge: wrk against the real Worker under `wrangler dev` (workerd, offline,
# loopback) with a real origin and Redis behind it. Measures, in one run:
#   vote     POST /v1/polls/{id}/votes with distinct voters (group commit → queue)
#   results  GET  /v1/polls/{id}/results (edge cache)
#   ceiling  a plain JS Worker returning a fixed response (the runtime's ceiling)
#   perreq   the same Go handler behind syumai's per-request glue, on results
# Appends a dated section to BENCHMARKS.md; the last line is the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DUR=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=2

for tool in wrk redis-server redis-cli curl; do
	command -v "$tool" >/dev/null || { echo "$tool not found: run make deps" >&2; exit 1; }
done
[ -x node_modules/.bin/wrangler ] || { echo "node_modules/.bin/wrangler missing: run make deps" >&2; exit 1; }

work=$(mktemp -d /tmp/bench-edge.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

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
GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -o "$work/perreq/app.wasm" ./edge/worker/bench/perrequest
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
	-ingest-keys "$INGEST_KEY" -admin-token "$ADMIN_TOKEN"
waitfor "http://127.0.0.1:$oport/readyz" || { tail "$work/origin.log" >&2; exit 1; }
origin="http://127.0.0.1:$oport"
poll=bench
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
	-d '{"id":"bench","title":"Bench","options":[{"label":"A"},{"label":"B"}],"kind":"single","state":"draft","visibility":"live","expected_voters":1000000}' \
	"$origin/v1/admin/polls" >/dev/null
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" "$origin/v1/admin/polls/$poll/open" >/dev/null
# distinct voters: separate token sets for the warm-up and the measured run
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 100000 >"$work/tokens-warm.txt"
TOKEN_SECRET=$TOKEN_SECRET "$work/tokens" -poll "$poll" -n 200000 >"$work/tokens.txt"

# wrangler_config DIR MAIN: a wrangler.toml for the bench (no build step, bench vars)
wrangler_config() {
	cat >"$1/wrangler.toml" <<TOML
name = "edgepoll-bench"
main = "$2"
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
[[queues.producers]]
binding = "VOTES"
queue = "edgepoll-votes"
[[queues.consumers]]
queue = "edgepoll-votes"
max_batch_size = 100
max_batch_timeout = 1
max_retries = 10
dead_letter_queue = "edgepoll-votes-dlq"
TOML
}

# serve NAME MAIN: run wrangler dev for MAIN; sets $url
serve() {
	local name=$1 main=$2 dir="$work/wr-$1"
	mkdir -p "$dir"
	wrangler_config "$dir" "$main"
	local port iport
	port=$(freeport)
	iport=$(freeport)
	start "wrangler-$name" env -C "$dir" "$root/node_modules/.bin/wrangler" dev --ip 127.0.0.1 --port "$port" \
		--inspector-port "$iport" --show-interactive-dev-session=false --log-level "${WRANGLER_LOG_LEVEL:-warn}"
	url="http://127.0.0.1:$port"
	waitfor "$url/" 240 || true
	# any HTTP answer (404 included) means it is serving
	for _ in $(seq 240); do
		code=$(curl -so /dev/null -w '%{http_code}' "$url/" || true)
		[ "$code" != "000" ] && return 0
		sleep 0.25
	done
	echo "wrangler ($name) did not start:" >&2; tail -30 "$work/wrangler-$name.log" >&2; exit 1
}
stop_last() { local p=${pids[-1]}; kill -TERM -- "-$p" 2>/dev/null || true; sleep 1; kill -KILL -- "-$p" 2>/dev/null || true; unset 'pids[-1]'; }

# rps NAME ARGS...: wrk (after a short warm-up run), prints requests/s;
# non-2xx responses fail the run
rps() {
	local name=$1; shift
	TOKENS="${TOKENS_WARM:-${TOKENS:-}}" wrk -t"$THREADS" -c"$CONNS" -d"${BENCH_WARMUP:-3s}" "$@" >"$work/wrk-$name-warmup.txt" 2>&1 || true
	wrk -t"$THREADS" -c"$CONNS" -d"$DUR" "$@" >"$work/wrk-$name.txt" 2>&1
	if grep -q "Non-2xx" "$work/wrk-$name.txt"; then
		echo "$name: non-2xx responses:" >&2; cat "$work/wrk-$name.txt" >&2; exit 1
	fi
	awk '/Requests\/sec/ {printf "%d", $2}' "$work/wrk-$name.txt"
}

echo "== (a) plain JS worker (ceiling)"
serve ceiling "$root/edge/worker/bench/ceiling/worker.mjs"
ceiling=$(rps ceiling "$url/")
stop_last
echo "js_ceiling_rps=$ceiling"

echo "== edge worker (one Go instance per isolate)"
serve edge "$work/edge/worker.mjs"
curl -fsS "$url/v1/polls/$poll" >/dev/null   # warm: instance, poll config
curl -fsS "$url/v1/polls/$poll/results" >/dev/null
vote=$(TOKENS="$work/tokens.txt" TOKENS_WARM="$work/tokens-warm.txt" WRK_THREADS=$THREADS rps vote -s edge/worker/bench/vote.lua "$url/v1/polls/$poll/votes")
echo "vote_rps=$vote"
results=$(rps results "$url/v1/polls/$poll/results")
echo "results_rps=$results"
stop_last

echo "== (b) same handler, syumai per-request glue"
serve perreq "$work/perreq/worker.mjs"
perreq=$(rps perreq "$url/v1/polls/$poll/results")
stop_last
echo "per_request_glue_rps=$perreq"

# Votes the origin counted (the queue consumer delivers asynchronously).
sleep 3
counted=$(curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$origin/v1/admin/polls/$poll/results" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))' || echo "?")

vote_ratio=$(awk -v a="$vote" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}')
results_ratio=$(awk -v a="$results" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
	echo
	echo "## bench-edge — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $cpu; $(go version | cut -d' ' -f3); wrangler $(node_modules/.bin/wrangler --version 2>/dev/null | tail -1) (workerd, local)."
	echo "Command: \`make bench-edge\` (wrk -t$THREADS -c$CONNS -d$DUR per target, sequential, one wrangler dev at a time)."
	echo
	echo "| target | req/s | vs JS ceiling |"
	echo "|---|---:|---:|"
	echo "| (a) plain JS worker, fixed response | $ceiling | 1.00 |"
	echo "| vote path, distinct voters (Go, one instance/isolate) | $vote | $vote_ratio |"
	echo "| results path (Go, one instance/isolate, edge cache) | $results | $results_ratio |"
	echo "| (b) results, same handler behind per-request glue | $perreq | $(awk -v a="$perreq" -v c="$ceiling" 'BEGIN{printf "%.2f", a/c}') |"
	echo
	echo "Bundle: $gzip_bytes bytes gzipped. Votes counted by the origin after the run: $counted."
} >>BENCHMARKS.md
echo "edge-workerd vote_rps=$vote results_rps=$results js_ceiling_rps=$ceiling vote_ratio=$vote_ratio results_ratio=$results_ratio per_request_glue_rps=$perreq bundle_gzip_bytes=$gzip_bytes"
