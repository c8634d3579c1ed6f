// Package benchfix is the fixture of the per-vote pipeline benchmarks
// (make bench-wasm): an edge.Host that answers from memory and drops
// admitted votes, the edge config, and pre-issued vote bodies for distinct
// voters.
package benchfix

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

// PollID is the benchmark poll.
const PollID = "bench"

// Secret is the benchmark's TOKEN_SECRET.
const Secret = "benchfix-token-secret-0123456789abcdef01234567"

// Env is the edge configuration as environment variables: per-IP limits
// off (every request comes from one address), the default per-voter limit
// and a dedupe memory large enough for every voter.
var Env = map[string]string{
	"TOKEN_SECRET":    Secret,
	"RATE_IP_VOTES":   "off",
	"RATE_IP_TOKENS":  "off",
	"DEDUPE_CAPACITY": "65536",
	"COOKIE_SECURE":   "false",
}

// Lookup serves Env.
func Lookup(k string) (string, bool) { v, ok := Env[k]; return v, ok }

// Config returns the edge.Config Env describes.
func Config() edge.Config {
	c, err := edge.ConfigFromEnv(func(k string) string { return Env[k] })
	if err != nil {
		panic(err)
	}
	return c
}

// Host is an edge.Host with an open poll of each identity mode (PollID,
// PollInvite, PollSigned) whose Submit drops votes.
type Host struct {
	polls   map[string]*shared.Poll
	raws    map[string][]byte
	inv     invites
	Submits atomic.Uint64
}

var _ edge.Host = (*Host)(nil)

// NewHost returns a Host serving the open polls PollID (identity open),
// PollInvite and PollSigned, with 4 options each.
func NewHost() *Host {
	h := &Host{polls: map[string]*shared.Poll{}, raws: map[string][]byte{}}
	for id, mode := range map[string]shared.Identity{PollID: "", PollInvite: shared.IdentityInvite, PollSigned: shared.IdentitySigned} {
		p := identityPoll(id, mode)
		raw, err := shared.MarshalPoll(&p)
		if err != nil {
			panic(err)
		}
		h.polls[id], h.raws[id] = &p, raw
	}
	return h
}

// Now implements edge.Host.
func (h *Host) Now() time.Time { return time.Now() }

// Poll implements edge.Host.
func (h *Host) Poll(_ context.Context, id string) (*shared.Poll, error) {
	p, ok := h.polls[id]
	if !ok {
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	return p, nil
}

// PollBytes serves the poll's wire encoding, as the origin-backed host does
// (harness.PollEncoder).
func (h *Host) PollBytes(_ context.Context, id string) ([]byte, error) {
	raw, ok := h.raws[id]
	if !ok {
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	return raw, nil
}

// Results implements edge.Host.
func (h *Host) Results(context.Context, string, bool) (*edge.Cached, error) {
	return nil, shared.Errorf(shared.ENOTFOUND, "no results")
}

// Submit implements edge.Host: it counts and drops the vote.
func (h *Host) Submit(context.Context, *shared.Vote) error { h.Submits.Add(1); return nil }

// Voted implements edge.Host: nobody is counted.
func (h *Host) Voted(context.Context, string, shared.VoterID) (bool, error) { return false, nil }

// Allow implements edge.Host.
func (h *Host) Allow(context.Context, string) bool { return true }

// Log implements edge.Host.
func (h *Host) Log(string, string, ...any) {}

var randRead = rand.Read

// Token returns a fresh voter's token for PollID.
func Token() string {
	var v shared.VoterID
	rand.Read(v[:])
	v[0] |= 1
	return token.Issue([]byte(Secret), PollID, v)
}

// VoteBody returns a JSON vote body for a fresh voter.
func VoteBody(choice int) []byte {
	return fmt.Appendf(nil, `{"token":%q,"choice":%d}`, Token(), choice%4)
}
