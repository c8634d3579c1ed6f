package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/ratelimit"
)

// Media types the handler speaks.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeMsgpack = shared.ContentTypeMsgpack
)

// CookiePrefix starts the name of the voter-token cookie: ep_<poll id>.
const CookiePrefix = "ep_"

// cookieMaxAge is the voter-token cookie's lifetime in seconds (30 days).
const cookieMaxAge = 30 * 24 * 3600

// platformRetryAfter is the Retry-After sent when the host's platform limiter
// refuses a request (the Workers Rate Limiting binding counts in 10 s or 60 s periods).
const platformRetryAfter = 10 * time.Second

// Allowed methods per route, as sent in Allow and Access-Control-Allow-Methods.
const (
	allowGet  = "GET, OPTIONS"
	allowPost = "POST, OPTIONS"
)

// Constant header values, shared to spare an allocation per Header().Set.
// Each has length and capacity 1, so a later Header().Add copies it.
var (
	hvJSON    = []string{ContentTypeJSON}
	hvNoStore = []string{"no-store"}
	hvNosniff = []string{"nosniff"}
	hvOrigin  = []string{"Origin"}
	hvTrue    = []string{"true"}
	hvExpose  = []string{"ETag, Retry-After"}
)

type route int

const (
	routePoll route = iota + 1
	routeVotes
	routeResults
	routeVote
	routeToken
)

// handler is the edge http.Handler; see New.
type handler struct {
	cfg       Config
	host      Host
	tokens    TokenService // the host's, or shared/token with cfg.TokenSecret
	cfgErr    error
	state     LocationState // the host's (StateHost) or the handler's own
	anyOrigin bool
	origins   map[string]struct{}
	scopes    scopeCache
}

// New returns the edge handler serving the public voter API (see
// docs/EDGE-API.md) on host. Rate-limit and dedupe state lives in the
// handler, so a host keeps one handler per isolate or instance, unless the
// host implements StateHost and shares it between handlers. If cfg is
// invalid the handler logs why and answers every request 503, so a
// misconfigured edge fails loudly without crashing its host.
func New(cfg Config, host Host) http.Handler {
	cfg = cfg.withDefaults()
	h := &handler{cfg: cfg, host: host, origins: make(map[string]struct{})}
	if ts, ok := host.(TokenService); ok {
		h.tokens = ts
	} else {
		h.tokens = secretTokens{cfg.TokenSecret}
	}
	if err := cfg.Validate(); err != nil {
		h.cfgErr = err
		host.Log("error", "edge: invalid configuration", "err", err.Error())
		return h
	}
	if sh, ok := host.(StateHost); ok {
		h.state = sh.LocationState()
	}
	if h.state == nil {
		h.state = NewLocationState(cfg)
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			h.anyOrigin = true
		}
		h.origins[o] = struct{}{}
	}
	return h
}

// ServeHTTP implements http.Handler. It never panics: a panic below is
// logged and answered with a 500 JSON error.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.host.Log("error", "edge: panic serving request", "panic", fmt.Sprint(v), "method", r.Method, "path", r.URL.Path)
			writeError(w, shared.Errorf(shared.EINTERNAL, "internal error"))
		}
	}()
	hdr := w.Header()
	h.cors(hdr, r)
	id, rt := parsePath(r.URL.Path)
	if rt == 0 {
		writeError(w, shared.Errorf(shared.ENOTFOUND, "no such route: %s", truncate(r.URL.Path, 80)))
		return
	}
	post := rt == routeVotes || rt == routeToken
	allow := allowGet
	if post {
		allow = allowPost
	}
	if r.Method == http.MethodOptions {
		h.preflight(w, r, allow)
		return
	}
	if h.cfgErr != nil {
		writeError(w, shared.Errorf(shared.EUNAVAILABLE, "edge is misconfigured"))
		return
	}
	if post != (r.Method == http.MethodPost) || (!post && r.Method != http.MethodGet) {
		hdr.Set("Allow", allow)
		writeErrorStatus(w, http.StatusMethodNotAllowed, shared.Errorf(shared.EINVALID, "method %s not allowed; use %s", truncate(r.Method, 16), allow))
		return
	}
	if !shared.ValidPollID(id) {
		writeError(w, shared.Errorf(shared.ENOTFOUND, "unknown poll"))
		return
	}
	switch rt {
	case routePoll:
		h.servePoll(w, r, id)
	case routeVotes:
		h.serveVote(w, r, id)
	case routeResults:
		h.serveResults(w, r, id)
	case routeVote:
		h.serveVoteCheck(w, r, id)
	case routeToken:
		h.serveToken(w, r, id)
	}
}

