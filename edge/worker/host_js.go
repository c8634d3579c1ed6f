//go:build js && wasm

package worker

import (
	"context"
	"fmt"
	"io"
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
	"github.com/edgepoll/edgepoll/shared/sign"
	"github.com/syumai/workers/cloudflare/fetch"
	"github.com/syumai/workers/cloudflare/queues"
)

// memoKeys bounds the responses one isolate remembers.
const memoKeys = 4096

// sendTimeout bounds a queue send.
const sendTimeout = 10 * time.Second

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
}

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
	opt    Options
	client *http.Client
	cache  js.Value // caches.default
	memo   *memo
	log    *slog.Logger

	prodOnce sync.Once
	prod     *queues.Producer
	prodErr  error
}

var _ edge.Host = (*Host)(nil)

// NewHost returns a Host for opt.
func NewHost(opt Options) *Host {
	h := &Host{
		opt: opt,
		// The default client calls fetch on syumai's proxied global, which
		// throws "Illegal invocation"; bind it to the real globalThis.
		client: fetch.NewClient(fetch.WithBinding(js.Global().Get("globalThis"))).HTTPClient(fetch.RedirectModeManual),
		cache:  js.Global().Get("caches").Get("default"),
		memo:   newMemo(memoKeys, time.Now),
		log:    opt.Logger,
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
	h.log.Log(context.Background(), l, msg, attrs...)
}

// Poll returns a poll's config from the isolate memo, the location's Cache
// API or the origin, in that order.
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
	if glue.send != nil {
		// The one-instance glue: the request that flushes the group sends
		// from its own JS context and awaits the send there.
		return glue.send(ctx, batch)
	}
	h.prodOnce.Do(func() { h.prod, h.prodErr = queues.NewProducer(BindingVotes) })
	if h.prodErr != nil {
		return shared.Wrap(shared.EUNAVAILABLE, h.prodErr, "queue binding "+BindingVotes)
	}
	done := make(chan error, 1)
	go func() { done <- h.prod.SendBytes(batch) }()
	t := time.NewTimer(sendTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return shared.Wrap(shared.EUNAVAILABLE, err, "queue send")
		}
		return nil
	case <-t.C:
		return shared.Errorf(shared.EUNAVAILABLE, "queue send timed out after %s", sendTimeout)
	case <-ctx.Done():
		return shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "queue send")
	}
}

// Allow consults the Rate Limiting binding when the Worker has one.
func (h *Host) Allow(ctx context.Context, key string) bool {
	rq := requestFrom(ctx)
	if rq == nil || glue.env == nil {
		return true
	}
	rl := glue.env(rq.id).Get(BindingRateLimiter)
	if rl.Type() != js.TypeObject {
		return true
	}
	if err := glue.own(ctx); err != nil {
		return true
	}
	arg := objectClass.New()
	arg.Set("key", key)
	res, err := await(rl.Call("limit", arg))
	if err != nil {
		h.Log("warn", "rate limiter binding failed; allowing", "err", err.Error())
		return true
	}
	return res.Get("success").Truthy()
}

