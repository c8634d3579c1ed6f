//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/rehearse"
)

// plan is one run's shape.
type plan struct {
	rate    float64
	calm    time.Duration // before, between and after faults
	cut     time.Duration // edge→origin path cut
	dup     time.Duration // every batch delivered twice
	stopped time.Duration // Redis SIGSTOPped
	skew    time.Duration // the edge's clock skewed, each way
	faults  []int         // fault numbers (1–8) to inject, in order
}

// TestChaos is the full suite (make chaos): all eight faults under 800
// voters/s. It runs only with CHAOS=1.
func TestChaos(t *testing.T) {
	if os.Getenv("CHAOS") == "" {
		t.Skip("the full fault suite runs with make chaos (CHAOS=1); TestChaosShort is its short version")
	}
	run(t, plan{rate: 800, calm: 10 * time.Second, cut: 30 * time.Second, dup: 20 * time.Second,
		stopped: 5 * time.Second, skew: 15 * time.Second, faults: []int{1, 2, 3, 4, 5, 6, 7, 8}})
}

// TestChaosShort is the suite's short version that make test runs: about a
// minute of load through faults 1, 2, 4 and 5 (origin killed, Redis killed,
// path cut, every batch twice).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the short fault suite takes about a minute")
	}
	run(t, plan{rate: 300, calm: 4 * time.Second, cut: 10 * time.Second, dup: 8 * time.Second,
		stopped: 5 * time.Second, skew: 5 * time.Second, faults: []int{1, 2, 4, 5}})
}