// parsePath splits /v1/polls/{id}[/votes|/results|/vote|/token] into the id and route.
func parsePath(p string) (string, route) {
	rest, ok := strings.CutPrefix(p, "/v1/polls/")
	if !ok || rest == "" {
		return "", 0
	}
	id, sub, hasSub := strings.Cut(rest, "/")
	if id == "" {
		return "", 0
	}
	if !hasSub {
		return id, routePoll
	}
	switch sub {
	case "votes":
		return id, routeVotes
	case "results":
		return id, routeResults
	case "vote":
		return id, routeVote
	case "token":
		return id, routeToken
	}
	return "", 0
}

// RouteLabel names the voter API route of path as metrics and logs label
// it (poll, vote, results, check, token), or "" when path is none of them.
func RouteLabel(path string) string {
	_, rt := parsePath(path)
	switch rt {
	case routePoll:
		return "poll"
	case routeVotes:
		return "vote"
	case routeResults:
		return "results"
	case routeVote:
		return "check"
	case routeToken:
		return "token"
	}
	return ""
}

// cors sets the CORS response headers for an allowed Origin.
func (h *handler) cors(hdr http.Header, r *http.Request) {
	hdr["Vary"] = hvOrigin
	origin := r.Header.Get("Origin")
	if origin == "" || !h.originAllowed(origin) {
		return
	}
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr["Access-Control-Allow-Credentials"] = hvTrue
	hdr["Access-Control-Expose-Headers"] = hvExpose
}

func (h *handler) originAllowed(origin string) bool {
	if h.anyOrigin {
		return origin != "null"
	}
	_, ok := h.origins[origin]
	return ok
}

