package redisstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/redisstore"
	"github.com/edgepoll/edgepoll/shared"
)

// These tests crash real redis-server processes (SIGKILL) under load and
// check that every batch the store acknowledged survives, in each
// durability mode that promises it.

var replicaMode = redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 1, ReplicaTimeout: 500 * time.Millisecond}

func withDurability(tb testing.TB, s *redisstore.Store, d redisstore.Durability) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.SetDurability(ctx, d); err != nil {
		tb.Fatalf("SetDurability(%+v): %v", d, err)
	}
}

// load applies batches of fresh voters from several goroutines, as edges
// would: a batch that fails is retried a few times (the same batch), then
// given up. It records every voter of every acknowledged batch.
type load struct {
	t     *testing.T
	polls []string
	store atomic.Pointer[redisstore.Store]

	mu    sync.Mutex
	acked map[string][]shared.VoterID // poll → voters of acknowledged batches

	batches  atomic.Int64 // acknowledged
	failures atomic.Int64 // attempts that returned an error
	perPoll  sync.Map     // poll → *atomic.Int64 acknowledged batches
	stopc    chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, s *redisstore.Store, polls []string, workers int) *load {
	l := &load{t: t, polls: polls, acked: map[string][]shared.VoterID{}, stopc: make(chan struct{})}
	l.store.Store(s)
	for _, p := range polls {
		l.perPoll.Store(p, new(atomic.Int64))
	}
	for w := range workers {
		l.wg.Go(func() { l.work(w) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) work(w int) {
	for i := 0; ; i++ {
		select {
		case <-l.stopc:
			return
		default:
		}
		poll := l.polls[(w+i*7)%len(l.polls)]
		b := &shared.Batch{ID: newBatchID(), Edge: "durability"}
		for range 50 {
			b.Votes = append(b.Votes, vote(poll, newVoter(), uint8(len(b.Votes)%4)))
		}
		for attempt := 0; attempt < 4; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := l.store.Load().Apply(ctx, b, window)
			cancel()
			if err != nil {
				l.failures.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if int(r.Accepted) != len(b.Votes) {
				l.t.Errorf("batch %s of fresh voters acknowledged with %+v", b.ID, r)
				return
			}
			l.mu.Lock()
			for _, v := range b.Votes {
				l.acked[poll] = append(l.acked[poll], v.Voter)
			}
			l.mu.Unlock()
			l.batches.Add(1)
			n, _ := l.perPoll.Load(poll)
			n.(*atomic.Int64).Add(1)
			break
		}
	}
}

// waitFor waits until cond holds, failing the test if it does not within
// a minute (a liveness guard, not a measurement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// more waits until n more batches have been acknowledged (for poll, or any
// poll when poll is empty).
func (l *load) more(n int64, poll string) {
	l.t.Helper()
	count := func() int64 {
		if poll == "" {
			return l.batches.Load()
		}
		c, _ := l.perPoll.Load(poll)
		return c.(*atomic.Int64).Load()
	}
	target := count() + n
	waitFor(l.t, fmt.Sprintf("%d more acknowledged batches (poll %q)", n, poll), func() bool { return count() >= target })
}

func (l *load) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// verify checks, through s, that every acknowledged voter of every poll is
// in the poll's ledger and that the poll counts at least as many voters as
// were acknowledged.
func (l *load) verify(s *redisstore.Store) {
	l.t.Helper()
	l.stop()
	ctx := context.Background()
	total := 0
	for _, poll := range l.polls {
		acked := l.acked[poll]
		total += len(acked)
		inLedger := make(map[string]bool, len(acked))
		err := s.Ledger(ctx, poll, func(e origin.LedgerEntry) error {
			inLedger[e.VoterKey] = true
			return nil
		})
		if err != nil {
			l.t.Fatalf("ledger of %s: %v", poll, err)
		}
		lost := 0
		for _, v := range acked {
			if !inLedger[hex.EncodeToString(v[:8])] {
				lost++
			}
		}
		snap := mustSnapshot(l.t, s, poll)
		if lost > 0 || snap.Voters < uint64(len(acked)) {
			l.t.Errorf("poll %s: %d of %d acknowledged voters missing from the ledger; %d voters counted", poll, lost, len(acked), snap.Voters)
		}
	}
	if total == 0 {
		l.t.Fatal("no batch was acknowledged")
	}
	l.t.Logf("%d batches (%d votes) acknowledged and all counted; %d failed attempts", l.batches.Load(), total, l.failures.Load())
}

// TestFsyncSurvivesKill: in fsync mode, kill -9 the Redis under load and
// restart it from its append-only file: every acknowledged batch is there.
func TestFsyncSurvivesKill(t *testing.T) {
	srv := redistest.Start(t) // appendonly yes, appendfsync always
	s := mustOpen(t, srv.URL)
	withDurability(t, s, redisstore.Durability{Mode: redisstore.DurabilityFsync})
	openPoll(t, s, "crash", 4)
	l := startLoad(t, s, []string{"crash"}, 4)
	l.more(40, "")
	srv.Kill()
	waitFor(t, "failed applies while Redis is down", func() bool { return l.failures.Load() > 0 })
	srv.Restart(t)
	l.more(10, "") // the store recovers by itself
	l.verify(s)
}

// TestReplicaSurvivesPrimaryKill: in replica mode, kill -9 the primary (it
// keeps nothing on disk) under load, promote its replica and point a store
// at it: every acknowledged batch is there, and the promoted primary serves
// on once it has a replica of its own.
func TestReplicaSurvivesPrimaryKill(t *testing.T) {
	primary := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
	replica := redistest.StartReplica(t, primary, redistest.Options{Persistence: redistest.NoPersistence})
	s := mustOpen(t, primary.URL)
	withDurability(t, s, replicaMode)
	openPoll(t, s, "failover", 4)
	l := startLoad(t, s, []string{"failover"}, 4)
	l.more(40, "")
	primary.Kill()
	waitFor(t, "failed applies while the primary is down", func() bool { return l.failures.Load() > 0 })
	if _, err := replica.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	redistest.StartReplica(t, replica, redistest.Options{Persistence: redistest.NoPersistence})
	promoted := mustOpen(t, replica.URL)
	withDurability(t, promoted, replicaMode)
	l.store.Store(promoted)
	l.more(10, "")
	l.verify(promoted)
}

// TestClusterReplicaSurvivesFailover runs replica mode on a Cluster of three
// primaries with one replica each: a manual failover (CLUSTER FAILOVER on
// the replica) and then a kill -9 of a primary (its replica takes over
// after the node timeout) lose nothing acknowledged.
func TestClusterReplicaSurvivesFailover(t *testing.T) {
	c := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
	s := mustOpen(t, c.URL)

	t.Run("fsync check covers every node", func(t *testing.T) {
		withDurability(t, s, redisstore.Durability{Mode: redisstore.DurabilityFsync})
		_, replica := c.PrimaryFor(t, "ep:{x}:poll")
		if _, err := replica.Do("CONFIG", "SET", "appendfsync", "everysec"); err != nil {
			t.Fatal(err)
		}
		err := s.SetDurability(context.Background(), redisstore.Durability{Mode: redisstore.DurabilityFsync})
		if !errors.Is(err, redisstore.ErrNotDurable) || !strings.Contains(shared.ErrorMessage(err), replica.Addr) ||
			!strings.Contains(shared.ErrorMessage(err), "appendfsync everysec") {
			t.Fatalf("fsync check with one replica on everysec: %v", err)
		}
		if _, err := replica.Do("CONFIG", "SET", "appendfsync", "always"); err != nil {
			t.Fatal(err)
		}
	})
	withDurability(t, s, replicaMode)

	// Polls on every primary: ids whose slots the three primaries share.
	var polls []string
	per := map[*redistest.Server]int{}
	for i := 0; len(polls) < 9 && i < 1000; i++ {
		id := fmt.Sprintf("c%d", i)
		p, _ := c.PrimaryFor(t, "ep:{"+id+"}:poll")
		if per[p] < 3 {
			per[p]++
			polls = append(polls, id)
			openPoll(t, s, id, 4)
		}
	}
	target := polls[0]
	key := "ep:{" + target + "}:poll"
	l := startLoad(t, s, polls, 6)
	l.more(30, "")

	old, replica := c.PrimaryFor(t, key)
	if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", replica.Addr, err)
	}
	primary, _ := c.WaitPrimary(t, key, old, 1)
	l.more(10, target)

	primary.Kill()
	c.WaitPrimary(t, key, primary, 0)
	primary.Restart(t) // it rejoins as the replica of the new primary
	c.WaitPrimary(t, key, primary, 1)
	l.more(10, target)
	l.verify(s)
}

// TestDurabilityStartupChecks: SetDurability refuses a Redis that cannot
// keep the promise, saying what Redis has, and accepts one that can.
func TestDurabilityStartupChecks(t *testing.T) {
	ctx := context.Background()
	none := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
	everysec := redistest.StartWith(t, redistest.Options{Persistence: redistest.AOFEverysec})
	always := redistest.Start(t)
	replica := redistest.StartReplica(t, none, redistest.Options{})
	fsync := redisstore.Durability{Mode: redisstore.DurabilityFsync}
	cases := []struct {
		name string
		url  string
		d    redisstore.Durability
		want string // in the message; "" means accepted
		code shared.Code
	}{
		{"fsync refuses appendonly no", none.URL, fsync, "appendonly no", shared.EUNAVAILABLE},
		{"fsync refuses everysec", everysec.URL, fsync, "appendfsync everysec", shared.EUNAVAILABLE},
		{"fsync accepts always", always.URL, fsync, "", ""},
		{"fsync trusted", none.URL, redisstore.Durability{Mode: redisstore.DurabilityFsync, Trust: true}, "", ""},
		{"replica refuses no replicas", always.URL, replicaMode, "has 0", shared.EUNAVAILABLE},
		{"replica refuses too few", none.URL, redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 2}, "has 1", shared.EUNAVAILABLE},
		{"replica accepts one", none.URL, replicaMode, "", ""},
		{"replica refuses a replica", replica.URL, replicaMode, "is a slave, not a primary", shared.EUNAVAILABLE},
		{"none accepts anything", none.URL, redisstore.Durability{Mode: redisstore.DurabilityNone}, "", ""},
		{"unknown mode", none.URL, redisstore.Durability{Mode: "paper"}, "want none, fsync or replica", shared.EINVALID},
		{"zero replicas", none.URL, redisstore.Durability{Mode: redisstore.DurabilityReplica}, "replicas must be", shared.EINVALID},
		{"long timeout", none.URL, redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 1, ReplicaTimeout: time.Minute}, "replica timeout must be", shared.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustOpen(t, c.url)
			err := s.SetDurability(ctx, c.d)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if shared.ErrorCode(err) != c.code || !strings.Contains(shared.ErrorMessage(err), c.want) {
				t.Fatalf("got %v; want code %s and a message with %q", err, c.code, c.want)
			}
			if c.code == shared.EUNAVAILABLE && !errors.Is(err, redisstore.ErrNotDurable) {
				t.Fatalf("%v does not wrap ErrNotDurable", err)
			}
		})
	}
}

