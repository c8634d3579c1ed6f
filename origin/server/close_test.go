package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

func decodePoll(t *testing.T, r resp) shared.Poll {
	t.Helper()
	var p shared.Poll
	if r.status != 200 || json.Unmarshal(r.body, &p) != nil {
		t.Fatalf("poll answer %d %s", r.status, r.body)
	}
	return p
}

// A default close is announced CloseLead ahead; votes received before it
// count, votes at or after it are refused, and changes that would refuse a
// vote some edge acknowledged are conflicts while the poll takes votes.
func TestAnnouncedClose(t *testing.T) {
	e := newEnv(t)
	e.createPoll("live", nil)
	now := time.Unix(0, e.now.Load())
	p := decodePoll(t, e.admin("POST", "/polls/live/close", nil))
	if p.State != shared.StateOpen || !p.ClosesAt.Equal(now.Add(shared.CloseLead).Truncate(time.Millisecond)) {
		t.Fatalf("announced close: state %s closes_at %v, want open until about now+%s", p.State, p.ClosesAt, shared.CloseLead)
	}
	// Closing again does not push the close further out.
	again := decodePoll(t, e.admin("POST", "/polls/live/close", nil))
	if !again.ClosesAt.Equal(p.ClosesAt) {
		t.Fatalf("second close moved closes_at %v -> %v", p.ClosesAt, again.ClosesAt)
	}
	p = again

	for name, body := range map[string]string{
		"bring closes_at forward inside the lead": fmt.Sprintf(`{"closes_at":%q}`, now.Add(time.Second).UTC().Format(time.RFC3339Nano)),
		"drop an option":         `{"options":[{"label":"red"},{"label":"green"}]}`,
		"relabel an option":      `{"options":[{"label":"red"},{"label":"GREEN"},{"label":"blue"}]}`,
		"change the kind":        `{"kind":"multi","max_choices":2}`,
		"change the identity":    `{"identity":"invite"}`,
		"make it signed":         `{"identity":"signed","jwt_issuer":"https://app.example","jwt_audience":"polls"}`,
		"start the window later": fmt.Sprintf(`{"opens_at":%q}`, now.Add(time.Second).UTC().Format(time.RFC3339Nano)),
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.admin("PATCH", "/polls/live", body), 409, shared.ECONFLICT)
		})
	}
	if got := decodePoll(t, e.admin("GET", "/polls/live", nil)); got.Version != p.Version {
		t.Fatalf("refused changes bumped the version %d -> %d", p.Version, got.Version)
	}
	// Moving the close later, or a harmless change, is fine.
	later := p.ClosesAt.Add(time.Minute)
	if got := decodePoll(t, e.admin("PATCH", "/polls/live", fmt.Sprintf(`{"closes_at":%q,"title":"Still?"}`, later.UTC().Format(time.RFC3339Nano)))); !got.ClosesAt.Equal(later) {
		t.Fatalf("closes_at later: %v", got.ClosesAt)
	}
	wantError(t, e.admin("DELETE", "/polls/live", nil), 409, shared.ECONFLICT)

	// Votes just before and at the close.
	b := batch("live", []int{1, 2}, func(int) uint8 { return 0 })
	b.Votes[0].At = later.UnixMilli() - 1
	b.Votes[1].At = later.UnixMilli()
	rec := e.ingest(b)
	if rec.Accepted != 1 || rec.Rejected[shared.ReasonIndex(shared.RejectClosed)] != 1 {
		t.Fatalf("boundary receipt %+v, want 1 accepted and 1 poll_closed", rec)
	}
	var res origin.Results
	r := e.admin("GET", "/polls/live/results", nil)
	if err := json.Unmarshal(r.body, &res); err != nil || res.Voters != 1 || res.Rejected[shared.RejectClosed] != 1 || res.State != "open" {
		t.Fatalf("results %s: want an open poll, 1 voter and rejected poll_closed 1", r.body)
	}
	e.advance(later.Sub(now))
	r = e.admin("GET", "/polls/live/results", nil)
	if err := json.Unmarshal(r.body, &res); err != nil || res.State != "closed" {
		t.Fatalf("results at closes_at %s: want state closed", r.body)
	}
	e.advance(-later.Sub(now))

	// Once the window ended the poll is no longer live: anything goes.
	e.advance(later.Sub(now) + time.Millisecond)
	if got := decodePoll(t, e.admin("POST", "/polls/live/close", nil)); got.State != shared.StateClosed {
		t.Fatalf("close after the window: state %s", got.State)
	}
	if r := e.admin("DELETE", "/polls/live", nil); r.status != 204 {
		t.Fatalf("delete after close: %d %s", r.status, r.body)
	}
}