// preflight answers an OPTIONS request: 204 with the route's methods, and
// the CORS preflight headers when the Origin is allowed.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request, allow string) {
	hdr := w.Header()
	hdr.Set("Allow", allow)
	if hdr.Get("Access-Control-Allow-Origin") != "" {
		hdr.Set("Access-Control-Allow-Methods", allow)
		hdr.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		hdr.Set("Access-Control-Max-Age", "86400")
		hdr.Set("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	}
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// clientIP is the voter's address: CF-Connecting-IP, which Cloudflare sets
// and non-Cloudflare hosts must set (overwriting any client value) from the
// socket peer; otherwise the host part of RemoteAddr.
func clientIP(r *http.Request) string {
	if ip := r.Header.Get("Cf-Connecting-Ip"); ip != "" {
		return truncate(strings.TrimSpace(ip), 64)
	}
	a := r.RemoteAddr
	if strings.HasPrefix(a, "[") {
		if i := strings.IndexByte(a, ']'); i > 0 {
			return a[1:i]
		}
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 && strings.Count(a, ":") == 1 {
		return a[:i]
	}
	if a == "" {
		return "unknown"
	}
	return a
}

// addrKey is the address the per-address limits count ip under: an IPv6
// address is cut to its first bits bits (a /64 by default: one subscriber
// can rotate through a whole /64, so each address alone means nothing),
// written as "prefix/bits"; anything else (IPv4, an IPv4-mapped IPv6
// address, junk) is used as it is. It allocates only for IPv6.
func addrKey(ip string, bits int) string {
	if bits >= 128 || strings.IndexByte(ip, ':') < 0 {
		return ip
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}

// allowIP applies a per-address limit: the isolate's limiter l first, then
// the host's platform limiter under prefix+ip (ip already cut by addrKey). When either refuses, it
// writes the 429 (msg names the isolate's limit) and returns false.
func (h *handler) allowIP(ctx context.Context, w http.ResponseWriter, l Limiter, prefix, ip string, now time.Time, msg string) bool {
	if ok, wait := h.state.Limit(l, ratelimit.Key(ip), now); !ok {
		writeRateLimited(w, wait, msg)
		return false
	}
	if !h.host.Allow(ctx, prefix+ip) {
		writeRateLimited(w, platformRetryAfter, "too many requests from your address")
		return false
	}
	return true
}

// allowPollTokens applies the poll's ceiling on new voter tokens at this
// location (Config.PollTokenRate), whatever address asks; past it, it
// answers 429 and returns false.
func (h *handler) allowPollTokens(w http.ResponseWriter, id string, now time.Time) bool {
	if ok, wait := h.state.Limit(LimitTokenPoll, ratelimit.Key(id), now); !ok {
		writeRateLimited(w, wait, "this poll is issuing new voter tokens faster than its ceiling")
		return false
	}
	return true
}

// writeRateLimited answers 429 with Retry-After in whole seconds (at least 1).
func writeRateLimited(w http.ResponseWriter, wait time.Duration, msg string) {
	secs := int64((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, shared.Errorf(shared.ERATELIMITED, "%s; retry in %d s", msg, secs))
}

// writeError answers with err's status and JSON error body.
func writeError(w http.ResponseWriter, err error) {
	writeErrorStatus(w, shared.HTTPStatus(shared.ErrorCode(err)), err)
}

// writeErrorStatus answers with status and err's JSON error body.
func writeErrorStatus(w http.ResponseWriter, status int, err error) {
	if status < 400 {
		status = http.StatusInternalServerError
	}
	body := shared.AppendErrorJSON(make([]byte, 0, 128), err)
	hdr := w.Header()
	hdr["Content-Type"] = hvJSON
	hdr["Cache-Control"] = hvNoStore
	hdr["X-Content-Type-Options"] = hvNosniff
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSON answers with status and a JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = hvJSON
	hdr["X-Content-Type-Options"] = hvNosniff
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// requestToken returns the voter token carried in the Authorization: Bearer
// header or the poll's cookie, or "".
func requestToken(r *http.Request, id string) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return cookieValue(r, id)
}

// cookieValue returns the value of the ep_<id> cookie, without parsing every
// cookie into a struct.
func cookieValue(r *http.Request, id string) string {
	for _, line := range r.Header.Values("Cookie") {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			name, val, ok := strings.Cut(part, "=")
			if ok && len(name) == len(CookiePrefix)+len(id) && strings.HasPrefix(name, CookiePrefix) && name[len(CookiePrefix):] == id {
				return strings.Trim(val, `"`)
			}
		}
	}
	return ""
}

// TokenScope is what p's voter tokens are bound to (the poll argument of
// TokenService): the poll id for an open poll, and "id#mode" otherwise, so
// a token issued while a draft poll was open (or under another mode) never
// votes once the poll asks for codes or JWTs.
func TokenScope(p *shared.Poll) string {
	switch m := p.IdentityMode(); m {
	case shared.IdentityOpen:
		return p.ID
	default:
		return p.ID + "#" + string(m)
	}
}

// servePoll answers GET /v1/polls/{id}: the poll's config and a voter token,
// reusing a valid token the request already carries. An invite or signed
// poll issues no token here (only POST /v1/polls/{id}/token does): the
// answer then carries the config alone.
func (h *handler) servePoll(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	now := h.host.Now()
	tok := requestToken(r, id)
	var mode shared.Identity
	if tok != "" {
		if _, m, err := h.voterOf(id, tok); err != nil {
			tok = "" // stale or foreign: mint a new one
		} else {
			mode = m
		}
	}
	if tok == "" {
		if !h.allowIP(ctx, w, LimitTokenIP, "token:", addrKey(clientIP(r), h.cfg.IPv6Prefix), now, "too many voter tokens requested from your address") {
			return
		}
	}
	p, err := h.host.Poll(ctx, id)
	if err != nil {
		h.hostError(w, "poll lookup", id, err)
		return
	}
	if tok != "" && mode != p.IdentityMode() {
		tok = "" // issued under another identity mode: no longer valid
		if !h.allowIP(ctx, w, LimitTokenIP, "token:", addrKey(clientIP(r), h.cfg.IPv6Prefix), now, "too many voter tokens requested from your address") {
			return
		}
	}
	if tok == "" && p.IdentityMode() != shared.IdentityOpen {
		h.writePoll(w, p, "")
		return
	}
	if tok == "" {
		if !h.allowPollTokens(w, id, now) {
			return
		}
		var v shared.VoterID
		for v.IsZero() {
			if _, err := rand.Read(v[:]); err != nil {
				h.hostError(w, "voter id", id, shared.Wrap(shared.EUNAVAILABLE, err, "no randomness for a voter id"))
				return
			}
		}
		markVoter(&v, shared.IdentityOpen)
		if tok, err = h.tokens.IssueToken(id, v); err != nil {
			h.hostError(w, "voter token", id, err)
			return
		}
		h.countIssued(r, id)
	}
	h.writePoll(w, p, tok)
}

// Voter ids carry their identity mode in the low two bits of their first
// byte (modeBits), so checking a token needs one HMAC whatever the poll's
// mode: voterOf tries the mode the bits name first. Tokens issued before
// the bits existed have random ones and cost a second or third check.
var modeBits = map[shared.Identity]byte{shared.IdentityOpen: 0, shared.IdentityInvite: 1, shared.IdentitySigned: 2}

// markVoter sets v's mode bits to m's.
func markVoter(v *shared.VoterID, m shared.Identity) {
	v[0] = v[0]&^3 | modeBits[m]
	if v.IsZero() {
		v[15] = 1
	}
}

// tokenModes lists the modes to try for tok, the one its voter id's bits
// name first, read from the base64url text without decoding it: the first
// byte's low two bits are bits 5 and 4 of the second character's value.
func tokenModes(tok string) [3]shared.Identity {
	hint := byte(0)
	if len(tok) > 1 {
		hint = b64val(tok[1]) >> 4 & 3
	}
	switch hint {
	case 1:
		return [3]shared.Identity{shared.IdentityInvite, shared.IdentityOpen, shared.IdentitySigned}
	case 2:
		return [3]shared.Identity{shared.IdentitySigned, shared.IdentityOpen, shared.IdentityInvite}
	}
	return [3]shared.Identity{shared.IdentityOpen, shared.IdentityInvite, shared.IdentitySigned}
}

// b64val is the value of a base64url character (0 for any other byte).
func b64val(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return 0
}

// maxScopes bounds the scope strings a handler keeps: the polls of a show
// at one edge are few.
const maxScopes = 64

// scopeCache keeps "id#mode" strings, so checking a token of an invite or
// signed poll allocates nothing, as for an open one. Readers scan an
// immutable slice without locking; a miss copies it.
type scopeCache struct {
	list atomic.Pointer[[]scopeEntry]
	mu   sync.Mutex
}

type scopeEntry struct {
	id    string
	mode  shared.Identity
	scope string
}

// get returns the token scope of poll id in mode m (see TokenScope).
func (c *scopeCache) get(id string, m shared.Identity) string {
	if m == shared.IdentityOpen {
		return id
	}
	if l := c.list.Load(); l != nil {
		for i := range *l {
			if e := &(*l)[i]; e.mode == m && e.id == id {
				return e.scope
			}
		}
	}
	s := id + "#" + string(m)
	c.mu.Lock()
	var l []scopeEntry
	if old := c.list.Load(); old != nil && len(*old) < maxScopes {
		l = append(l, *old...)
	}
	l = append(l, scopeEntry{s[:len(id)], m, s})
	c.list.Store(&l)
	c.mu.Unlock()
	return s
}

// voterOf verifies tok for poll id under each identity mode's scope (see
// TokenScope), the one its voter id names first, with no I/O, and returns
// its voter and the mode it was issued under. Errors are those of the
// first check.
func (h *handler) voterOf(id, tok string) (shared.VoterID, shared.Identity, error) {
	var first error
	for i, m := range tokenModes(tok) {
		v, err := h.tokens.VerifyToken(h.scopes.get(id, m), tok)
		if err == nil {
			return v, m, nil
		}
		if i == 0 {
			first = err
		}
		if shared.ErrorCode(err) != shared.EUNAUTHORIZED {
			return v, "", err // the token service failed: do not try more
		}
	}
	return shared.VoterID{}, "", first
}

// countIssued reports a new token of poll to a host that counts them.
func (h *handler) countIssued(r *http.Request, poll string) {
	if ic, ok := h.host.(IdentityCounter); ok {
		ic.TokenIssued(poll, addrKey(clientIP(r), h.cfg.IPv6Prefix))
	}
	if f, ok := h.host.(IdentityFlusher); ok {
		f.FlushIdentity(r.Context())
	}
}

// writePoll answers 200 with p's config and, unless tok is "", the voter
// token tok (in the body and the poll's cookie).
func (h *handler) writePoll(w http.ResponseWriter, p *shared.Poll, tok string) {
	hdr := w.Header()
	if tok != "" {
		hdr.Set("Set-Cookie", h.cookie(p.ID, tok))
	}
	hdr.Set("Cache-Control", "private, no-store")
	body := make([]byte, 0, 512)
	body = append(body, `{"poll":`...)
	body = AppendPollJSON(body, p)
	if tok != "" {
		body = append(body, `,"token":`...)
		body = shared.AppendJSONString(body, tok)
	}
	body = append(body, '}')
	writeJSON(w, http.StatusOK, body)
}

// serveToken answers POST /v1/polls/{id}/token: a voter of an invite poll
// trades its code ({"code":"..."}) for a voter token, a voter of a signed
// poll its JWT ({"jwt":"..."}). The answer is GET /v1/polls/{id}'s. A
// malformed body or code is 400, a bad JWT 401, an unknown code 403, a
// used code 409; none of them changes anything.
func (h *handler) serveToken(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	now := h.host.Now()
	if !h.allowIP(ctx, w, LimitTokenIP, "token:", addrKey(clientIP(r), h.cfg.IPv6Prefix), now, "too many voter tokens requested from your address") {
		return
	}
	if mediaType(r.Header.Get("Content-Type")) != ContentTypeJSON {
		writeError(w, shared.Errorf(shared.EUNSUPPORTED, "send the token request as %s", ContentTypeJSON))
		return
	}
	bp, err := readBody(r, maxTokenRequestBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	var tr tokenRequest
	err = decodeTokenRequest(*bp, &tr)
	bodyPool.Put(bp)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := h.host.Poll(ctx, id)
	if err != nil {
		h.hostError(w, "poll lookup", id, err)
		return
	}
	var v shared.VoterID
	switch p.IdentityMode() {
	case shared.IdentityInvite:
		if tr.Code == "" {
			writeError(w, shared.Errorf(shared.EINVALID, "this poll takes an invite code: send {\"code\":\"...\"}"))
			return
		}
		code, err := invite.Parse(tr.Code)
		if err != nil {
			if ic, ok := h.host.(IdentityCounter); ok {
				ic.TokenRefused(id, "malformed_code")
			}
			writeError(w, err)
			return
		}
		if !h.allowPollTokens(w, id, now) {
			return
		}
		ih, ok := h.host.(InviteHost)
		if !ok {
			writeError(w, shared.Errorf(shared.EUNAVAILABLE, "this edge cannot redeem invite codes"))
			return
		}
		if err := ih.RedeemInvite(ctx, id, code); err != nil {
			switch shared.ErrorCode(err) {
			case shared.ECONFLICT, shared.EFORBIDDEN:
				writeError(w, err)
			default:
				h.hostError(w, "invite redeem", id, err)
			}
			return
		}
		// A fresh random voter: nothing links the code to the vote.
		for v.IsZero() {
			if _, err := rand.Read(v[:]); err != nil {
				h.hostError(w, "voter id", id, shared.Wrap(shared.EUNAVAILABLE, err, "no randomness for a voter id"))
				return
			}
		}
	case shared.IdentitySigned:
		if tr.JWT == "" {
			writeError(w, shared.Errorf(shared.EINVALID, "this poll takes a JWT from its app: send {\"jwt\":\"...\"}"))
			return
		}
		var ok bool
		if v, ok = h.signedVoter(w, p, tr.JWT, now); !ok {
			return
		}
		if !h.allowPollTokens(w, id, now) {
			return
		}
	default:
		writeError(w, shared.Errorf(shared.ECONFLICT, "this poll is open to every browser: GET /v1/polls/%s issues a token", id))
		return
	}
	markVoter(&v, p.IdentityMode())
	tok, err := h.tokens.IssueToken(TokenScope(p), v)
	if err != nil {
		h.hostError(w, "voter token", id, err)
		return
	}
	h.countIssued(r, id)
	h.writePoll(w, p, tok)
}

// cookie formats the Set-Cookie value carrying tok for poll id.
func (h *handler) cookie(id, tok string) string {
	b := make([]byte, 0, 160)
	b = append(b, CookiePrefix...)
	b = append(b, id...)
	b = append(b, '=')
	b = append(b, tok...)
	b = append(b, "; Path=/v1/polls/"...)
	b = append(b, id...)
	b = append(b, "; Max-Age="...)
	b = strconv.AppendInt(b, cookieMaxAge, 10)
	b = append(b, "; HttpOnly"...)
	if h.cfg.CookieSecure {
		b = append(b, "; Secure; SameSite=None"...)
	} else {
		b = append(b, "; SameSite=Lax"...)
	}
	return string(b)
}

// hostError answers a failed host call, logging server-side failures.
func (h *handler) hostError(w http.ResponseWriter, what, id string, err error) {
	code := shared.ErrorCode(err)
	switch code {
	case shared.ENOTFOUND:
		writeError(w, shared.Errorf(shared.ENOTFOUND, "unknown poll"))
		return
	case shared.EFORBIDDEN:
		writeError(w, err)
		return
	}
	// Anything else (including EINVALID: an origin answer the host could not
	// use) is the edge's problem, not the voter's.
	h.host.Log("warn", "edge: "+what+" failed", "poll", id, "err", err.Error())
	if code == shared.EUNAVAILABLE {
		writeError(w, err)
		return
	}
	writeError(w, shared.Wrap(shared.EUNAVAILABLE, err, what+" failed; retry later"))
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, DefaultMaxBodyBytes+1); return &b }}

// readBody reads at most max bytes of r's body into a pooled buffer; the
// caller returns it with bodyPool.Put. Errors are ETOOLARGE or EINVALID.
func readBody(r *http.Request, max int) (*[]byte, error) {
	if r.ContentLength > int64(max) {
		return nil, shared.Errorf(shared.ETOOLARGE, "vote body larger than %d bytes", max)
	}
	bp := bodyPool.Get().(*[]byte)
	if cap(*bp) < max+1 {
		*bp = make([]byte, 0, max+1)
	}
	buf := (*bp)[:max+1]
	n := 0
	var err error
	if r.Body != nil {
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Body.Read(buf[n:])
			n += m
		}
	}
	*bp = buf[:n]
	if n > max {
		bodyPool.Put(bp)
		return nil, shared.Errorf(shared.ETOOLARGE, "vote body larger than %d bytes", max)
	}
	if err != nil && err != io.EOF {
		bodyPool.Put(bp)
		return nil, shared.Wrap(shared.EINVALID, err, "could not read the vote body")
	}
	return bp, nil
}

// mediaType returns the lower-cased media type of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case strings.EqualFold(ct, ContentTypeJSON):
		return ContentTypeJSON
	case strings.EqualFold(ct, ContentTypeMsgpack), strings.EqualFold(ct, "application/x-msgpack"), strings.EqualFold(ct, "application/vnd.msgpack"):
		return ContentTypeMsgpack
	}
	return ct
}

