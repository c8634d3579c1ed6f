// Package edgetest holds the edge behaviour table (RunTable) and FakeHost,
// an in-memory edge.Host with controls. The same table runs against the
// native handler (edge/handler_test.go), the wazero guest (wasm/) and the
// Worker under wrangler dev, so its cases talk to the handler only through
// HTTP requests and FakeHost controls.
package edgetest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

// Epoch is FakeHost's initial clock reading.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// LogEntry is one captured Host.Log call.
type LogEntry struct {
	Level string
	Msg   string
	Attrs []any
}

// String formats the entry for test failure messages.
func (e LogEntry) String() string { return e.Level + " " + e.Msg + " " + fmt.Sprint(e.Attrs...) }

// FakeHost is an edge.Host held in memory, with a controllable clock, polls
// and results, recorded submissions, submit-failure injection and a
// platform-limiter toggle. Safe for concurrent use. The zero value is not
// usable; call NewFakeHost.
type FakeHost struct {
	mu         sync.Mutex
	now        time.Time
	polls      map[string]shared.Poll
	results    map[resultsKey]edge.Cached
	votes      []shared.Vote
	submitErr  error
	failSubmit int // remaining submissions to fail
	submitFunc func(ctx context.Context, v *shared.Vote) error
	deny       bool
	pollErr    error
	logs       []LogEntry
	pollCalls  int
	voted      map[string]bool // poll + "/" + voter hex
	votedErr   error
	invites    map[string]bool // poll + "/" + code: used
	inviteErr  error
	redeems    int
	issued     map[string]int // poll + " " + address
	refused    map[string]int // poll + " " + reason
}

type resultsKey struct {
	id      string
	msgpack bool
}

var (
	_ edge.Host            = (*FakeHost)(nil)
	_ edge.InviteHost      = (*FakeHost)(nil)
	_ edge.IdentityCounter = (*FakeHost)(nil)
)

// TokenIssued implements edge.IdentityCounter.
func (h *FakeHost) TokenIssued(poll, addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.issued == nil {
		h.issued = make(map[string]int)
	}
	h.issued[poll+" "+addr]++
}

// TokenRefused implements edge.IdentityCounter.
func (h *FakeHost) TokenRefused(poll, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused == nil {
		h.refused = make(map[string]int)
	}
	h.refused[poll+" "+reason]++
}

// Issued returns the tokens counted for poll and addr.
func (h *FakeHost) Issued(poll, addr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.issued[poll+" "+addr]
}

// Refused returns the token requests of poll counted as refused for reason.
func (h *FakeHost) Refused(poll, reason string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused[poll+" "+reason]
}

// AddInvite makes code an unused invite code of poll.
func (h *FakeHost) AddInvite(poll string, code invite.Code) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.invites == nil {
		h.invites = make(map[string]bool)
	}
	h.invites[poll+"/"+string(code)] = false
}

// SetInviteError makes RedeemInvite fail with err (nil restores it).
func (h *FakeHost) SetInviteError(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inviteErr = err
}

// Redeems returns how many codes RedeemInvite has marked used.
func (h *FakeHost) Redeems() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.redeems
}

// RedeemInvite implements edge.InviteHost as the origin does.
func (h *FakeHost) RedeemInvite(_ context.Context, poll string, code invite.Code) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inviteErr != nil {
		return h.inviteErr
	}
	if _, ok := h.polls[poll]; !ok {
		return shared.Errorf(shared.ENOTFOUND, "unknown poll %q", poll)
	}
	used, ok := h.invites[poll+"/"+string(code)]
	switch {
	case !ok:
		return shared.Errorf(shared.EFORBIDDEN, "unknown invite code")
	case used:
		return shared.Errorf(shared.ECONFLICT, "this invite code has already been used")
	}
	h.invites[poll+"/"+string(code)] = true
	h.redeems++
	return nil
}

// NewFakeHost returns a FakeHost whose clock reads Epoch, with no polls.
func NewFakeHost() *FakeHost {
	return &FakeHost{now: Epoch, polls: make(map[string]shared.Poll), results: make(map[resultsKey]edge.Cached)}
}

// Now implements edge.Host.
func (h *FakeHost) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// SetNow sets the clock.
func (h *FakeHost) SetNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = t
}

// Advance moves the clock forward by d.
func (h *FakeHost) Advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// Poll implements edge.Host: a copy of the stored poll, ENOTFOUND if there
// is none, or the error set with SetPollError.
func (h *FakeHost) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pollCalls++
	if h.pollErr != nil {
		return nil, h.pollErr
	}
	p, ok := h.polls[id]
	if !ok {
		return nil, shared.Errorf(shared.ENOTFOUND, "unknown poll %q", id)
	}
	p.Options = append([]shared.Option(nil), p.Options...)
	return &p, nil
}

