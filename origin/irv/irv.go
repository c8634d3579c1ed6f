// Package irv counts ranked ballots by instant runoff, round by round, as
// `pollctl results --method irv` prints them (rules in docs/API.md,
// "Ranked polls: instant runoff").
package irv

import (
	"fmt"
	"strings"
)

// Round is one round of an instant-runoff count.
type Round struct {
	// Votes holds each option's votes this round; options out of the count
	// have 0 and In false.
	Votes []uint64
	In    []bool
	// Continuing is the number of ballots that count for an option still in;
	// Exhausted the number that rank none of them.
	Continuing, Exhausted uint64
	// Eliminated is the option eliminated after this round, or -1; Winner
	// the option that won in it, or -1.
	Eliminated, Winner int
}

// Tally gathers ballots for a count: identical ballots are kept once with
// their number, so memory follows the number of distinct rankings.
type Tally struct {
	n       int
	ballots map[string]uint64
}

// NewTally returns an empty tally for a poll of n options.
func NewTally(n int) *Tally { return &Tally{n: n, ballots: map[string]uint64{}} }

// Add records one ballot: option indexes in preference order. It returns
// an error for an index out of range or a repeated option.
func (t *Tally) Add(ballot []uint8) error {
	var seen [256]bool
	for _, c := range ballot {
		if int(c) >= t.n {
			return fmt.Errorf("ballot %v: option %d out of range 0-%d", ballot, c, t.n-1)
		}
		if seen[c] {
			return fmt.Errorf("ballot %v: option %d ranked twice", ballot, c)
		}
		seen[c] = true
	}
	t.ballots[string(ballot)]++
	return nil
}

// Count runs the instant-runoff count and returns its rounds; the last
// round's Winner is the winner, or -1 when no ballot counts for anyone.
//
// Each round, every ballot counts for its highest-ranked option still in;
// a ballot ranking none of them is exhausted. An option with more than half
// of the continuing ballots wins. Otherwise the option with the fewest votes
// is eliminated; a tie for fewest goes to the previous round's votes (fewer
// goes), then the round before, and so on, and when they are tied in every
// round the one with the highest option index goes. The last option in the
// count wins if any ballot counts for it.
func (t *Tally) Count() []Round {
	in := make([]bool, t.n)
	for i := range in {
		in[i] = true
	}
	left := t.n
	var rounds []Round
	for {
		r := Round{Votes: make([]uint64, t.n), In: append([]bool(nil), in...), Eliminated: -1, Winner: -1}
		for b, k := range t.ballots {
			counted := false
			for i := 0; i < len(b); i++ {
				if in[b[i]] {
					r.Votes[b[i]] += k
					counted = true
					break
				}
			}
			if counted {
				r.Continuing += k
			} else {
				r.Exhausted += k
			}
		}
		best := -1
		for o := range r.Votes {
			if in[o] && (best < 0 || r.Votes[o] > r.Votes[best]) {
				best = o
			}
		}
		rounds = append(rounds, r)
		last := &rounds[len(rounds)-1]
		if r.Continuing == 0 {
			return rounds // nobody to count for
		}
		if 2*r.Votes[best] > r.Continuing || left == 1 {
			last.Winner = best
			return rounds
		}
		out := loser(rounds, in)
		last.Eliminated = out
		in[out] = false
		left--
	}
}

// loser picks the option to eliminate after the last of rounds.
func loser(rounds []Round, in []bool) int {
	var tied []int
	cur := rounds[len(rounds)-1].Votes
	low := ^uint64(0)
	for o := range in {
		if !in[o] {
			continue
		}
		switch {
		case cur[o] < low:
			low, tied = cur[o], []int{o}
		case cur[o] == low:
			tied = append(tied, o)
		}
	}
	for r := len(rounds) - 2; r >= 0 && len(tied) > 1; r-- {
		votes := rounds[r].Votes
		low := ^uint64(0)
		var next []int
		for _, o := range tied {
			switch {
			case votes[o] < low:
				low, next = votes[o], []int{o}
			case votes[o] == low:
				next = append(next, o)
			}
		}
		tied = next
	}
	return tied[len(tied)-1] // highest index among those still tied
}

// Format writes the rounds as pollctl prints them, one line per round,
// with labels naming the options.
func Format(rounds []Round, labels []string) string {
	var sb strings.Builder
	for i, r := range rounds {
		fmt.Fprintf(&sb, "round %d: ", i+1)
		first := true
		for o, v := range r.Votes {
			if !r.In[o] {
				continue
			}
			if !first {
				sb.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&sb, "%s %d", labels[o], v)
		}
		fmt.Fprintf(&sb, " (continuing %d, exhausted %d)", r.Continuing, r.Exhausted)
		switch {
		case r.Winner >= 0:
			fmt.Fprintf(&sb, ": %s wins with %d of %d\n", labels[r.Winner], r.Votes[r.Winner], r.Continuing)
		case r.Eliminated >= 0:
			fmt.Fprintf(&sb, ": %s eliminated\n", labels[r.Eliminated])
		default:
			sb.WriteString(": no ballots, no winner\n")
		}
	}
	return sb.String()
}
