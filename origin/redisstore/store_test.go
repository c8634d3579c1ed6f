package redisstore_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/redisstore"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
)

const window = time.Minute

// TestStore runs the conformance suite against a real redis-server and a
// real three-node Redis Cluster.
func TestStore(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		runSuite(t, redistest.Start(t).URL)
	})
	t.Run("cluster", func(t *testing.T) {
		runSuite(t, redistest.StartCluster(t).URL)
	})
}

func runSuite(t *testing.T, url string) {
	ctx := context.Background()
	s := mustOpen(t, url)
	s2 := mustOpen(t, url) // a second "origin process" on the same Redis
	cases := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store)
	}{
		{"Lifecycle", testLifecycle},
		{"ApplyRejects", testApplyRejects},
		{"Replay", testReplay},
		{"MultiPollBatch", testMultiPollBatch},
		{"ConcurrentBatches", testConcurrentBatches},
		{"VoteBeforeCloseCounts", testVoteBeforeClose},
		{"Ledger", testLedger},
		{"SnapshotVersion", testSnapshotVersion},
		{"UpdateConflict", testUpdateConflict},
		{"StaleBucketCache", testStaleBucketCache},
		{"DeleteRemovesKeys", testDeleteRemovesKeys},
	}
	cases = append(cases, kindCases...)
	cases = append(cases, struct {
		name string
		fn   func(t *testing.T, ctx context.Context, url string, s, s2 *redisstore.Store)
	}{"Stats", testStats})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, ctx, url, s, s2) })
	}
}

