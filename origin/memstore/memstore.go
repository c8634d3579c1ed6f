// Package memstore is an in-memory origin.Store for unit tests and local
// experiments. It follows the same rules as the Redis store (one vote per
// voter per poll, replayed batches get their original receipt, per-vote
// rejects) but keeps everything in one process, so it is not shared between
// origin processes.
package memstore

import (
	"context"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

var _ origin.Store = (*Store)(nil)

type pollState struct {
	poll    shared.Poll
	counts  []uint64
	borda   []uint64 // ranked
	sum     int64    // scale: sum of values
	words   map[string]uint64
	hidden  map[string]bool
	ballots map[shared.VoterID][]string // words ballots
	batchOf map[shared.VoterID]shared.BatchID
	voters  map[shared.VoterID][]uint8
	order   []shared.VoterID // ledger order: first vote first
	total   uint64
	version uint64 // results version
	// rejected counts refused votes by reason (shared.Snapshot.Rejected)
	rejected [shared.NumReasons]uint64
}

type seenBatch struct {
	receipt shared.Receipt
	at      time.Time
}

// Store is an in-memory origin.Store. The zero value is not usable; call New.
type Store struct {
	// Now is the store's clock (used for replay windows); nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	polls   map[string]*pollState
	batches map[shared.BatchID]seenBatch
	closed  bool
	// epoch makes results versions of a re-created poll differ from the
	// deleted one's, like a store-wide counter would.
	epoch uint64
}

// New returns an empty Store.
func New() *Store {
	return &Store{polls: map[string]*pollState{}, batches: map[shared.BatchID]seenBatch{}}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) check() error {
	if s.closed {
		return shared.Errorf(shared.EUNAVAILABLE, "store closed")
	}
	return nil
}

// lookup returns the state of poll id; s.mu must be held. Errors are
// EUNAVAILABLE once closed and ENOTFOUND for an unknown poll.
func (s *Store) lookup(id string) (*pollState, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ps, ok := s.polls[id]
	if !ok {
		return nil, notFound(id)
	}
	return ps, nil
}

func clonePoll(p *shared.Poll) *shared.Poll {
	c := *p
	c.Options = slices.Clone(p.Options)
	if p.Scale != nil {
		sc := *p.Scale
		c.Scale = &sc
	}
	return &c
}

// clearVotes empties ps's counts and ballots.
func (ps *pollState) clearVotes() {
	ps.counts = make([]uint64, ps.poll.NumCounts())
	ps.borda = make([]uint64, ps.poll.NumCounts())
	ps.sum = 0
	ps.words = map[string]uint64{}
	ps.ballots = map[shared.VoterID][]string{}
	ps.batchOf = map[shared.VoterID]shared.BatchID{}
	ps.voters = map[shared.VoterID][]uint8{}
	ps.rejected = [shared.NumReasons]uint64{}
	ps.order = nil
	ps.total = 0
}

func notFound(id string) error { return shared.Errorf(shared.ENOTFOUND, "poll %q not found", id) }

// CreatePoll stores a new poll at version 1. Returns ECONFLICT if the id exists.
func (s *Store) CreatePoll(_ context.Context, p *shared.Poll, opts origin.CreateOptions) (*shared.Poll, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Kind != shared.KindWords && len(opts.Blocklist) > 0 {
		return nil, shared.Errorf(shared.EINVALID, "blocklist is only for a %q poll", shared.KindWords)
	}
	hidden := map[string]bool{}
	for _, w := range shared.DefaultHiddenWords() {
		hidden[w] = true
	}
	for i, w := range opts.Blocklist {
		n, err := shared.NormalizeWord(w)
		if err != nil {
			return nil, shared.Errorf(shared.EINVALID, "blocklist word %d: %s", i+1, shared.ErrorMessage(err))
		}
		hidden[n] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if _, ok := s.polls[p.ID]; ok {
		return nil, shared.Errorf(shared.ECONFLICT, "poll %q already exists", p.ID)
	}
	c := clonePoll(p)
	c.Version = 1
	s.epoch++
	ps := &pollState{poll: *c, version: s.epoch << 32, hidden: hidden}
	ps.clearVotes()
	s.polls[p.ID] = ps
	return clonePoll(c), nil
}

// Poll returns a poll. Returns ENOTFOUND if it does not exist.
func (s *Store) Poll(_ context.Context, id string) (*shared.Poll, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return clonePoll(&ps.poll), nil
}

// Polls lists all polls ordered by id.
func (s *Store) Polls(_ context.Context) ([]*shared.Poll, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make([]*shared.Poll, 0, len(s.polls))
	for _, ps := range s.polls {
		out = append(out, clonePoll(&ps.poll))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UpdatePoll applies fn to a copy of the poll and stores it with its version
// bumped. Changing the options of a poll with votes is ECONFLICT.
func (s *Store) UpdatePoll(_ context.Context, id string, fn func(*shared.Poll) error) (*shared.Poll, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	c := clonePoll(&ps.poll)
	if err := fn(c); err != nil {
		return nil, err
	}
	c.ID = id
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(ps.voters) > 0 && (!slices.Equal(c.Options, ps.poll.Options) || c.Kind != ps.poll.Kind || c.MaxChoices != ps.poll.MaxChoices ||
		c.MaxWords != ps.poll.MaxWords || (c.Scale == nil) != (ps.poll.Scale == nil) || c.Scale != nil && *c.Scale != *ps.poll.Scale) {
		return nil, shared.Errorf(shared.ECONFLICT, "poll %q has votes: its options and kind cannot change (reset it first)", id)
	}
	resize := c.NumCounts() != len(ps.counts)
	c.Version = ps.poll.Version + 1
	ps.poll = *c
	if resize {
		ps.clearVotes()
	}
	ps.version++
	return clonePoll(c), nil
}

// SetState opens or closes a poll as of at.
func (s *Store) SetState(ctx context.Context, id string, state shared.State, at time.Time) (*shared.Poll, error) {
	switch state {
	case shared.StateOpen, shared.StateClosed, shared.StateDraft:
	default:
		return nil, shared.Errorf(shared.EINVALID, "unknown state %q", state)
	}
	return s.UpdatePoll(ctx, id, func(p *shared.Poll) error {
		p.State = state
		switch {
		case state == shared.StateOpen && !p.ClosesAt.IsZero() && !at.Before(p.ClosesAt):
			p.ClosesAt = time.Time{}
		case state == shared.StateClosed && (p.ClosesAt.IsZero() || at.Before(p.ClosesAt)):
			p.ClosesAt = at
			if !p.OpensAt.IsZero() && !p.ClosesAt.After(p.OpensAt) {
				p.OpensAt = time.Time{}
			}
		}
		return nil
	})
}

// DeletePoll removes a poll and all its votes. Returns ENOTFOUND.
func (s *Store) DeletePoll(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if _, ok := s.polls[id]; !ok {
		return notFound(id)
	}
	delete(s.polls, id)
	return nil
}

// ResetPoll removes all votes of a poll and bumps its version. Returns ENOTFOUND.
func (s *Store) ResetPoll(_ context.Context, id string) (*shared.Poll, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	ps.clearVotes()
	ps.version++
	ps.poll.Version++
	return clonePoll(&ps.poll), nil
}

// Apply counts a batch atomically: each voter at most once per poll. A batch
// id seen within window returns its original receipt with Replayed set.
func (s *Store) Apply(_ context.Context, b *shared.Batch, window time.Duration) (*shared.Receipt, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	now := s.now()
	for id, sb := range s.batches {
		if now.Sub(sb.at) > window {
			delete(s.batches, id)
		}
	}
	if sb, ok := s.batches[b.ID]; ok {
		r := sb.receipt
		r.Replayed = true
		return &r, nil
	}
	r := shared.Receipt{Batch: b.ID}
	reject := func(reason string) { r.Rejected[shared.ReasonIndex(reason)]++ }
	for i := range b.Votes {
		v := &b.Votes[i]
		ps, ok := s.polls[v.Poll]
		if !ok {
			reject(shared.RejectUnknownPoll)
			continue
		}
		if err := ps.poll.AcceptsAt(time.UnixMilli(v.At)); err != nil {
			reject(shared.ErrorMessage(err))
			ps.rejected[shared.ReasonIndex(shared.ErrorMessage(err))]++
			continue
		}
		if !validBallot(&ps.poll, v) {
			reject(shared.RejectInvalidChoice)
			ps.rejected[shared.ReasonIndex(shared.RejectInvalidChoice)]++
			continue
		}
		if _, dup := ps.voters[v.Voter]; dup {
			r.Duplicate++
			continue
		}
		ps.voters[v.Voter] = slices.Clone(v.Choices)
		ps.batchOf[v.Voter] = b.ID
		ps.order = append(ps.order, v.Voter)
		ps.count(v)
		ps.version++
		r.Accepted++
	}
	s.batches[b.ID] = seenBatch{receipt: r, at: now}
	return &r, nil
}

// validBallot reports whether v is a ballot of p's kind.
func validBallot(p *shared.Poll, v *shared.Vote) bool {
	if p.Kind != shared.KindWords {
		return len(v.Words) == 0 && p.ValidateChoices(v.Choices) == nil
	}
	if len(v.Choices) != 0 || len(v.Words) == 0 || len(v.Words) > p.MaxWords {
		return false
	}
	for i, w := range v.Words {
		if n, err := shared.NormalizeWord(w); err != nil || n != w || slices.Contains(v.Words[:i], w) {
			return false
		}
	}
	return true
}

// count adds an accepted ballot to ps's counts.
func (ps *pollState) count(v *shared.Vote) {
	switch ps.poll.Kind {
	case shared.KindWords:
		ps.ballots[v.Voter] = slices.Clone(v.Words)
		for _, w := range v.Words {
			if !ps.hidden[w] {
				ps.words[w]++
			}
		}
		ps.total += uint64(len(v.Words))
	case shared.KindRanked:
		ps.counts[v.Choices[0]]++
		n := uint64(len(ps.poll.Options))
		for r, c := range v.Choices {
			ps.borda[c] += n - uint64(r) - 1
		}
		ps.total += uint64(len(v.Choices))
	case shared.KindScale:
		ps.counts[v.Choices[0]]++
		ps.sum += int64(ps.poll.Scale.Min) + int64(v.Choices[0])
		ps.total++
	default:
		for _, c := range v.Choices {
			ps.counts[c]++
			ps.total++
		}
	}
}

// BanWord implements origin.Store.
func (s *Store) BanWord(_ context.Context, id, word string) (string, error) {
	w, err := shared.NormalizeWord(word)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return "", err
	}
	if ps.poll.Kind != shared.KindWords {
		return "", shared.Errorf(shared.ECONFLICT, "poll %s is not a words poll", id)
	}
	ps.hidden[w] = true
	if _, ok := ps.words[w]; ok {
		delete(ps.words, w)
		ps.version++
	}
	return w, nil
}

// HiddenWords implements origin.Store.
func (s *Store) HiddenWords(_ context.Context, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if ps.poll.Kind != shared.KindWords {
		return nil, shared.Errorf(shared.ECONFLICT, "poll %s is not a words poll", id)
	}
	var out []string
	for w := range ps.hidden {
		if !slices.Contains(shared.DefaultHiddenWords(), w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out, nil
}

// AllWords implements origin.Store.
func (s *Store) AllWords(_ context.Context, id string) ([]shared.WordCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return ps.sortedWords(), nil
}

func (ps *pollState) sortedWords() []shared.WordCount {
	out := make([]shared.WordCount, 0, len(ps.words))
	for w, c := range ps.words {
		out = append(out, shared.WordCount{Word: w, Count: c})
	}
	slices.SortFunc(out, func(a, b shared.WordCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Word, b.Word)
	})
	return out
}

// Voted implements origin.Store.
func (s *Store) Voted(_ context.Context, poll string, voter shared.VoterID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(poll)
	if err != nil {
		return false, err
	}
	_, ok := ps.voters[voter]
	return ok, nil
}

// Snapshot returns a poll's current results. Returns ENOTFOUND.
func (s *Store) Snapshot(_ context.Context, id string) (*shared.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	snap := &shared.Snapshot{
		Poll:        id,
		Version:     ps.version,
		Counts:      slices.Clone(ps.counts),
		Total:       ps.total,
		Voters:      uint64(len(ps.voters)),
		GeneratedAt: s.now().UnixMilli(),
		Rejected:    ps.rejected,
	}
	switch k := ps.poll.Kind; k {
	case shared.KindScale:
		snap.Kind, snap.ScaleMin, snap.ScaleSum = k, int64(ps.poll.Scale.Min), ps.sum
	case shared.KindRanked:
		snap.Kind, snap.Borda = k, slices.Clone(ps.borda)
	case shared.KindWords:
		ws := ps.sortedWords()
		snap.Kind, snap.Distinct, snap.DistinctExact = k, uint64(len(ws)), true
		snap.Words = ws[:min(len(ws), shared.MaxSnapshotWords)]
	}
	return snap, nil
}

// SnapshotVersion returns the current results version of a poll.
func (s *Store) SnapshotVersion(_ context.Context, id string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.lookup(id)
	if err != nil {
		return 0, err
	}
	return ps.version, nil
}

// Ledger streams every counted ballot of a poll to fn, in the order counted.
// fn runs without the store's lock held.
func (s *Store) Ledger(ctx context.Context, id string, fn func(origin.LedgerEntry) error) error {
	s.mu.Lock()
	ps, err := s.lookup(id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	entries := make([]origin.LedgerEntry, len(ps.order))
	for i, v := range ps.order {
		b := ps.batchOf[v]
		entries[i] = origin.LedgerEntry{VoterKey: hex.EncodeToString(v[:]), Choices: slices.Clone(ps.voters[v]),
			Words: slices.Clone(ps.ballots[v]), Batch: hex.EncodeToString(b[:])}
	}
	s.mu.Unlock()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Stats returns store-wide figures.
func (s *Store) Stats(_ context.Context) (origin.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return origin.Stats{}, err
	}
	st := origin.Stats{Polls: len(s.polls), RedisVersion: "memstore"}
	for _, ps := range s.polls {
		st.Votes += ps.total
		st.Voters += uint64(len(ps.voters))
	}
	return st, nil
}

// Ping returns nil unless the store is closed.
func (s *Store) Ping(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check()
}

// Close marks the store closed; later calls fail with EUNAVAILABLE.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
