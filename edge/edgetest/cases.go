package edgetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/token"
	"github.com/vmihailenco/msgpack/v5"
)

// Shorthands for the table below.
const (
	post    = http.MethodPost
	get     = http.MethodGet
	jsonCT  = "application/json"
	pollP   = "/v1/polls/open1"
	votesP  = "/v1/polls/open1/votes"
	resP    = "/v1/polls/open1/results"
	cookieA = "ep_open1={tok:a}"
	checkP  = "/v1/polls/open1/vote"
)

// check is a GET /v1/polls/{poll}/vote step whose answer must say counted.
func check(poll string, h map[string]string, counted bool) Step {
	return Step{Path: "/v1/polls/" + poll + "/vote", Header: h, Want: Want{Status: 200,
		Header: map[string]string{"Cache-Control": "no-store", "Content-Type": jsonCT},
		Check: func(t *testing.T, r *Result, _ *FakeHost) {
			t.Helper()
			var c struct {
				Poll    string `json:"poll"`
				Receipt string `json:"receipt"`
				Counted *bool  `json:"counted"`
			}
			if err := json.Unmarshal(r.Body, &c); err != nil || c.Counted == nil {
				t.Fatalf("vote check body %s: %v", r.Body, err)
			}
			if c.Poll != poll || !hexRE.MatchString(c.Receipt) || *c.Counted != counted {
				t.Errorf("vote check %s: want poll %s, a 32-hex receipt, counted %v", r.Body, poll, counted)
			}
		}}}
}

// checkErrorMessage asserts the error body's message.
func checkErrorMessage(msg string) func(t *testing.T, r *Result, h *FakeHost) {
	return func(t *testing.T, r *Result, _ *FakeHost) {
		t.Helper()
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Message != msg {
			t.Errorf("error body %s: want message %q", r.Body, msg)
		}
	}
}

func base64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonHdr() map[string]string { return map[string]string{"Content-Type": jsonCT} }

func hdr(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// issue is a step that gets a token for poll (with IP ip, "" for ClientIP) and saves it as name.
func issue(poll, name string) Step {
	return Step{Path: "/v1/polls/" + poll, Save: name, Want: Want{Status: 200}}
}

func issueFrom(poll, name, ip string) Step {
	s := issue(poll, name)
	s.Header = hdr("CF-Connecting-IP", ip)
	return s
}

// vote is a JSON vote step.
func vote(poll, body string, status int, code shared.Code) Step {
	return Step{Method: post, Path: "/v1/polls/" + poll + "/votes", Header: jsonHdr(), Body: body, Want: Want{Status: status, Code: code}}
}

func withVotes(s Step, n int) Step { s.Want.Votes = N(n); return s }

func withHeader(s Step, kv ...string) Step {
	h := map[string]string{}
	for k, v := range s.Header {
		h[k] = v
	}
	for k, v := range hdr(kv...) {
		h[k] = v
	}
	s.Header = h
	return s
}

// spreadIPs gives the POST steps of a long case distinct client addresses,
// so the per-IP vote limit is not what the case tests.
func spreadIPs(steps []Step) []Step {
	for i := range steps {
		if steps[i].Method == post {
			steps[i] = withHeader(steps[i], "CF-Connecting-IP", "192.0.2."+strconv.Itoa(i))
		}
	}
	return steps
}

var hexRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkAccepted asserts a 202 body {"status":"accepted","poll":id,"receipt":hex}.
func checkAccepted(poll string) func(t *testing.T, r *Result, h *FakeHost) {
	return func(t *testing.T, r *Result, h *FakeHost) {
		t.Helper()
		var a struct {
			Status  string `json:"status"`
			Poll    string `json:"poll"`
			Receipt string `json:"receipt"`
		}
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatalf("202 body not JSON: %v: %s", err, r.Body)
		}
		if a.Status != "accepted" || a.Poll != poll || !hexRE.MatchString(a.Receipt) {
			t.Errorf("202 body %s: want status accepted, poll %s, a 32-hex receipt", r.Body, poll)
		}
	}
}

func accepted(s Step, poll string) Step { s.Want.Check = checkAccepted(poll); return s }

// lastVote asserts the last recorded vote's poll and choices.
func lastVote(poll string, choices ...uint8) func(t *testing.T, r *Result, h *FakeHost) {
	return func(t *testing.T, r *Result, h *FakeHost) {
		t.Helper()
		checkAccepted(poll)(t, r, h)
		vs := h.Votes()
		if len(vs) == 0 {
			t.Fatal("no vote recorded")
		}
		v := vs[len(vs)-1]
		if v.Poll != poll || !bytes.Equal(v.Choices, choices) || v.Voter.IsZero() || v.At != h.Now().UnixMilli() {
			t.Errorf("recorded vote %+v, want poll %s choices %v at %d", v, poll, choices, h.Now().UnixMilli())
		}
		if err := v.Validate(); err != nil {
			t.Errorf("recorded vote invalid: %v", err)
		}
	}
}

// lastWords asserts the last recorded vote's poll and words (no choices).
func lastWords(poll string, words ...string) func(t *testing.T, r *Result, h *FakeHost) {
	return func(t *testing.T, r *Result, h *FakeHost) {
		t.Helper()
		checkAccepted(poll)(t, r, h)
		vs := h.Votes()
		if len(vs) == 0 {
			t.Fatal("no vote recorded")
		}
		v := vs[len(vs)-1]
		if v.Poll != poll || len(v.Choices) != 0 || strings.Join(v.Words, "|") != strings.Join(words, "|") {
			t.Errorf("recorded vote %+v, want poll %s words %q", v, poll, words)
		}
		if err := v.Validate(); err != nil {
			t.Errorf("recorded vote invalid: %v", err)
		}
	}
}

// badVote is a JSON vote step that must be refused with 400 and the given
// message, recording nothing.
func badVote(poll, body, msg string) Step {
	s := withVotes(vote(poll, body, 400, shared.EINVALID), 0)
	if msg != "" {
		s.Want.Check = checkErrorMessage(msg)
	}
	return s
}

// msgpackBallot encodes a MessagePack vote body {"token": tok, key: val}.
func msgpackBallot(tok, key string, val any) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := e.EncodeMapLen(2); err != nil {
		panic(err)
	}
	for _, x := range []any{"token", tok, key, val} {
		if err := e.Encode(x); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

func msgpackVote(tok string, choice any) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(e.EncodeMapLen(2))
	must(e.EncodeString("token"))
	must(e.EncodeString(tok))
	switch c := choice.(type) {
	case int:
		must(e.EncodeString("choice"))
		must(e.EncodeInt(int64(c)))
	case []int:
		must(e.EncodeString("choices"))
		must(e.EncodeArrayLen(len(c)))
		for _, x := range c {
			must(e.EncodeInt(int64(x)))
		}
	}
	return buf.Bytes()
}

