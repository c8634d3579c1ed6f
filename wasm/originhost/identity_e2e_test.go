package originhost_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/wasm/internal/benchfix"
)

// TestIdentityReport: the tokens the guest issues and the JWTs it refuses
// reach the origin's integrity report through the host's signed reports.
func TestIdentityReport(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStackWith(t, stackOptions{instances: 2, flush: 50 * time.Millisecond,
		env: map[string]string{"JWT_JWKS": benchfix.Env["JWT_JWKS"]}})
	s.createPoll(t, "show", 2)
	s.admin(t, "POST", "polls", `{"id":"vip","title":"Members","identity":"signed","jwt_issuer":"`+benchfix.JWTIssuer+
		`","jwt_audience":"`+benchfix.JWTAudience+`","state":"open","options":[{"label":"a"},{"label":"b"}]}`)
	for range 3 {
		if _, err := s.token("show"); err != nil {
			t.Fatal(err)
		}
	}
	post := func(body string) int {
		t.Helper()
		resp, err := s.client.Post(s.url+"/v1/polls/vip/token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(string(benchfix.SignedBody(1))); st != 200 {
		t.Fatalf("good JWT: %d", st)
	}
	for range 2 {
		if st := post(`{"jwt":"a.b.c"}`); st != 401 {
			t.Fatalf("bad JWT: %d", st)
		}
	}
	report := func(poll string) origin.IdentityReport {
		var r origin.IdentityReport
		if err := json.Unmarshal(s.admin(t, "GET", "polls/"+poll+"/identity-stats", ""), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		show, vip := report("show"), report("vip")
		if show.TokensIssued == 3 && vip.TokensIssued == 1 && vip.Refused["malformed"] == 2 {
			if len(show.TopAddresses) != 1 || show.TopAddresses[0].Addr != "127.0.0.1" || show.TopAddresses[0].Tokens != 3 {
				t.Fatalf("top addresses %+v, want 127.0.0.1 with 3", show.TopAddresses)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports: show %+v, vip %+v; want 3 tokens from 127.0.0.1, and 1 token and 2 malformed JWTs", show, vip)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
