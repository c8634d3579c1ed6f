package shared_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

func sampleKindPolls() []*shared.Poll {
	base := func(kind shared.Kind) *shared.Poll {
		p := samplePoll()
		p.ID, p.Kind, p.MaxChoices = "k-"+string(kind), kind, 0
		p.Options = nil
		return p
	}
	scale := base(shared.KindScale)
	scale.Scale = &shared.Scale{Min: -5, Max: 5, MinLabel: "awful", MaxLabel: "brilliant ✓"}
	ranked := base(shared.KindRanked)
	ranked.Options = []shared.Option{{Label: "A"}, {Label: "B"}, {Label: "C"}, {Label: "D"}}
	ranked.MaxChoices = 3
	ranked.Identity, ranked.JWTIssuer, ranked.JWTAudience = shared.IdentitySigned, "https://app.example", "polls"
	words := base(shared.KindWords)
	words.MaxWords = 3
	words.Identity = shared.IdentityInvite
	return []*shared.Poll{scale, ranked, words}
}

func sampleKindSnapshots() []*shared.Snapshot {
	return []*shared.Snapshot{
		{Poll: "s", Version: 4, Kind: shared.KindScale, Counts: []uint64{1, 0, 2}, Total: 3, Voters: 3, GeneratedAt: 9, ScaleMin: -1, ScaleSum: 1},
		{Poll: "r", Version: 5, Kind: shared.KindRanked, Counts: []uint64{2, 1, 0}, Borda: []uint64{5, 3, 1}, Total: 6, Voters: 3, GeneratedAt: 9},
		{Poll: "w", Version: 6, Kind: shared.KindWords, Counts: []uint64{}, Total: 4, Voters: 3, GeneratedAt: 9,
			Words: []shared.WordCount{{Word: "amazing", Count: 2}, {Word: "café", Count: 1}}, Distinct: 2, DistinctExact: true},
	}
}

func TestKindPollsValidateAndRoundTrip(t *testing.T) {
	for _, p := range sampleKindPolls() {
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", p.Kind, err)
		}
		data, err := shared.MarshalPoll(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(data[:4]) != "\xdc\x00\x10\x02" {
			t.Fatalf("%s: written as % x…, want a version 2 array(16)", p.Kind, data[:4])
		}
		var got shared.Poll
		if err := shared.UnmarshalPoll(data, &got); err != nil {
			t.Fatalf("%s: %v", p.Kind, err)
		}
		if !reflect.DeepEqual(p, &got) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", p.Kind, &got, p)
		}
	}
	// single and multi polls keep the version 1 forms.
	data, _ := shared.MarshalPoll(samplePoll())
	if data[0] != 0x90+11 || data[1] != 1 {
		t.Fatalf("multi poll written as % x…", data[:2])
	}
}

