package redisstore_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/redisstore"
	"github.com/edgepoll/edgepoll/shared"
)

// kindCases are the suite's cases for the scale, ranked and words kinds.
var kindCases = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store)
}{
	{"ScaleExactConcurrent", testScaleConcurrent},
	{"RankedExactConcurrent", testRankedConcurrent},
	{"RankedRejectsAndLedger", testRankedRejectsAndLedger},
	{"WordsExactConcurrent", testWordsConcurrent},
	{"WordsHiddenAndBan", testWordsHiddenAndBan},
	{"WordsOrderAtTheBoundary", testWordsOrder},
	{"WordsTableBound", testWordsTableBound},
	{"LedgerBatchIDs", testLedgerBatchIDs},
	{"LedgerWithoutMarkers", testLedgerWithoutMarkers},
	{"LedgerChunkFitsItsSizeClass", testLedgerChunkFits},
}

// createOpen creates p (with blocklist for a words poll) and opens it an
// hour ago.
func createOpen(tb testing.TB, s *redisstore.Store, p *shared.Poll, blocklist ...string) {
	tb.Helper()
	ctx := context.Background()
	if _, err := s.CreatePoll(ctx, p, origin.CreateOptions{ExpectedVoters: 10_000, Blocklist: blocklist}); err != nil {
		tb.Fatalf("CreatePoll(%s): %v", p.ID, err)
	}
	if _, err := s.SetState(ctx, p.ID, shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
		tb.Fatalf("open %s: %v", p.ID, err)
	}
}

func wordsVote(poll string, voter shared.VoterID, words ...string) shared.Vote {
	return shared.Vote{Poll: poll, Voter: voter, Choices: []uint8{}, Words: words, At: time.Now().UnixMilli()}
}

