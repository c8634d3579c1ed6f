//go:build !js && linux

package worker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestWorkerInvites trades invite codes through the Worker in workerd: its
// signed redeem call to the real origin, one token per code, the vote
// counted, a second use of the code 409, bad codes refused before the
// origin is asked.
func TestWorkerInvites(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	e := startEdge(t)
	if st, b := e.admin("POST", "polls", `{"id":"club","title":"Members","identity":"invite","state":"open","options":[{"label":"A"},{"label":"B"}]}`); st != 201 {
		t.Fatalf("create invite poll: %d %s", st, b)
	}
	st, b := e.admin("POST", "polls/club/invites?count=3", "")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if st != 200 || len(lines) != 4 {
		t.Fatalf("create codes: %d %s", st, b)
	}
	code := func(i int) string { _, c, _ := strings.Cut(lines[i], ","); return c }
	trade := func(body string) (int, string, string) {
		t.Helper()
		resp, b := e.do("POST", "/v1/polls/club/token", map[string]string{"Content-Type": "application/json"}, body)
		var pr struct{ Token string }
		_ = json.Unmarshal(b, &pr)
		return resp.StatusCode, pr.Token, string(b)
	}

	resp, body := e.do("GET", "/v1/polls/club", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"identity":"invite"`) || strings.Contains(string(body), `"token"`) {
		t.Fatalf("GET invite poll: %d %s", resp.StatusCode, body)
	}
	st, tok, out := trade(`{"code":"` + code(1) + `"}`)
	if st != 200 || tok == "" {
		t.Fatalf("trade a code: %d %s", st, out)
	}
	if st, out, err := e.voteRetrying("club", tok, 1); err != nil || st != 202 {
		t.Fatalf("vote with the invite token: %d %s %v", st, out, err)
	}
	e.waitCounted("club", 1, 30*time.Second)
	if st, _, out := trade(`{"code":"` + strings.ToLower(code(1)) + `"}`); st != 409 || !strings.Contains(out, `"code":"conflict"`) {
		t.Fatalf("the code again: %d %s, want 409", st, out)
	}
	if st, _, out := trade(`{"code":"NOT-A-CODE"}`); st != 400 {
		t.Fatalf("malformed code: %d %s, want 400", st, out)
	}
	if st, _, out := trade(`{"code":"` + code(2) + `"}`); st != 200 {
		t.Fatalf("code 2: %d %s", st, out)
	}
	if st, b := e.admin("GET", "polls/club/invites/stats", ""); st != 200 || !strings.Contains(string(b), `"redeemed":2`) || !strings.Contains(string(b), `"reused":1`) {
		t.Fatalf("invite stats: %d %s", st, b)
	}
}
