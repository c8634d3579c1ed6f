#!/usr/bin/env bash
# The platform suites: real Redis, origin processes and the wazero harness
# under load from the rehearse engine (internal/chaos, internal/flood,
# internal/soak). Each prints one verdict line last and appends it, dated,
# to BENCHMARKS.md:
#   scripts/suite.sh chaos   chaos acked=N counted=C lost=L double=D faults=F duration_s=T
#   scripts/suite.sh flood   flood flooder_429_ratio=R legit_success_ratio=S legit_p99_ms=P baseline_p99_ms=B
#   scripts/suite.sh soak    soak minutes=M votes=N origin_rss_growth_pct=A harness_rss_growth_pct=B origin_goroutine_growth=G lost=L
# Knobs (README, "Rehearsing a show"): CHAOS_SHORT=1, CHAOS_RATE, CHAOS_SKIP;
# FLOOD_LEGIT_RATE, FLOOD_SECONDS; SOAK_MINUTES.
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--mod=mod}

name=${1:?usage: scripts/suite.sh chaos|flood|soak}
case $name in
chaos)
	test=TestChaos knobs="CHAOS_RATE=${CHAOS_RATE:-} CHAOS_SKIP=${CHAOS_SKIP:-}"
	if [ -n "${CHAOS_SHORT:-}" ]; then test=TestChaosShort knobs="CHAOS_SHORT=1 $knobs"; fi
	export CHAOS=1 ;;
flood) test=TestFlood knobs="FLOOD_LEGIT_RATE=${FLOOD_LEGIT_RATE:-200} FLOOD_SECONDS=${FLOOD_SECONDS:-30}"; export FLOOD=1 ;;
soak) test=TestSoak knobs="SOAK_MINUTES=${SOAK_MINUTES:-10}"; export SOAK=1 ;;
*) echo "suite: unknown suite $name (chaos, flood or soak)" >&2; exit 2 ;;
esac
command -v redis-server >/dev/null || { echo "suite: redis-server not found (run make deps)" >&2; exit 1; }

log=$(mktemp -t "edgepoll-$name.XXXXXX")
trap 'rm -f "$log"' EXIT
go test -count=1 -v -run "^$test\$" -timeout 90m "./internal/$name" 2>&1 | tee "$log" | grep --line-buffered -v "^$name "
rc=${PIPESTATUS[0]}
line=$(grep "^$name " "$log" | tail -1)
if [ -z "$line" ]; then
	echo "$name: no verdict (the suite failed before the end)"
	exit 1
fi
status=passed
[ "$rc" = 0 ] || status="FAILED (exit $rc)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	cat <<MD

## $name — $(date -u +%Y-%m-%dT%H:%MZ)

Command: \`make $name\` (scripts/suite.sh $name; $knobs) — $status
Machine: $(nproc) cores, $cpu; $(go version | cut -d' ' -f3-); redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')

    $line
MD
} >>BENCHMARKS.md
echo "$line"
exit "$rc"