// applyConcurrently applies every batch twice (a redelivery), from both
// stores at once, and returns the receipts of the first deliveries' totals.
func applyConcurrently(t *testing.T, ctx context.Context, s, s2 *redisstore.Store, batches []*shared.Batch) (acc, dup uint32) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(batches))
	for i, b := range batches {
		for round := range 2 {
			st := s
			if (i+round)%2 == 1 {
				st = s2
			}
			wg.Go(func() {
				r, err := st.Apply(ctx, b, window)
				if err != nil {
					errs <- err
					return
				}
				if !r.Replayed {
					mu.Lock()
					acc += r.Accepted
					dup += r.Duplicate
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return acc, dup
}

// testScaleConcurrent: concurrent voters on a -3..7 scale from two origin
// processes, every batch delivered twice: counts, sum and voters exact.
func testScaleConcurrent(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	p := &shared.Poll{ID: "scale", Title: "How hot?", Kind: shared.KindScale, Scale: &shared.Scale{Min: -3, Max: 7}, State: shared.StateDraft, Visibility: shared.VisibilityLive}
	createOpen(t, s, p)
	pool := make([]shared.VoterID, 2000)
	for i := range pool {
		pool[i] = newVoter()
	}
	rng := rand.New(rand.NewPCG(3, 4))
	first := map[shared.VoterID]uint8{}
	var batches []*shared.Batch
	for range 40 {
		b := &shared.Batch{ID: newBatchID()}
		for range 150 {
			v := pool[rng.IntN(len(pool))]
			c := uint8(rng.IntN(11))
			b.Votes = append(b.Votes, vote("scale", v, c))
		}
		batches = append(batches, b)
	}
	acc, dup := applyConcurrently(t, ctx, s, s2, batches)
	// Which ballot of a voter counts depends on the order batches ran;
	// read it back from the ledger and check the counts against it.
	err := s.Ledger(ctx, "scale", func(e origin.LedgerEntry) error {
		first[shared.VoterID(mustHex16(t, e.VoterKey))] = e.Choices[0]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint64, 11)
	var sum int64
	for _, c := range first {
		want[c]++
		sum += int64(c) - 3
	}
	snap := mustSnapshot(t, s2, "scale")
	distinct := map[shared.VoterID]bool{}
	for _, b := range batches {
		for _, v := range b.Votes {
			distinct[v.Voter] = true
		}
	}
	if int(acc) != len(distinct) || int(acc+dup) != 40*150 || len(first) != len(distinct) ||
		snap.Kind != shared.KindScale || snap.ScaleMin != -3 || snap.ScaleSum != sum ||
		!slices.Equal(snap.Counts, want) || snap.Voters != uint64(len(distinct)) || snap.Total != snap.Voters {
		t.Fatalf("distinct %d accepted %d dup %d; snapshot %+v; want counts %v sum %d", len(distinct), acc, dup, snap, want, sum)
	}
	// Off the scale, or words: refused, nothing changes.
	b := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("scale", newVoter(), 11), vote("scale", newVoter(), 1, 2), wordsVote("scale", newVoter(), "hot")}}
	if r := mustApply(t, s, b); *r != receipt(b.ID, 0, 0, map[string]uint32{shared.RejectInvalidChoice: 3}) {
		t.Fatalf("off-scale receipt %+v", r)
	}
	if again := mustSnapshot(t, s, "scale"); again.Version != snap.Version || !slices.Equal(again.Counts, want) {
		t.Fatalf("refused votes changed the snapshot: %+v", again)
	}
}

// mustHex16 reads a 16-hex-digit voter key back into the first 8 bytes of
// a voter id (the test's voters are unique in those).
func mustHex16(tb testing.TB, s string) [16]byte {
	tb.Helper()
	var v [16]byte
	if _, err := hex.Decode(v[:8], []byte(s)); err != nil {
		tb.Fatal(err)
	}
	return v
}

// borda computes first preferences and Borda points (n - rank) by hand.
func borda(n int, ballots [][]uint8) (first, points []uint64) {
	first, points = make([]uint64, n), make([]uint64, n)
	for _, b := range ballots {
		first[b[0]]++
		for r, c := range b {
			points[c] += uint64(n - 1 - r)
		}
	}
	return first, points
}

func testRankedConcurrent(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	p := newPoll("ranked", 5)
	p.Kind, p.MaxChoices = shared.KindRanked, 4
	createOpen(t, s, p)
	rng := rand.New(rand.NewPCG(5, 6))
	var batches []*shared.Batch
	ballots := map[[8]byte][]uint8{}
	for range 30 {
		b := &shared.Batch{ID: newBatchID()}
		for range 100 {
			v := newVoter()
			k := 1 + rng.IntN(4)
			ballot := rng.Perm(5)[:k]
			ch := make([]uint8, k)
			for i, c := range ballot {
				ch[i] = uint8(c)
			}
			b.Votes = append(b.Votes, vote("ranked", v, ch...))
			ballots[[8]byte(v[:8])] = ch
		}
		batches = append(batches, b)
	}
	acc, dup := applyConcurrently(t, ctx, s, s2, batches)
	var all [][]uint8
	var total uint64
	for _, b := range ballots {
		all = append(all, b)
		total += uint64(len(b))
	}
	first, points := borda(5, all)
	snap := mustSnapshot(t, s, "ranked")
	if acc != 3000 || dup != 0 || snap.Kind != shared.KindRanked || !slices.Equal(snap.Counts, first) || !slices.Equal(snap.Borda, points) ||
		snap.Voters != 3000 || snap.Total != total {
		t.Fatalf("accepted %d dup %d; snapshot %+v; want first %v borda %v total %d", acc, dup, snap, first, points, total)
	}
	// The ledger keeps every ballot in full and in order.
	n := 0
	err := s2.Ledger(ctx, "ranked", func(e origin.LedgerEntry) error {
		n++
		k := mustHex16(t, e.VoterKey)
		if want := ballots[[8]byte(k[:8])]; !slices.Equal(e.Choices, want) {
			return fmt.Errorf("ledger ballot %v, want %v in that order", e.Choices, want)
		}
		return nil
	})
	if err != nil || n != 3000 {
		t.Fatalf("ledger: %d entries, %v", n, err)
	}
}

// testRankedRejectsAndLedger: the hand-worked example of docs/API.md plus
// invalid ballots; the ledger keeps each ballot in preference order.
func testRankedRejectsAndLedger(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	p := newPoll("rank2", 4)
	p.Kind, p.MaxChoices = shared.KindRanked, 3
	createOpen(t, s, p)
	good := [][]uint8{{2, 0, 1}, {0}, {3, 2}, {1, 0, 3}, {2, 1}}
	b := &shared.Batch{ID: newBatchID()}
	var voters []shared.VoterID
	for _, g := range good {
		v := newVoter()
		voters = append(voters, v)
		b.Votes = append(b.Votes, vote("rank2", v, g...))
	}
	b.Votes = append(b.Votes,
		vote("rank2", newVoter(), 0, 1, 2, 3), // more than max_choices
		vote("rank2", newVoter(), 1, 1),       // repeat
		vote("rank2", newVoter(), 4),          // out of range
		wordsVote("rank2", newVoter(), "x"),   // words on a ranked poll
	)
	if r := mustApply(t, s2, b); *r != receipt(b.ID, 5, 0, map[string]uint32{shared.RejectInvalidChoice: 4}) {
		t.Fatalf("receipt %+v", r)
	}
	snap := mustSnapshot(t, s, "rank2")
	// first preferences: 2, 0, 3, 1, 2 → [1 1 2 1]; Borda with n = 4:
	// {2,0,1}: 2+3, 0+2, 1+1; {0}: 0+3; {3,2}: 3+3, 2+2; {1,0,3}: 1+3, 0+2, 3+1; {2,1}: 2+3, 1+2
	// → 0: 2+3+2, 1: 1+3+2, 2: 3+2+3, 3: 3+1
	if !slices.Equal(snap.Counts, []uint64{1, 1, 2, 1}) || !slices.Equal(snap.Borda, []uint64{7, 6, 8, 4}) || snap.Total != 11 || snap.Voters != 5 {
		t.Fatalf("snapshot %+v", snap)
	}
	i := 0
	err := s.Ledger(ctx, "rank2", func(e origin.LedgerEntry) error {
		if e.VoterKey != hex.EncodeToString(voters[i][:8]) || !slices.Equal(e.Choices, good[i]) || e.Batch != b.ID.String() {
			return fmt.Errorf("ledger[%d] = %+v, want %v %v", i, e, good[i], b.ID)
		}
		i++
		return nil
	})
	if err != nil || i != len(good) {
		t.Fatalf("ledger after %d: %v", i, err)
	}
}

func newWordsPoll(id string, max int) *shared.Poll {
	return &shared.Poll{ID: id, Title: "One word", Kind: shared.KindWords, MaxWords: max, State: shared.StateDraft, Visibility: shared.VisibilityLive}
}

func testWordsConcurrent(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	createOpen(t, s, newWordsPoll("words", 3))
	vocab := []string{"amazing", "fun", "long", "café", "don't", "x-ray", "東京", "loud"}
	rng := rand.New(rand.NewPCG(7, 8))
	want := map[string]uint64{}
	var batches []*shared.Batch
	var total uint64
	for range 30 {
		b := &shared.Batch{ID: newBatchID()}
		for range 120 {
			k := 1 + rng.IntN(3)
			perm := rng.Perm(len(vocab))[:k]
			ws := make([]string, k)
			for i, j := range perm {
				ws[i] = vocab[j]
				want[vocab[j]]++
			}
			total += uint64(k)
			b.Votes = append(b.Votes, wordsVote("words", newVoter(), ws...))
		}
		batches = append(batches, b)
	}
	acc, dup := applyConcurrently(t, ctx, s, s2, batches)
	snap := mustSnapshot(t, s2, "words")
	got := map[string]uint64{}
	for _, w := range snap.Words {
		got[w.Word] = w.Count
	}
	if acc != 3600 || dup != 0 || snap.Kind != shared.KindWords || snap.Voters != 3600 || snap.Total != total ||
		snap.Distinct != uint64(len(vocab)) || !snap.DistinctExact || snap.CountError != 0 || len(snap.Counts) != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("accepted %d dup %d; snapshot %+v; want %v total %d", acc, dup, snap, want, total)
	}
	for i := 1; i < len(snap.Words); i++ {
		a, b := snap.Words[i-1], snap.Words[i]
		if a.Count < b.Count || a.Count == b.Count && a.Word >= b.Word {
			t.Fatalf("words out of order at %d: %v", i, snap.Words)
		}
	}
	// A word not in normal form, choices, or too many words: refused.
	b := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{
		wordsVote("words", newVoter(), "Amazing"), vote("words", newVoter(), 0),
		wordsVote("words", newVoter(), "a", "b", "c", "d"), wordsVote("words", newVoter(), "two words"),
	}}
	if r := mustApply(t, s, b); *r != receipt(b.ID, 0, 0, map[string]uint32{shared.RejectInvalidChoice: 4}) {
		t.Fatalf("bad words receipt %+v", r)
	}
}

func testWordsHiddenAndBan(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	createOpen(t, s, newWordsPoll("mod", 2), "Boring")
	if _, err := s.CreatePoll(ctx, newPoll("modx", 2), origin.CreateOptions{Blocklist: []string{"x"}}); shared.ErrorCode(err) != shared.EINVALID {
		t.Fatalf("blocklist on a single poll: %v", err)
	}
	if _, err := s.CreatePoll(ctx, newWordsPoll("mody", 1), origin.CreateOptions{Blocklist: []string{"no way"}}); shared.ErrorCode(err) != shared.EINVALID {
		t.Fatalf("blocklist word that fails normalisation: %v", err)
	}
	v1, v2, v3 := newVoter(), newVoter(), newVoter()
	b := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{
		wordsVote("mod", v1, "great", "boring"), // blocklist
		wordsVote("mod", v2, "shit", "great"),   // default list
		wordsVote("mod", v3, "meh"),
	}}
	if r := mustApply(t, s, b); r.Accepted != 3 {
		t.Fatalf("receipt %+v", r)
	}
	snap := mustSnapshot(t, s, "mod")
	if fmt.Sprint(snap.Words) != "[{great 2} {meh 1}]" || snap.Voters != 3 || snap.Total != 5 || snap.Distinct != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	w, err := s2.BanWord(ctx, "mod", "  MEH ")
	if err != nil || w != "meh" {
		t.Fatalf("ban: %q %v", w, err)
	}
	after := mustSnapshot(t, s, "mod")
	if fmt.Sprint(after.Words) != "[{great 2}]" || after.Version <= snap.Version || after.Voters != 3 || after.Distinct != 1 {
		t.Fatalf("after ban %+v (before %+v)", after, snap)
	}
	// A later vote for the banned word is accepted and stays hidden.
	b2 := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{wordsVote("mod", newVoter(), "meh")}}
	if r := mustApply(t, s2, b2); r.Accepted != 1 {
		t.Fatalf("receipt %+v", r)
	}
	if again := mustSnapshot(t, s, "mod"); fmt.Sprint(again.Words) != "[{great 2}]" || again.Voters != 4 {
		t.Fatalf("banned word shown again: %+v", again)
	}
	hidden, err := s.HiddenWords(ctx, "mod")
	if err != nil || fmt.Sprint(hidden) != "[boring meh]" {
		t.Fatalf("hidden %v %v", hidden, err)
	}
	// The ledger keeps every ballot as cast.
	var got []string
	err = s.Ledger(ctx, "mod", func(e origin.LedgerEntry) error {
		got = append(got, strings.Join(e.Words, "+"))
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[great+boring shit+great meh meh]" {
		t.Fatalf("ledger %v %v", got, err)
	}
	_, err = s.BanWord(ctx, "mod", "no way")
	wantCode(t, err, shared.EINVALID, "ban a non-word")
	openPoll(t, s, "modsingle", 2)
	_, err = s.BanWord(ctx, "modsingle", "meh")
	wantCode(t, err, shared.ECONFLICT, "ban in a single poll")
	_, err = s.BanWord(ctx, "nope", "meh")
	wantCode(t, err, shared.ENOTFOUND, "ban in an unknown poll")
}

