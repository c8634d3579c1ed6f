// Command guest is edgepoll's edge handler (package edge) built as a WASI
// reactor module for the wazero harness (wasm/harness):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o edge.wasm ./wasm/guest
//
// The host passes each HTTP request in as MessagePack through ep_handle and
// gets the response back the same way; the platform services edge.Host needs
// (clock, poll config and results lookups, vote hand-off, rate limiting,
// logging) and the edge configuration are host imports. wasm/ABI.md is the
// contract; package wasm/abi holds its constants and encodings.
//
// Each instance serves one request at a time. The location's rate limiters
// and dedupe memory are the host's (imports seen_add, seen_remove, limit),
// shared by every instance the host runs, as are voter tokens and vote
// checks (token_issue, token_verify, voted).
package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/wasm/abi"
)

func main() {}

// state is the instance's: one request at a time, so no locking.
var state struct {
	handler http.Handler
	initErr string
	req     abi.Request
	httpReq http.Request // reused for every request, see buildRequest
	url     url.URL
	header  http.Header
	body    bodyReader
	resp    responseWriter
	out     []byte // the last encoded response, owned by the guest
	scratch []byte // host call output buffer
	vote    []byte // submit argument buffer
	polls   map[string]*cachedPoll
	allocs  map[uint32][]byte // live ep_alloc allocations, by address
}

// cachedPoll remembers the decoding of a poll config's bytes, so an unchanged
// config from the host is not decoded again on every vote.
type cachedPoll struct {
	raw  []byte
	poll *shared.Poll
}

const maxCachedPolls = 1024

// initGuest builds the handler from the host's config. It returns "" or a
// message saying what is wrong with the configuration.
func initGuest() string {
	if state.handler != nil || state.initErr != "" {
		return state.initErr
	}
	state.scratch = make([]byte, 16<<10)
	state.polls = make(map[string]*cachedPoll)
	cfg, err := edge.ConfigFromEnv(configValue)
	if err != nil {
		state.initErr = "edge config: " + shared.ErrorMessage(err)
		return state.initErr
	}
	state.handler = newHandler(cfg, guestHost{})
	return ""
}

// configValue looks key up through the config import ("" when unset).
func configValue(key string) string {
	b, err := call(func(out []byte) uint64 { return hostConfig(key, out) }, true)
	if err != nil {
		return ""
	}
	return string(b)
}

// call runs a host call that writes its result into a buffer: it passes the
// scratch buffer and, when the result did not fit and the call is
// idempotent, retries once with a buffer large enough. The result aliases
// the scratch buffer until the next call.
func call(f func(out []byte) uint64, idempotent bool) ([]byte, error) {
	st, n := abi.UnpackResult(f(state.scratch))
	if st != abi.StatusOK {
		if int(n) > len(state.scratch) {
			n = uint32(len(state.scratch))
		}
		return nil, st.Err(string(state.scratch[:n]))
	}
	if int(n) <= len(state.scratch) {
		return state.scratch[:n], nil
	}
	if !idempotent {
		return nil, shared.Errorf(shared.EINTERNAL, "host call result of %d bytes exceeds buffer", n)
	}
	state.scratch = make([]byte, n)
	st, n = abi.UnpackResult(f(state.scratch))
	if st != abi.StatusOK || int(n) > len(state.scratch) {
		return nil, shared.Errorf(shared.EINTERNAL, "host call result changed size between calls")
	}
	return state.scratch[:n], nil
}

// guestHost is edge.Host over the host imports.
type guestHost struct{}

var (
	_ edge.Host          = guestHost{}
	_ edge.TokenService  = guestHost{}
	_ edge.StateHost     = guestHost{}
	_ edge.LocationState = guestState{}
)

// LocationState implements edge.StateHost: the dedupe memory and rate
// limiters live in the host, shared by every instance of its pool, so a
// repeat vote gets 409 whichever instance serves it.
func (guestHost) LocationState() edge.LocationState { return guestState{} }

// guestState is edge.LocationState over the seen_add, seen_remove and limit
// imports (native calls into the host's one state per location).
type guestState struct{}

func (guestState) SeenAdd(poll string, v shared.VoterID) bool {
	return hostSeenAdd(poll, (*[16]byte)(&v))
}

