//go:build !js && linux

package worker_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge/edgetest"
)

// TestWorkerSigned runs a signed poll in workerd: the Worker verifies the
// app's JWT against JWT_JWKS, one account is one voter whatever token it
// trades for, and bad JWTs are refused with 401.
func TestWorkerSigned(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	e := startEdgeVars(t, fmt.Sprintf("JWT_JWKS = %q", edgetest.JWKSJSON()), "")
	if st, b := e.admin("POST", "polls", `{"id":"vip","title":"Members","identity":"signed","jwt_issuer":"`+edgetest.JWTIssuer+`","jwt_audience":"`+edgetest.JWTAudience+`","state":"open","options":[{"label":"A"},{"label":"B"}]}`); st != 201 {
		t.Fatalf("create signed poll: %d %s", st, b)
	}
	now := time.Now().Unix()
	claims := func(sub string, exp int64) string {
		return `{"iss":"` + edgetest.JWTIssuer + `","aud":"` + edgetest.JWTAudience + `","sub":"` + sub + `","iat":` +
			strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(exp, 10) + `}`
	}
	trade := func(jwt string) (int, string, string) {
		t.Helper()
		resp, b := e.do("POST", "/v1/polls/vip/token", map[string]string{"Content-Type": "application/json"}, `{"jwt":"`+jwt+`"}`)
		var pr struct{ Token string }
		_ = json.Unmarshal(b, &pr)
		return resp.StatusCode, pr.Token, string(b)
	}
	st, tok, out := trade(edgetest.SignJWT(`{"alg":"EdDSA"}`, claims("ana", now+300), false))
	if st != 200 || tok == "" {
		t.Fatalf("trade a JWT: %d %s", st, out)
	}
	if st, out, err := e.voteRetrying("vip", tok, 1); err != nil || st != 202 {
		t.Fatalf("vote: %d %s %v", st, out, err)
	}
	// The same account on another device, with another JWT: the same voter.
	st, tok2, out := trade(edgetest.SignJWT(`{"alg":"EdDSA"}`, claims("ana", now+600), false))
	if st != 200 || tok2 == "" {
		t.Fatalf("second trade: %d %s", st, out)
	}
	if st, out, err := e.vote("vip", tok2, 0); err != nil || st != 409 {
		t.Fatalf("the same account voting again: %d %s %v, want 409", st, out, err)
	}
	for name, jwt := range map[string]string{
		"expired":        edgetest.SignJWT(`{"alg":"EdDSA"}`, claims("bob", now-3600), false),
		"unknown key":    edgetest.SignJWT(`{"alg":"EdDSA"}`, claims("bob", now+300), true),
		"alg none":       strings.SplitN(edgetest.SignJWT(`{"alg":"none"}`, claims("bob", now+300), false), ".", 3)[0] + "." + strings.SplitN(edgetest.SignJWT(`{"alg":"none"}`, claims("bob", now+300), false), ".", 3)[1] + ".",
		"wrong audience": edgetest.SignJWT(`{"alg":"EdDSA"}`, strings.Replace(claims("bob", now+300), edgetest.JWTAudience, "other", 1), false),
	} {
		if st, _, out := trade(jwt); st != 401 || !strings.Contains(out, `"unauthorized"`) {
			t.Errorf("%s JWT: %d %s, want 401 unauthorized", name, st, out)
		}
	}
	e.waitCounted("vip", 1, 30*time.Second)

	// The integrity report: the isolate reported its first token at once;
	// a token request after IdentityFlush reports the rest.
	time.Sleep(11 * time.Second)
	if st, _, out := trade(edgetest.SignJWT(`{"alg":"EdDSA"}`, claims("cy", now+300), false)); st != 200 {
		t.Fatalf("third trade: %d %s", st, out)
	}
	var rep struct {
		Issued  uint64            `json:"tokens_issued"`
		Refused map[string]uint64 `json:"refused"`
		Top     []struct {
			Addr   string `json:"addr"`
			Tokens uint64 `json:"tokens"`
		} `json:"top_addresses"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, b := e.admin("GET", "polls/vip/identity-stats", "")
		if st != 200 {
			t.Fatalf("identity stats: %d %s", st, b)
		}
		json.Unmarshal(b, &rep)
		if rep.Issued >= 3 || time.Now().After(deadline) {
			if rep.Issued != 3 || len(rep.Top) == 0 || rep.Top[0].Tokens != 3 || len(rep.Refused) == 0 {
				t.Fatalf("identity stats from the Worker: %s, want 3 tokens from one address and the refusals", b)
			}
			break
		}
	}
}