// testWordsOrder: 130 words with count 1 and 3 with count 2; the top 100
// are the three, then the first 97 of the rest in ascending order, which a
// zset's ZREVRANGE alone would not give.
func testWordsOrder(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	createOpen(t, s, newWordsPoll("order", 1))
	b := &shared.Batch{ID: newBatchID()}
	var ones []string
	for i := range 130 {
		w := fmt.Sprintf("w%03d", i)
		ones = append(ones, w)
		b.Votes = append(b.Votes, wordsVote("order", newVoter(), w))
	}
	for _, w := range []string{"zz", "aa", "mm"} {
		b.Votes = append(b.Votes, wordsVote("order", newVoter(), w), wordsVote("order", newVoter(), w))
	}
	if r := mustApply(t, s, b); r.Accepted != 136 {
		t.Fatalf("receipt %+v", r)
	}
	snap := mustSnapshot(t, s2, "order")
	want := []shared.WordCount{{Word: "aa", Count: 2}, {Word: "mm", Count: 2}, {Word: "zz", Count: 2}}
	for _, w := range ones[:97] {
		want = append(want, shared.WordCount{Word: w, Count: 1})
	}
	if !slices.Equal(snap.Words, want) || snap.Distinct != 133 {
		t.Fatalf("words %v (distinct %d)", snap.Words, snap.Distinct)
	}
	all, err := s.AllWords(ctx, "order")
	if err != nil || len(all) != 133 || all[3] != (shared.WordCount{Word: "w000", Count: 1}) {
		t.Fatalf("AllWords: %d %v", len(all), err)
	}
}