func (guestState) SeenRemove(poll string, v shared.VoterID) {
	hostSeenRemove(poll, (*[16]byte)(&v))
}

func (guestState) Limit(l edge.Limiter, key uint64, now time.Time) (bool, time.Duration) {
	wait := hostLimit(uint32(l), key, now.UnixNano())
	if wait == 0 {
		return true, 0
	}
	return false, time.Duration(min(wait, math.MaxInt64))
}

// Voted implements edge.Host with the voted import.
func (guestHost) Voted(_ context.Context, poll string, v shared.VoterID) (bool, error) {
	b, err := call(func(out []byte) uint64 { return hostVoted(poll, (*[16]byte)(&v), out) }, true)
	if err != nil {
		return false, err
	}
	if len(b) != 1 || b[0] > 1 {
		return false, shared.Errorf(shared.EINTERNAL, "voted returned %d bytes, want one 0 or 1", len(b))
	}
	return b[0] == 1, nil
}

// RedeemInvite implements edge.InviteHost with the invite_redeem import.
func (guestHost) RedeemInvite(_ context.Context, poll string, code invite.Code) error {
	_, err := call(func(out []byte) uint64 { return hostInviteRedeem(poll, string(code), out) }, false)
	return err
}

// TokenIssued implements edge.IdentityCounter with the count import.
func (guestHost) TokenIssued(poll, addr string) { hostCount(abi.CountTokenIssued, poll, addr) }

// TokenRefused implements edge.IdentityCounter with the count import.
func (guestHost) TokenRefused(poll, reason string) { hostCount(abi.CountTokenRefused, poll, reason) }

// IssueToken implements edge.TokenService with the token_issue import: the
// HMAC runs natively in the host, 20–80× faster than compiled to wasm.
func (guestHost) IssueToken(poll string, v shared.VoterID) (string, error) {
	b, err := call(func(out []byte) uint64 { return hostTokenIssue(poll, (*[16]byte)(&v), out) }, true)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// VerifyToken implements edge.TokenService with the token_verify import.
func (guestHost) VerifyToken(poll, tok string) (shared.VoterID, error) {
	var v shared.VoterID
	b, err := call(func(out []byte) uint64 { return hostTokenVerify(poll, tok, out) }, true)
	if err != nil {
		return v, err
	}
	if len(b) != len(v) {
		return v, shared.Errorf(shared.EINTERNAL, "token_verify returned %d bytes, want %d", len(b), len(v))
	}
	copy(v[:], b)
	return v, nil
}

func (guestHost) Now() time.Time { return time.Unix(0, hostNow()) }

func (guestHost) Poll(_ context.Context, id string) (*shared.Poll, error) {
	b, err := call(func(out []byte) uint64 { return hostPoll(id, out) }, true)
	if err != nil {
		return nil, err
	}
	if c := state.polls[id]; c != nil && bytes.Equal(c.raw, b) {
		return c.poll, nil
	}
	p := new(shared.Poll)
	if err := shared.UnmarshalPoll(b, p); err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "bad poll config from host")
	}
	if len(state.polls) >= maxCachedPolls {
		clear(state.polls)
	}
	state.polls[id] = &cachedPoll{raw: append([]byte(nil), b...), poll: p}
	return p, nil
}

func (guestHost) Results(_ context.Context, id string, msgpack bool) (*edge.Cached, error) {
	b, err := call(func(out []byte) uint64 { return hostResults(id, msgpack, out) }, true)
	if err != nil {
		return nil, err
	}
	var c abi.Cached
	if err := abi.DecodeCached(b, &c); err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, "bad results from host")
	}
	return &edge.Cached{Status: c.Status, ContentType: c.ContentType, ETag: c.ETag, CacheControl: c.CacheControl, Body: c.Body}, nil
}

func (guestHost) Submit(_ context.Context, v *shared.Vote) error {
	state.vote = abi.AppendVote(state.vote[:0], v)
	_, err := call(func(out []byte) uint64 { return hostSubmit(state.vote, out) }, false)
	return err
}

func (guestHost) Allow(_ context.Context, key string) bool { return hostAllow(key) }