// Cases returns the edge behaviour table.
func Cases() []Case {
	tokenBody := func(t *testing.T, r *Result, h *FakeHost) {
		t.Helper()
		var pr struct {
			Poll  shared.Poll `json:"poll"`
			Token string      `json:"token"`
		}
		if err := json.Unmarshal(r.Body, &pr); err != nil {
			t.Fatalf("poll body not JSON: %v: %s", err, r.Body)
		}
		want := Polls()[0]
		if !strings.Contains(string(r.Body), `"identity":"open","identity_note":"one vote per browser, best effort"`) {
			t.Errorf("poll body %s does not state the identity mode and its guarantee", r.Body)
		}
		if pr.Poll.ID != want.ID || pr.Poll.Title != want.Title || len(pr.Poll.Options) != 3 || pr.Poll.Options[2].Label != "Option 2" ||
			pr.Poll.Kind != shared.KindSingle || pr.Poll.State != shared.StateOpen || pr.Poll.Visibility != shared.VisibilityLive || pr.Poll.Version != 1 {
			t.Errorf("poll in body = %+v, want %+v", pr.Poll, want)
		}
		if _, err := token.Verify([]byte(Secret), "open1", pr.Token); err != nil {
			t.Errorf("issued token does not verify: %v", err)
		}
		if c := r.Header.Get("Set-Cookie"); !strings.HasPrefix(c, "ep_open1="+pr.Token+";") {
			t.Errorf("Set-Cookie %q does not carry the body's token", c)
		}
	}
	return []Case{
		{Name: "poll/issue token", Steps: []Step{{
			Path: pollP, Header: hdr("Origin", AllowedOrigin),
			Want: Want{Status: 200, Header: map[string]string{
				"Access-Control-Allow-Origin":      AllowedOrigin,
				"Access-Control-Allow-Credentials": "true",
				"Content-Type":                     jsonCT,
			}, Has: map[string]string{
				"Set-Cookie":    "; Path=/v1/polls/open1; Max-Age=",
				"Cache-Control": "no-store",
				"Vary":          "Origin",
			}, Check: func(t *testing.T, r *Result, h *FakeHost) {
				tokenBody(t, r, h)
				c := r.Header.Get("Set-Cookie")
				for _, attr := range []string{"HttpOnly", "Secure", "SameSite=None"} {
					if !strings.Contains(c, "; "+attr) {
						t.Errorf("Set-Cookie %q lacks %s", c, attr)
					}
				}
			}},
		}}},
		{Name: "poll/multi and dated fields", Steps: []Step{
			{Path: "/v1/polls/multi", Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if !strings.Contains(string(r.Body), `"kind":"multi","max_choices":2`) {
					t.Errorf("multi poll body lacks kind/max_choices: %s", r.Body)
				}
			}}},
			{Path: "/v1/polls/later", Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if !strings.Contains(string(r.Body), `"opens_at":"2026-03-01T13:00:00Z"`) {
					t.Errorf("later poll body lacks opens_at: %s", r.Body)
				}
			}}},
			{Path: "/v1/polls/draft", Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": "ep_draft="}}},
		}},
		{Name: "poll/token reuse", Steps: []Step{
			issue("open1", "a"),
			{Path: pollP, Header: hdr("Cookie", "other=1; "+cookieA), Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": cookieA + ";"}, Body: ""},
				Comment: "cookie reuses the voter"},
			{Path: pollP, Header: hdr("Authorization", "Bearer {tok:a}"), Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": cookieA + ";"}},
				Comment: "bearer reuses the voter"},
			issue("multi", "m"),
			{Path: pollP, Header: hdr("Cookie", "ep_open1={tok:m}"), Save: "b", Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if strings.Contains(r.Header.Get("Set-Cookie"), "ep_open1=;") {
					t.Error("empty cookie set")
				}
			}}, Comment: "a token for another poll is replaced"},
		}},
		{Name: "poll/token for another poll is not reused", Steps: []Step{
			issue("multi", "m"),
			{Path: pollP, Header: hdr("Cookie", "ep_open1={tok:m}"), Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				var pr struct{ Token string }
				_ = json.Unmarshal(r.Body, &pr)
				if _, err := token.Verify([]byte(Secret), "open1", pr.Token); err != nil {
					t.Errorf("replacement token invalid for open1: %v", err)
				}
			}}},
		}},
		{Name: "poll/unknown 404", Steps: []Step{
			{Path: "/v1/polls/nope", Want: Want{Status: 404, Code: shared.ENOTFOUND, Header: map[string]string{"Set-Cookie": ""}}},
			{Path: "/v1/polls/bad.id", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: "/v1/polls/" + strings.Repeat("x", 65), Want: Want{Status: 404, Code: shared.ENOTFOUND}},
		}},
		{Name: "poll/origin unavailable 503", Steps: []Step{
			{Before: func(h *FakeHost) { h.SetPollError(shared.Errorf(shared.EUNAVAILABLE, "origin unreachable")) },
				Path: pollP, Want: Want{Status: 503, Code: shared.EUNAVAILABLE}},
			{Before: func(h *FakeHost) { h.SetPollError(shared.Errorf(shared.EINVALID, "origin sent a malformed poll")) },
				Path: pollP, Want: Want{Status: 503, Code: shared.EUNAVAILABLE}, Comment: "a host's EINVALID is not the voter's fault"},
			{Before: func(h *FakeHost) { h.SetPollError(nil) }, Path: pollP, Want: Want{Status: 200}},
		}},
		{Name: "poll/token issuance rate limited 429", Steps: []Step{
			issue("open1", "a"), issue("open1", "b"), issue("multi", "c"), issue("open1", "d"), issue("draft", "e"),
			{Path: pollP, Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "13"}}},
			{Path: pollP, Header: hdr("Cookie", cookieA), Want: Want{Status: 200}, Comment: "reusing a token is not limited"},
			issueFrom("open1", "f", "203.0.113.9"),
			{Before: func(h *FakeHost) { h.Advance(13 * time.Second) }, Path: pollP, Want: Want{Status: 200}, Comment: "a token per 12 s refills"},
		}},
		{Name: "poll/IPv6 addresses share their /64's token limit", Steps: []Step{
			issueFrom("open1", "a", "2001:db8:1:2::1"), issueFrom("open1", "b", "2001:db8:1:2::2"), issueFrom("multi", "c", "2001:db8:1:2:ffff:1:2:3"),
			issueFrom("open1", "d", "2001:db8:1:2::4"), issueFrom("draft", "e", "2001:db8:1:2::5"),
			{Path: pollP, Header: hdr("CF-Connecting-IP", "2001:db8:1:2:abcd::9"), Want: Want{Status: 429, Code: shared.ERATELIMITED},
				Comment: "a sixth address in the same /64"},
			issueFrom("open1", "f", "2001:db8:1:3::1"),
			issueFrom("open1", "g", "::ffff:192.0.2.1"),
			issueFrom("open1", "h", "192.0.2.1"),
		}},
		{Name: "poll/per-poll token ceiling 429", Steps: func() []Step {
			var steps []Step
			for i := range 20 {
				steps = append(steps, issueFrom("open1", "t"+strconv.Itoa(i), "192.0.2."+strconv.Itoa(i+1)))
			}
			return append(steps,
				Step{Path: pollP, Header: hdr("CF-Connecting-IP", "203.0.113.50"), Want: Want{Status: 429, Code: shared.ERATELIMITED,
					Check: checkErrorMessage("this poll is issuing new voter tokens faster than its ceiling; retry in 4 s")}},
				Step{Path: pollP, Header: hdr("CF-Connecting-IP", "203.0.113.50", "Cookie", "ep_open1={tok:t0}"), Want: Want{Status: 200},
					Comment: "a voter who holds a token is not refused"},
				issueFrom("multi", "m", "203.0.113.50"),
				Step{Before: func(h *FakeHost) { h.Advance(4 * time.Second) }, Path: pollP, Header: hdr("CF-Connecting-IP", "203.0.113.51"), Want: Want{Status: 200}},
			)
		}()},
		{Name: "invite/config without a token", Steps: []Step{
			{Path: "/v1/polls/club", Want: Want{Status: 200, Header: map[string]string{"Set-Cookie": ""}, Check: func(t *testing.T, r *Result, _ *FakeHost) {
				if b := string(r.Body); !strings.Contains(b, `"identity":"invite","identity_note":"one vote per invite code"`) || strings.Contains(b, `"token"`) {
					t.Errorf("invite poll config %s: want the identity, no token", b)
				}
			}}},
		}},
		{Name: "invite/code buys one token, second use 409", Steps: []Step{
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + strings.ToLower(InviteCodes()[0].Format()) + `"}`, Save: "a",
				Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": "ep_club=", "Cache-Control": "no-store"}, Check: func(t *testing.T, r *Result, h *FakeHost) {
					if h.Redeems() != 1 {
						t.Errorf("%d redeems, want 1", h.Redeems())
					}
				}}},
			accepted(withVotes(vote("club", `{"token":"{tok:a}","choice":2}`, 202, ""), 1), "club"),
			{Path: "/v1/polls/club", Header: hdr("Authorization", "Bearer {tok:a}"), Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": "ep_club={tok:a};"}},
				Comment: "GET with the token hands it back"},
			{Method: post, Path: "/v1/polls/club/token", Header: hdr("Content-Type", jsonCT, "CF-Connecting-IP", "203.0.113.8"), Body: `{"code":"` + string(InviteCodes()[0]) + `"}`,
				Want: Want{Status: 409, Code: shared.ECONFLICT}, Comment: "the same code again, from elsewhere"},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[1].Format() + `"}`, Save: "b", Want: Want{Status: 200}},
			accepted(withVotes(vote("club", `{"token":"{tok:b}","choice":0}`, 202, ""), 2), "club"),
			withVotes(vote("club", `{"token":"{tok:b}","choice":1}`, 409, shared.ECONFLICT), 2),
		}},
		{Name: "invite/bad input changes nothing", Steps: spreadIPs([]Step{
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"NOT-A-CODE"}`, Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + string(InviteCodes()[0][:19]) + `X"}`, Want: Want{Status: 400, Code: shared.EINVALID},
				Comment: "a mistyped check symbol"},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[0].Format() + `","extra":1}`, Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"jwt":"e30.e30.e30"}`, Want: Want{Status: 400, Code: shared.EINVALID}, Comment: "a JWT for an invite poll"},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `["code"]`, Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":""}`, Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + strings.Repeat("A", 100) + `"}`, Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/club/token", Header: hdr("Content-Type", "text/plain"), Body: `{"code":"` + InviteCodes()[0].Format() + `"}`, Want: Want{Status: 415, Code: shared.EUNSUPPORTED}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + strings.Repeat(" ", 8000) + `"}`, Want: Want{Status: 413, Code: shared.ETOOLARGE}},
			{Method: post, Path: "/v1/polls/club/token", Header: hdr("Content-Type", jsonCT, "CF-Connecting-IP", "203.0.113.9"), BodyFn: func(func(string) string) []byte {
				c, _ := invite.New(bytes.NewReader(bytes.Repeat([]byte{30}, invite.RandomSymbols)))
				return []byte(`{"code":"` + string(c) + `"}`)
			}, Want: Want{Status: 403, Code: shared.EFORBIDDEN, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if h.Redeems() != 0 {
					t.Errorf("%d codes redeemed by bad requests", h.Redeems())
				}
			}}, Comment: "a well-formed code that does not exist"},
			{Path: "/v1/polls/club/token", Want: Want{Status: 405, Code: shared.EINVALID, Header: map[string]string{"Allow": "POST, OPTIONS"}}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[0].Format() + `"}`, Want: Want{Status: 200},
				Comment: "the code still works"},
		})},
		{Name: "invite/guessing is limited per address", Steps: func() []Step {
			var steps []Step
			for i := range 5 {
				steps = append(steps, Step{Method: post, Path: "/v1/polls/club/token", Header: hdr("Content-Type", jsonCT, "CF-Connecting-IP", "2001:db8:5:5::"+strconv.Itoa(i+1)),
					BodyFn: func(func(string) string) []byte {
						c, _ := invite.New(bytes.NewReader(bytes.Repeat([]byte{byte(40 + i)}, invite.RandomSymbols)))
						return []byte(`{"code":"` + string(c) + `"}`)
					}, Want: Want{Status: 403, Code: shared.EFORBIDDEN}})
			}
			return append(steps, Step{Method: post, Path: "/v1/polls/club/token", Header: hdr("Content-Type", jsonCT, "CF-Connecting-IP", "2001:db8:5:5::99"),
				Body: `{"code":"` + InviteCodes()[3].Format() + `"}`, Want: Want{Status: 429, Code: shared.ERATELIMITED}, Comment: "even a good code, from the same /64"})
		}()},
		{Name: "invite/tokens of another mode do not vote", Steps: []Step{
			{Method: post, Path: "/v1/polls/club/votes", Header: jsonHdr(), BodyFn: func(func(string) string) []byte {
				return []byte(`{"token":"` + token.Issue([]byte(Secret), "club", shared.VoterID{1, 2, 3}) + `","choice":0}`)
			}, Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Votes: N(0)}, Comment: "a token issued while club was an open poll"},
			{Path: "/v1/polls/club", Header: hdr("Cookie", "ep_club="+token.Issue([]byte(Secret), "club", shared.VoterID{1, 2, 3})), Want: Want{Status: 200, Header: map[string]string{"Set-Cookie": ""}}},
		}},
		{Name: "invite/origin unavailable 503", Steps: []Step{
			{Before: func(h *FakeHost) { h.SetInviteError(shared.Errorf(shared.EUNAVAILABLE, "origin unreachable")) },
				Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[2].Format() + `"}`, Want: Want{Status: 503, Code: shared.EUNAVAILABLE}},
		}},
		{Name: "signed/config without a token", Steps: []Step{
			{Path: "/v1/polls/vip", Want: Want{Status: 200, Header: map[string]string{"Set-Cookie": ""}, Check: func(t *testing.T, r *Result, _ *FakeHost) {
				b := string(r.Body)
				if !strings.Contains(b, `"identity":"signed","identity_note":"one vote per account of the signing app","jwt_issuer":"`+JWTIssuer+`","jwt_audience":"`+JWTAudience+`"`) || strings.Contains(b, `"token"`) {
					t.Errorf("signed poll config %s: want identity, issuer, audience, no token", b)
				}
			}}},
		}},
		{Name: "signed/one account is one voter", Steps: spreadIPs([]Step{
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(VoterJWT("alice")), Save: "a", Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": "ep_vip="}}},
			accepted(withVotes(vote("vip", `{"token":"{tok:a}","choice":1}`, 202, ""), 1), "vip"),
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA"}`, claimsFor("alice"), false)), Save: "b", Want: Want{Status: 200},
				Comment: "alice again, another JWT, another address: the same voter"},
			withVotes(vote("vip", `{"token":"{tok:b}","choice":2}`, 409, shared.ECONFLICT), 1),
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(VoterJWT("bob")), Save: "c", Want: Want{Status: 200}},
			accepted(withVotes(vote("vip", `{"token":"{tok:c}","choice":0}`, 202, ""), 2), "vip"),
			{Path: "/v1/polls/vip", Header: hdr("Cookie", "ep_vip={tok:c}"), Want: Want{Status: 200, Has: map[string]string{"Set-Cookie": "ep_vip={tok:c};"}}},
		})},
		{Name: "signed/bad JWTs are 401 and change nothing", Steps: spreadIPs([]Step{
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA","kid":"t1"}`, claimsFor("eve"), true)),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage("JWT refused: bad_signature")}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(strings.TrimSuffix(VoterJWT("eve"), "A") + "B"),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED}, Comment: "signature bytes changed"},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(base64url(`{"alg":"none"}`) + "." + base64url(claimsFor("eve")) + "."),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage(`JWT refused: bad_alg: alg "none" (accepted: EdDSA, ES256)`)}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA","kid":"t9"}`, claimsFor("eve"), false)),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage("JWT refused: unknown_kid: no EdDSA key with this kid")}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA"}`, strings.Replace(claimsFor("eve"), JWTAudience, "other", 1), false)),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage("JWT refused: wrong_aud")}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA"}`, strings.Replace(claimsFor("eve"), JWTIssuer, "https://evil.example", 1), false)),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage("JWT refused: wrong_iss")}},
			{Before: func(h *FakeHost) { h.Advance(5*time.Minute + 30*time.Second) }, Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(VoterJWT("eve")),
				Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Check: checkErrorMessage("JWT refused: expired")}, Comment: "exp plus the 30 s skew has passed"},
			{Before: func(h *FakeHost) { h.Advance(-6 * time.Minute) }, Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(VoterJWT("eve")),
				Want: Want{Status: 200}, Comment: "the same JWT in its window"},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody("not.a.jwt"), Want: Want{Status: 401, Code: shared.EUNAUTHORIZED}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(strings.Repeat("a", 4200)), Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(strings.Repeat("a", 5000)), Want: Want{Status: 413, Code: shared.ETOOLARGE}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[0].Format() + `"}`, Want: Want{Status: 400, Code: shared.EINVALID},
				Comment: "an invite code for a signed poll"},
			{Method: post, Path: "/v1/polls/vip/votes", Header: jsonHdr(), BodyFn: func(func(string) string) []byte {
				return []byte(`{"token":"` + token.Issue([]byte(Secret), "vip", shared.VoterID{9}) + `","choice":0}`)
			}, Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Votes: N(0)}, Comment: "an open-mode token for the signed poll"},
		})},
		{Name: "identity figures counted for the integrity report", Steps: []Step{
			issueFrom("open1", "a", "2001:db8:7:7::1"), issueFrom("multi", "b", "2001:db8:7:7::2"),
			{Path: pollP, Header: hdr("CF-Connecting-IP", "2001:db8:7:7::3", "Cookie", cookieA), Want: Want{Status: 200}, Comment: "a reused token is not a new one"},
			{Method: post, Path: "/v1/polls/vip/token", Header: hdr("Content-Type", jsonCT, "CF-Connecting-IP", "192.0.2.77"), Body: jwtBody(VoterJWT("zoe")), Want: Want{Status: 200}},
			{Method: post, Path: "/v1/polls/vip/token", Header: jsonHdr(), Body: jwtBody(SignJWT(`{"alg":"EdDSA"}`, claimsFor("eve"), true)), Want: Want{Status: 401, Code: shared.EUNAUTHORIZED}},
			{Method: post, Path: "/v1/polls/club/token", Header: jsonHdr(), Body: `{"code":"0000"}`, Want: Want{Status: 400, Code: shared.EINVALID, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if n := h.Issued("open1", "2001:db8:7:7::/64"); n != 1 {
					t.Errorf("open1 tokens counted for 2001:db8:7:7::/64: %d, want 1", n)
				}
				if n := h.Issued("vip", "192.0.2.77"); n != 1 {
					t.Errorf("vip tokens counted for 192.0.2.77: %d, want 1", n)
				}
				if n, m := h.Refused("vip", "bad_signature"), h.Refused("club", "malformed_code"); n != 1 || m != 1 {
					t.Errorf("refusals counted: vip bad_signature %d, club malformed_code %d; want 1 and 1", n, m)
				}
			}}},
		}},
		{Name: "token/open and unknown polls", Steps: []Step{
			{Method: post, Path: "/v1/polls/open1/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[2].Format() + `"}`, Want: Want{Status: 409, Code: shared.ECONFLICT}},
			{Method: post, Path: "/v1/polls/nope/token", Header: jsonHdr(), Body: `{"code":"` + InviteCodes()[2].Format() + `"}`, Want: Want{Status: 404, Code: shared.ENOTFOUND}},
		}},
		{Name: "poll/platform limiter 429", Steps: []Step{
			{Before: func(h *FakeHost) { h.SetAllow(false) }, Path: pollP, Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "10"}}},
		}},

		{Name: "vote/ok then repeat 409", Steps: []Step{
			issue("open1", "a"),
			withVotes(Step{Method: post, Path: votesP, Header: hdr("Content-Type", jsonCT, "Origin", AllowedOrigin), Body: `{"token":"{tok:a}","choice":1}`,
				Want: Want{Status: 202, Check: lastVote("open1", 1), Header: map[string]string{
					"Access-Control-Allow-Origin": AllowedOrigin, "Content-Type": jsonCT, "Cache-Control": "no-store"}}}, 1),
			withVotes(vote("open1", `{"token":"{tok:a}","choice":2}`, 409, shared.ECONFLICT), 1),
			withVotes(vote("open1", ` { "choice" : 0 , "token" : "{tok:a}" } `, 409, shared.ECONFLICT), 1),
		}},
		{Name: "vote/token from cookie or bearer", Steps: []Step{
			issue("open1", "a"), issue("open1", "b"),
			withVotes(withHeader(accepted(vote("open1", `{"choice":0}`, 202, ""), "open1"), "Cookie", cookieA), 1),
			withVotes(withHeader(accepted(vote("open1", `{"choice":2}`, 202, ""), "open1"), "Authorization", "Bearer {tok:b}"), 2),
			withVotes(withHeader(vote("open1", `{"choice":2}`, 409, shared.ECONFLICT), "Authorization", "bearer {tok:b}"), 2),
		}},
		{Name: "vote/missing token 401", Steps: []Step{
			withVotes(vote("open1", `{"choice":0}`, 401, shared.EUNAUTHORIZED), 0),
			withVotes(vote("open1", `{"token":"","choice":0}`, 401, shared.EUNAUTHORIZED), 0),
		}},
		{Name: "vote/bad token 401", Steps: []Step{
			vote("open1", `{"token":"garbage","choice":0}`, 401, shared.EUNAUTHORIZED),
			vote("open1", `{"token":"`+strings.Repeat("A", token.Len)+`","choice":0}`, 401, shared.EUNAUTHORIZED),
			{Method: post, Path: votesP, Header: hdr("Content-Type", jsonCT), BodyFn: func(tok func(string) string) []byte {
				// A real token with its MAC altered.
				t := []byte(token.Issue([]byte("another-secret-another-secret-another"), "open1", shared.VoterID{1}))
				return []byte(`{"token":"` + string(t) + `","choice":0}`)
			}, Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Votes: N(0)}, Comment: "token signed with another secret"},
		}},
		{Name: "vote/token for another poll 401", Steps: []Step{
			issue("multi", "m"),
			withVotes(vote("open1", `{"token":"{tok:m}","choice":0}`, 401, shared.EUNAUTHORIZED), 0),
			withVotes(withHeader(vote("open1", `{"choice":0}`, 401, shared.EUNAUTHORIZED), "Cookie", "ep_open1={tok:m}"), 0),
		}},
		{Name: "vote/unknown poll 404", Steps: []Step{
			issue("open1", "a"),
			{Before: func(h *FakeHost) { h.DeletePoll("open1") }, Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
				Want: Want{Status: 404, Code: shared.ENOTFOUND, Votes: N(0)}, Comment: "poll deleted after the token was issued"},
			vote("bad.id", `{"choice":0}`, 404, shared.ENOTFOUND),
		}},
		{Name: "vote/closed 403", Steps: []Step{
			issue("closed", "c"),
			withVotes(vote("closed", `{"token":"{tok:c}","choice":0}`, 403, shared.EFORBIDDEN), 0),
			issue("ended", "e"),
			withVotes(vote("ended", `{"token":"{tok:e}","choice":0}`, 403, shared.EFORBIDDEN), 0),
		}},
		{Name: "vote/draft 403", Steps: []Step{
			issue("draft", "d"),
			withVotes(vote("draft", `{"token":"{tok:d}","choice":0}`, 403, shared.EFORBIDDEN), 0),
		}},
		{Name: "vote/not yet open 403 then open", Steps: []Step{
			issue("later", "l"),
			withVotes(vote("later", `{"token":"{tok:l}","choice":0}`, 403, shared.EFORBIDDEN), 0),
			func() Step {
				s := accepted(vote("later", `{"token":"{tok:l}","choice":0}`, 202, ""), "later")
				s.Before = func(h *FakeHost) { h.Advance(time.Hour) }
				s.Want.Votes = N(1)
				return s
			}(),
		}},
		{Name: "vote/invalid choice 400", Steps: spreadIPs([]Step{
			issue("open1", "a"),
			vote("open1", `{"token":"{tok:a}","choice":3}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":64}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":99999999999999999999}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":-1}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":1.5}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":"1"}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":null}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}"}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choices":[]}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choices":[0,1]}`, 400, shared.EINVALID),
			withVotes(accepted(vote("open1", `{"token":"{tok:a}","choices":[2]}`, 202, ""), "open1"), 1),
		})},
		{Name: "vote/multi", Steps: []Step{
			issue("multi", "m"), issue("multi", "n"),
			vote("multi", `{"token":"{tok:m}","choices":[0,1,2]}`, 400, shared.EINVALID),
			vote("multi", `{"token":"{tok:m}","choices":[1,1]}`, 400, shared.EINVALID),
			vote("multi", `{"token":"{tok:m}","choices":[4]}`, 400, shared.EINVALID),
			withVotes(Step{Method: post, Path: "/v1/polls/multi/votes", Header: jsonHdr(), Body: `{"token":"{tok:m}","choices":[3,0]}`,
				Want: Want{Status: 202, Check: lastVote("multi", 3, 0)}}, 1),
			withVotes(Step{Method: post, Path: "/v1/polls/multi/votes", Header: jsonHdr(), Body: `{"token":"{tok:n}","choice":2}`,
				Want: Want{Status: 202, Check: lastVote("multi", 2)}}, 2),
		}},
		{Name: "vote/scale", Steps: spreadIPs([]Step{
			{Path: "/v1/polls/scale", Save: "s", Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if b := string(r.Body); !strings.Contains(b, `"kind":"scale","scale":{"min":-2,"max":7,"min_label":"cold","max_label":"hot"}`) || strings.Contains(b, `"options"`) {
					t.Errorf("scale poll body: %s", b)
				}
			}}},
			issue("scale", "t"), issue("scale", "u"),
			badVote("scale", `{"token":"{tok:s}","value":8}`, "value must be an integer from -2 to 7"),
			badVote("scale", `{"token":"{tok:s}","value":-3}`, "value must be an integer from -2 to 7"),
			badVote("scale", `{"token":"{tok:s}","value":99999999999999999999999}`, "value must be an integer from -2 to 7"),
			badVote("scale", `{"token":"{tok:s}","value":-99999999999999999999999}`, "value must be an integer from -2 to 7"),
			badVote("scale", `{"token":"{tok:s}","value":1.5}`, ""),
			badVote("scale", `{"token":"{tok:s}","value":01}`, ""),
			badVote("scale", `{"token":"{tok:s}","value":"3"}`, ""),
			badVote("scale", `{"token":"{tok:s}","value":-}`, ""),
			badVote("scale", `{"token":"{tok:s}","choice":3}`, `this poll takes "value", not "choice"`),
			badVote("scale", `{"token":"{tok:s}","choices":[3]}`, `this poll takes "value", not "choices"`),
			badVote("scale", `{"token":"{tok:s}","words":["x"]}`, `this poll takes "value", not "words"`),
			badVote("scale", `{"token":"{tok:s}","value":3,"choice":3}`, ""),
			issue("open1", "o"),
			badVote("open1", `{"token":"{tok:o}","value":1}`, `this poll takes "choice" or "choices", not "value"`),
			withVotes(Step{Method: post, Path: "/v1/polls/scale/votes", Header: jsonHdr(), Body: `{"token":"{tok:s}","value":-2}`,
				Want: Want{Status: 202, Check: lastVote("scale", 0)}}, 1),
			withVotes(vote("scale", `{"token":"{tok:s}","value":5}`, 409, shared.ECONFLICT), 1),
			withVotes(Step{Method: post, Path: "/v1/polls/scale/votes", Header: jsonHdr(), Body: `{"token":"{tok:t}","value":7}`,
				Want: Want{Status: 202, Check: lastVote("scale", 9)}}, 2),
			withVotes(Step{Method: post, Path: "/v1/polls/scale/votes", Header: hdr("Content-Type", shared.ContentTypeMsgpack),
				BodyFn: func(tok func(string) string) []byte { return msgpackBallot(tok("u"), "value", int64(-1)) },
				Want:   Want{Status: 202, Check: lastVote("scale", 1)}}, 3),
		})},
		{Name: "vote/ranked", Steps: spreadIPs([]Step{
			issue("ranked", "r"), issue("ranked", "q"),
			badVote("ranked", `{"token":"{tok:r}","choices":[0,1,2,3]}`, "at most 3 choices allowed"),
			badVote("ranked", `{"token":"{tok:r}","choices":[2,2]}`, "choice 2 given twice"),
			badVote("ranked", `{"token":"{tok:r}","choices":[4]}`, "choice 4 out of range 0-3"),
			badVote("ranked", `{"token":"{tok:r}","choices":[]}`, "a vote needs a choice"),
			badVote("ranked", `{"token":"{tok:r}","value":1}`, `this poll takes "choice" or "choices", not "value"`),
			badVote("ranked", `{"token":"{tok:r}","words":["a"]}`, ""),
			withVotes(Step{Method: post, Path: "/v1/polls/ranked/votes", Header: jsonHdr(), Body: `{"token":"{tok:r}","choices":[2,0,3]}`,
				Want: Want{Status: 202, Check: lastVote("ranked", 2, 0, 3)}}, 1),
			withVotes(Step{Method: post, Path: "/v1/polls/ranked/votes", Header: hdr("Content-Type", shared.ContentTypeMsgpack),
				BodyFn: func(tok func(string) string) []byte { return msgpackVote(tok("q"), []int{3, 1}) },
				Want:   Want{Status: 202, Check: lastVote("ranked", 3, 1)}}, 2),
		})},
		{Name: "vote/words", Steps: spreadIPs([]Step{
			{Path: "/v1/polls/words", Save: "w", Want: Want{Status: 200, Check: func(t *testing.T, r *Result, h *FakeHost) {
				if b := string(r.Body); !strings.Contains(b, `"kind":"words","max_words":2`) || strings.Contains(b, `"options"`) {
					t.Errorf("words poll body: %s", b)
				}
			}}},
			issue("words", "x"), issue("words", "y"),
			badVote("words", `{"token":"{tok:w}","words":["no way"]}`, "word 1: a word may contain only letters, digits and inner hyphens or apostrophes"),
			badVote("words", `{"token":"{tok:w}","words":["ok","-dash"]}`, "word 2: a word may contain only letters, digits and inner hyphens or apostrophes"),
			badVote("words", `{"token":"{tok:w}","words":["`+strings.Repeat("a", 25)+`"]}`, "word 1: a word may have at most 24 characters"),
			badVote("words", `{"token":"{tok:w}","words":["  "]}`, "word 1: a word must not be empty"),
			badVote("words", `{"token":"{tok:w}","words":["Yes","YES"]}`, `word 2: "YES" repeats word 1`),
			badVote("words", `{"token":"{tok:w}","words":["a","b","c"]}`, "at most 2 words allowed"),
			badVote("words", `{"token":"{tok:w}","words":["a","b","c","d"]}`, "at most 3 words allowed"),
			badVote("words", `{"token":"{tok:w}","words":[]}`, "a vote needs a word"),
			badVote("words", `{"token":"{tok:w}","words":[1]}`, ""),
			badVote("words", `{"token":"{tok:w}","words":"amazing"}`, ""),
			badVote("words", `{"token":"{tok:w}","choice":0}`, `this poll takes "words", not "choice"`),
			badVote("words", `{"token":"{tok:w}","value":1}`, `this poll takes "words", not "value"`),
			issue("open1", "o"),
			badVote("open1", `{"token":"{tok:o}","words":["a"]}`, `this poll takes "choice" or "choices", not "words"`),
			withVotes(Step{Method: post, Path: "/v1/polls/words/votes", Header: jsonHdr(), Body: `{"token":"{tok:w}","words":["Amazing","Don\u2019t"]}`,
				Want: Want{Status: 202, Check: lastWords("words", "amazing", "don't")}}, 1),
			withVotes(vote("words", `{"token":"{tok:w}","words":["again"]}`, 409, shared.ECONFLICT), 1),
			withVotes(Step{Method: post, Path: "/v1/polls/words/votes", Header: jsonHdr(), Body: `{"token":"{tok:x}","words":["ＳＴＲＡßＥ"]}`,
				Want: Want{Status: 202, Check: lastWords("words", "strasse")}}, 2),
			withVotes(Step{Method: post, Path: "/v1/polls/words/votes", Header: hdr("Content-Type", shared.ContentTypeMsgpack),
				BodyFn: func(tok func(string) string) []byte { return msgpackBallot(tok("y"), "words", []string{"Café"}) },
				Want:   Want{Status: 202, Check: lastWords("words", "café")}}, 3),
		})},
		{Name: "vote/too large 413", Steps: []Step{
			issue("open1", "a"),
			withVotes(vote("open1", `{"token":"{tok:a}","choice":0,"pad":"`+strings.Repeat("x", 5000)+`"}`, 413, shared.ETOOLARGE), 0),
			withVotes(vote("open1", `{"token":"{tok:a}","choice":0}`+strings.Repeat(" ", 4100), 413, shared.ETOOLARGE), 0),
			withVotes(accepted(vote("open1", `{"token":"{tok:a}","choice":0}`+strings.Repeat(" ", 4000), 202, ""), "open1"), 1),
		}},
		{Name: "vote/wrong content type 415", Steps: []Step{
			issue("open1", "a"),
			withHeader(vote("open1", `{"token":"{tok:a}","choice":0}`, 415, shared.EUNSUPPORTED), "Content-Type", "text/plain"),
			withHeader(vote("open1", `token={tok:a}&choice=0`, 415, shared.EUNSUPPORTED), "Content-Type", "application/x-www-form-urlencoded"),
			withVotes(withHeader(vote("open1", `{"token":"{tok:a}","choice":0}`, 415, shared.EUNSUPPORTED), "Content-Type", ""), 0),
			withVotes(withHeader(accepted(vote("open1", `{"token":"{tok:a}","choice":0}`, 202, ""), "open1"), "Content-Type", "Application/JSON; charset=utf-8"), 1),
		}},
		{Name: "vote/malformed JSON 400", Steps: spreadIPs([]Step{
			issue("open1", "a"),
			vote("open1", `{"token":`, 400, shared.EINVALID),
			vote("open1", ``, 400, shared.EINVALID),
			vote("open1", `[0]`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":0}x`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":0}{}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":0,}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":0,"extra":1}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","choice":0,"choices":[1]}`, 400, shared.EINVALID),
			vote("open1", `{"token":"{tok:a}","token":"{tok:a}","choice":0}`, 400, shared.EINVALID),
			vote("open1", `{'token':'{tok:a}','choice':0}`, 400, shared.EINVALID),
			withVotes(vote("open1", "{\"token\":\"{tok:a}\u0001\",\"choice\":0}", 400, shared.EINVALID), 0),
		})},
		{Name: "vote/msgpack 202", Steps: []Step{
			issue("open1", "a"), issue("multi", "m"),
			{Method: post, Path: votesP, Header: hdr("Content-Type", shared.ContentTypeMsgpack), BodyFn: func(tok func(string) string) []byte { return msgpackVote(tok("a"), 2) },
				Want: Want{Status: 202, Check: lastVote("open1", 2), Votes: N(1), Header: map[string]string{"Content-Type": jsonCT}}},
			{Method: post, Path: votesP, Header: hdr("Content-Type", shared.ContentTypeMsgpack), BodyFn: func(tok func(string) string) []byte { return msgpackVote(tok("a"), 2) },
				Want: Want{Status: 409, Code: shared.ECONFLICT, Votes: N(1)}},
			{Method: post, Path: "/v1/polls/multi/votes", Header: hdr("Content-Type", shared.ContentTypeMsgpack), BodyFn: func(tok func(string) string) []byte { return msgpackVote(tok("m"), []int{1, 3}) },
				Want: Want{Status: 202, Check: lastVote("multi", 1, 3), Votes: N(2)}},
			{Method: post, Path: votesP, Header: hdr("Content-Type", shared.ContentTypeMsgpack), Body: "\x92\x01\x02",
				Want: Want{Status: 400, Code: shared.EINVALID}, Comment: "an array, not a map"},
			{Method: post, Path: votesP, Header: hdr("Content-Type", shared.ContentTypeMsgpack), BodyFn: func(tok func(string) string) []byte { return msgpackVote(tok("a"), 70) },
				Want: Want{Status: 400, Code: shared.EINVALID}},
			{Method: post, Path: votesP, Header: hdr("Content-Type", shared.ContentTypeMsgpack), BodyFn: func(tok func(string) string) []byte {
				b := msgpackVote(tok("a"), 1)
				return b[:len(b)-3]
			}, Want: Want{Status: 400, Code: shared.EINVALID}, Comment: "truncated"},
		}},
		{Name: "vote/per-IP rate limit 429", Steps: func() []Step {
			s := []Step{issue("open1", "a")}
			for i := 0; i < 10; i++ {
				s = append(s, vote("open1", `{"token":"{tok:a}","choice":9}`, 400, shared.EINVALID))
			}
			s = append(s,
				withVotes(Step{Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
					Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "7"}}}, 0), // 6 s, and the refusal's charge of 6 s/32
				withVotes(withHeader(accepted(vote("open1", `{"token":"{tok:a}","choice":0}`, 202, ""), "open1"), "CF-Connecting-IP", "203.0.113.50"), 1),
			)
			return s
		}()},
		{Name: "vote/per-voter rate limit 429", Steps: []Step{
			issue("open1", "a"),
			withVotes(accepted(vote("open1", `{"token":"{tok:a}","choice":0}`, 202, ""), "open1"), 1),
			vote("open1", `{"token":"{tok:a}","choice":0}`, 409, shared.ECONFLICT),
			vote("open1", `{"token":"{tok:a}","choice":0}`, 409, shared.ECONFLICT),
			{Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
				Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "21"}}, Comment: "20 s, and the refusal's charge"},
			{Before: func(h *FakeHost) { h.Advance(21 * time.Second) }, Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
				Want: Want{Status: 409, Code: shared.ECONFLICT, Votes: N(1)}, Comment: "after Retry-After the voter is let through (and is still a repeat)"},
		}},
		{Name: "vote/platform limiter 429", Steps: []Step{
			issue("open1", "a"),
			{Before: func(h *FakeHost) { h.SetAllow(false) }, Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
				Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "10"}, Votes: N(0)}},
			{Before: func(h *FakeHost) { h.SetAllow(true) }, Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":0}`,
				Want: Want{Status: 202, Votes: N(1)}},
		}},
		{Name: "vote/submit failure 503 then retry", Steps: []Step{
			issue("open1", "a"),
			{Before: func(h *FakeHost) { h.FailSubmits(1) }, Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":1}`,
				Want: Want{Status: 503, Code: shared.EUNAVAILABLE, Votes: N(0)}},
			withVotes(Step{Method: post, Path: votesP, Header: jsonHdr(), Body: `{"token":"{tok:a}","choice":1}`,
				Want: Want{Status: 202, Check: lastVote("open1", 1)}}, 1),
			withVotes(vote("open1", `{"token":"{tok:a}","choice":1}`, 409, shared.ECONFLICT), 1),
		}},
		{Name: "vote/poll lookup unavailable 503", Steps: []Step{
			issue("open1", "a"),
			{Before: func(h *FakeHost) { h.SetPollError(shared.Errorf(shared.EUNAVAILABLE, "origin unreachable")) }, Method: post, Path: votesP, Header: jsonHdr(),
				Body: `{"token":"{tok:a}","choice":1}`, Want: Want{Status: 503, Code: shared.EUNAVAILABLE, Votes: N(0)}},
			{Before: func(h *FakeHost) { h.SetPollError(nil) }, Method: post, Path: votesP, Header: jsonHdr(),
				Body: `{"token":"{tok:a}","choice":1}`, Want: Want{Status: 202, Votes: N(1)}},
		}},

		{Name: "results/200 and 304", Steps: []Step{
			{Path: resP, Header: hdr("Origin", AllowedOrigin), Want: Want{Status: 200, Body: ResultsJSON, Header: map[string]string{
				"ETag": ResultsETag, "Cache-Control": ResultsCC, "Content-Type": jsonCT, "Access-Control-Allow-Origin": AllowedOrigin},
				Has: map[string]string{"Vary": "Accept"}}},
			{Path: resP, Header: hdr("If-None-Match", ResultsETag), Want: Want{Status: 304, Header: map[string]string{"ETag": ResultsETag, "Cache-Control": ResultsCC}}},
			{Path: resP, Header: hdr("If-None-Match", `"x", W/`+ResultsETag), Want: Want{Status: 304}},
			{Path: resP, Header: hdr("If-None-Match", "*"), Want: Want{Status: 304}},
			{Path: resP, Header: hdr("If-None-Match", `"open1-6"`), Want: Want{Status: 200, Body: ResultsJSON}},
		}},
		{Name: "results/msgpack", Steps: []Step{
			{Path: resP, Header: hdr("Accept", shared.ContentTypeMsgpack), Want: Want{Status: 200, Header: map[string]string{
				"Content-Type": shared.ContentTypeMsgpack, "ETag": `"open1-7-m"`, "Cache-Control": ResultsCC},
				Check: func(t *testing.T, r *Result, h *FakeHost) {
					var s shared.Snapshot
					if err := shared.UnmarshalSnapshot(r.Body, &s); err != nil || s.Poll != "open1" || s.Total != 4 {
						t.Errorf("msgpack snapshot %+v, %v", s, err)
					}
				}}},
			{Path: resP, Header: hdr("Accept", shared.ContentTypeMsgpack, "If-None-Match", `"open1-7-m"`), Want: Want{Status: 304}},
		}},
		{Name: "results/origin status passes through", Steps: []Step{
			{Path: "/v1/polls/closed/results", Want: Want{Status: 403, Code: shared.EFORBIDDEN, Body: ForbiddenJSON, Header: map[string]string{"Cache-Control": "public, max-age=5"}}},
			{Path: "/v1/polls/nope/results", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
		}},

		{Name: "cors/preflight", Steps: []Step{
			{Method: http.MethodOptions, Path: votesP, Header: hdr("Origin", AllowedOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"),
				Want: Want{Status: 204, Header: map[string]string{
					"Access-Control-Allow-Origin":      AllowedOrigin,
					"Access-Control-Allow-Credentials": "true",
					"Access-Control-Allow-Methods":     "POST, OPTIONS",
					"Access-Control-Allow-Headers":     "Content-Type, Authorization",
					"Access-Control-Max-Age":           "86400",
				}, Has: map[string]string{"Vary": "Origin"}}},
			{Method: http.MethodOptions, Path: pollP, Header: hdr("Origin", AllowedOrigin, "Access-Control-Request-Method", "GET"),
				Want: Want{Status: 204, Header: map[string]string{"Access-Control-Allow-Methods": "GET, OPTIONS"}}},
			{Method: http.MethodOptions, Path: resP, Header: hdr("Origin", OtherOrigin, "Access-Control-Request-Method", "GET"),
				Want:    Want{Status: 204, Header: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Credentials": ""}},
				Comment: "origin not allowed"},
			{Method: http.MethodOptions, Path: "/v1/nothing", Header: hdr("Origin", AllowedOrigin), Want: Want{Status: 404, Code: shared.ENOTFOUND}},
		}},
		{Name: "cors/error responses carry CORS", Steps: []Step{
			withHeader(vote("open1", `{"choice":0}`, 401, shared.EUNAUTHORIZED), "Origin", AllowedOrigin),
			{Path: "/v1/polls/nope", Header: hdr("Origin", OtherOrigin), Want: Want{Status: 404, Code: shared.ENOTFOUND, Header: map[string]string{"Access-Control-Allow-Origin": ""}, Has: map[string]string{"Vary": "Origin"}}},
			{Path: "/v1/polls/nope", Header: hdr("Origin", AllowedOrigin), Want: Want{Status: 404, Code: shared.ENOTFOUND, Header: map[string]string{"Access-Control-Allow-Origin": AllowedOrigin}}},
		}},
		{Name: "routes/404 and 405", Steps: []Step{
			{Path: "/", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: "/v1/polls/", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: "/v1/polls/open1/", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: "/v1/polls/open1/foo", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: "/v1/polls/open1/votes/x", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Method: http.MethodDelete, Path: pollP, Want: Want{Status: 405, Header: map[string]string{"Allow": "GET, OPTIONS"}}},
			{Path: votesP, Want: Want{Status: 405, Header: map[string]string{"Allow": "POST, OPTIONS"}}},
			{Method: http.MethodPut, Path: votesP, Want: Want{Status: 405, Header: map[string]string{"Allow": "POST, OPTIONS"}}},
			{Method: post, Path: resP, Want: Want{Status: 405, Header: map[string]string{"Allow": "GET, OPTIONS"}}},
			{Method: post, Path: pollP, Header: jsonHdr(), Body: `{}`, Want: Want{Status: 405, Header: map[string]string{"Allow": "GET, OPTIONS"}}},
		}},
		{Name: "vote/closes_at exact to the millisecond", Steps: []Step{
			{Before: func(h *FakeHost) {
				p := Polls()[0]
				p.ID, p.ClosesAt = "closing", Epoch.Add(time.Second)
				h.PutPoll(p)
			}, Path: "/v1/polls/closing", Save: "a", Want: Want{Status: 200}},
			issueFrom("closing", "b", "192.0.2.9"),
			func() Step {
				s := vote("closing", `{"token":"{tok:a}","choice":1}`, 202, "")
				s.Before = func(h *FakeHost) { h.Advance(999 * time.Millisecond) }
				s.Want.Votes = N(1)
				s.Want.Check = lastVote("closing", 1)
				s.Comment = "one millisecond before closes_at"
				return s
			}(),
			func() Step {
				s := vote("closing", `{"token":"{tok:b}","choice":1}`, 403, shared.EFORBIDDEN)
				s.Before = func(h *FakeHost) { h.Advance(time.Millisecond) }
				s.Want.Votes = N(1)
				s.Want.Check = checkErrorMessage(shared.RejectClosed)
				s.Comment = "at closes_at"
				return s
			}(),
		}},
		{Name: "check/counted after the vote", Steps: []Step{
			issue("open1", "a"),
			check("open1", hdr("Authorization", "Bearer {tok:a}"), false),
			accepted(withVotes(vote("open1", `{"token":"{tok:a}","choice":2}`, 202, ""), 1), "open1"),
			check("open1", hdr("Authorization", "Bearer {tok:a}"), true),
			check("open1", hdr("Cookie", cookieA), true),
			func() Step {
				s := check("open1", hdr("Cookie", cookieA, "Origin", AllowedOrigin), true)
				s.Before = func(h *FakeHost) { h.Advance(20 * time.Second) }
				s.Comment = "a check per 20 s refills"
				s.Want.Header["Access-Control-Allow-Origin"] = AllowedOrigin
				return s
			}(),
			{Method: http.MethodOptions, Path: checkP, Header: hdr("Origin", AllowedOrigin, "Access-Control-Request-Method", "GET"),
				Want: Want{Status: 204, Header: map[string]string{"Access-Control-Allow-Methods": "GET, OPTIONS"}}},
		}},
		{Name: "check/errors", Steps: []Step{
			issue("open1", "a"),
			issue("multi", "m"),
			{Path: checkP, Want: Want{Status: 401, Code: shared.EUNAUTHORIZED, Header: map[string]string{"Cache-Control": "no-store"}}, Comment: "no token"},
			{Path: checkP, Header: hdr("Authorization", "Bearer not-a-token"), Want: Want{Status: 401, Code: shared.EUNAUTHORIZED}},
			{Path: checkP, Header: hdr("Authorization", "Bearer {tok:m}"), Want: Want{Status: 401, Code: shared.EUNAUTHORIZED}, Comment: "another poll's token"},
			{Method: post, Path: checkP, Header: jsonHdr(), Body: `{}`, Want: Want{Status: 405, Header: map[string]string{"Allow": "GET, OPTIONS"}}},
			{Path: "/v1/polls/bad.id/vote", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Path: checkP + "/x", Want: Want{Status: 404, Code: shared.ENOTFOUND}},
			{Before: func(h *FakeHost) { h.SetVotedError(shared.Errorf(shared.EUNAVAILABLE, "origin unreachable")) },
				Path: checkP, Header: hdr("Authorization", "Bearer {tok:a}"), Want: Want{Status: 503, Code: shared.EUNAVAILABLE}},
			{Before: func(h *FakeHost) { h.SetVotedError(nil); h.DeletePoll("open1") },
				Path: checkP, Header: hdr("Authorization", "Bearer {tok:a}"), Want: Want{Status: 404, Code: shared.ENOTFOUND}, Comment: "poll deleted after the token was issued"},
		}},
		{Name: "check/rate limited per voter", Steps: []Step{
			issue("open1", "a"),
			issueFrom("open1", "b", "192.0.2.8"),
			check("open1", hdr("Authorization", "Bearer {tok:a}"), false),
			check("open1", hdr("Authorization", "Bearer {tok:a}"), false),
			check("open1", hdr("Authorization", "Bearer {tok:a}"), false),
			{Path: checkP, Header: hdr("Authorization", "Bearer {tok:a}"), Want: Want{Status: 429, Code: shared.ERATELIMITED, Header: map[string]string{"Retry-After": "21"}}},
			check("open1", hdr("Authorization", "Bearer {tok:b}"), false),
		}},
		{Name: "vote/many voters one poll", Steps: func() []Step {
			var s []Step
			for i := 0; i < 12; i++ {
				ip := "192.0.2." + strconv.Itoa(100+i/4)
				name := "v" + strconv.Itoa(i)
				s = append(s, issueFrom("multi", name, ip))
				v := withHeader(vote("multi", `{"token":"{tok:`+name+`}","choices":[`+strconv.Itoa(i%4)+`]}`, 202, ""), "CF-Connecting-IP", ip)
				v.Want.Votes = N(i + 1)
				s = append(s, v)
			}
			return s
		}()},
	}
}
