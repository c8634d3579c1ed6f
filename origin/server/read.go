package server

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/shared"
)

// entry is one cached, encoded representation pair of a poll or a snapshot.
// Entries are immutable once published; a refresh publishes a new one.
type entry struct {
	version     uint64
	poll        *shared.Poll // poll entries only
	voters      uint64       // snapshot entries only: voters counted
	err         error        // a cached ENOTFOUND
	json        []byte
	msgpack     []byte
	etagJSON    string
	etagMsgpack string
	fetchedAt   time.Time
}

// call is one in-flight refresh that concurrent readers of a key share.
type call struct {
	done chan struct{}
	val  *entry
	err  error
}

// maxCacheEntries bounds each cache; past it the cache starts afresh, which
// costs one store read per poll, never correctness.
const maxCacheEntries = 10000

// cache maps a poll id to its latest entry, with single-flight refreshes so
// N concurrent readers of a stale key cause one store round trip.
type cache struct {
	mu      sync.Mutex
	entries map[string]*entry
	calls   map[string]*call
}

func (c *cache) init() {
	c.entries = map[string]*entry{}
	c.calls = map[string]*call{}
}

func (c *cache) get(key string) *entry {
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	return e
}

func (c *cache) invalidate(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// do runs fn(old) once for all concurrent callers of key and publishes its
// entry. fn must not call back into c for the same key.
func (c *cache) do(key string, fn func(old *entry) (*entry, error)) (*entry, error) {
	c.mu.Lock()
	if cl, ok := c.calls[key]; ok {
		c.mu.Unlock()
		<-cl.done
		return cl.val, cl.err
	}
	cl := &call{done: make(chan struct{})}
	c.calls[key] = cl
	old := c.entries[key]
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		delete(c.calls, key)
		if cl.err == nil && cl.val != nil {
			if len(c.entries) >= maxCacheEntries {
				clear(c.entries)
			}
			c.entries[key] = cl.val
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	cl.val, cl.err = fn(old)
	return cl.val, cl.err
}

func (s *Server) fresh(e *entry) bool {
	return e != nil && s.now().Sub(e.fetchedAt) < s.freshness
}

// etag returns a strong ETag for a representation: a hash of the content's
// identity plus a suffix naming the representation.
func etag(sum uint64, kind byte) string {
	b := make([]byte, 0, 24)
	b = append(b, '"')
	b = strconv.AppendUint(b, sum, 36)
	b = append(b, '-', kind, '"')
	return string(b)
}

// pollEntry returns the cached poll id, refreshing it from the store when
// stale. Unknown polls are cached too, so a flood of bad ids costs one store
// read per freshness period.
func (s *Server) pollEntry(id string) (*entry, error) {
	if e := s.polls.get(id); s.fresh(e) {
		s.metrics.cacheLookup("poll", "hit")
		return e, e.err
	}
	e, err := s.polls.do(id, func(old *entry) (*entry, error) {
		c, cancel := s.readCtx()
		defer cancel()
		p, err := s.store.Poll(c, id)
		now := s.now()
		if err != nil {
			if shared.ErrorCode(err) == shared.ENOTFOUND {
				s.metrics.cacheLookup("poll", "miss")
				return &entry{err: err, fetchedAt: now}, nil
			}
			return nil, s.storeErr("poll", err)
		}
		mp, err := shared.MarshalPoll(p)
		if err != nil {
			return nil, shared.Wrap(shared.EINTERNAL, err, "encode poll")
		}
		if old != nil && old.err == nil && bytes.Equal(old.msgpack, mp) {
			s.metrics.cacheLookup("poll", "revalidated")
			n := *old
			n.fetchedAt = now
			return &n, nil
		}
		s.metrics.cacheLookup("poll", "miss")
		js, err := json.Marshal(p)
		if err != nil {
			return nil, shared.Wrap(shared.EINTERNAL, err, "encode poll")
		}
		h := fnv.New64a()
		h.Write(mp)
		sum := h.Sum64()
		return &entry{
			version: p.Version, poll: p, json: js, msgpack: mp,
			etagJSON: etag(sum, 'j'), etagMsgpack: etag(sum, 'm'), fetchedAt: now,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return e, e.err
}

// resultsEntry returns the cached snapshot of poll id. Within the freshness
// period it does not touch the store; after it, one SnapshotVersion call
// decides whether the snapshot has to be recomputed, and only one reader
// recomputes it.
func (s *Server) resultsEntry(id string) (*entry, error) {
	if e := s.results.get(id); s.fresh(e) {
		s.metrics.cacheLookup("results", "hit")
		return e, nil
	}
	return s.results.do(id, func(old *entry) (*entry, error) {
		c, cancel := s.readCtx()
		defer cancel()
		if old != nil {
			v, err := s.store.SnapshotVersion(c, id)
			if err != nil {
				return nil, s.storeErr("snapshot_version", err)
			}
			if v == old.version {
				s.metrics.cacheLookup("results", "revalidated")
				n := *old
				n.fetchedAt = s.now()
				return &n, nil
			}
		}
		s.metrics.cacheLookup("results", "miss")
		snap, err := s.store.Snapshot(c, id)
		if err != nil {
			return nil, s.storeErr("snapshot", err)
		}
		return encodeSnapshot(snap, s.now())
	})
}

func encodeSnapshot(snap *shared.Snapshot, now time.Time) (*entry, error) {
	mp, err := shared.MarshalSnapshot(snap)
	if err != nil {
		return nil, shared.Wrap(shared.EINTERNAL, err, "encode snapshot")
	}
	js := appendSnapshotJSON(make([]byte, 0, 128+len(snap.Counts)*8), snap)
	// The ETag names the counts, not the time they were read, so every
	// origin process gives the same snapshot the same tag.
	h := fnv.New64a()
	var b []byte
	b = append(b, snap.Poll...)
	b = append(b, 0)
	b = strconv.AppendUint(b, snap.Version, 10)
	for _, n := range snap.Counts {
		b = append(b, ',')
		b = strconv.AppendUint(b, n, 10)
	}
	b = append(b, ';')
	b = strconv.AppendUint(b, snap.Total, 10)
	b = append(b, ';')
	b = strconv.AppendUint(b, snap.Voters, 10)
	b = appendKindJSON(b, snap) // the version covers them too; cheap insurance
	h.Write(b)
	sum := h.Sum64()
	return &entry{
		version: snap.Version, voters: snap.Voters, json: js, msgpack: mp,
		etagJSON: etag(sum, 'j'), etagMsgpack: etag(sum, 'm'), fetchedAt: now,
	}, nil
}

// appendKindJSON writes the fields of the scale, ranked and words kinds'
// results (docs/EDGE-API.md, "Poll kinds"), after the common ones.
func appendKindJSON(b []byte, snap *shared.Snapshot) []byte {
	switch snap.Kind {
	case shared.KindScale:
		b = append(b, `,"mean":`...)
		b = shared.AppendScaleMean(b, snap)
		b = append(b, `,"median":`...)
		b = shared.AppendScaleMedian(b, snap)
	case shared.KindRanked:
		b = append(b, `,"borda":[`...)
		for i, n := range snap.Borda {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, n, 10)
		}
		b = append(b, ']')
	case shared.KindWords:
		b = append(b, `,"words":[`...)
		for i, w := range snap.Words {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"word":`...)
			b = shared.AppendJSONString(b, w.Word)
			b = append(b, `,"count":`...)
			b = strconv.AppendUint(b, w.Count, 10)
			b = append(b, '}')
		}
		b = append(b, `],"distinct":`...)
		b = strconv.AppendUint(b, snap.Distinct, 10)
		b = append(b, `,"distinct_exact":`...)
		b = strconv.AppendBool(b, snap.DistinctExact)
		b = append(b, `,"count_error":`...)
		b = strconv.AppendUint(b, snap.CountError, 10)
	}
	return b
}

// appendSnapshotJSON writes the public JSON form of a snapshot.
func appendSnapshotJSON(b []byte, snap *shared.Snapshot) []byte {
	b = append(b, `{"poll":`...)
	b = shared.AppendJSONString(b, snap.Poll)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, snap.Version, 10)
	if snap.Kind != "" {
		b = append(b, `,"kind":`...)
		b = shared.AppendJSONString(b, string(snap.Kind))
		if snap.Kind == shared.KindScale {
			b = append(b, `,"min":`...)
			b = strconv.AppendInt(b, snap.ScaleMin, 10)
			b = append(b, `,"max":`...)
			b = strconv.AppendInt(b, snap.ScaleMin+int64(len(snap.Counts))-1, 10)
		}
	}
	b = append(b, `,"counts":[`...)
	for i, n := range snap.Counts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, n, 10)
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendUint(b, snap.Total, 10)
	b = append(b, `,"voters":`...)
	b = strconv.AppendUint(b, snap.Voters, 10)
	b = appendKindJSON(b, snap)
	b = append(b, `,"generated_at":"`...)
	b = time.UnixMilli(snap.GeneratedAt).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// getPoll serves GET /v1/polls/{id}.
func (s *Server) getPoll(ctx *fasthttp.RequestCtx, id string) {
	if !shared.ValidPollID(id) {
		s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "poll not found"))
		return
	}
	e, err := s.pollEntry(id)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeCached(ctx, e, cacheControlPoll)
}

// getResults serves GET /v1/polls/{id}/results.
func (s *Server) getResults(ctx *fasthttp.RequestCtx, id string) {
	if !shared.ValidPollID(id) {
		s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "poll not found"))
		return
	}
	pe, err := s.pollEntry(id)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if !pe.poll.ResultsVisible(s.now()) {
		s.fail(ctx, shared.Errorf(shared.EFORBIDDEN, "results of poll %q are published when it closes", id))
		return
	}
	e, err := s.resultsEntry(id)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeCached(ctx, e, cacheControlResults)
}

// writeCached writes the representation the client accepts, or 304 when its
// If-None-Match names it.
func (s *Server) writeCached(ctx *fasthttp.RequestCtx, e *entry, cacheControl string) {
	body, tag, ct := e.json, e.etagJSON, "application/json"
	if wantsMsgpack(ctx.Request.Header.Peek(fasthttp.HeaderAccept)) {
		body, tag, ct = e.msgpack, e.etagMsgpack, shared.ContentTypeMsgpack
	}
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderETag, tag)
	h.Set(fasthttp.HeaderCacheControl, cacheControl)
	h.Set(fasthttp.HeaderVary, "Accept")
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatches(inm, tag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(ct)
	ctx.Response.SetBodyRaw(body)
}

// wantsMsgpack reports whether an Accept header asks for MessagePack.
func wantsMsgpack(accept []byte) bool {
	return len(accept) > 0 && (bytes.Contains(accept, []byte("application/msgpack")) || bytes.Contains(accept, []byte("application/x-msgpack")))
}

// etagMatches applies If-None-Match's weak comparison: "*" or any listed
// tag equal to tag, ignoring W/ prefixes.
func etagMatches(inm []byte, tag string) bool {
	for len(inm) > 0 {
		var part []byte
		if i := bytes.IndexByte(inm, ','); i >= 0 {
			part, inm = inm[:i], inm[i+1:]
		} else {
			part, inm = inm, nil
		}
		part = bytes.TrimSpace(part)
		if len(part) == 1 && part[0] == '*' {
			return true
		}
		part = bytes.TrimPrefix(part, []byte("W/"))
		if string(part) == tag {
			return true
		}
	}
	return false
}
