package ops_test

import (
	"slices"
	"testing"

	"github.com/edgepoll/edgepoll/internal/ops"
)

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum(rate(a_total[$__rate_interval]))`:                                               {"a_total"},
		`histogram_quantile(0.99, sum by (le, route) (rate(b_bucket{route=~"vote|x"}[5m])))`: {"b_bucket"},
		`1 - sum(rate(c[1m])) / sum(rate(d{route="results"}[1m]))`:                           {"c", "d"},
		`edgepoll_origin_ready == 0 or up{job="edgepoll-origin"} == 0`:                       {"edgepoll_origin_ready", "up"},
		`count by (mode) (m == 1) and on (instance) n offset 5m > 1e3`:                       {"m", "n"},
		`max(x) / max(x) > bool 64 unless ignoring (a, b) y`:                                 {"x", "y"},
		`label_replace(z, "dst", "$1", "src", "(.*)")`:                                       {"z"},
		`sum without (instance) (rate(w:rate5m[5m]))`:                                        {"w:rate5m"},
	} {
		if got := ops.MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
