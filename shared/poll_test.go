package shared_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

func TestPollValidate(t *testing.T) {
	if err := samplePoll().Validate(); err != nil {
		t.Fatal(err)
	}
	mut := map[string]func(p *shared.Poll){
		"bad id":           func(p *shared.Poll) { p.ID = "a{b}" },
		"long id":          func(p *shared.Poll) { p.ID = strings.Repeat("a", 65) },
		"no title":         func(p *shared.Poll) { p.Title = "" },
		"one option":       func(p *shared.Poll) { p.Options = p.Options[:1] },
		"65 options":       func(p *shared.Poll) { p.Options = make([]shared.Option, 65) },
		"empty label":      func(p *shared.Poll) { p.Options[1].Label = "" },
		"bad utf8":         func(p *shared.Poll) { p.Options[1].Label = "\xff" },
		"kind":             func(p *shared.Poll) { p.Kind = "approval" },
		"multi with scale": func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 1, Max: 5} },
		"multi max_words":  func(p *shared.Poll) { p.MaxWords = 1 },
		"multi max 0":      func(p *shared.Poll) { p.MaxChoices = 0 },
		"multi max > opts": func(p *shared.Poll) { p.MaxChoices = 4 },
		"single max 2":     func(p *shared.Poll) { p.Kind = shared.KindSingle },
		"state":            func(p *shared.Poll) { p.State = "paused" },
		"visibility":       func(p *shared.Poll) { p.Visibility = "never" },
		"window":           func(p *shared.Poll) { p.ClosesAt = p.OpensAt },
		"identity":         func(p *shared.Poll) { p.Identity = "captcha" },
		"open with iss":    func(p *shared.Poll) { p.JWTIssuer = "https://app.example" },
		"invite with aud":  func(p *shared.Poll) { p.Identity, p.JWTAudience = shared.IdentityInvite, "polls" },
		"signed no aud":    func(p *shared.Poll) { p.Identity, p.JWTIssuer = shared.IdentitySigned, "https://app.example" },
		"signed no iss":    func(p *shared.Poll) { p.Identity, p.JWTAudience = shared.IdentitySigned, "polls" },
		"signed space iss": func(p *shared.Poll) { p.Identity, p.JWTIssuer, p.JWTAudience = shared.IdentitySigned, "a b", "polls" },
	}
	for name, f := range mut {
		p := samplePoll()
		f(p)
		if err := p.Validate(); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestPollAcceptsAndChoices(t *testing.T) {
	p := samplePoll()
	in := p.OpensAt.Add(time.Second)
	if err := p.AcceptsAt(in); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		state shared.State
		at    time.Time
		want  string
	}{
		"early":  {shared.StateOpen, p.OpensAt.Add(-1), shared.RejectNotOpen},
		"late":   {shared.StateOpen, p.ClosesAt, shared.RejectClosed},
		"draft":  {shared.StateDraft, in, shared.RejectNotOpen},
		"closed": {shared.StateClosed, in, shared.RejectClosed},
	} {
		q := *p
		q.State = c.state
		err := q.AcceptsAt(c.at)
		if shared.ErrorCode(err) != shared.EFORBIDDEN || shared.ErrorMessage(err) != c.want {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if p.ResultsVisible(in) || !p.ResultsVisible(p.ClosesAt) {
		t.Error("after_close visibility wrong")
	}
	for _, ok := range [][]uint8{{0}, {2}, {0, 2}} {
		if err := p.ValidateChoices(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][]uint8{nil, {3}, {1, 1}, {0, 1, 2}} {
		if err := p.ValidateChoices(bad); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := shared.Wrap(shared.EUNAVAILABLE, cause, "redis down")
	if !errors.Is(err, cause) || shared.ErrorCode(err) != shared.EUNAVAILABLE || shared.HTTPStatus(shared.ErrorCode(err)) != http.StatusServiceUnavailable {
		t.Fatal("wrap/code/status")
	}
	if shared.ErrorCode(cause) != shared.EINTERNAL || shared.ErrorMessage(cause) != "internal error" {
		t.Fatal("plain errors must be internal and hidden")
	}
	want := map[shared.Code]int{shared.EINVALID: 400, shared.EUNAUTHORIZED: 401, shared.EFORBIDDEN: 403, shared.ENOTFOUND: 404,
		shared.ECONFLICT: 409, shared.ETOOLARGE: 413, shared.EUNSUPPORTED: 415, shared.ERATELIMITED: 429, shared.EINTERNAL: 500}
	for c, s := range want {
		if shared.HTTPStatus(c) != s {
			t.Errorf("%s → %d, want %d", c, shared.HTTPStatus(c), s)
		}
	}
	got := string(shared.AppendErrorJSON(nil, shared.Errorf(shared.EINVALID, "bad \"x\"\n<y>")))
	if got != `{"error":{"code":"invalid","message":"bad \"x\"\n\u003cy\u003e"}}` {
		t.Fatalf("json: %s", got)
	}
}
