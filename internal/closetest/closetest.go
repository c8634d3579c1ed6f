// Package closetest proves "a 202 is a promise" through a poll's closing
// against a real edge (the Worker under wrangler dev, or the wazero
// harness) and a real origin: voters vote steadily while an operator closes
// the poll, then every acknowledged vote must be counted, every vote sent
// after the effective close refused with 403, and nothing acknowledged
// dropped. It also exercises the vote check (GET /v1/polls/{id}/vote).
package closetest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// Edge is the system under test.
type Edge struct {
	// URL is the edge's base URL (http://127.0.0.1:port).
	URL string
	// Admin calls the origin's admin API (path below /v1/admin/) and returns
	// the status and body.
	Admin func(method, path, body string) (int, []byte)
	// Workers is the number of concurrent voters (default 6).
	Workers int
}

var client = &http.Client{Timeout: 30 * time.Second}

// outcome is one voter's vote.
type outcome struct {
	start   time.Time
	status  int
	receipt string
	msg     string
	token   string
}

// Run creates and opens poll, votes through e for about a second, closes
// the poll with the default (announced) close, keeps voting until two
// seconds past the close, and checks the promise.
func Run(t *testing.T, e Edge, poll string) {
	t.Helper()
	if e.Workers <= 0 {
		e.Workers = 6
	}
	mustAdmin(t, e, "POST", "polls", fmt.Sprintf(`{"id":%q,"title":"Closing","options":[{"label":"A"},{"label":"B"},{"label":"C"}],"kind":"single","state":"open","visibility":"live"}`, poll), 201)

	var (
		mu       sync.Mutex
		outcomes []outcome
		stopAt   time.Time // zero until the close is known
		wg       sync.WaitGroup
	)
	done := func(now time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return !stopAt.IsZero() && now.After(stopAt)
	}
	for w := 0; w < e.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !done(time.Now()); i++ {
				tok, err := token(e.URL, poll)
				if err != nil {
					t.Errorf("voter token: %v", err)
					return
				}
				o := vote(e.URL, poll, tok, (w+i)%3)
				if o.status == 0 {
					t.Errorf("vote: %s", o.msg)
					return
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(15 * time.Millisecond)
			}
		}(w)
	}
	time.Sleep(time.Second)
	body := mustAdmin(t, e, "POST", "polls/"+poll+"/close", "", 200)
	var p shared.Poll
	if err := json.Unmarshal(body, &p); err != nil || p.ClosesAt.IsZero() || p.State != shared.StateOpen {
		t.Fatalf("announced close answered %s: want an open poll with closes_at", body)
	}
	closesAt := p.ClosesAt
	mu.Lock()
	stopAt = closesAt.Add(2 * time.Second)
	mu.Unlock()
	wg.Wait()
	if t.Failed() {
		return
	}

	acked := map[string]outcome{}
	var before, after, refused int
	for _, o := range outcomes {
		switch {
		case o.status == http.StatusAccepted:
			acked[o.receipt[:16]] = o
			if !o.start.Before(closesAt) {
				t.Errorf("vote sent at %s, at or after closes_at %s, was acknowledged", o.start.Format(time.RFC3339Nano), closesAt.Format(time.RFC3339Nano))
			}
			before++
		case o.status == http.StatusForbidden:
			if o.msg != shared.RejectClosed {
				t.Errorf("403 with message %q, want %q", o.msg, shared.RejectClosed)
			}
			if o.start.Before(closesAt.Add(-shared.ClockSkew)) {
				t.Errorf("vote sent at %s, well before closes_at %s, was refused", o.start.Format(time.RFC3339Nano), closesAt.Format(time.RFC3339Nano))
			}
			refused++
		case o.status == http.StatusServiceUnavailable:
			// "not recorded, retry": allowed; it must not be counted (checked below)
		default:
			t.Errorf("vote answered %d %s", o.status, o.msg)
		}
		if !o.start.Before(closesAt) && o.status != http.StatusForbidden {
			after++
		}
	}
	if before == 0 || refused == 0 {
		t.Fatalf("%d votes acknowledged and %d refused: the run did not straddle the close", before, refused)
	}
	if after > 0 {
		t.Errorf("%d votes sent after closes_at were not refused with 403", after)
	}

	// Every acknowledged vote is counted, and nothing else is.
	deadline := time.Now().Add(60 * time.Second)
	var res struct {
		Voters   int64             `json:"voters"`
		Rejected map[string]uint64 `json:"rejected"`
	}
	for {
		b := mustAdmin(t, e, "GET", "polls/"+poll+"/results", "", 200)
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("admin results %s: %v", b, err)
		}
		if res.Voters >= int64(len(acked)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.Voters != int64(len(acked)) {
		t.Errorf("origin counted %d voters, the edge acknowledged %d", res.Voters, len(acked))
	}
	if len(res.Rejected) != 0 {
		t.Errorf("origin refused acknowledged votes: %v", res.Rejected)
	}
	ledger := mustAdmin(t, e, "GET", "polls/"+poll+"/export?data=ledger&format=csv", "", 200)
	rows, err := csv.NewReader(strings.NewReader(string(ledger))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("ledger export: %v %q", err, ledger)
	}
	inLedger := map[string]bool{}
	for _, r := range rows[1:] {
		inLedger[r[0]] = true
	}
	for k, o := range acked {
		if !inLedger[k] {
			t.Errorf("acknowledged receipt %s (sent %s) is not in the ledger", o.receipt, o.start.Format(time.RFC3339Nano))
		}
	}
	if len(inLedger) != len(acked) {
		t.Errorf("ledger holds %d voters, %d were acknowledged", len(inLedger), len(acked))
	}
	checkVotes(t, e, poll, acked)
	t.Logf("%d votes acknowledged before the close at %s, %d refused after it", before, closesAt.Format(time.RFC3339Nano), refused)
}

