// Package commit gathers admitted votes into MessagePack batches (group
// commit): votes submitted within a few milliseconds of each other, up to a
// size bound, travel as one shared.Batch.
//
// The request that opens a group is its leader. It waits MaxDelay (or until
// the group fills), then encodes the batch and calls send with its own
// context; every member's Submit returns send's result. In a Cloudflare
// Worker this matters: I/O belongs to the request that started it, so the
// send must be awaited by a request that is still running, never by a
// background goroutine.
package commit

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// Defaults for Options.
const (
	DefaultMaxVotes   = 500
	DefaultMaxDelay   = 5 * time.Millisecond
	DefaultMaxPending = 64
)

// batchOverhead bounds the bytes of a batch that are not votes: array and
// version, 16-byte id as bin, edge id as str, votes array header.
const batchOverhead = 1 + 1 + 2 + 16 + 2 + shared.MaxEdgeIDLen + 5

// voteSize bounds the encoded size of v: array header, poll id str, voter
// bin, choices bin, time as int64, words array and strs.
func voteSize(v *shared.Vote) int {
	n := 1 + 2 + len(v.Poll) + 2 + 16 + 2 + len(v.Choices) + 9 + 1
	for _, w := range v.Words {
		n += 2 + len(w)
	}
	return n
}

// Options tunes a Committer. Zero fields take the defaults.
type Options struct {
	// MaxVotes is the most votes in one batch (default 500, at most shared.MaxBatchVotes).
	MaxVotes int
	// MaxDelay is how long a leader waits for company (default 5 ms); a
	// negative value sends every vote at once in a batch of its own.
	MaxDelay time.Duration
	// MaxPending bounds the groups open or being sent at once; beyond it
	// Submit fails fast with EUNAVAILABLE (back-pressure). Default 64.
	MaxPending int
	// MaxBytes bounds a batch's encoded size (default and maximum shared.MaxBatchBytes).
	MaxBytes int
	// EdgeID names the sending edge in each batch.
	EdgeID string
}

// SendFunc delivers one encoded batch (shared.MarshalBatch bytes). It runs in
// the leader's request with the leader's context and must return only when
// the batch is durably accepted, or an error.
type SendFunc func(ctx context.Context, batch []byte) error

// Committer groups votes into batches. Safe for concurrent use.
type Committer struct {
	send SendFunc
	opts Options

	mu      sync.Mutex
	cur     *group // the open group, or nil
	pending int    // groups open or being sent
}

// group is one batch in the making.
type group struct {
	votes  []shared.Vote
	size   int
	sealed bool
	full   chan struct{} // closed when the group is sealed before its delay ran out
	done   chan struct{} // closed when err is set
	err    error
}

// New returns a Committer that delivers batches with send.
func New(send SendFunc, opts Options) *Committer {
	if opts.MaxVotes <= 0 {
		opts.MaxVotes = DefaultMaxVotes
	}
	if opts.MaxVotes > shared.MaxBatchVotes {
		opts.MaxVotes = shared.MaxBatchVotes
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.MaxBytes <= 0 || opts.MaxBytes > shared.MaxBatchBytes {
		opts.MaxBytes = shared.MaxBatchBytes
	}
	if len(opts.EdgeID) > shared.MaxEdgeIDLen {
		opts.EdgeID = opts.EdgeID[:shared.MaxEdgeIDLen]
	}
	return &Committer{send: send, opts: opts}
}

// Submit adds v to the open group (opening one if needed) and returns once
// the group's batch has been sent: nil if send succeeded, send's error
// otherwise (EUNAVAILABLE unless send returned a coded error), or
// EUNAVAILABLE at once when MaxPending groups are already in flight or ctx
// ends first. v is copied; its Choices must not change until Submit returns.
// Errors for a malformed vote are EINVALID.
func (c *Committer) Submit(ctx context.Context, v *shared.Vote) error {
	if err := v.Validate(); err != nil {
		return err
	}
	size := voteSize(v)
	c.mu.Lock()
	g := c.cur
	if g != nil && (len(g.votes) >= c.opts.MaxVotes || batchOverhead+g.size+size > c.opts.MaxBytes) {
		c.sealLocked(g)
		g = nil
	}
	leader := g == nil
	if leader {
		if c.pending >= c.opts.MaxPending {
			c.mu.Unlock()
			return shared.Errorf(shared.EUNAVAILABLE, "edge is overloaded: %d batches in flight", c.pending)
		}
		g = &group{votes: make([]shared.Vote, 0, min(c.opts.MaxVotes, 64)), full: make(chan struct{}), done: make(chan struct{})}
		c.cur = g
		c.pending++
	}
	g.votes = append(g.votes, *v)
	g.size += size
	if len(g.votes) >= c.opts.MaxVotes {
		c.sealLocked(g)
	}
	c.mu.Unlock()

	if !leader {
		select {
		case <-g.done:
			return g.err
		case <-ctx.Done():
			return shared.Wrap(shared.EUNAVAILABLE, ctx.Err(), "request ended before its vote batch was sent")
		}
	}
	return c.lead(ctx, g)
}

// sealLocked closes g to new members. c.mu must be held.
func (c *Committer) sealLocked(g *group) {
	if g.sealed {
		return
	}
	g.sealed = true
	if c.cur == g {
		c.cur = nil
	}
	close(g.full)
}

// lead waits for the group to fill or the delay to pass, then sends it.
func (c *Committer) lead(ctx context.Context, g *group) error {
	if c.opts.MaxDelay > 0 {
		t := time.NewTimer(c.opts.MaxDelay)
		select {
		case <-t.C:
		case <-g.full:
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	c.sealLocked(g)
	c.mu.Unlock()

	g.err = c.flush(ctx, g.votes)
	close(g.done)

	c.mu.Lock()
	c.pending--
	c.mu.Unlock()
	return g.err
}

// flush encodes votes as one batch and sends it.
func (c *Committer) flush(ctx context.Context, votes []shared.Vote) error {
	if err := ctx.Err(); err != nil {
		return shared.Wrap(shared.EUNAVAILABLE, err, "request ended before its vote batch was sent")
	}
	b := shared.Batch{Edge: c.opts.EdgeID, Votes: votes}
	if _, err := rand.Read(b.ID[:]); err != nil {
		return shared.Wrap(shared.EUNAVAILABLE, err, "no randomness for a batch id")
	}
	data, err := shared.MarshalBatch(&b)
	if err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "encoding a vote batch")
	}
	if err := c.send(ctx, data); err != nil {
		if shared.ErrorCode(err) == shared.EINTERNAL {
			return shared.Wrap(shared.EUNAVAILABLE, err, "vote batch could not be handed off")
		}
		return err
	}
	return nil
}

// Pending returns the number of groups open or being sent.
func (c *Committer) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}
