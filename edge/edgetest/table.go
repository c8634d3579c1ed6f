package edgetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

// Values the table's Config and requests use.
const (
	// Secret is the table Config's TokenSecret.
	Secret = "edgetest-token-secret-0123456789abcdef"
	// AllowedOrigin is the one origin the table Config allows.
	AllowedOrigin = "https://embed.example"
	// OtherOrigin is an origin the table Config does not allow.
	OtherOrigin = "https://evil.example"
	// ClientIP is the CF-Connecting-IP every request carries unless a step sets another.
	ClientIP = "198.51.100.7"
)

// TableConfig returns the Config RunTable gives mk: tight limits so the
// table can reach them (5 tokens and 10 votes per IP, IPv6 per /64, per
// minute, 3 votes and 3 vote checks per voter per minute, 20 new tokens per
// poll per minute), Secure cookies, one allowed origin, and JWKSJSON's key
// for signed polls.
func TableConfig() edge.Config {
	c := edge.DefaultConfig()
	c.TokenSecret = []byte(Secret)
	c.AllowedOrigins = []string{AllowedOrigin}
	c.EdgeID = "edgetest"
	c.TokenRate = edge.Rate{N: 5, Per: time.Minute, Burst: 5}
	c.VoteRate = edge.Rate{N: 10, Per: time.Minute, Burst: 10}
	c.VoterRate = edge.Rate{N: 3, Per: time.Minute, Burst: 3}
	c.CheckRate = edge.Rate{N: 3, Per: time.Minute, Burst: 3}
	c.PollTokenRate = edge.Rate{N: 20, Per: time.Minute, Burst: 20}
	c.IPv6Prefix = 64
	c.JWKS = tableJWKS()
	c.DedupeCapacity = 1024
	return c
}

// Polls returns the polls every case starts with:
//
//	open1   single choice, open, 3 options, live results
//	multi   multi choice (at most 2 of 4), open
//	closed  closed
//	draft   draft
//	later   open, but opens an hour after Epoch
//	ended   open, but closed a minute before Epoch
//	club    open, identity invite (codes InviteCodes)
//	vip     open, identity signed (iss JWTIssuer, aud JWTAudience)
//	scale   open, a scale from -2 to 7 with end labels
//	ranked  open, ranked, at most 3 of 4 options
//	words   open, words, at most 2 per ballot
func Polls() []shared.Poll {
	opts := func(n int) []shared.Option {
		o := make([]shared.Option, n)
		for i := range o {
			o[i].Label = "Option " + strconv.Itoa(i)
		}
		return o
	}
	base := func(id string, st shared.State) shared.Poll {
		return shared.Poll{ID: id, Title: "Poll " + id, Options: opts(3), Kind: shared.KindSingle, State: st, Visibility: shared.VisibilityLive, Version: 1}
	}
	multi := base("multi", shared.StateOpen)
	multi.Kind, multi.MaxChoices, multi.Options = shared.KindMulti, 2, opts(4)
	later := base("later", shared.StateOpen)
	later.OpensAt = Epoch.Add(time.Hour)
	ended := base("ended", shared.StateOpen)
	ended.ClosesAt = Epoch.Add(-time.Minute)
	club := base("club", shared.StateOpen)
	club.Identity = shared.IdentityInvite
	vip := base("vip", shared.StateOpen)
	vip.Identity, vip.JWTIssuer, vip.JWTAudience = shared.IdentitySigned, JWTIssuer, JWTAudience
	scale := base("scale", shared.StateOpen)
	scale.Kind, scale.Options, scale.Scale = shared.KindScale, nil, &shared.Scale{Min: -2, Max: 7, MinLabel: "cold", MaxLabel: "hot"}
	ranked := base("ranked", shared.StateOpen)
	ranked.Kind, ranked.MaxChoices, ranked.Options = shared.KindRanked, 3, opts(4)
	words := base("words", shared.StateOpen)
	words.Kind, words.Options, words.MaxWords = shared.KindWords, nil, 2
	return []shared.Poll{base("open1", shared.StateOpen), multi, base("closed", shared.StateClosed), base("draft", shared.StateDraft), later, ended, club, vip,
		scale, ranked, words}
}

