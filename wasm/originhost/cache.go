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
	value        any // decoded form, set by the cache's decode hook
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
type cache struct {
	client *http.Client
	now    func() time.Time
	decode func(status int, body []byte) (any, error) // may be nil

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
// (or when the origin fails), otherwise the origin's after one fetch shared
// by every concurrent caller.
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
	if e.resp != nil && e.err == nil {
		return e.resp, nil
	}
	if e.resp != nil {
		return e.resp, nil // stale-if-error: better an old answer than none
	}
	return nil, e.err
}

// fetch revalidates or loads url from the origin, detached from any one
// caller's context so a caller giving up does not fail the others.
func (c *cache) fetch(url, accept string, e *entry, old *response) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.load(ctx, url, accept, old)
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

func (c *cache) load(ctx context.Context, url, accept string, old *response) (*response, error) {
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
	now := c.now()
	cc := cachecontrol.Parse(resp.Header.Get("Cache-Control"))
	if !cc.Set {
		cc.MaxAge = negativeTTL
	}
	if resp.StatusCode == http.StatusNotModified && old != nil {
		r := *old
		if h := resp.Header.Get("Cache-Control"); h != "" {
			r.cacheControl = h
		}
		if h := resp.Header.Get("ETag"); h != "" {
			r.etag = h
		}
		r.fresh, r.stale = now.Add(cc.MaxAge), now.Add(cc.MaxAge+cc.SWR)
		return &r, nil
	}
	r := &response{
		status:       resp.StatusCode,
		contentType:  resp.Header.Get("Content-Type"),
		etag:         resp.Header.Get("ETag"),
		cacheControl: resp.Header.Get("Cache-Control"),
		body:         body,
		fresh:        now.Add(cc.MaxAge),
		stale:        now.Add(cc.MaxAge + cc.SWR),
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