// checkVotes asks the edge's vote check about a few acknowledged voters
// (counted), a voter who never voted (not counted) and no token (401).
func checkVotes(t *testing.T, e Edge, poll string, acked map[string]outcome) {
	t.Helper()
	n := 0
	for _, o := range acked {
		if n == 5 {
			break
		}
		n++
		st, b := check(e.URL, poll, "Bearer "+o.token)
		if st != 200 || !strings.Contains(string(b), `"counted":true`) || !strings.Contains(string(b), o.receipt) {
			t.Errorf("vote check of an acknowledged voter: %d %s", st, b)
		}
	}
	tok, err := token(e.URL, poll)
	if err != nil {
		t.Fatal(err)
	}
	if st, b := check(e.URL, poll, "Bearer "+tok); st != 200 || !strings.Contains(string(b), `"counted":false`) {
		t.Errorf("vote check of a voter who never voted: %d %s", st, b)
	}
	if st, b := check(e.URL, poll, ""); st != 401 || !strings.Contains(string(b), `"code":"unauthorized"`) {
		t.Errorf("vote check without a token: %d %s", st, b)
	}
	if st, b := check(e.URL, "no-such-poll", "Bearer "+tok); st != 401 {
		t.Errorf("vote check with another poll's token: %d %s", st, b)
	}
}

func mustAdmin(t *testing.T, e Edge, method, path, body string, want int) []byte {
	t.Helper()
	st, b := e.Admin(method, path, body)
	if st != want {
		t.Fatalf("admin %s %s: %d %s, want %d", method, path, st, b, want)
	}
	return b
}

func token(base, poll string) (string, error) {
	resp, err := client.Get(base + "/v1/polls/" + poll)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Token == "" {
		return "", fmt.Errorf("GET poll: %d %s", resp.StatusCode, b)
	}
	return r.Token, nil
}

func vote(base, poll, tok string, choice int) outcome {
	o := outcome{start: time.Now(), token: tok}
	resp, err := client.Post(base+"/v1/polls/"+poll+"/votes", "application/json",
		strings.NewReader(fmt.Sprintf(`{"token":%q,"choice":%d}`, tok, choice)))
	if err != nil {
		o.msg = err.Error()
		return o
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o.status = resp.StatusCode
	var r struct {
		Receipt string `json:"receipt"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &r)
	o.receipt, o.msg = r.Receipt, r.Error.Message
	if o.status == http.StatusAccepted && len(o.receipt) != 32 {
		o.status, o.msg = 0, "202 without a receipt: "+string(b)
	}
	return o
}

func check(base, poll, auth string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/polls/"+poll+"/vote", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// RunImmediate checks the documented consequence of an immediate close
// (?now=true): votes an edge acknowledges while it still holds the open
// config are refused at the origin, and every one of them shows in the
// poll's rejected poll_closed figure, so the operator sees the broken
// promises; votes acknowledged before the close are all counted.
func RunImmediate(t *testing.T, e Edge, poll string) {
	t.Helper()
	mustAdmin(t, e, "POST", "polls", fmt.Sprintf(`{"id":%q,"title":"Emergency","options":[{"label":"A"},{"label":"B"}],"kind":"single","state":"open","visibility":"live"}`, poll), 201)
	var before, after int
	for i := 0; i < 20; i++ {
		tok, err := token(e.URL, poll)
		if err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			mustAdmin(t, e, "POST", "polls/"+poll+"/close?now=true", "", 200)
		}
		switch o := vote(e.URL, poll, tok, i%2); {
		case o.status == http.StatusAccepted && i < 10:
			before++
		case o.status == http.StatusAccepted:
			after++
		case o.status == http.StatusForbidden && i >= 10:
		default:
			t.Fatalf("vote %d: %d %s", i, o.status, o.msg)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var res struct {
			Voters   int               `json:"voters"`
			Rejected map[string]uint64 `json:"rejected"`
		}
		b := mustAdmin(t, e, "GET", "polls/"+poll+"/results", "", 200)
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("admin results %s: %v", b, err)
		}
		if res.Voters == before && res.Rejected[shared.RejectClosed] == uint64(after) {
			t.Logf("immediate close: %d counted, %d acknowledged in the propagation window and shown as rejected", before, after)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin results %s: want %d voters and rejected poll_closed %d", b, before, after)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
