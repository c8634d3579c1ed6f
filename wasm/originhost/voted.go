package originhost

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// maxVotedEntries bounds the (poll, voter) answers the vote-check cache
// holds; past it, idle entries whose answer has expired are dropped, then
// idle entries at random.
const maxVotedEntries = 65_536

// maxVotedBody bounds the origin's vote-check answer.
const maxVotedBody = 4 << 10

// Voted implements edge.Host: whether the origin counts voter's vote in
// poll, asked with a GET of {ORIGIN_URL}/v1/polls/{poll}/voters/{voter hex}
// signed with the ingest key. Each answer is kept for edge.VotedCacheTTL
// (counted or not, and an unknown poll's ENOTFOUND), and concurrent checks
// of the same voter share one origin request. Any other failure is
// EUNAVAILABLE and is not kept.
func (h *Host) Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error) {
	return h.voted.get(ctx, poll, voter)
}

// votedCache is the Voted cache: one entry per (poll, voter).
type votedCache struct {
	client *http.Client
	base   *url.URL // the origin's base URL; its path prefixes the signed path
	key    sign.Key
	now    func() time.Time
	ttl    time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	entries map[votedKey]*votedEntry
	fetches uint64 // origin requests made
}

type votedKey struct {
	poll  string
	voter shared.VoterID
}

// votedEntry is one (poll, voter): its last answer and the check in flight.
type votedEntry struct {
	counted bool
	err     error         // the last check's error (a kept ENOTFOUND, or a failure for waiters)
	expires time.Time     // the answer is reused before it; zero: no answer kept
	flight  chan struct{} // closed when the check in flight ends; nil if none
	waiters int           // callers waiting for flight
}

func newVotedCache(cfg Config, base string) *votedCache {
	u, _ := url.Parse(base) // New has validated it
	return &votedCache{
		client:  cfg.Client,
		base:    u,
		key:     cfg.IngestKey,
		now:     cfg.Now,
		ttl:     edge.VotedCacheTTL,
		log:     cfg.Logger,
		entries: make(map[votedKey]*votedEntry),
	}
}

func (c *votedCache) get(ctx context.Context, poll string, voter shared.VoterID) (bool, error) {
	if !shared.ValidPollID(poll) {
		return false, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	if voter.IsZero() {
		return false, shared.Errorf(shared.EINVALID, "no voter id")
	}
	k := votedKey{poll, voter}
	c.mu.Lock()
	e := c.entries[k]
	if e != nil && c.now().Before(e.expires) {
		counted, err := e.counted, e.err
		c.mu.Unlock()
		return counted, err
	}
	if e == nil {
		if len(c.entries) >= maxVotedEntries {
			c.evictLocked()
		}
		e = &votedEntry{}
		c.entries[k] = e
	}
	if e.flight == nil {
		e.flight = make(chan struct{})
		go c.fetch(k, e)
	}
	flight := e.flight
	e.waiters++
	c.mu.Unlock()
	select {
	case <-flight:
	case <-ctx.Done():
		c.mu.Lock()
		e.waiters--
		c.mu.Unlock()
		return false, shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "origin did not answer the vote check in time")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.waiters--
	return e.counted, e.err
}

// fetch asks the origin, detached from any one caller's context so a caller
// giving up does not fail the others, and keeps the answer for the TTL
// counted from when it asked.
func (c *votedCache) fetch(k votedKey, e *votedEntry) {
	asked := c.now()
	counted, err := c.load(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetches++
	e.counted, e.err, e.expires = counted, err, time.Time{}
	if err == nil || shared.ErrorCode(err) == shared.ENOTFOUND {
		e.expires = asked.Add(c.ttl)
	}
	close(e.flight)
	e.flight = nil
}

func (c *votedCache) load(k votedKey) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := *c.base
	u.Path += shared.VoteCheckPath(k.poll, k.voter)
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, shared.Wrap(shared.EINTERNAL, err, "bad origin URL")
	}
	sig := sign.Sign(c.key, c.now(), sign.RequestBody(http.MethodGet, req.URL.Path))
	req.Header.Set("Accept", "application/json")
	sig.SetHeaders(req.Header.Set)
	resp, err := c.client.Do(req)
	if err != nil {
		return false, shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVotedBody+1))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		c.log.Warn("origin refused the signed vote check: does INGEST_KEY match the origin's?", "status", resp.StatusCode, "body", string(body[:min(len(body), 200)]))
		return false, shared.Errorf(shared.EUNAVAILABLE, "origin refused the vote check")
	case resp.StatusCode != http.StatusOK:
		return false, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d for the vote check", resp.StatusCode)
	case err != nil:
		return false, shared.Wrap(shared.EUNAVAILABLE, err, "origin's vote-check answer cut short")
	case len(body) > maxVotedBody:
		return false, shared.Errorf(shared.EUNAVAILABLE, "origin's vote-check answer is too large")
	}
	return shared.ParseVoteCheck(body)
}

func (c *votedCache) evictLocked() {
	now := c.now()
	for k, e := range c.entries {
		if e.flight == nil && !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k, e := range c.entries {
		if len(c.entries) < maxVotedEntries*3/4 {
			break
		}
		if e.flight == nil {
			delete(c.entries, k)
		}
	}
}

// waiting returns the callers waiting for a check of (poll, voter) in flight.
func (c *votedCache) waiting(poll string, voter shared.VoterID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[votedKey{poll, voter}]; e != nil {
		return e.waiters
	}
	return 0
}

// stats returns the number of origin requests made.
func (c *votedCache) stats() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