func mustOpen(tb testing.TB, url string) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("Open(%q): %v", url, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newPoll(id string, n int) *shared.Poll {
	p := &shared.Poll{ID: id, Title: "Poll " + id, Kind: shared.KindSingle, State: shared.StateDraft, Visibility: shared.VisibilityLive}
	for i := range n {
		p.Options = append(p.Options, shared.Option{Label: fmt.Sprintf("option %d", i)})
	}
	return p
}

// mustCreate creates p (opened if state is open) and fails the test on error.
func mustCreate(tb testing.TB, s *redisstore.Store, p *shared.Poll, expected int) *shared.Poll {
	tb.Helper()
	got, err := s.CreatePoll(context.Background(), p, origin.CreateOptions{ExpectedVoters: expected})
	if err != nil {
		tb.Fatalf("CreatePoll(%s): %v", p.ID, err)
	}
	return got
}

func openPoll(tb testing.TB, s *redisstore.Store, id string, n int) {
	tb.Helper()
	mustCreate(tb, s, newPoll(id, n), 10_000)
	if _, err := s.SetState(context.Background(), id, shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
		tb.Fatalf("open %s: %v", id, err)
	}
}

var voterRand = rand.New(rand.NewChaCha8([32]byte{1}))
var voterMu sync.Mutex

func newVoter() shared.VoterID {
	voterMu.Lock()
	defer voterMu.Unlock()
	var v shared.VoterID
	binary.LittleEndian.PutUint64(v[:8], voterRand.Uint64())
	binary.LittleEndian.PutUint64(v[8:], voterRand.Uint64())
	return v
}

func newBatchID() shared.BatchID {
	return shared.BatchID(newVoter())
}

func vote(poll string, voter shared.VoterID, choices ...uint8) shared.Vote {
	return shared.Vote{Poll: poll, Voter: voter, Choices: choices, At: time.Now().UnixMilli()}
}

func mustApply(tb testing.TB, s *redisstore.Store, b *shared.Batch) *shared.Receipt {
	tb.Helper()
	r, err := s.Apply(context.Background(), b, window)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	if r.Batch != b.ID {
		tb.Fatalf("receipt for batch %s, want %s", r.Batch, b.ID)
	}
	return r
}

func mustSnapshot(tb testing.TB, s *redisstore.Store, id string) *shared.Snapshot {
	tb.Helper()
	snap, err := s.Snapshot(context.Background(), id)
	if err != nil {
		tb.Fatalf("Snapshot(%s): %v", id, err)
	}
	return snap
}

func wantCode(tb testing.TB, err error, code shared.Code, what string) {
	tb.Helper()
	if shared.ErrorCode(err) != code {
		tb.Fatalf("%s: got error %v, want code %s", what, err, code)
	}
}

func receipt(id shared.BatchID, acc, dup uint32, rejected map[string]uint32) shared.Receipt {
	r := shared.Receipt{Batch: id, Accepted: acc, Duplicate: dup}
	for reason, n := range rejected {
		r.Rejected[shared.ReasonIndex(reason)] = n
	}
	return r
}

func testLifecycle(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	p := newPoll("life", 3)
	p.Visibility = shared.VisibilityAfterClose
	got := mustCreate(t, s, p, 0)
	if got.Version != 1 || got.State != shared.StateDraft {
		t.Fatalf("created poll: version %d state %s, want 1 draft", got.Version, got.State)
	}
	_, err := s2.CreatePoll(ctx, newPoll("life", 2), origin.CreateOptions{})
	wantCode(t, err, shared.ECONFLICT, "create existing poll")
	_, err = s.CreatePoll(ctx, &shared.Poll{ID: "bad id"}, origin.CreateOptions{})
	wantCode(t, err, shared.EINVALID, "create invalid poll")

	read, err := s2.Poll(ctx, "life")
	if err != nil {
		t.Fatal(err)
	}
	if read.Title != p.Title || len(read.Options) != 3 || read.Options[2].Label != "option 2" ||
		read.Visibility != shared.VisibilityAfterClose || read.Kind != shared.KindSingle {
		t.Fatalf("Poll returned %+v, want %+v", read, p)
	}
	_, err = s.Poll(ctx, "nope")
	wantCode(t, err, shared.ENOTFOUND, "Poll of unknown id")

	closes := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	up, err := s.UpdatePoll(ctx, "life", func(p *shared.Poll) error {
		p.Title = "Renamed"
		p.ClosesAt = closes
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.Title != "Renamed" || !up.ClosesAt.Equal(closes) {
		t.Fatalf("updated poll: %+v", up)
	}
	_, err = s.UpdatePoll(ctx, "life", func(p *shared.Poll) error { p.ID = "other"; return nil })
	wantCode(t, err, shared.EINVALID, "update changing id")
	_, err = s.UpdatePoll(ctx, "life", func(p *shared.Poll) error { p.Options = p.Options[:1]; return nil })
	wantCode(t, err, shared.EINVALID, "update to one option")
	_, err = s.UpdatePoll(ctx, "nope", func(p *shared.Poll) error { return nil })
	wantCode(t, err, shared.ENOTFOUND, "update unknown poll")

	op, err := s.SetState(ctx, "life", shared.StateOpen, time.Time{})
	if err != nil || op.State != shared.StateOpen || op.Version != 3 {
		t.Fatalf("open: %+v, %v", op, err)
	}
	again, err := s.SetState(ctx, "life", shared.StateOpen, time.Time{})
	if err != nil || again.Version != 3 {
		t.Fatalf("opening an open poll changed it: %+v, %v", again, err)
	}
	cl, err := s2.SetState(ctx, "life", shared.StateClosed, time.Time{})
	if err != nil || cl.State != shared.StateClosed || cl.Version != 4 {
		t.Fatalf("close: %+v, %v", cl, err)
	}
	_, err = s.SetState(ctx, "life", "paused", time.Time{})
	wantCode(t, err, shared.EINVALID, "set unknown state")

	mustCreate(t, s, newPoll("life-2", 2), 0)
	list, err := s.Polls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	if !slices.IsSorted(ids) || !slices.Contains(ids, "life") || !slices.Contains(ids, "life-2") {
		t.Fatalf("Polls ids %v: want sorted and containing life, life-2", ids)
	}

	if err := s.DeletePoll(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	_, err = s2.Poll(ctx, "life")
	wantCode(t, err, shared.ENOTFOUND, "Poll after delete")
	_, err = s.Snapshot(ctx, "life")
	wantCode(t, err, shared.ENOTFOUND, "Snapshot after delete")
	_, err = s.SnapshotVersion(ctx, "life")
	wantCode(t, err, shared.ENOTFOUND, "SnapshotVersion after delete")
	wantCode(t, s.DeletePoll(ctx, "life"), shared.ENOTFOUND, "delete twice")
	_, err = s.ResetPoll(ctx, "life")
	wantCode(t, err, shared.ENOTFOUND, "reset deleted poll")
	list, err = s.Polls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.ID == "life" {
			t.Fatal("deleted poll still listed")
		}
	}
}

func testApplyRejects(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "rj-single", 3)
	multi := newPoll("rj-multi", 4)
	multi.Kind, multi.MaxChoices = shared.KindMulti, 2
	mustCreate(t, s, multi, 0)
	if _, err := s.SetState(ctx, "rj-multi", shared.StateOpen, time.Time{}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newPoll("rj-draft", 2), 0)
	openPoll(t, s, "rj-closed", 2)
	if _, err := s.SetState(ctx, "rj-closed", shared.StateClosed, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	early := newPoll("rj-early", 2)
	early.OpensAt = time.Now().Add(time.Hour)
	mustCreate(t, s, early, 0)
	late := newPoll("rj-late", 2)
	late.ClosesAt = time.Now().Add(-time.Second)
	mustCreate(t, s, late, 0)
	for _, id := range []string{"rj-early", "rj-late"} {
		if _, err := s.SetState(ctx, id, shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	dupVoter := newVoter()
	future := vote("rj-single", newVoter(), 0)
	future.At = time.Now().Add(2 * time.Minute).UnixMilli()
	noTime := vote("rj-single", newVoter(), 0)
	noTime.At = 0
	b := &shared.Batch{ID: newBatchID(), Edge: "test", Votes: []shared.Vote{
		vote("rj-single", dupVoter, 1),        // accepted
		vote("rj-single", newVoter(), 2),      // accepted
		vote("rj-single", dupVoter, 0),        // duplicate (same batch)
		vote("rj-single", newVoter(), 3),      // invalid_choice: out of range
		vote("rj-single", newVoter(), 0, 1),   // invalid_choice: single poll
		vote("rj-single", newVoter()),         // invalid_choice: no choice
		vote("rj-multi", newVoter(), 0, 3),    // accepted
		vote("rj-multi", newVoter(), 2),       // accepted
		vote("rj-multi", newVoter(), 1, 1),    // invalid_choice: repeated
		vote("rj-multi", newVoter(), 0, 1, 2), // invalid_choice: over max
		vote("rj-draft", newVoter(), 0),       // poll_not_open
		vote("rj-early", newVoter(), 0),       // poll_not_open
		vote("rj-closed", newVoter(), 0),      // poll_closed
		vote("rj-late", newVoter(), 0),        // poll_closed
		vote("rj-unknown", newVoter(), 0),     // unknown_poll
		future,                                // invalid_vote
		noTime,                                // invalid_vote
		vote("bad{id}", newVoter(), 0),        // invalid_vote
		{Poll: "rj-single", Choices: []uint8{0}, At: time.Now().UnixMilli()}, // invalid_vote: zero voter
	}}
	got := mustApply(t, s2, b)
	want := receipt(b.ID, 4, 1, map[string]uint32{
		shared.RejectInvalidChoice: 5, shared.RejectNotOpen: 2, shared.RejectClosed: 2,
		shared.RejectUnknownPoll: 1, shared.RejectInvalidVote: 4,
	})
	if *got != want {
		t.Fatalf("receipt\n got %+v\nwant %+v", *got, want)
	}
	if got.Total() != uint32(len(b.Votes)) {
		t.Fatalf("receipt accounts for %d votes, batch has %d", got.Total(), len(b.Votes))
	}
	snap := mustSnapshot(t, s, "rj-single")
	if !slices.Equal(snap.Counts, []uint64{0, 1, 1}) || snap.Total != 2 || snap.Voters != 2 || snap.Version != 1 {
		t.Fatalf("single snapshot %+v", snap)
	}
	// Refused votes of a known poll are kept per reason, apart from the counts.
	if c := mustSnapshot(t, s, "rj-closed"); c.Rejected[shared.ReasonIndex(shared.RejectClosed)] != 1 || c.Voters != 0 {
		t.Fatalf("closed poll snapshot %+v: want one rejected poll_closed", c)
	}
	if d := mustSnapshot(t, s, "rj-draft"); d.Rejected[shared.ReasonIndex(shared.RejectNotOpen)] != 1 {
		t.Fatalf("draft poll snapshot %+v: want one rejected poll_not_open", d)
	}
	// An edge clock ahead inside the signing window is judged by that clock.
	ahead, beyond := vote("rj-single", newVoter(), 0), vote("rj-single", newVoter(), 0)
	ahead.At = time.Now().Add(2 * time.Minute).UnixMilli()
	beyond.At = time.Now().Add(6 * time.Minute).UnixMilli()
	b2 := &shared.Batch{ID: newBatchID(), Edge: "e", Votes: []shared.Vote{ahead, beyond}}
	r2, err := s2.Apply(ctx, b2, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Accepted != 1 || r2.Rejected[shared.ReasonIndex(shared.RejectInvalidVote)] != 1 {
		t.Fatalf("votes 2 and 6 minutes ahead with a 5-minute window: %+v, want 1 accepted, 1 invalid_vote", r2)
	}
	snap = mustSnapshot(t, s, "rj-multi")
	if !slices.Equal(snap.Counts, []uint64{1, 0, 1, 1}) || snap.Total != 3 || snap.Voters != 2 {
		t.Fatalf("multi snapshot %+v", snap)
	}
	for _, id := range []string{"rj-draft", "rj-early", "rj-closed", "rj-late"} {
		if snap := mustSnapshot(t, s, id); snap.Voters != 0 || snap.Version != 0 {
			t.Fatalf("%s changed by rejected votes: %+v", id, snap)
		}
	}
}

func testReplay(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "replay", 2)
	b := &shared.Batch{ID: newBatchID()}
	for i := range 50 {
		b.Votes = append(b.Votes, vote("replay", newVoter(), uint8(i%2)))
	}
	b.Votes = append(b.Votes, vote("replay", newVoter(), 7))
	first := mustApply(t, s, b)
	if first.Accepted != 50 || first.Replayed {
		t.Fatalf("first apply: %+v", first)
	}
	v1, err := s.SnapshotVersion(ctx, "replay")
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []*redisstore.Store{s, s2} {
		again := mustApply(t, st, b)
		want := *first
		want.Replayed = true
		if *again != want {
			t.Fatalf("replay %d: got %+v, want %+v", i+1, *again, want)
		}
	}
	snap := mustSnapshot(t, s, "replay")
	if snap.Voters != 50 || snap.Total != 50 || snap.Counts[0] != 25 || snap.Version != v1 {
		t.Fatalf("after 3 deliveries: %+v (version before %d)", snap, v1)
	}
}

func testMultiPollBatch(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	ids := []string{"mp-a", "mp-b", "mp-c", "mp-d", "mp-e", "mp-f", "mp-g", "mp-h", "mp-i", "mp-j"}
	for _, id := range ids {
		openPoll(t, s, id, 2)
	}
	voters := make([]shared.VoterID, 20)
	for i := range voters {
		voters[i] = newVoter()
	}
	b := &shared.Batch{ID: newBatchID()}
	for _, v := range voters {
		for _, id := range ids {
			b.Votes = append(b.Votes, vote(id, v, 1))
		}
	}
	b.Votes = append(b.Votes, vote("mp-a", voters[0], 0)) // duplicate
	r := mustApply(t, s2, b)
	if r.Accepted != uint32(len(voters)*len(ids)) || r.Duplicate != 1 || r.Replayed {
		t.Fatalf("receipt %+v", r)
	}
	r2 := mustApply(t, s, b)
	if !r2.Replayed || r2.Accepted != r.Accepted || r2.Duplicate != 1 {
		t.Fatalf("replayed multi-poll batch: %+v", r2)
	}
	for _, id := range ids {
		if snap := mustSnapshot(t, s, id); snap.Voters != 20 || snap.Counts[1] != 20 {
			t.Fatalf("%s: %+v", id, snap)
		}
	}
}

// testConcurrentBatches applies 100 batches at once, from two stores,
// drawing voters from a shared pool: every distinct voter counts once.
func testConcurrentBatches(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "conc", 4)
	pool := make([]shared.VoterID, 3000)
	for i := range pool {
		pool[i] = newVoter()
	}
	const batches, perBatch = 100, 200
	rng := rand.New(rand.NewPCG(1, 2))
	all := make([]*shared.Batch, batches)
	distinct := map[shared.VoterID]bool{}
	for i := range all {
		all[i] = &shared.Batch{ID: newBatchID()}
		for range perBatch {
			v := pool[rng.IntN(len(pool))]
			distinct[v] = true
			all[i].Votes = append(all[i].Votes, vote("conc", v, uint8(rng.IntN(4))))
		}
	}
	receipts := make([]*shared.Receipt, batches)
	var wg sync.WaitGroup
	errs := make(chan error, batches)
	for i, b := range all {
		st := s
		if i%2 == 1 {
			st = s2
		}
		wg.Go(func() {
			r, err := st.Apply(ctx, b, window)
			if err != nil {
				errs <- err
				return
			}
			receipts[i] = r
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var acc, dup uint32
	for _, r := range receipts {
		acc += r.Accepted
		dup += r.Duplicate
	}
	snap := mustSnapshot(t, s, "conc")
	var sum uint64
	for _, c := range snap.Counts {
		sum += c
	}
	if int(acc) != len(distinct) || int(acc+dup) != batches*perBatch ||
		snap.Voters != uint64(len(distinct)) || sum != snap.Voters || snap.Total != snap.Voters {
		t.Fatalf("distinct voters %d, accepted %d, duplicates %d, snapshot %+v", len(distinct), acc, dup, snap)
	}
}

// testVoteBeforeClose: a vote received at the edge before the close counts
// even when its batch arrives after the close; later ones do not.
func testVoteBeforeClose(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "fair", 2)
	closeAt := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	if _, err := s.SetState(ctx, "fair", shared.StateClosed, closeAt); err != nil {
		t.Fatal(err)
	}
	before := vote("fair", newVoter(), 0)
	before.At = closeAt.UnixMilli() - 1
	at := vote("fair", newVoter(), 0)
	at.At = closeAt.UnixMilli()
	after := vote("fair", newVoter(), 1)
	b := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{before, at, after}}
	got := mustApply(t, s2, b)
	if want := receipt(b.ID, 1, 0, map[string]uint32{shared.RejectClosed: 2}); *got != want {
		t.Fatalf("receipt %+v, want %+v", *got, want)
	}
	// Reopening clears the close: later votes count again.
	if _, err := s.SetState(ctx, "fair", shared.StateOpen, time.Time{}); err != nil {
		t.Fatal(err)
	}
	b2 := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("fair", newVoter(), 1)}}
	if got := mustApply(t, s, b2); got.Accepted != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	if snap := mustSnapshot(t, s, "fair"); !slices.Equal(snap.Counts, []uint64{1, 1}) {
		t.Fatalf("snapshot %+v", snap)
	}
}

func testLedger(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	p := newPoll("ledger", 5)
	p.Kind, p.MaxChoices = shared.KindMulti, 3
	mustCreate(t, s, p, 65536) // 256 buckets
	if _, err := s.SetState(ctx, "ledger", shared.StateOpen, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var want []origin.LedgerEntry // in the order counted
	b := &shared.Batch{ID: newBatchID()}
	for i := range 700 {
		v := newVoter()
		choices := []uint8{uint8(i % 5)}
		if i%3 == 0 {
			choices = append(choices, uint8((i+1)%5), uint8((i+2)%5))
		}
		b.Votes = append(b.Votes, vote("ledger", v, choices...))
		if i%7 == 0 { // a duplicate and a rejected vote between counted ones
			b.Votes = append(b.Votes, vote("ledger", v, 1), vote("ledger", newVoter(), 9))
		}
		want = append(want, origin.LedgerEntry{VoterKey: hex.EncodeToString(v[:8]), Choices: choices})
	}
	if r := mustApply(t, s, b); r.Accepted != 700 || r.Duplicate != 100 {
		t.Fatalf("receipt %+v", r)
	}
	var got []origin.LedgerEntry
	err := s2.Ledger(ctx, "ledger", func(e origin.LedgerEntry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ledger has %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].VoterKey != want[i].VoterKey || !slices.Equal(got[i].Choices, want[i].Choices) {
			t.Fatalf("ledger[%d] = %s %v, want %s %v", i, got[i].VoterKey, got[i].Choices, want[i].VoterKey, want[i].Choices)
		}
	}
	stop := fmt.Errorf("stop")
	n := 0
	err = s.Ledger(ctx, "ledger", func(origin.LedgerEntry) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("Ledger after fn error: err %v after %d calls, want stop after 1", err, n)
	}
	wantCode(t, s.Ledger(ctx, "nope", func(origin.LedgerEntry) error { return nil }), shared.ENOTFOUND, "ledger of unknown poll")
}

func testSnapshotVersion(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "ver", 2)
	version := func() uint64 {
		t.Helper()
		v, err := s2.SnapshotVersion(ctx, "ver")
		if err != nil {
			t.Fatal(err)
		}
		if snap := mustSnapshot(t, s, "ver"); snap.Version != v {
			t.Fatalf("Snapshot version %d, SnapshotVersion %d", snap.Version, v)
		}
		return v
	}
	v0 := version()
	voter := newVoter()
	mustApply(t, s, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("ver", voter, 0)}})
	v1 := version()
	if v1 == v0 {
		t.Fatal("version unchanged after an accepted vote")
	}
	r := mustApply(t, s, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("ver", voter, 1), vote("ver", newVoter(), 9)}})
	if r.Duplicate != 1 || version() != v1 {
		t.Fatalf("version changed by a batch that counted nothing (receipt %+v)", r)
	}
	before, err := s.Poll(ctx, "ver")
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.ResetPoll(ctx, "ver")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 {
		t.Fatalf("reset: poll version %d → %d, want +1", before.Version, after.Version)
	}
	v2 := version()
	if v2 <= v1 {
		t.Fatalf("reset: results version %d → %d, want it to grow", v1, v2)
	}
	if snap := mustSnapshot(t, s, "ver"); snap.Voters != 0 || snap.Total != 0 || !slices.Equal(snap.Counts, []uint64{0, 0}) {
		t.Fatalf("snapshot after reset: %+v", snap)
	}
	// The voter's dedupe entry went with the reset: it may vote again.
	if r := mustApply(t, s, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("ver", voter, 1)}}); r.Accepted != 1 {
		t.Fatalf("vote after reset: %+v", r)
	}
	if version() <= v2 {
		t.Fatal("version unchanged after vote following reset")
	}
}

