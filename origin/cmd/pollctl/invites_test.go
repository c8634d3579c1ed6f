package main_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// redeem POSTs code to the origin's redeem endpoint as an edge does,
// signed with key (or with a signature over another code when forge is
// set), and returns the status and body.
func redeem(t *testing.T, o *origintest.Origin, poll, code string, key sign.Key, forge string) (int, string) {
	t.Helper()
	path := invite.RedeemPath(poll)
	req, _ := http.NewRequest("POST", o.URL+path, strings.NewReader(code))
	signed := code
	if forge != "" {
		signed = forge
	}
	sig := sign.Sign(key, time.Now(), invite.SignedBody("POST", path, []byte(signed)))
	req.Header.Set("Content-Type", "text/plain")
	sig.SetHeaders(req.Header.Set)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPollctlInvites(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken}

	want(t, pollctl(t, env, "create", "--id", "club", "--title", "Members vote", "--option", "a", "--option", "b", "--identity", "invite", "--open"),
		0, "invite (one vote per invite code)")
	want(t, pollctl(t, env, "create", "--id", "public", "--title", "Anyone", "--option", "a", "--option", "b"), 0)

	// 2,500 codes: three chunks, streamed; each code parses and is unique.
	file := filepath.Join(t.TempDir(), "codes.csv")
	want(t, pollctl(t, env, "invites", "create", "club", "--count", "2500", "-o", "csv", "-f", file), 0, "2500 codes written")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil || len(rows) != 2501 || rows[0][0] != "serial" || rows[0][1] != "code" {
		t.Fatalf("codes CSV: %v, %d rows, header %v", err, len(rows), rows[0])
	}
	seen := map[string]bool{}
	for i, row := range rows[1:] {
		if row[0] != strconv.Itoa(i+1) {
			t.Fatalf("row %d serial %s", i+1, row[0])
		}
		c, err := invite.Parse(row[1])
		if err != nil || seen[string(c)] || row[1] != c.Format() {
			t.Fatalf("row %d code %q: %v", i+1, row[1], err)
		}
		seen[string(c)] = true
	}
	// More codes continue the serials; stdout works too.
	res := pollctl(t, env, "invites", "create", "club", "--count", "3")
	want(t, res, 0, "serial,code\n2501,", "\n2503,")

	// The Redis dump holds no code in clear.
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	dump, err := rdb.HGetAll(t.Context(), "ep:{club}:inv").Result()
	if err != nil || len(dump) != 2503 {
		t.Fatalf("%d stored codes (%v), want 2503", len(dump), err)
	}
	for k, v := range dump {
		if seen[k] || len(k) != invite.HashLen || strings.Contains(v, "-") {
			t.Fatalf("stored field %q = %q is not a %d-byte hash and a serial", k, v, invite.HashLen)
		}
	}

	// Redeem: once, concurrently from many edges; then 409.
	code := rows[5][1]
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i], _ = redeem(t, o, "club", code, o.IngestKey, "") }()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 204:
			ok++
		case 409:
		default:
			t.Fatalf("concurrent redeem: status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent redeems of one code succeeded, want 1 (%v)", ok, statuses)
	}
	if s, b := redeem(t, o, "club", strings.ToLower(code), o.IngestKey, ""); s != 409 || !strings.Contains(b, "already been used") {
		t.Fatalf("second use: %d %s", s, b)
	}
	fresh, _ := invite.New(strings.NewReader(strings.Repeat("x", 32)))
	for name, c := range map[string]struct {
		poll, code string
		key        sign.Key
		forge      string
		status     int
		errCode    string
	}{
		"unknown code":     {"club", fresh.Format(), o.IngestKey, "", 403, "forbidden"},
		"malformed code":   {"club", "NOT-A-CODE", o.IngestKey, "", 400, "invalid"},
		"wrong key":        {"club", rows[7][1], sign.Key{ID: o.IngestKey.ID, Secret: []byte(strings.Repeat("k", 40))}, "", 401, "unauthorized"},
		"signed for other": {"club", rows[7][1], o.IngestKey, rows[8][1], 401, "unauthorized"},
		"unknown poll":     {"nope", rows[7][1], o.IngestKey, "", 404, "not_found"},
		"open poll":        {"public", rows[7][1], o.IngestKey, "", 403, "forbidden"},
	} {
		if s, b := redeem(t, o, c.poll, c.code, c.key, c.forge); s != c.status || !strings.Contains(b, `"code":"`+c.errCode+`"`) {
			t.Errorf("%s: %d %s, want %d %s", name, s, b, c.status, c.errCode)
		}
	}
	// Refused attempts changed nothing: code 7 still redeems once.
	if s, b := redeem(t, o, "club", rows[7][1], o.IngestKey, ""); s != 204 {
		t.Fatalf("code 7 after refused attempts: %d %s", s, b)
	}

	// The used list names serials 5 and 7 only, and nothing about votes.
	res = pollctl(t, env, "invites", "used", "club", "-o", "csv")
	want(t, res, 0, "serial,used\n")
	used := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	for _, l := range lines[1:] {
		serial, u, _ := strings.Cut(l, ",")
		if u == "true" {
			used[serial] = true
		}
	}
	if len(lines) != 2504 || len(used) != 2 || !used["5"] || !used["7"] {
		t.Fatalf("used list: %d lines, used %v", len(lines), used)
	}

	// The integrity report: 2 codes redeemed (the tokens issued), 8 reuses
	// refused (7 concurrent + 1), one unknown code tried, nobody voted yet.
	want(t, pollctl(t, env, "stats", "club"), 0, "invite (one vote per invite code)", "tokens that voted", "codes created        2503",
		"tokens issued        2 (codes redeemed)", "refused code reuses  8", "unknown codes tried  1")
	res = pollctl(t, env, "stats", "club", "-o", "json")
	want(t, res, 0, `"tokens_issued": 2`, `"reused": 8`, `"tokens_voted": 0`)
	want(t, pollctl(t, env, "stats", "public"), 0, "open (one vote per browser, best effort)", "tokens issued      0 (as edges reported)")
	want(t, pollctl(t, env, "stats", "nope"), 3, "not found")
	want(t, pollctl(t, env, "stats"), 0, "redis version")

	want(t, pollctl(t, env, "invites", "create", "public", "--count", "1"), 4, "does not use invite codes")
	want(t, pollctl(t, env, "invites", "create", "nope", "--count", "1"), 3, "not found")
	want(t, pollctl(t, env, "invites", "create", "club", "--count", "0"), 2, "--count")
	want(t, pollctl(t, env, "invites", "mint", "club"), 2, "create or used")

	// An origin without INVITE_KEY keeps no codes: 503, and the redeem too.
	bare := origintest.StartWith(t, r.URL, origintest.Options{Env: []string{"INVITE_KEY="}})
	bareEnv := []string{"EDGEPOLL_ORIGIN=" + bare.URL, "EDGEPOLL_ADMIN_TOKEN=" + bare.AdminToken}
	want(t, pollctl(t, bareEnv, "invites", "create", "club", "--count", "1"), 1, "INVITE_KEY")
	if s, b := redeem(t, bare, "club", rows[9][1], bare.IngestKey, ""); s != 503 || !strings.Contains(b, "INVITE_KEY") {
		t.Fatalf("redeem at an origin without INVITE_KEY: %d %s", s, b)
	}
}

