// Package origin defines the aggregator's service interfaces. The Redis
// implementation lives in origin/redisstore, the fasthttp server in
// origin/server; binaries under origin/cmd only wire them together.
package origin

import (
	"context"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// CreateOptions tunes how a poll is stored.
type CreateOptions struct {
	// ExpectedVoters sizes the dedupe buckets (≈256 voters per bucket keeps
	// them intset-encoded, 2× headroom under Redis's default
	// set-max-intset-entries of 512). Zero means 1,000,000.
	ExpectedVoters int
	// Blocklist is a words poll's own hidden words (normalised on the way
	// in; at most shared.MaxBlocklist), on top of shared.DefaultHiddenWords().
	Blocklist []string
}

// LedgerEntry is one counted ballot.
type LedgerEntry struct {
	// VoterKey identifies the voter: bytes 0..7 of the voter id as 16 hex
	// digits (the Redis store keeps these in its ledger; its dedupe keys use
	// 62 of their bits plus bytes 8..11). Full voter ids are not stored.
	VoterKey string
	// Choices are the ballot's option indexes (ranked: in preference
	// order) or, for a scale poll, one byte: value - min.
	Choices []uint8
	// Words are a words poll's ballot, in normal form.
	Words []string
	// Batch is the id of the batch that carried the ballot (32 hex
	// digits), "" for ballots counted before batch ids were recorded.
	Batch string
}

// Stats are store-wide figures for the admin API.
type Stats struct {
	Polls        int    `json:"polls"`
	UsedMemory   int64  `json:"used_memory_bytes"`
	Votes        uint64 `json:"votes"`
	Voters       uint64 `json:"voters"`
	RedisNodes   int    `json:"redis_nodes"`
	RedisVersion string `json:"redis_version"`
}

// Store is the origin's state. Implementations are safe for concurrent use
// by many origin processes at once.
type Store interface {
	// CreatePoll stores a new poll at version 1. Returns ECONFLICT if the id exists.
	CreatePoll(ctx context.Context, p *shared.Poll, opts CreateOptions) (*shared.Poll, error)
	// Poll returns a poll. Returns ENOTFOUND if it does not exist.
	Poll(ctx context.Context, id string) (*shared.Poll, error)
	// Polls lists all polls ordered by id.
	Polls(ctx context.Context) ([]*shared.Poll, error)
	// UpdatePoll applies fn to the poll and stores it with its version bumped.
	// Returns ENOTFOUND, or fn's error; changing options of a poll with votes is ECONFLICT.
	UpdatePoll(ctx context.Context, id string, fn func(*shared.Poll) error) (*shared.Poll, error)
	// SetState opens or closes a poll as of at. Votes received (at the edge)
	// before a close still count when their batch arrives later.
	SetState(ctx context.Context, id string, state shared.State, at time.Time) (*shared.Poll, error)
	// DeletePoll removes a poll and all its votes. Returns ENOTFOUND.
	DeletePoll(ctx context.Context, id string) error
	// ResetPoll removes all votes of a poll and bumps its version. Returns ENOTFOUND.
	ResetPoll(ctx context.Context, id string) (*shared.Poll, error)
	// Apply counts a batch atomically per poll: each voter at most once per
	// poll, whatever other batches or processes do. A batch id seen within
	// window returns its original receipt with Replayed set, changing nothing.
	Apply(ctx context.Context, b *shared.Batch, window time.Duration) (*shared.Receipt, error)
	// Voted reports whether voter's vote is counted in poll. Returns ENOTFOUND.
	Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error)
	// Snapshot returns a poll's current results. Returns ENOTFOUND.
	Snapshot(ctx context.Context, id string) (*shared.Snapshot, error)
	// SnapshotVersion returns the current results version of a poll, cheaply.
	SnapshotVersion(ctx context.Context, id string) (uint64, error)
	// Ledger streams every counted ballot of a poll to fn, stopping at fn's first error.
	Ledger(ctx context.Context, id string, fn func(LedgerEntry) error) error
	// BanWord hides word (normalised first) in a words poll from the next
	// snapshot on; its ballots stay in the ledger. Returns the normal form,
	// or EINVALID, ENOTFOUND, or ECONFLICT when the poll is not a words poll.
	BanWord(ctx context.Context, poll, word string) (string, error)
	// HiddenWords returns a words poll's blocklist and bans (not the
	// default list), sorted. Returns ENOTFOUND or ECONFLICT.
	HiddenWords(ctx context.Context, poll string) ([]string, error)
	// AllWords returns every word a words poll counts for display, in the
	// snapshots' order (count descending, word ascending). Returns ENOTFOUND.
	AllWords(ctx context.Context, poll string) ([]shared.WordCount, error)
	// Stats returns store-wide figures.
	Stats(ctx context.Context) (Stats, error)
	// Ping returns nil when the store is reachable.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}
