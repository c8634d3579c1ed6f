package shared

import (
	"bytes"
	"encoding/hex"
)

// The origin's vote check (GET /v1/polls/{id}/voters/{voter}, signed by an
// edge) answers exactly one of these bodies.
var (
	VoteCheckCounted    = []byte(`{"counted":true}`)
	VoteCheckNotCounted = []byte(`{"counted":false}`)
)

// VoteCheckPath is the origin path an edge asks whether voter is counted in
// poll: /v1/polls/{poll}/voters/{32 hex digits}.
func VoteCheckPath(poll string, voter VoterID) string {
	return "/v1/polls/" + poll + "/voters/" + hex.EncodeToString(voter[:])
}

// ParseVoteCheck reads a vote-check answer. Anything but the two bodies the
// origin writes (surrounding white space aside) is EUNAVAILABLE.
func ParseVoteCheck(body []byte) (bool, error) {
	switch b := bytes.TrimSpace(body); {
	case bytes.Equal(b, VoteCheckCounted):
		return true, nil
	case bytes.Equal(b, VoteCheckNotCounted):
		return false, nil
	}
	return false, Errorf(EUNAVAILABLE, "origin sent an unreadable vote check (%d bytes)", len(body))
}
