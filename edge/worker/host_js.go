//go:build js && wasm

package worker

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/cachecontrol"
	"github.com/edgepoll/edgepoll/shared/identitystats"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// memoKeys bounds the responses one isolate remembers.
const memoKeys = 4096

// maxOriginBody bounds an origin response the edge keeps.
const maxOriginBody = 4 << 20

// errTTL is how long an isolate remembers an origin 4xx (unknown poll,
// results not visible yet) so a storm of bad ids costs the origin little.
const errTTL = time.Second

// headerStored records when the edge stored a response in the Cache API, so
// a copy read back is fresh only for what remains of its max-age.
const headerStored = "X-Edgepoll-Stored"

// Options configure a Host.
type Options struct {
	// OriginURL is the origin's base URL (ORIGIN_URL), without a trailing slash.
	OriginURL string
	// IngestKey signs the batches the queue consumer posts (INGEST_KEY).
	IngestKey sign.Key
	// Submit hands a vote to the group committer (see edge/commit).
	Submit func(ctx context.Context, v *shared.Vote) error
	// Logger receives Log events; nil means slog.Default (console).
	Logger *slog.Logger
	// MaxRetries is the queue consumer's max_retries (QUEUE_MAX_RETRIES,
	// default DefaultMaxRetries; keep it equal to wrangler.toml's): the
	// consumer logs a batch's last attempt before the dead-letter queue.
	MaxRetries int
}

// DefaultMaxRetries is wrangler.toml's max_retries for the votes queue.
const DefaultMaxRetries = 10

// OptionsFromEnv reads ORIGIN_URL and INGEST_KEY through get. Errors are EINVALID.
func OptionsFromEnv(get func(string) string) (Options, error) {
	var o Options
	o.OriginURL = strings.TrimSuffix(strings.TrimSpace(get(VarOriginURL)), "/")
	if !strings.HasPrefix(o.OriginURL, "http://") && !strings.HasPrefix(o.OriginURL, "https://") {
		return o, shared.Errorf(shared.EINVALID, "%s must be an http(s) URL, got %q", VarOriginURL, o.OriginURL)
	}
	keys, err := sign.ParseKeys(get(VarIngestKey))
	if err != nil {
		return o, shared.Errorf(shared.EINVALID, "%s: %s", VarIngestKey, shared.ErrorMessage(err))
	}
	if len(keys) != 1 {
		return o, shared.Errorf(shared.EINVALID, "%s must hold exactly one kid=secret", VarIngestKey)
	}
	o.IngestKey = keys[0]
	o.MaxRetries = DefaultMaxRetries
	if v := strings.TrimSpace(get(VarQueueMaxRetries)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return o, shared.Errorf(shared.EINVALID, "%s must be 0-100 (the queue consumer's max_retries), got %q", VarQueueMaxRetries, v)
		}
		o.MaxRetries = n
	}
	return o, nil
}

