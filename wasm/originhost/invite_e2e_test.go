package originhost_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestInviteEndToEnd trades invite codes through the wazero guest, the
// harness's signed redeem call and the real origin and Redis: a code buys
// one token whose vote counts; the same code at another instance is 409;
// bad codes change nothing.
func TestInviteEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStackWith(t, stackOptions{instances: 2})
	const id = "club"
	s.admin(t, "POST", "polls", `{"id":"club","title":"Members","identity":"invite","state":"open","options":[{"label":"a"},{"label":"b"}]}`)
	csv := string(s.admin(t, "POST", "polls/club/invites?count=3", ""))
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 4 || lines[0] != "serial,code" {
		t.Fatalf("invites CSV %q", csv)
	}
	code := func(i int) string { _, c, _ := strings.Cut(lines[i], ","); return c }

	trade := func(body string) (int, string, string) {
		t.Helper()
		resp, err := s.client.Post(s.url+"/v1/polls/"+id+"/token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var pr struct{ Token string }
		_ = json.Unmarshal(b, &pr)
		return resp.StatusCode, pr.Token, string(b)
	}
	// Without a code, the config says what it wants and carries no token.
	resp, err := s.client.Get(s.url + "/v1/polls/" + id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"identity":"invite"`) || strings.Contains(string(b), `"token"`) {
		t.Fatalf("GET invite poll: %d %s", resp.StatusCode, b)
	}

	st, tok, body := trade(`{"code":"` + strings.ToLower(code(1)) + `"}`)
	if st != 200 || tok == "" {
		t.Fatalf("trade code 1: %d %s", st, body)
	}
	if c, err := s.vote(id, tok, 1); err != nil || c != 202 {
		t.Fatalf("vote with the invite token: %d %v", c, err)
	}
	s.waitCounts(t, id, []int{0, 1})
	for i := range 4 { // whichever instance serves it
		if st, _, body := trade(`{"code":"` + code(1) + `"}`); st != 409 || !strings.Contains(body, `"code":"conflict"`) {
			t.Fatalf("code 1 again (%d): %d %s, want 409", i, st, body)
		}
	}
	for name, c := range map[string]struct {
		body   string
		status int
	}{
		"malformed":  {`{"code":"ABCD"}`, 400},
		"unknown":    {`{"code":"` + strings.Repeat("0", 18) + `XX"}`, 400},
		"not json":   {`code=1`, 400},
		"jwt":        {`{"jwt":"a.b.c"}`, 400},
		"wrong code": {`{"code":"` + flip(code(2)) + `"}`, 0},
	} {
		st, _, body := trade(c.body)
		if c.status != 0 && st != c.status || c.status == 0 && st != 400 && st != 403 {
			t.Errorf("%s: %d %s", name, st, body)
		}
	}
	// Code 2 still works after the refused attempts, code 3 too.
	for i := 2; i <= 3; i++ {
		if st, tok, body := trade(`{"code":"` + code(i) + `"}`); st != 200 || tok == "" {
			t.Fatalf("code %d: %d %s", i, st, body)
		}
	}
	used := string(s.admin(t, "GET", "polls/club/invites", ""))
	if strings.Count(used, ",true") != 3 || strings.Contains(used, ",false") {
		t.Fatalf("used list %q: want all three used", used)
	}
	var stats struct{ Redeemed, Reused uint64 }
	if err := json.Unmarshal(s.admin(t, "GET", "polls/club/invites/stats", ""), &stats); err != nil || stats.Redeemed != 3 || stats.Reused != 4 {
		t.Fatalf("invite stats %+v %v: want 3 redeemed, 4 reuses refused", stats, err)
	}
	_ = http.StatusOK
}

// flip changes the first symbol of a formatted code, keeping its format.
func flip(code string) string {
	if code[0] == 'A' {
		return "B" + code[1:]
	}
	return "A" + code[1:]
}