// testWordsTableBound fills the count set to its bound with distinct words,
// then sends a new word: it takes the place of a lowest-count word
// (Space-Saving), its count is at most the error bound above the truth, and
// distinct turns into an estimate.
func testWordsTableBound(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store) {
	if testing.Short() {
		t.Skip("fills 50,000 words")
	}
	createOpen(t, s, newWordsPoll("bound", 3))
	const bound = 50000
	word := func(i int) string { return fmt.Sprintf("word%05d", i) }
	for i := 0; i < bound; {
		b := &shared.Batch{ID: newBatchID()}
		for len(b.Votes) < shared.MaxBatchVotes && i < bound {
			var ws []string
			for j := 0; j < 3 && i < bound; j++ {
				ws = append(ws, word(i))
				i++
			}
			b.Votes = append(b.Votes, wordsVote("bound", newVoter(), ws...))
		}
		mustApply(t, s, b)
	}
	full := mustSnapshot(t, s, "bound")
	if !full.DistinctExact || full.Distinct != bound || full.CountError != 0 {
		t.Fatalf("at the bound: distinct %d exact %v error %d", full.Distinct, full.DistinctExact, full.CountError)
	}
	b := &shared.Batch{ID: newBatchID()}
	for range 10 {
		b.Votes = append(b.Votes, wordsVote("bound", newVoter(), "newcomer"))
	}
	mustApply(t, s2, b)
	snap := mustSnapshot(t, s, "bound")
	if snap.DistinctExact || snap.CountError != 1 || snap.Words[0] != (shared.WordCount{Word: "newcomer", Count: 11}) ||
		snap.Distinct < bound*98/100 || snap.Distinct > bound*102/100 {
		t.Fatalf("past the bound: top %v distinct %d exact %v error %d", snap.Words[:1], snap.Distinct, snap.DistinctExact, snap.CountError)
	}
	if n, err := client(t, url).ZCard(ctx, "ep:{bound}:w").Result(); err != nil || n != bound {
		t.Fatalf("count set holds %d words, %v; want the bound %d", n, err, bound)
	}
}

