package harness

import (
	"context"
	"sync"
	"time"
)

// budget is a request's time budget inside the guest: a context that is
// done once the guest itself has run for its duration, or its parent is
// done. The clock stops while a host import the guest called is running
// (pause/resume), so a slow hand-off (an fsync that stalls, say) cannot
// turn a vote the host recorded into a 500: the budget is there to stop a
// guest that loops, not to time the host. Hand-written because
// context.WithTimeout's clock cannot be paused.
type budget struct {
	context.Context // the parent, for Value and Deadline

	mu     sync.Mutex
	done   chan struct{}
	err    error
	left   time.Duration // remaining guest time while paused
	since  time.Time     // when the clock last started
	timer  *time.Timer   // stopped while paused
	paused int           // nested host calls in progress
	stop   func() bool   // unregisters the parent's AfterFunc
}

type budgetKey struct{}

// newBudget returns a budget of d over parent and the function that
// releases it.
func newBudget(parent context.Context, d time.Duration) (*budget, context.CancelFunc) {
	b := &budget{Context: parent, done: make(chan struct{}), left: d, since: time.Now()}
	b.timer = time.AfterFunc(d, func() { b.expire(context.DeadlineExceeded) })
	b.stop = context.AfterFunc(parent, func() { b.expire(parent.Err()) })
	return b, func() { b.expire(context.Canceled) }
}

// Deadline reports no deadline: the budget's end moves while host calls run.
func (b *budget) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (b *budget) Done() <-chan struct{} { return b.done }

// Err implements context.Context.
func (b *budget) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Value implements context.Context; it also finds the budget itself.
func (b *budget) Value(key any) any {
	if key == (budgetKey{}) {
		return b
	}
	return b.Context.Value(key)
}

func (b *budget) expire(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return
	}
	b.err = err
	b.timer.Stop()
	b.stop()
	close(b.done)
}

// pause stops the clock for a host call.
func (b *budget) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused++
	if b.paused > 1 || b.err != nil {
		return
	}
	b.timer.Stop()
	b.left -= time.Since(b.since)
}

// resume restarts the clock after a host call. A nil budget does nothing.
func (b *budget) resume() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused--
	if b.paused > 0 || b.err != nil {
		return
	}
	b.since = time.Now()
	b.timer.Reset(max(b.left, 0))
}

// hostCall stops the clock of ctx's budget, if it carries one, and returns
// the budget (or nil) whose resume restarts it: defer hostCall(ctx).resume().
func hostCall(ctx context.Context) *budget {
	b, _ := ctx.Value(budgetKey{}).(*budget)
	if b != nil {
		b.pause()
	}
	return b
}
