#!/usr/bin/env bash
# bench-origin: votes/s the origin applies from signed 500-vote batches with
# 1M distinct voters, against (a) the Redis ceiling measured by
# `redis-benchmark -P 64 -t hset` on the same Redis and (b) a naive baseline
# (one JSON request per vote, per-vote SADD + HINCRBY). Also Redis memory per
# distinct voter (INFO used_memory) and p99 latency per batch. Then the cost
# of each durability mode: the same ingest against a Redis with
# appendonly yes + appendfsync always (origin -durability fsync) and against
# a primary with a real replica (redis-server --replicaof; origin
# -durability replica), each against its own redis-benchmark ceiling.
# Then each poll kind (single, scale, ranked, words) with KIND_VOTERS voters,
# each on a fresh Redis, and the single-choice figure against a baseline: the
# origin built from BASE_COMMIT (the last commit before the scale, ranked and
# words kinds: wire format 1, the old apply script), fed the same ballots as
# version-1 batches, alternating with today's origin REPS times each
# (medians compared).
# Appends a dated section to BENCHMARKS.md; the last three lines of output are:
#   origin-ingest votes_per_s=N ceiling_ratio=R naive_ratio=X bytes_per_voter=B p99_batch_ms=L
#   origin-durability none_votes_per_s=A fsync_votes_per_s=B replica_votes_per_s=C fsync_ratio=R
#   origin-kinds single_votes_per_s=A scale_votes_per_s=B ranked_votes_per_s=C words_votes_per_s=D single_vs_before=R
set -euo pipefail
cd "$(dirname "$0")/.."

VOTERS=${VOTERS:-1000000}
BATCH=${BATCH:-500}
CONNS=${CONNS:-4}
NAIVE_VOTES=${NAIVE_VOTES:-50000}
NAIVE_CONNS=${NAIVE_CONNS:-64}
KIND_VOTERS=${KIND_VOTERS:-500000}
REPS=${REPS:-3}
BASE_COMMIT=${BASE_COMMIT:-726d8a5b86e53c13ba94a795841c0150a94b1e83}
export GOFLAGS=${GOFLAGS:--mod=mod}

for tool in redis-server redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "bench-origin: $tool not found (run make deps)" >&2; exit 1; }
done