// serveVote answers POST /v1/polls/{id}/votes. The checks run cheapest and
// most protective first: per-IP limits, media type, size, syntax, token (an
// HMAC, no I/O), then the poll config, choices, per-voter limit, dedupe, and
// finally the hand-off.
func (h *handler) serveVote(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	now := h.host.Now()
	ip := addrKey(clientIP(r), h.cfg.IPv6Prefix)
	if !h.allowIP(ctx, w, LimitVoteIP, "vote:", ip, now, "too many votes from your address") {
		return
	}
	mt := mediaType(r.Header.Get("Content-Type"))
	if mt != ContentTypeJSON && mt != ContentTypeMsgpack {
		writeError(w, shared.Errorf(shared.EUNSUPPORTED, "send the vote as %s or %s", ContentTypeJSON, ContentTypeMsgpack))
		return
	}
	bp, err := readBody(r, h.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	var b ballot
	if mt == ContentTypeJSON {
		err = decodeVoteJSON(*bp, &b)
	} else {
		err = decodeVoteMsgpack(*bp, &b)
	}
	bodyPool.Put(bp)
	if err != nil {
		writeError(w, err)
		return
	}
	tok := b.Token
	if tok == "" {
		tok = requestToken(r, id)
	}
	voter, mode, ok := h.verifyVoter(w, id, tok, "a voter token is required: GET /v1/polls/%s issues one")
	if !ok {
		return
	}
	p, err := h.host.Poll(ctx, id)
	if err != nil {
		h.hostError(w, "poll lookup", id, err)
		return
	}
	if mode != p.IdentityMode() {
		writeError(w, shared.Errorf(shared.EUNAUTHORIZED, "voter token not valid for this poll (issued under another identity mode)"))
		return
	}
	if err := p.AcceptsAt(now); err != nil {
		writeError(w, err)
		return
	}
	choices, words, err := ballotFor(p, &b)
	if err != nil {
		writeError(w, err)
		return
	}
	if ok, wait := h.state.Limit(LimitVoter, voterKey(id, voter), now); !ok {
		writeRateLimited(w, wait, "too many votes from this voter")
		return
	}
	if !h.state.SeenAdd(id, voter) {
		writeError(w, shared.Errorf(shared.ECONFLICT, "this voter has already voted in this poll"))
		return
	}
	v := &shared.Vote{Poll: id, Voter: voter, Choices: choices, Words: words, At: now.UnixMilli()}
	if err := h.host.Submit(ctx, v); err != nil {
		h.state.SeenRemove(id, voter)
		h.host.Log("warn", "edge: vote hand-off failed", "poll", id, "err", err.Error())
		writeError(w, shared.Wrap(shared.EUNAVAILABLE, err, "the vote could not be recorded; retry"))
		return
	}
	body := make([]byte, 0, 128)
	body = append(body, `{"status":"accepted","poll":`...)
	body = shared.AppendJSONString(body, id)
	body = append(body, `,"receipt":"`...)
	body = hex.AppendEncode(body, voter[:])
	body = append(body, `"}`...)
	w.Header()["Cache-Control"] = hvNoStore
	writeJSON(w, http.StatusAccepted, body)
}

// ballotFor checks a decoded ballot against poll p's kind and returns what
// the vote carries on the wire: the choice bytes (for a scale poll one byte,
// value - min) or the words in normal form. Errors are EINVALID.
func ballotFor(p *shared.Poll, b *ballot) ([]uint8, []string, error) {
	switch b.Field {
	case fieldValue:
		c, err := p.ScaleChoice(b.Value)
		if err != nil {
			return nil, nil, err
		}
		return []uint8{c}, nil, nil
	case fieldWords:
		words := append([]string(nil), b.words()...)
		if err := p.ValidateWords(words); err != nil {
			return nil, nil, err
		}
		return []uint8{}, words, nil
	}
	key := "choice"
	if b.Multiple {
		key = "choices"
	}
	if p.Kind == shared.KindScale || p.Kind == shared.KindWords {
		return nil, nil, p.WrongKey(key)
	}
	if err := p.ValidateChoices(b.choices()); err != nil {
		return nil, nil, err
	}
	return append([]uint8(nil), b.choices()...), nil, nil
}

// verifyVoter returns the voter whose token tok is for poll id and the
// identity mode it was issued under (see voterOf), with no I/O, or answers
// 401 or the host's error and returns false. missing formats the message
// for an empty token, with id.
func (h *handler) verifyVoter(w http.ResponseWriter, id, tok, missing string) (shared.VoterID, shared.Identity, bool) {
	if tok == "" {
		writeError(w, shared.Errorf(shared.EUNAUTHORIZED, missing, id))
		return shared.VoterID{}, "", false
	}
	voter, mode, err := h.voterOf(id, tok)
	if err != nil {
		if shared.ErrorCode(err) == shared.EUNAUTHORIZED {
			writeError(w, err)
		} else {
			h.hostError(w, "token check", id, err)
		}
		return shared.VoterID{}, "", false
	}
	return voter, mode, true
}

// serveVoteCheck answers GET /v1/polls/{id}/vote: whether the origin has
// counted the vote of the voter whose token the request carries (Bearer or
// cookie). It reveals nothing about any other voter: the voter id comes
// from the verified token, never from the request.
func (h *handler) serveVoteCheck(w http.ResponseWriter, r *http.Request, id string) {
	// Any of the poll's token scopes will do: a check reveals nothing to
	// the holder of a token issued under a mode the poll left.
	voter, _, ok := h.verifyVoter(w, id, requestToken(r, id), "send your voter token as Authorization: Bearer <token> or in the ep_%s cookie")
	if !ok {
		return
	}
	if ok, wait := h.state.Limit(LimitCheck, voterKey(id, voter), h.host.Now()); !ok {
		writeRateLimited(w, wait, "too many vote checks from this voter")
		return
	}
	counted, err := h.host.Voted(r.Context(), id, voter)
	if err != nil {
		h.hostError(w, "vote check", id, err)
		return
	}
	body := make([]byte, 0, 128)
	body = append(body, `{"poll":`...)
	body = shared.AppendJSONString(body, id)
	body = append(body, `,"receipt":"`...)
	body = hex.AppendEncode(body, voter[:])
	body = append(body, `","counted":`...)
	body = strconv.AppendBool(body, counted)
	body = append(body, '}')
	w.Header()["Cache-Control"] = hvNoStore
	writeJSON(w, http.StatusOK, body)
}

// voterKey is the per-voter rate-limit key for (poll, voter).
func voterKey(poll string, v shared.VoterID) uint64 {
	var k uint64
	for i := 0; i < 8; i++ {
		k = k<<8 | uint64(v[i]^v[i+8])
	}
	return k ^ ratelimit.Key(poll)
}

// wantsMsgpack reports whether the Accept header asks for MessagePack.
func wantsMsgpack(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return a != "" && (strings.Contains(a, ContentTypeMsgpack) || strings.Contains(a, "application/x-msgpack"))
}

// serveResults answers GET /v1/polls/{id}/results from the host's cache,
// passing the origin's status, ETag and Cache-Control through and answering
// a matching If-None-Match with 304.
func (h *handler) serveResults(w http.ResponseWriter, r *http.Request, id string) {
	mp := wantsMsgpack(r)
	c, err := h.host.Results(r.Context(), id, mp)
	if err != nil {
		h.hostError(w, "results lookup", id, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Vary", "Origin, Accept")
	status := c.Status
	if status == 0 {
		status = http.StatusOK
	}
	if c.CacheControl != "" {
		hdr.Set("Cache-Control", c.CacheControl)
	}
	if c.ETag != "" {
		hdr.Set("ETag", c.ETag)
	}
	if status == http.StatusOK && c.ETag != "" && etagMatch(r.Header.Get("If-None-Match"), c.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ct := c.ContentType
	if ct == "" {
		ct = ContentTypeJSON
		if mp {
			ct = ContentTypeMsgpack
		}
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(c.Body)))
	w.WriteHeader(status)
	_, _ = w.Write(c.Body)
}

// etagMatch reports whether an If-None-Match value matches etag, using the
// weak comparison RFC 9110 prescribes for If-None-Match.
func etagMatch(inm, etag string) bool {
	if inm == "" {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for inm != "" {
		var t string
		t, inm, _ = strings.Cut(inm, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// AppendPollJSON appends p as JSON with shared.Poll's field names (the
// origin's representation), hand-written so the edge needs no reflection.
func AppendPollJSON(dst []byte, p *shared.Poll) []byte {
	dst = append(dst, `{"id":`...)
	dst = shared.AppendJSONString(dst, p.ID)
	dst = append(dst, `,"title":`...)
	dst = shared.AppendJSONString(dst, p.Title)
	if len(p.Options) > 0 {
		dst = append(dst, `,"options":[`...)
		for i, o := range p.Options {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"label":`...)
			dst = shared.AppendJSONString(dst, o.Label)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"kind":`...)
	dst = shared.AppendJSONString(dst, string(p.Kind))
	if p.MaxChoices != 0 {
		dst = append(dst, `,"max_choices":`...)
		dst = strconv.AppendInt(dst, int64(p.MaxChoices), 10)
	}
	if sc := p.Scale; sc != nil {
		dst = append(dst, `,"scale":{"min":`...)
		dst = strconv.AppendInt(dst, int64(sc.Min), 10)
		dst = append(dst, `,"max":`...)
		dst = strconv.AppendInt(dst, int64(sc.Max), 10)
		if sc.MinLabel != "" {
			dst = append(dst, `,"min_label":`...)
			dst = shared.AppendJSONString(dst, sc.MinLabel)
		}
		if sc.MaxLabel != "" {
			dst = append(dst, `,"max_label":`...)
			dst = shared.AppendJSONString(dst, sc.MaxLabel)
		}
		dst = append(dst, '}')
	}
	if p.MaxWords != 0 {
		dst = append(dst, `,"max_words":`...)
		dst = strconv.AppendInt(dst, int64(p.MaxWords), 10)
	}
	dst = append(dst, `,"state":`...)
	dst = shared.AppendJSONString(dst, string(p.State))
	if !p.OpensAt.IsZero() {
		dst = append(dst, `,"opens_at":"`...)
		dst = p.OpensAt.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if !p.ClosesAt.IsZero() {
		dst = append(dst, `,"closes_at":"`...)
		dst = p.ClosesAt.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"visibility":`...)
	dst = shared.AppendJSONString(dst, string(p.Visibility))
	dst = append(dst, `,"identity":`...)
	dst = shared.AppendJSONString(dst, string(p.IdentityMode()))
	dst = append(dst, `,"identity_note":`...)
	dst = shared.AppendJSONString(dst, shared.IdentityNote(p.IdentityMode()))
	if p.JWTIssuer != "" {
		dst = append(dst, `,"jwt_issuer":`...)
		dst = shared.AppendJSONString(dst, p.JWTIssuer)
		dst = append(dst, `,"jwt_audience":`...)
		dst = shared.AppendJSONString(dst, p.JWTAudience)
	}
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, p.Version, 10)
	return append(dst, '}')
}