// TestPollctlStatsFromEdgeReports: edges' signed identity reports add up in
// pollctl stats POLL; bad reports are refused and change nothing.
func TestPollctlStatsFromEdgeReports(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken}
	want(t, pollctl(t, env, "create", "--id", "show", "--title", "Who?", "--option", "a", "--option", "b", "--open"), 0)
	report := func(poll, body string, key sign.Key) (int, string) {
		t.Helper()
		path := shared.IdentityStatsPath(poll)
		req, _ := http.NewRequest("POST", o.URL+path, strings.NewReader(body))
		sig := sign.Sign(key, time.Now(), sign.RequestWithBody("POST", path, []byte(body)))
		req.Header.Set("Content-Type", "application/json")
		sig.SetHeaders(req.Header.Set)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i, body := range []string{
		`{"tokens":40,"addrs":{"2001:db8:1:2::/64":30,"198.51.100.7":10},"refused":{"expired":3,"bad_signature":1}}`,
		`{"tokens":5,"addrs":{"2001:db8:1:2::/64":5},"refused":{"expired":1}}`,
	} {
		if st, b := report("show", body, o.IngestKey); st != 204 {
			t.Fatalf("report %d: %d %s", i, st, b)
		}
	}
	for name, c := range map[string]struct {
		poll, body string
		key        sign.Key
		status     int
	}{
		"unknown field":  {"show", `{"tokens":1,"votes":9}`, o.IngestKey, 400},
		"bad reason":     {"show", `{"tokens":1,"refused":{"Bad Reason!":1}}`, o.IngestKey, 400},
		"control char":   {"show", `{"tokens":1,"addrs":{"a\u0001":1}}`, o.IngestKey, 400},
		"negative":       {"show", `{"tokens":-1}`, o.IngestKey, 400},
		"trailing":       {"show", `{"tokens":1}{}`, o.IngestKey, 400},
		"not json":       {"show", `tokens=1`, o.IngestKey, 400},
		"wrong key":      {"show", `{"tokens":1}`, sign.Key{ID: o.IngestKey.ID, Secret: []byte(strings.Repeat("z", 40))}, 401},
		"unknown poll":   {"nope", `{"tokens":1}`, o.IngestKey, 404},
		"too many addrs": {"show", `{"tokens":1,"addrs":{` + manyAddrs(300) + `}}`, o.IngestKey, 400},
	} {
		if st, b := report(c.poll, c.body, c.key); st != c.status {
			t.Errorf("%s: %d %s, want %d", name, st, b, c.status)
		}
	}
	want(t, pollctl(t, env, "stats", "show"), 0, "45 (as edges reported)", "token requests refused: bad_signature",
		"token requests refused: expired", "top addresses by tokens", "2001:db8:1:2::/64", "198.51.100.7")
	res := pollctl(t, env, "stats", "show", "-o", "json")
	want(t, res, 0)
	var rep struct {
		TokensIssued uint64 `json:"tokens_issued"`
		Edges        struct {
			Refused      map[string]uint64 `json:"refused"`
			TopAddresses []struct {
				Addr   string `json:"addr"`
				Tokens uint64 `json:"tokens"`
			} `json:"top_addresses"`
		} `json:"edges"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || rep.TokensIssued != 45 || rep.Edges.Refused["expired"] != 4 || rep.Edges.Refused["bad_signature"] != 1 ||
		len(rep.Edges.TopAddresses) != 2 || rep.Edges.TopAddresses[0].Addr != "2001:db8:1:2::/64" || rep.Edges.TopAddresses[0].Tokens != 35 || rep.Edges.TopAddresses[1].Tokens != 10 {
		t.Fatalf("stats -o json: %v %s", err, res.stdout)
	}
	// Deleting the poll deletes its figures.
	want(t, pollctl(t, env, "delete", "show", "--force"), 0)
	want(t, pollctl(t, env, "create", "--id", "show", "--title", "Who?", "--option", "a", "--option", "b"), 0)
	want(t, pollctl(t, env, "stats", "show"), 0, "0 (as edges reported)")
}

func manyAddrs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"10.0.` + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + `":1`)
	}
	return b.String()
}
