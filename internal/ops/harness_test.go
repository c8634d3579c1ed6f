package ops_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/metrictest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
)

// counterValue returns the value of name's series with the given labels
// (name=value pairs) in the harness's /metrics.
func counterValue(t *testing.T, fams metrictest.Families, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metrictest.Value(fams, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

func scrape(t *testing.T, url string) metrictest.Families {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams, err := metrictest.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestHarnessMetrics checks the harness's edge counters against what its
// clients saw: requests by route and status, a 429 under its limiter, a
// repeat vote as a dedupe hit, and the Go runtime metrics.
func TestHarnessMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Redis, the origin and the harness")
	}
	redis := redistest.Start(t)
	o := origintest.Start(t, redis.URL)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret),
		Env: []string{"RATE_IP_TOKENS=3/h:3", "LOG_LEVEL=debug"}})
	admin := adminclient.New(o.URL, o.AdminToken)
	harnesstest.OpenPoll(t, admin, "m", "a", "b")

	get := func(path string) (int, string) {
		resp, err := http.Get(h.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/v1/polls/m")
	var c struct {
		Token string `json:"token"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Token == "" {
		t.Fatalf("token: %d %s", status, body)
	}
	vote := func() int {
		resp, err := http.Post(h.URL()+"/v1/polls/m/votes", "application/json", strings.NewReader(`{"token":"`+c.Token+`","choice":0}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := vote(); st != 202 {
		t.Fatalf("vote: %d", st)
	}
	if st := vote(); st != 409 {
		t.Fatalf("repeat vote: %d, want 409", st)
	}
	// Three token requests per address per hour: the 2nd and 3rd pass, the
	// 4th is refused by the token_ip limiter.
	for i := 2; i <= 4; i++ {
		st, _ := get("/v1/polls/m")
		if want := map[bool]int{true: 429, false: 200}[i == 4]; st != want {
			t.Fatalf("token request %d: %d, want %d", i, st, want)
		}
	}
	if st, _ := get("/nope"); st != 404 {
		t.Fatalf("/nope: %d", st)
	}

	fams := scrape(t, h.URL())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"edgepoll_harness_http_requests_total", []string{"route", "poll", "status", "200"}, 3},
		{"edgepoll_harness_http_requests_total", []string{"route", "poll", "status", "429"}, 1},
		{"edgepoll_harness_http_requests_total", []string{"route", "vote", "status", "202"}, 1},
		{"edgepoll_harness_http_requests_total", []string{"route", "vote", "status", "409"}, 1},
		{"edgepoll_harness_http_requests_total", []string{"route", "other", "status", "404"}, 1},
		{"edgepoll_harness_rate_limited_total", []string{"limiter", "token_ip"}, 1},
		{"edgepoll_harness_rate_limited_total", []string{"limiter", "vote_ip"}, 0},
		{"edgepoll_harness_dedupe_hits_total", nil, 1},
		{"edgepoll_harness_handoff_failures_total", []string{"reason", "queue_full"}, 0},
		{"edgepoll_harness_votes_submitted_total", nil, 1},
	} {
		if got := counterValue(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The batch that carried the vote: in the harness's log and the
	// origin's under one id.
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m := regexp.MustCompile(`msg="batch delivered" batch=([0-9a-f]{32})`).FindStringSubmatch(h.Logs.String()); m != nil {
			id = m[1]
		}
	}
	if id == "" {
		t.Fatalf("the harness logged no delivered batch:\n%s", h.Logs.String())
	}
	if !strings.Contains(o.Logs(), "batch="+id) {
		t.Errorf("batch %s is not in the origin's log:\n%s", id, o.Logs())
	}
	// And in the ledger, beside the vote it carried.
	var ledger strings.Builder
	if err := admin.Export(context.Background(), "m", "ledger", "csv", &ledger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ledger.String(), id) {
		t.Errorf("batch %s is not in the ledger export:\n%s", id, ledger.String())
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "edgepoll_harness_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("the harness does not export %s", name)
		}
	}
}
