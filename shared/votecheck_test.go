package shared_test

import (
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

func TestParseVoteCheck(t *testing.T) {
	for body, want := range map[string]bool{`{"counted":true}`: true, "{\"counted\":false}\n": false} {
		if got, err := shared.ParseVoteCheck([]byte(body)); err != nil || got != want {
			t.Errorf("ParseVoteCheck(%q) = %v, %v", body, got, err)
		}
	}
	for _, body := range []string{"", `{"counted":1}`, `{"counted":true,"x":1}`, "<html>"} {
		if _, err := shared.ParseVoteCheck([]byte(body)); shared.ErrorCode(err) != shared.EUNAVAILABLE {
			t.Errorf("ParseVoteCheck(%q): err %v, want EUNAVAILABLE", body, err)
		}
	}
	v := shared.VoterID{0xab, 15: 1}
	if got := shared.VoteCheckPath("final", v); got != "/v1/polls/final/voters/ab000000000000000000000000000001" {
		t.Errorf("VoteCheckPath = %q", got)
	}
}
