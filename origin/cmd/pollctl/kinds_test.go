package main_test

import (
	"testing"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/shared"
)

// TestPollctlKinds creates a poll of each new kind from flags, counts
// ballots sent through the signed ingest endpoint, and checks results,
// the instant-runoff count from the ledger, and word bans.
func TestPollctlKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken}

	want(t, pollctl(t, env, "create", "--id", "mood", "--title", "How was it?", "--kind", "scale", "--min", "1", "--max", "10",
		"--min-label", "awful", "--max-label", "brilliant", "--open", "-o", "json"), 0, `"kind": "scale"`, `"min_label": "awful"`)
	want(t, pollctl(t, env, "create", "--id", "bad", "--title", "T", "--kind", "scale", "--min", "0", "--max", "101"), 2, "2-101 steps")
	want(t, pollctl(t, env, "create", "--id", "best", "--title", "Rank them", "--kind", "ranked",
		"--option", "Ann", "--option", "Bob", "--option", "Cy", "--open", "-o", "json"), 0, `"max_choices": 3`)
	want(t, pollctl(t, env, "create", "--id", "oneword", "--title", "One word", "--kind", "words", "--max-words", "2",
		"--block", "Boring", "--open", "-o", "json"), 0, `"max_words": 2`)
	want(t, pollctl(t, env, "create", "--id", "bad", "--title", "T", "--kind", "words", "--block", "no way"), 2, "blocklist word 1")
	want(t, pollctl(t, env, "show", "mood"), 0, "scale", "1 (awful) to 10 (brilliant)")
	want(t, pollctl(t, env, "show", "oneword"), 0, "max words", "2")

	b := &shared.Batch{ID: shared.BatchID{7}, Edge: "test"}
	add := func(poll string, choices []uint8, words ...string) {
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: shared.VoterID{byte(len(b.Votes) + 1), 3}, Choices: choices, Words: words, At: nowMilli()})
	}
	for _, v := range []uint8{6, 7, 7, 9} { // 7, 8, 8, 10
		add("mood", []uint8{v})
	}
	// The "transfers decide" example: A 4, B 3, C→B 2.
	for range 4 {
		add("best", []uint8{0})
	}
	for range 3 {
		add("best", []uint8{1})
	}
	for range 2 {
		add("best", []uint8{2, 1})
	}
	add("oneword", []uint8{}, "fun", "boring")
	add("oneword", []uint8{}, "fun")
	add("oneword", []uint8{}, "rubbish")
	ingest(t, o, b)

	want(t, pollctl(t, env, "results", "mood"), 0, "mean 8.25  median 8", "10 ")
	want(t, pollctl(t, env, "results", "best"), 0, "first preferences", "Ann", "44.4%")
	want(t, pollctl(t, env, "results", "best", "--method", "borda"), 0, "Borda points", "Bob")
	want(t, pollctl(t, env, "results", "best", "--method", "irv"), 0,
		"round 1: Ann 4, Bob 3, Cy 2 (continuing 9, exhausted 0): Cy eliminated\n",
		"round 2: Ann 4, Bob 5 (continuing 9, exhausted 0): Bob wins with 5 of 9\n")
	want(t, pollctl(t, env, "results", "mood", "--method", "irv"), 2, "for ranked polls")
	want(t, pollctl(t, env, "results", "oneword"), 0, "distinct words 2 (exact)", "fun", "rubbish")
	want(t, pollctl(t, env, "words", "ban", "oneword", "Rubbish"), 0, `"rubbish" is hidden`)
	want(t, pollctl(t, env, "words", "hidden", "oneword"), 0, "boring\nrubbish\n")
	res := pollctl(t, env, "results", "oneword")
	want(t, res, 0, "distinct words 1")
	if contains(res.stdout, "rubbish") {
		t.Fatalf("banned word still shown:\n%s", res.stdout)
	}
	want(t, pollctl(t, env, "export", "oneword", "ledger"), 0, "voter_key,words,hidden,batch\n", ",rubbish,rubbish,07000000000000000000000000000000\n", ",fun;boring,boring,")
	want(t, pollctl(t, env, "words", "ban", "best", "x"), 4, "not a words poll")
	want(t, pollctl(t, env, "words", "ban", "oneword"), 2, "words ban")
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
