//go:build linux

// Package soak runs the platform at half its measured capacity for
// SOAK_MINUTES (default 10) and watches the memory and goroutines of the
// origin and the harness (make soak). The test runs only with SOAK=1.
package soak

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/rehearse"
)

// sampleEvery is how often RSS and goroutines are read.
const sampleEvery = 10 * time.Second

// sample is one reading of both processes.
type sample struct {
	at                  time.Duration // since the soak began
	originRSS, edgeRSS  uint64
	originGoroutines    float64
	originOK, harnessOK bool
}

// window averages the samples taken in [from, to).
func window(ss []sample, from, to time.Duration, f func(sample) float64) float64 {
	var sum float64
	n := 0
	for _, s := range ss {
		if s.at >= from && s.at < to {
			sum += f(s)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// TestSoak measures the capacity with a closed-model rehearsal, runs at half
// of it for SOAK_MINUTES, and prints
//
//	soak minutes=M votes=N origin_rss_growth_pct=A harness_rss_growth_pct=B origin_goroutine_growth=G lost=L
//
// Growth is from the first minute's mean to the last minute's mean.
func TestSoak(t *testing.T) {
	if os.Getenv("SOAK") == "" {
		t.Skip("the soak runs with make soak (SOAK=1, SOAK_MINUTES)")
	}
	minutes := 10.0
	if v := os.Getenv("SOAK_MINUTES"); v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || m < 2 {
			t.Fatalf("SOAK_MINUTES=%q: want a number of minutes, at least 2", v)
		}
		minutes = m
	}
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret)})
	admin := adminclient.New(o.URL, o.AdminToken)
	harnesstest.OpenPoll(t, admin, "capacity", "a", "b", "c", "d")
	harnesstest.OpenPoll(t, admin, "soak", "a", "b", "c", "d")
	ctx := context.Background()

	cap, err := rehearse.Run(ctx, rehearse.Config{Edge: h.URL(), Poll: "capacity", Concurrency: 64, Duration: 15 * time.Second})
	if err != nil {
		t.Fatalf("capacity run: %v", err)
	}
	capacity := float64(cap.Acknowledged) / cap.Seconds
	rate := capacity / 2
	t.Logf("capacity: %.0f voters/s (closed model, 64 in flight, %d acknowledged in %.1f s); soaking at %.0f/s for %.0f min",
		capacity, cap.Acknowledged, cap.Seconds, rate, minutes)
	if capacity < 100 {
		t.Fatalf("capacity %.0f voters/s: the platform is not working (%+v)", capacity, cap)
	}

	var (
		mu      sync.Mutex
		samples []sample
	)
	began := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			s := sample{at: time.Since(began)}
			var err1, err2 error
			s.originRSS, err1 = harnesstest.RSS(o.PID())
			s.edgeRSS, err2 = harnesstest.RSS(h.PID())
			s.originGoroutines, s.originOK = harnesstest.Metric(o.URL, "go_goroutines")
			s.harnessOK = err1 == nil && err2 == nil
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			if !s.harnessOK || !s.originOK {
				t.Errorf("sample at %v: rss %v %v, goroutines read %v", s.at, err1, err2, s.originOK)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	d := time.Duration(minutes * float64(time.Minute))
	rep, err := rehearse.Run(ctx, rehearse.Config{Edge: h.URL(), Poll: "soak", Rate: rate, Duration: d,
		Admin: admin, Settle: time.Minute, Timeout: 20 * time.Second})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("soak run: %v", err)
	}
	v := rep.Verification
	if v == nil {
		t.Fatal("no verification")
	}
	for _, c := range v.Checks {
		t.Logf("check %-42s %v %s", c.Name, c.Passed, c.Detail)
	}
	if !v.Passed {
		t.Error("the soak's verification failed")
	}
	for _, s := range samples {
		t.Logf("%5.0fs origin rss %6.1f MiB goroutines %4.0f; harness rss %6.1f MiB",
			s.at.Seconds(), float64(s.originRSS)/(1<<20), s.originGoroutines, float64(s.edgeRSS)/(1<<20))
	}
	first, last := time.Duration(0), time.Minute
	end := time.Duration(minutes * float64(time.Minute))
	growth := func(f func(sample) float64) float64 {
		a, b := window(samples, first, last, f), window(samples, end-time.Minute, end+sampleEvery, f)
		return 100 * (b - a) / a
	}
	originRSS := growth(func(s sample) float64 { return float64(s.originRSS) })
	edgeRSS := growth(func(s sample) float64 { return float64(s.edgeRSS) })
	g0 := window(samples, first, last, func(s sample) float64 { return s.originGoroutines })
	g1 := window(samples, end-time.Minute, end+sampleEvery, func(s sample) float64 { return s.originGoroutines })
	t.Logf("voters %d, votes/s %.0f, vote p99 %.2f ms, statuses %v", rep.Voters, rep.VotesPerSecond, rep.VoteLatency.P99, rep.Votes)
	goroutines := int(math.Round(g1 - g0))
	if originRSS > 10 || edgeRSS > 10 {
		t.Errorf("RSS grew by %.1f%% (origin) and %.1f%% (harness) from the first minute to the last; want ≤ 10%%", originRSS, edgeRSS)
	}
	if goroutines > 5 {
		t.Errorf("the origin's goroutines grew by %d from the first minute to the last", goroutines)
	}
	if v.Missing != 0 {
		t.Errorf("%d acknowledged votes not counted", v.Missing)
	}
	fmt.Printf("soak minutes=%.0f votes=%d origin_rss_growth_pct=%.1f harness_rss_growth_pct=%.1f origin_goroutine_growth=%d lost=%d\n",
		minutes, rep.Acknowledged, originRSS, edgeRSS, goroutines, v.Missing)
}
