package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/edge/commit"
	"github.com/edgepoll/edgepoll/shared"
)

// varCommitWait optionally sets how long, in milliseconds, a group of votes
// gathers before it is sent (default defaultCommitWait; "0" sends each vote
// on its own).
const varCommitWait = "COMMIT_WAIT_MS"

// defaultCommitWait is the Worker's group-commit window.
const defaultCommitWait = commit.DefaultMaxDelay

// commitWait parses COMMIT_WAIT_MS. Errors are EINVALID.
func commitWait(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return defaultCommitWait, nil
	}
	ms, err := strconv.Atoi(s)
	if err != nil || ms < 0 || ms > 1000 {
		return 0, shared.Errorf(shared.EINVALID, "%s must be 0..1000 milliseconds, got %q", varCommitWait, s)
	}
	if ms == 0 {
		return -1, nil // commit.Options: negative sends each vote at once
	}
	return time.Duration(ms) * time.Millisecond, nil
}
