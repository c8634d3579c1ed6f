package shared

import (
	"encoding/hex"
	"time"
)

// Limits on votes and batches. A batch of MaxBatchVotes votes with the longest
// poll ids stays below MaxBatchBytes, which fits one Cloudflare Queue message
// (128 KB).
const (
	MaxBatchVotes = 1000
	MaxBatchBytes = 120 << 10
	// MaxClockSkew is how far in the future a vote's receive time may lie
	// at least; the origin accepts up to its signing window (5 min by
	// default), as far as a batch's signature may be ahead.
	MaxClockSkew = time.Minute
)

// Reasons a vote in a batch is rejected. They key Receipt.Rejected.
const (
	RejectUnknownPoll   = "unknown_poll"
	RejectNotOpen       = "poll_not_open"
	RejectClosed        = "poll_closed"
	RejectInvalidChoice = "invalid_choice"
	RejectInvalidVote   = "invalid_vote"
)

// Reasons lists every reject reason, in the order receipts report them.
var Reasons = [...]string{RejectUnknownPoll, RejectNotOpen, RejectClosed, RejectInvalidChoice, RejectInvalidVote}

// NumReasons is the number of reject reasons.
const NumReasons = len(Reasons)

// ReasonIndex returns the index of reason in Reasons, or -1.
func ReasonIndex(reason string) int {
	for i, r := range Reasons {
		if r == reason {
			return i
		}
	}
	return -1
}

// VoterID is a random 128-bit voter identity, issued by the edge in a signed token.
type VoterID [16]byte

// String returns the lower-case hex form of v.
func (v VoterID) String() string { return hex.EncodeToString(v[:]) }

// IsZero reports whether v is all zero, which is never a valid voter.
func (v VoterID) IsZero() bool { return v == VoterID{} }

// ParseVoterID parses the 32-hex-digit form of a voter id.
func ParseVoterID(s string) (VoterID, error) {
	var v VoterID
	if len(s) != 32 {
		return v, Errorf(EINVALID, "voter id must be 32 hex digits")
	}
	if _, err := hex.Decode(v[:], []byte(s)); err != nil {
		return v, Errorf(EINVALID, "voter id must be 32 hex digits")
	}
	return v, nil
}

// Vote is one ballot as admitted by the edge.
type Vote struct {
	Poll  string  // poll id
	Voter VoterID // from the voter's signed token
	// Choices are option indexes (exactly one for a single-choice poll; in
	// preference order for a ranked poll), or for a scale poll one byte,
	// value - min. Empty for a words poll.
	Choices []uint8
	At      int64 // time received at the edge, Unix milliseconds
	// Words are a words poll's answers in normal form (NormalizeWord);
	// empty for every other kind.
	Words []string
}

// Validate checks v's shape (not its poll): id, voter, time, and either
// 1..MaxChoicesCap choices or 1..MaxWordsCap words of 1..MaxWordBytes bytes.
func (v *Vote) Validate() error {
	if !ValidPollID(v.Poll) {
		return Errorf(EINVALID, "invalid poll id")
	}
	if v.Voter.IsZero() {
		return Errorf(EINVALID, "zero voter id")
	}
	if !v.ShapeOK() {
		return Errorf(EINVALID, "a vote needs 1-%d choices or 1-%d words", MaxChoicesCap, MaxWordsCap)
	}
	if v.At <= 0 {
		return Errorf(EINVALID, "vote has no receive time")
	}
	return nil
}

// ShapeOK reports whether v carries either 1..MaxChoicesCap choices and no
// words, or no choices and 1..MaxWordsCap words of 1..MaxWordBytes bytes.
func (v *Vote) ShapeOK() bool {
	if len(v.Words) == 0 {
		return len(v.Choices) >= 1 && len(v.Choices) <= MaxChoicesCap
	}
	if len(v.Choices) != 0 || len(v.Words) > MaxWordsCap {
		return false
	}
	for _, w := range v.Words {
		if w == "" || len(w) > MaxWordBytes {
			return false
		}
	}
	return true
}

// BatchID identifies a batch; it is random, so ids never collide across edges.
type BatchID [16]byte

// String returns the lower-case hex form of id.
func (id BatchID) String() string { return hex.EncodeToString(id[:]) }

// Batch is a group of admitted votes sent by one edge as one signed message.
type Batch struct {
	ID    BatchID
	Edge  string // the sending edge (colo / isolate / harness instance), for logs
	Votes []Vote
}

// Validate checks the batch and each of its votes' shapes.
func (b *Batch) Validate() error {
	if b.ID == (BatchID{}) {
		return Errorf(EINVALID, "zero batch id")
	}
	if len(b.Edge) > MaxEdgeIDLen {
		return Errorf(EINVALID, "edge id longer than %d bytes", MaxEdgeIDLen)
	}
	if len(b.Votes) == 0 || len(b.Votes) > MaxBatchVotes {
		return Errorf(EINVALID, "a batch needs 1-%d votes", MaxBatchVotes)
	}
	for i := range b.Votes {
		if err := b.Votes[i].Validate(); err != nil {
			return Errorf(EINVALID, "vote %d: %s", i, ErrorMessage(err))
		}
	}
	return nil
}

// Receipt is the origin's answer to a batch: how many of its votes were
// accepted, were duplicates (the voter had already voted), or were rejected
// and why. A replayed batch gets its original receipt with Replayed set.
type Receipt struct {
	Batch     BatchID
	Accepted  uint32
	Duplicate uint32
	Rejected  [NumReasons]uint32 // indexed like Reasons
	Replayed  bool
}

// Total returns the number of votes the receipt accounts for.
func (r *Receipt) Total() uint32 {
	n := r.Accepted + r.Duplicate
	for _, c := range r.Rejected {
		n += c
	}
	return n
}

// Add adds o's counts to r.
func (r *Receipt) Add(o *Receipt) {
	r.Accepted += o.Accepted
	r.Duplicate += o.Duplicate
	for i := range r.Rejected {
		r.Rejected[i] += o.Rejected[i]
	}
}

// WordCount is one shown word of a words poll and its count.
type WordCount struct {
	Word  string
	Count uint64
}

// MaxSnapshotWords is the most words a snapshot shows.
const MaxSnapshotWords = 100

// Snapshot is a poll's results at one version.
type Snapshot struct {
	Poll    string
	Version uint64 // increases whenever counts change; part of the ETag
	// Counts has one count per option, by option index (for a ranked poll:
	// first preferences), or per scale value from ScaleMin; none for words.
	Counts      []uint64
	Total       uint64 // choices (ranked entries, words) counted; equals Voters for single and scale
	Voters      uint64 // distinct voters counted
	GeneratedAt int64  // Unix milliseconds

	// Kind is set for the kinds of wire version 2 (scale, ranked, words)
	// and empty for single and multi, whose snapshots keep version 1.
	Kind Kind
	// ScaleMin is the value of Counts[0] and ScaleSum the exact sum of all
	// values voted (scale).
	ScaleMin int64
	ScaleSum int64
	// Borda holds the Borda points per option (ranked).
	Borda []uint64
	// Words are the top words, at most MaxSnapshotWords, count descending
	// then word ascending; Distinct the number of different shown words,
	// exact when DistinctExact; CountError bounds how much a shown count
	// may exceed the true one (0 while exact). Words polls only.
	Words         []WordCount
	Distinct      uint64
	DistinctExact bool
	CountError    uint64
	// Rejected counts the votes of a batch the origin refused for this
	// poll, indexed like Reasons (unknown_poll stays 0). The origin's admin
	// results show it; it is not part of the wire format.
	Rejected [NumReasons]uint64
}
