package origin

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// CreateRequest is the body of POST /v1/admin/polls: a poll plus storage
// hints. Empty kind, state and visibility default to single, draft and live.
type CreateRequest struct {
	shared.Poll
	// ExpectedVoters sizes the dedupe buckets; zero means 1,000,000.
	ExpectedVoters int `json:"expected_voters,omitempty"`
	// Blocklist is a words poll's own hidden words (see
	// CreateOptions.Blocklist); it is not part of the poll's config.
	Blocklist []string `json:"blocklist,omitempty"`
}

// SetDefaults fills an empty kind, state, visibility and identity with
// single, draft, live and open, a ranked poll's max_choices with its number
// of options and a words poll's max_words with 1.
func (r *CreateRequest) SetDefaults() {
	if r.Kind == "" {
		r.Kind = shared.KindSingle
	}
	if r.Kind == shared.KindRanked && r.MaxChoices == 0 {
		r.MaxChoices = len(r.Options)
	}
	if r.Kind == shared.KindWords && r.MaxWords == 0 {
		r.MaxWords = 1
	}
	if r.State == "" {
		r.State = shared.StateDraft
	}
	if r.Visibility == "" {
		r.Visibility = shared.VisibilityLive
	}
	if r.Identity == "" {
		r.Identity = shared.IdentityOpen
	}
}

// UpdateRequest is the body of PATCH /v1/admin/polls/{id}: only the fields
// present change. State changes go through /open and /close.
type UpdateRequest struct {
	Title      *string            `json:"title,omitempty"`
	Options    *[]shared.Option   `json:"options,omitempty"`
	Kind       *shared.Kind       `json:"kind,omitempty"`
	MaxChoices *int               `json:"max_choices,omitempty"`
	Scale      *shared.Scale      `json:"scale,omitempty"`
	MaxWords   *int               `json:"max_words,omitempty"`
	OpensAt    *time.Time         `json:"opens_at,omitempty"`
	ClosesAt   *time.Time         `json:"closes_at,omitempty"`
	Visibility *shared.Visibility `json:"visibility,omitempty"`
	// Identity, JWTIssuer and JWTAudience change how voters get tokens;
	// never on a live poll (see CheckLiveChange).
	Identity    *shared.Identity `json:"identity,omitempty"`
	JWTIssuer   *string          `json:"jwt_issuer,omitempty"`
	JWTAudience *string          `json:"jwt_audience,omitempty"`
}

// Apply copies the present fields onto p.
func (u *UpdateRequest) Apply(p *shared.Poll) {
	if u.Title != nil {
		p.Title = *u.Title
	}
	if u.Options != nil {
		p.Options = *u.Options
	}
	if u.Kind != nil {
		p.Kind = *u.Kind
	}
	if u.MaxChoices != nil {
		p.MaxChoices = *u.MaxChoices
	}
	if u.Scale != nil {
		sc := *u.Scale
		p.Scale = &sc
	}
	if u.MaxWords != nil {
		p.MaxWords = *u.MaxWords
	}
	if u.OpensAt != nil {
		p.OpensAt = *u.OpensAt
	}
	if u.ClosesAt != nil {
		p.ClosesAt = *u.ClosesAt
	}
	if u.Visibility != nil {
		p.Visibility = *u.Visibility
	}
	if u.Identity != nil {
		p.Identity = *u.Identity
	}
	if u.JWTIssuer != nil {
		p.JWTIssuer = *u.JWTIssuer
	}
	if u.JWTAudience != nil {
		p.JWTAudience = *u.JWTAudience
	}
}

// Results is the body of GET /v1/admin/polls/{id}/results: a fresh snapshot
// with the option labels, whatever the poll's visibility.
type Results struct {
	Poll        string    `json:"poll"`
	Title       string    `json:"title"`
	State       string    `json:"state"` // closed once the window ended, whatever the stored state
	Version     uint64    `json:"version"`
	Options     []string  `json:"options,omitempty"` // labels, for the kinds with options
	Counts      []uint64  `json:"counts"`
	Total       uint64    `json:"total"`
	Voters      uint64    `json:"voters"`
	GeneratedAt time.Time `json:"generated_at"`
	// Kind is set for scale, ranked and words polls, with their fields
	// below (as in the public results, docs/EDGE-API.md).
	Kind          shared.Kind      `json:"kind,omitempty"`
	Min           *int64           `json:"min,omitempty"`
	Max           *int64           `json:"max,omitempty"`
	Mean          json.RawMessage  `json:"mean,omitempty"`
	Median        json.RawMessage  `json:"median,omitempty"`
	Borda         []uint64         `json:"borda,omitempty"`
	Words         []WordCount      `json:"words,omitempty"`
	Distinct      *uint64          `json:"distinct,omitempty"`
	DistinctExact *bool            `json:"distinct_exact,omitempty"`
	CountError    *uint64          `json:"count_error,omitempty"`
	Snapshot      *shared.Snapshot `json:"-"`
	// Rejected counts votes edges acknowledged that the origin refused, by
	// reason (poll_closed after an immediate close, say); absent when none.
	Rejected map[string]uint64 `json:"rejected,omitempty"`
}

// WordCount is one word of a words poll's results, as JSON.
type WordCount struct {
	Word  string `json:"word"`
	Count uint64 `json:"count"`
}

// BanRequest is the body of POST /v1/admin/polls/{id}/words/ban.
type BanRequest struct {
	Word string `json:"word"`
}

// BanResponse answers a ban: the word's normal form, now hidden.
type BanResponse struct {
	Word   string `json:"word"`
	Hidden bool   `json:"hidden"`
}

// HiddenList is the body of GET /v1/admin/polls/{id}/words/hidden.
type HiddenList struct {
	Hidden []string `json:"hidden"`
}

