package originhost

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/cachecontrol"
)

// maxOriginBody bounds a poll config or results body read from the origin.
const maxOriginBody = 4 << 20

// negativeTTL is how long a response without Cache-Control (an error, say)
// is kept, so a flood of requests for an unknown poll costs the origin one
// request per period.
const negativeTTL = time.Second

// response is one cached origin response.
type response struct {
	status       int
	contentType  string
	etag         string
	cacheControl string
	body         []byte
	value        any       // decoded form, set by the cache's decode hook
	asked        time.Time // when the fetch that loaded or last revalidated it started
	fresh        time.Time
	stale        time.Time // end of the stale-while-revalidate window
}

// entry is one cache key: its current response and the fetch in flight.
type entry struct {
	resp   *response
	flight chan struct{} // closed when the fetch in flight ends; nil if none
	err    error         // the last fetch's error, for waiters
}

// cache is an HTTP cache of origin GETs, honouring max-age,
// stale-while-revalidate and ETag (revalidating with If-None-Match), with
// one origin request per key at a time: concurrent misses wait for it.
// Ages count from when the cache asked the origin (the start of the fetch,
// as RFC 9111's corrected age does), and with maxAge set no response asked
// for longer ago than that is ever returned, stale-if-error included.
type cache struct {
	client *http.Client
	now    func() time.Time
	decode func(status int, body []byte) (any, error) // may be nil
	maxAge time.Duration                              // 0: no bound past the origin's Cache-Control

	mu      sync.Mutex
	entries map[string]*entry
	fetches uint64 // origin requests made, for stats and tests
}

func newCache(client *http.Client, now func() time.Time, decode func(int, []byte) (any, error)) *cache {
	return &cache{client: client, now: now, decode: decode, entries: make(map[string]*entry)}
}

// get returns the response for url fetched with Accept: accept, cached
// under key: the cached one while fresh, the stale
// one while a background revalidation runs inside stale-while-revalidate
// (or when the origin fails and it is still younger than maxAge), otherwise
// the origin's after one fetch shared by every concurrent caller.
func (c *cache) get(ctx context.Context, key, url, accept string) (*response, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= maxEntries {
			c.evictLocked()
		}
		e = &entry{}
		c.entries[key] = e
	}
	now := c.now()
	if r := e.resp; r != nil && now.Before(r.fresh) {
		c.mu.Unlock()
		return r, nil
	}
	if e.flight == nil {
		e.flight = make(chan struct{})
		go c.fetch(url, accept, e, e.resp)
	}
	if r := e.resp; r != nil && now.Before(r.stale) {
		c.mu.Unlock()
		return r, nil
	}
	flight := e.flight
	c.mu.Unlock()
	select {
	case <-flight:
	case <-ctx.Done():
		return nil, shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "origin did not answer in time")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.resp != nil && c.young(e.resp, c.now()) {
		return e.resp, nil // the fetch's answer, or stale-if-error: better an old answer than none
	}
	if e.err != nil {
		return nil, e.err
	}
	return nil, shared.Errorf(shared.EUNAVAILABLE, "origin answered too late")
}

// young reports whether r may still be returned at now: always without
// maxAge, else only while it was asked for at most maxAge ago.
func (c *cache) young(r *response, now time.Time) bool {
	return c.maxAge <= 0 || now.Before(r.asked.Add(c.maxAge))
}

// fetch revalidates or loads url from the origin, detached from any one
// caller's context so a caller giving up does not fail the others.
func (c *cache) fetch(url, accept string, e *entry, old *response) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.load(ctx, url, accept, old, c.now())
	c.mu.Lock()
	c.fetches++
	if err == nil {
		e.resp = r
	}
	e.err = err
	close(e.flight)
	e.flight = nil
	c.mu.Unlock()
}

// load asks the origin at asked (now, the fetch's start), revalidating old.
func (c *cache) load(ctx context.Context, url, accept string, old *response, asked time.Time) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if old != nil && old.etag != "" && old.status == http.StatusOK {
		req.Header.Set("If-None-Match", old.etag)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOriginBody+1))
	if err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "origin response cut short")
	}
	if len(body) > maxOriginBody {
		return nil, shared.Errorf(shared.EUNAVAILABLE, "origin response too large")
	}
	if resp.StatusCode >= 500 {
		return nil, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d", resp.StatusCode)
	}
	cc := cachecontrol.Parse(resp.Header.Get("Cache-Control"))
	if !cc.Set {
		cc.MaxAge = negativeTTL
	}
	fresh, stale := asked.Add(cc.MaxAge), asked.Add(cc.MaxAge+cc.SWR)
	if c.maxAge > 0 {
		limit := asked.Add(c.maxAge)
		if fresh.After(limit) {
			fresh = limit
		}
		if stale.After(limit) {
			stale = limit
		}
	}
	if resp.StatusCode == http.StatusNotModified && old != nil {
		r := *old
		if h := resp.Header.Get("Cache-Control"); h != "" {
			r.cacheControl = h
		}
		if h := resp.Header.Get("ETag"); h != "" {
			r.etag = h
		}
		r.asked, r.fresh, r.stale = asked, fresh, stale
		return &r, nil
	}
	r := &response{
		status:       resp.StatusCode,
		contentType:  resp.Header.Get("Content-Type"),
		etag:         resp.Header.Get("ETag"),
		cacheControl: resp.Header.Get("Cache-Control"),
		body:         body,
		asked:        asked,
		fresh:        fresh,
		stale:        stale,
	}
	if c.decode != nil {
		v, err := c.decode(r.status, body)
		if err != nil {
			return nil, err
		}
		r.value = v
	}
	return r, nil
}

// maxEntries bounds the keys a cache holds; past it, idle entries whose
// stale window has ended are dropped, then idle entries at random.
const maxEntries = 10_000

func (c *cache) evictLocked() {
	now := c.now()
	for k, e := range c.entries {
		if e.flight == nil && (e.resp == nil || !now.Before(e.resp.stale)) {
			delete(c.entries, k)
		}
	}
	for k, e := range c.entries {
		if len(c.entries) < maxEntries*3/4 {
			break
		}
		if e.flight == nil {
			delete(c.entries, k)
		}
	}
}

// stats returns the number of origin requests made.
func (c *cache) stats() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