// load refreshes one origin resource: from the location's Cache API when it
// holds a fresh copy, else from the origin (revalidating prev with
// If-None-Match), storing a cacheable answer back into the Cache API.
func (h *Host) load(ctx context.Context, path, accept string, prev *item, isPoll bool) (loaded, error) {
	if glue.own != nil {
		// Start the loads' I/O in the loading request's own context.
		if err := glue.own(ctx); err != nil {
			return loaded{}, err
		}
	}
	cacheKey := h.opt.OriginURL + path + "?accept=" + accept
	now := time.Now()
	if c, stored, ok := h.cacheMatch(cacheKey); ok {
		cc := cachecontrol.Parse(c.CacheControl)
		if fresh := stored.Add(cc.MaxAge); now.Before(fresh) {
			it, err := newItem(c, isPoll)
			if err == nil {
				return loaded{it: it, served: servedHit, fresh: fresh, stale: fresh.Add(cc.SWR)}, nil
			}
		}
		if prev == nil || prev.res.ETag == "" {
			if it, err := newItem(c, isPoll); err == nil {
				prev = it
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.opt.OriginURL+path, nil)
	if err != nil {
		return loaded{}, shared.Wrap(shared.EINTERNAL, err, "origin request")
	}
	req.Header.Set("Accept", accept)
	if prev != nil && prev.res.ETag != "" && prev.res.Status == http.StatusOK {
		req.Header.Set("If-None-Match", prev.res.ETag)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.Log("warn", "origin fetch failed", "path", path, "err", err.Error())
		return loaded{}, shared.Wrap(shared.EUNAVAILABLE, err, "origin unreachable")
	}
	body, err := readBody(resp, 4<<20)
	if err != nil {
		return loaded{}, shared.Wrap(shared.EUNAVAILABLE, err, "reading origin response")
	}
	now = time.Now()
	cc := cachecontrol.Parse(header(resp, "Cache-Control"))
	var c *edge.Cached
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		c = &edge.Cached{Status: http.StatusOK, ContentType: prev.res.ContentType, ETag: prev.res.ETag,
			CacheControl: prev.res.CacheControl, Body: prev.res.Body}
		if v := header(resp, "Cache-Control"); v != "" {
			c.CacheControl = v
		}
		if v := resp.Header.Get("ETag"); v != "" {
			c.ETag = v
		}
	case resp.StatusCode == http.StatusOK:
		c = &edge.Cached{Status: http.StatusOK, ContentType: resp.Header.Get("Content-Type"),
			ETag: resp.Header.Get("ETag"), CacheControl: header(resp, "Cache-Control"), Body: body}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		// Pass the origin's verdict through; remember it briefly, never in the Cache API.
		c = &edge.Cached{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
			CacheControl: "no-store", Body: body}
		return loaded{it: &item{res: c}, served: servedMiss, fresh: now.Add(errTTL), stale: now.Add(errTTL)}, nil
	default:
		return loaded{}, shared.Errorf(shared.EUNAVAILABLE, "origin answered %d for %s", resp.StatusCode, path)
	}
	it, err := newItem(c, isPoll)
	if err != nil {
		return loaded{}, err
	}
	if cc.MaxAge > 0 {
		h.cachePut(ctx, cacheKey, c, now)
	}
	fresh := now.Add(cc.MaxAge)
	return loaded{it: it, served: servedMiss, fresh: fresh, stale: fresh.Add(cc.SWR)}, nil
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
func (h *Host) cacheMatch(key string) (*edge.Cached, time.Time, bool) {
	if h.cache.Type() != js.TypeObject {
		return nil, time.Time{}, false
	}
	res, err := await(h.cache.Call("match", key))
	if err != nil || res.Type() != js.TypeObject {
		return nil, time.Time{}, false
	}
	hd := res.Get("headers")
	get := func(name string) string {
		v := hd.Call("get", name)
		if v.Type() != js.TypeString {
			return ""
		}
		return v.String()
	}
	ms, err := strconv.ParseInt(get(headerStored), 10, 64)
	if err != nil {
		return nil, time.Time{}, false
	}
	buf, err := await(res.Call("arrayBuffer"))
	if err != nil {
		return nil, time.Time{}, false
	}
	body, _ := bytesFrom(buf)
	return &edge.Cached{Status: http.StatusOK, ContentType: get("Content-Type"), ETag: get("ETag"),
		CacheControl: get("Cache-Control"), Body: body}, time.UnixMilli(ms), true
}

// cachePut stores c under key in the location's Cache API. The put is handed
// to the request's waitUntil, so the request does not wait for it.
func (h *Host) cachePut(ctx context.Context, key string, c *edge.Cached, now time.Time) {
	rq := requestFrom(ctx)
	if h.cache.Type() != js.TypeObject || rq == nil || glue.execContext == nil {
		return
	}
	headers := objectClass.New()
	headers.Set("Content-Type", c.ContentType)
	headers.Set("Cache-Control", c.CacheControl)
	if c.ETag != "" {
		headers.Set("ETag", c.ETag)
	}
	headers.Set(headerStored, strconv.FormatInt(now.UnixMilli(), 10))
	init := objectClass.New()
	init.Set("status", http.StatusOK)
	init.Set("headers", headers)
	res := js.Global().Get("Response").New(toUint8Array(c.Body), init)
	p := h.cache.Call("put", key, res).Call("catch", ignore)
	if ectx := glue.execContext(rq.id); ectx.Type() == js.TypeObject && ectx.Get("waitUntil").Type() == js.TypeFunction {
		ectx.Call("waitUntil", p)
	}
}

// readBody reads up to limit bytes of resp's body. syumai's body reader
// panics on a null body (304, 204), so those are never touched.
func readBody(resp *http.Response, limit int64) (body []byte, err error) {
	if resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			body, err = nil, fmt.Errorf("reading response body: %v", p)
		}
	}()
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// header returns all of resp's values for name joined with ", " (syumai's
// header conversion splits a list-valued header into several values).
func header(resp *http.Response, name string) string {
	vs := resp.Header.Values(name)
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}
