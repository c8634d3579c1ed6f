package shared

import (
	"time"
	"unicode/utf8"
)

// Limits on polls. They bound memory at the edge and the size of the wire format.
const (
	MinOptions     = 2
	MaxOptions     = 64
	MaxPollIDLen   = 64
	MaxTitleLen    = 200
	MaxLabelLen    = 100
	MaxEdgeIDLen   = 64
	MaxChoicesCap  = MaxOptions
	maxReasonLen   = 32
	maxStateStrLen = 16
	// MaxJWTClaimLen bounds a signed poll's jwt_issuer and jwt_audience.
	MaxJWTClaimLen = 200
)

// Config propagation. Every edge host serves a poll's config no older than
// MaxConfigAge (measured from the moment it asked the origin for it), so a
// change the origin makes at time T is in force at every edge by
// T+MaxConfigAge. A close announced CloseLead ahead (MaxConfigAge plus
// ClockSkew for the edges' and origin's clocks) therefore stops every edge
// at the same instant, and no vote an edge acknowledges is refused later as
// closed.
const (
	MaxConfigAge = 8 * time.Second
	ClockSkew    = 2 * time.Second
	CloseLead    = MaxConfigAge + ClockSkew
)

// Kind says what a ballot is: options chosen, a value on a scale, options
// ranked, or words.
type Kind string

// Poll kinds.
const (
	KindSingle Kind = "single" // exactly one option
	KindMulti  Kind = "multi"  // one to MaxChoices distinct options
	KindScale  Kind = "scale"  // one integer from Scale.Min to Scale.Max
	KindRanked Kind = "ranked" // one to MaxChoices distinct options, in preference order
	KindWords  Kind = "words"  // one to MaxWords words of free text, normalised
)

// Limits of the scale and words kinds.
const (
	MinScaleSteps = 2
	MaxScaleSteps = 101
	// MaxScaleAbs bounds |min| and |max| of a scale.
	MaxScaleAbs = 1_000_000
	// MaxWordsCap is the most words a words poll may take per ballot.
	MaxWordsCap = 3
	// MaxBlocklist bounds a words poll's own blocklist.
	MaxBlocklist = 1000
)

// Scale is the range of a scale poll: integers Min..Max, with optional
// labels for the two ends.
type Scale struct {
	Min      int    `json:"min"`
	Max      int    `json:"max"`
	MinLabel string `json:"min_label,omitempty"`
	MaxLabel string `json:"max_label,omitempty"`
}

// Steps returns the number of values on the scale.
func (s *Scale) Steps() int { return s.Max - s.Min + 1 }

// HasOptions reports whether ballots of kind k choose among options.
func (k Kind) HasOptions() bool { return k == KindSingle || k == KindMulti || k == KindRanked }

// Extended reports whether k is one of the kinds added in wire version 2
// (scale, ranked, words), whose configs and snapshots use that version.
func (k Kind) Extended() bool { return k == KindScale || k == KindRanked || k == KindWords }

// State is a poll's life-cycle state.
type State string

// Poll states. Votes are accepted only while open (and inside OpensAt/ClosesAt).
const (
	StateDraft  State = "draft"
	StateOpen   State = "open"
	StateClosed State = "closed"
)

// Visibility says when results are public.
type Visibility string

// Results visibilities.
const (
	VisibilityLive       Visibility = "live"
	VisibilityAfterClose Visibility = "after_close"
)

// Identity says how strongly a poll ties a voter to a person: what the edge
// asks for before it issues a voter token.
type Identity string

// Identity modes. The empty Identity is IdentityOpen.
const (
	// IdentityOpen issues a token to any browser that asks, limited per
	// address (IPv6 by prefix) and per poll: one vote per browser, best effort.
	IdentityOpen Identity = "open"
	// IdentityInvite issues a token only for a single-use invite code.
	IdentityInvite Identity = "invite"
	// IdentitySigned issues a token only for a JWT signed by the poll's
	// issuer; the voter id is derived from the JWT's iss and sub, so one
	// account is one voter.
	IdentitySigned Identity = "signed"
)