// PutPoll stores (a copy of) p, replacing any poll with its id.
func (h *FakeHost) PutPoll(p shared.Poll) {
	p.Options = append([]shared.Option(nil), p.Options...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.polls[p.ID] = p
}

// DeletePoll forgets the poll with id.
func (h *FakeHost) DeletePoll(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.polls, id)
}

// SetPollError makes Poll fail with err (nil restores normal lookups), e.g.
// shared.Errorf(shared.EUNAVAILABLE, ...) for an unreachable origin.
func (h *FakeHost) SetPollError(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pollErr = err
}

// PollCalls returns how many times Poll was called.
func (h *FakeHost) PollCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pollCalls
}

// Results implements edge.Host: a copy of the response stored with
// SetResults for (id, msgpack), or ENOTFOUND.
func (h *FakeHost) Results(ctx context.Context, id string, msgpack bool) (*edge.Cached, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.results[resultsKey{id, msgpack}]
	if !ok {
		return nil, shared.Errorf(shared.ENOTFOUND, "no results for poll %q", id)
	}
	c.Body = append([]byte(nil), c.Body...)
	return &c, nil
}

// SetResults stores the cached results response for (id, msgpack).
func (h *FakeHost) SetResults(id string, msgpack bool, c edge.Cached) {
	c.Body = append([]byte(nil), c.Body...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results[resultsKey{id, msgpack}] = c
}

// Submit implements edge.Host: it records a deep copy of v, unless a failure
// was injected (FailSubmits, SetSubmitError) or a SubmitFunc replaces it.
func (h *FakeHost) Submit(ctx context.Context, v *shared.Vote) error {
	h.mu.Lock()
	if f := h.submitFunc; f != nil {
		h.mu.Unlock()
		return f(ctx, v)
	}
	defer h.mu.Unlock()
	if h.failSubmit > 0 {
		h.failSubmit--
		return shared.Errorf(shared.EUNAVAILABLE, "injected submit failure")
	}
	if h.submitErr != nil {
		return h.submitErr
	}
	c := *v
	c.Choices = append([]uint8(nil), v.Choices...)
	h.votes = append(h.votes, c)
	return nil
}

// FailSubmits makes the next n submissions fail with EUNAVAILABLE.
func (h *FakeHost) FailSubmits(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failSubmit = n
}

// SetSubmitError makes every submission fail with err (nil to stop).
func (h *FakeHost) SetSubmitError(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.submitErr = err
}

// SetSubmitFunc replaces Submit's recording with f (nil restores it), e.g.
// a no-op for benchmarks or a group committer.
func (h *FakeHost) SetSubmitFunc(f func(ctx context.Context, v *shared.Vote) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.submitFunc = f
}

// Votes returns copies of the votes submitted successfully, in order.
func (h *FakeHost) Votes() []shared.Vote {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]shared.Vote, len(h.votes))
	copy(out, h.votes)
	return out
}

// Voted implements edge.Host: true once SetVoted marked the voter, or
// once the voter's vote was submitted (as if the origin had counted it at
// once); the error set with SetVotedError; ENOTFOUND for an unknown poll.
func (h *FakeHost) Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.votedErr != nil {
		return false, h.votedErr
	}
	if _, ok := h.polls[poll]; !ok {
		return false, shared.Errorf(shared.ENOTFOUND, "unknown poll %q", poll)
	}
	if v, ok := h.voted[poll+"/"+voter.String()]; ok {
		return v, nil
	}
	for _, v := range h.votes {
		if v.Poll == poll && v.Voter == voter {
			return true, nil
		}
	}
	return false, nil
}

// SetVoted makes Voted answer counted for (poll, voter).
func (h *FakeHost) SetVoted(poll string, voter shared.VoterID, counted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.voted == nil {
		h.voted = make(map[string]bool)
	}
	h.voted[poll+"/"+voter.String()] = counted
}

// SetVotedError makes Voted fail with err (nil restores it).
func (h *FakeHost) SetVotedError(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.votedErr = err
}

// Allow implements edge.Host: true unless SetAllow(false).
func (h *FakeHost) Allow(ctx context.Context, key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.deny
}

// SetAllow sets the platform limiter's answer.
func (h *FakeHost) SetAllow(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deny = !ok
}

// Log implements edge.Host by capturing the entry.
func (h *FakeHost) Log(level, msg string, attrs ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, LogEntry{Level: level, Msg: msg, Attrs: append([]any(nil), attrs...)})
}

// Logs returns the captured log entries.
func (h *FakeHost) Logs() []LogEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogEntry(nil), h.logs...)
}