// FillKind sets r's kind-specific fields from snap (scale: min, max, mean,
// median; ranked: borda; words: words, distinct, distinct_exact,
// count_error). Single and multi results are left as they are.
func (r *Results) FillKind(p *shared.Poll, snap *shared.Snapshot) {
	r.Snapshot = snap
	switch p.Kind {
	case shared.KindScale:
		r.Kind = p.Kind
		lo, hi := snap.ScaleMin, snap.ScaleMin+int64(len(snap.Counts))-1
		r.Min, r.Max = &lo, &hi
		r.Mean = shared.AppendScaleMean(nil, snap)
		r.Median = shared.AppendScaleMedian(nil, snap)
	case shared.KindRanked:
		r.Kind = p.Kind
		r.Borda = snap.Borda
		for len(r.Borda) < len(p.Options) {
			r.Borda = append(r.Borda, 0)
		}
	case shared.KindWords:
		r.Kind = p.Kind
		r.Words = make([]WordCount, len(snap.Words))
		for i, w := range snap.Words {
			r.Words[i] = WordCount{Word: w.Word, Count: w.Count}
		}
		d, e, c := snap.Distinct, snap.DistinctExact, snap.CountError
		r.Distinct, r.DistinctExact, r.CountError = &d, &e, &c
	}
}

// Live reports whether an edge that holds p's config may acknowledge a vote
// at some time from now on until the config it holds has been replaced
// everywhere (shared.CloseLead): p is open, its window has not ended, and it
// opens before now+CloseLead.
func Live(p *shared.Poll, now time.Time) bool {
	if p.State != shared.StateOpen {
		return false
	}
	if !p.ClosesAt.IsZero() && !now.Before(p.ClosesAt) {
		return false
	}
	return p.OpensAt.IsZero() || p.OpensAt.Before(now.Add(shared.CloseLead))
}

// CheckLiveChange returns ECONFLICT when changing a live poll (see Live)
// from old to updated could turn a vote some edge acknowledged under old into
// one the origin refuses under updated: edges hold a poll's config for up
// to shared.MaxConfigAge and batches arrive late. On a live poll, options
// may only be appended (existing labels unchanged), max_choices may only
// grow, the kind and the identity mode (with its JWT issuer and audience)
// cannot change, opens_at may only move earlier (or later
// when it is still at least CloseLead away), and closes_at may only move
// later, or earlier to a time at least CloseLead from now. Changes to a
// poll that is not live are not restricted.
func CheckLiveChange(old, updated *shared.Poll, now time.Time) error {
	if !Live(old, now) {
		return nil
	}
	conflict := func(format string, args ...any) error {
		return shared.Errorf(shared.ECONFLICT, "poll %s is taking votes: "+format, append([]any{old.ID}, args...)...)
	}
	if updated.Kind != old.Kind {
		return conflict("its kind cannot change until it is closed")
	}
	if updated.IdentityMode() != old.IdentityMode() || updated.JWTIssuer != old.JWTIssuer || updated.JWTAudience != old.JWTAudience {
		return conflict("its identity mode, jwt_issuer and jwt_audience cannot change until it is closed (voters already hold tokens issued under them)")
	}
	if len(updated.Options) < len(old.Options) || !slices.Equal(updated.Options[:len(old.Options)], old.Options) {
		return conflict("options may only be appended until it is closed (edges validate votes against the options they hold)")
	}
	if updated.Limit() < old.Limit() {
		return conflict("max_choices may only grow until it is closed")
	}
	if updated.MaxWords < old.MaxWords {
		return conflict("max_words may only grow until it is closed")
	}
	if old.Scale != nil && (updated.Scale == nil || updated.Scale.Min > old.Scale.Min || updated.Scale.Max < old.Scale.Max) {
		return conflict("its scale may only widen until it is closed")
	}
	lead := now.Add(shared.CloseLead)
	if !updated.OpensAt.Equal(old.OpensAt) && (old.OpensAt.IsZero() || updated.OpensAt.After(old.OpensAt)) && (old.OpensAt.IsZero() || old.OpensAt.Before(lead)) {
		return conflict("opens_at may only move earlier now; votes have been acknowledged since %s", shortTime(old.OpensAt))
	}
	if !updated.ClosesAt.Equal(old.ClosesAt) && !updated.ClosesAt.IsZero() && (old.ClosesAt.IsZero() || updated.ClosesAt.Before(old.ClosesAt)) && updated.ClosesAt.Before(lead) {
		return conflict("closes_at may be brought forward to %s at the earliest (edges hold its config for up to %s); close it with now=true to stop at once", lead.UTC().Format(time.RFC3339), shared.MaxConfigAge)
	}
	return nil
}

// AnnounceClose is the change "close" makes to a poll by default: a live
// poll keeps taking votes until now+CloseLead (or its earlier closes_at),
// so every edge stops at the same instant and no acknowledged vote is
// refused; any other poll is closed at once.
func AnnounceClose(p *shared.Poll, now time.Time) {
	if !Live(p, now) {
		p.State = shared.StateClosed
		return
	}
	at := now.Add(shared.CloseLead).Truncate(time.Millisecond)
	if p.ClosesAt.IsZero() || p.ClosesAt.After(at) {
		p.ClosesAt = at
	}
}

// StopsAt returns when p stops taking votes, for a poll returned by a close:
// its closes_at while it is still open, else now.
func StopsAt(p *shared.Poll, now time.Time) time.Time {
	if p.State == shared.StateOpen && !p.ClosesAt.IsZero() && p.ClosesAt.After(now) {
		return p.ClosesAt
	}
	return now
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return "it opened"
	}
	return t.UTC().Format(time.RFC3339)
}
