#!/usr/bin/env bash
# The fault suite: Redis (fsync), two origins and the wazero harness under
# load from the rehearse engine while processes are killed, stopped and cut
# off (internal/chaos). The last line is the verdict:
#   chaos acked=N counted=C lost=L double=D faults=F duration_s=T
#
#   scripts/chaos.sh                  the full run (a few minutes)
#   CHAOS_SHORT=1 scripts/chaos.sh    a short run (about a minute)
#   CHAOS_RATE=400 scripts/chaos.sh   another voter arrival rate (per second)
#   CHAOS_SKIP=8 scripts/chaos.sh     leave faults out, by number (README)
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp -t edgepoll-chaos.XXXXXX)
trap 'rm -f "$log"' EXIT
CHAOS=1 go test -count=1 -v -run '^TestChaos$' -timeout 30m ./internal/chaos 2>&1 | tee "$log" | grep --line-buffered -v '^chaos acked='
rc=${PIPESTATUS[0]}
line=$(grep '^chaos acked=' "$log" | tail -1)
if [ -z "$line" ]; then
	echo "chaos: no verdict (the suite failed before the end)"
	exit 1
fi
echo "$line"
exit "$rc"