func TestImmediateCloseAndForcedDelete(t *testing.T) {
	e := newEnv(t)
	e.createPoll("now", nil)
	if p := decodePoll(t, e.admin("POST", "/polls/now/close?now=true", nil)); p.State != shared.StateClosed {
		t.Fatalf("immediate close: state %s", p.State)
	}
	wantError(t, e.admin("POST", "/polls/now/close?now=maybe", nil), 400, shared.EINVALID)
	e.createPoll("gone", nil)
	wantError(t, e.admin("DELETE", "/polls/gone?force=perhaps", nil), 400, shared.EINVALID)
	if r := e.admin("DELETE", "/polls/gone?force=true", nil); r.status != 204 {
		t.Fatalf("forced delete: %d %s", r.status, r.body)
	}
}

// GET /v1/polls/{id}/voters/{voter} answers edges only, and only about
// the voter asked for.
func TestVoterCheck(t *testing.T) {
	e := newEnv(t)
	e.createPoll("vc", nil)
	e.ingest(batch("vc", []int{7}, func(int) uint8 { return 1 }))
	get := func(path string, k sign.Key) resp {
		return e.do("GET", path, nil, signedHeaders(k, time.Now(), sign.RequestBody("GET", path)))
	}
	counted := voter(7)
	other := voter(8)
	if r := get("/v1/polls/vc/voters/"+counted.String(), testKey); r.status != 200 || !bytes.Equal(r.body, []byte(`{"counted":true}`)) || r.header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("counted voter: %d %v %s", r.status, r.header, r.body)
	}
	if r := get("/v1/polls/vc/voters/"+other.String(), testKey); r.status != 200 || !bytes.Equal(r.body, []byte(`{"counted":false}`)) {
		t.Fatalf("other voter: %d %s", r.status, r.body)
	}
	wantError(t, get("/v1/polls/nope/voters/"+counted.String(), testKey), 404, shared.ENOTFOUND)
	wantError(t, get("/v1/polls/vc/voters/xyz", testKey), 400, shared.EINVALID)
	wantError(t, get("/v1/polls/vc/voters/"+shared.VoterID{}.String(), testKey), 400, shared.EINVALID)
	wantError(t, get("/v1/polls/vc/voters/"+counted.String(), sign.Key{ID: testKey.ID, Secret: []byte("another-secret-of-at-least-32-bytes!!")}), 401, shared.EUNAUTHORIZED)
	// A signature for one voter does not answer for another.
	path := "/v1/polls/vc/voters/" + other.String()
	wantError(t, e.do("GET", "/v1/polls/vc/voters/"+counted.String(), nil, signedHeaders(testKey, time.Now(), sign.RequestBody("GET", path))), 401, shared.EUNAUTHORIZED)
	wantError(t, e.do("GET", "/v1/polls/vc/voters/"+counted.String(), nil, nil), 401, shared.EUNAUTHORIZED)
	wantError(t, e.do("POST", "/v1/polls/vc/voters/"+counted.String(), nil, nil), 405, shared.EINVALID)
}

