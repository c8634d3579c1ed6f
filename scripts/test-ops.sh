#!/usr/bin/env bash
# make test-ops: the operations checks. promtool check rules and the rule
# unit tests (docs/ops/prometheus/alerts_test.yml), the committed Grafana
# dashboard against the code that builds it and the SDK's schema, then a
# real Prometheus (Debian's package) scraping Redis-backed origin and
# wazero harness processes while votes flow, until a stopped Redis fires
# its alert (internal/ops). Prints, last, and appends dated to BENCHMARKS.md:
#   ops rule_tests=N alerts_fired=A dashboard_panels=P missing_metrics=M
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--mod=mod}
for tool in prometheus promtool redis-server; do
	command -v "$tool" >/dev/null || { echo "test-ops: $tool not found (run make deps)" >&2; exit 1; }
done
summary=$(mktemp -t edgepoll-ops.XXXXXX)
trap 'rm -f "$summary"' EXIT
OPS_SUMMARY=$summary go test -count=1 -v -run '^(TestRules|TestDashboardCommitted|TestMetricNames|TestPrometheus)$' ./internal/ops 2>&1 |
	grep --line-buffered -E '^(---|FAIL|ok|panic)|prometheus_test.go|dashboard_test.go'
rc=${PIPESTATUS[0]}
line=$(cat "$summary")
if [ -z "$line" ]; then
	echo "test-ops: no summary (the Prometheus test failed before the end)"
	exit 1
fi
status=passed
[ "$rc" = 0 ] || status="FAILED (exit $rc)"
{
	cat <<MD

## test-ops — $(date -u +%Y-%m-%dT%H:%MZ)

Command: \`make test-ops\` (scripts/test-ops.sh) — $status
Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $(prometheus --version 2>&1 | head -1)

    $line
MD
} >>BENCHMARKS.md
echo "$line"
exit "$rc"
