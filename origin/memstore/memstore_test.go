package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/memstore"
	"github.com/edgepoll/edgepoll/shared"
)

func TestApplyDedupesAndReplays(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	s := memstore.New()
	s.Now = func() time.Time { return now }
	p := &shared.Poll{ID: "p", Title: "T", Kind: shared.KindSingle, State: shared.StateOpen,
		Visibility: shared.VisibilityLive, Options: []shared.Option{{Label: "a"}, {Label: "b"}}}
	if _, err := s.CreatePoll(ctx, p, origin.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePoll(ctx, p, origin.CreateOptions{}); shared.ErrorCode(err) != shared.ECONFLICT {
		t.Fatalf("second create: %v", err)
	}
	at := now.UnixMilli()
	b := &shared.Batch{ID: shared.BatchID{1}, Votes: []shared.Vote{
		{Poll: "p", Voter: shared.VoterID{1}, Choices: []uint8{0}, At: at},
		{Poll: "p", Voter: shared.VoterID{1}, Choices: []uint8{1}, At: at},
		{Poll: "p", Voter: shared.VoterID{2}, Choices: []uint8{1}, At: at},
		{Poll: "p", Voter: shared.VoterID{3}, Choices: []uint8{5}, At: at},
		{Poll: "x", Voter: shared.VoterID{4}, Choices: []uint8{0}, At: at},
	}}
	r, err := s.Apply(ctx, b, time.Minute)
	if err != nil || r.Accepted != 2 || r.Duplicate != 1 || r.Total() != 5 {
		t.Fatalf("receipt %+v %v", r, err)
	}
	v1, _ := s.SnapshotVersion(ctx, "p")
	again, _ := s.Apply(ctx, b, time.Minute)
	if !again.Replayed || again.Accepted != 2 {
		t.Fatalf("replay %+v", again)
	}
	if v2, _ := s.SnapshotVersion(ctx, "p"); v2 != v1 {
		t.Fatalf("replay changed the version %d → %d", v1, v2)
	}
	now = now.Add(2 * time.Minute) // past the window the batch id is forgotten
	if late, _ := s.Apply(ctx, b, time.Minute); late.Replayed || late.Accepted != 0 || late.Duplicate != 3 {
		t.Fatalf("after the window %+v", late)
	}
	snap, _ := s.Snapshot(ctx, "p")
	if snap.Voters != 2 || snap.Counts[0] != 1 || snap.Counts[1] != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	var n int
	if err := s.Ledger(ctx, "p", func(origin.LedgerEntry) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("ledger %d %v", n, err)
	}
	if _, err := s.SetState(ctx, "p", shared.StateClosed, now); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Apply(ctx, &shared.Batch{ID: shared.BatchID{2}, Votes: []shared.Vote{{Poll: "p", Voter: shared.VoterID{9}, Choices: []uint8{0}, At: now.UnixMilli()}}}, time.Minute)
	if r.Rejected[shared.ReasonIndex(shared.RejectClosed)] != 1 {
		t.Fatalf("closed poll receipt %+v", r)
	}
	if _, err := s.ResetPoll(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if snap, _ := s.Snapshot(ctx, "p"); snap.Voters != 0 || snap.Version == v1 {
		t.Fatalf("after reset %+v", snap)
	}
	if err := s.DeletePoll(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Poll(ctx, "p"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	_ = s.Close()
	if err := s.Ping(ctx); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("ping after close: %v", err)
	}
}