func testUpdateConflict(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "upd", 2)
	mustApply(t, s, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("upd", newVoter(), 0)}})
	addOption := func(p *shared.Poll) error {
		p.Options = append(p.Options, shared.Option{Label: "new"})
		return nil
	}
	_, err := s.UpdatePoll(ctx, "upd", addOption)
	wantCode(t, err, shared.ECONFLICT, "changing options of a poll with votes")
	_, err = s2.UpdatePoll(ctx, "upd", func(p *shared.Poll) error { p.Kind, p.MaxChoices = shared.KindMulti, 2; return nil })
	wantCode(t, err, shared.ECONFLICT, "changing kind of a poll with votes")
	if _, err := s.UpdatePoll(ctx, "upd", func(p *shared.Poll) error { p.Title = "ok"; return nil }); err != nil {
		t.Fatalf("title change on a poll with votes: %v", err)
	}
	if _, err := s.ResetPoll(ctx, "upd"); err != nil {
		t.Fatal(err)
	}
	p, err := s.UpdatePoll(ctx, "upd", addOption)
	if err != nil || len(p.Options) != 3 {
		t.Fatalf("adding an option after reset: %+v, %v", p, err)
	}
	if snap := mustSnapshot(t, s, "upd"); len(snap.Counts) != 3 {
		t.Fatalf("snapshot after adding an option has %d counts", len(snap.Counts))
	}
	// Concurrent updates from two stores: every one lands, versions don't collide.
	var wg sync.WaitGroup
	for i := range 10 {
		st := []*redisstore.Store{s, s2}[i%2]
		wg.Go(func() {
			if _, err := st.UpdatePoll(ctx, "upd", func(p *shared.Poll) error { p.Title += "!"; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Poll(ctx, "upd")
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "ok"+"!!!!!!!!!!" || got.Version != p.Version+10 {
		t.Fatalf("after 10 concurrent updates: title %q version %d (was %d)", got.Title, got.Version, p.Version)
	}
}

// testStaleBucketCache: a poll deleted and re-created with another bucket
// count by one process is applied correctly by another that cached the old count.
func testStaleBucketCache(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	openPoll(t, s, "stale", 2) // 10,000 voters: 256 buckets
	voter := newVoter()
	mustApply(t, s2, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("stale", voter, 0)}})
	if err := s.DeletePoll(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newPoll("stale", 2), 20_000_000) // 65,536 buckets
	if _, err := s.SetState(ctx, "stale", shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{1, 0} {
		r := mustApply(t, s2, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("stale", voter, 1)}})
		if r.Accepted != want || r.Accepted+r.Duplicate != 1 {
			t.Fatalf("vote %d after re-create: %+v", i, r)
		}
	}
	var keys []string
	if err := s.Ledger(ctx, "stale", func(e origin.LedgerEntry) error { keys = append(keys, e.VoterKey); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(voter[:8]); len(keys) != 1 || keys[0] != want {
		t.Fatalf("ledger %v, want [%s]", keys, want)
	}
}

// testDeleteRemovesKeys fills a poll's ledger past one chunk, checks the
// ledger reads back whole and the full chunk kept no growth slack, then
// checks in Redis itself that a delete leaves none of the poll's keys but
// its replay receipts (which expire).
func testDeleteRemovesKeys(t *testing.T, ctx context.Context, url string, s, _ *redisstore.Store) {
	mustCreate(t, s, newPoll("del", 2), 1000) // 16 buckets: ledger chunks of 4096 voters
	if _, err := s.SetState(ctx, "del", shared.StateOpen, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 4, 1500 // chunk 0 fills with the third batch
	for range batches {
		b := &shared.Batch{ID: newBatchID()}
		for range perBatch {
			b.Votes = append(b.Votes, vote("del", newVoter(), 1))
		}
		if r := mustApply(t, s, b); r.Accepted != perBatch {
			t.Fatalf("receipt %+v", r)
		}
	}
	if n := countKeys(t, url, "ep:{del}:s:*"); n != 16 {
		t.Fatalf("%d bucket keys after votes, want 16", n)
	}
	if n := countKeys(t, url, "ep:{del}:l:*"); n != 2 {
		t.Fatalf("%d ledger chunks after votes, want 2", n)
	}
	n := 0
	if err := s.Ledger(ctx, "del", func(e origin.LedgerEntry) error { n++; return nil }); err != nil || n != batches*perBatch {
		t.Fatalf("ledger read %d entries (%v), want %d", n, err, batches*perBatch)
	}
	c := client(t, url)
	size, err := c.StrLen(ctx, "ep:{del}:l:0").Result()
	if want := int64(3 * (17 + perBatch*10)); err != nil || size != want { // a batch marker and 10-byte records per batch
		t.Fatalf("chunk 0 is %d bytes (%v), want %d", size, err, want)
	}
	if mem, err := c.MemoryUsage(ctx, "ep:{del}:l:0", 0).Result(); err != nil || float64(mem) > 1.25*float64(size)+64 {
		t.Fatalf("full chunk of %d bytes uses %d bytes (%v): growth slack not dropped", size, mem, err)
	}
	if err := s.DeletePoll(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"ep:{del}:s:*", "ep:{del}:l:*", "ep:{del}:poll", "ep:{del}:counts"} {
		if n := countKeys(t, url, pattern); n != 0 {
			t.Fatalf("%d keys %s left after delete", n, pattern)
		}
	}
	if n := countKeys(t, url, "ep:{del}:b:*"); n != batches {
		t.Fatalf("%d replay keys, want %d (expiring)", n, batches)
	}
}

// client returns a go-redis client for url (a single node or a cluster),
// to look at Redis directly rather than through the store.
func client(tb testing.TB, url string) redis.UniversalClient {
	var c redis.UniversalClient
	if opt, err := redis.ParseURL(url); err == nil {
		c = redis.NewClient(opt)
	} else {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: splitComma(url)})
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func testStats(t *testing.T, ctx context.Context, _ string, s, s2 *redisstore.Store) {
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	polls, err := s2.Polls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var votes, voters uint64
	for _, p := range polls {
		snap := mustSnapshot(t, s, p.ID)
		votes += snap.Total
		voters += snap.Voters
	}
	if st.Polls != len(polls) || st.Votes != votes || st.Voters != voters || voters == 0 ||
		st.UsedMemory <= 0 || st.RedisNodes < 1 || st.RedisVersion == "" {
		t.Fatalf("stats %+v; want polls %d votes %d voters %d", st, len(polls), votes, voters)
	}
	mem, err := s.MemoryUsed(ctx)
	if err != nil || mem <= 0 {
		t.Fatalf("MemoryUsed: %d, %v", mem, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// countKeys counts keys matching pattern on every master, looking at Redis
// directly (not through the store).
func countKeys(tb testing.TB, url, pattern string) int {
	tb.Helper()
	ctx := context.Background()
	count := func(c *redis.Client) int {
		keys, err := c.Keys(ctx, pattern).Result()
		if err != nil {
			tb.Fatal(err)
		}
		return len(keys)
	}
	if opt, err := redis.ParseURL(url); err == nil {
		c := redis.NewClient(opt)
		defer c.Close()
		return count(c)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: splitComma(url)})
	defer c.Close()
	var mu sync.Mutex
	n := 0
	err := c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		k := count(c)
		mu.Lock()
		n += k
		mu.Unlock()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

func TestOpenRejectsBadURL(t *testing.T) {
	for _, url := range []string{"", "http://x", "localhost", "a:1,nonsense"} {
		_, err := redisstore.Open(context.Background(), url)
		wantCode(t, err, shared.EINVALID, "Open("+url+")")
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := redisstore.Open(ctx, "redis://127.0.0.1:1")
	wantCode(t, err, shared.EUNAVAILABLE, "Open of a closed port")
}