// IdentityNote is the plain-words guarantee of each identity mode, as the
// edge shows it in the poll config.
func IdentityNote(m Identity) string {
	switch m {
	case IdentityInvite:
		return "one vote per invite code"
	case IdentitySigned:
		return "one vote per account of the signing app"
	}
	return "one vote per browser, best effort"
}

// Option is one answer a voter can choose; its index in Poll.Options is its id.
type Option struct {
	Label string `json:"label"`
}

// Poll is a question with options, its voting window and its life-cycle state.
type Poll struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Options    []Option `json:"options,omitempty"` // none for scale and words polls
	Kind       Kind     `json:"kind"`
	MaxChoices int      `json:"max_choices,omitempty"` // multi and ranked: at most this many choices
	// Scale is a scale poll's range; nil for other kinds.
	Scale *Scale `json:"scale,omitempty"`
	// MaxWords is how many words a words poll's ballot may carry (1-3).
	MaxWords   int        `json:"max_words,omitempty"`
	State      State      `json:"state"`
	OpensAt    time.Time  `json:"opens_at,omitzero"`  // optional: votes before it are refused
	ClosesAt   time.Time  `json:"closes_at,omitzero"` // optional: votes at or after it are refused
	Visibility Visibility `json:"visibility"`
	// Identity is how voters get a token (IdentityOpen when empty).
	Identity Identity `json:"identity,omitempty"`
	// JWTIssuer and JWTAudience are the iss and aud a signed poll's JWTs
	// must carry; both required for IdentitySigned, empty otherwise.
	JWTIssuer   string `json:"jwt_issuer,omitempty"`
	JWTAudience string `json:"jwt_audience,omitempty"`
	Version     uint64 `json:"version"` // bumped on every change of config or state
}

// IdentityMode returns p's identity mode, IdentityOpen when unset.
func (p *Poll) IdentityMode() Identity {
	if p.Identity == "" {
		return IdentityOpen
	}
	return p.Identity
}

// ValidPollID reports whether id is a valid poll id: 1–64 of [A-Za-z0-9_-].
// The restricted alphabet keeps ids safe inside Redis hash tags and URLs.
func ValidPollID(id string) bool {
	if len(id) == 0 || len(id) > MaxPollIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	return s != "" && len(s) <= max && utf8.ValidString(s)
}

