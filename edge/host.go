// Package edge is edgepoll's edge: one http.Handler holding every edge HTTP
// rule (validation, rate limits, dedupe, CORS, errors, result caching
// semantics), written against Host so the same code runs natively, in a
// Cloudflare Worker (edge/worker) and as a wazero guest (wasm/).
package edge

import (
	"context"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

// RequestHeaders lists, in canonical form, every request header the handler
// reads. A host may pass it only these: the Worker glue does, because
// copying each request's every header across to Go costs more than the rest
// of a cached read. TestTableWithOnlyRequestHeaders proves the list complete.
var RequestHeaders = []string{"Accept", "Authorization", "Cf-Connecting-Ip", "Content-Type", "Cookie", "If-None-Match", "Origin"}

// Cached is an origin response held by the host's cache, with the validators
// the handler needs to answer conditional requests.
type Cached struct {
	Status       int    // origin status (200, or an error status to pass through)
	ContentType  string // e.g. application/json or application/msgpack
	ETag         string // strong ETag as sent by the origin, quotes included
	CacheControl string // as sent by the origin
	Body         []byte
}

// Host is what the handler needs from the platform it runs on. Methods get
// the request's context; implementations must not keep I/O across requests
// (a Worker ties I/O objects to the request that made them).
type Host interface {
	// Now returns the current time.
	Now() time.Time
	// Poll returns a poll's config, from a cache that honours the origin's
	// Cache-Control, and never one the host asked the origin for more than
	// shared.MaxConfigAge ago (not even stale-if-error): announced closes
	// rely on it. Returns ENOTFOUND for an unknown poll and EUNAVAILABLE
	// when the origin cannot be reached and nothing young enough is cached.
	Poll(ctx context.Context, id string) (*shared.Poll, error)
	// Results returns the cached results response for a poll in JSON, or
	// MessagePack when msgpack is true, refreshing it from the origin on a
	// miss or expiry (at most one origin request per poll per cache period).
	// Returns EUNAVAILABLE when the origin cannot be reached and nothing is cached.
	Results(ctx context.Context, id string, msgpack bool) (*Cached, error)
	// Submit hands off an admitted vote and returns once the batch holding it
	// has been durably accepted (queue send succeeded). Returns EUNAVAILABLE
	// if it could not be handed off; the vote must then not be counted.
	Submit(ctx context.Context, v *shared.Vote) error
	// Voted reports whether the origin has counted voter's vote in poll
	// (GET /v1/polls/{id}/voters/{voter} on the origin, signed with the
	// ingest key), from a cache that keeps each answer for VotedCacheTTL.
	// Returns ENOTFOUND for an unknown poll and EUNAVAILABLE when the origin
	// cannot be reached.
	Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error)
	// Allow consults a platform rate limiter (e.g. the Workers Rate Limiting
	// binding) for key; hosts without one return true.
	Allow(ctx context.Context, key string) bool
	// Log records a structured event (level: debug, info, warn, error).
	Log(level, msg string, attrs ...any)
}

// InviteHost is implemented by hosts that can redeem invite codes at the
// origin (POST invite.RedeemPath, signed with the ingest key over
// invite.SignedBody). Without it, invite polls answer 503 at token requests.
type InviteHost interface {
	// RedeemInvite marks code used for poll, once for all edges. Returns
	// ECONFLICT for a code already used, EFORBIDDEN for an unknown code,
	// ENOTFOUND for an unknown poll and EUNAVAILABLE when the origin
	// cannot be reached (the code may or may not be used then).
	RedeemInvite(ctx context.Context, poll string, code invite.Code) error
}

// IdentityFlusher is implemented by hosts whose I/O belongs to a request
// (the Worker): after counting a new token the handler calls FlushIdentity
// with that request's context, and the host reports its counts there when
// its last report is old enough (else it returns at once).
type IdentityFlusher interface {
	FlushIdentity(ctx context.Context)
}

// IdentityCounter is implemented by hosts that report token issuance to
// the origin for the integrity report (pollctl stats POLL). Calls must be
// cheap and never block: hosts count in memory and report in the background.
type IdentityCounter interface {
	// TokenIssued counts a new voter token of poll issued to addr: the
	// client address as the per-address limits see it (IPv6 cut to its
	// prefix, see Config.IPv6Prefix).
	TokenIssued(poll, addr string)
	// TokenRefused counts a token request of poll refused for reason (a
	// jwt.Reason for signed polls).
	TokenRefused(poll, reason string)
}