// The signed poll's claims.
const (
	JWTIssuer   = "https://app.example"
	JWTAudience = "edgepoll-vip"
)

// InviteCodes returns the club poll's codes, in canonical form: fixed, so
// every host's run of the table sees the same ones.
func InviteCodes() []invite.Code {
	var out []invite.Code
	for i := range 4 {
		c, err := invite.New(bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, invite.RandomSymbols)))
		if err != nil {
			panic(err)
		}
		out = append(out, c)
	}
	return out
}

// Results fixtures for open1, as the origin would serve them.
const (
	ResultsJSON   = `{"poll":"open1","version":7,"counts":[3,1,0],"total":4,"voters":4,"generated_at":"2026-03-01T12:00:00Z"}`
	ResultsETag   = `"open1-7"`
	ResultsCC     = "public, max-age=1, stale-while-revalidate=5"
	ForbiddenJSON = `{"error":{"code":"forbidden","message":"results are shown after the poll closes"}}`
)

// ResultsMsgpack is open1's results snapshot in the wire format.
func ResultsMsgpack() []byte {
	b, err := shared.MarshalSnapshot(&shared.Snapshot{Poll: "open1", Version: 7, Counts: []uint64{3, 1, 0}, Total: 4, Voters: 4, GeneratedAt: Epoch.UnixMilli()})
	if err != nil {
		panic(err)
	}
	return b
}

// Seed puts the table's polls and results into h.
func Seed(h *FakeHost) {
	for _, p := range Polls() {
		h.PutPoll(p)
	}
	for _, c := range InviteCodes() {
		h.AddInvite("club", c)
	}
	h.SetResults("open1", false, edge.Cached{Status: 200, ContentType: edge.ContentTypeJSON, ETag: ResultsETag, CacheControl: ResultsCC, Body: []byte(ResultsJSON)})
	h.SetResults("open1", true, edge.Cached{Status: 200, ContentType: edge.ContentTypeMsgpack, ETag: `"open1-7-m"`, CacheControl: ResultsCC, Body: ResultsMsgpack()})
	h.SetResults("closed", false, edge.Cached{Status: 403, ContentType: edge.ContentTypeJSON, CacheControl: "public, max-age=5", Body: []byte(ForbiddenJSON)})
}

// Step is one request of a case and what its response must look like.
// Path, header values and Body may name tokens saved by earlier steps as
// {tok:NAME}.
type Step struct {
	Before  func(h *FakeHost) // host controls applied before the request
	Method  string
	Path    string
	Header  map[string]string // CF-Connecting-IP defaults to ClientIP; "" deletes a header
	Body    string
	BodyFn  func(tok func(name string) string) []byte // overrides Body
	Save    string                                    // save the token of a 200 GET poll response under this name
	Want    Want
	Comment string
}

// Want is the expected response.
type Want struct {
	Status int
	Code   shared.Code       // error code, for error responses
	Header map[string]string // exact values; "" means the header must be absent
	Has    map[string]string // the header must contain this substring (case-sensitive)
	Body   string            // exact body, when set
	Votes  *int              // votes recorded by the host after the step, when set (see N)
	Check  func(t *testing.T, r *Result, h *FakeHost)
}

// N returns &n, for Want.Votes.
func N(n int) *int { return &n }

// Result is a recorded response.
type Result struct {
	Status int
	Header http.Header
	Body   []byte
}

// Case is a named sequence of steps run against a fresh host and handler.
type Case struct {
	Name  string
	Steps []Step
}

// MakeHandler builds the handler under test for one case. It must serve
// requests with host's behaviour and cfg's settings, with fresh edge state.
type MakeHandler func(t *testing.T, host edge.Host, cfg edge.Config) http.Handler

// RunTable runs every case of the edge behaviour table as a subtest.
func RunTable(t *testing.T, mk MakeHandler) {
	t.Helper()
	RunCases(t, Cases(), mk)
}