func TestKindPollValidateRejects(t *testing.T) {
	polls := sampleKindPolls()
	scale, ranked, words := polls[0], polls[1], polls[2]
	cases := map[string]struct {
		p   *shared.Poll
		mut func(p *shared.Poll)
	}{
		"scale no range":       {scale, func(p *shared.Poll) { p.Scale = nil }},
		"scale one step":       {scale, func(p *shared.Poll) { p.Scale.Max = p.Scale.Min }},
		"scale 102 steps":      {scale, func(p *shared.Poll) { p.Scale.Min, p.Scale.Max = 0, 101 }},
		"scale reversed":       {scale, func(p *shared.Poll) { p.Scale.Min, p.Scale.Max = 5, 1 }},
		"scale too far":        {scale, func(p *shared.Poll) { p.Scale.Min, p.Scale.Max = 999_990, 1_000_001 }},
		"scale long label":     {scale, func(p *shared.Poll) { p.Scale.MinLabel = strings.Repeat("x", 101) }},
		"scale with options":   {scale, func(p *shared.Poll) { p.Options = []shared.Option{{Label: "a"}, {Label: "b"}} }},
		"scale max_choices":    {scale, func(p *shared.Poll) { p.MaxChoices = 1 }},
		"ranked max 0":         {ranked, func(p *shared.Poll) { p.MaxChoices = 0 }},
		"ranked max > n":       {ranked, func(p *shared.Poll) { p.MaxChoices = 5 }},
		"ranked one option":    {ranked, func(p *shared.Poll) { p.Options = p.Options[:1]; p.MaxChoices = 1 }},
		"words max 0":          {words, func(p *shared.Poll) { p.MaxWords = 0 }},
		"words max 4":          {words, func(p *shared.Poll) { p.MaxWords = 4 }},
		"words with options":   {words, func(p *shared.Poll) { p.Options = []shared.Option{{Label: "a"}, {Label: "b"}} }},
		"words with scale":     {words, func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 1, Max: 3} }},
		"ranked with max_word": {ranked, func(p *shared.Poll) { p.MaxWords = 1 }},
	}
	for name, c := range cases {
		p := *c.p
		if p.Scale != nil {
			sc := *p.Scale
			p.Scale = &sc
		}
		c.mut(&p)
		if err := p.Validate(); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestKindBallots(t *testing.T) {
	polls := sampleKindPolls()
	scale, ranked, words := polls[0], polls[1], polls[2]
	for v, want := range map[int64]int{-5: 0, 0: 5, 5: 10, -6: -1, 6: -1} {
		c, err := scale.ScaleChoice(v)
		if want < 0 {
			if err == nil || !strings.Contains(shared.ErrorMessage(err), "from -5 to 5") {
				t.Errorf("value %d: %v", v, err)
			}
			continue
		}
		if err != nil || int(c) != want {
			t.Errorf("value %d: %d %v", v, c, err)
		}
		if err := scale.ValidateChoices([]uint8{c}); err != nil {
			t.Errorf("value %d: %v", v, err)
		}
	}
	if scale.ValidateChoices([]uint8{11}) == nil || scale.ValidateChoices([]uint8{1, 2}) == nil {
		t.Error("scale took a byte off the scale or two values")
	}
	if _, err := ranked.ScaleChoice(1); err == nil || !strings.Contains(shared.ErrorMessage(err), `"choice" or "choices"`) {
		t.Errorf("value on a ranked poll: %v", err)
	}
	for _, ok := range [][]uint8{{2, 0, 1}, {3}, {0, 3}} {
		if err := ranked.ValidateChoices(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][]uint8{{}, {0, 0}, {4}, {0, 1, 2, 3}} {
		if ranked.ValidateChoices(bad) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if err := words.ValidateChoices([]uint8{0}); err == nil || !strings.Contains(shared.ErrorMessage(err), `"words"`) {
		t.Errorf("choices on a words poll: %v", err)
	}
	ws := []string{"Amazing", " ＦＵＮ ", "don’t"}
	if err := words.ValidateWords(ws); err != nil || strings.Join(ws, ",") != "amazing,fun,don't" {
		t.Fatalf("%v %v", ws, err)
	}
	for name, bad := range map[string][]string{
		"none": {}, "four": {"a", "b", "c", "d"}, "repeat": {"Yes", "yes"}, "bad": {"ok", "no way"},
	} {
		if err := words.ValidateWords(bad); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := words.ValidateWords([]string{"ok", "Ok"}); err == nil || shared.ErrorMessage(err) != `word 2: "Ok" repeats word 1` {
		t.Errorf("repeat message: %v", err)
	}
}

func TestKindSnapshotsRoundTrip(t *testing.T) {
	for _, s := range sampleKindSnapshots() {
		data, err := shared.MarshalSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != 0x99 || data[1] != 2 {
			t.Fatalf("%s: written as % x…", s.Kind, data[:2])
		}
		var got shared.Snapshot
		if err := shared.UnmarshalSnapshot(data, &got); err != nil {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		if !reflect.DeepEqual(s, &got) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", s.Kind, &got, s)
		}
	}
}

var normalizeCases = []struct{ in, want, err string }{
	{"amazing", "amazing", ""},
	{"Amazing", "amazing", ""},
	{"  AMAZING\t", "amazing", ""},
	{"ＡＭＡＺＩＮＧ", "amazing", ""},         // full-width: NFKC
	{"ﬁne", "fine", ""},                // ligature: NFKC
	{"Straße", "strasse", ""},          // full case folding, not simple
	{"STRASSE", "strasse", ""},         // … so both meet
	{"ΣΟΦΊΑ", "σοφία", ""},             // Greek, final sigma folded
	{"Café", "café", ""},               // precomposed
	{"Cafe\u0301", "café", ""},         // decomposed: NFKC composes
	{"don't", "don't", ""},             // inner apostrophe
	{"Don’t", "don't", ""},             // U+2019 becomes an apostrophe
	{"rock-n-roll", "rock-n-roll", ""}, // inner hyphens
	{"x\u2010ray", "x-ray", ""},        // U+2010 becomes a hyphen-minus
	{"covid19", "covid19", ""},
	{"２０２６", "2026", ""},     // full-width digits
	{"नमस्ते", "नमस्ते", ""}, // Devanagari: letters and marks
	{"東京", "東京", ""},
	{strings.Repeat("a", 24), strings.Repeat("a", 24), ""},
	{strings.Repeat("é", 24), strings.Repeat("é", 24), ""},
	{strings.Repeat("a", 25), "", "at most 24 characters"},
	{"", "", "must not be empty"},
	{"   ", "", "must not be empty"},
	{"two words", "", "only letters"},
	{"-lead", "", "only letters"},
	{"trail-", "", "only letters"},
	{"a--b", "", "only letters"},
	{"a-'b", "", "only letters"},
	{"'quoted'", "", "only letters"},
	{"emoji😀", "", "only letters"},
	{"semi;colon", "", "only letters"},
	{"comma,", "", "only letters"},
	{"\u0301accent", "", "only letters"}, // a mark with nothing before it
	{"tab\tinside", "", "only letters"},
	{"\xff", "", "valid UTF-8"},
	{"<b>", "", "only letters"},
}

func TestNormalizeWord(t *testing.T) {
	for _, c := range normalizeCases {
		got, err := shared.NormalizeWord(c.in)
		if c.err != "" {
			if shared.ErrorCode(err) != shared.EINVALID || !strings.Contains(shared.ErrorMessage(err), c.err) {
				t.Errorf("%q: got %q, %v; want an error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, w := range shared.DefaultHiddenWords() {
		if n, err := shared.NormalizeWord(w); err != nil || n != w {
			t.Errorf("default list entry %q is not in normal form: %q %v", w, n, err)
		}
	}
}

func TestScaleMeanMedian(t *testing.T) {
	snap := func(min int64, counts ...uint64) *shared.Snapshot {
		s := &shared.Snapshot{Kind: shared.KindScale, ScaleMin: min, Counts: counts}
		for i, c := range counts {
			s.Voters += c
			s.ScaleSum += int64(c) * (min + int64(i))
		}
		return s
	}
	for _, c := range []struct {
		s            *shared.Snapshot
		mean, median string
	}{
		{snap(1, 0, 0), "null", "null"},
		{snap(1, 1), "1.00", "1"},
		{snap(1, 1, 0, 1), "2.00", "2"},                  // 1 and 3
		{snap(1, 1, 1), "1.50", "1.5"},                   // 1 and 2
		{snap(1, 2, 0, 1), "1.67", "1"},                  // 5/3 = 1.666…
		{snap(1, 0, 2, 0, 0, 0, 0, 0, 1), "4.00", "2"},   // 2, 2, 8
		{snap(1, 0, 2, 0, 0, 0, 0, 1), "3.67", "2"},      // 2, 2, 7: 11/3 = 3.666…
		{snap(0, 200, 0, 0, 0, 0, 0, 0, 1), "0.03", "0"}, // 7/201 = 0.0348…
		{snap(-1, 1, 0, 0), "-1.00", "-1"},
		{snap(-2, 1, 1), "-1.50", "-1.5"},
		{snap(-1, 7, 1), "-0.88", "-1"},    // -7/8 = -0.875: half away from zero
		{snap(-1, 5, 3), "-0.63", "-1"},    // -5/8 = -0.625
		{snap(-1, 7, 0, 1), "-0.75", "-1"}, // -6/8
		// half away from zero: 0.125 → 0.13, -0.125 → -0.13
		{snap(0, 7, 1), "0.13", "0"},
		{snap(-1, 1, 7), "-0.13", "0"},
		// 1/200 = 0.005 → 0.01; -1/200 → -0.01
		{snap(0, 199, 1), "0.01", "0"},
		{snap(-1, 1, 199), "-0.01", "0"},
		{snap(-3, 1, 0, 0, 0, 0, 0, 1), "0.00", "0"}, // -3 and 3
		{snap(-3, 1, 1), "-2.50", "-2.5"},
	} {
		if got := string(shared.AppendScaleMean(nil, c.s)); got != c.mean {
			t.Errorf("counts %v from %d: mean %s, want %s", c.s.Counts, c.s.ScaleMin, got, c.mean)
		}
		if got := string(shared.AppendScaleMedian(nil, c.s)); got != c.median {
			t.Errorf("counts %v from %d: median %s, want %s", c.s.Counts, c.s.ScaleMin, got, c.median)
		}
	}
}

func BenchmarkNormalizeWordASCII(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := shared.NormalizeWord("Amazing"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeWordUnicode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := shared.NormalizeWord("Straße’s"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalBatchWords500 decodes a batch of 500 words votes (two
// words each), the origin's cost per words batch before Redis.
func BenchmarkUnmarshalBatchWords500(b *testing.B) {
	batch := sampleBatch(b, 500)
	for i := range batch.Votes {
		batch.Votes[i].Choices, batch.Votes[i].Words = []uint8{}, []string{"amazing", "fun"}
	}
	data, _ := shared.MarshalBatch(batch)
	var got shared.Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := shared.UnmarshalBatch(data, &got); err != nil {
			b.Fatal(err)
		}
	}
}