// Getenv reads a string var or secret from the isolate's env (the env the
// instance started with: vars and secrets are the same for every event).
func Getenv(name string) string {
	v := js.Global().Get("context").Get("env").Get(name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// Host implements edge.Host with Cloudflare Worker bindings. It is safe for
// concurrent use by the requests of one isolate.
type Host struct {
	opt     Options
	memo    *memo
	voted   *memo // vote checks, apart so a flood of them cannot evict configs
	log     *slog.Logger
	limiter bool // the Worker has a Rate Limiting binding

	ids     identitystats.Counts // tokens issued and refused since the last report
	idsMu   sync.Mutex
	idsLast time.Time // when the last report started
}

// IdentityFlush is how often an isolate reports its identity figures.
const IdentityFlush = 10 * time.Second

var (
	_ edge.Host            = (*Host)(nil)
	_ edge.IdentityCounter = (*Host)(nil)
	_ edge.IdentityFlusher = (*Host)(nil)
)

// NewHost returns a Host for opt.
func NewHost(opt Options) *Host {
	h := &Host{
		opt:     opt,
		memo:    newMemo(memoKeys, time.Now),
		voted:   newMemo(memoKeys, time.Now),
		log:     opt.Logger,
		limiter: js.Global().Get("context").Get("env").Get(BindingRateLimiter).Type() == js.TypeObject,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Now returns the isolate's clock.
func (h *Host) Now() time.Time { return time.Now() }

// Log writes a structured event to the console.
func (h *Host) Log(level, msg string, attrs ...any) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	ctx := context.Background()
	if !h.log.Enabled(ctx, l) {
		return
	}
	h.log.Log(ctx, l, msg, attrs...)
}

// Poll returns a poll's config from the isolate memo, the location's Cache
// API or the origin, in that order; never one asked of the origin more than
// shared.MaxConfigAge ago (see load).
func (h *Host) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	it, served, err := h.memo.get(ctx, "p/"+id, func(ctx context.Context, prev *item) (loaded, error) {
		return h.load(ctx, "/v1/polls/"+id, shared.ContentTypeMsgpack, prev, true)
	})
	if err != nil {
		return nil, err
	}
	requestFrom(ctx).setServed(served)
	switch {
	case it.poll != nil:
		return it.poll, nil
	case it.res.Status == http.StatusNotFound:
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	default:
		return nil, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d for poll %q", it.res.Status, id)
	}
}

// Results returns the results response for a poll, as JSON or MessagePack.
func (h *Host) Results(ctx context.Context, id string, msgpack bool) (*edge.Cached, error) {
	accept, key := "application/json", "r/"+id+"/json"
	if msgpack {
		accept, key = shared.ContentTypeMsgpack, "r/"+id+"/msgpack"
	}
	it, served, err := h.memo.get(ctx, key, func(ctx context.Context, prev *item) (loaded, error) {
		return h.load(ctx, "/v1/polls/"+id+"/results", accept, prev, false)
	})
	if err != nil {
		return nil, err
	}
	requestFrom(ctx).setServed(served)
	return it.res, nil
}

// SetSubmit installs the vote hand-off (the group committer, which in turn
// sends through SendBatch). Call it before serving.
func (h *Host) SetSubmit(submit func(ctx context.Context, v *shared.Vote) error) {
	h.opt.Submit = submit
}

// Submit hands v to the group committer.
func (h *Host) Submit(ctx context.Context, v *shared.Vote) error {
	if h.opt.Submit == nil {
		return shared.Errorf(shared.EUNAVAILABLE, "vote hand-off not configured")
	}
	return h.opt.Submit(ctx, v)
}

// SendBatch sends one MessagePack batch as one message on the VOTES queue.
// It is the group committer's sender: the request that flushes a group calls
// it with its own context and awaits the send, so the queue I/O belongs to a
// request that is still running.
func (h *Host) SendBatch(ctx context.Context, batch []byte) error {
	_, err := h.do(ctx, ioSend, batch)
	if head, ok := shared.PeekBatch(batch); ok {
		if err != nil {
			h.Log("warn", "batch not queued", "batch", head.ID.String(), "votes", head.Votes, "err", err.Error())
		} else {
			h.Log("info", "batch queued", "batch", head.ID.String(), "votes", head.Votes)
		}
	}
	return err
}

// Allow consults the Rate Limiting binding when the Worker has one. A
// binding that fails allows the request: the isolate's own limits still hold.
func (h *Host) Allow(ctx context.Context, key string) bool {
	if !h.limiter {
		return true
	}
	b, err := h.do(ctx, ioLimit, []byte(key))
	if err == nil {
		var r *ioResponse
		if r, err = decodeResponse(b); err == nil {
			return r.Status != http.StatusTooManyRequests
		}
	}
	h.Log("warn", "rate limiter binding failed; allowing", "err", err.Error())
	return true
}

// do performs one I/O operation for the event that owns ctx: through the
// one-instance glue when it serves, else directly (one instance per request).
func (h *Host) do(ctx context.Context, kind ioKind, payload []byte) ([]byte, error) {
	if glue.do != nil {
		return glue.do(ctx, kind, payload)
	}
	return directIO(ctx, kind, payload)
}

// fetch makes one outbound request and returns the whole response.
func (h *Host) fetch(ctx context.Context, method, url string, header http.Header, body []byte) (*ioResponse, error) {
	b, err := h.do(ctx, ioFetch, appendIORequest(nil, method, url, header, body))
	if err != nil {
		return nil, err
	}
	return decodeResponse(b)
}

// load refreshes one origin resource: from the location's Cache API when it
// holds a fresh copy, else from the origin (revalidating prev with
// If-None-Match), storing a cacheable answer back into the Cache API.
//
// A poll config's age counts from the moment its fetch started (the Cache
// API copy records that moment too), and its fresh and stale windows are
// capped at shared.MaxConfigAge from it whatever the origin's
// Cache-Control says: an announced close relies on that bound.
func (h *Host) load(ctx context.Context, path, accept string, prev *item, isPoll bool) (loaded, error) {
	cacheKey := h.opt.OriginURL + path + "?accept=" + accept
	now := time.Now()
	if c, stored, ok := h.cacheMatch(ctx, cacheKey); ok {
		cc := cachecontrol.Parse(c.CacheControl)
		if fresh := stored.Add(cc.MaxAge); now.Before(fresh) {
			it, err := newItem(c, isPoll)
			if err == nil {
				l := loaded{it: it, served: servedHit, fresh: fresh, stale: fresh.Add(cc.SWR)}
				if isPoll {
					l.capAge(stored)
				}
				return l, nil
			}
		}
		if prev == nil || prev.res.ETag == "" {
			if it, err := newItem(c, isPoll); err == nil {
				prev = it
			}
		}
	}
	hd := http.Header{"Accept": {accept}}
	if prev != nil && prev.res.ETag != "" && prev.res.Status == http.StatusOK {
		hd.Set("If-None-Match", prev.res.ETag)
	}
	start := time.Now()
	resp, err := h.fetch(ctx, http.MethodGet, h.opt.OriginURL+path, hd, nil)
	if err != nil {
		h.Log("warn", "origin fetch failed", "path", path, "err", err.Error())
		return loaded{}, shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	if len(resp.Body) > maxOriginBody {
		return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin sent %d bytes for %s", len(resp.Body), path)
	}
	now = time.Now()
	if isPoll {
		now = start // a config is as old as the question that fetched it
	}
	cacheControl := joinHeader(resp.Header, "Cache-Control")
	cc := cachecontrol.Parse(cacheControl)
	var c *edge.Cached
	switch {
	case resp.Status == http.StatusNotModified && prev != nil:
		c = &edge.Cached{Status: http.StatusOK, ContentType: prev.res.ContentType, ETag: prev.res.ETag,
			CacheControl: prev.res.CacheControl, Body: prev.res.Body}
		if cacheControl != "" {
			c.CacheControl = cacheControl
		}
		if v := resp.Header.Get("ETag"); v != "" {
			c.ETag = v
		}
	case resp.Status == http.StatusOK:
		c = &edge.Cached{Status: http.StatusOK, ContentType: resp.Header.Get("Content-Type"),
			ETag: resp.Header.Get("ETag"), CacheControl: cacheControl, Body: resp.Body}
	case resp.Status >= 400 && resp.Status < 500 && resp.Status != http.StatusTooManyRequests:
		// Pass the origin's verdict through; remember it briefly, never in the Cache API.
		c = &edge.Cached{Status: resp.Status, ContentType: resp.Header.Get("Content-Type"),
			CacheControl: "no-store", Body: resp.Body}
		return loaded{it: &item{res: c}, served: servedMiss, fresh: now.Add(errTTL), stale: now.Add(errTTL)}, nil
	default:
		return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d for %s", resp.Status, path)
	}
	it, err := newItem(c, isPoll)
	if err != nil {
		return loaded{}, err
	}
	if cc.MaxAge > 0 {
		h.cachePut(ctx, cacheKey, c, now)
	}
	fresh := now.Add(cc.MaxAge)
	l := loaded{it: it, served: servedMiss, fresh: fresh, stale: fresh.Add(cc.SWR)}
	if isPoll {
		l.capAge(now)
	}
	return l, nil
}

// TokenIssued implements edge.IdentityCounter.
func (h *Host) TokenIssued(poll, addr string) { h.ids.Issued(poll, addr) }

// TokenRefused implements edge.IdentityCounter.
func (h *Host) TokenRefused(poll, reason string) { h.ids.Refused(poll, reason) }

// FlushIdentity implements edge.IdentityFlusher: at most every
// IdentityFlush, the token request that calls it posts what this isolate
// counted to the origin, signed with the ingest key, from its own context
// (a Worker's I/O belongs to a request). A failed report is logged and
// dropped: the figures are for watching an attack, not for counting votes.
func (h *Host) FlushIdentity(ctx context.Context) {
	now := time.Now()
	h.idsMu.Lock()
	if now.Sub(h.idsLast) < IdentityFlush {
		h.idsMu.Unlock()
		return
	}
	h.idsLast = now
	h.idsMu.Unlock()
	for poll, d := range h.ids.Take() {
		body := d.AppendJSON(nil)
		path := shared.IdentityStatsPath(poll)
		sig := sign.Sign(h.opt.IngestKey, now, sign.RequestWithBody(http.MethodPost, path, body))
		hd := http.Header{
			"Content-Type": {"application/json"},
		}
		sig.SetHeaders(hd.Set)
		resp, err := h.fetch(ctx, http.MethodPost, h.opt.OriginURL+path, hd, body)
		switch {
		case err != nil:
			h.Log("warn", "identity figures not reported", "poll", poll, "tokens", d.Tokens, "err", err.Error())
		case resp.Status != http.StatusNoContent:
			h.Log("warn", "identity figures refused", "poll", poll, "tokens", d.Tokens, "status", resp.Status)
		}
	}
}

// Voted asks the origin whether voter is counted in poll (a signed GET of
// /v1/polls/{id}/voters/{voter}); each answer is kept in the isolate for
// edge.VotedCacheTTL, never in the Cache API.
func (h *Host) Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error) {
	key := poll + "/" + voter.String()
	it, _, err := h.voted.get(ctx, key, func(ctx context.Context, _ *item) (loaded, error) {
		path := shared.VoteCheckPath(poll, voter)
		start := time.Now()
		sig := sign.Sign(h.opt.IngestKey, start, sign.RequestBody(http.MethodGet, path))
		hd := http.Header{}
		sig.SetHeaders(hd.Set)
		resp, err := h.fetch(ctx, http.MethodGet, h.opt.OriginURL+path, hd, nil)
		if err != nil {
			h.Log("warn", "vote check failed", "poll", poll, "err", err.Error())
			return loaded{}, shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
		}
		if resp.Status != http.StatusOK && resp.Status != http.StatusNotFound {
			h.Log("warn", "vote check refused", "poll", poll, "status", resp.Status)
			return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d to a vote check", resp.Status)
		}
		until := start.Add(edge.VotedCacheTTL)
		return loaded{it: &item{res: &edge.Cached{Status: resp.Status, Body: resp.Body}}, served: servedMiss, fresh: until, stale: until}, nil
	})
	if err != nil {
		return false, err
	}
	if it.res.Status == http.StatusNotFound {
		return false, shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	return shared.ParseVoteCheck(it.res.Body)
}

func newItem(c *edge.Cached, isPoll bool) (*item, error) {
	it := &item{res: c}
	if isPoll && c.Status == http.StatusOK {
		var p shared.Poll
		if err := shared.UnmarshalPoll(c.Body, &p); err != nil {
			return nil, shared.Wrap(shared.EUNAVAILABLE, err, "origin sent a bad poll config")
		}
		it.poll = &p
	}
	return it, nil
}

// cacheMatch looks key up in the location's Cache API.
func (h *Host) cacheMatch(ctx context.Context, key string) (*edge.Cached, time.Time, bool) {
	b, err := h.do(ctx, ioCacheMatch, []byte(key))
	if err != nil {
		h.Log("warn", "cache read failed", "key", key, "err", err.Error())
		return nil, time.Time{}, false
	}
	r, err := decodeResponse(b)
	if err != nil || r.Status != http.StatusOK {
		return nil, time.Time{}, false
	}
	ms, err := strconv.ParseInt(r.Header.Get(headerStored), 10, 64)
	if err != nil {
		return nil, time.Time{}, false
	}
	return &edge.Cached{Status: http.StatusOK, ContentType: r.Header.Get("Content-Type"), ETag: r.Header.Get("ETag"),
		CacheControl: joinHeader(r.Header, "Cache-Control"), Body: r.Body}, time.UnixMilli(ms), true
}

// cachePut stores c under key in the location's Cache API. The put runs
// under the request's waitUntil, so the request does not wait for it.
func (h *Host) cachePut(ctx context.Context, key string, c *edge.Cached, now time.Time) {
	hd := http.Header{
		"Content-Type":  {c.ContentType},
		"Cache-Control": {c.CacheControl},
		headerStored:    {strconv.FormatInt(now.UnixMilli(), 10)},
	}
	if c.ETag != "" {
		hd.Set("ETag", c.ETag)
	}
	if _, err := h.do(ctx, ioCachePut, appendIORequest(nil, http.MethodPut, key, hd, c.Body)); err != nil {
		h.Log("warn", "cache write failed", "key", key, "err", err.Error())
	}
}

// joinHeader returns all of h's values for name joined with ", ".
func joinHeader(h http.Header, name string) string {
	vs := h.Values(name)
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}