# Redis gets a core of its own and every client (the origin, the load
# generators, redis-benchmark) shares the others, as on a real deployment where
# Redis runs on its own host. All three measurements are pinned the same way.
# PIN=0 turns it off.
ncpu=$(nproc)
redis_pin=() client_pin=()
if [ "${PIN:-1}" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
	redis_pin=(taskset -c "$((ncpu - 1))")
	client_pin=(taskset -c "0-$((ncpu - 2))")
fi
pinning="redis-server on CPU $((ncpu - 1)), clients on CPUs 0-$((ncpu - 2))"
[ ${#redis_pin[@]} -gt 0 ] || pinning="none"

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "bench-origin: $1 not up" >&2; return 1; }

echo "== building origin and the load generator" >&2
go build -o "$work/origin" ./origin/cmd/origin
go build -o "$work/benchorigin" ./origin/cmd/benchorigin
echo "== building the baseline origin from $BASE_COMMIT" >&2
base_ok=0
if mkdir -p "$work/base" && git archive "$BASE_COMMIT" | tar -x -C "$work/base" &&
	(cd "$work/base" && go build -o "$work/origin-base" ./origin/cmd/origin); then
	base_ok=1
else
	echo "bench-origin: cannot build the baseline from $BASE_COMMIT (no such commit here?); single_vs_before will be n/a" >&2
fi

rport=$(free_port)
# A fresh Redis with stock settings; persistence off so no background save
# (fork) runs in the middle of any of the three measurements.
setsid "${redis_pin[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
rcli() { redis-cli -p "$rport" "$@"; }
used_memory() { rcli INFO memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}'; }

oport=$(free_port)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
LISTEN_ADDR=127.0.0.1:$oport REDIS_URL=redis://127.0.0.1:$rport/0 ADMIN_TOKEN=$token INGEST_KEYS=bench=$secret \
	LOG_LEVEL=warn setsid "${client_pin[@]}" "$work/origin" -durability none 2>"$work/origin.log" &
pids+=($!)
wait_http "http://127.0.0.1:$oport/healthz"

mem_before=$(used_memory)
echo "== origin ingest: $VOTERS voters in $BATCH-vote batches over $CONNS connections" >&2
ingest=$("${client_pin[@]}" "$work/benchorigin" ingest -origin "http://127.0.0.1:$oport" -token "$token" -key "bench=$secret" \
	-voters "$VOTERS" -batch "$BATCH" -conns "$CONNS")
echo "   $ingest" >&2
mem_after=$(used_memory)
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1==k{print $2}'; }
votes_per_s=$(field "$ingest" votes_per_s)
p99=$(field "$ingest" p99_batch_ms)
bytes_per_voter=$(awk -v a="$mem_after" -v b="$mem_before" -v n="$VOTERS" 'BEGIN{printf "%.1f", (a-b)/n}')

# hset_ceiling PORT: redis-benchmark's pipelined HSET rate against the Redis on PORT.
hset_ceiling() {
	echo "== ceiling: redis-benchmark -P 64 -t hset -n 2000000 -q (port $1)" >&2
	local out
	out=$("${client_pin[@]}" redis-benchmark -p "$1" -P 64 -t hset -n 2000000 -q 2>/dev/null | tr '\r' '\n' | grep -E '^HSET' | tail -1)
	echo "   $out" >&2
	sed -E 's/^HSET: ([0-9.]+) requests per second.*/\1/' <<<"$out"
}
ceiling=$(hset_ceiling "$rport")

kill -TERM -- "-${pids[1]}" 2>/dev/null || true; wait "${pids[1]}" 2>/dev/null || true
nport=$(free_port)
setsid "${client_pin[@]}" "$work/benchorigin" naive-server -listen "127.0.0.1:$nport" -redis "redis://127.0.0.1:$rport/0" 2>"$work/naive.log" &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$nport/" && break; sleep 0.05; done
echo "== naive baseline: $NAIVE_VOTES votes, one JSON request each, $NAIVE_CONNS clients" >&2
naive=$("${client_pin[@]}" "$work/benchorigin" naive -url "http://127.0.0.1:$nport" -votes "$NAIVE_VOTES" -conns "$NAIVE_CONNS")
echo "   $naive" >&2
naive_per_s=$(field "$naive" votes_per_s)

# --- durability modes --------------------------------------------------------
kill -TERM -- "-${pids[2]}" 2>/dev/null || true; wait "${pids[2]}" 2>/dev/null || true # naive server
kill -TERM -- "-${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true # the first Redis

# start_redis DIR PIN... -- ARGS...: a fresh redis-server on a free port in
# its own directory; sets started_port. (Not in a subshell: pids must grow.)
start_redis() {
	local dir=$1 port
	shift
	local pin=()
	while [ "$1" != -- ]; do pin+=("$1"); shift; done
	shift
	port=$(free_port)
	mkdir -p "$dir"
	setsid "${pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir" --logfile "$dir/redis.log" \
		--repl-diskless-sync-delay 0 "$@" >/dev/null 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
	started_port=$port
}
# start_origin REDIS_PORT ARGS...: an origin against it; sets started_port.
start_origin() {
	local port rp=$1
	shift
	port=$(free_port)
	LISTEN_ADDR=127.0.0.1:$port REDIS_URL=redis://127.0.0.1:$rp/0 ADMIN_TOKEN=$token INGEST_KEYS=bench=$secret \
		LOG_LEVEL=warn setsid "${client_pin[@]}" "$work/origin" "$@" 2>>"$work/origin-durability.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/healthz"
	started_port=$port
}
stop_last() { # stop the N most recently started processes
	local i
	for ((i = 0; i < $1; i++)); do
		local pid=${pids[-1]}
		kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
		unset 'pids[-1]'
	done
}
run_ingest() { # run_ingest ORIGIN_PORT
	local out
	out=$("${client_pin[@]}" "$work/benchorigin" ingest -origin "http://127.0.0.1:$1" -token "$token" -key "bench=$secret" \
		-voters "$VOTERS" -batch "$BATCH" -conns "$CONNS")
	echo "   $out" >&2
	echo "$out"
}

echo "== durability fsync: appendonly yes, appendfsync always; origin -durability fsync" >&2
start_redis "$work/fsync" "${redis_pin[@]}" -- --appendonly yes --appendfsync always
fport=$started_port
start_origin "$fport" -durability fsync
fsync_ingest=$(run_ingest "$started_port")
fsync_ceiling=$(hset_ceiling "$fport")
stop_last 2

echo "== durability replica: a primary (persistence off) and a replica (redis-server --replicaof); origin -durability replica -replicas 1" >&2
start_redis "$work/primary" "${redis_pin[@]}" -- --appendonly no
pport=$started_port
# The replica stands for another host: it runs beside the clients, not on Redis's core.
start_redis "$work/replica" "${client_pin[@]}" -- --appendonly no --replicaof 127.0.0.1 "$pport"
rpport=$started_port
for _ in $(seq 200); do
	redis-cli -p "$rpport" INFO replication | tr -d '\r' | grep -q '^master_link_status:up' && \
		[ "$(printf 'SET bench:probe 1\nDEL bench:probe\nWAIT 1 100\n' | redis-cli -p "$pport" | tail -1)" = 1 ] && break
	sleep 0.05
done
start_origin "$pport" -durability replica -replicas 1
roport=$started_port
replica_ingest=$(run_ingest "$roport")
replica_ceiling=$(hset_ceiling "$pport")
shortfalls=$(curl -fsS "http://127.0.0.1:$roport/metrics" | awk '/^edgepoll_origin_durability_wait_shortfalls_total/{print $2}')
stop_last 3

# --- poll kinds ------------------------------------------------------------
# kind_run BINARY KIND WIRE: a fresh Redis (persistence off) and an origin
# from BINARY (-durability none), one ingest of KIND_VOTERS voters; sets
# kind_result to its votes_per_s. (Not in a subshell: pids must grow.)
kind_run() {
	local bin=$1 kind=$2 wire=$3 out port
	start_redis "$work/kind-$kind-$RANDOM" "${redis_pin[@]}" -- --appendonly no
	local rp=$started_port
	port=$(free_port)
	LISTEN_ADDR=127.0.0.1:$port REDIS_URL=redis://127.0.0.1:$rp/0 ADMIN_TOKEN=$token INGEST_KEYS=bench=$secret \
		LOG_LEVEL=warn setsid "${client_pin[@]}" "$bin" -durability none 2>>"$work/origin-kinds.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/healthz"
	out=$("${client_pin[@]}" "$work/benchorigin" ingest -origin "http://127.0.0.1:$port" -token "$token" -key "bench=$secret" \
		-voters "$KIND_VOTERS" -batch "$BATCH" -conns "$CONNS" -kind "$kind" -wire "$wire" -poll "k-$kind")
	echo "   $kind (wire $wire, $(basename "$bin")): $out" >&2
	stop_last 2
	kind_result=$(field "$out" votes_per_s)
}
median() { tr -s ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "== poll kinds: $KIND_VOTERS voters each, each run on a fresh Redis; single vs the $BASE_COMMIT baseline $REPS times, alternating" >&2
single_runs="" base_runs=""
for ((i = 0; i < REPS; i++)); do
	if [ "$base_ok" = 1 ]; then kind_run "$work/origin-base" single 1; base_runs+="$kind_result "; fi
	kind_run "$work/origin" single 2
	single_runs+="$kind_result "
done
single_kind_per_s=$(median <<<"$single_runs")
kind_run "$work/origin" scale 2
scale_per_s=$kind_result
kind_run "$work/origin" ranked 2
ranked_per_s=$kind_result
kind_run "$work/origin" words 2
words_per_s=$kind_result
if [ "$base_ok" = 1 ]; then
	base_per_s=$(median <<<"$base_runs")
	single_vs_before=$(awk -v a="$single_kind_per_s" -v b="$base_per_s" 'BEGIN{printf "%.2f", a/b}')
else
	base_per_s=n/a single_vs_before=n/a
fi
ksummary="origin-kinds single_votes_per_s=$single_kind_per_s scale_votes_per_s=$scale_per_s ranked_votes_per_s=$ranked_per_s words_votes_per_s=$words_per_s single_vs_before=$single_vs_before"

fsync_per_s=$(field "$fsync_ingest" votes_per_s)
replica_per_s=$(field "$replica_ingest" votes_per_s)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
fsync_ratio=$(ratio "$fsync_per_s" "$votes_per_s")
replica_ratio=$(ratio "$replica_per_s" "$votes_per_s")
fsync_ceiling_ratio=$(ratio "$fsync_ceiling" "$ceiling")
replica_ceiling_ratio=$(ratio "$replica_ceiling" "$ceiling")
dsummary="origin-durability none_votes_per_s=$votes_per_s fsync_votes_per_s=$fsync_per_s replica_votes_per_s=$replica_per_s fsync_ratio=$fsync_ratio"

ceiling_ratio=$(awk -v a="$votes_per_s" -v b="$ceiling" 'BEGIN{printf "%.2f", a/b}')
naive_ratio=$(awk -v a="$votes_per_s" -v b="$naive_per_s" 'BEGIN{printf "%.1f", a/b}')
redis_version=$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')
cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
summary="origin-ingest votes_per_s=$votes_per_s ceiling_ratio=$ceiling_ratio naive_ratio=$naive_ratio bytes_per_voter=$bytes_per_voter p99_batch_ms=$p99"

cat >&2 <<EOF

Origin ingest   $votes_per_s votes/s  (p50 $(field "$ingest" p50_batch_ms) ms, p99 $p99 ms per $BATCH-vote batch)
Redis ceiling   $ceiling HSET/s pipelined  -> ratio $ceiling_ratio (target >= 0.40)
Naive baseline  $naive_per_s votes/s         -> origin is ${naive_ratio}x (target >= 20x)
Redis memory    $bytes_per_voter bytes per distinct voter (target <= 24)


Durability (each mode against a fresh Redis and its own redis-benchmark HSET ceiling, same config)
$(printf '  %-8s %10s %12s %14s %14s\n' mode votes/s p99/batch ceiling votes/ceiling \
	none "$votes_per_s" "$p99 ms" "$ceiling" "$ceiling_ratio" \
	fsync "$fsync_per_s" "$(field "$fsync_ingest" p99_batch_ms) ms" "$fsync_ceiling" "$(ratio "$fsync_per_s" "$fsync_ceiling")" \
	replica "$replica_per_s" "$(field "$replica_ingest" p99_batch_ms) ms" "$replica_ceiling" "$(ratio "$replica_per_s" "$replica_ceiling")")
  fsync/none $fsync_ratio (ceilings $fsync_ceiling_ratio), replica/none $replica_ratio (ceilings $replica_ceiling_ratio); WAIT shortfalls: ${shortfalls:-?}

Poll kinds ($KIND_VOTERS voters each, fresh Redis per run, persistence off)
  single $single_kind_per_s (runs: $single_runs)  baseline $BASE_COMMIT: $base_per_s (runs: ${base_runs:-none}) -> $single_vs_before (target >= 0.95)
  scale $scale_per_s  ranked $ranked_per_s (3 of 4 options)  words $words_per_s (1 word of 2,000, Zipf-like)
EOF

{
	[ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
	cat <<EOF

## origin ingest — $(date -u +%Y-%m-%dT%H:%MZ)

Command: \`make bench-origin\` (scripts/bench-origin.sh; VOTERS=$VOTERS BATCH=$BATCH CONNS=$CONNS NAIVE_VOTES=$NAIVE_VOTES NAIVE_CONNS=$NAIVE_CONNS)
Machine: $(nproc) cores, $cpu; $(go version | cut -d' ' -f3-); redis $redis_version (stock config, persistence off) — CPU pinning: $pinning

| measure | value |
|---|---|
| origin votes/s (signed $BATCH-vote batches, $VOTERS distinct voters, $CONNS connections) | $votes_per_s |
| p50 / p99 latency per batch | $(field "$ingest" p50_batch_ms) ms / $p99 ms |
| ceiling: \`redis-benchmark -P 64 -t hset -n 2000000\` | $ceiling ops/s |
| ceiling ratio (target ≥ 0.40) | $ceiling_ratio |
| naive baseline ($NAIVE_VOTES votes, 1 JSON request + SADD + HINCRBY per vote, $NAIVE_CONNS clients) | $naive_per_s votes/s |
| naive ratio (target ≥ 20×) | $naive_ratio |
| Redis memory per distinct voter (INFO used_memory delta / voters; target ≤ 24) | $bytes_per_voter B |

Durability (the same ingest per mode, each against a fresh Redis; ceiling: \`redis-benchmark -P 64 -t hset -n 2000000\` against that Redis, same config; the replica runs on the clients' CPUs):

| mode | Redis | origin votes/s | p99 per batch | ceiling ops/s | votes/ceiling | vs none |
|---|---|---|---|---|---|---|
| none | persistence off | $votes_per_s | $p99 ms | $ceiling | $ceiling_ratio | 1.00 |
| fsync | appendonly yes, appendfsync always | $fsync_per_s | $(field "$fsync_ingest" p99_batch_ms) ms | $fsync_ceiling | $(ratio "$fsync_per_s" "$fsync_ceiling") | $fsync_ratio (ceiling $fsync_ceiling_ratio) |
| replica | persistence off + 1 replica, WAIT 1 500ms per batch | $replica_per_s | $(field "$replica_ingest" p99_batch_ms) ms | $replica_ceiling | $(ratio "$replica_per_s" "$replica_ceiling") | $replica_ratio (ceiling $replica_ceiling_ratio) |

WAIT shortfalls (batches answered 503) in the replica run: ${shortfalls:-?}

Poll kinds ($KIND_VOTERS voters per run, $BATCH-vote batches, $CONNS connections, each run against a fresh Redis, persistence off, origin -durability none). Baseline: the origin built from \`$BASE_COMMIT\` (before the scale, ranked and words kinds: wire version 1 and the old apply script), fed the same single-choice ballots as version-1 batches; it and today's origin ran $REPS times each, alternating, medians compared.

| kind | ballots | votes/s |
|---|---|---|
| single (baseline $BASE_COMMIT) | 1 of 4 options | $base_per_s (runs: ${base_runs:-none}) |
| single | 1 of 4 options | $single_kind_per_s (runs: $single_runs) |
| scale | a value 1-10 | $scale_per_s |
| ranked | 3 of 4 options in order | $ranked_per_s |
| words | 1 word of 2,000, Zipf-like | $words_per_s |
| single today / baseline (target ≥ 0.95) | | $single_vs_before |

\`$summary\`
\`$dsummary\`
\`$ksummary\`
EOF
} >>BENCHMARKS.md

echo "$summary"
echo "$dsummary"
echo "$ksummary"
