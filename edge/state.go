package edge

import (
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/dedupe"
	"github.com/edgepoll/edgepoll/shared/ratelimit"
)

// VotedCacheTTL is how long a host keeps the origin's answer to Voted: a
// voter checking their vote every second costs the origin one request per
// TTL per edge location.
const VotedCacheTTL = 2 * time.Second

// Limiter names one of the edge's rate limits in LocationState.Limit.
type Limiter uint8

// The edge's rate limits.
const (
	LimitVoteIP    Limiter = iota + 1 // votes per client address (Config.VoteRate)
	LimitTokenIP                      // voter tokens issued per client address (Config.TokenRate)
	LimitVoter                        // votes per voter and poll (Config.VoterRate)
	LimitCheck                        // vote checks per voter and poll (Config.CheckRate)
	LimitTokenPoll                    // new voter tokens per poll, whatever the address (Config.PollTokenRate)
)

// NumLimiters bounds the Limiter values: arrays indexed by Limiter have
// NumLimiters elements (index 0 unused).
const NumLimiters = int(LimitTokenPoll) + 1

// String names the limiter as metrics and logs label it.
func (l Limiter) String() string {
	switch l {
	case LimitVoteIP:
		return "vote_ip"
	case LimitTokenIP:
		return "token_ip"
	case LimitVoter:
		return "voter"
	case LimitCheck:
		return "check"
	case LimitTokenPoll:
		return "token_poll"
	}
	return "unknown"
}

// LocationState is the memory one edge location keeps for its first-line
// filters: which (poll, voter) pairs already voted here, and its rate
// limiters. A handler keeps its own (NewLocationState) unless its host
// implements StateHost, which lets several instances serving one location
// (the wazero harness's instance pool) share one, so a repeat vote gets 409
// whichever instance serves it.
type LocationState interface {
	// SeenAdd records that voter voted in poll; it returns false when that
	// was already recorded.
	SeenAdd(poll string, voter shared.VoterID) bool
	// SeenRemove forgets a SeenAdd (the vote's hand-off failed).
	SeenRemove(poll string, voter shared.VoterID)
	// Limit counts one event for key under limiter l at now and reports
	// whether it conforms, and otherwise how long to wait. A limit that is
	// off always conforms.
	Limit(l Limiter, key uint64, now time.Time) (ok bool, wait time.Duration)
}

// StateHost is implemented by hosts that keep the location's LocationState
// outside the handler.
type StateHost interface {
	// LocationState returns the state every handler of this location shares.
	LocationState() LocationState
}

// localState is the in-process LocationState: a dedupe.Set and GCRA
// limiters, each safe for concurrent use.
type localState struct {
	seen     *dedupe.Set
	limiters [NumLimiters]*ratelimit.Limiter // nil: off
}

// NewLocationState returns an in-memory LocationState sized and rated by
// cfg (defaults applied to its zero fields). It is safe for concurrent use.
func NewLocationState(cfg Config) LocationState {
	cfg = cfg.withDefaults()
	s := &localState{seen: dedupe.New(cfg.DedupeCapacity)}
	s.limiters[LimitVoteIP] = newLimiter(cfg.VoteRate, cfg.LimiterKeys)
	s.limiters[LimitTokenIP] = newLimiter(cfg.TokenRate, cfg.LimiterKeys)
	s.limiters[LimitVoter] = newLimiter(cfg.VoterRate, cfg.LimiterKeys)
	s.limiters[LimitCheck] = newLimiter(cfg.CheckRate, cfg.LimiterKeys)
	s.limiters[LimitTokenPoll] = newLimiter(cfg.PollTokenRate, cfg.LimiterKeys)
	return s
}

func newLimiter(r Rate, keys int) *ratelimit.Limiter {
	if r.Off() {
		return nil
	}
	return ratelimit.New(r.N, r.Per, r.Burst, keys)
}

func (s *localState) SeenAdd(poll string, voter shared.VoterID) bool {
	return s.seen.Add(poll, voter)
}

func (s *localState) SeenRemove(poll string, voter shared.VoterID) {
	s.seen.Remove(poll, voter)
}

func (s *localState) Limit(l Limiter, key uint64, now time.Time) (bool, time.Duration) {
	if int(l) >= len(s.limiters) {
		return true, 0
	}
	lim := s.limiters[l]
	if lim == nil {
		return true, 0
	}
	return lim.Allow(key, now)
}
