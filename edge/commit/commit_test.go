package commit_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge/commit"
	"github.com/edgepoll/edgepoll/shared"
)

type ctxKey struct{}

// recorder is a SendFunc that decodes and keeps every batch.
type recorder struct {
	mu      sync.Mutex
	batches []shared.Batch
	sizes   []int
	leaders []int // ctx value of the request that sent each batch
	fail    error
}

func (r *recorder) send(ctx context.Context, data []byte) error {
	var b shared.Batch
	if err := shared.UnmarshalBatch(data, &b); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.batches = append(r.batches, b)
	r.sizes = append(r.sizes, len(data))
	lead, _ := ctx.Value(ctxKey{}).(int)
	r.leaders = append(r.leaders, lead)
	return nil
}

func vote(i int) *shared.Vote {
	v := &shared.Vote{Poll: "p1", Choices: []uint8{uint8(i % 3)}, At: 1700000000000 + int64(i)}
	binary.BigEndian.PutUint64(v.Voter[8:], uint64(i)+1)
	return v
}

func voterIndex(v shared.Vote) int { return int(binary.BigEndian.Uint64(v.Voter[8:])) - 1 }

// submitAll submits votes 0..n-1 concurrently, each with a ctx naming it.
func submitAll(t *testing.T, c *commit.Committer, n int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := context.WithValue(context.Background(), ctxKey{}, i)
			errs[i] = c.Submit(ctx, vote(i))
		}(i)
	}
	wg.Wait()
	return errs
}