func run(t *testing.T, p plan) {
	if v := os.Getenv("CHAOS_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			t.Fatalf("CHAOS_RATE=%q", v)
		}
		p.rate = r
	}
	// CHAOS_SKIP lists fault numbers to leave out, e.g. "8" or "3,8".
	skip := strings.Split(os.Getenv("CHAOS_SKIP"), ",")
	p.faults = slices.DeleteFunc(p.faults, func(n int) bool { return slices.Contains(skip, strconv.Itoa(n)) })
	began := time.Now()

	rs := redistest.Start(t) // appendonly yes, appendfsync always
	o1 := origintest.Start(t, rs.URL)
	o2 := origintest.StartWith(t, rs.URL, origintest.Options{AdminToken: o1.AdminToken, IngestKey: o1.IngestKey})
	px, err := startProxy([]string{o1.URL, o2.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer px.close()

	e := harnesstest.Start(t, harnesstest.Options{Origin: px.url, IngestKey: o1.IngestKey.ID + "=" + string(o1.IngestKey.Secret)})
	defer func() {
		if t.Failed() {
			t.Logf("harness log tail:\n%s", e.Logs.Tail(6000))
		}
	}()

	ctx := context.Background()
	admin := adminclient.New(o1.URL, o1.AdminToken)
	const poll = "chaos"
	harnesstest.OpenPoll(t, admin, poll, "a", "b", "c")

	logf := func(format string, a ...any) {
		t.Logf("%6.1fs "+format, append([]any{time.Since(began).Seconds()}, a...)...)
	}
	pause := func(d time.Duration) { time.Sleep(d) }
	redisPID := func() int {
		info, err := rs.Info("server")
		if err != nil {
			t.Errorf("redis INFO: %v", err)
			return 0
		}
		pid, _ := strconv.Atoi(info["process_id"])
		return pid
	}

	// The faults by number; each is healed before the next. took is how
	// long one lasts, restarts included, to plan the load's length.
	type fault struct {
		name string
		took time.Duration
		do   func()
	}
	all := map[int]fault{
		1: {"kill -9 origin", 5 * time.Second, func() {
			o1.Signal(syscall.SIGKILL)
			pause(3 * time.Second)
			o1.Restart()
		}},
		2: {"kill -9 redis", 4 * time.Second, func() {
			rs.Kill()
			pause(2 * time.Second)
			rs.Restart(t)
		}},
		3: {"SIGSTOP redis", p.stopped, func() {
			if pid := redisPID(); pid > 0 {
				syscall.Kill(pid, syscall.SIGSTOP)
				pause(p.stopped)
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}},
		4: {"cut edge→origin", p.cut, func() {
			px.mode.Store(modeCut)
			pause(p.cut)
			px.mode.Store(modePass)
		}},
		5: {"every batch twice", p.dup, func() {
			px.mode.Store(modeDup)
			pause(p.dup)
			px.mode.Store(modePass)
		}},
		6: {"kill -9 harness", 5 * time.Second, func() {
			e.Kill()
			pause(time.Second)
			e.Start()
		}},
		7: {"edge clock ±2 min", 2*p.skew + 12*time.Second, func() {
			e.Restart(2 * time.Minute)
			pause(p.skew)
			e.Restart(-2 * time.Minute)
			pause(p.skew)
			e.Restart(0)
		}},
		8: {"edge clock +10 min", p.skew + 8*time.Second, func() {
			e.Restart(10 * time.Minute)
			pause(p.skew)
			e.Restart(0)
		}},
	}
	total := p.calm + 15*time.Second // slack for slow restarts on a busy machine
	for _, n := range p.faults {
		total += all[n].took + p.calm
	}

	var wg sync.WaitGroup
	var rep *rehearse.Report
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep, runErr = rehearse.Run(ctx, rehearse.Config{
			Edge: e.URL(), Poll: poll, Rate: p.rate, Duration: total, Timeout: 20 * time.Second,
			Admin: admin, Settle: 120 * time.Second,
		})
	}()
	injected := 0
	loadStart := time.Now()
	pause(p.calm)
	for _, n := range p.faults {
		f := all[n]
		logf("fault %d: %s", n, f.name)
		f.do()
		injected++
		logf("healed: %s", f.name)
		pause(p.calm)
	}
	if time.Since(loadStart) >= total {
		t.Errorf("the faults outlasted the load (%v): the last ones were not under load", total)
	}
	logf("faults done; the load runs %.0fs in all", total.Seconds())
	wg.Wait()
	if runErr != nil {
		t.Fatalf("rehearsal: %v", runErr)
	}
	if px.dups.Load() == 0 && slices.Contains(p.faults, 5) {
		t.Error("no batch was delivered twice")
	}
	logf("proxy: %d batches delivered twice, %d requests dropped", px.dups.Load(), px.dropped.Load())
	if q, ok := e.Metric("edgepoll_harness_queue_votes"); !ok || q != 0 {
		t.Errorf("harness queue after settling: %d (metric read %v)", q, ok)
	}
	v := rep.Verification
	if v == nil {
		t.Fatal("no verification")
	}
	t.Logf("votes %v, unknown %d, tokens %v", rep.Votes, rep.Unknown, rep.Tokens)
	if errs := e.Errors(20); len(errs) > 0 {
		t.Logf("harness errors (first %d):\n%s", len(errs), strings.Join(errs, "\n"))
	}
	for _, c := range v.Checks {
		t.Logf("check %-42s %v %s", c.Name, c.Passed, c.Detail)
	}
	acked := rep.Acknowledged
	lost := v.Missing
	// Counted voters beyond the acknowledged ones that are in the ledger
	// may only be votes whose answer was lost (no retries are made).
	double := v.Duplicates
	if extra := int64(v.Counted) - (acked - lost); extra > rep.Unknown {
		double += extra - rep.Unknown
	}
	if !v.Settled {
		t.Error("the origin's count was still changing at the end")
	}
	if lost != 0 || double != 0 {
		t.Errorf("lost=%d double=%d", lost, double)
	}
	if !v.Passed {
		t.Error("the rehearsal's verification failed")
	}
	fmt.Printf("chaos acked=%d counted=%d lost=%d double=%d faults=%d duration_s=%.0f\n",
		acked, v.Counted, lost, double, injected, time.Since(began).Seconds())
}
