package worker

import (
	"context"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
)

// How a memo lookup was served; reported in HeaderCache.
const (
	servedHit   = "hit"   // fresh copy from the isolate or the location's cache
	servedStale = "stale" // stale copy while another request revalidates, or the origin is down
	servedMiss  = "miss"  // fetched from the origin
)

// item is one cached origin response, plus the decoded poll for config entries.
type item struct {
	res  *edge.Cached
	poll *shared.Poll
}

// loaded is what a loader returns: the item, how it was found (servedHit when
// it came from the location's cache, servedMiss from the origin) and until
// when it is fresh, and servable stale.
type loaded struct {
	it           *item
	served       string
	fresh, stale time.Time
}

// loader fetches key's value; prev is the expired copy (nil if none), which
// the loader may revalidate with If-None-Match.
type loader func(ctx context.Context, prev *item) (loaded, error)

type memoEntry struct {
	it           *item
	fresh, stale time.Time
	loading      chan struct{} // non-nil while one request refreshes the entry
	err          error         // the last refresh's error
}

// memo is the isolate's memory of origin responses. It holds each entry for
// as long as the origin's Cache-Control allows and coalesces concurrent
// misses: one request (the one that found the miss, so the I/O belongs to a
// request that awaits it) loads, the others wait for it, or get the stale
// copy at once when one is still inside stale-while-revalidate.
type memo struct {
	mu  sync.Mutex
	m   map[string]*memoEntry
	max int
	now func() time.Time
}

func newMemo(max int, now func() time.Time) *memo {
	return &memo{m: make(map[string]*memoEntry), max: max, now: now}
}

// get returns key's item and how it was served.
func (m *memo) get(ctx context.Context, key string, load loader) (*item, string, error) {
	now := m.now()
	m.mu.Lock()
	e := m.m[key]
	if e == nil {
		m.evictLocked(now)
		e = &memoEntry{}
		m.m[key] = e
	}
	if e.it != nil && now.Before(e.fresh) {
		it := e.it
		m.mu.Unlock()
		return it, servedHit, nil
	}
	if ch := e.loading; ch != nil {
		if e.it != nil && now.Before(e.stale) {
			it := e.it
			m.mu.Unlock()
			return it, servedStale, nil
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, "", shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "waiting for origin")
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if e.it != nil && (e.err == nil || m.now().Before(e.stale)) {
			return e.it, servedHit, nil
		}
		return nil, "", e.err
	}
	ch := make(chan struct{})
	e.loading = ch
	prev := e.it
	m.mu.Unlock()

	l, err := load(ctx, prev)

	m.mu.Lock()
	defer m.mu.Unlock()
	e.loading = nil
	close(ch)
	e.err = err
	if err != nil {
		if e.it != nil && m.now().Before(e.stale) {
			return e.it, servedStale, nil
		}
		return nil, "", err
	}
	e.it, e.fresh, e.stale = l.it, l.fresh, l.stale
	return l.it, l.served, nil
}

// evictLocked makes room for one more entry: first entries past their stale
// time, then any idle entry.
func (m *memo) evictLocked(now time.Time) {
	if len(m.m) < m.max {
		return
	}
	for k, e := range m.m {
		if e.loading == nil && !now.Before(e.stale) {
			delete(m.m, k)
		}
	}
	for k, e := range m.m {
		if len(m.m) < m.max {
			return
		}
		if e.loading == nil {
			delete(m.m, k)
		}
	}
}

// capAge bounds l's windows to shared.MaxConfigAge from asked, the moment
// the origin was asked for it (Host.Poll's contract).
func (l *loaded) capAge(asked time.Time) {
	limit := asked.Add(shared.MaxConfigAge)
	if l.stale.After(limit) {
		l.stale = limit
	}
	if l.fresh.After(l.stale) {
		l.fresh = l.stale
	}
}