// TestDurabilityFollowsRedisConfig: the check notices a change of Redis's
// configuration at run time (within its one-second cache) and Apply stops
// acknowledging batches it could not keep the promise for; it recovers
// when the configuration does.
func TestDurabilityFollowsRedisConfig(t *testing.T) {
	ctx := context.Background()
	apply := func(s *redisstore.Store) error {
		_, err := s.Apply(ctx, &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("cfg", newVoter(), 0)}}, window)
		return err
	}

	t.Run("fsync", func(t *testing.T) {
		srv := redistest.Start(t)
		s := mustOpen(t, srv.URL)
		withDurability(t, s, redisstore.Durability{Mode: redisstore.DurabilityFsync})
		openPoll(t, s, "cfg", 2)
		if err := apply(s); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Do("CONFIG", "SET", "appendfsync", "everysec"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the check to see appendfsync everysec", func() bool {
			return errors.Is(s.CheckDurability(ctx), redisstore.ErrNotDurable)
		})
		if err := s.CheckDurability(ctx); !strings.Contains(shared.ErrorMessage(err), "appendfsync everysec") {
			t.Fatalf("check: %v", err)
		}
		waitFor(t, "Apply to refuse", func() bool { return errors.Is(apply(s), redisstore.ErrNotDurable) })
		if _, err := srv.Do("CONFIG", "SET", "appendfsync", "always"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the check to pass again", func() bool { return s.CheckDurability(ctx) == nil })
		waitFor(t, "Apply to acknowledge again", func() bool { return apply(s) == nil })
	})

	t.Run("replica", func(t *testing.T) {
		primary := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
		replica := redistest.StartReplica(t, primary, redistest.Options{})
		s := mustOpen(t, primary.URL)
		withDurability(t, s, redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 1, ReplicaTimeout: 100 * time.Millisecond})
		openPoll(t, s, "cfg", 2)
		if err := apply(s); err != nil {
			t.Fatal(err)
		}
		replica.Kill()
		waitFor(t, "the check to see no replica", func() bool {
			return errors.Is(s.CheckDurability(ctx), redisstore.ErrNotDurable)
		})
		if err := s.CheckDurability(ctx); !strings.Contains(shared.ErrorMessage(err), "has 0") {
			t.Fatalf("check: %v", err)
		}
		before := s.WaitShortfalls()
		err := apply(s)
		if shared.ErrorCode(err) != shared.EUNAVAILABLE || !strings.Contains(shared.ErrorMessage(err), "0 of 1 replica") {
			t.Fatalf("apply without a replica: %v", err)
		}
		if s.WaitShortfalls() != before+1 {
			t.Fatalf("shortfalls %d, want %d", s.WaitShortfalls(), before+1)
		}
		replica.Restart(t)
		replica.WaitInSync(t, primary)
		waitFor(t, "the check to pass again", func() bool { return s.CheckDurability(ctx) == nil })
		if err := apply(s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReplicaModeReplay: a batch delivered again after a failed WAIT gets
// its original receipt only once the replicas have it.
func TestReplicaModeReplay(t *testing.T) {
	ctx := context.Background()
	primary := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
	replica := redistest.StartReplica(t, primary, redistest.Options{})
	s := mustOpen(t, primary.URL)
	withDurability(t, s, redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 1, ReplicaTimeout: 100 * time.Millisecond})
	openPoll(t, s, "replay", 2)
	waitFor(t, "the poll on the replica", func() bool {
		v, err := replica.Do("EXISTS", "ep:{replay}:poll")
		return err == nil && v == "1"
	})
	// The replica leaves: WAIT finds no replica and the batch is refused.
	if _, err := replica.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	b := &shared.Batch{ID: newBatchID(), Votes: []shared.Vote{vote("replay", newVoter(), 0), vote("replay", newVoter(), 1)}}
	if _, err := s.Apply(ctx, b, window); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("apply without a replica: %v", err)
	}
	// The replica comes back and resyncs; the edge delivers the batch again.
	host, port, _ := strings.Cut(primary.Addr, ":")
	if _, err := replica.Do("REPLICAOF", host, port); err != nil {
		t.Fatal(err)
	}
	replica.WaitInSync(t, primary)
	r, err := s.Apply(ctx, b, window)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Replayed || r.Accepted != 2 {
		t.Fatalf("redelivery: %+v", r)
	}
	if v, err := replica.Do("HGET", "ep:{replay}:counts", "_voters"); err != nil || v != "2" {
		t.Fatalf("replica counts %q, %v", v, err)
	}
}
