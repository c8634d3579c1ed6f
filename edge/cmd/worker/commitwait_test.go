package main

import (
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge/commit"
	"github.com/edgepoll/edgepoll/shared"
)

func TestCommitWait(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", commit.DefaultMaxDelay},
		{" 12 ", 12 * time.Millisecond},
		{"0", -1},
		{"1000", time.Second},
	} {
		got, err := commitWait(c.in)
		if err != nil || got != c.want {
			t.Errorf("commitWait(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"-1", "1001", "5ms", "x"} {
		if _, err := commitWait(bad); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("commitWait(%q): err %v, want EINVALID", bad, err)
		}
	}
}
