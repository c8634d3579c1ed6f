package server_test

import (
	"crypto/rand"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// generatedAt masks the time in a results body so it can be compared.
var generatedAt = regexp.MustCompile(`"generated_at":"[^"]*"`)

func kindBatch(votes ...shared.Vote) *shared.Batch {
	b := &shared.Batch{Edge: "test", Votes: votes}
	_, _ = rand.Read(b.ID[:])
	return b
}

func kvote(poll string, i int, choices ...uint8) shared.Vote {
	return shared.Vote{Poll: poll, Voter: voter(i), Choices: choices, At: time.Now().UnixMilli()}
}

func wvote(poll string, i int, words ...string) shared.Vote {
	return shared.Vote{Poll: poll, Voter: voter(i), Choices: []uint8{}, Words: words, At: time.Now().UnixMilli()}
}

// TestKindsResultsAndExport: the JSON contract of docs/EDGE-API.md and
// docs/API.md for each new kind, through the admin API, ingest, public
// results (JSON and MessagePack) and the exports.
func TestKindsResultsAndExport(t *testing.T) {
	e := newEnv(t)
	scale := e.createPoll("mood", func(p *shared.Poll) {
		p.Kind, p.Options, p.Scale = shared.KindScale, nil, &shared.Scale{Min: 1, Max: 10, MinLabel: "awful", MaxLabel: "brilliant"}
	})
	if scale.Scale == nil || scale.Scale.Max != 10 || scale.Options != nil {
		t.Fatalf("created %+v", scale)
	}
	ranked := e.createPoll("best", func(p *shared.Poll) {
		p.Kind = shared.KindRanked
		p.Options = append(p.Options, shared.Option{Label: "black"})
	})
	if ranked.MaxChoices != 4 {
		t.Fatalf("ranked max_choices default %d, want 4", ranked.MaxChoices)
	}
	r := e.admin("POST", "/polls", map[string]any{"id": "oneword", "title": "One word", "kind": "words", "state": "open", "blocklist": []string{"Boring"}})
	if r.status != 201 || !strings.Contains(string(r.body), `"max_words":1`) || strings.Contains(string(r.body), "boring") {
		t.Fatalf("create words: %d %s", r.status, r.body)
	}
	for name, body := range map[string]map[string]any{
		"blocklist on single": {"id": "x1", "title": "t", "options": []map[string]string{{"label": "a"}, {"label": "b"}}, "blocklist": []string{"x"}},
		"scale with options":  {"id": "x2", "title": "t", "kind": "scale", "scale": map[string]int{"min": 1, "max": 5}, "options": []map[string]string{{"label": "a"}, {"label": "b"}}},
		"scale of 102":        {"id": "x3", "title": "t", "kind": "scale", "scale": map[string]int{"min": 0, "max": 101}},
		"max_words 4":         {"id": "x4", "title": "t", "kind": "words", "max_words": 4},
		"bad blocklist word":  {"id": "x5", "title": "t", "kind": "words", "blocklist": []string{"no way"}},
	} {
		if r := e.admin("POST", "/polls", body); r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}

	// 7, 8, 8, 10 on the scale; the ranked example; words with a hidden one.
	e.ingest(kindBatch(kvote("mood", 1, 6), kvote("mood", 2, 7), kvote("mood", 3, 7), kvote("mood", 4, 9),
		kvote("best", 1, 2, 0, 1), kvote("best", 2, 0), kvote("best", 3, 3, 2),
		wvote("oneword", 1, "fun"), wvote("oneword", 2, "amazing"), wvote("oneword", 3, "fun"), wvote("oneword", 4, "boring")))

	for id, want := range map[string]string{
		"mood":    `{"poll":"mood","version":4,"kind":"scale","min":1,"max":10,"counts":[0,0,0,0,0,0,1,2,0,1],"total":4,"voters":4,"mean":8.25,"median":8,"generated_at":""}`,
		"best":    `{"poll":"best","version":3,"kind":"ranked","counts":[1,0,1,1],"total":6,"voters":3,"borda":[5,1,5,3],"generated_at":""}`,
		"oneword": `{"poll":"oneword","version":4,"kind":"words","counts":[],"total":4,"voters":4,"words":[{"word":"fun","count":2},{"word":"amazing","count":1}],"distinct":2,"distinct_exact":true,"count_error":0,"generated_at":""}`,
	} {
		r := e.do("GET", "/v1/polls/"+id+"/results", nil, nil)
		got := generatedAt.ReplaceAllString(string(r.body), `"generated_at":""`)
		// memstore's versions count votes; compare the rest
		got = regexp.MustCompile(`"version":\d+`).ReplaceAllString(got, `"version":0`)
		want = regexp.MustCompile(`"version":\d+`).ReplaceAllString(want, `"version":0`)
		if r.status != 200 || got != want {
			t.Errorf("%s results\n got %s\nwant %s", id, got, want)
		}
		m := e.do("GET", "/v1/polls/"+id+"/results", nil, map[string]string{"Accept": shared.ContentTypeMsgpack})
		var snap shared.Snapshot
		if err := shared.UnmarshalSnapshot(m.body, &snap); err != nil || string(snap.Kind) == "" {
			t.Errorf("%s msgpack results: %v %+v", id, err, snap)
		}
	}

	// A ban hides a shown word at once; the ledger keeps it, marked.
	if r := e.admin("POST", "/polls/oneword/words/ban", map[string]string{"word": "AMAZING"}); r.status != 200 || string(r.body) != `{"word":"amazing","hidden":true}`+"\n" {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", "/polls/best/words/ban", map[string]string{"word": "x"}); r.status != 409 {
		t.Fatalf("ban on ranked: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", "/polls/oneword/words/ban", map[string]string{"word": "no way"}); r.status != 400 {
		t.Fatalf("ban of a non-word: %d %s", r.status, r.body)
	}
	if r := e.admin("GET", "/polls/oneword/words/hidden", nil); string(r.body) != `{"hidden":["amazing","boring"]}`+"\n" {
		t.Fatalf("hidden: %s", r.body)
	}
	if r := e.do("GET", "/v1/polls/oneword/results", nil, nil); !strings.Contains(string(r.body), `"words":[{"word":"fun","count":2}],"distinct":1`) {
		t.Fatalf("after ban: %s", r.body)
	}

	export := func(id, data, format string) string {
		t.Helper()
		r := e.admin("GET", "/polls/"+id+"/export?data="+data+"&format="+format, nil)
		if r.status != 200 {
			t.Fatalf("export %s %s %s: %d %s", id, data, format, r.status, r.body)
		}
		return string(r.body)
	}
	if got := export("mood", "results", "csv"); !strings.HasPrefix(got, "value,votes\n1,0\n") || !strings.Contains(got, "\n8,2\n9,0\n10,1\n") {
		t.Errorf("scale results csv:\n%s", got)
	}
	if got := export("best", "results", "csv"); !strings.HasPrefix(got, "option,label,first,borda\n0,red,1,5\n") {
		t.Errorf("ranked results csv:\n%s", got)
	}
	if got := export("oneword", "results", "csv"); got != "word,count\nfun,2\n" {
		t.Errorf("words results csv:\n%s", got)
	}
	var res struct {
		Kind   string   `json:"kind"`
		Mean   float64  `json:"mean"`
		Median float64  `json:"median"`
		Borda  []uint64 `json:"borda"`
	}
	if err := json.Unmarshal([]byte(export("mood", "results", "json")), &res); err != nil || res.Kind != "scale" || res.Mean != 8.25 || res.Median != 8 {
		t.Errorf("scale results json: %+v %v", res, err)
	}
	batchRE := `[0-9a-f]{32}`
	for _, c := range []struct{ id, format, want string }{
		{"mood", "csv", `^voter_key,value,batch\n[0-9a-f]+,7,` + batchRE + `\n`},
		{"best", "csv", `^voter_key,choices,batch\n[0-9a-f]+,2;0;1,` + batchRE + `\n`},
		{"oneword", "csv", `^voter_key,words,hidden,batch\n[0-9a-f]+,fun,,` + batchRE + `\n[0-9a-f]+,amazing,amazing,` + batchRE + `\n[0-9a-f]+,fun,,` + batchRE + `\n[0-9a-f]+,boring,boring,`},
		{"mood", "json", `^\{"poll":"mood","kind":"scale","ballots":\[\n\{"voter_key":"[0-9a-f]+","value":7,"batch":"` + batchRE + `"\}`},
		{"best", "json", `"choices":\[2,0,1\],"batch":"` + batchRE + `"`},
		{"oneword", "json", `"words":\["amazing"\],"hidden":\["amazing"\],"batch":"` + batchRE + `"`},
	} {
		if got := export(c.id, "ledger", c.format); !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s ledger %s:\n%s\nwant match %s", c.id, c.format, got, c.want)
		}
	}
}
