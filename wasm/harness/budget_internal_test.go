package harness

import (
	"context"
	"testing"
	"time"
)

// One request's budget as the default (instrumented) guest uses it: made,
// paused and resumed around six host calls, checked by one tick, ended.
func budgetRequest(ctx context.Context) {
	b := newBudget(ctx, time.Second, false)
	for range 6 {
		hostCall(b).resume()
	}
	if b.overrun() {
		panic("overrun")
	}
	b.end()
}

// BenchmarkBudget is the host-side cost of the default time budget per
// request (the guest-side checks are in BenchmarkVotePipeline's wasm run).
func BenchmarkBudget(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		budgetRequest(ctx)
	}
}

// BenchmarkTick is one tick of a guest within its budget.
func BenchmarkTick(b *testing.B) {
	bud := newBudget(context.Background(), time.Hour, false)
	b.ReportAllocs()
	for b.Loop() {
		tick(bud, nil)
	}
}

// TestBudgetAllocs: the default budget costs a request one allocation (the
// budget itself) and a tick none.
func TestBudgetAllocs(t *testing.T) {
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { budgetRequest(ctx) }); n > 1 {
		t.Errorf("a request's budget: %v allocations, want at most 1", n)
	}
	bud := newBudget(ctx, time.Hour, false)
	if n := testing.AllocsPerRun(100, func() { tick(bud, nil) }); n != 0 {
		t.Errorf("a tick: %v allocations, want 0", n)
	}
}

// TestBudgetClock: the guest's time runs out by the clock, not counting
// host calls, and a cancelled parent ends the budget at the next tick.
func TestBudgetClock(t *testing.T) {
	b := newBudget(context.Background(), 20*time.Millisecond, false)
	b.pause()
	time.Sleep(40 * time.Millisecond) // a host call: not counted
	b.resume()
	if b.overrun() || b.Err() != nil {
		t.Fatalf("budget over after a host call longer than it: %v", b.Err())
	}
	time.Sleep(30 * time.Millisecond)
	if !b.overrun() || b.Err() != context.DeadlineExceeded {
		t.Fatalf("after 30 ms of guest time of a 20 ms budget: overrun false, err %v", b.Err())
	}
	ctx, cancel := context.WithCancel(context.Background())
	b = newBudget(ctx, time.Hour, false)
	cancel()
	if !b.overrun() || b.Err() != context.Canceled {
		t.Fatalf("cancelled parent: err %v, want context.Canceled", b.Err())
	}
}
