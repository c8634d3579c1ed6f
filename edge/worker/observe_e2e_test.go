//go:build !js && linux

package worker_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jsonLines returns the JSON objects among the Worker's log lines (wrangler
// prefixes nothing to console output; other lines are wrangler's own).
func jsonLines(logs string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(l, '{'); i >= 0 {
			var m map[string]any
			if json.Unmarshal([]byte(l[i:]), &m) == nil && m["msg"] != nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestWorkerObservability runs the Worker under wrangler dev with a Workers
// Analytics Engine binding and LOG_REQUESTS=all: votes still count, every
// log line is JSON with the stable fields, and one batch can be followed by
// its id from the producer's log through the consumer's to the origin's.
func TestWorkerObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("workerd end-to-end test: runs wrangler dev, the origin and redis (skipped with -short)")
	}
	e := startEdgeVars(t, `LOG_REQUESTS = "all"`, `[[analytics_engine_datasets]]
binding = "EDGEPOLL_ANALYTICS"
dataset = "edgepoll_e2e"
`)
	e.createPoll("obs")
	const voters = 5
	for i := range voters {
		tok, err := e.token("obs")
		if err != nil {
			t.Fatal(err)
		}
		if st, body, err := e.voteRetrying("obs", tok, i%2); err != nil || st != http.StatusAccepted {
			t.Fatalf("vote %d: %d %s %v", i, st, body, err)
		}
	}
	resp, b := e.do("POST", "/v1/polls/obs/votes", map[string]string{"Content-Type": "application/json"}, `{"choice":`)
	wantError(t, "malformed vote", resp, b, http.StatusBadRequest, "invalid")
	e.waitCounted("obs", voters, 30*time.Second)

	var queued, delivered []string
	requests := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		queued, delivered = queued[:0], delivered[:0]
		clear(requests)
		for _, l := range jsonLines(e.logs.String()) {
			if l["service"] != "edgepoll-edge" || l["edge"] != "e2e" {
				continue
			}
			switch l["msg"] {
			case "batch queued":
				queued = append(queued, l["batch"].(string))
			case "batch delivered":
				delivered = append(delivered, l["batch"].(string))
				if merged, ok := l["merged"].([]any); ok {
					for _, id := range merged {
						delivered = append(delivered, id.(string))
					}
				}
			case "request":
				if l["analytics"] != true {
					t.Fatalf("the Worker saw no Analytics Engine binding: %v", l)
				}
				if l["poll"] == "obs" {
					requests[l["route"].(string)+" "+jsonNumber(l["status"])+" "+l["code"].(string)]++
				}
			}
		}
		if len(queued) > 0 && len(delivered) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(queued) == 0 || len(delivered) == 0 {
		t.Fatalf("no batch queued (%d) or delivered (%d) log lines:\n%s", len(queued), len(delivered), e.logs.String())
	}
	if got := requests["vote 202 "]; got < voters {
		t.Errorf("%d JSON request lines for accepted votes, want ≥ %d (all: %v)", got, voters, requests)
	}
	if requests["vote 400 invalid"] != 1 {
		t.Errorf("the malformed vote's request line has no invalid code: %v", requests)
	}
	// Every queued batch reached the consumer and the origin under its id.
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	originLogs := e.origin.Logs()
	for _, id := range queued {
		if !hex.MatchString(id) {
			t.Fatalf("batch id %q is not 32 hex digits", id)
		}
		if !slices.Contains(delivered, id) {
			t.Errorf("batch %s was queued but no delivery log names it (delivered: %v)", id, delivered)
		}
	}
	followed := false
	for _, id := range delivered {
		if strings.Contains(originLogs, id) {
			followed = true
		}
	}
	if !followed {
		t.Errorf("no delivered batch id (%v) appears in the origin's log:\n%s", delivered, originLogs)
	}
	if strings.Contains(e.logs.String(), "analytics data point not written") {
		t.Errorf("the Analytics Engine binding refused data points:\n%s", e.logs.String())
	}
}

func jsonNumber(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.Itoa(int(f))
	}
	return ""
}
