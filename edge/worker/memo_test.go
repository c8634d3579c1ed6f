package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func body(s string) *item {
	return &item{res: &edge.Cached{Status: 200, Body: []byte(s)}, poll: &shared.Poll{ID: s}}
}

func TestMemoHoldsForMaxAgeThenReloads(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	m := newMemo(16, clk.now)
	var loads int
	load := func(_ context.Context, prev *item) (loaded, error) {
		loads++
		n := clk.now()
		return loaded{it: body("v" + string(rune('0'+loads))), served: servedMiss, fresh: n.Add(time.Second), stale: n.Add(5 * time.Second)}, nil
	}
	ctx := context.Background()
	it, served, err := m.get(ctx, "k", load)
	if err != nil || served != servedMiss || string(it.res.Body) != "v1" || it.poll.ID != "v1" {
		t.Fatalf("first get: %v %q %v", it, served, err)
	}
	it, served, _ = m.get(ctx, "k", load)
	if served != servedHit || string(it.res.Body) != "v1" || loads != 1 {
		t.Fatalf("second get: %q %s loads=%d, want a hit without loading", served, it.res.Body, loads)
	}
	clk.add(1500 * time.Millisecond)
	it, served, _ = m.get(ctx, "k", load)
	if served != servedMiss || string(it.res.Body) != "v2" || loads != 2 {
		t.Fatalf("after max-age: %q %s loads=%d, want a reload", served, it.res.Body, loads)
	}
}

func TestMemoCoalescesConcurrentMisses(t *testing.T) {
	m := newMemo(16, time.Now)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context, *item) (loaded, error) {
		loads.Add(1)
		<-release
		n := time.Now()
		return loaded{it: body("x"), served: servedMiss, fresh: n.Add(time.Hour), stale: n.Add(time.Hour)}, nil
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			it, _, err := m.get(context.Background(), "k", load)
			if err == nil && string(it.res.Body) != "x" {
				err = errors.New("wrong body " + string(it.res.Body))
			}
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the waiters queue behind the leader
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("%d origin loads for %d concurrent misses, want 1", got, n)
	}
}

func TestMemoServesStaleWhileRevalidatingAndOnError(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	m := newMemo(16, clk.now)
	ctx := context.Background()
	ok := func(context.Context, *item) (loaded, error) {
		n := clk.now()
		return loaded{it: body("old"), served: servedMiss, fresh: n.Add(time.Second), stale: n.Add(10 * time.Second)}, nil
	}
	if _, _, err := m.get(ctx, "k", ok); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Second)

	// While one request revalidates, others get the stale copy at once.
	started, release := make(chan struct{}), make(chan struct{})
	var prevSeen *item
	slow := func(_ context.Context, prev *item) (loaded, error) {
		prevSeen = prev
		close(started)
		<-release
		return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin down")
	}
	done := make(chan struct{})
	var leaderServed string
	var leaderErr error
	go func() {
		_, leaderServed, leaderErr = m.get(ctx, "k", slow)
		close(done)
	}()
	<-started
	it, served, err := m.get(ctx, "k", slow)
	if err != nil || served != servedStale || string(it.res.Body) != "old" {
		t.Fatalf("during revalidation: %q %v, want the stale copy", served, err)
	}
	close(release)
	<-done
	if leaderErr != nil || leaderServed != servedStale {
		t.Fatalf("leader with origin down: %q %v, want stale copy", leaderServed, leaderErr)
	}
	if prevSeen == nil || string(prevSeen.res.Body) != "old" {
		t.Fatal("loader did not get the expired copy to revalidate")
	}

	// Past the stale window an origin failure is an error.
	clk.add(20 * time.Second)
	fail := func(context.Context, *item) (loaded, error) {
		return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin down")
	}
	if _, _, err := m.get(ctx, "k", fail); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("past stale window: %v, want EUNAVAILABLE", err)
	}
}

func TestMemoIsBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	m := newMemo(8, clk.now)
	load := func(context.Context, *item) (loaded, error) {
		n := clk.now()
		return loaded{it: body("x"), served: servedMiss, fresh: n.Add(time.Hour), stale: n.Add(time.Hour)}, nil
	}
	for i := 0; i < 100; i++ {
		if _, _, err := m.get(context.Background(), string(rune('a'+i)), load); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.m) > 8 {
		t.Fatalf("memo holds %d keys, bound is 8", len(m.m))
	}
}

func BenchmarkMemoHit(b *testing.B) {
	m := newMemo(16, time.Now)
	load := func(context.Context, *item) (loaded, error) {
		n := time.Now()
		return loaded{it: body("x"), served: servedMiss, fresh: n.Add(time.Hour), stale: n.Add(time.Hour)}, nil
	}
	ctx := context.Background()
	_, _, _ = m.get(ctx, "k", load)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.get(ctx, "k", load); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCapAgeBoundsPollConfigs(t *testing.T) {
	asked := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	l := loaded{fresh: asked.Add(5 * time.Second), stale: asked.Add(35 * time.Second)}
	l.capAge(asked)
	if !l.stale.Equal(asked.Add(shared.MaxConfigAge)) || !l.fresh.Equal(asked.Add(5*time.Second)) {
		t.Fatalf("capAge: fresh %v stale %v, want fresh +5s, stale +%s", l.fresh, l.stale, shared.MaxConfigAge)
	}
	l = loaded{fresh: asked.Add(time.Minute), stale: asked.Add(time.Minute)}
	l.capAge(asked)
	if !l.fresh.Equal(asked.Add(shared.MaxConfigAge)) || !l.stale.Equal(l.fresh) {
		t.Fatalf("capAge of a long max-age: fresh %v stale %v", l.fresh, l.stale)
	}
	short := loaded{fresh: asked.Add(time.Second), stale: asked.Add(2 * time.Second)}
	short.capAge(asked)
	if !short.fresh.Equal(asked.Add(time.Second)) || !short.stale.Equal(asked.Add(2*time.Second)) {
		t.Fatalf("capAge changed windows inside the bound: %v %v", short.fresh, short.stale)
	}
}
