#!/usr/bin/env bash
# make bench-audience: the audience's side in one run against the harness,
# an origin and Redis: every browser scenario (internal/audience TestBrowser,
# TestBrowserIdentity and TestBrowserKinds,
# axe on each page), the first-load sizes from what the server sends, and
# freshness — for votes cast through the edge at AUDIENCE_RATE/s (20) for
# AUDIENCE_SECONDS (30), the time from each 202 to a voting page
# (conditional polling) and a big screen (the stream) showing it.
# Then the CPU a results stream costs the Worker in workerd against polling
# (edge/worker TestStreamCost, wrangler dev). Appends a dated section to
# BENCHMARKS.md; the last line is
#   audience freshness_p50_ms=A freshness_p99_ms=B page_gzip_bytes=C screen_gzip_bytes=S axe_violations=V browser_passed=N browser_failed=M stream_freshness_p99_ms=F
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--mod=mod}
export AUDIENCE_BENCH=1 AUDIENCE_RATE=${AUDIENCE_RATE:-20} AUDIENCE_SECONDS=${AUDIENCE_SECONDS:-30}

log=$(mktemp -t edgepoll-audience.XXXXXX)
trap 'rm -f "$log"' EXIT
go test -count=1 -v -timeout 20m -run '^(TestBrowser|TestBrowserIdentity|TestBrowserKinds|TestPagesServedWithHeadersAndBudgets|TestAudienceFreshness)$' ./internal/audience >"$log" 2>&1
rc=$?
# What a stream costs the Worker in workerd, against polling once a second.
go test -count=1 -v -timeout 10m -run '^TestStreamCost$' ./edge/worker >>"$log" 2>&1 || rc=1
grep -E '^(stream-cost|    pages_e2e_test.go:[0-9]+: )' "$log" >&2
grep -E '^(=== RUN|--- |    --- |    [a-z_]+\.go:[0-9]+: (first load|axe:|polling page)|audience-freshness)' "$log" >&2
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$log" | tail -1; }
page=$(sed -n 's/.*voting page \([0-9]*\) bytes, big screen.*/\1/p' "$log" | tail -1)
screen=$(sed -n 's/.*big screen \([0-9]*\) bytes.*/\1/p' "$log" | tail -1)
axe=$(sed -n 's/.*axe: [0-9]* pages and states checked, \([0-9]*\) serious.*/\1/p' "$log" | sort -n | tail -1) # cumulative over the test binary
passed=$(grep -cE '^    --- PASS: TestBrowser(Identity|Kinds)?/' "$log")
failed=$(grep -cE '^    --- FAIL: TestBrowser(Identity|Kinds)?/' "$log")
p50=$(field freshness_p50_ms)
p99=$(field freshness_p99_ms)
s99=$(field stream_freshness_p99_ms)
if [ -z "$p99" ] || [ -z "$page" ]; then
	tail -60 "$log" >&2
	echo "bench-audience: the run did not finish (exit $rc)" >&2
	exit 1
fi
line="audience freshness_p50_ms=$p50 freshness_p99_ms=$p99 page_gzip_bytes=$page screen_gzip_bytes=$screen axe_violations=${axe:-?} browser_passed=$passed browser_failed=$failed stream_freshness_p99_ms=$s99"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	cat <<MD

## bench-audience — $(date -u +%Y-%m-%dT%H:%MZ)

Command: \`make bench-audience\` (scripts/bench-audience.sh; AUDIENCE_RATE=$AUDIENCE_RATE AUDIENCE_SECONDS=$AUDIENCE_SECONDS)
Machine: $(nproc) cores, $cpu; $(go version | cut -d' ' -f3-); $(chromium --version 2>/dev/null | head -1)

    $line
    $(grep '^stream-cost' "$log" | tail -1)
MD
} >>BENCHMARKS.md
echo "$line"
exit "$rc"