// validClaim reports whether s can be a JWT iss or aud here: 1 to
// MaxJWTClaimLen printable ASCII bytes.
func validClaim(s string) bool {
	if s == "" || len(s) > MaxJWTClaimLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Validate returns an EINVALID error describing the first problem with p.
func (p *Poll) Validate() error {
	if !ValidPollID(p.ID) {
		return Errorf(EINVALID, "poll id must be 1-%d characters of A-Z a-z 0-9 - _", MaxPollIDLen)
	}
	if !validText(p.Title, MaxTitleLen) {
		return Errorf(EINVALID, "title must be 1-%d bytes of UTF-8", MaxTitleLen)
	}
	if p.Kind.HasOptions() {
		if len(p.Options) < MinOptions || len(p.Options) > MaxOptions {
			return Errorf(EINVALID, "a poll needs %d-%d options, got %d", MinOptions, MaxOptions, len(p.Options))
		}
		for i, o := range p.Options {
			if !validText(o.Label, MaxLabelLen) {
				return Errorf(EINVALID, "option %d: label must be 1-%d bytes of UTF-8", i, MaxLabelLen)
			}
		}
	} else if len(p.Options) != 0 {
		return Errorf(EINVALID, "a %s poll has no options", p.Kind)
	}
	if p.Kind != KindScale && p.Scale != nil {
		return Errorf(EINVALID, "scale is only for a %q poll", KindScale)
	}
	if p.Kind != KindWords && p.MaxWords != 0 {
		return Errorf(EINVALID, "max_words is only for a %q poll", KindWords)
	}
	switch p.Kind {
	case KindSingle:
		if p.MaxChoices != 0 && p.MaxChoices != 1 {
			return Errorf(EINVALID, "max_choices must be 1 or unset for a single-choice poll")
		}
	case KindMulti, KindRanked:
		if p.MaxChoices < 1 || p.MaxChoices > len(p.Options) {
			return Errorf(EINVALID, "max_choices must be 1-%d for a %s poll", len(p.Options), p.Kind)
		}
	case KindScale:
		if p.MaxChoices != 0 {
			return Errorf(EINVALID, "max_choices is not for a scale poll")
		}
		if err := p.Scale.validate(); err != nil {
			return err
		}
	case KindWords:
		if p.MaxChoices != 0 {
			return Errorf(EINVALID, "max_choices is not for a words poll")
		}
		if p.MaxWords < 1 || p.MaxWords > MaxWordsCap {
			return Errorf(EINVALID, "max_words must be 1-%d for a words poll", MaxWordsCap)
		}
	default:
		return Errorf(EINVALID, "kind must be %q, %q, %q, %q or %q", KindSingle, KindMulti, KindScale, KindRanked, KindWords)
	}
	switch p.State {
	case StateDraft, StateOpen, StateClosed:
	default:
		return Errorf(EINVALID, "state must be %q, %q or %q", StateDraft, StateOpen, StateClosed)
	}
	switch p.Visibility {
	case VisibilityLive, VisibilityAfterClose:
	default:
		return Errorf(EINVALID, "visibility must be %q or %q", VisibilityLive, VisibilityAfterClose)
	}
	switch p.IdentityMode() {
	case IdentityOpen, IdentityInvite:
		if p.JWTIssuer != "" || p.JWTAudience != "" {
			return Errorf(EINVALID, "jwt_issuer and jwt_audience are only for identity %q", IdentitySigned)
		}
	case IdentitySigned:
		if !validClaim(p.JWTIssuer) || !validClaim(p.JWTAudience) {
			return Errorf(EINVALID, "identity %q needs jwt_issuer and jwt_audience, each 1-%d printable bytes", IdentitySigned, MaxJWTClaimLen)
		}
	default:
		return Errorf(EINVALID, "identity must be %q, %q or %q", IdentityOpen, IdentityInvite, IdentitySigned)
	}
	if !p.OpensAt.IsZero() && !p.ClosesAt.IsZero() && !p.ClosesAt.After(p.OpensAt) {
		return Errorf(EINVALID, "closes_at must be after opens_at")
	}
	return nil
}

func (s *Scale) validate() error {
	if s == nil {
		return Errorf(EINVALID, "a scale poll needs scale {min, max}")
	}
	if s.Min < -MaxScaleAbs || s.Max > MaxScaleAbs || s.Max < -MaxScaleAbs || s.Min > MaxScaleAbs {
		return Errorf(EINVALID, "scale min and max must lie in -%d..%d", MaxScaleAbs, MaxScaleAbs)
	}
	if n := s.Steps(); n < MinScaleSteps || n > MaxScaleSteps {
		return Errorf(EINVALID, "a scale needs %d-%d steps (max - min + 1), got %d", MinScaleSteps, MaxScaleSteps, n)
	}
	if s.MinLabel != "" && !validText(s.MinLabel, MaxLabelLen) || s.MaxLabel != "" && !validText(s.MaxLabel, MaxLabelLen) {
		return Errorf(EINVALID, "scale labels must be 1-%d bytes of UTF-8", MaxLabelLen)
	}
	return nil
}

// Limit returns the number of choice bytes a ballot may carry (0 for a
// words poll, whose ballots carry words).
func (p *Poll) Limit() int {
	switch p.Kind {
	case KindMulti, KindRanked:
		return p.MaxChoices
	case KindWords:
		return 0
	}
	return 1
}

// NumCounts returns how many counts a snapshot of p has: one per option,
// one per scale value, none for words.
func (p *Poll) NumCounts() int {
	switch p.Kind {
	case KindScale:
		if p.Scale == nil {
			return 0
		}
		return p.Scale.Steps()
	case KindWords:
		return 0
	}
	return len(p.Options)
}

// ScaleChoice returns the ballot byte of value on p's scale (value - min),
// or an EINVALID error when p is not a scale poll or value is off it.
func (p *Poll) ScaleChoice(value int64) (uint8, error) {
	if p.Kind != KindScale || p.Scale == nil {
		return 0, Errorf(EINVALID, "this poll takes %s, not \"value\"", p.Kind.ballotKeys())
	}
	if value < int64(p.Scale.Min) || value > int64(p.Scale.Max) {
		return 0, Errorf(EINVALID, "value must be an integer from %d to %d", p.Scale.Min, p.Scale.Max)
	}
	return uint8(value - int64(p.Scale.Min)), nil
}

// ballotKeys names the vote body keys of kind k, for messages.
func (k Kind) ballotKeys() string {
	switch k {
	case KindScale:
		return `"value"`
	case KindWords:
		return `"words"`
	}
	return `"choice" or "choices"`
}

// WrongKey is the EINVALID error for a vote body key that p's kind does not
// take (key is "value", "words" or "choices").
func (p *Poll) WrongKey(key string) error {
	return Errorf(EINVALID, "this poll takes %s, not %q", p.Kind.ballotKeys(), key)
}

// ValidateWords normalises a words ballot for p in place: 1..MaxWords
// words, each passing NormalizeWord, no two with the same normal form.
// Errors are EINVALID and name the word (from 1).
func (p *Poll) ValidateWords(words []string) error {
	if p.Kind != KindWords {
		return p.WrongKey("words")
	}
	if len(words) == 0 {
		return Errorf(EINVALID, "a vote needs a word")
	}
	if len(words) > p.MaxWords {
		return Errorf(EINVALID, "at most %d words allowed", p.MaxWords)
	}
	for i, w := range words {
		n, err := NormalizeWord(w)
		if err != nil {
			return Errorf(EINVALID, "word %d: %s", i+1, ErrorMessage(err))
		}
		for j := 0; j < i; j++ {
			if words[j] == n {
				return Errorf(EINVALID, "word %d: %q repeats word %d", i+1, w, j+1)
			}
		}
		words[i] = n
	}
	return nil
}

// AcceptsAt returns nil if p takes votes received at t, or an EFORBIDDEN error
// whose message is RejectNotOpen or RejectClosed.
func (p *Poll) AcceptsAt(t time.Time) error {
	switch {
	case p.State == StateClosed:
		return Errorf(EFORBIDDEN, "%s", RejectClosed)
	case p.State != StateOpen:
		return Errorf(EFORBIDDEN, "%s", RejectNotOpen)
	case !p.OpensAt.IsZero() && t.Before(p.OpensAt):
		return Errorf(EFORBIDDEN, "%s", RejectNotOpen)
	case !p.ClosesAt.IsZero() && !t.Before(p.ClosesAt):
		return Errorf(EFORBIDDEN, "%s", RejectClosed)
	}
	return nil
}

// ResultsVisible reports whether p's results may be shown to the public at t.
func (p *Poll) ResultsVisible(t time.Time) bool {
	if p.Visibility != VisibilityAfterClose {
		return true
	}
	return p.State == StateClosed || (!p.ClosesAt.IsZero() && !t.Before(p.ClosesAt))
}

// ValidateChoices returns an EINVALID error unless choices is a valid ballot
// for p: 1..Limit() distinct indexes, each less than NumCounts() (for a
// scale poll: exactly one byte, value - min). A words poll takes no choices.
func (p *Poll) ValidateChoices(choices []uint8) error {
	if p.Kind == KindWords {
		return p.WrongKey("choices")
	}
	if p.Kind == KindScale {
		if len(choices) != 1 || int(choices[0]) >= p.NumCounts() {
			return Errorf(EINVALID, "a scale vote is one value")
		}
		return nil
	}
	if len(choices) == 0 {
		return Errorf(EINVALID, "a vote needs a choice")
	}
	if len(choices) > p.Limit() {
		return Errorf(EINVALID, "at most %d choices allowed", p.Limit())
	}
	var seen [MaxOptions / 64]uint64
	for _, c := range choices {
		if int(c) >= len(p.Options) {
			return Errorf(EINVALID, "choice %d out of range 0-%d", c, len(p.Options)-1)
		}
		if seen[c/64]&(1<<(c%64)) != 0 {
			return Errorf(EINVALID, "choice %d given twice", c)
		}
		seen[c/64] |= 1 << (c % 64)
	}
	return nil
}

// IdentityStatsPath is the origin path an edge POSTs what it counted for a
// poll's integrity report to (JSON {"tokens":N,"addrs":{addr:n},"refused":
// {reason:n}}), signed with an ingest key over sign.RequestWithBody.
func IdentityStatsPath(poll string) string { return "/v1/polls/" + poll + "/identity-stats" }
