package harness

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The budget check the instrumented guest calls (package
// wasm/internal/interrupt): the import budgetModule.budgetTick, called once
// every tickEvery loop headers and function entries. A tight loop passes
// one in about a nanosecond, Go's code somewhat less often: the check runs
// every few tens of microseconds of guest time, which bounds how far past
// its budget a guest can run, and how long it can hold off a stop of the
// world (a garbage collection) of the whole process.
const (
	budgetModule = "edgepoll_budget"
	budgetTick   = "tick"
	tickEvery    = 1 << 14
)

// errOverrun is the panic that stops a guest at a tick past its budget.
var errOverrun = errors.New("harness: guest ran out of its time budget")

// instantiateBudget defines the tick import in rt.
func instantiateBudget(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(budgetModule).
		NewFunctionBuilder().WithGoFunction(api.GoFunc(tick), nil, nil).Export(budgetTick).
		Instantiate(ctx)
	return err
}

// tick is the guest's periodic budget check. It reads the clock itself
// rather than waiting for a timer's goroutine to flag the overrun: a timer
// cannot fire while the world is being stopped for a looping guest that
// never reaches a safe point, which is how a flag set from a timer once let
// a looping guest run on. Calls without a budget (instantiation, ep_init)
// are not checked.
func tick(ctx context.Context, _ []uint64) {
	if b, _ := ctx.Value(budgetKey{}).(*budget); b != nil && b.overrun() {
		panic(errOverrun)
	}
}

// budget is a request's time budget inside the guest: a context that is
// done once the guest itself has run for its duration, or its parent is
// done. The clock stops while a host import the guest called is running
// (pause/resume), so a slow hand-off (an fsync that stalls, say) cannot
// turn a vote the host recorded into a 500: the budget is there to stop a
// guest that loops, not to time the host. Hand-written because
// context.WithTimeout's clock cannot be paused.
//
// With the default, instrumented guest, nothing waits for the budget: the
// guest's ticks read its clock (overrun), so it needs no timer, no channel
// of its own and no goroutine, and costs a request one allocation. Done is
// then the parent's, and Err reports the overrun once a tick found it.
// With wazero's checks (timed), wazero waits on Done, so a timer closes a
// channel of the budget's own when the guest's time runs out.
type budget struct {
	context.Context // the parent, for Value and Deadline

	mu     sync.Mutex
	err    error
	left   time.Duration // remaining guest time while paused
	since  time.Duration // when the clock last started (mono)
	paused int           // nested host calls in progress

	// timed budgets only
	done  chan struct{}
	timer *time.Timer // stopped while paused
	stop  func() bool // unregisters the parent's AfterFunc
}

type budgetKey struct{}

// epoch anchors mono: time.Since on a time with a monotonic reading reads
// only the monotonic clock, half of what time.Now does.
var epoch = time.Now()

func mono() time.Duration { return time.Since(epoch) }

// newBudget returns a budget of d over parent; end releases it. A timed
// budget closes its own Done channel when it ends.
func newBudget(parent context.Context, d time.Duration, timed bool) *budget {
	b := &budget{Context: parent, left: d, since: mono()}
	if timed {
		b.done = make(chan struct{})
		b.timer = time.AfterFunc(d, func() { b.expire(context.DeadlineExceeded) })
		b.stop = context.AfterFunc(parent, func() { b.expire(parent.Err()) })
	}
	return b
}

// end releases the budget after its call.
func (b *budget) end() { b.expire(context.Canceled) }

// Deadline reports no deadline: the budget's end moves while host calls run.
func (b *budget) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (b *budget) Done() <-chan struct{} {
	if b.done == nil {
		return b.Context.Done()
	}
	return b.done
}

// Err implements context.Context.
func (b *budget) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil && b.done == nil {
		return b.Context.Err()
	}
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
	b.expireLocked(err)
}

func (b *budget) expireLocked(err error) {
	if b.err != nil {
		return
	}
	b.err = err
	if b.done != nil {
		b.timer.Stop()
		b.stop()
		close(b.done)
	}
}

// overrun reports whether the budget is done, ending it first if its
// parent is done or the guest's own time has run out by the clock.
func (b *budget) overrun() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		if err := b.Context.Err(); err != nil {
			b.expireLocked(err)
		} else if b.paused == 0 && mono()-b.since >= b.left {
			b.expireLocked(context.DeadlineExceeded)
		}
	}
	return b.err != nil
}

// pause stops the clock for a host call.
func (b *budget) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused++
	if b.paused > 1 || b.err != nil {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.left -= mono() - b.since
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
	b.since = mono()
	if b.timer != nil {
		b.timer.Reset(max(b.left, 0))
	}
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
