// Package dedupe remembers (poll, voter) pairs already admitted, in bounded
// memory: two generations of a set, the older dropped when the newer fills.
// It is a cheap first filter; the origin is the authority on repeats.
package dedupe

import (
	"encoding/binary"
	"sync"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/ratelimit"
)

type key [2]uint64

// Set is a bounded memory of admitted (poll, voter) pairs. It remembers at
// least the last Cap/2 pairs added and at most Cap. Safe for concurrent use.
type Set struct {
	mu        sync.Mutex
	half      int
	cur, prev map[key]struct{}
}

// New returns a Set holding up to capacity pairs (minimum 2).
func New(capacity int) *Set {
	if capacity < 2 {
		capacity = 2
	}
	h := capacity / 2
	return &Set{half: h, cur: make(map[key]struct{}, h)}
}

func keyOf(poll string, voter shared.VoterID) key {
	return key{binary.LittleEndian.Uint64(voter[:8]) ^ ratelimit.Key(poll), binary.LittleEndian.Uint64(voter[8:])}
}

// Seen reports whether the pair was added and is still remembered.
func (s *Set) Seen(poll string, voter shared.VoterID) bool {
	k := keyOf(poll, voter)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[k]; ok {
		return true
	}
	_, ok := s.prev[k]
	return ok
}

// Add remembers the pair and reports whether it was new.
func (s *Set) Add(poll string, voter shared.VoterID) bool {
	k := keyOf(poll, voter)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[k]; ok {
		return false
	}
	if _, ok := s.prev[k]; ok {
		return false
	}
	if len(s.cur) >= s.half {
		s.prev, s.cur = s.cur, make(map[key]struct{}, s.half)
	}
	s.cur[k] = struct{}{}
	return true
}

// Remove forgets the pair, e.g. when its vote could not be handed off.
func (s *Set) Remove(poll string, voter shared.VoterID) {
	k := keyOf(poll, voter)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cur, k)
	delete(s.prev, k)
}

// Len returns the number of pairs remembered.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cur) + len(s.prev)
}