func TestGroupsAndLeaderSends(t *testing.T) {
	r := &recorder{}
	c := commit.New(r.send, commit.Options{MaxVotes: 10, MaxDelay: 20 * time.Millisecond, EdgeID: "colo-1"})
	const n = 200
	for i, err := range submitAll(t, c, n) {
		if err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	seen := make(map[int]bool)
	for bi, b := range r.batches {
		if len(b.Votes) == 0 || len(b.Votes) > 10 {
			t.Errorf("batch %d has %d votes, want 1-10", bi, len(b.Votes))
		}
		if b.Edge != "colo-1" || b.ID == (shared.BatchID{}) {
			t.Errorf("batch %d: edge %q id %s", bi, b.Edge, b.ID)
		}
		leaderInBatch := false
		for _, v := range b.Votes {
			i := voterIndex(v)
			if seen[i] {
				t.Errorf("vote %d sent twice", i)
			}
			seen[i] = true
			if v.At != 1700000000000+int64(i) || v.Choices[0] != uint8(i%3) || v.Poll != "p1" {
				t.Errorf("vote %d changed in transit: %+v", i, v)
			}
			if i == r.leaders[bi] {
				leaderInBatch = true
			}
		}
		if voterIndex(b.Votes[0]) != r.leaders[bi] || !leaderInBatch {
			t.Errorf("batch %d was sent with the context of request %d, which is not its first member", bi, r.leaders[bi])
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct votes sent, want %d", len(seen), n)
	}
	if len(r.batches) >= n {
		t.Errorf("%d batches for %d votes: nothing was grouped", len(r.batches), n)
	}
	if c.Pending() != 0 {
		t.Errorf("Pending() = %d after all submits returned", c.Pending())
	}
}

func TestSendErrorReachesEveryMember(t *testing.T) {
	r := &recorder{fail: errors.New("queue refused")}
	c := commit.New(r.send, commit.Options{MaxVotes: 5, MaxDelay: 10 * time.Millisecond})
	for i, err := range submitAll(t, c, 20) {
		if shared.ErrorCode(err) != shared.EUNAVAILABLE || !strings.Contains(err.Error(), "queue refused") {
			t.Errorf("vote %d: err %v, want EUNAVAILABLE wrapping the send error", i, err)
		}
	}
	coded := shared.Errorf(shared.EINVALID, "coded")
	r.fail = coded
	if err := c.Submit(context.Background(), vote(1)); err != coded {
		t.Errorf("coded send error %v not returned as is", err)
	}
}

func TestBackPressure(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	send := func(ctx context.Context, b []byte) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	c := commit.New(send, commit.Options{MaxPending: 1, MaxDelay: -1})
	done := make(chan error)
	go func() { done <- c.Submit(context.Background(), vote(0)) }()
	<-entered
	err := c.Submit(context.Background(), vote(1))
	if shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("second submit while one batch is in flight: %v, want EUNAVAILABLE", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first submit: %v", err)
	}
	go func() { <-entered }()
	if err := c.Submit(context.Background(), vote(2)); err != nil {
		t.Fatalf("submit after the backlog drained: %v", err)
	}
}

func TestBatchByteBound(t *testing.T) {
	r := &recorder{}
	const limit = 400
	c := commit.New(r.send, commit.Options{MaxVotes: 1000, MaxBytes: limit, MaxDelay: 20 * time.Millisecond})
	for i, err := range submitAll(t, c, 60) {
		if err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	total := 0
	for i, s := range r.sizes {
		if s > limit {
			t.Errorf("batch %d is %d bytes, limit %d", i, s, limit)
		}
		total += len(r.batches[i].Votes)
	}
	if total != 60 || len(r.batches) < 60*35/limit {
		t.Errorf("%d votes in %d batches", total, len(r.batches))
	}
}

func TestLargestBatchFitsWire(t *testing.T) {
	var (
		mu    sync.Mutex
		sizes []int
	)
	send := func(ctx context.Context, b []byte) error {
		var bt shared.Batch
		if err := shared.UnmarshalBatch(b, &bt); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(b))
		return nil
	}
	c := commit.New(send, commit.Options{MaxVotes: shared.MaxBatchVotes, MaxDelay: 50 * time.Millisecond, EdgeID: strings.Repeat("e", 80)})
	var wg sync.WaitGroup
	errs := make([]error, shared.MaxBatchVotes)
	for i := range errs {
		v := vote(i)
		v.Poll = strings.Repeat("p", shared.MaxPollIDLen)
		v.Choices = make([]uint8, shared.MaxChoicesCap)
		for j := range v.Choices {
			v.Choices[j] = uint8(j)
		}
		v.At = 1 << 62
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Submit(context.Background(), v) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	for _, s := range sizes {
		if s > shared.MaxBatchBytes {
			t.Errorf("batch of %d bytes exceeds MaxBatchBytes", s)
		}
	}
	if len(sizes) < 2 {
		t.Errorf("1000 maximal votes went out in %d batch(es); the byte bound should have split them", len(sizes))
	}
}

func TestFollowerContextEnds(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	send := func(ctx context.Context, b []byte) error { close(entered); <-release; return nil }
	c := commit.New(send, commit.Options{MaxDelay: time.Hour, MaxVotes: 2})
	lead := make(chan error)
	go func() { lead <- c.Submit(context.Background(), vote(0)) }()
	for c.Pending() != 1 { // the leader has opened the group
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	follower := make(chan error)
	go func() { follower <- c.Submit(ctx, vote(1)) }()
	<-entered // the follower filled the group (MaxVotes 2); its leader is in send
	cancel()
	if err := <-follower; shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Errorf("follower with a cancelled context: %v, want EUNAVAILABLE", err)
	}
	close(release)
	if err := <-lead; err != nil {
		t.Errorf("leader: %v", err)
	}
}

func TestLeaderContextEnds(t *testing.T) {
	var sent atomic.Int32
	send := func(ctx context.Context, b []byte) error { sent.Add(1); return nil }
	c := commit.New(send, commit.Options{MaxDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Submit(ctx, vote(0)); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Errorf("leader with a cancelled context: %v, want EUNAVAILABLE", err)
	}
	if sent.Load() != 0 {
		t.Error("a batch was sent for a request that had ended")
	}
}

func TestInvalidVote(t *testing.T) {
	c := commit.New(func(context.Context, []byte) error { return nil }, commit.Options{})
	if err := c.Submit(context.Background(), &shared.Vote{Poll: "p1"}); shared.ErrorCode(err) != shared.EINVALID {
		t.Errorf("zero voter: %v, want EINVALID", err)
	}
}

func TestHeavyConcurrency(t *testing.T) {
	var got atomic.Int64
	send := func(ctx context.Context, data []byte) error {
		var b shared.Batch
		if err := shared.UnmarshalBatch(data, &b); err != nil {
			return err
		}
		got.Add(int64(len(b.Votes)))
		return nil
	}
	c := commit.New(send, commit.Options{MaxDelay: time.Millisecond, MaxPending: 1 << 20})
	const n = 5000
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 50 {
				if err := c.Submit(context.Background(), vote(i)); err != nil {
					t.Errorf("vote %d: %v", i, err)
					return
				}
				ok.Add(1)
			}
		}(w)
	}
	wg.Wait()
	if got.Load() != n || ok.Load() != n {
		t.Errorf("sent %d votes, acknowledged %d, want %d", got.Load(), ok.Load(), n)
	}
}

func BenchmarkSubmit(b *testing.B) {
	var votes atomic.Int64
	var batches atomic.Int64
	send := func(ctx context.Context, data []byte) error { batches.Add(1); return nil }
	c := commit.New(send, commit.Options{MaxDelay: time.Millisecond, MaxPending: 1 << 20})
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(votes.Add(1))
			if err := c.Submit(context.Background(), vote(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(votes.Load())/float64(n), "votes/batch")
	}
}
