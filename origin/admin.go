package origin

import (
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// CreateRequest is the body of POST /v1/admin/polls: a poll plus storage
// hints. Empty kind, state and visibility default to single, draft and live.
type CreateRequest struct {
	shared.Poll
	// ExpectedVoters sizes the dedupe buckets; zero means 1,000,000.
	ExpectedVoters int `json:"expected_voters,omitempty"`
}

// SetDefaults fills an empty kind, state and visibility with single, draft
// and live.
func (r *CreateRequest) SetDefaults() {
	if r.Kind == "" {
		r.Kind = shared.KindSingle
	}
	if r.State == "" {
		r.State = shared.StateDraft
	}
	if r.Visibility == "" {
		r.Visibility = shared.VisibilityLive
	}
}

// UpdateRequest is the body of PATCH /v1/admin/polls/{id}: only the fields
// present change. State changes go through /open and /close.
type UpdateRequest struct {
	Title      *string            `json:"title,omitempty"`
	Options    *[]shared.Option   `json:"options,omitempty"`
	Kind       *shared.Kind       `json:"kind,omitempty"`
	MaxChoices *int               `json:"max_choices,omitempty"`
	OpensAt    *time.Time         `json:"opens_at,omitempty"`
	ClosesAt   *time.Time         `json:"closes_at,omitempty"`
	Visibility *shared.Visibility `json:"visibility,omitempty"`
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
	if u.OpensAt != nil {
		p.OpensAt = *u.OpensAt
	}
	if u.ClosesAt != nil {
		p.ClosesAt = *u.ClosesAt
	}
	if u.Visibility != nil {
		p.Visibility = *u.Visibility
	}
}

// Results is the body of GET /v1/admin/polls/{id}/results: a fresh snapshot
// with the option labels, whatever the poll's visibility.
type Results struct {
	Poll        string    `json:"poll"`
	Title       string    `json:"title"`
	State       string    `json:"state"`
	Version     uint64    `json:"version"`
	Options     []string  `json:"options"`
	Counts      []uint64  `json:"counts"`
	Total       uint64    `json:"total"`
	Voters      uint64    `json:"voters"`
	GeneratedAt time.Time `json:"generated_at"`
}
