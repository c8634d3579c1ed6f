#!/usr/bin/env bash
# bench-origin: votes/s the origin applies from signed 500-vote batches with
# 1M distinct voters, against (a) the Redis ceiling measured by
# `redis-benchmark -P 64 -t hset` on the same Redis and (b) a naive baseline
# (one JSON request per vote, per-vote SADD + HINCRBY). Also Redis memory per
# distinct voter (INFO used_memory) and p99 latency per batch.
# Appends a dated section to BENCHMARKS.md; the last line of output is:
#   origin-ingest votes_per_s=N ceiling_ratio=R naive_ratio=X bytes_per_voter=B p99_batch_ms=L
set -euo pipefail
cd "$(dirname "$0")/.."

VOTERS=${VOTERS:-1000000}
BATCH=${BATCH:-500}
CONNS=${CONNS:-4}
NAIVE_VOTES=${NAIVE_VOTES:-50000}
NAIVE_CONNS=${NAIVE_CONNS:-64}
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
	LOG_LEVEL=warn setsid "${client_pin[@]}" "$work/origin" 2>"$work/origin.log" &
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

echo "== ceiling: redis-benchmark -P 64 -t hset -n 2000000 -q" >&2
ceil_out=$("${client_pin[@]}" redis-benchmark -p "$rport" -P 64 -t hset -n 2000000 -q 2>/dev/null | tr '\r' '\n' | grep -E '^HSET' | tail -1)
echo "   $ceil_out" >&2
ceiling=$(sed -E 's/^HSET: ([0-9.]+) requests per second.*/\1/' <<<"$ceil_out")

kill -TERM -- "-${pids[1]}" 2>/dev/null || true; wait "${pids[1]}" 2>/dev/null || true
nport=$(free_port)
setsid "${client_pin[@]}" "$work/benchorigin" naive-server -listen "127.0.0.1:$nport" -redis "redis://127.0.0.1:$rport/0" 2>"$work/naive.log" &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$nport/" && break; sleep 0.05; done
echo "== naive baseline: $NAIVE_VOTES votes, one JSON request each, $NAIVE_CONNS clients" >&2
naive=$("${client_pin[@]}" "$work/benchorigin" naive -url "http://127.0.0.1:$nport" -votes "$NAIVE_VOTES" -conns "$NAIVE_CONNS")
echo "   $naive" >&2
naive_per_s=$(field "$naive" votes_per_s)

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

\`$summary\`
EOF
} >>BENCHMARKS.md

echo "$summary"