func TestLiveRules(t *testing.T) {
	now := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	open := shared.Poll{ID: "p", State: shared.StateOpen, Kind: shared.KindSingle, Options: []shared.Option{{Label: "a"}, {Label: "b"}}}
	cases := []struct {
		name string
		p    func(p *shared.Poll)
		live bool
	}{
		{"open without a window", func(*shared.Poll) {}, true},
		{"draft", func(p *shared.Poll) { p.State = shared.StateDraft }, false},
		{"closed", func(p *shared.Poll) { p.State = shared.StateClosed }, false},
		{"window ended", func(p *shared.Poll) { p.ClosesAt = now }, false},
		{"window ends later", func(p *shared.Poll) { p.ClosesAt = now.Add(time.Millisecond) }, true},
		{"opens inside the lead", func(p *shared.Poll) { p.OpensAt = now.Add(shared.CloseLead - time.Millisecond) }, true},
		{"opens beyond the lead", func(p *shared.Poll) { p.OpensAt = now.Add(shared.CloseLead) }, false},
	}
	for _, c := range cases {
		p := open
		c.p(&p)
		if got := origin.Live(&p, now); got != c.live {
			t.Errorf("%s: Live = %v, want %v", c.name, got, c.live)
		}
	}
	p := open
	origin.AnnounceClose(&p, now)
	if p.State != shared.StateOpen || !p.ClosesAt.Equal(now.Add(shared.CloseLead)) {
		t.Fatalf("AnnounceClose: %s %v", p.State, p.ClosesAt)
	}
	if got := origin.StopsAt(&p, now); !got.Equal(p.ClosesAt) {
		t.Fatalf("StopsAt = %v", got)
	}
	soon := open
	soon.ClosesAt = now.Add(time.Second)
	origin.AnnounceClose(&soon, now)
	if !soon.ClosesAt.Equal(now.Add(time.Second)) {
		t.Fatalf("AnnounceClose moved an earlier close to %v", soon.ClosesAt)
	}
	future := open
	future.OpensAt = now.Add(time.Hour)
	origin.AnnounceClose(&future, now)
	if future.State != shared.StateClosed {
		t.Fatalf("a poll that opens later closes at once, got %s", future.State)
	}
	// Allowed changes of a live poll.
	grow := open
	grow.Options = append(grow.Options, shared.Option{Label: "c"})
	grow.ClosesAt = now.Add(shared.CloseLead)
	if err := origin.CheckLiveChange(&open, &grow, now); err != nil {
		t.Fatalf("append an option and close at the lead: %v", err)
	}
	early := open
	early.OpensAt = now.Add(-time.Hour)
	withStart := open
	withStart.OpensAt = now.Add(-time.Minute)
	if err := origin.CheckLiveChange(&withStart, &early, now); err != nil {
		t.Fatalf("opens_at earlier: %v", err)
	}
	// The identity mode and its JWT claims are fixed while live, free otherwise.
	signed := open
	signed.Identity, signed.JWTIssuer, signed.JWTAudience = shared.IdentitySigned, "https://app.example", "polls"
	explicitOpen := open
	explicitOpen.Identity = shared.IdentityOpen
	if err := origin.CheckLiveChange(&open, &explicitOpen, now); err != nil {
		t.Fatalf("empty identity to open: %v", err)
	}
	otherAud := signed
	otherAud.JWTAudience = "other"
	for name, c := range map[string][2]*shared.Poll{"open to signed": {&open, &signed}, "signed to open": {&signed, &open}, "other audience": {&signed, &otherAud}} {
		if err := origin.CheckLiveChange(c[0], c[1], now); shared.ErrorCode(err) != shared.ECONFLICT {
			t.Errorf("%s on a live poll: %v, want ECONFLICT", name, err)
		}
		draft := *c[0]
		draft.State = shared.StateDraft
		if err := origin.CheckLiveChange(&draft, c[1], now); err != nil {
			t.Errorf("%s on a draft: %v", name, err)
		}
	}
}