// testLedgerBatchIDs: each ballot is exported with the id of the batch
// that carried it, whatever the kind.
func testLedgerBatchIDs(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "bids", 3)
	createOpen(t, s, newWordsPoll("bidw", 1))
	var want []string
	for range 3 {
		b := &shared.Batch{ID: newBatchID()}
		for range 4 {
			b.Votes = append(b.Votes, vote("bids", newVoter(), 1), wordsVote("bidw", newVoter(), "ok"))
			want = append(want, b.ID.String())
		}
		b.Votes = append(b.Votes, vote("bids", newVoter(), 7)) // refused: no record
		mustApply(t, s, b)
		mustApply(t, s2, b) // a redelivery adds nothing
	}
	for _, poll := range []string{"bids", "bidw"} {
		var got []string
		err := s.Ledger(ctx, poll, func(e origin.LedgerEntry) error {
			got = append(got, e.Batch)
			return nil
		})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: batch ids %v, want %v (%v)", poll, got, want, err)
		}
	}
}

// testLedgerWithoutMarkers: a ledger written before batch markers existed
// (records only) still reads, with empty batch ids.
func testLedgerWithoutMarkers(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store) {
	openPoll(t, s, "oldled", 3)
	c := client(t, url)
	rec := []byte{1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11}
	if err := c.Append(ctx, "ep:{oldled}:l:0", string(rec)+string(rec)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "ep:{oldled}:counts", "_voters", 2).Err(); err != nil {
		t.Fatal(err)
	}
	var got []origin.LedgerEntry
	if err := s2.Ledger(ctx, "oldled", func(e origin.LedgerEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].VoterKey != "aabbccddeeff0011" || !slices.Equal(got[1].Choices, []uint8{2}) || got[1].Batch != "" {
		t.Fatalf("old ledger read as %+v", got)
	}
}

// testLedgerChunkFits: a full ledger chunk of one-choice ballots, batch
// markers included, stays within 5% of its length in Redis's allocator
// (chunks of 2^n voters sat exactly on a size class, and the markers
// pushed them 20% over).
func testLedgerChunkFits(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store) {
	p := newPoll("fits", 2)
	if _, err := s.CreatePoll(ctx, p, origin.CreateOptions{ExpectedVoters: 1000}); err != nil { // 16 buckets
		t.Fatal(err)
	}
	if _, err := s.SetState(ctx, "fits", shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b := &shared.Batch{ID: newBatchID()}
		for range 496 {
			b.Votes = append(b.Votes, vote("fits", newVoter(), 1))
		}
		mustApply(t, s, b)
	}
	c := client(t, url)
	size, err := c.StrLen(ctx, "ep:{fits}:l:0").Result()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := c.MemoryUsage(ctx, "ep:{fits}:l:0", 0).Result()
	if err != nil || float64(mem) > 1.05*float64(size)+64 {
		t.Fatalf("full chunk of %d bytes uses %d bytes (%v)", size, mem, err)
	}
}