func (guestHost) Log(level, msg string, attrs ...any) {
	kv := make([]string, 0, len(attrs))
	for _, a := range attrs {
		switch a := a.(type) {
		case string:
			kv = append(kv, a)
		case error:
			kv = append(kv, a.Error())
		default:
			kv = append(kv, fmt.Sprint(a))
		}
	}
	hostLog(abi.LevelOf(level), msg, abi.AppendAttrs(nil, kv))
}

// handle serves one encoded request and returns the encoded response, which
// stays valid until the next call.
func handle(data []byte) []byte {
	if msg := initGuest(); msg != "" {
		return encodeError(shared.Errorf(shared.EINTERNAL, "%s", msg), 500)
	}
	req := &state.req
	if err := abi.DecodeRequest(data, req); err != nil {
		return encodeError(err, 400)
	}
	r, err := buildRequest(req)
	if err != nil {
		return encodeError(err, 400)
	}
	w := &state.resp
	w.reset()
	state.handler.ServeHTTP(w, r)
	state.out = w.encode(state.out[:0])
	return state.out
}

func encodeError(err error, status int) []byte {
	b := abi.AppendResponseHead(state.out[:0], status, 1)
	b = abi.AppendString(b, "Content-Type")
	b = abi.AppendString(b, "application/json")
	state.out = abi.AppendBytes(b, shared.AppendErrorJSON(nil, err))
	return state.out
}

// buildRequest turns the decoded request into the instance's reusable
// *http.Request (one request at a time, and the handler keeps nothing), so
// that a request costs no url.URL, header map or body reader allocations.
func buildRequest(req *abi.Request) (*http.Request, error) {
	u := &state.url
	if !parseSimpleURI(req.URI, u) {
		pu, err := url.ParseRequestURI(req.URI)
		if err != nil {
			return nil, shared.Errorf(shared.EINVALID, "bad request URI")
		}
		*u = *pu
	}
	if state.header == nil {
		state.header = make(http.Header, 8)
	}
	h := state.header
	clear(h)
	host := ""
	for i := 0; i+1 < len(req.Header); i += 2 {
		k := http.CanonicalHeaderKey(req.Header[i])
		if k == "Host" {
			host = req.Header[i+1]
			continue
		}
		h[k] = append(h[k], req.Header[i+1])
	}
	state.body.Reset(req.Body)
	r := &state.httpReq
	*r = http.Request{
		Method:        req.Method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          &state.body,
		ContentLength: int64(len(req.Body)),
		Host:          host,
		RemoteAddr:    req.RemoteAddr,
		RequestURI:    req.URI,
	}
	if len(req.Body) == 0 {
		r.Body = http.NoBody
	}
	return r, nil
}

// parseSimpleURI fills u from a request URI that needs no unescaping: an
// absolute path of printable ASCII without '%' or '#', and an optional
// query. Anything else is left to url.ParseRequestURI.
func parseSimpleURI(uri string, u *url.URL) bool {
	if uri == "" || uri[0] != '/' {
		return false
	}
	path, query, _ := strings.Cut(uri, "?")
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return false
		}
	}
	if strings.IndexByte(query, '#') >= 0 {
		return false
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// bodyReader is a reusable request body.
type bodyReader struct{ bytes.Reader }

// Close implements io.Closer.
func (*bodyReader) Close() error { return nil }

// responseWriter collects a response for encoding.
type responseWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *responseWriter) reset() {
	if w.header == nil {
		w.header = make(http.Header, 8)
	}
	clear(w.header)
	w.status = 0
	w.body = w.body[:0]
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 100 && status <= 999 {
		w.status = status
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// WriteString lets io.WriteString skip a conversion.
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, s...)
	return len(s), nil
}

func (w *responseWriter) encode(b []byte) []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n := 0
	for k, vs := range w.header {
		if !strings.HasPrefix(k, ":") {
			n += len(vs)
		}
	}
	if n > abi.MaxHeaders {
		n = abi.MaxHeaders
	}
	b = abi.AppendResponseHead(b, w.status, n)
	i := 0
	for k, vs := range w.header {
		for _, v := range vs {
			if i == n || strings.HasPrefix(k, ":") {
				break
			}
			b = abi.AppendString(b, k)
			b = abi.AppendString(b, v)
			i++
		}
	}
	return abi.AppendBytes(b, w.body)
}
