//go:build linux

package audience

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgepoll/edgepoll/internal/browsertest"
	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/shared"
)

// recordTotals makes the page log every change of #results' data-total,
// with the wall-clock time in ms, into window.__totals.
const recordTotals = `(() => {
	window.__totals = [];
	const el = document.getElementById("results");
	const note = () => window.__totals.push([performance.timeOrigin + performance.now(), +el.dataset.total]);
	new MutationObserver(note).observe(el, {attributes: true, attributeFilter: ["data-total"]});
	note();
})()`

// freshness returns, per acknowledged vote n (1-based, one voter each), the
// ms from its 202 to the first rendering of a total of at least n.
func freshness(acks []float64, totals [][2]float64) []float64 {
	var out []float64
	for i, at := range acks {
		for _, tt := range totals {
			if tt[1] >= float64(i+1) && tt[0] >= at-1 {
				out = append(out, max(tt[0]-at, 0))
				break
			}
		}
	}
	return out
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// TestAudienceFreshness (make bench-audience) casts votes through the edge at
// AUDIENCE_RATE per second (default 20) for AUDIENCE_SECONDS (30) while a
// voting page (conditional polling) and the big screen (the stream) show
// live results, and measures for each vote the time from its 202 to the
// page showing a total that includes it.
func TestAudienceFreshness(t *testing.T) {
	if os.Getenv("AUDIENCE_BENCH") == "" {
		t.Skip("the freshness benchmark runs with make bench-audience (AUDIENCE_BENCH=1)")
	}
	rate := env("AUDIENCE_RATE", 20)
	secs := env("AUDIENCE_SECONDS", 30)
	s := startStack(t, "*")
	edge := s.h.URL()
	createPoll(t, s.admin, shared.Poll{ID: "fresh", Title: "Freshness", Options: options("A", "B")}, true)
	b := browsertest.Browser(t)
	vote, screen := browsertest.Tab(t, b), browsertest.Tab(t, b)
	if err := chromedp.Do(vote, chromedp.Navigate(edge+"/p/fresh")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(screen, chromedp.Navigate(edge+"/p/fresh/screen")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, vote, "results on the voting page", `!document.getElementById("results-section").hidden && document.querySelectorAll("#results .bar").length === 2`, 10*time.Second)
	browsertest.WaitJS(t, screen, "results on the screen", `document.querySelectorAll("#results .bar").length === 2`, 10*time.Second)
	browsertest.Eval[chromedp.Void](t, vote, recordTotals)
	browsertest.Eval[chromedp.Void](t, screen, recordTotals)

	n := int(rate * secs)
	gap := time.Duration(float64(time.Second) / rate)
	var acks []float64
	next := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(gap)
		harnesstest.Vote(t, edge, "fresh", 1)
		acks = append(acks, float64(time.Now().UnixNano())/1e6)
	}
	want := fmt.Sprintf(`document.getElementById("results").dataset.total === "%d"`, n)
	browsertest.WaitJS(t, vote, "every vote on the voting page", want, 20*time.Second)
	browsertest.WaitJS(t, screen, "every vote on the screen", want, 20*time.Second)
	pf := freshness(acks, browsertest.Eval[[][2]float64](t, vote, `window.__totals`))
	sf := freshness(acks, browsertest.Eval[[][2]float64](t, screen, `window.__totals`))
	if len(pf) != n || len(sf) != n {
		t.Fatalf("matched %d and %d of %d votes", len(pf), len(sf), n)
	}
	t.Logf("polling page: p50 %.0f ms p99 %.0f ms max %.0f ms; stream: p50 %.0f ms p99 %.0f ms max %.0f ms (%d votes at %.0f/s)",
		quantile(pf, .5), quantile(pf, .99), quantile(pf, 1), quantile(sf, .5), quantile(sf, .99), quantile(sf, 1), n, rate)
	fmt.Printf("audience-freshness freshness_p50_ms=%.0f freshness_p99_ms=%.0f stream_freshness_p50_ms=%.0f stream_freshness_p99_ms=%.0f\n",
		quantile(pf, .5), quantile(pf, .99), quantile(sf, .5), quantile(sf, .99))
}

func env(name string, def float64) float64 {
	var v float64
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}
