// Package kindstest is the end-to-end check of the scale, ranked and words
// poll kinds that every edge host runs: the Worker under wrangler dev and
// the wazero harness, each against the real origin and Redis.
package kindstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Run votes in a scale, a ranked and a words poll through an edge (base URL
// edge), checks the edge's 400s for bad ballots of each kind, and waits
// until the origin (through admin, which calls /v1/admin/{path} and returns
// status and body) counts exactly what was accepted; then reads the edge's
// public results for each. get fetches an edge path. The polls are created
// here, with the ids k-scale, k-ranked and k-words.
func Run(t *testing.T, edge string, admin func(method, path, body string) (int, []byte),
	get func(path string) (*http.Response, []byte, error)) {
	t.Helper()
	for _, body := range []string{
		`{"id":"k-scale","title":"How hot?","kind":"scale","scale":{"min":-2,"max":7,"min_label":"cold","max_label":"hot"},"state":"open"}`,
		`{"id":"k-ranked","title":"Rank","kind":"ranked","options":[{"label":"A"},{"label":"B"},{"label":"C"}],"state":"open"}`,
		`{"id":"k-words","title":"One word","kind":"words","max_words":2,"state":"open","blocklist":["boring"]}`,
	} {
		if st, b := admin("POST", "polls", body); st != 201 {
			t.Fatalf("create: %d %s", st, b)
		}
	}
	post := func(poll, ballot string) (int, string) {
		t.Helper()
		var tok string
		for attempt := 0; ; attempt++ {
			resp, b, err := get("/v1/polls/" + poll)
			if err == nil && resp.StatusCode == 200 {
				var r struct {
					Token string `json:"token"`
				}
				if json.Unmarshal(b, &r) == nil && r.Token != "" {
					tok = r.Token
					break
				}
			}
			if attempt == 20 {
				t.Fatalf("token for %s: %v %s", poll, err, b)
			}
			time.Sleep(200 * time.Millisecond)
		}
		body := fmt.Sprintf(`{"token":%q,%s}`, tok, ballot)
		for attempt := 0; ; attempt++ {
			resp, err := http.Post(edge+"/v1/polls/"+poll+"/votes", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || attempt == 4 {
				return resp.StatusCode, string(b)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, c := range []struct{ poll, ballot, msg string }{
		{"k-scale", `"value":8`, "value must be an integer from -2 to 7"},
		{"k-scale", `"choice":1`, `this poll takes \"value\", not \"choice\"`},
		{"k-ranked", `"choices":[1,1]`, "choice 1 given twice"},
		{"k-ranked", `"choices":[3]`, "choice 3 out of range 0-2"},
		{"k-words", `"words":["no way"]`, "word 1: a word may contain only letters, digits and inner hyphens or apostrophes"},
		{"k-words", `"words":["a","b","c"]`, "at most 2 words allowed"},
	} {
		if st, b := post(c.poll, c.ballot); st != 400 || !strings.Contains(b, c.msg) {
			t.Errorf("%s %s: %d %s, want 400 %q", c.poll, c.ballot, st, b, c.msg)
		}
	}
	scale := []int{-2, 7, 7, 3, 0}
	for _, v := range scale {
		if st, b := post("k-scale", fmt.Sprintf(`"value":%d`, v)); st != 202 {
			t.Fatalf("scale vote %d: %d %s", v, st, b)
		}
	}
	ranked := []string{"[2,0,1]", "[0]", "[1,2]", "[2,1]"}
	for _, r := range ranked {
		if st, b := post("k-ranked", `"choices":`+r); st != 202 {
			t.Fatalf("ranked vote %s: %d %s", r, st, b)
		}
	}
	words := []string{`["Amazing","fun"]`, `["AMAZING"]`, `["boring","fun"]`, `["Café"]`}
	for _, w := range words {
		if st, b := post("k-words", `"words":`+w); st != 202 {
			t.Fatalf("words vote %s: %d %s", w, st, b)
		}
	}
	type results struct {
		Counts []int64           `json:"counts"`
		Voters int64             `json:"voters"`
		Total  int64             `json:"total"`
		Borda  []int64           `json:"borda"`
		Mean   json.RawMessage   `json:"mean"`
		Median json.RawMessage   `json:"median"`
		Words  []json.RawMessage `json:"words"`
	}
	wait := func(poll string, voters int64) results {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, b := admin("GET", "polls/"+poll+"/results", "")
			var r results
			if st == 200 && json.Unmarshal(b, &r) == nil && r.Voters == voters {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: origin never counted %d voters: %d %s", poll, voters, st, b)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if r := wait("k-scale", 5); !slices.Equal(r.Counts, []int64{1, 0, 1, 0, 0, 1, 0, 0, 0, 2}) || string(r.Mean) != "3.00" || string(r.Median) != "3" {
		t.Errorf("scale counted %+v (mean %s median %s)", r, r.Mean, r.Median)
	}
	// first: C, A, B, C; Borda (n = 3): [2,0,1] C2 A1 B0; [0] A2; [1,2] B2 C1; [2,1] C2 B1
	if r := wait("k-ranked", 4); !slices.Equal(r.Counts, []int64{1, 1, 2}) || !slices.Equal(r.Borda, []int64{3, 3, 5}) || r.Total != 8 {
		t.Errorf("ranked counted %+v", r)
	}
	r := wait("k-words", 4)
	if got := fmt.Sprintf("%s", r.Words); got != `[{"word":"amazing","count":2} {"word":"fun","count":2} {"word":"café","count":1}]` || r.Total != 6 {
		t.Errorf("words counted %s (total %d)", got, r.Total)
	}
	// The edge's public results carry each kind's fields.
	for poll, want := range map[string]string{
		"k-scale":  `"kind":"scale","min":-2,"max":7,`,
		"k-ranked": `"borda":[3,3,5]`,
		"k-words":  `"words":[{"word":"amazing","count":2},{"word":"fun","count":2},{"word":"café","count":1}],"distinct":3,"distinct_exact":true`,
	} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, b, err := get("/v1/polls/" + poll + "/results")
			if err == nil && resp.StatusCode == 200 && strings.Contains(string(b), want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge results of %s lack %s: %v %s", poll, want, err, b)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}