// RunCases runs the given cases, each against a fresh FakeHost seeded with
// Seed and a handler from mk built with TableConfig.
func RunCases(t *testing.T, cases []Case, mk MakeHandler) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			host := NewFakeHost()
			Seed(host)
			h := mk(t, host, TableConfig())
			toks := map[string]string{}
			for i, s := range c.Steps {
				runStep(t, i, s, h, host, toks)
			}
		})
	}
}

var tokRE = regexp.MustCompile(`\{tok:([a-z0-9]+)\}`)

func runStep(t *testing.T, i int, s Step, h http.Handler, host *FakeHost, toks map[string]string) {
	t.Helper()
	tok := func(name string) string {
		v, ok := toks[name]
		if !ok {
			t.Fatalf("step %d: no token saved as %q", i, name)
		}
		return v
	}
	subst := func(s string) string {
		return tokRE.ReplaceAllStringFunc(s, func(m string) string { return tok(tokRE.FindStringSubmatch(m)[1]) })
	}
	if s.Before != nil {
		s.Before(host)
	}
	body := []byte(subst(s.Body))
	if s.BodyFn != nil {
		body = s.BodyFn(tok)
	}
	method := s.Method
	if method == "" {
		method = http.MethodGet
	}
	req := httptest.NewRequest(method, "http://edge.test"+subst(s.Path), bytes.NewReader(body))
	req.Header.Set("CF-Connecting-IP", ClientIP)
	for k, v := range s.Header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, subst(v))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	rb, _ := io.ReadAll(resp.Body)
	r := &Result{Status: resp.StatusCode, Header: resp.Header, Body: rb}
	where := "step " + strconv.Itoa(i) + " (" + method + " " + s.Path + ")"
	if s.Comment != "" {
		where += " " + s.Comment
	}
	w := s.Want
	if r.Status != w.Status {
		t.Fatalf("%s: status %d, want %d; body %s", where, r.Status, w.Status, rb)
	}
	if r.Status >= 400 {
		checkErrorBody(t, where, r, w.Code)
	} else if w.Code != "" {
		t.Errorf("%s: want error code %q but status is %d", where, w.Code, r.Status)
	}
	for k, v := range w.Header {
		got := r.Header.Get(k)
		if v == "" && got != "" {
			t.Errorf("%s: header %s = %q, want it absent", where, k, got)
		} else if v != "" && got != v {
			t.Errorf("%s: header %s = %q, want %q", where, k, got, v)
		}
	}
	for k, v := range w.Has {
		if got := strings.Join(r.Header.Values(k), ", "); !strings.Contains(got, subst(v)) {
			t.Errorf("%s: header %s = %q, want it to contain %q", where, k, got, v)
		}
	}
	if w.Body != "" && string(rb) != w.Body {
		t.Errorf("%s: body %q, want %q", where, rb, w.Body)
	}
	if w.Votes != nil {
		if n := len(host.Votes()); n != *w.Votes {
			t.Errorf("%s: host recorded %d votes, want %d", where, n, *w.Votes)
		}
	}
	if s.Save != "" {
		var pr struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(rb, &pr); err != nil || pr.Token == "" {
			t.Fatalf("%s: no token to save in %s (%v)", where, rb, err)
		}
		toks[s.Save] = pr.Token
	}
	if w.Check != nil {
		w.Check(t, r, host)
	}
}

// checkErrorBody asserts an error response is {"error":{"code","message"}}
// JSON with the wanted code.
func checkErrorBody(t *testing.T, where string, r *Result, code shared.Code) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q, want application/json", where, ct)
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("%s: error body is not JSON: %v: %s", where, err, r.Body)
		return
	}
	if e.Error.Message == "" {
		t.Errorf("%s: error without a message: %s", where, r.Body)
	}
	if code != "" && e.Error.Code != string(code) {
		t.Errorf("%s: error code %q, want %q (%s)", where, e.Error.Code, code, e.Error.Message)
	}
}
