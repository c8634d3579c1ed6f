package redisstore_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/shared"
)

// distinctBatch returns a batch of n votes by new voters.
func distinctBatch(poll string, n int, now int64) *shared.Batch {
	b := &shared.Batch{ID: newBatchID(), Edge: "bench", Votes: make([]shared.Vote, n)}
	for i := range b.Votes {
		b.Votes[i] = shared.Vote{Poll: poll, Voter: newVoter(), Choices: []uint8{uint8(i % 4)}, At: now}
	}
	return b
}

// TestMemoryPerVoter applies 100,000 distinct voters to a poll sized for
// them and checks Redis's used_memory grows by at most 24 bytes per voter.
func TestMemoryPerVoter(t *testing.T) {
	const voters, perBatch = 100_000, 500
	srv := redistest.Start(t)
	s := mustOpen(t, srv.URL)
	ctx := context.Background()
	mustCreate(t, s, newPoll("mem", 4), voters)
	if _, err := s.SetState(ctx, "mem", shared.StateOpen, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	batches := make(chan *shared.Batch, voters/perBatch)
	for range voters / perBatch {
		batches <- distinctBatch("mem", perBatch, now)
	}
	close(batches)
	before, err := s.MemoryUsed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for b := range batches {
				if r, err := s.Apply(ctx, b, time.Minute); err != nil || r.Accepted != perBatch {
					t.Errorf("Apply: %+v, %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	after, err := s.MemoryUsed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, s, "mem")
	if snap.Voters != voters {
		t.Fatalf("counted %d voters, want %d", snap.Voters, voters)
	}
	perVoter := float64(after-before) / voters
	t.Logf("redis used_memory: %d → %d bytes: %.2f bytes per voter (incl. replay receipts)", before, after, perVoter)
	if perVoter > 24 {
		t.Fatalf("%.2f bytes of Redis memory per voter, target ≤ 24", perVoter)
	}
}

// BenchmarkApply measures Apply of 500-vote batches of distinct voters
// against a real redis-server, from 4 goroutines per CPU (Redis is the
// bottleneck), and reports votes/s.
func BenchmarkApply(b *testing.B) {
	benchApply(b, redistest.Start(b).URL)
}

func benchApply(b *testing.B, url string) {
	const perBatch = 500
	s := mustOpen(b, url)
	ctx := context.Background()
	mustCreate(b, s, newPoll("bench", 4), 1_000_000)
	if _, err := s.SetState(ctx, "bench", shared.StateOpen, time.Now().Add(-time.Minute)); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	// Pre-build a pool of batches. Each op copies one with a fresh batch id
	// and voter ids made unique by the op number, so every vote is by a new
	// voter (Redis sees the bytes it stores: voter bytes 0..11).
	pool := make([]*shared.Batch, 64)
	for i := range pool {
		pool[i] = distinctBatch("bench", perBatch, now)
	}
	var next atomic.Uint32
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		votes := make([]shared.Vote, perBatch)
		for pb.Next() {
			op := next.Add(1)
			copy(votes, pool[op%uint32(len(pool))].Votes)
			for i := range votes {
				binary.BigEndian.PutUint32(votes[i].Voter[4:8], op)
			}
			batch := &shared.Batch{ID: newBatchID(), Votes: votes}
			if r, err := s.Apply(ctx, batch, time.Minute); err != nil || r.Accepted != perBatch {
				b.Errorf("Apply: %+v, %v", r, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "votes/s")
}
